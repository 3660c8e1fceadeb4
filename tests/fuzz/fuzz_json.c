/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json.c — libFuzzer target: the JSON reader and escaper (common/json.c) and the lines
 * driver's walk over a JSON line's leaves, which is built on them.
 *
 * The input is read as a run of tokens in its own allocation of exactly its size (ASan sees any
 * read past the end): whitespace is skipped, a string, a number or a literal is read where one
 * starts, any other byte is stepped over. Every token is checked:
 *  - a string: read into a buffer as long as its source (the decoded text is never longer, so
 *    never -E2BIG), only checked (NULL) and into a small buffer: the same result and the same
 *    cursor each time; what the small buffer got is a prefix of the whole, -E2BIG exactly when the
 *    whole did not fit, and no more was cut than one character. A string read is quoted at both
 *    ends, no longer than its source and has no NUL; escaped again (sg_json_escape) and read back
 *    it is valid UTF-8, the same bytes when it was UTF-8 already (raw bytes that are not UTF-8 pass
 *    the reader as they are: the lines driver checks a line first); in valid UTF-8 jansson decodes
 *    the same token to the same bytes;
 *  - a number: what was read is a whole strtod() number, and jansson reads the same value;
 *  - a literal: consumed exactly when it is there; whitespace: all of it and nothing else.
 * A failure must say why, with the cursor inside the input.
 *
 * The whole input is escaped: no raw control character or DEL comes out, the output read back is
 * the input (its invalid UTF-8 as U+FFFD; an input with a NUL reads back as an error: \u0000),
 * and cut short at any output size it is a prefix of the whole that reads back, cut between whole
 * escapes and no shorter than it must be.
 *
 * An input that starts with an object or an array is walked whole (sg_json_member(),
 * sg_json_element() and the lexer) and read by jansson: what jansson takes the walk takes, with
 * the same names in the same order and the same values; what the walk takes in valid UTF-8
 * jansson takes too, unless a name comes twice or a number is beyond its range (inputs with a NUL
 * byte are left out: jansson steps over one between tokens).
 *
 * Its first line goes to the lines driver as JSON (format = "json"): each field is a well-formed
 * leaf path ([A-Za-z0-9_.-]{1,64}), never twice in a line, and when the driver takes the line,
 * jansson (duplicate keys rejected) takes it too and finds the same leaves in the same order —
 * members of nested objects as dotted paths, strings, numbers, true as 1 and false as 0, arrays
 * and null left out — with the same values. A violation traps. jansson is the oracle only.
 */
#include <errno.h>
#include <jansson.h>

#include "common/json.h"
#include "common/utf8.h"
#include "fuzz_common.h"

#define LINES_PATH_MAX 64 /* drivers/lines.c: LINES_MAX_FIELD, the whole dotted path */

/* ---- the lexer ------------------------------------------------------------------------------ */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* jansson's reading of TOKEN[0..N) as the only element of an array; NULL if it refuses it. */
static json_t *oracle_token(const char *token, size_t n, json_error_t *err)
{
	char *doc = malloc(n + 2);
	json_t *arr, *v = NULL;

	if (!doc)
		abort();
	doc[0] = '[';
	memcpy(doc + 1, token, n);
	doc[n + 1] = ']';
	arr = json_loadb(doc, n + 2, 0, err);
	free(doc);
	if (arr && json_array_size(arr) == 1)
		v = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return v;
}

/* S[0..LEN) escaped, quoted and read back: the result of sg_json_string(), the bytes in OUT (LEN + 1 room). */
static int reread(const char *s, size_t len, size_t outlen, char *out, size_t *ret_len)
{
	size_t cap = 6 * len + 3, n;
	char *q = malloc(cap);
	bool complete;
	int r;

	if (!q)
		abort();
	q[0] = '"';
	n = sg_json_escape(s, len, q + 1, cap - 2, &complete);
	if (!complete || n != strlen(q + 1))
		__builtin_trap();
	for (size_t i = 1; i <= n; i++)
		if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f)
			__builtin_trap();
	q[n + 1] = '"';
	struct sg_json_in in = {.p = q, .end = q + n + 2};
	*ret_len = 0;
	r = sg_json_string(&in, out, outlen, ret_len);
	if (r == 0 && in.p != in.end)
		__builtin_trap(); /* the closing quote is the escaped text's end */
	free(q);
	return r;
}

