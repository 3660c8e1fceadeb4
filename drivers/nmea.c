/* SPDX-License-Identifier: MIT */
/*
 * nmea.c — the `nmea` driver: GPS/GNSS receivers speaking NMEA 0183.
 *
 * Sentence (NMEA 0183 v4.11 §5.3 "sentence structure"):
 *
 *   $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47<CR><LF>
 *   ^\/\_/ \____________________ fields ____________________________/^\/
 *   | | |                                                          | checksum
 *   | | sentence formatter (GGA, RMC, VTG used; others ignored)    '*' delimiter
 *   | talker: any two letters (GP GPS, GN multi-GNSS, GL GLONASS, GA Galileo, BD/GB BeiDou...)
 *   '$' start ('!' for encapsulated sentences, accepted and ignored); '$P...' = proprietary, ignored
 *
 *   checksum: XOR of every byte between '$' and '*' (exclusive), two hex digits (§5.3.1).
 *   A sentence without "*hh" is accepted (many receivers and the v1.5 era omit it);
 *   with `require_checksum = true;` it is dropped as SG_FAIL_CHECKSUM instead.
 *   Lines end with CR, LF or CR LF. The standard allows 82 bytes including "$" and
 *   CR LF (§5.3); real receivers exceed it (long proprietary sentences), so up to
 *   NMEA_MAX_SENTENCE (120) bytes are accepted, longer ones are SG_FAIL_OVERLONG.
 *
 * Sentences used (field numbers after the address field):
 *   GGA  1 time hhmmss.ss  2-3 lat ddmm.mmmm,N|S  4-5 lon dddmm.mmmm,E|W  6 quality (0 = no fix)
 *        7 satellites  8 HDOP  9-10 altitude,M  (11.. geoid separation, DGPS: unused)
 *   RMC  1 time  2 status A|V  3-4 lat  5-6 lon  7 speed (knots)  8 course (° true)  9 date ddmmyy
 *        (10.. magnetic variation, mode, nav status: unused except mode 'N' = not valid)
 *   VTG  1 course (° true) 2 'T'  3-4 magnetic  5-6 speed knots,N  7-8 speed km/h,K  9 mode
 *
 * Readings (each sentence emits what it carries; GGA and RMC both give a position):
 *   latitude, longitude   signed decimal degrees (S and W negative)            °
 *   fix_quality           GGA quality 0..8 (0 none, 1 GPS, 2 DGPS, 4 RTK ...)
 *   satellites            satellites used (GGA)
 *   hdop                  horizontal dilution of precision (GGA)
 *   altitude              above mean sea level (GGA)                            m
 *   speed                 over ground (RMC knots × 1.852, or VTG km/h)         km/h
 *   course                over ground, true                                    °
 *   time                  RMC date + time as ISO 8601 UTC, e.g. "1994-03-23T12:35:19Z"
 *
 * Empty fields (a receiver before its first fix) mean "no value": they are not
 * emitted and are not an error. Without a fix (GGA quality 0, RMC status V, VTG/RMC
 * mode N) no position, altitude, speed, course or time is emitted, only fix_quality,
 * satellites and hdop. Values out of their possible range (latitude above 90°, minutes
 * of 60 or more, an hour of 24, a negative satellite count ...) drop the whole sentence
 * as SG_FAIL_INSANE even without a fix; malformed numbers drop it as SG_FAIL_SYNTAX.
 * Each sentence is validated completely before its first reading is emitted.
 *
 * Framing: a sentence starts at '$' or '!' (a '$' inside a sentence starts a new one:
 * the cut one counts as SG_FAIL_GARBAGE) and ends at CR or LF. A line that does not
 * start with '$'/'!' (noise, comments in captured logs) counts once as SG_FAIL_GARBAGE;
 * so does a sentence with bytes outside printable ASCII.
 *
 * Ownership: options (struct nmea_opts) are allocated by parse_options() and owned by
 * the config; struct nmea_state lives in dev->state, owned by the gateway. Nothing is
 * allocated per sentence and nothing is logged.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "drivers.h"

#define NMEA_MAX_SENTENCE 120   /* bytes from '$' to the last checksum digit; standard: 82 with CR LF */
#define NMEA_MAX_FIELDS 40      /* comma-separated fields we split; more is SG_FAIL_SYNTAX */
#define NMEA_KNOTS_TO_KMH 1.852 /* 1 international nautical mile = 1852 m */
#define NMEA_MAX_QUALITY 8      /* GGA quality indicator 0..8 (v4.11 §6.3 GGA note 2) */
#define NMEA_MAX_SATELLITES 99  /* GGA field 7 is "xx": two digits */
#define NMEA_MAX_HDOP 100.0     /* HDOP beyond this is not a measurement; receivers print 99.99 as "unknown" */
#define NMEA_MIN_ALTITUDE -1000.0  /* m: below the Dead Sea shore (-430 m) with margin */
#define NMEA_MAX_ALTITUDE 100000.0 /* m: the edge of space; receivers stop at 18 km (COCOM) or 50 km */
#define NMEA_MAX_SPEED_KMH 10000.0 /* km/h: COCOM limit is 1852 km/h (1000 knots) */
#define NMEA_CENTURY_PIVOT 80   /* RMC two-digit years: 80..99 -> 19xx, 00..79 -> 20xx (GPS epoch 1980) */

