/* SPDX-License-Identifier: MIT */
/*
 * dsmr.c — the `dsmr` driver: smart electricity meters, P1 port (NL/BE/LU).
 *
 * Standards: DSMR 5.0.2 P1 Companion Standard (§6.2 transfer, §6.4 CRC, §6.12 example,
 * §7 data objects), DSMR 4.2 P1 (same format), DSMR 2.2/3.0 (no CRC, different gas
 * object), e-MUCS P1 1.7.1 (Belgium: same format, extra objects).
 *
 * Telegram (§6.2):
 *
 *   /ISk5\2MT382-1000<CR><LF>                  '/' XXX 5 identification     header line
 *   <CR><LF>                                                                 empty line
 *   1-3:0.2.8(50)<CR><LF>                       OBIS A-B:C.D.E (value)        data lines
 *   1-0:1.8.1(123456.789*kWh)<CR><LF>           value '*' unit
 *   0-1:24.2.1(101209112500W)(12785.123*m3)     (timestamp)(value*unit)
 *   ...
 *   !EF2F<CR><LF>                               '!' CRC: 4 hex digits, none before DSMR 4
 *
 *   CRC (§6.4): CRC-16/ARC — polynomial x^16+x^15+x^2+1 (0xA001 reflected), initial 0,
 *   no final XOR — over every byte from '/' through '!' inclusive, printed as 4 upper-case
 *   hex digits (lower case accepted).
 *   TST (§7, "TST" format): YYMMDDhhmmssX, X = 'W' winter (CET, +01:00) or 'S' summer
 *   (CEST, +02:00). DSMR 2.2/3 timestamps have no X: their offset is unknown.
 *   DSMR 2.2/3 gas (0-n:24.3.0) puts its value on the next line:
 *     0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)<CR><LF>(00000.000)<CR><LF>
 *
 * Objects read (anything else is skipped):
 *   1-3:0.2.8 / 0-0:96.1.4 (e-MUCS)   version            string, e.g. "50"
 *   0-0:1.0.0                         timestamp          string, ISO 8601 with offset
 *   1-0:1.8.1 / 1.8.2                 energy_delivered_tariff1/2    kWh
 *   1-0:2.8.1 / 2.8.2                 energy_returned_tariff1/2     kWh
 *   0-0:96.14.0                       tariff             1 or 2
 *   1-0:1.7.0 / 2.7.0                 power_delivered / power_returned     kW
 *   0-0:96.7.21 / 96.7.9              power_failures / long_power_failures
 *   1-0:32.7.0 52.7.0 72.7.0          voltage_l1 .. l3   V
 *   1-0:31.7.0 51.7.0 71.7.0          current_l1 .. l3   A
 *   1-0:21.7.0 41.7.0 61.7.0          power_delivered_l1 .. l3   kW
 *   1-0:22.7.0 42.7.0 62.7.0          power_returned_l1 .. l3    kW
 *   1-0:1.4.0                         average_demand (e-MUCS current quarter-hour peak)  kW
 *   1-0:1.6.0                         max_demand_month (e-MUCS, with its own timestamp)  kW
 *   0-n:24.1.0                        M-Bus channel n device type: 3 gas, 7 water, 4/12 heat
 *   0-n:24.2.1 / 24.2.3 / 24.3.0      M-Bus channel n meter reading, with its timestamp
 *
 * M-Bus channels (n = 1..4) become gas_delivered, water_delivered or heat_delivered by
 * their device type (by their unit when the type is absent: m3 gas, GJ heat); the second
 * meter of a kind (in channel order) gets "_2", the third "_3". A channel whose value has
 * no unit or whose timestamp is 1970-01-01 (700101...) is vacant and skipped. The reading's
 * timestamp_us is the meter's own TST (the gas meter reports hourly or every 5 minutes).
 * Every other reading has timestamp_us 0 (time of reception). Units are the telegram's
 * own ("kWh", "m3"); the table's unit is used only when the telegram gives none.
 *
 * Serial settings: DSMR 4/5 and e-MUCS: 115200 8N1 (the default here). DSMR 2.2/3:
 * 9600 7E1, which is the default framing at `baud = 9600` (dsmr_framing()): the port
 * itself is set to 7 data bits and even parity, so the UART checks the parity and drops a
 * character that fails it. DSMR 2.2 has no CRC, so such telegrams are checked for syntax
 * and sane values. A byte with bit 7 set is not P1 text (7-bit ASCII) and is treated as such.
 *
 * Framing: bytes before a '/' are skipped (whitespace silently, anything else counted
 * once as SG_FAIL_GARBAGE per gap: a capture that starts mid-telegram). A '/' at the start
 * of a line inside a telegram starts a new one and counts the cut one as SG_FAIL_SYNTAX.
 * A telegram longer than 4 KiB is SG_FAIL_OVERLONG. A bad CRC is SG_FAIL_CHECKSUM: no
 * reading of that telegram is emitted. A telegram is parsed completely before its first
 * reading is emitted; a malformed known object fails it as SG_FAIL_SYNTAX, an impossible
 * value or timestamp as SG_FAIL_INSANE.
 *
 * Ownership: no options; struct dsmr_state (telegram buffer and parse scratch) lives in
 * dev->state, owned by the gateway. Nothing is allocated per telegram, nothing logged.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "driver.h"
#include "drivers.h"

#define DSMR_MAX_TELEGRAM 4096  /* bytes from '/' through '!'; DSMR 5.0.2 telegrams are ~1 KiB */
#define DSMR_CRC_DIGITS 4       /* §6.4: CRC16 as 4 hex characters */
#define DSMR_MAX_GROUPS 32      /* "(...)" groups kept per object; 1-0:99.97.0 with 10 events has 22 */
#define DSMR_MAX_ITEMS 64       /* readings from one telegram (a full DSMR 5 telegram gives ~30) */
#define DSMR_MBUS_CHANNELS 4    /* §7: M-Bus channels 1..4 */
#define DSMR_MAX_NUMBER 24      /* characters of a numeric value: F9(3,3) needs 10 */
#define DSMR_MAX_UNIT 15        /* characters of a unit after '*' */
#define DSMR_TZ_WINTER (1 * 3600) /* 'W': CET, UTC+1 */
#define DSMR_TZ_SUMMER (2 * 3600) /* 'S': CEST, UTC+2 */
#define DSMR_MBUS_GAS 3         /* M-Bus device types (EN 13757-3 table 3), as DSMR prints them */
#define DSMR_MBUS_HEAT 4
#define DSMR_MBUS_WATER 7
#define DSMR_MBUS_HEAT_INLET 12