static void check_string(const char *s, const char *end, struct sg_json_in *in)
{
	size_t room = (size_t)(end - s) + 1, len = 0, small_len = 0, k = 1 + (size_t)(end - s) % 7;
	char *whole = malloc(room), small[8], *back = NULL;
	struct sg_json_in a = {.p = s, .end = end}, b = a, c = a;
	int r, rb, rc;

	if (!whole)
		abort();
	r = sg_json_string(&a, whole, room, &len);
	rb = sg_json_string(&b, NULL, 0, NULL);
	rc = sg_json_string(&c, small, k, &small_len);
	if (r == -E2BIG || a.p < s || a.p > end || b.p != a.p || c.p != a.p || rb != r)
		__builtin_trap();
	if (r < 0) {
		if (r != -EINVAL || !a.why || rc != r)
			__builtin_trap();
		in->p = s + 1;
		goto out;
	}
	size_t span = (size_t)(a.p - s);
	if (span < 2 || s[0] != '"' || a.p[-1] != '"' || len > span - 2 || strlen(whole) != len)
		__builtin_trap();
	/* the small buffer: a prefix, cut only where the next unit (at most 4 bytes) did not fit */
	if (rc != (len + 1 > k ? -E2BIG : 0) || strlen(small) >= k || strncmp(small, whole, strlen(small)) != 0)
		__builtin_trap();
	if (rc == -E2BIG ? strlen(small) + 4 + 1 <= k : small_len != len)
		__builtin_trap();
	/* through the escaper and back: the same bytes when they are UTF-8 (raw bytes that are not
	 * pass the reader as they are, and the escaper makes each U+FFFD, 3 bytes) */
	size_t back_len;
	bool utf8 = sg_utf8_valid(whole, len);
	free(back);
	back = malloc(3 * len + 1);
	if (!back)
		abort();
	if (reread(whole, len, 3 * len + 1, back, &back_len) != 0 || !sg_utf8_valid(back, back_len) ||
	    (utf8 && (back_len != len || memcmp(back, whole, len) != 0)))
		__builtin_trap();
	/* the oracle, on the same token */
	if (utf8 && sg_utf8_valid(s, span)) {
		json_error_t err;
		json_t *v = oracle_token(s, span, &err);

		if (!json_is_string(v) || json_string_length(v) != len || memcmp(json_string_value(v), whole, len) != 0)
			__builtin_trap();
		json_decref(v);
	}
	in->p = a.p;
out:
	free(whole);
	free(back);
}

static void check_number(const char *s, const char *end, struct sg_json_in *in)
{
	struct sg_json_in a = {.p = s, .end = end};
	char text[64], *stop;
	size_t n;
	double d;

	if (sg_json_number(&a) < 0) {
		if (!a.why || a.p < s || a.p > end)
			__builtin_trap();
		in->p = s + 1;
		return;
	}
	n = (size_t)(a.p - s);
	if (n == 0 || a.p > end)
		__builtin_trap();
	in->p = a.p;
	if (n >= sizeof(text))
		return;
	memcpy(text, s, n);
	text[n] = '\0';
	d = strtod(text, &stop);
	if (stop != text + n)
		__builtin_trap();
	json_error_t err;
	json_t *v = oracle_token(s, n, &err);
	if (!v) {
		if (json_error_code(&err) != json_error_numeric_overflow)
			__builtin_trap();
		return;
	}
	if (!json_is_number(v) || json_number_value(v) != d)
		__builtin_trap();
	json_decref(v);
}

static void check_literal(const char *s, const char *end, struct sg_json_in *in)
{
	const char *word = *s == 't' ? "true" : *s == 'f' ? "false" : "null";
	size_t n = strlen(word);
	bool there = (size_t)(end - s) >= n && memcmp(s, word, n) == 0;
	struct sg_json_in a = {.p = s, .end = end};

	if (sg_json_lit(&a, word) != there || a.p != s + (there ? n : 0) || a.why)
		__builtin_trap();
	in->p = there ? a.p : s + 1;
}