struct nmea_opts {
	bool require_checksum;
};

struct nmea_state {
	size_t len;                         /* bytes in s[] */
	bool in_sentence;                   /* s[] holds a sentence being assembled */
	bool skipping;                      /* dropping the rest of a line (overlong or garbage) */
	bool garbage;                       /* current sentence has a non-printable byte */
	bool line_noise;                    /* current line had noise outside a sentence, already counted */
	char s[NMEA_MAX_SENTENCE + 1];      /* the sentence, '$' included, NUL-terminated to parse */
	char time[96];                      /* "YYYY-MM-DDThh:mm:ss.sssZ" being emitted */
};

static const struct nmea_opts nmea_default_opts = {.require_checksum = false};

/* ---- field parsing ---------------------------------------------------------------------------- */

enum nmea_result {
	NMEA_OK = 0,
	NMEA_EMPTY,   /* the field is empty: no value */
	NMEA_SYNTAX,  /* malformed */
	NMEA_INSANE,  /* well-formed but impossible */
};

static bool nmea_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A decimal number: [-]digits[.digits] or [-].digits. Nothing else (no exponent, no "inf"). */
static enum nmea_result nmea_number(const char *f, double *ret)
{
	const char *p = f;
	bool digits = false;

	if (!*f)
		return NMEA_EMPTY;
	if (*p == '-' || *p == '+')
		p++;
	while (nmea_digit(*p))
		p++, digits = true;
	if (*p == '.') {
		p++;
		while (nmea_digit(*p))
			p++, digits = true;
	}
	if (*p || !digits)
		return NMEA_SYNTAX;
	*ret = strtod(f, NULL);
	return NMEA_OK;
}

/* A non-negative integer of at most 9 digits. */
static enum nmea_result nmea_uint(const char *f, int *ret)
{
	int v = 0;
	size_t n = 0;

	if (!*f)
		return NMEA_EMPTY;
	for (; nmea_digit(f[n]); n++) {
		if (n == 9)
			return NMEA_SYNTAX;
		v = v * 10 + (f[n] - '0');
	}
	if (f[n] || n == 0)
		return NMEA_SYNTAX;
	*ret = v;
	return NMEA_OK;
}

