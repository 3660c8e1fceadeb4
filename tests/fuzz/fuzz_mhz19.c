/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mhz19.c — libFuzzer target: poll() requests (to /dev/null) interleaved with arbitrary
 * response bytes into the mhz19 driver (see fuzz_common.h).
 */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_mhz19, "", "temperature = true;")