static void check_tokens(const char *doc, size_t size)
{
	struct sg_json_in in = {.p = doc, .end = doc + size};

	for (;;) {
		const char *q = in.p;

		sg_json_ws(&in);
		for (; q < in.p; q++)
			if (!is_ws(*q))
				__builtin_trap();
		if (in.p > in.end)
			__builtin_trap();
		if (in.p == in.end)
			return;
		char c = *in.p;
		if (c == '"')
			check_string(in.p, in.end, &in);
		else if (c == '-' || (c >= '0' && c <= '9'))
			check_number(in.p, in.end, &in);
		else if (c == 't' || c == 'f' || c == 'n')
			check_literal(in.p, in.end, &in);
		else
			in.p++;
	}
}

/* ---- the escaper on raw bytes ----------------------------------------------------------------- */

static void check_escape(const char *doc, size_t size)
{
	size_t cap = 6 * size + 1, n, cut_n, back_len, again_len, cut = 1 + (size ? (unsigned char)doc[0] : 0);
	char *out = malloc(cap), *part = malloc(cap), *back = malloc(3 * size + 1), *again = malloc(3 * size + 1);
	bool complete, cut_complete, nul = memchr(doc, '\0', size) != NULL;
	int r;

	if (!out || !part || !back || !again)
		abort();
	n = sg_json_escape(doc, size, out, cap, &complete);
	if (!complete || n != strlen(out))
		__builtin_trap();
	r = reread(doc, size, 3 * size + 1, back, &back_len); /* U+FFFD: 3 bytes for 1 */
	if (nul ? r != -EINVAL : r != 0)
		__builtin_trap();
	if (r == 0 && sg_utf8_valid(doc, size) && (back_len != size || memcmp(back, doc, size) != 0))
		__builtin_trap();
	if (r == 0 && !sg_utf8_valid(back, back_len))
		__builtin_trap();
	/* cut short: a prefix of the whole, less than one escape (6 bytes) short of the room */
	cut = cut % (n + 1) + 1;
	cut_n = sg_json_escape(doc, size, part, cut, &cut_complete);
	if (cut_n >= cut || strlen(part) != cut_n || memcmp(part, out, cut_n) != 0 || cut_complete != (cut == n + 1))
		__builtin_trap();
	if (!cut_complete && cut_n + 6 < cut)
		__builtin_trap();
	if (!nul) {
		struct sg_json_in in;
		char *q = malloc(cut_n + 2);

		if (!q)
			abort();
		q[0] = '"';
		memcpy(q + 1, part, cut_n);
		q[cut_n + 1] = '"';
		in = (struct sg_json_in){.p = q, .end = q + cut_n + 2};
		if (sg_json_string(&in, again, 3 * size + 1, &again_len) != 0 || in.p != in.end || again_len > back_len ||
		    memcmp(again, back, again_len) != 0)
			__builtin_trap();
		free(q);
	}
	free(out);
	free(part);
	free(back);
	free(again);
}

/* ---- the walk over objects and arrays --------------------------------------------------------- */

#define WALK_DEPTH_MAX 256

static char *walk_buf; /* a decoded name or string: never longer than the input */
static size_t walk_room;

/*
 * The value at the cursor, read with the lexer and the walk (sg_json_member(), sg_json_element())
 * and, when V is not NULL, compared with jansson's reading of it: the same names in the same order,
 * the same strings, numbers and literals. 0, -EINVAL, or -ELOOP deeper than WALK_DEPTH_MAX.
 */
