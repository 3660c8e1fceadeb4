#!/bin/bash
# SPDX-License-Identifier: MIT
#
# i2c-stub.sh — the rig's report line for tests/i2c-stub/run.sh (bus_i2c.c and
# the I2C drivers against Linux's i2c-dev + i2c-stub in a QEMU guest, with the
# rig's cached kernel). Exit 77 when that check skips.
"$(dirname "$0")/../i2c-stub/run.sh"
rc=$?
case $rc in
0) echo "  ok i2c-dev + i2c-stub: register read-back, bme280 compensation, errors of plain-I2C chips" ;;
77) exit 77 ;;
*) echo "  FAIL i2c-dev + i2c-stub check (exit $rc)"; exit 1 ;;
esac