enum dsmr_phase {
	DSMR_HUNT = 0, /* looking for '/' */
	DSMR_BODY,     /* inside a telegram, before '!' */
	DSMR_CRC,      /* after '!': reading the CRC digits */
};

/* A field of the table below, or one of the M-Bus kinds. */
enum dsmr_kind {
	DSMR_NUMBER = 0,  /* last group is value[*unit] */
	DSMR_NUMBER_TST,  /* (TST)(value*unit): the reading gets the timestamp */
	DSMR_STRING,      /* the group as is */
	DSMR_TIMESTAMP,   /* TST rendered as ISO 8601 */
	DSMR_MBUS_TYPE,   /* 0-n:24.1.0 */
	DSMR_MBUS_VALUE,  /* 0-n:24.2.1, 24.2.3: (TST)(value*unit) */
	DSMR_MBUS_OLD,    /* 0-n:24.3.0: (TST)(..)(..)(..)(obis)(unit) then (value) */
};

struct dsmr_object {
	int a, b, c, d, e;     /* OBIS A-B:C.D.E; b < 0 = any M-Bus channel 1..4 */
	enum dsmr_kind kind;
	const char *field;
	const char *unit;      /* when the telegram gives none */
	double max;            /* largest sane value */
};

#define DSMR_MAX_ENERGY 1e9  /* kWh: F9(3,3) prints at most 999999.999 */
#define DSMR_MAX_POWER 1e4   /* kW: 10 MW, far above any P1 meter (F5(3,3): 99.999) */
#define DSMR_MAX_VOLTAGE 1000.0 /* V: P1 meters are low-voltage (≤ 1000 V AC by definition) */
#define DSMR_MAX_CURRENT 1e4 /* A */
#define DSMR_MAX_COUNT 1e9   /* counters F5(0,0): 99999 */