static int walk_value(struct sg_json_in *in, json_t *v, int depth)
{
	const char *s = in->p;
	size_t len;
	int r;

	if (in->p >= in->end)
		return sg_json_number(in); /* nothing there: the lexer says so */
	if (*in->p == '{' || *in->p == '[') {
		bool obj = *in->p == '{', open = false;
		void *it = obj && v ? json_object_iter(v) : NULL;
		size_t i = 0;

		if (depth >= WALK_DEPTH_MAX)
			return -ELOOP;
		if (v && (obj ? !json_is_object(v) : !json_is_array(v)))
			__builtin_trap();
		while ((r = obj ? sg_json_member(in, &open, walk_buf, walk_room, &len) : sg_json_element(in, &open)) > 0) {
			json_t *child = NULL;

			if (in->p > in->end || (obj && strlen(walk_buf) != len))
				__builtin_trap();
			if (v && obj) { /* the same name, in the same place */
				if (!it || strcmp(json_object_iter_key(it), walk_buf) != 0)
					__builtin_trap();
				child = json_object_iter_value(it);
				it = json_object_iter_next(v, it);
			} else if (v) {
				if (i >= json_array_size(v))
					__builtin_trap();
				child = json_array_get(v, i++);
			}
			if ((r = walk_value(in, child, depth + 1)) < 0)
				return r;
		}
		if (r < 0) {
			if (r == -EINVAL && !in->why)
				__builtin_trap();
			return r;
		}
		if (v && (obj ? it != NULL : i != json_array_size(v)))
			__builtin_trap(); /* jansson has more */
		return 0;
	}
	if (*in->p == '"') {
		if ((r = sg_json_string(in, walk_buf, walk_room, &len)) < 0)
			return r;
		if (v && (!json_is_string(v) || json_string_length(v) != len ||
		          memcmp(json_string_value(v), walk_buf, len) != 0))
			__builtin_trap();
		return 0;
	}
	if (sg_json_lit(in, "true") || sg_json_lit(in, "false") || sg_json_lit(in, "null")) {
		if (v && !(*s == 't' ? json_is_true(v) : *s == 'f' ? json_is_false(v) : json_is_null(v)))
			__builtin_trap();
		return 0;
	}
	if ((r = sg_json_number(in)) < 0)
		return r;
	if (v) {
		len = (size_t)(in->p - s);
		memcpy(walk_buf, s, len);
		walk_buf[len] = '\0';
		if (!json_is_number(v) || json_number_value(v) != strtod(walk_buf, NULL))
			__builtin_trap();
	}
	return 0;
}

/*
 * A document that starts with an object or an array, walked and compared with jansson: what
 * jansson takes the walk takes, with the same contents; what the walk takes in valid UTF-8
 * jansson takes too, unless a name comes twice or a number is out of its range.
 */
static void check_document(const char *doc, size_t size)
{
	struct sg_json_in in = {.p = doc, .end = doc + size};
	json_error_t err;
	json_t *o;
	bool nul;
	int r;

	sg_json_ws(&in);
	if (in.p == in.end || (*in.p != '{' && *in.p != '['))
		return;
	walk_room = size + 1;
	walk_buf = malloc(walk_room);
	if (!walk_buf)
		abort();
	/* jansson steps over a NUL byte between tokens ({"a":1\0}), which RFC 8259 does not allow */
	nul = memchr(doc, '\0', size) != NULL;
	o = nul ? NULL : json_loadb(doc, size, JSON_REJECT_DUPLICATES, &err);
	r = walk_value(&in, o, 0);
	if (r == 0)
		sg_json_ws(&in);
	if (r != -ELOOP) {
		bool taken = r == 0 && in.p == in.end;

		if (o && !taken)
			__builtin_trap();
		if (!o && taken && !nul && sg_utf8_valid(doc, size) && json_error_code(&err) != json_error_duplicate_key &&
		    json_error_code(&err) != json_error_numeric_overflow)
			__builtin_trap();
	}
	json_decref(o);
	free(walk_buf);
	walk_buf = NULL;
}

/* ---- the lines driver's leaves ---------------------------------------------------------------- */

#define MAX_LEAVES 600

struct leaf {
	char path[LINES_PATH_MAX + 1];
	bool is_string;
	double number;
	char *string;
};

static struct leaf leaves[MAX_LEAVES];
static size_t n_leaves;
static bool line_failed;