/* Two decimal digits at P. */
static bool nmea_2digits(const char *p, int *ret)
{
	if (!nmea_digit(p[0]) || !nmea_digit(p[1]))
		return false;
	*ret = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

/*
 * Coordinate "ddmm.mmmm" (DEG_DIGITS = 2) or "dddmm.mmmm" (3) with hemisphere
 * field H ("N"/"S" or "E"/"W", POS/NEG). Both empty: NMEA_EMPTY.
 */
static enum nmea_result nmea_coord(const char *f, const char *h, int deg_digits, char pos, char neg, double max,
				   double *ret)
{
	double minutes;
	int deg = 0;

	if (!*f && !*h)
		return NMEA_EMPTY;
	if (!*f || !*h || h[1] != '\0' || (h[0] != pos && h[0] != neg))
		return NMEA_SYNTAX;
	for (int i = 0; i < deg_digits; i++) {
		if (!nmea_digit(f[i]))
			return NMEA_SYNTAX;
		deg = deg * 10 + (f[i] - '0');
	}
	/* minutes: two integer digits, then an optional fraction */
	if (!nmea_digit(f[deg_digits]) || !nmea_digit(f[deg_digits + 1]) ||
	    nmea_number(f + deg_digits, &minutes) != NMEA_OK || f[deg_digits] == '-' || f[deg_digits] == '+')
		return NMEA_SYNTAX;
	if (minutes >= 60.0 || deg + minutes / 60.0 > max)
		return NMEA_INSANE;
	*ret = (deg + minutes / 60.0) * (h[0] == neg ? -1.0 : 1.0);
	return NMEA_OK;
}

/* Time hhmmss[.sss]; ret_ms gets the milliseconds (fraction truncated to 3 digits). */
static enum nmea_result nmea_time(const char *f, int *h, int *m, int *s, int *ms)
{
	const char *p;

	if (!*f)
		return NMEA_EMPTY;
	if (!nmea_2digits(f, h) || !nmea_2digits(f + 2, m) || !nmea_2digits(f + 4, s))
		return NMEA_SYNTAX;
	*ms = 0;
	p = f + 6;
	if (*p == '.') {
		int scale = 100;

		for (p++; nmea_digit(*p); p++) {
			*ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p)
		return NMEA_SYNTAX;
	if (*h > 23 || *m > 59 || *s > 60) /* 60: a leap second */
		return NMEA_INSANE;
	return NMEA_OK;
}

/* Date ddmmyy. */
static enum nmea_result nmea_date(const char *f, int *y, int *mo, int *d)
{
	if (!*f)
		return NMEA_EMPTY;
	if (strlen(f) != 6 || !nmea_2digits(f, d) || !nmea_2digits(f + 2, mo) || !nmea_2digits(f + 4, y))
		return NMEA_SYNTAX;
	if (*d < 1 || *d > 31 || *mo < 1 || *mo > 12)
		return NMEA_INSANE;
	*y += *y >= NMEA_CENTURY_PIVOT ? 1900 : 2000;
	return NMEA_OK;
}

/* A number that must lie in [lo, hi]. */
static enum nmea_result nmea_ranged(const char *f, double lo, double hi, double *ret)
{
	enum nmea_result r = nmea_number(f, ret);

	if (r == NMEA_OK && (*ret < lo || *ret > hi))
		return NMEA_INSANE;
	return r;
}

/* ---- sentences -------------------------------------------------------------------------------- */

/* One parsed sentence: which values it has. Filled completely before anything is emitted. */
struct nmea_fix {
	bool has_lat, has_lon, has_quality, has_sats, has_hdop, has_alt, has_speed, has_course, has_time;
	double lat, lon, hdop, alt, speed_kmh, course;
	int quality, sats;
};

/* Merge R into the running verdict: syntax errors win over insane values, those over success. */
static bool nmea_check(enum nmea_result r, enum nmea_result *worst)
{
	if (r == NMEA_SYNTAX || (r == NMEA_INSANE && *worst != NMEA_SYNTAX))
		*worst = r;
	return r == NMEA_OK;
}

static enum nmea_result nmea_gga(char **f, size_t n, struct nmea_fix *x)
{
	enum nmea_result worst = NMEA_OK;
	int h, m, s, ms;

	if (n < 10)
		return NMEA_SYNTAX;
	nmea_check(nmea_time(f[1], &h, &m, &s, &ms), &worst);
	x->has_lat = nmea_check(nmea_coord(f[2], f[3], 2, 'N', 'S', 90.0, &x->lat), &worst);
	x->has_lon = nmea_check(nmea_coord(f[4], f[5], 3, 'E', 'W', 180.0, &x->lon), &worst);
	x->has_quality = nmea_check(nmea_uint(f[6], &x->quality), &worst);
	if (x->has_quality && x->quality > NMEA_MAX_QUALITY)
		nmea_check(NMEA_INSANE, &worst);
	x->has_sats = nmea_check(nmea_uint(f[7], &x->sats), &worst);
	if (x->has_sats && x->sats > NMEA_MAX_SATELLITES)
		nmea_check(NMEA_INSANE, &worst);
	x->has_hdop = nmea_check(nmea_ranged(f[8], 0, NMEA_MAX_HDOP, &x->hdop), &worst);
	x->has_alt = nmea_check(nmea_ranged(f[9], NMEA_MIN_ALTITUDE, NMEA_MAX_ALTITUDE, &x->alt), &worst);
	if (x->has_alt && n > 10 && f[10][0] && strcmp(f[10], "M") != 0)
		nmea_check(NMEA_SYNTAX, &worst); /* altitude in anything but metres */
	if (worst != NMEA_OK)
		return worst;
	if (!x->has_quality || x->quality == 0)
		x->has_lat = x->has_lon = x->has_alt = false; /* no fix: the position is stale or invented */
	return NMEA_OK;
}

/* Mode indicator (NMEA 2.3+): 'N' = data not valid. Absent or empty: valid. */
static bool nmea_mode_valid(char **f, size_t n, size_t i)
{
	return !(n > i && f[i][0] == 'N' && f[i][1] == '\0');
}

static enum nmea_result nmea_rmc(char **f, size_t n, struct nmea_fix *x, char *time, size_t time_len)
{
	enum nmea_result worst = NMEA_OK;
	int h = 0, mi = 0, s = 0, ms = 0, y = 0, mo = 0, d = 0;
	bool has_t, has_d;
	double knots;

	if (n < 10)
		return NMEA_SYNTAX;
	has_t = nmea_check(nmea_time(f[1], &h, &mi, &s, &ms), &worst);
	if (strcmp(f[2], "A") != 0 && strcmp(f[2], "V") != 0 && f[2][0])
		nmea_check(NMEA_SYNTAX, &worst);
	x->has_lat = nmea_check(nmea_coord(f[3], f[4], 2, 'N', 'S', 90.0, &x->lat), &worst);
	x->has_lon = nmea_check(nmea_coord(f[5], f[6], 3, 'E', 'W', 180.0, &x->lon), &worst);
	x->has_speed = nmea_check(nmea_ranged(f[7], 0, NMEA_MAX_SPEED_KMH / NMEA_KNOTS_TO_KMH, &knots), &worst);
	x->has_course = nmea_check(nmea_ranged(f[8], 0, 360.0, &x->course), &worst);
	has_d = nmea_check(nmea_date(f[9], &y, &mo, &d), &worst);
	if (worst != NMEA_OK)
		return worst;
	x->speed_kmh = knots * NMEA_KNOTS_TO_KMH;
	if (strcmp(f[2], "A") != 0 || !nmea_mode_valid(f, n, 12)) {
		x->has_lat = x->has_lon = x->has_speed = x->has_course = false;
		return NMEA_OK;
	}
	if (has_t && has_d) {
		if (ms)
			snprintf(time, time_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, ms);
		else
			snprintf(time, time_len, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s);
		x->has_time = true;
	}
	return NMEA_OK;
}

static enum nmea_result nmea_vtg(char **f, size_t n, struct nmea_fix *x)
{
	enum nmea_result worst = NMEA_OK;
	double knots = 0, kmh = 0;
	bool has_kn, has_kmh;

	if (n < 9)
		return NMEA_SYNTAX;
	x->has_course = nmea_check(nmea_ranged(f[1], 0, 360.0, &x->course), &worst);
	has_kn = nmea_check(nmea_ranged(f[5], 0, NMEA_MAX_SPEED_KMH / NMEA_KNOTS_TO_KMH, &knots), &worst);
	has_kmh = nmea_check(nmea_ranged(f[7], 0, NMEA_MAX_SPEED_KMH, &kmh), &worst);
	if (worst != NMEA_OK)
		return worst;
	x->has_speed = has_kmh || has_kn;
	x->speed_kmh = has_kmh ? kmh : knots * NMEA_KNOTS_TO_KMH;
	if (!nmea_mode_valid(f, n, 9))
		x->has_course = x->has_speed = false;
	return NMEA_OK;
}

static void nmea_emit(struct sg_dev *dev, const struct nmea_fix *x, const char *time)
{
	if (x->has_lat)
		sg_dev_emit_number(dev, "latitude", x->lat, "°");
	if (x->has_lon)
		sg_dev_emit_number(dev, "longitude", x->lon, "°");
	if (x->has_quality)
		sg_dev_emit_number(dev, "fix_quality", x->quality, NULL);
	if (x->has_sats)
		sg_dev_emit_number(dev, "satellites", x->sats, NULL);
	if (x->has_hdop)
		sg_dev_emit_number(dev, "hdop", x->hdop, NULL);
	if (x->has_alt)
		sg_dev_emit_number(dev, "altitude", x->alt, "m");
	if (x->has_speed)
		sg_dev_emit_number(dev, "speed", x->speed_kmh, "km/h");
	if (x->has_course)
		sg_dev_emit_number(dev, "course", x->course, "°");
	if (x->has_time)
		sg_dev_emit_string(dev, "time", time);
}

static int nmea_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A complete sentence of LEN bytes in st->s: verify, split, parse, emit. */
static void nmea_process(struct sg_dev *dev, struct nmea_state *st, size_t len)
{
	const struct nmea_opts *o = dev->opts ? dev->opts : &nmea_default_opts;
	char *fields[NMEA_MAX_FIELDS];
	struct nmea_fix x = {.has_lat = false};
	enum nmea_result r;
	char *star, *p;
	size_t n = 0;
	unsigned sum = 0;

	st->s[len] = '\0';
	star = strchr(st->s, '*');
	for (p = st->s + 1; *p && p != star; p++)
		sum ^= (unsigned char)*p;
	if (star) {
		int hi = nmea_hex(star[1]), lo = hi < 0 ? -1 : nmea_hex(star[2]);

		if (hi < 0 || lo < 0 || star[3] != '\0') {
			sg_dev_fail(dev, SG_FAIL_SYNTAX, "nmea: checksum is not two hex digits");
			return;
		}
		if ((unsigned)(hi << 4 | lo) != sum) {
			sg_dev_fail(dev, SG_FAIL_CHECKSUM, "nmea: checksum mismatch");
			return;
		}
		*star = '\0';
	} else if (o->require_checksum) {
		sg_dev_fail(dev, SG_FAIL_CHECKSUM, "nmea: sentence without checksum");
		return;
	}
	if (st->s[0] == '!')
		return; /* encapsulated (AIS) sentence: not ours */

	/* split in place at commas */
	p = st->s + 1;
	for (;;) {
		if (n == NMEA_MAX_FIELDS) {
			sg_dev_fail(dev, SG_FAIL_SYNTAX, "nmea: too many fields");
			return;
		}
		fields[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = '\0';
	}
	/* address: two-letter talker + three-letter formatter; 'P' = proprietary */
	if (fields[0][0] == 'P')
		return;
	if (strlen(fields[0]) != 5) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "nmea: bad address field");
		return;
	}
	if (strcmp(fields[0] + 2, "GGA") == 0)
		r = nmea_gga(fields, n, &x);
	else if (strcmp(fields[0] + 2, "RMC") == 0)
		r = nmea_rmc(fields, n, &x, st->time, sizeof(st->time));
	else if (strcmp(fields[0] + 2, "VTG") == 0)
		r = nmea_vtg(fields, n, &x);
	else
		return; /* GSA, GSV, ZDA, GLL ...: not used */
	if (r == NMEA_SYNTAX) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "nmea: malformed field");
		return;
	}
	if (r == NMEA_INSANE) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "nmea: value out of range");
		return;
	}
	nmea_emit(dev, &x, st->time);
	dev->stats.frames++;
}

