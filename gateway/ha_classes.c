/* SPDX-License-Identifier: MIT */
/*
 * ha_classes.c — Home Assistant's sensor device classes (see ha_classes.h).
 *
 * Facts from Home Assistant 2025.10, homeassistant/components/sensor/const.py
 * (DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES) and homeassistant/const.py
 * (the UnitOf... spellings). "µ" is written as the micro sign (U+00B5): Home
 * Assistant up to 2025.6 spells its units so, later versions use the Greek mu
 * (U+03BC) and convert the micro sign to it before comparing, so the micro
 * sign is accepted by both; here the two compare equal.
 */
#include "ha_classes.h"

#include <stddef.h>
#include <string.h>

#define MICRO "\xc2\xb5"
#define CUBED "\xc2\xb3"
#define SQUARED "\xc2\xb2"
#define DEG "\xc2\xb0"

enum {
	SC_MEASUREMENT = 1,
	SC_TOTAL = 2,
	SC_TOTAL_INCREASING = 4,
	SC_ANGLE = 8, /* measurement_angle */
	SC_ALL = SC_MEASUREMENT | SC_TOTAL | SC_TOTAL_INCREASING,
	SC_METER = SC_TOTAL | SC_TOTAL_INCREASING,
};

static const char *const state_names[] = {"measurement", "total", "total_increasing", "measurement_angle"};

struct ha_class {
	const char *name;
	const char *const *units; /* NULL-terminated; NULL: no unit at all */
	unsigned states;          /* SC_* allowed */
	unsigned preferred;       /* SC_* given by default (one bit, 0: none) */
	bool any_unit;            /* monetary: any currency */
	bool unit_optional;       /* power_factor: "%" or none */
};

static const char *const u_temperature[] = {DEG "C", DEG "F", "K", NULL};
static const char *const u_percent[] = {"%", NULL};
static const char *const u_pressure[] = {"mPa", "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg",
                                         "inH\xe2\x82\x82O", "psi", NULL};
static const char *const u_mass_conc[] = {MICRO "g/m" CUBED, NULL};
static const char *const u_co[] = {"ppm", "mg/m" CUBED, MICRO "g/m" CUBED, NULL};
static const char *const u_voc[] = {"mg/m" CUBED, MICRO "g/m" CUBED, NULL};
static const char *const u_ppm[] = {"ppm", NULL};
static const char *const u_parts[] = {"ppm", "ppb", NULL};
static const char *const u_energy[] = {"J",  "kJ",  "MJ",  "GJ",  "mWh",  "Wh",   "kWh",
                                       "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal", NULL};
static const char *const u_power[] = {"mW", "W", "kW", "MW", "GW", "TW", NULL};
static const char *const u_apparent[] = {"mVA", "VA", "kVA", NULL};
static const char *const u_reactive[] = {"mvar", "var", "kvar", NULL};
static const char *const u_reactive_energy[] = {"varh", "kvarh", NULL};
static const char *const u_voltage[] = {MICRO "V", "mV", "V", "kV", "MV", NULL};
static const char *const u_current[] = {"mA", "A", NULL};
static const char *const u_frequency[] = {"Hz", "kHz", "MHz", "GHz", NULL};
static const char *const u_lux[] = {"lx", NULL};
static const char *const u_irradiance[] = {"W/m" SQUARED, "BTU/(h\xe2\x8b\x85" "ft" SQUARED ")", NULL};
static const char *const u_gas[] = {"m" CUBED, "ft" CUBED, "CCF", "MCF", "L", NULL};
static const char *const u_water[] = {"m" CUBED, "ft" CUBED, "CCF", "MCF", "L", "gal", NULL};
static const char *const u_volume[] = {"m" CUBED, "ft" CUBED, "CCF", "MCF", "L", "mL", "gal", "fl. oz.", NULL};
static const char *const u_flow[] = {"m" CUBED "/h", "m" CUBED "/min", "m" CUBED "/s", "ft" CUBED "/min",
                                     "L/h",          "L/min",          "L/s",          "mL/s",
                                     "gal/h",        "gal/min",        NULL};
