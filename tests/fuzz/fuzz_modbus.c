/* SPDX-License-Identifier: MIT */
/*
 * fuzz_modbus.c — libFuzzer target: poll() requests (to /dev/null) interleaved with arbitrary
 * response bytes into the modbus driver, for a slave-17 register table of every type, and a
 * slave-1 one (see fuzz_common.h).
 */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_modbus,
	    "slave = 17; timeout = 0.1; registers = ("
	    " { name = \"f\"; address = 0; type = \"float32\"; function = \"input\"; },"
	    " { name = \"i\"; address = 6; type = \"int16\"; scale = 0.01; },"
	    " { name = \"u\"; address = 8; type = \"uint32\"; word_order = \"little\"; },"
	    " { name = \"s\"; address = 10; type = \"int32\"; },"
	    " { name = \"w\"; address = 12; } );",
	    "slave = 1; registers = ( { name = \"x\"; address = 0; type = \"float32\"; scale = 1e30; } );")