/* ---- framing ---------------------------------------------------------------------------------- */

static void nmea_end_line(struct sg_dev *dev, struct nmea_state *st)
{
	if (st->in_sentence && !st->skipping) {
		if (st->garbage)
			sg_dev_fail(dev, SG_FAIL_GARBAGE, "nmea: non-printable byte in sentence");
		else
			nmea_process(dev, st, st->len);
	}
	st->in_sentence = st->skipping = st->garbage = st->line_noise = false;
	st->len = 0;
}

static void nmea_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct nmea_state *st = dev->state;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (c == '\r' || c == '\n') {
			nmea_end_line(dev, st);
			continue;
		}
		if (c == '$' || c == '!') {
			if (st->in_sentence && !st->skipping)
				sg_dev_fail(dev, SG_FAIL_GARBAGE, "nmea: sentence cut by a new '$'");
			st->in_sentence = true;
			st->skipping = st->garbage = false;
			st->len = 0;
		}
		if (!st->in_sentence) {
			if (c != ' ' && c != '\t' && !st->line_noise) {
				st->line_noise = true;
				sg_dev_fail(dev, SG_FAIL_GARBAGE, "nmea: text outside a sentence");
			}
			continue;
		}
		if (st->skipping)
			continue;
		if (st->len == NMEA_MAX_SENTENCE) {
			st->skipping = true;
			sg_dev_fail(dev, SG_FAIL_OVERLONG, "nmea: sentence longer than 120 bytes");
			continue;
		}
		if (c < 0x20 || c > 0x7e)
			st->garbage = true;
		st->s[st->len++] = (char)c;
	}
}