static const struct dsmr_object dsmr_objects[] = {
	{1, 3, 0, 2, 8, DSMR_STRING, "version", NULL, 0},
	{0, 0, 96, 1, 4, DSMR_STRING, "version", NULL, 0}, /* e-MUCS 1.7.1 §6 "version information" */
	{0, 0, 1, 0, 0, DSMR_TIMESTAMP, "timestamp", NULL, 0},
	{1, 0, 1, 8, 1, DSMR_NUMBER, "energy_delivered_tariff1", "kWh", DSMR_MAX_ENERGY},
	{1, 0, 1, 8, 2, DSMR_NUMBER, "energy_delivered_tariff2", "kWh", DSMR_MAX_ENERGY},
	{1, 0, 2, 8, 1, DSMR_NUMBER, "energy_returned_tariff1", "kWh", DSMR_MAX_ENERGY},
	{1, 0, 2, 8, 2, DSMR_NUMBER, "energy_returned_tariff2", "kWh", DSMR_MAX_ENERGY},
	{0, 0, 96, 14, 0, DSMR_NUMBER, "tariff", NULL, 9999},
	{1, 0, 1, 7, 0, DSMR_NUMBER, "power_delivered", "kW", DSMR_MAX_POWER},
	{1, 0, 2, 7, 0, DSMR_NUMBER, "power_returned", "kW", DSMR_MAX_POWER},
	{0, 0, 96, 7, 21, DSMR_NUMBER, "power_failures", NULL, DSMR_MAX_COUNT},
	{0, 0, 96, 7, 9, DSMR_NUMBER, "long_power_failures", NULL, DSMR_MAX_COUNT},
	{1, 0, 32, 7, 0, DSMR_NUMBER, "voltage_l1", "V", DSMR_MAX_VOLTAGE},
	{1, 0, 52, 7, 0, DSMR_NUMBER, "voltage_l2", "V", DSMR_MAX_VOLTAGE},
	{1, 0, 72, 7, 0, DSMR_NUMBER, "voltage_l3", "V", DSMR_MAX_VOLTAGE},
	{1, 0, 31, 7, 0, DSMR_NUMBER, "current_l1", "A", DSMR_MAX_CURRENT},
	{1, 0, 51, 7, 0, DSMR_NUMBER, "current_l2", "A", DSMR_MAX_CURRENT},
	{1, 0, 71, 7, 0, DSMR_NUMBER, "current_l3", "A", DSMR_MAX_CURRENT},
	{1, 0, 21, 7, 0, DSMR_NUMBER, "power_delivered_l1", "kW", DSMR_MAX_POWER},
	{1, 0, 41, 7, 0, DSMR_NUMBER, "power_delivered_l2", "kW", DSMR_MAX_POWER},
	{1, 0, 61, 7, 0, DSMR_NUMBER, "power_delivered_l3", "kW", DSMR_MAX_POWER},
	{1, 0, 22, 7, 0, DSMR_NUMBER, "power_returned_l1", "kW", DSMR_MAX_POWER},
	{1, 0, 42, 7, 0, DSMR_NUMBER, "power_returned_l2", "kW", DSMR_MAX_POWER},
	{1, 0, 62, 7, 0, DSMR_NUMBER, "power_returned_l3", "kW", DSMR_MAX_POWER},
	{1, 0, 1, 4, 0, DSMR_NUMBER, "average_demand", "kW", DSMR_MAX_POWER},
	{1, 0, 1, 6, 0, DSMR_NUMBER_TST, "max_demand_month", "kW", DSMR_MAX_POWER},
	{0, -1, 24, 1, 0, DSMR_MBUS_TYPE, NULL, NULL, 0},
	{0, -1, 24, 2, 1, DSMR_MBUS_VALUE, NULL, NULL, DSMR_MAX_ENERGY},
	{0, -1, 24, 2, 3, DSMR_MBUS_VALUE, NULL, NULL, DSMR_MAX_ENERGY},
	{0, -1, 24, 3, 0, DSMR_MBUS_OLD, NULL, NULL, DSMR_MAX_ENERGY},
};

#define DSMR_N_OBJECTS (sizeof(dsmr_objects) / sizeof(dsmr_objects[0]))

enum dsmr_mbus_kind {
	DSMR_MBUS_KIND_GAS = 0,
	DSMR_MBUS_KIND_WATER,
	DSMR_MBUS_KIND_HEAT,
	DSMR_MBUS_KINDS,
};

/* [kind][n-th meter of that kind] */
static const char *const dsmr_mbus_names[DSMR_MBUS_KINDS][DSMR_MBUS_CHANNELS] = {
	{"gas_delivered", "gas_delivered_2", "gas_delivered_3", "gas_delivered_4"},
	{"water_delivered", "water_delivered_2", "water_delivered_3", "water_delivered_4"},
	{"heat_delivered", "heat_delivered_2", "heat_delivered_3", "heat_delivered_4"},
};
static const char *const dsmr_mbus_units[DSMR_MBUS_KINDS] = {"m3", "m3", "GJ"};

/*
 * The unit as published: telegrams spell cubic metres "m3" (DSMR 5.0.2 §6.12,
 * e-MUCS), readers and Home Assistant expect the symbol "m³" (its gas and water
 * device classes refuse "m3"). The other units of a telegram are already SI
 * symbols (kWh, kW, V, A, GJ).
 */
static const char *dsmr_unit_symbol(const char *unit)
{
	return unit && strcmp(unit, "m3") == 0 ? "m\xc2\xb3" : unit;
}

/* One reading collected from a telegram, emitted once the whole telegram parsed. */
struct dsmr_item {
	const char *field;
	const char *unit;
	const char *string;   /* DSMR_STRING / DSMR_TIMESTAMP, else NULL */
	double number;
	int64_t timestamp_us;
};

struct dsmr_mbus {
	int type;             /* device type, -1 unknown */
	bool has_value;
	bool vacant;
	double value;
	const char *unit;
	int64_t timestamp_us;
};