static const char *const u_distance[] = {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi", NULL};
static const char *const u_speed[] = {"Beaufort", "ft/s", "in/d", "in/h", "in/s", "km/h", "kn",
                                      "m/min",    "m/s",  "mm/d", "mm/h", "mm/s", "mph",  NULL};
static const char *const u_wind[] = {"Beaufort", "ft/s", "in/s", "km/h", "kn", "m/min", "m/s", "mm/s", "mph", NULL};
static const char *const u_weight[] = {"g", "kg", "mg", MICRO "g", "oz", "lb", "st", NULL};
static const char *const u_duration[] = {"d", "h", "min", "s", "ms", MICRO "s", NULL};
static const char *const u_signal[] = {"dB", "dBm", NULL};
static const char *const u_sound[] = {"dB", "dBA", NULL};
static const char *const u_precip[] = {"cm", "in", "mm", NULL};
static const char *const u_precip_rate[] = {"in/d", "in/h", "mm/d", "mm/h", NULL};
static const char *const u_abs_humidity[] = {"g/m" CUBED, "mg/m" CUBED, NULL};
static const char *const u_conductivity[] = {"S/cm", MICRO "S/cm", "mS/cm", NULL};
static const char *const u_degree[] = {DEG, NULL};
static const char *const u_area[] = {"m" SQUARED, "cm" SQUARED, "km" SQUARED, "mm" SQUARED, "in" SQUARED,
                                     "ft" SQUARED, "yd" SQUARED, "mi" SQUARED, "ac", "ha", NULL};
static const char *const u_data_size[] = {"bit", "kbit", "Mbit", "Gbit", "B",   "kB",  "MB",  "GB",  "TB",  "PB",  "EB",
                                          "ZB",  "YB",   "KiB",  "MiB",  "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB", NULL};
static const char *const u_data_rate[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s",  "kB/s",
                                          "MB/s",  "GB/s",   "KiB/s",  "MiB/s",  "GiB/s", NULL};
static const char *const u_glucose[] = {"mg/dL", "mmol/L", NULL};
static const char *const u_energy_distance[] = {"kWh/100km", "Wh/km", "mi/kWh", "km/kWh", NULL};

#define M SC_MEASUREMENT
static const struct ha_class classes[] = {
	{"absolute_humidity", u_abs_humidity, M, M},
	{"apparent_power", u_apparent, M, M},
	{"aqi", NULL, M, M},
	{"area", u_area, SC_ALL, M},
	{"atmospheric_pressure", u_pressure, M, M},
	{"battery", u_percent, M, M},
	{"blood_glucose_concentration", u_glucose, M, M},
	{"carbon_dioxide", u_ppm, M, M},
	{"carbon_monoxide", u_co, M, M},
	{"conductivity", u_conductivity, M, M},
	{"current", u_current, M, M},
	{"data_rate", u_data_rate, M, M},
	{"data_size", u_data_size, SC_ALL, M},
	{"date", NULL, 0, 0},
	{"distance", u_distance, SC_ALL, M},
	{"duration", u_duration, SC_ALL, M},
	{"energy", u_energy, SC_METER, SC_TOTAL_INCREASING},
	{"energy_distance", u_energy_distance, M, M},
	{"energy_storage", u_energy, M, M},
	{"enum", NULL, 0, 0},
	{"frequency", u_frequency, M, M},
	{"gas", u_gas, SC_METER, SC_TOTAL_INCREASING},
	{"humidity", u_percent, M, M},
	{"illuminance", u_lux, M, M},
	{"irradiance", u_irradiance, M, M},
	{"moisture", u_percent, M, M},
	{"monetary", NULL, SC_TOTAL, SC_TOTAL, .any_unit = true},
	{"nitrogen_dioxide", u_mass_conc, M, M},
	{"nitrogen_monoxide", u_mass_conc, M, M},
	{"nitrous_oxide", u_mass_conc, M, M},
	{"ozone", u_mass_conc, M, M},
	{"ph", NULL, M, M},
	{"pm1", u_mass_conc, M, M},
	{"pm10", u_mass_conc, M, M},
	{"pm25", u_mass_conc, M, M},
	{"pm4", u_mass_conc, M, M},
	{"power", u_power, M, M},
	{"power_factor", u_percent, M, M, .unit_optional = true},
	{"precipitation", u_precip, SC_ALL, M},
	{"precipitation_intensity", u_precip_rate, M, M},
	{"pressure", u_pressure, M, M},
	{"reactive_energy", u_reactive_energy, SC_METER, SC_TOTAL_INCREASING},
	{"reactive_power", u_reactive, M, M},
	{"signal_strength", u_signal, M, M},
	{"sound_pressure", u_sound, M, M},
	{"speed", u_speed, M, M},
	{"sulphur_dioxide", u_mass_conc, M, M},
	{"temperature", u_temperature, M, M},
	{"temperature_delta", u_temperature, M, M},
	{"timestamp", NULL, 0, 0},
	{"volatile_organic_compounds", u_voc, M, M},
	{"volatile_organic_compounds_parts", u_parts, M, M},
	{"voltage", u_voltage, M, M},
	{"volume", u_volume, SC_METER, SC_TOTAL_INCREASING},
	{"volume_flow_rate", u_flow, M, M},
	{"volume_storage", u_volume, M, M},
	{"water", u_water, SC_METER, SC_TOTAL_INCREASING},
	{"weight", u_weight, SC_ALL, M},
	{"wind_direction", u_degree, SC_ANGLE, SC_ANGLE},
	{"wind_speed", u_wind, M, M},
};
#undef M

/* Equal, the micro sign and the Greek mu taken for the same letter. */
static bool unit_eq(const char *a, const char *b)
{
	while (*a && *b) {
		bool ma = strncmp(a, MICRO, 2) == 0 || strncmp(a, "\xce\xbc", 2) == 0;
		bool mb = strncmp(b, MICRO, 2) == 0 || strncmp(b, "\xce\xbc", 2) == 0;

		if (ma || mb) {
			if (!(ma && mb))
				return false;
			a += 2;
			b += 2;
			continue;
		}
		if (*a++ != *b++)
			return false;
	}
	return *a == *b;
}

static bool in_units(const char *const *list, const char *unit)
{
	for (; list && *list; list++)
		if (unit_eq(*list, unit))
			return true;
	return false;
}

static const struct ha_class *find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strcmp(classes[i].name, name) == 0)
			return &classes[i];
	return NULL;
}