static void leaf_emit(struct sg_dev *dev, const struct sg_reading *r, void *userdata)
{
	struct leaf *l = &leaves[n_leaves];

	(void)dev;
	(void)userdata;
	fuzz_check_name(r->field);
	if (strlen(r->field) > LINES_PATH_MAX || n_leaves == MAX_LEAVES)
		__builtin_trap();
	for (size_t i = 0; i < n_leaves; i++)
		if (strcmp(leaves[i].path, r->field) == 0)
			__builtin_trap();
	strcpy(l->path, r->field);
	l->is_string = r->kind == SG_VALUE_STRING;
	l->number = r->number;
	l->string = l->is_string ? strdup(r->string) : NULL;
	n_leaves++;
}

static void leaf_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata)
{
	(void)dev;
	(void)userdata;
	if ((unsigned)f >= SG_FAIL_MAX_ || !detail)
		__builtin_trap();
	line_failed = true;
}

/* jansson's leaves of object O under PATH[0..PLEN), compared in order with the driver's from *I on. */
static void oracle_leaves(json_t *o, char *path, size_t plen, size_t *i)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		size_t klen = strlen(key), n = plen + (plen ? 1 : 0) + klen;
		const struct leaf *l = &leaves[*i];

		if (n > LINES_PATH_MAX || klen == 0)
			__builtin_trap(); /* the driver refuses such a line */
		if (plen)
			path[plen] = '.';
		memcpy(path + n - klen, key, klen);
		path[n] = '\0';
		fuzz_check_name(path + n - klen); /* nor a key the driver refuses */
		if (json_is_object(v)) {
			oracle_leaves(v, path, n, i);
		} else if (!json_is_array(v) && !json_is_null(v)) {
			if (*i >= n_leaves || strcmp(l->path, path) != 0)
				__builtin_trap();
			if (json_is_string(v) ? !l->is_string || strcmp(l->string, json_string_value(v)) != 0
			                      : l->is_string || l->number != (json_is_true(v) ? 1 : json_is_false(v) ? 0
			                                                                     : json_number_value(v)))
				__builtin_trap();
			(*i)++;
		}
		path[plen] = '\0';
	}
}

static void check_lines(const uint8_t *data, size_t size)
{
	size_t len = 0, at = 0;
	uint64_t frames;
	struct sg_dev dev = {
		.name = "fuzz", .driver = &sg_driver_lines, .opts = fuzz_opts[0], .fd = fuzz_null_fd,
		.path = "/dev/null", .address = -1, .interval_s = 1, .emit = leaf_emit, .on_fail = leaf_fail,
	};
	static const uint8_t nl = '\n';

	while (len < size && data[len] != '\n' && data[len] != '\r')
		len++;
	dev.state = calloc(1, sg_driver_lines.state_size);
	if (!dev.state || sg_driver_lines.init(&dev) < 0)
		abort();
	n_leaves = 0;
	line_failed = false;
	frames = dev.stats.frames;
	sg_driver_lines.feed(&dev, data, len);
	sg_driver_lines.feed(&dev, &nl, 1);
	if (dev.stats.frames != frames) { /* taken: the oracle must find the same leaves */
		json_error_t err;
		json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &err);
		char path[LINES_PATH_MAX + 1] = "";

		if (line_failed)
			__builtin_trap();
		if (!o && json_error_code(&err) != json_error_numeric_overflow)
			__builtin_trap();
		if (o) {
			if (!json_is_object(o))
				__builtin_trap();
			oracle_leaves(o, path, 0, &at);
			if (at != n_leaves)
				__builtin_trap();
			json_decref(o);
		}
	} else if (n_leaves) {
		__builtin_trap(); /* readings of a line it did not take */
	}
	for (size_t i = 0; i < n_leaves; i++)
		free(leaves[i].string);
	if (sg_driver_lines.fini)
		sg_driver_lines.fini(&dev);
	free(dev.state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const opts[] = {"format = \"json\";"};
	char *doc = malloc(size ? size : 1); /* exactly the input: ASan sees any read past it */

	if (!doc)
		abort();
	fuzz_setup(&sg_driver_lines, opts, 1);
	memcpy(doc, data, size);
	check_tokens(doc, size);
	check_escape(doc, size);
	check_document(doc, size);
	check_lines(data, size);
	free(doc);
	return 0;
}