/* The object being parsed: its OBIS code and the groups seen so far (continuation lines too). */
struct dsmr_current {
	bool open;
	int a, b, c, d, e;
	size_t n_groups;
	char *groups[DSMR_MAX_GROUPS];
};

struct dsmr_state {
	enum dsmr_phase phase;
	bool line_start;              /* the next byte starts a line (BODY) */
	bool noise_counted;           /* HUNT: garbage already counted for this gap */
	size_t len;                   /* bytes in buf */
	size_t crc_len;
	char crc[DSMR_CRC_DIGITS + 1];
	char buf[DSMR_MAX_TELEGRAM + 2]; /* '/' .. '!' and a NUL */

	/* parse scratch, valid during one dsmr_process() */
	struct dsmr_current cur;
	size_t n_items;
	struct dsmr_item items[DSMR_MAX_ITEMS];
	struct dsmr_mbus mbus[DSMR_MBUS_CHANNELS + 1]; /* [1..4] */
	char timestamp[96];           /* ISO 8601 of 0-0:1.0.0 (room for any int, to please -Wformat-truncation) */
};

enum dsmr_result {
	DSMR_OK = 0,
	DSMR_SYNTAX,
	DSMR_INSANE,
	DSMR_FULL,
};

static int dsmr_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ---- values ----------------------------------------------------------------------------------- */

static bool dsmr_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t dsmr_days(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool dsmr_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * A TST "YYMMDDhhmmss[WS]". Fills *ret_us (UTC µs, 0 when there is no DST letter) and,
 * if ISO is not NULL, an ISO 8601 text. *ret_epoch is set when the date is 1970-01-01
 * (an M-Bus channel that never reported).
 */
static enum dsmr_result dsmr_tst(const char *s, int64_t *ret_us, char *iso, size_t iso_len, bool *ret_epoch)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int v[6];
	size_t n = strlen(s);
	int offset;

	if (n != 12 && n != 13)
		return DSMR_SYNTAX;
	for (int i = 0; i < 6; i++) {
		if (!dsmr_digit(s[2 * i]) || !dsmr_digit(s[2 * i + 1]))
			return DSMR_SYNTAX;
		v[i] = (s[2 * i] - '0') * 10 + (s[2 * i + 1] - '0');
	}
	if (n == 13 && s[12] != 'W' && s[12] != 'S')
		return DSMR_SYNTAX;
	v[0] += 2000;
	if (ret_epoch)
		*ret_epoch = v[0] == 2070 && v[1] == 1 && v[2] == 1;
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 ||
	    v[2] > mdays[v[1] - 1] + (v[1] == 2 && dsmr_leap(v[0])) || v[3] > 23 || v[4] > 59 || v[5] > 59) {
		/* 700101...: a vacant M-Bus channel prints the epoch; not a date to check */
		if (ret_epoch && *ret_epoch)
			return DSMR_OK;
		return DSMR_INSANE;
	}
	offset = n == 13 ? (s[12] == 'S' ? DSMR_TZ_SUMMER : DSMR_TZ_WINTER) : 0;
	*ret_us = n == 13 ? ((dsmr_days(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5]) - offset) *
				    INT64_C(1000000)
			  : 0;
	if (iso) {
		if (n == 13)
			snprintf(iso, iso_len, "%04d-%02d-%02dT%02d:%02d:%02d+%02d:00", v[0], v[1], v[2], v[3], v[4],
				 v[5], offset / 3600);
		else
			snprintf(iso, iso_len, "%04d-%02d-%02dT%02d:%02d:%02d", v[0], v[1], v[2], v[3], v[4], v[5]);
	}
	return DSMR_OK;
}

/*
 * A value "digits[.digits][*unit]" in group S (modified in place: the '*' becomes NUL).
 * *ret_unit is NULL when there is no unit. An empty group: DSMR_OK with *ret_empty set.
 */
static enum dsmr_result dsmr_value(char *s, double *ret, const char **ret_unit, bool *ret_empty)
{
	char *star = strchr(s, '*');
	size_t n = star ? (size_t)(star - s) : strlen(s);
	bool dot = false, digits = false;

	*ret_empty = n == 0 && !star;
	*ret_unit = NULL;
	if (*ret_empty)
		return DSMR_OK;
	if (n == 0 || n > DSMR_MAX_NUMBER)
		return DSMR_SYNTAX;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && !dot)
			dot = true;
		else if (dsmr_digit(s[i]))
			digits = true;
		else
			return DSMR_SYNTAX;
	}
	if (!digits)
		return DSMR_SYNTAX;
	if (star) {
		size_t ul = strlen(star + 1);

		if (ul == 0 || ul > DSMR_MAX_UNIT)
			return DSMR_SYNTAX;
		for (size_t i = 1; i <= ul; i++)
			if ((unsigned char)star[i] <= ' ' || star[i] == '(' || star[i] == ')')
				return DSMR_SYNTAX;
		*star = '\0';
		*ret_unit = star + 1;
	}
	*ret = strtod(s, NULL);
	return DSMR_OK;
}