/* ASCII spellings met in configurations and device documentation, and the symbol Home Assistant expects. */
static const struct {
	const char *ascii, *symbol;
} spellings[] = {
	{"m3", "m" CUBED},         {"M3", "m" CUBED},          {"m^3", "m" CUBED},
	{"ug/m3", MICRO "g/m" CUBED}, {"ug/m^3", MICRO "g/m" CUBED}, {"mg/m3", "mg/m" CUBED},
	{"g/m3", "g/m" CUBED},     {"m3/h", "m" CUBED "/h"},  {"ft3", "ft" CUBED},
	{"m2", "m" SQUARED},       {"W/m2", "W/m" SQUARED},   {"degC", DEG "C"},
	{"deg C", DEG "C"},        {"degF", DEG "F"},         {"deg F", DEG "F"},
	{"l", "L"},                {"l/min", "L/min"},
	{"l/h", "L/h"},            {"uS/cm", MICRO "S/cm"},   {"uV", MICRO "V"},
	{"lux", "lx"},             {"kwh", "kWh"},            {"KWh", "kWh"},
	{"kw", "kW"},              {"KW", "kW"},
};

const char *ha_unit_symbol(const char *unit)
{
	if (!unit)
		return NULL;
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++)
		if (strcmp(spellings[i].ascii, unit) == 0)
			return spellings[i].symbol;
	return unit;
}

bool ha_device_class_known(const char *device_class)
{
	return find(device_class) != NULL;
}

bool ha_unit_allowed(const char *device_class, const char *unit)
{
	const struct ha_class *c = find(device_class);

	if (!c)
		return false;
	if (!unit || !*unit)
		return !c->units || c->unit_optional;
	return c->any_unit || in_units(c->units, unit);
}

/* ---- inference --------------------------------------------------------------------------------- */

struct hint_rule {
	const char *device_class;
	const char *const *hints; /* a field name saying so; NULL: the unit suffices */
};

static const char *const h_humidity[] = {"hum", "rh", "h", NULL};
static const char *const h_battery[] = {"batt", NULL};
static const char *const h_moisture[] = {"moist", "soil", NULL};
static const char *const h_pm10[] = {"pm10", NULL};
static const char *const h_pm25[] = {"pm25", "pm2_5", "pm2.5", "pm2-5", NULL};
static const char *const h_pm1[] = {"pm1", NULL};
static const char *const h_co2[] = {"co2", NULL};
static const char *const h_gas[] = {"gas", NULL};
static const char *const h_water[] = {"water", NULL};
static const char *const h_wind[] = {"wind", NULL};
static const char *const h_signal[] = {"rssi", "signal", NULL};

