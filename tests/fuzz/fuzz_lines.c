/* SPDX-License-Identifier: MIT */
/* fuzz_lines.c — libFuzzer target: arbitrary bytes into the lines driver, all three formats (see fuzz_common.h). */
#include "fuzz_common.h"

FUZZ_TARGET(sg_driver_lines, "", "format = \"json\";", "format = \"csv\"; columns = (\"t\", \"h\", \"p\");",
	    "format = \"csv\"; columns = (\"a\", \"b\"); separator = \";\";")
