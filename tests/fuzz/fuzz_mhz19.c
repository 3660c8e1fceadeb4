/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mhz19.c — libFuzzer target: the mhz19 driver's requests answered by arbitrary bytes,
 * as its serial line hands them over, with timeouts in between (see fuzz_common.h).
 */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_mhz19, "", "temperature = true;")
