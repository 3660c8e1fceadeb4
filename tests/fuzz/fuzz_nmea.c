/* SPDX-License-Identifier: MIT */
/* fuzz_nmea.c — libFuzzer target: arbitrary bytes into the nmea driver (see fuzz_common.h). */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_nmea, "", "require_checksum = true;")