static void nmea_reset(struct sg_dev *dev)
{
	struct nmea_state *st = dev->state;

	st->len = 0;
	st->in_sentence = st->skipping = st->garbage = st->line_noise = false;
}

static int nmea_init(struct sg_dev *dev)
{
	nmea_reset(dev);
	return 0;
}

/* ---- options ---------------------------------------------------------------------------------- */

/*
 * require_checksum (bool, default false). Returns 0 with *ret_opts allocated
 * (free with nmea_free_options), -EINVAL with *err filled, or -ENOMEM.
 */
static int nmea_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	struct nmea_opts *o;
	bool require_checksum = false;
	int r;

	if (!ret_opts)
		return -EINVAL;
	if ((r = sg_opt_bool(device, "require_checksum", &require_checksum, err)) < 0)
		return r;
	o = calloc(1, sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	o->require_checksum = require_checksum;
	*ret_opts = o;
	return 0;
}

static void nmea_free_options(void *opts)
{
	free(opts);
}

static const char *const nmea_option_keys[] = {"require_checksum", NULL};

static const struct sg_field_info nmea_fields[] = {
	{.name = "latitude", .unit = "°", .device_class = NULL, .state_class = "measurement"},
	{.name = "longitude", .unit = "°", .device_class = NULL, .state_class = "measurement"},
	{.name = "fix_quality", .unit = NULL, .device_class = NULL, .state_class = "measurement"},
	{.name = "satellites", .unit = NULL, .device_class = NULL, .state_class = "measurement"},
	{.name = "hdop", .unit = NULL, .device_class = NULL, .state_class = "measurement"},
	{.name = "altitude", .unit = "m", .device_class = "distance", .state_class = "measurement"},
	{.name = "speed", .unit = "km/h", .device_class = "speed", .state_class = "measurement"},
	{.name = "course", .unit = "°", .device_class = NULL, .state_class = "measurement"},
	{.name = "time", .unit = NULL, .device_class = "timestamp", .state_class = NULL},
	{.name = NULL, .unit = NULL, .device_class = NULL, .state_class = NULL},
};

const struct sg_driver sg_driver_nmea = {
	.name = "nmea",
	.description = "GPS/GNSS receiver, NMEA 0183 (GGA, RMC, VTG from any talker)",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* most modules today; NMEA 0183 itself specifies 4800 */
	.default_interval_s = 0,
	.fields = nmea_fields,
	.option_keys = nmea_option_keys,
	.parse_options = nmea_parse_options,
	.free_options = nmea_free_options,
	.state_size = sizeof(struct nmea_state),
	.init = nmea_init,
	.fini = NULL,
	.feed = nmea_feed,
	.reset = nmea_reset,
	.poll = NULL,
};
