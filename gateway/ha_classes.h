/* SPDX-License-Identifier: MIT */
/*
 * ha_classes.h — Home Assistant's sensor device classes: the units each
 * accepts, the state classes each allows, and how a reading is classified.
 *
 * The facts are Home Assistant's (homeassistant/components/sensor/const.py:
 * DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES, homeassistant/const.py
 * for the unit spellings), as of Home Assistant 2025.10; the same facts, kept
 * independently in tests/integration/ha_rules.py, check every discovery
 * payload the gateway makes (tests/integration/test_ha_rules.py). Home
 * Assistant compares unit strings exactly; from 2025.7 a sensor whose unit
 * its device class does not accept is not created at all.
 *
 * Pure functions over static tables: no allocation, no I/O.
 */
#ifndef SG_HA_CLASSES_H
#define SG_HA_CLASSES_H
#include <stdbool.h>

/*
 * UNIT as Home Assistant spells it: "m3" -> "m³", "ug/m3" -> "µg/m³",
 * "degC" -> "°C" and the like; UNIT itself otherwise (NULL for NULL).
 */
const char *ha_unit_symbol(const char *unit);

/* Whether sensor device class CLASS accepts UNIT (NULL: no unit). False for a class Home Assistant does not know. */
bool ha_unit_allowed(const char *device_class, const char *unit);

/* Whether CLASS is a sensor device class Home Assistant knows. */
bool ha_device_class_known(const char *device_class);

/*
 * The device class of a reading FIELD in UNIT when nothing else says, or
 * NULL: the unit alone where it tells (°C, hPa, kWh, W, V, A, lx, Hz ...),
 * with a telling field name where it does not ("%" with "hum", "batt",
 * "moist"; "µg/m³" with "pm25", "pm10", "pm1"; "ppm" with "co2"; "m³" and
 * "L" with "gas" or "water"; speeds with "wind").
 */
const char *ha_infer_device_class(const char *field, const char *unit);

/*
 * The state class a reading of CLASS gets by default: "total_increasing" for
 * meters (energy, gas, water, volume), "total" for monetary, NULL where Home
 * Assistant allows none (timestamp, date, enum), else "measurement". For a
 * class Home Assistant does not know: "measurement" when there is a unit.
 */
const char *ha_default_state_class(const char *device_class, const char *unit);

/* Whether STATE is a state class CLASS allows (CLASS NULL: any of Home Assistant's state classes). */
bool ha_state_class_allowed(const char *device_class, const char *state);

/* Decimals to show a reading in UNIT with (suggested_display_precision), or -1 when there is no rule for UNIT. */
int ha_display_precision(const char *unit);

#endif
