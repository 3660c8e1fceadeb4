/* SPDX-License-Identifier: MIT */
/*
 * replay.h — test helpers for stream drivers (nmea, dsmr, pms5003, sds011, mhz19, modbus).
 *
 * A struct rp_run is one driver instance with a capturing sink: options parsed from a
 * libconfig snippet through the driver's own parse_options(), state allocated, init()
 * called; every reading and failure lands in run->cap. rp_check_splits() replays bytes
 * whole, cut in two at every byte boundary, one byte at a time and in seeded random chunks,
 * and asserts each replay yields the same readings and failure counts. rp_replay_mapped()
 * feeds a recorded stream through the driver and the real mapper (a config written to a
 * temporary file and loaded with config_load()) and compares "field payload" lines with an
 * expected.txt. Paths: rp_data_path() finds tests/data from the test binary's location,
 * rp_real_dir() the shared real captures (SENSORGATE_REAL_DATA or ../shared/testdata/real).
 * Everything here allocates freely (tests only) and fails the test through cmocka.
 */
#ifndef SG_TEST_REPLAY_H
#define SG_TEST_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/driver.h"

#define RP_MAX_FIELD 72
#define RP_MAX_STRING 128
#define RP_MAX_UNIT 24

struct rp_reading {
	char field[RP_MAX_FIELD];
	enum sg_value_kind kind;
	double number;
	char string[RP_MAX_STRING];
	char unit[RP_MAX_UNIT];
	bool has_unit;
	int64_t timestamp_us;
};

struct rp_capture {
	struct rp_reading *r;
	size_t n, cap;
	unsigned fails[SG_FAIL_MAX_];
	uint64_t frames;           /* dev->stats.frames, filled by rp_check_splits() */
	char last_detail[160];
};

/* An expected reading: unit NULL = not checked, "" = must have none. */
struct rp_exp {
	const char *field;         /* NULL ends a list */
	enum sg_value_kind kind;
	double number;
	const char *string;
	const char *unit;
};

#define RP_NUM(f, v, u) {(f), SG_VALUE_NUMBER, (v), NULL, (u)}
#define RP_STR(f, s) {(f), SG_VALUE_STRING, 0, (s), ""}
#define RP_MAX_EXP 48

/* A table row: input bytes, options, what must come out. */
struct rp_case {
	const char *legend;
	const char *opts;          /* driver options (libconfig group body), NULL = none */
	const char *input;
	size_t len;
	struct rp_exp exp[RP_MAX_EXP];
	unsigned fails[SG_FAIL_MAX_];
	unsigned frames;
};

/* Input with its exact length, NUL bytes included. */
#define RP_IN(s) .input = (s), .len = sizeof(s) - 1

/* Assert C holds exactly the readings EXP (numbers within 1e-9 relative). */
void rp_assert_readings(const struct rp_capture *c, const struct rp_exp *exp, const char *legend);
/* Run each case through rp_check_splits() and check readings, failures and frames. */
void rp_run_cases(const struct sg_driver *drv, const struct rp_case *cases, size_t n);

/*
 * A serial line as the gateway's would be for a request driver (driver.h:
 * request/answer/no_answer): bytes go to answer() while a request is out.
 * With AUTO, a request is made whenever none is out (poll() readying a
 * cycle when the driver has nothing to ask), so a stream of answers replays
 * as answers to one request after another. Bytes answer() passes on, or
 * that arrive with no request out, are counted in unclaimed.
 */
struct rp_line {
	uint8_t buf[1024];
	size_t len;
	bool txn;
	bool autoreq;
	uint64_t unclaimed;
};

struct rp_run {
	struct sg_dev dev;
	void *opts;
	struct rp_capture cap;
	struct rp_line line;
};

/* Bytes for DEV: feed() for a stream driver, the line L for a request driver. */
void rp_dev_feed(struct sg_dev *dev, struct rp_line *l, const uint8_t *buf, size_t len);
/* The driver's next request (poll() first when it has none) into REQ; its length. */
size_t rp_line_request(struct sg_dev *dev, struct rp_line *l, uint8_t *req, size_t cap);

/* Set up RUN for DRV with options TEXT (NULL: none); asserts success. fd = -1. */
void rp_start(struct rp_run *run, const struct sg_driver *drv, const char *opts_text);
void rp_stop(struct rp_run *run);
/* Feed LEN bytes in chunks of CHUNK (0: all at once). */
void rp_feed(struct rp_run *run, const void *buf, size_t len, size_t chunk);
/* Clear the capture (readings and counters). */
void rp_clear(struct rp_run *run);
unsigned rp_total_fails(const struct rp_capture *c);

/* Index of the first reading named FIELD at or after FROM, or -1. */
int rp_find(const struct rp_capture *c, const char *field, size_t from);

/*
 * Replay BUF whole, split at every boundary, bytewise and in random chunks; assert all
 * captures are equal. The whole-buffer capture is left in *ret (caller frees with
 * rp_capture_free) when ret is not NULL.
 */
void rp_check_splits(const struct sg_driver *drv, const char *opts_text, const void *buf, size_t len,
		     struct rp_capture *ret);
void rp_capture_free(struct rp_capture *c);

/*
 * Concatenate up to N PARTS (a NULL part ends early) into a malloc'd buffer: "=text" a
 * literal, "#hex bytes" bytes in hex, "@N" N bytes of filler text, anything else a file
 * in tests/data/DIR/.
 */
uint8_t *rp_concat(const char *dir, const char *const *parts, size_t n, size_t *ret_len);

/* Whole file into a malloc'd buffer (NUL-terminated too). false if it cannot be read. */
bool rp_read_file(const char *path, uint8_t **ret, size_t *ret_len);
/* "<repo>/tests/data/REL" in one of 4 rotating static buffers. */
const char *rp_data_path(const char *rel);
/* The real-capture directory, or NULL when absent (static buffer). */
const char *rp_real_dir(void);

/*
 * Feed BUF through DRV (device "d", base topic "t", DEVICE_BODY extra settings inside the
 * device group) and the mapper; compare the published "field payload" lines with the
 * file EXPECTED_PATH (blank lines and '#' comments ignored). Asserts equality.
 */
void rp_replay_mapped(const struct sg_driver *drv, const char *device_body, const void *buf, size_t len,
		      const char *expected_path);

/*
 * The same with a transcript for request drivers: lines "> hex bytes" (the request the
 * driver must make at its turn; poll() first when it has none), "< hex bytes" (the
 * device's bytes, handed on as the line would), "timeout" (the request out is not
 * answered), "tick" (an interval: poll()); '#' comments.
 */
void rp_replay_transcript(const struct sg_driver *drv, const char *device_body, const char *transcript_path,
			  const char *expected_path, struct sg_dev_stats *ret_stats);

#endif
