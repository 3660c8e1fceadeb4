/* SPDX-License-Identifier: MIT */
/* fuzz_dsmr.c — libFuzzer target: arbitrary bytes into the dsmr driver (see fuzz_common.h). */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_dsmr, "")
