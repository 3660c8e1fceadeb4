/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sds011.c — libFuzzer target: arbitrary bytes into the sds011 driver, in active mode
 * (a stream) and in query mode (answers to its requests; see fuzz_common.h).
 */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_sds011, "", "mode = \"query\";")