/* Tried in order, the first whose class accepts the unit and whose hints (if any) the field name matches. */
static const struct hint_rule rules[] = {
	{"temperature", NULL},
	{"humidity", h_humidity},
	{"absolute_humidity", h_humidity},
	{"battery", h_battery},
	{"moisture", h_moisture},
	{"pressure", NULL},
	{"pm10", h_pm10}, /* before pm1 */
	{"pm25", h_pm25},
	{"pm1", h_pm1},
	{"carbon_dioxide", h_co2},
	{"energy", NULL},
	{"power", NULL},
	{"apparent_power", NULL},
	{"reactive_power", NULL},
	{"reactive_energy", NULL},
	{"voltage", NULL},
	{"current", NULL},
	{"frequency", NULL},
	{"illuminance", NULL},
	{"irradiance", NULL},
	{"gas", h_gas},
	{"water", h_water},
	{"volume_flow_rate", NULL},
	{"wind_speed", h_wind},
	{"speed", NULL},
	{"signal_strength", h_signal},
};

/*
 * Does FIELD name what HINTS say? Hints of three letters or more may appear
 * anywhere ("outside_humidity", "co2_ppm"); shorter ones must be the whole
 * name ("h", "rh").
 */
static bool field_hints(const char *field, const char *const *hints)
{
	char low[128];
	size_t i;

	for (i = 0; field[i] && i + 1 < sizeof(low); i++)
		low[i] = (field[i] >= 'A' && field[i] <= 'Z') ? (char)(field[i] - 'A' + 'a') : field[i];
	low[i] = '\0';
	for (; *hints; hints++) {
		if (strlen(*hints) >= 3 ? strstr(low, *hints) != NULL : strcmp(low, *hints) == 0)
			return true;
	}
	return false;
}

const char *ha_infer_device_class(const char *field, const char *unit)
{
	if (!unit || !*unit)
		return NULL;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct hint_rule *r = &rules[i];

		if (!ha_unit_allowed(r->device_class, unit))
			continue;
		if (r->hints && !(field && field_hints(field, r->hints)))
			continue;
		return r->device_class;
	}
	return NULL;
}

/* ---- state classes ----------------------------------------------------------------------------- */

static const char *state_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (bit == 1u << i)
			return state_names[i];
	return NULL;
}

const char *ha_default_state_class(const char *device_class, const char *unit)
{
	const struct ha_class *c = find(device_class);

	if (c)
		return state_name(c->preferred);
	return unit && *unit ? "measurement" : NULL;
}

bool ha_state_class_allowed(const char *device_class, const char *state)
{
	const struct ha_class *c = find(device_class);
	unsigned bit = 0;

	if (!state)
		return true;
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(state_names[i], state) == 0)
			bit = 1u << i;
	if (!bit)
		return false;
	return c ? (c->states & bit) != 0 : bit != SC_ANGLE;
}

/* ---- display precision ------------------------------------------------------------------------- */

/* Decimals that show what such readings resolve, no more (a sensorgate choice, not Home Assistant's). */
static const struct {
	const char *unit;
	int decimals;
} precisions[] = {
	{DEG "C", 1}, {DEG "F", 1},       {"K", 1},     {"%", 1},     {"hPa", 1},  {"Pa", 0},  {"kPa", 2},
	{"mbar", 1},  {"bar", 3},         {"ppm", 0},   {"ppb", 0},   {"lx", 0},   {"Wh", 0},  {"kWh", 3},
	{"MWh", 3},   {"MJ", 2},          {"GJ", 3},    {"W", 0},     {"kW", 3},   {"V", 1},   {"mV", 0},
	{"A", 2},     {"mA", 0},          {"Hz", 2},    {"VA", 0},    {"var", 0},  {"L", 0},   {"L/min", 1},
	{"m" CUBED, 3}, {"m" CUBED "/h", 3}, {MICRO "g/m" CUBED, 0}, {"dBm", 0}, {"km/h", 1}, {"m/s", 1},
};

int ha_display_precision(const char *unit)
{
	if (!unit)
		return -1;
	for (size_t i = 0; i < sizeof(precisions) / sizeof(precisions[0]); i++)
		if (unit_eq(precisions[i].unit, unit))
			return precisions[i].decimals;
	return -1;
}