/* ---- objects ---------------------------------------------------------------------------------- */

static enum dsmr_result dsmr_add(struct dsmr_state *st, const char *field, double number, const char *string,
				 const char *unit, int64_t ts)
{
	if (st->n_items == DSMR_MAX_ITEMS)
		return DSMR_FULL;
	st->items[st->n_items++] = (struct dsmr_item){
		.field = field, .unit = unit, .string = string, .number = number, .timestamp_us = ts};
	return DSMR_OK;
}

static const struct dsmr_object *dsmr_lookup(const struct dsmr_current *c)
{
	for (size_t i = 0; i < DSMR_N_OBJECTS; i++) {
		const struct dsmr_object *o = &dsmr_objects[i];

		if (o->a == c->a && o->c == c->c && o->d == c->d && o->e == c->e &&
		    (o->b == c->b || (o->b < 0 && c->b >= 1 && c->b <= DSMR_MBUS_CHANNELS)))
			return o;
	}
	return NULL;
}

/* Number in group G with the object's limits: DSMR_OK and *ret_has false when empty. */
static enum dsmr_result dsmr_number(const struct dsmr_object *o, char *g, double *ret, const char **ret_unit,
				    bool *ret_has)
{
	bool empty;
	enum dsmr_result r = dsmr_value(g, ret, ret_unit, &empty);

	*ret_has = r == DSMR_OK && !empty;
	if (r == DSMR_OK && *ret_has && o->max > 0 && *ret > o->max)
		return DSMR_INSANE;
	return r;
}

/* The object in st->cur is complete: turn it into items or M-Bus channel data. */
static enum dsmr_result dsmr_finish_object(struct dsmr_state *st)
{
	struct dsmr_current *c = &st->cur;
	const struct dsmr_object *o;
	struct dsmr_mbus *mb;
	enum dsmr_result r;
	const char *unit;
	int64_t ts = 0;
	double v = 0;
	bool has, epoch = false;

	if (!c->open)
		return DSMR_OK;
	c->open = false;
	o = dsmr_lookup(c);
	if (!o)
		return DSMR_OK;
	if (c->n_groups == 0)
		return DSMR_SYNTAX;
	mb = &st->mbus[c->b >= 1 && c->b <= DSMR_MBUS_CHANNELS ? c->b : 0];

	switch (o->kind) {
	case DSMR_STRING:
		if (c->n_groups != 1)
			return DSMR_SYNTAX;
		if (!c->groups[0][0])
			return DSMR_OK;
		return dsmr_add(st, o->field, 0, c->groups[0], NULL, 0);
	case DSMR_TIMESTAMP:
		if (c->n_groups != 1)
			return DSMR_SYNTAX;
		r = dsmr_tst(c->groups[0], &ts, st->timestamp, sizeof(st->timestamp), NULL);
		if (r != DSMR_OK)
			return r;
		return dsmr_add(st, o->field, 0, st->timestamp, NULL, 0);
	case DSMR_NUMBER:
		r = dsmr_number(o, c->groups[c->n_groups - 1], &v, &unit, &has);
		if (r != DSMR_OK || !has)
			return r;
		return dsmr_add(st, o->field, v, NULL, unit ? unit : o->unit, 0);
	case DSMR_NUMBER_TST:
		if (c->n_groups != 2)
			return DSMR_SYNTAX;
		if ((r = dsmr_tst(c->groups[0], &ts, NULL, 0, NULL)) != DSMR_OK)
			return r;
		r = dsmr_number(o, c->groups[1], &v, &unit, &has);
		if (r != DSMR_OK || !has)
			return r;
		return dsmr_add(st, o->field, v, NULL, unit ? unit : o->unit, ts);
	case DSMR_MBUS_TYPE:
		r = dsmr_number(o, c->groups[0], &v, &unit, &has);
		if (r != DSMR_OK || !has)
			return r;
		if (v > 255 || v != (int)v) /* range first: the cast of a larger value is undefined */
			return DSMR_INSANE;
		mb->type = (int)v;
		return DSMR_OK;
	case DSMR_MBUS_VALUE:
	case DSMR_MBUS_OLD:
		if (o->kind == DSMR_MBUS_VALUE && c->n_groups != 2)
			return DSMR_SYNTAX;
		if (o->kind == DSMR_MBUS_OLD && c->n_groups != 7)
			return DSMR_SYNTAX;
		if ((r = dsmr_tst(c->groups[0], &ts, NULL, 0, &epoch)) != DSMR_OK)
			return r;
		r = dsmr_number(o, c->groups[c->n_groups - 1], &v, &unit, &has);
		if (r != DSMR_OK)
			return r;
		if (o->kind == DSMR_MBUS_OLD) {
			/* (TST)(status)(period)(n values)(obis)(unit) then (value): unit in group 6 */
			if (unit)
				return DSMR_SYNTAX;
			unit = c->groups[5][0] ? c->groups[5] : NULL;
			if (unit && strlen(unit) > DSMR_MAX_UNIT) /* as for "value*unit" (dsmr_value) */
				return DSMR_SYNTAX;
			for (const char *u = unit; u && *u; u++)
				if ((unsigned char)*u <= ' ')
					return DSMR_SYNTAX;
		}
		mb->has_value = has;
		mb->vacant = !has || !unit || epoch;
		mb->value = v;
		mb->unit = unit;
		mb->timestamp_us = ts;
		return DSMR_OK;
	}
	return DSMR_OK;
}

