/* SPDX-License-Identifier: MIT */
/* fuzz_pms5003.c — libFuzzer target: arbitrary bytes into the pms5003 driver (see fuzz_common.h). */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_pms5003, "", "cf1 = true; counts = true;")
