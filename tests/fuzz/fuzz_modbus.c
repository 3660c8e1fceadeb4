/* SPDX-License-Identifier: MIT */
/*
 * fuzz_modbus.c — libFuzzer target: the modbus (RTU) driver's block reads answered by arbitrary
 * bytes, as its serial line hands them over, with timeouts in between, for a slave-17 register
 * table of every type and function, and a slave-1 one (see fuzz_common.h).
 */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_modbus,
	    "slave = 17; timeout = 0.1; registers = ("
	    " { name = \"f\"; address = 0; type = \"float32\"; function = \"input\"; },"
	    " { name = \"i\"; address = 6; type = \"int16\"; scale = 0.01; },"
	    " { name = \"u\"; address = 8; type = \"uint32\"; word_order = \"little\"; },"
	    " { name = \"s\"; address = 10; type = \"int32\"; },"
	    " { name = \"w\"; address = 12; },"
	    " { name = \"c\"; address = 0; function = \"coil\"; count = 9; },"
	    " { name = \"d\"; address = 3; function = \"discrete\"; },"
	    " { name = \"q\"; address = 14; type = \"f64\"; byte_order = \"little\"; } ); max_gap = 3;",
	    "slave = 1; registers = ( { name = \"x\"; address = 0; type = \"float32\"; scale = 1e30; } );")