/* Parse "A-B:C.D.E" at *p; advance past it. */
static bool dsmr_obis(char **p, struct dsmr_current *c)
{
	int *dst[5] = {&c->a, &c->b, &c->c, &c->d, &c->e};
	static const char seps[5] = {'-', ':', '.', '.', '('};
	char *s = *p;

	for (int i = 0; i < 5; i++) {
		int v = 0, n = 0;

		while (dsmr_digit(*s) && n < 3)
			v = v * 10 + (*s++ - '0'), n++;
		if (n == 0 || *s != seps[i])
			return false;
		*dst[i] = v;
		if (i < 4)
			s++;
	}
	*p = s;
	return true;
}

/* Groups "(...)(...)" from P to the end of the line, appended to st->cur. */
static enum dsmr_result dsmr_groups(struct dsmr_current *c, char *p)
{
	if (*p != '(')
		return DSMR_SYNTAX;
	while (*p == '(') {
		char *close = strchr(p + 1, ')');

		if (!close || memchr(p + 1, '(', (size_t)(close - p - 1)))
			return DSMR_SYNTAX;
		*close = '\0';
		if (c->n_groups == DSMR_MAX_GROUPS)
			return DSMR_SYNTAX;
		c->groups[c->n_groups++] = p + 1;
		p = close + 1;
	}
	return *p ? DSMR_SYNTAX : DSMR_OK;
}

static enum dsmr_result dsmr_line(struct dsmr_state *st, char *line)
{
	enum dsmr_result r;

	if (!*line)
		return DSMR_OK;
	if (*line == '(') {
		/* DSMR 2.2/3 continuation: more groups of the object above */
		if (!st->cur.open)
			return DSMR_SYNTAX;
		return dsmr_groups(&st->cur, line);
	}
	if ((r = dsmr_finish_object(st)) != DSMR_OK)
		return r;
	st->cur = (struct dsmr_current){.open = true};
	if (!dsmr_obis(&line, &st->cur))
		return DSMR_SYNTAX;
	return dsmr_groups(&st->cur, line);
}

/* Names the M-Bus channels and adds their items, in channel order. */
static enum dsmr_result dsmr_mbus_items(struct dsmr_state *st)
{
	int seen[DSMR_MBUS_KINDS] = {0};
	enum dsmr_result r;

	for (int n = 1; n <= DSMR_MBUS_CHANNELS; n++) {
		const struct dsmr_mbus *mb = &st->mbus[n];
		int kind;

		if (!mb->has_value || mb->vacant)
			continue;
		switch (mb->type) {
		case DSMR_MBUS_GAS:
			kind = DSMR_MBUS_KIND_GAS;
			break;
		case DSMR_MBUS_WATER:
			kind = DSMR_MBUS_KIND_WATER;
			break;
		case DSMR_MBUS_HEAT:
		case DSMR_MBUS_HEAT_INLET:
			kind = DSMR_MBUS_KIND_HEAT;
			break;
		case -1: /* no 24.1.0 line: go by the unit */
			if (strcmp(mb->unit, "m3") == 0)
				kind = DSMR_MBUS_KIND_GAS;
			else if (strcmp(mb->unit, "GJ") == 0)
				kind = DSMR_MBUS_KIND_HEAT;
			else
				continue;
			break;
		default:
			continue; /* electricity sub-meters, cold water ...: not read */
		}
		r = dsmr_add(st, dsmr_mbus_names[kind][seen[kind]++], mb->value, NULL,
			     mb->unit ? mb->unit : dsmr_mbus_units[kind], mb->timestamp_us);
		if (r != DSMR_OK)
			return r;
	}
	return DSMR_OK;
}

/* Parse the telegram in st->buf[0..st->len) (CRC already checked) into st->items. */
static enum dsmr_result dsmr_parse(struct dsmr_state *st)
{
	char *p = st->buf, *end = st->buf + st->len - 1; /* the '!' */
	enum dsmr_result r;

