/* SPDX-License-Identifier: MIT */
/*
 * decimal.h — text to double, exactly as strtod() reads it, fast for the
 * plain decimals sensors print ("21.4", "-0.75", "1013").
 */
#ifndef SG_DECIMAL_H
#define SG_DECIMAL_H

#include <stdbool.h>

/*
 * True and *ret set when strtod() takes all of TEXT (nothing may follow)
 * and the value is finite: the same double strtod() gives. *ret_canonical
 * (may be NULL) tells whether TEXT is already exactly how the gateway
 * prints that double (mapper_format_number(), i.e. %.15g without "-0"):
 * a plain decimal of at most 15 significant digits between 1e-4 and 1e15,
 * no '+', no leading or trailing zero, or "0". Such text can be published
 * as it came, with no formatting.
 */
bool sg_decimal_parse(const char *text, double *ret, bool *ret_canonical);

/* 10^0 .. 10^22: the powers of ten a double holds exactly (for the printer's fast path too). */
extern const double sg_pow10[23];

#endif
