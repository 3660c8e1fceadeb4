/* SPDX-License-Identifier: MIT */
/*
 * cfg_helper.h — configurations from text, for tests that need a loaded
 * struct sg_config (actuator tests).
 *
 * fixture_config() writes TEXT to a file in a private temporary directory
 * (made on first use) that also holds an empty stand-in serial port "tty";
 * every "@DIR@" in TEXT becomes that directory. The returned config belongs
 * to the caller (config_free()); fixture_cleanup() removes the directory.
 */
#ifndef SG_CFG_FIXTURE_H
#define SG_CFG_FIXTURE_H

#include "gateway/config.h"

/* The loaded config, or NULL with the loader's message in fixture_error. */
struct sg_config *fixture_config(const char *text);
extern char fixture_error[512];
/* The temporary directory ("" before the first fixture_config()). */
const char *fixture_dir(void);
void fixture_cleanup(void);

#endif