	st->n_items = 0;
	st->cur.open = false;
	if (memchr(st->buf, '\0', st->len))
		return DSMR_SYNTAX; /* text format: a NUL is line noise the missing CRC let through */
	for (int n = 0; n <= DSMR_MBUS_CHANNELS; n++)
		st->mbus[n] = (struct dsmr_mbus){.type = -1};
	*end = '\0';

	/* skip the header line */
	p += strcspn(p, "\r\n");
	while (p < end) {
		char *line;

		while (*p == '\r' || *p == '\n')
			p++;
		line = p;
		p += strcspn(p, "\r\n");
		if (*p)
			*p++ = '\0';
		if ((r = dsmr_line(st, line)) != DSMR_OK)
			return r;
	}
	if ((r = dsmr_finish_object(st)) != DSMR_OK)
		return r;
	return dsmr_mbus_items(st);
}

static void dsmr_process(struct sg_dev *dev, struct dsmr_state *st)
{
	enum dsmr_result r;

	if (st->crc_len == DSMR_CRC_DIGITS) {
		unsigned want = 0;

		for (size_t i = 0; i < DSMR_CRC_DIGITS; i++)
			want = want << 4 | (unsigned)dsmr_hex(st->crc[i]);
		if (crc16_a001(CRC16_ARC_INIT, st->buf, st->len) != want) {
			sg_dev_fail(dev, SG_FAIL_CHECKSUM, "dsmr: CRC mismatch");
			return;
		}
	}
	r = dsmr_parse(st);
	if (r == DSMR_INSANE) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "dsmr: value or timestamp out of range");
		return;
	}
	if (r == DSMR_FULL) {
		sg_dev_fail(dev, SG_FAIL_OVERLONG, "dsmr: more than 64 readings in a telegram");
		return;
	}
	if (r != DSMR_OK) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "dsmr: malformed data line");
		return;
	}
	for (size_t i = 0; i < st->n_items; i++) {
		const struct dsmr_item *it = &st->items[i];
		struct sg_reading rd = {
			.field = it->field,
			.kind = it->string ? SG_VALUE_STRING : SG_VALUE_NUMBER,
			.number = it->number,
			.string = it->string,
			.unit = dsmr_unit_symbol(it->unit),
			.timestamp_us = it->timestamp_us,
		};

		sg_dev_emit(dev, &rd);
	}
	dev->stats.frames++;
}

/* ---- framing ---------------------------------------------------------------------------------- */

static void dsmr_start(struct dsmr_state *st)
{
	st->phase = DSMR_BODY;
	st->buf[0] = '/';
	st->len = 1;
	st->crc_len = 0;
	st->line_start = false;
}

static void dsmr_hunt(struct dsmr_state *st, bool quiet)
{
	st->phase = DSMR_HUNT;
	st->noise_counted = quiet;
	st->len = 0;
}

static void dsmr_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct dsmr_state *st = dev->state;

	for (size_t i = 0; i < len; i++) {
		char c = (char)buf[i];

		switch (st->phase) {
		case DSMR_HUNT:
			if (c == '/') {
				dsmr_start(st);
			} else if (c != '\r' && c != '\n' && c != ' ' && c != '\t' && c != '\0' && !st->noise_counted) {
				st->noise_counted = true;
				sg_dev_fail(dev, SG_FAIL_GARBAGE, "dsmr: bytes outside a telegram");
			}
			break;
		case DSMR_BODY:
			if (st->line_start && c == '/') {
				sg_dev_fail(dev, SG_FAIL_SYNTAX, "dsmr: telegram cut short by a new one");
				dsmr_start(st);
				break;
			}
			if (st->len == DSMR_MAX_TELEGRAM) {
				sg_dev_fail(dev, SG_FAIL_OVERLONG, "dsmr: telegram longer than 4096 bytes");
				dsmr_hunt(st, true);
				break;
			}
			st->buf[st->len++] = c;
			if (st->line_start && c == '!') {
				st->phase = DSMR_CRC;
				st->crc_len = 0;
				break;
			}
			st->line_start = c == '\n' || c == '\r';
			break;
		case DSMR_CRC:
			if (c == '\r' || c == '\n') {
				if (st->crc_len == 0) {
					dsmr_process(dev, st); /* DSMR 2.2/3: no CRC */
					dsmr_hunt(st, false);
				} else {
					sg_dev_fail(dev, SG_FAIL_SYNTAX, "dsmr: CRC shorter than 4 digits");
					dsmr_hunt(st, false);
				}
				break;
			}
			if (c == '/') {
				sg_dev_fail(dev, SG_FAIL_SYNTAX, "dsmr: telegram cut short by a new one");
				dsmr_start(st);
				break;
			}
			if (dsmr_hex(c) < 0) {
				sg_dev_fail(dev, SG_FAIL_SYNTAX, "dsmr: CRC is not hexadecimal");
				dsmr_hunt(st, true);
				break;
			}
			st->crc[st->crc_len++] = c;
			if (st->crc_len == DSMR_CRC_DIGITS) {
				dsmr_process(dev, st);
				dsmr_hunt(st, false);
			}
			break;
		}
	}
}

static void dsmr_reset(struct sg_dev *dev)
{
	dsmr_hunt(dev->state, false);
}

static int dsmr_init(struct sg_dev *dev)
{
	dsmr_reset(dev);
	return 0;
}

/* A field every telegram has, and one only some meters send (announced once it first arrives). */
#define FIELD(n, u, dc, sc) {.name = (n), .unit = (u), .device_class = (dc), .state_class = (sc)}
#define SEEN(n, u, dc, sc) {.name = (n), .unit = (u), .device_class = (dc), .state_class = (sc), .when_seen = true}

static const struct sg_field_info dsmr_fields[] = {
	SEEN("version", NULL, NULL, NULL),
	SEEN("timestamp", NULL, "timestamp", NULL),
	FIELD("energy_delivered_tariff1", "kWh", "energy", "total_increasing"),
	FIELD("energy_delivered_tariff2", "kWh", "energy", "total_increasing"),
	FIELD("energy_returned_tariff1", "kWh", "energy", "total_increasing"),
	FIELD("energy_returned_tariff2", "kWh", "energy", "total_increasing"),
	FIELD("tariff", NULL, NULL, NULL),
	FIELD("power_delivered", "kW", "power", "measurement"),
	FIELD("power_returned", "kW", "power", "measurement"),
	SEEN("power_failures", NULL, NULL, "total_increasing"),
	SEEN("long_power_failures", NULL, NULL, "total_increasing"),
	SEEN("voltage_l1", "V", "voltage", "measurement"),
	SEEN("voltage_l2", "V", "voltage", "measurement"),
	SEEN("voltage_l3", "V", "voltage", "measurement"),
	SEEN("current_l1", "A", "current", "measurement"),
	SEEN("current_l2", "A", "current", "measurement"),
	SEEN("current_l3", "A", "current", "measurement"),
	SEEN("power_delivered_l1", "kW", "power", "measurement"),
	SEEN("power_delivered_l2", "kW", "power", "measurement"),
	SEEN("power_delivered_l3", "kW", "power", "measurement"),
	SEEN("power_returned_l1", "kW", "power", "measurement"),
	SEEN("power_returned_l2", "kW", "power", "measurement"),
	SEEN("power_returned_l3", "kW", "power", "measurement"),
	SEEN("average_demand", "kW", "power", "measurement"),
	SEEN("max_demand_month", "kW", "power", "measurement"),
	SEEN("gas_delivered", "m³", "gas", "total_increasing"),
	SEEN("gas_delivered_2", "m³", "gas", "total_increasing"),
	SEEN("gas_delivered_3", "m³", "gas", "total_increasing"),
	SEEN("gas_delivered_4", "m³", "gas", "total_increasing"),
	SEEN("water_delivered", "m³", "water", "total_increasing"),
	SEEN("water_delivered_2", "m³", "water", "total_increasing"),
	SEEN("water_delivered_3", "m³", "water", "total_increasing"),
	SEEN("water_delivered_4", "m³", "water", "total_increasing"),
	SEEN("heat_delivered", "GJ", "energy", "total_increasing"),
	SEEN("heat_delivered_2", "GJ", "energy", "total_increasing"),
	SEEN("heat_delivered_3", "GJ", "energy", "total_increasing"),
	SEEN("heat_delivered_4", "GJ", "energy", "total_increasing"),
	{.name = NULL, .unit = NULL, .device_class = NULL, .state_class = NULL},
};

/* DSMR 2.2/3 meters send 9600 7E1; DSMR 4 moved the P1 port to 115200 8N1. */
static const char *dsmr_framing(int baud)
{
	return baud <= 9600 ? "7E1" : "8N1";
}

const struct sg_driver sg_driver_dsmr = {
	.name = "dsmr",
	.description = "smart meter P1 port: DSMR 2.2-5.0 (NL), e-MUCS (BE) telegrams with CRC check",
	.bus = SG_BUS_SERIAL,
	.default_baud = 115200, /* DSMR 4/5, e-MUCS; DSMR 2.2/3 meters need baud = 9600 (7E1 then, see above) */
	.default_interval_s = 0,
	.fields = dsmr_fields,
	.framing = dsmr_framing,
	.option_keys = NULL,
	.parse_options = NULL,
	.free_options = NULL,
	.state_size = sizeof(struct dsmr_state),
	.init = dsmr_init,
	.fini = NULL,
	.feed = dsmr_feed,
	.reset = dsmr_reset,
	.poll = NULL,
};
