/*
 * test_slowlog.c - the JSON writer (json.c), slow-query records, their file
 * and ring (slowlog.c), and per-fingerprint statistics (querystats.c).
 * Output is checked by a strict JSON parser written here, independently of
 * json.c (its UTF-8 check decodes code points instead of matching byte
 * ranges), which also decodes strings for round trips.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "querystats.h"
#include "slowlog.h"
#include "suites.h"

/* ----- a strict JSON parser (RFC 8259) ----- */

struct jparse {
	const unsigned char *s;
	size_t n, i;
	int depth;
	struct obuf *decoded; /* receives the decoded bytes of strings, or NULL */
};

/* The length of the well-formed UTF-8 character at p, or 0; *cp receives it. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t min;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		len = 2, min = 0x80, *cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3, min = 0x800, *cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, *cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

static void utf8_encode(struct obuf *ob, uint32_t cp)
{
	uint8_t b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (uint8_t)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | (cp >> 6)), b[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | (cp >> 12)), b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | (cp >> 18)), b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	obuf_put(ob, b, n);
}

static void jp_ws(struct jparse *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
			       p->s[p->i] == '\r'))
		p->i++;
}

static bool jp_hex4(struct jparse *p, uint32_t *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		if (p->i >= p->n)
			return false;
		unsigned char c = p->s[p->i++];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return false;
		*v = (*v << 4) | (uint32_t)d;
	}
	return true;
}

static bool jp_string(struct jparse *p)
{
	if (p->i >= p->n || p->s[p->i] != '"')
		return false;
	p->i++;
	while (p->i < p->n) {
		unsigned char c = p->s[p->i];
		if (c == '"') {
			p->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c != '\\') {
			uint32_t cp;
			size_t len = utf8_decode(p->s + p->i, p->n - p->i, &cp);
			if (len == 0)
				return false;
			if (p->decoded != NULL)
				obuf_put(p->decoded, p->s + p->i, len);
			p->i += len;
			continue;
		}
		if (++p->i >= p->n)
			return false;
		c = p->s[p->i++];
		const char *named = strchr("\"\\/bfnrt", c);
		if (c != '\0' && named != NULL) {
			static const char values[] = "\"\\/\b\f\n\r\t";
			if (p->decoded != NULL)
				obuf_put_u8(p->decoded, (uint8_t)values[named - "\"\\/bfnrt"]);
			continue;
		}
		uint32_t cp;
		if (c != 'u' || !jp_hex4(p, &cp))
			return false;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return false; /* a lone low surrogate */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;
			if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
				return false;
			p->i += 2;
			if (!jp_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return false;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (p->decoded != NULL)
			utf8_encode(p->decoded, cp);
	}
	return false;
}

static bool jp_digits(struct jparse *p)
{
	size_t start = p->i;
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

static bool jp_number(struct jparse *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0')
		p->i++;
	else if (p->i >= p->n || p->s[p->i] < '1' || p->s[p->i] > '9' || !jp_digits(p))
		return false;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (!jp_digits(p))
			return false;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!jp_digits(p))
			return false;
	}
	return true;
}

static bool jp_value(struct jparse *p);

static bool jp_container(struct jparse *p, unsigned char close, bool object)
{
	if (++p->depth > 64)
		return false;
	p->i++;
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		p->depth--;
		return true;
	}
	for (;;) {
		jp_ws(p);
		if (object) {
			if (!jp_string(p))
				return false;
			jp_ws(p);
			if (p->i >= p->n || p->s[p->i++] != ':')
				return false;
		}
		if (!jp_value(p))
			return false;
		jp_ws(p);
		if (p->i >= p->n)
			return false;
		unsigned char c = p->s[p->i++];
		if (c == close) {
			p->depth--;
			return true;
		}
		if (c != ',')
			return false;
	}
}

static bool jp_literal(struct jparse *p, const char *word)
{
	size_t len = strlen(word);
	if (p->n - p->i < len || memcmp(p->s + p->i, word, len) != 0)
		return false;
	p->i += len;
	return true;
}

static bool jp_value(struct jparse *p)
{
	jp_ws(p);
	if (p->i >= p->n)
		return false;
	switch (p->s[p->i]) {
	case '{':
		return jp_container(p, '}', true);
	case '[':
		return jp_container(p, ']', false);
	case '"':
		return jp_string(p);
	case 't':
		return jp_literal(p, "true");
	case 'f':
		return jp_literal(p, "false");
	case 'n':
		return jp_literal(p, "null");
	default:
		return jp_number(p);
	}
}

/* true when s[0..n) is exactly one JSON value; decoded (may be NULL) gets a string's bytes. */
static bool json_valid(const void *s, size_t n, struct obuf *decoded)
{
	struct jparse p = {s, n, 0, 0, decoded};
	if (!jp_value(&p))
		return false;
	jp_ws(&p);
	return p.i == n;
}

/* The text of an obuf as a NUL-terminated string (for ck_assert_str_eq). */
static const char *ob_str(struct obuf *ob)
{
	obuf_put_u8(ob, 0);
	ob->len--;
	return (const char *)ob->data;
}

/* ----- json.c ----- */

/* json_put_string of n bytes compared with what is expected. */
static void expect_json(const char *in, size_t n, const char *want)
{
	struct obuf ob;
	obuf_init(&ob, 1 << 16);
	ck_assert(json_put_string(&ob, in, n));
	ck_assert_str_eq(ob_str(&ob), want);
	ck_assert_msg(json_valid(ob.data, ob.len, NULL), "invalid JSON: %s", want);
	obuf_free(&ob);
}

START_TEST(json_escapes_by_name_and_code)
{
	expect_json("", 0, "\"\"");
	expect_json("plain text / ok", 15, "\"plain text / ok\"");
	expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	expect_json("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	expect_json("a\0b", 3, "\"a\\u0000b\"");
	expect_json("\x0b", 1, "\"\\u000b\"");
}
END_TEST

START_TEST(json_passes_valid_utf8)
{
	expect_json("\xc3\xa9", 2, "\"\xc3\xa9\"");                  /* U+00E9 */
	expect_json("\xc2\x80", 2, "\"\xc2\x80\"");                  /* U+0080, smallest two-byte */
	expect_json("\xe0\xa0\x80", 3, "\"\xe0\xa0\x80\"");          /* U+0800 */
	expect_json("\xed\x9f\xbf", 3, "\"\xed\x9f\xbf\"");          /* U+D7FF, below surrogates */
	expect_json("\xee\x80\x80", 3, "\"\xee\x80\x80\"");          /* U+E000, above surrogates */
	expect_json("\xef\xbf\xbf", 3, "\"\xef\xbf\xbf\"");          /* U+FFFF */
	expect_json("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");  /* U+1F600 */
	expect_json("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");  /* U+10FFFF */
	expect_json("\xe2\x80\xa7", 3, "\"\xe2\x80\xa7\"");          /* U+2027, next to U+2028 */
}
END_TEST

START_TEST(json_escapes_line_separators)
{
	expect_json("a\xe2\x80\xa8z", 5, "\"a\\u2028z\"");
	expect_json("\xe2\x80\xa9", 3, "\"\\u2029\"");
}
END_TEST

#define FFFD "\\ufffd"

START_TEST(json_replaces_every_byte_of_invalid_utf8)
{
	expect_json("\x80", 1, "\"" FFFD "\"");                                 /* stray */
	expect_json("a\xbf\x80z", 4, "\"a" FFFD FFFD "z\"");                    /* stray run */
	expect_json("\xc0\x80", 2, "\"" FFFD FFFD "\"");                        /* overlong NUL */
	expect_json("\xc1\xbf", 2, "\"" FFFD FFFD "\"");                        /* overlong */
	expect_json("\xe0\x80\x80", 3, "\"" FFFD FFFD FFFD "\"");               /* overlong */
	expect_json("\xe0\x9f\xbf", 3, "\"" FFFD FFFD FFFD "\"");               /* overlong */
	expect_json("\xf0\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"");      /* overlong */
	expect_json("\xf0\x8f\xbf\xbf", 4, "\"" FFFD FFFD FFFD FFFD "\"");      /* overlong */
	expect_json("\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\"");               /* U+D800 */
	expect_json("\xed\xbf\xbf", 3, "\"" FFFD FFFD FFFD "\"");               /* U+DFFF */
	expect_json("\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"");      /* U+110000 */
	expect_json("\xf5\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"");      /* F5 lead */
	expect_json("\xfe\xff", 2, "\"" FFFD FFFD "\"");
	expect_json("\xe2\x82", 2, "\"" FFFD FFFD "\"");                        /* cut at the end */
	expect_json("\xe2\x82z", 3, "\"" FFFD FFFD "z\"");                      /* truncated */
	expect_json("\xf0\x9f\x98", 3, "\"" FFFD FFFD FFFD "\"");               /* truncated */
	expect_json("\xc3\xc3\xa9", 3, "\"" FFFD "\xc3\xa9\"");                 /* lone lead */
	expect_json("\xe2\x80", 2, "\"" FFFD FFFD "\"");                        /* half of U+2028 */
}
END_TEST

/* xorshift64*: a fixed seed makes every run see the same strings. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* One byte, biased toward the awkward ones. */
static unsigned char awkward_byte(void)
{
	static const unsigned char pool[] = {0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20,
					     '"',  '\\', '/',  'a',  0x7f, 0x80, 0x8f, 0x90, 0xa0,
					     0xa8, 0xa9, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe2, 0xed,
					     0xef, 0xf0, 0xf4, 0xf5, 0xff};
	uint64_t r = rng_next();
	return (r & 1) != 0 ? pool[(r >> 8) % sizeof(pool)] : (unsigned char)(r >> 16);
}

START_TEST(json_round_trips_random_bytes)
{
	rng_state = 0x5eed;
	struct obuf ob, decoded, want;
	obuf_init(&ob, 1 << 16);
	obuf_init(&decoded, 1 << 16);
	obuf_init(&want, 1 << 16);
	unsigned char in[64];
	for (int round = 0; round < 100000; round++) {
		size_t n = rng_next() % sizeof(in);
		for (size_t i = 0; i < n; i++)
			in[i] = awkward_byte();
		/* Sprinkle whole valid characters, U+2028 among them. */
		static const char *chars[] = {"\xe2\x80\xa8", "\xe2\x80\xa9", "\xf0\x9f\x98\x80",
					      "\xc3\xa9", "\xed\x9f\xbf"};
		if (n >= 4 && rng_next() % 2 == 0) {
			const char *c = chars[rng_next() % 5];
			memcpy(in + rng_next() % (n - 3), c, strlen(c));
		}
		obuf_reset(&ob);
		obuf_reset(&decoded);
		obuf_reset(&want);
		/* Check marks a point per ck_assert: a plain test keeps 100k rounds fast. */
		bool ok = json_put_string(&ob, (const char *)in, n) &&
			  json_valid(ob.data, ob.len, &decoded);
		for (size_t i = 0; ok && i < ob.len; i++) {
			ok = ob.data[i] >= 0x20 &&
			     (i + 2 >= ob.len || ob.data[i] != 0xe2 || ob.data[i + 1] != 0x80 ||
			      (ob.data[i + 2] != 0xa8 && ob.data[i + 2] != 0xa9));
		}
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			size_t len = utf8_decode(in + i, n - i, &cp);
			if (len == 0) {
				obuf_put(&want, "\xef\xbf\xbd", 3);
				i++;
			} else {
				obuf_put(&want, in + i, len);
				i += len;
			}
		}
		ok = ok && decoded.len == want.len &&
		     memcmp(decoded.data, want.data, want.len) == 0;
		if (!ok)
			ck_abort_msg("round %d: %.*s", round, (int)ob.len, (const char *)ob.data);
	}
	obuf_free(&ob);
	obuf_free(&decoded);
	obuf_free(&want);
}
END_TEST

START_TEST(json_reports_the_limit)
{
	struct obuf ob;
	obuf_init(&ob, 8);
	ck_assert(json_put_string(&ob, "abcdef", 6));
	ck_assert(!json_put_string(&ob, "x", 1));
	obuf_free(&ob);
	obuf_init(&ob, 7); /* "\n\n\n" takes 8 */
	ck_assert(!json_put_string(&ob, "\n\n\n", 3));
	ck_assert(ob.failed);
	obuf_free(&ob);
	obuf_init(&ob, 4);
	ck_assert(!json_put_fixed3(&ob, 1.0));
	obuf_free(&ob);
}
END_TEST

START_TEST(json_writes_keys_numbers_and_literals)
{
	struct obuf ob;
	obuf_init(&ob, 4096);
	obuf_put_u8(&ob, '{');
	ck_assert(json_put_key(&ob, true, "a") && json_put_u64(&ob, 0));
	ck_assert(json_put_key(&ob, false, "b\"") && json_put_u64(&ob, UINT64_MAX));
	ck_assert(json_put_key(&ob, false, "c") && json_put_fixed3(&ob, 1.5));
	ck_assert(json_put_key(&ob, false, "d") && json_put_fixed3(&ob, 0.0005));
	ck_assert(json_put_key(&ob, false, "e") && json_put_fixed3(&ob, -2.25));
	ck_assert(json_put_key(&ob, false, "f") && json_put_fixed3(&ob, NAN));
	ck_assert(json_put_key(&ob, false, "g") && json_put_fixed3(&ob, INFINITY));
	ck_assert(json_put_key(&ob, false, "h") && json_put_bool(&ob, true));
	ck_assert(json_put_key(&ob, false, "i") && json_put_bool(&ob, false));
	ck_assert(json_put_key(&ob, false, "j") && json_put_null(&ob));
	obuf_put_u8(&ob, '}');
	ck_assert_str_eq(ob_str(&ob), "{\"a\":0,\"b\\\"\":18446744073709551615,\"c\":1.500,"
				      "\"d\":0.001,\"e\":-2.250,\"f\":null,\"g\":null,\"h\":true,"
				      "\"i\":false,\"j\":null}");
	ck_assert(json_valid(ob.data, ob.len, NULL));
	obuf_reset(&ob);
	ck_assert(json_put_fixed3(&ob, -1.7976931348623157e308));
	ck_assert(json_valid(ob.data, ob.len, NULL));
	obuf_free(&ob);
}
END_TEST

START_TEST(json_checker_rejects_bad_json)
{
	static const char *bad[] = {"",         "{",           "{\"a\"}",     "[1,]",
				    "01",       "1.",          "-",           "\"a",
				    "\"\\x\"",  "\"\\ud800\"", "\"\\udc00\"", "\"\x01\"",
				    "\"\xc0\x80\"", "tru",     "[1] x",       "{\"a\":1,}",
				    "\"\xed\xa0\x80\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!json_valid(bad[i], strlen(bad[i]), NULL), "accepted: %s", bad[i]);
	static const char *good[] = {"0", "-0.5e+3", "[]", "{}", "\"\\ud83d\\ude00\"",
				     " [ {\"a\" : [ null , true ] } ] "};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(json_valid(good[i], strlen(good[i]), NULL), "rejected: %s", good[i]);
}
END_TEST

/* ----- slowlog.c ----- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	ck_assert_ptr_nonnull(d);
	return d;
}

/* A malloc'd record as the glue builds it; rows tells records apart. */
static struct slow_record *make_record(uint64_t rows)
{
	struct slow_record *rec = calloc(1, sizeof(*rec));
	ck_assert_ptr_nonnull(rec);
	rec->time = 1700000000.123;
	strcpy(rec->database, "app");
	strcpy(rec->user, "alice");
	strcpy(rec->application_name, "psql");
	strcpy(rec->client_addr, "127.0.0.1:5555");
	strcpy(rec->server, "10.0.0.2:5432");
	rec->role = "replica";
	rec->duration_ms = 1234.5678;
	rec->rows = rows;
	rec->fingerprint = 0x00abcdef01234567ULL;
	rec->normalized = xstrdup("select * from t where id = ?");
	rec->text = xstrdup("SELECT * FROM t WHERE id = $1");
	return rec;
}

/* slowlog_format of rec into a fresh buffer; the caller frees it. */
static void format_record(const struct slow_record *rec, struct obuf *ob)
{
	obuf_init(ob, 4 << 20);
	size_t n = slowlog_format(rec, ob);
	ck_assert_uint_eq(n, ob->len);
	ck_assert_msg(json_valid(ob->data, ob->len, NULL), "invalid JSON line");
	ck_assert(memchr(ob->data, '\n', ob->len) == NULL);
}

START_TEST(slowlog_formats_a_full_record)
{
	struct slow_record *rec = make_record(42);
	strcpy(rec->sqlstate, "57014");
	rec->parameters = xstrdup("[\"7\"]");
	rec->plan = xstrdup("[\n  {\n    \"Plan\": {\n      \"Node Type\": \"Seq Scan\",\n"
			    "      \"Filter\": \"(id = $1)\"\n    }\n  }\n]");
	struct obuf ob;
	format_record(rec, &ob);
	ck_assert_str_eq(ob_str(&ob),
			 "{\"time\":\"2023-11-14T22:13:20.123Z\",\"database\":\"app\","
			 "\"user\":\"alice\",\"application_name\":\"psql\","
			 "\"client\":\"127.0.0.1:5555\",\"server\":\"10.0.0.2:5432\","
			 "\"role\":\"replica\",\"duration_ms\":1234.568,\"rows\":42,"
			 "\"sqlstate\":\"57014\",\"fingerprint\":\"00abcdef01234567\","
			 "\"normalized\":\"select * from t where id = ?\","
			 "\"query\":\"SELECT * FROM t WHERE id = $1\",\"parameters\":[\"7\"],"
			 "\"plan\":[{\"Plan\":{\"Node Type\":\"Seq Scan\","
			 "\"Filter\":\"(id = $1)\"}}]}");
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

START_TEST(slowlog_omits_or_nulls_missing_fields)
{
	struct slow_record *rec = make_record(0);
	rec->time = 0.0;
	rec->role = NULL;
	rec->duration_ms = 0;
	rec->fingerprint = 0;
	strcpy(rec->plan_skipped, "rate limited");
	struct obuf ob;
	format_record(rec, &ob);
	ck_assert_str_eq(ob_str(&ob),
			 "{\"time\":\"1970-01-01T00:00:00.000Z\",\"database\":\"app\","
			 "\"user\":\"alice\",\"application_name\":\"psql\","
			 "\"client\":\"127.0.0.1:5555\",\"server\":\"10.0.0.2:5432\","
			 "\"role\":null,\"duration_ms\":0.000,\"rows\":0,"
			 "\"sqlstate\":null,\"fingerprint\":\"0000000000000000\","
			 "\"normalized\":\"select * from t where id = ?\","
			 "\"query\":\"SELECT * FROM t WHERE id = $1\",\"plan\":null,"
			 "\"plan_skipped\":\"rate limited\"}");
	obuf_free(&ob);
	rec->plan_skipped[0] = '\0';
	rec->database[0] = '\0';
	free(rec->text);
	rec->text = NULL;
	format_record(rec, &ob);
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"database\":\"\","));
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"query\":null,\"plan\":null}"));
	obuf_free(&ob);
	/* A whitespace-only plan is no value: null rather than nothing. */
	rec->plan = xstrdup(" \n ");
	format_record(rec, &ob);
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"plan\":null}"));
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

START_TEST(slowlog_puts_the_plan_on_one_line)
{
	struct slow_record *rec = make_record(1);
	/* Whitespace between tokens goes, inside strings stays; raw control bytes are escaped. */
	rec->plan = xstrdup("\r\n[ {\t\"a b\" : \"x\ty\\\" \\n\" ,\n \"c\":[1, 2]} ]\n");
	struct obuf ob;
	format_record(rec, &ob);
	ck_assert_ptr_nonnull(
		strstr(ob_str(&ob), "\"plan\":[{\"a b\":\"x\\u0009y\\\" \\n\",\"c\":[1,2]}]}"));
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

START_TEST(slowlog_formats_time_in_utc_milliseconds)
{
	static const struct {
		double t;
		const char *want;
	} cases[] = {
		{1700000000.123, "\"2023-11-14T22:13:20.123Z\""},
		{1700000000.9996, "\"2023-11-14T22:13:21.000Z\""},
		{951782400.5, "\"2000-02-29T00:00:00.500Z\""},
		{-0.001, "\"1969-12-31T23:59:59.999Z\""},
		{NAN, "null"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slow_record *rec = make_record(0);
		rec->time = cases[i].t;
		struct obuf ob;
		format_record(rec, &ob);
		char want[64];
		snprintf(want, sizeof(want), "{\"time\":%s,", cases[i].want);
		ck_assert_msg(strncmp(ob_str(&ob), want, strlen(want)) == 0, "%s", ob_str(&ob));
		obuf_free(&ob);
		slowlog_record_free(rec);
	}
}
END_TEST

START_TEST(slowlog_escapes_awkward_text)
{
	struct slow_record *rec = make_record(1);
	static const char awkward[] = "SELECT '\"\\\b\f\n\r\t\x01\x7f\xe2\x80\xa8\xe2\x80\xa9"
				      "\xc3\xa9\xf0\x9f\x98\x80\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80"
				      "\x80\xe2\x82'";
	free(rec->text);
	rec->text = xstrdup(awkward);
	strcpy(rec->application_name, "app\nname\"");
	strcpy(rec->user, "\xff");
	struct obuf ob, decoded;
	format_record(rec, &ob);
	const char *q = strstr(ob_str(&ob), "\"query\":");
	ck_assert_ptr_nonnull(q);
	const char *end = strstr(q, ",\"plan\":");
	ck_assert_ptr_nonnull(end);
	obuf_init(&decoded, 4096);
	q += strlen("\"query\":");
	ck_assert(json_valid(q, (size_t)(end - q), &decoded));
	static const char want[] = "SELECT '\"\\\b\f\n\r\t\x01\x7f\xe2\x80\xa8\xe2\x80\xa9"
				   "\xc3\xa9\xf0\x9f\x98\x80"
				   "\xef\xbf\xbd\xef\xbf\xbd"                         /* C0 80 */
				   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"             /* ED A0 80 */
				   "\xef\xbf\xbd\xef\xbf\xbd"                         /* F4 90 */
				   "\xef\xbf\xbd\xef\xbf\xbd"                         /* 80 80 */
				   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd'";           /* 80 E2 82 */
	ck_assert_uint_eq(decoded.len, strlen(want));
	ck_assert(memcmp(decoded.data, want, decoded.len) == 0);
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"application_name\":\"app\\nname\\\"\""));
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"user\":\"\\ufffd\""));
	obuf_free(&decoded);
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

/* A plan of about size bytes: a JSON array of one long string, pretty-printed. */
static char *big_plan(size_t size)
{
	char *plan = malloc(size + 32);
	ck_assert_ptr_nonnull(plan);
	strcpy(plan, "[\n  {\"Plan\": \"");
	size_t at = strlen(plan);
	memset(plan + at, 'p', size);
	strcpy(plan + at + size, "\"}\n]");
	return plan;
}

START_TEST(slowlog_drops_a_plan_past_one_mebibyte)
{
	/* Just fits: the object with its plan is SLOWLOG_LINE_MAX - 1 bytes. */
	struct slow_record *rec = make_record(1);
	struct obuf ob;
	rec->plan = big_plan(0);
	format_record(rec, &ob);
	size_t base = ob.len;
	obuf_free(&ob);
	free(rec->plan);
	rec->plan = big_plan(SLOWLOG_LINE_MAX - 1 - base);
	format_record(rec, &ob);
	ck_assert_uint_eq(ob.len, SLOWLOG_LINE_MAX - 1);
	ck_assert_ptr_null(strstr(ob_str(&ob), "plan_skipped"));
	obuf_free(&ob);
	/* One byte more does not. */
	free(rec->plan);
	rec->plan = big_plan(SLOWLOG_LINE_MAX - base);
	format_record(rec, &ob);
	ck_assert_uint_lt(ob.len, 4096);
	ck_assert_ptr_nonnull(
		strstr(ob_str(&ob), "\"plan\":null,\"plan_skipped\":\"plan too large\"}"));
	obuf_free(&ob);
	/* Nor after bytes already sent, which obuf moves away while it grows. */
	obuf_init(&ob, 4 << 20);
	char sent[1000];
	memset(sent, 's', sizeof(sent));
	obuf_put(&ob, sent, sizeof(sent));
	ob.off = sizeof(sent);
	size_t n = slowlog_format(rec, &ob);
	ck_assert_uint_eq(n, ob.len - ob.off);
	ck_assert_uint_lt(n, 4096);
	ck_assert(json_valid(ob.data + ob.off, n, NULL));
	obuf_free(&ob);
	/* emit makes the kept record say the same, and frees the plan. */
	struct slowlog *sl = slowlog_create(2);
	ck_assert_ptr_nonnull(sl);
	slowlog_emit(sl, rec);
	const struct slow_record *kept = slowlog_get(sl, 0);
	ck_assert_ptr_eq(kept, rec);
	ck_assert_ptr_null(kept->plan);
	ck_assert_str_eq(kept->plan_skipped, "plan too large");
	ck_assert(!kept->truncated);
	slowlog_free(sl);
}
END_TEST

START_TEST(slowlog_cuts_texts_too_large_without_a_plan)
{
	size_t size = 3 << 20;
	struct slow_record *rec = make_record(1);
	free(rec->text);
	/* 'a' then two-byte characters: the cut at SLOWLOG_TEXT_KEEP falls inside one. */
	rec->text = malloc(size + 1);
	ck_assert_ptr_nonnull(rec->text);
	rec->text[0] = 'a';
	for (size_t i = 1; i + 1 < size; i += 2)
		memcpy(rec->text + i, "\xc3\xa9", 2);
	rec->text[size - 1] = '\0';
	rec->parameters = xstrdup("[\"1\"]");
	rec->plan = xstrdup("[{\"Plan\": {}}]");
	struct obuf ob;
	format_record(rec, &ob);
	ck_assert_uint_lt(ob.len, SLOWLOG_LINE_MAX);
	ck_assert_ptr_null(strstr(ob_str(&ob), "\"parameters\""));
	/* The small plan stays: it was not what made the line too long. */
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"plan\":[{\"Plan\":{}}],\"truncated\":true}"));
	obuf_free(&ob);
	struct slowlog *sl = slowlog_create(1);
	slowlog_emit(sl, rec);
	const struct slow_record *kept = slowlog_get(sl, 0);
	ck_assert(kept->truncated);
	ck_assert_uint_eq(strlen(kept->text), SLOWLOG_TEXT_KEEP - 1);
	ck_assert_ptr_null(kept->parameters);
	ck_assert_ptr_nonnull(kept->plan);
	format_record(kept, &ob);
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"truncated\":true}"));
	obuf_free(&ob);
	slowlog_free(sl);
	/* Both too large: no plan and cut texts. */
	rec = make_record(1);
	free(rec->normalized);
	rec->normalized = malloc(size + 1);
	memset(rec->normalized, '\n', size);
	rec->normalized[size] = '\0';
	rec->plan = big_plan(size);
	format_record(rec, &ob);
	ck_assert_uint_lt(ob.len, SLOWLOG_LINE_MAX);
	ck_assert_ptr_nonnull(strstr(ob_str(&ob), "\"plan\":null,"
						  "\"plan_skipped\":\"plan too large\","
						  "\"truncated\":true}"));
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

START_TEST(slowlog_format_leaves_a_too_small_buffer_unchanged)
{
	struct slow_record *rec = make_record(1);
	struct obuf ob;
	obuf_init(&ob, 64);
	obuf_put(&ob, "prefix", 6);
	ck_assert_uint_eq(slowlog_format(rec, &ob), 0);
	ck_assert_uint_eq(ob.len, 6);
	ck_assert(!ob.failed);
	obuf_free(&ob);
	/* Appending after existing bytes works and counts only the object. */
	obuf_init(&ob, 4096);
	obuf_put(&ob, "prefix", 6);
	size_t n = slowlog_format(rec, &ob);
	ck_assert_uint_eq(n + 6, ob.len);
	ck_assert(json_valid(ob.data + 6, n, NULL));
	obuf_free(&ob);
	slowlog_record_free(rec);
}
END_TEST

/* The rows of the ring, newest first, as "5 4 3". */
static void expect_ring(const struct slowlog *sl, const char *want)
{
	char got[256] = "";
	size_t at = 0;
	for (size_t i = 0; i < slowlog_count(sl); i++)
		at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%llu", i > 0 ? " " : "",
				       (unsigned long long)slowlog_get(sl, i)->rows);
	ck_assert_str_eq(got, want);
	ck_assert_ptr_null(slowlog_get(sl, slowlog_count(sl)));
}

START_TEST(slowlog_ring_keeps_the_newest)
{
	struct slowlog *sl = slowlog_create(3);
	ck_assert_ptr_nonnull(sl);
	expect_ring(sl, "");
	for (uint64_t r = 1; r <= 5; r++)
		slowlog_emit(sl, make_record(r));
	expect_ring(sl, "5 4 3");
	slowlog_set_ring_size(sl, 2);
	expect_ring(sl, "5 4");
	slowlog_emit(sl, make_record(6));
	expect_ring(sl, "6 5");
	slowlog_set_ring_size(sl, 5);
	expect_ring(sl, "6 5");
	for (uint64_t r = 7; r <= 10; r++)
		slowlog_emit(sl, make_record(r));
	expect_ring(sl, "10 9 8 7 6");
	slowlog_set_ring_size(sl, 0);
	expect_ring(sl, "");
	slowlog_emit(sl, make_record(11));
	expect_ring(sl, "");
	slowlog_set_ring_size(sl, 1);
	slowlog_emit(sl, make_record(12));
	slowlog_emit(sl, make_record(13));
	expect_ring(sl, "13");
	slowlog_emit(sl, NULL);
	expect_ring(sl, "13");
	slowlog_free(sl);
	slowlog_free(NULL);

	sl = slowlog_create(0);
	ck_assert_ptr_nonnull(sl);
	slowlog_emit(sl, make_record(1));
	expect_ring(sl, "");
	slowlog_free(sl);
}
END_TEST

static char tmpdir[64];

static void tmpdir_setup(void)
{
	strcpy(tmpdir, "/tmp/slowlog-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The whole file (malloc'd, NUL-terminated); *len gets its size. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	struct obuf ob;
	obuf_init(&ob, 64 << 20);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ck_assert(obuf_put(&ob, chunk, n));
	fclose(f);
	obuf_put_u8(&ob, 0);
	*len = ob.len - 1;
	return (char *)ob.data;
}

/* Checks that every line of a file is a JSON object; returns the rows of each, as "1 2". */
static void expect_lines(const char *path, const char *want)
{
	size_t len;
	char *text = read_file(path, &len);
	char got[256] = "";
	size_t at = 0;
	ck_assert(len == 0 || text[len - 1] == '\n');
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		ck_assert_uint_le((size_t)(nl - line) + 1, SLOWLOG_LINE_MAX);
		ck_assert_msg(json_valid(line, (size_t)(nl - line), NULL), "bad line in %s", path);
		*nl = '\0';
		const char *rows = strstr(line, "\"rows\":");
		ck_assert_ptr_nonnull(rows);
		at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%lu", at > 0 ? " " : "",
				       strtoul(rows + 7, NULL, 10));
		line = nl + 1;
	}
	ck_assert_str_eq(got, want);
	free(text);
}

START_TEST(slowlog_writes_one_line_per_record)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/slow.jsonl", tmpdir);
	struct slowlog *sl = slowlog_create(10);
	ck_assert(slowlog_open(sl, path));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	mode_t mask = umask(0);
	umask(mask);
	ck_assert_int_eq(st.st_mode & 0777, 0640 & ~mask);
	slowlog_emit(sl, make_record(1));
	struct slow_record *rec = make_record(2);
	free(rec->text);
	rec->text = xstrdup("SELECT 'a\nb\xe2\x80\xa8\xff'");
	rec->plan = xstrdup("[\n  {\n    \"Plan\": \"x\\ny\"\n  }\n]");
	slowlog_emit(sl, rec);
	rec = make_record(3);
	rec->plan = big_plan(2 << 20);
	slowlog_emit(sl, rec);
	expect_lines(path, "1 2 3");
	/* Opening the same path again changes nothing; the file keeps its lines. */
	ck_assert(slowlog_open(sl, path));
	slowlog_emit(sl, make_record(4));
	expect_lines(path, "1 2 3 4");
	ck_assert_uint_eq(slowlog_count(sl), 4);
	/* Another path: the old file is closed and keeps what it had. */
	char other[128];
	snprintf(other, sizeof(other), "%s/other.jsonl", tmpdir);
	ck_assert(slowlog_open(sl, other));
	slowlog_emit(sl, make_record(5));
	expect_lines(path, "1 2 3 4");
	expect_lines(other, "5");
	/* No file: the ring only. */
	ck_assert(slowlog_open(sl, ""));
	ck_assert(slowlog_reopen(sl));
	slowlog_emit(sl, make_record(6));
	expect_lines(other, "5");
	expect_ring(sl, "6 5 4 3 2 1");
	ck_assert(slowlog_open(sl, NULL));
	slowlog_free(sl);
}
END_TEST

START_TEST(slowlog_reopens_after_rename)
{
	char path[128], rotated[128];
	snprintf(path, sizeof(path), "%s/slow.jsonl", tmpdir);
	snprintf(rotated, sizeof(rotated), "%s/slow.jsonl.1", tmpdir);
	struct slowlog *sl = slowlog_create(0);
	ck_assert(slowlog_open(sl, path));
	slowlog_emit(sl, make_record(1));
	slowlog_emit(sl, make_record(2));
	ck_assert_int_eq(rename(path, rotated), 0);
	/* Until the reopen, lines follow the renamed file. */
	slowlog_emit(sl, make_record(3));
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert(slowlog_reopen(sl));
	ck_assert_int_eq(access(path, F_OK), 0);
	slowlog_emit(sl, make_record(4));
	expect_lines(rotated, "1 2 3");
	expect_lines(path, "4");
	/* Appends, never truncates. */
	ck_assert(slowlog_reopen(sl));
	slowlog_emit(sl, make_record(5));
	expect_lines(path, "4 5");
	slowlog_free(sl);
}
END_TEST

START_TEST(slowlog_open_failure_keeps_the_ring)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/missing/slow.jsonl", tmpdir);
	struct slowlog *sl = slowlog_create(2);
	ck_assert(!slowlog_open(sl, path));
	slowlog_emit(sl, make_record(1));
	expect_ring(sl, "1");
	ck_assert(!slowlog_reopen(sl));
	/* Once the directory exists, a reopen (logrotate's signal) finds the file. */
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/missing", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert(slowlog_reopen(sl));
	slowlog_emit(sl, make_record(2));
	expect_lines(path, "2");
	expect_ring(sl, "2 1");
	slowlog_free(sl);
}
END_TEST

START_TEST(slowlog_warns_once_about_failed_writes)
{
	char errpath[128];
	snprintf(errpath, sizeof(errpath), "%s/stderr", tmpdir);
	int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(err, 0);
	int saved = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(err, STDERR_FILENO), STDERR_FILENO);
	struct slowlog *sl = slowlog_create(3);
	/* /dev/full fails every write with ENOSPC. */
	ck_assert(slowlog_open(sl, "/dev/full"));
	for (uint64_t r = 1; r <= 5; r++)
		slowlog_emit(sl, make_record(r));
	slowlog_free(sl);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(err);
	size_t len;
	char *text = read_file(errpath, &len);
	const char *first = strstr(text, "could not write to slow query log");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_null(strstr(first + 1, "could not write to slow query log"));
	free(text);
}
END_TEST

/* ----- querystats.c ----- */

static void record(struct querystats *qs, uint64_t fp, uint64_t usec)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "select %llu", (unsigned long long)fp);
	querystats_record(qs, fp, text, (size_t)n, usec, 1, false);
}

/* The fingerprints of the top n, as "3 4 2". */
static void expect_top(const struct querystats *qs, size_t n, const char *want)
{
	const struct querystats_entry *top[64];
	ck_assert_uint_le(n, 64);
	size_t k = querystats_top(qs, top, n);
	char got[512] = "";
	size_t at = 0;
	for (size_t i = 0; i < k; i++)
		at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%llu", i > 0 ? " " : "",
				       (unsigned long long)top[i]->fingerprint);
	ck_assert_str_eq(got, want);
}

START_TEST(querystats_counts_per_fingerprint)
{
	struct querystats *qs = querystats_create(10);
	ck_assert_ptr_nonnull(qs);
	ck_assert_uint_eq(querystats_count(qs), 0);
	querystats_record(qs, 7, "select ?", 8, 100, 3, false);
	querystats_record(qs, 7, "ignored: the text is kept from the first call", 40, 300, 5, true);
	querystats_record(qs, 8, "select ? from t", 15, 50, 0, false);
	ck_assert_uint_eq(querystats_count(qs), 2);
	const struct querystats_entry *top[4];
	ck_assert_uint_eq(querystats_top(qs, top, 4), 2);
	ck_assert_uint_eq(top[0]->fingerprint, 7);
	ck_assert_str_eq(top[0]->normalized, "select ?");
	ck_assert_uint_eq(top[0]->calls, 2);
	ck_assert_uint_eq(top[0]->errors, 1);
	ck_assert_uint_eq(top[0]->rows, 8);
	ck_assert_uint_eq(top[0]->total_usec, 400);
	ck_assert_uint_eq(top[0]->max_usec, 300);
	ck_assert_uint_eq(histogram_count(&top[0]->latency), 2);
	ck_assert_uint_eq(histogram_percentile(&top[0]->latency, 0.95), 300);
	ck_assert_uint_eq(top[1]->fingerprint, 8);
	ck_assert_str_eq(top[1]->normalized, "select ? from t");
	ck_assert_uint_eq(top[1]->errors, 0);
	/* Fingerprint 0 (text unknown) is an ordinary key. */
	querystats_record(qs, 0, "(statement text unknown)", 24, 1, 0, false);
	ck_assert_uint_eq(querystats_count(qs), 3);
	querystats_free(qs);
	querystats_free(NULL);
}
END_TEST

START_TEST(querystats_cuts_long_text_at_a_character)
{
	struct querystats *qs = querystats_create(4);
	char text[2000];
	memset(text, 'a', sizeof(text));
	querystats_record(qs, 1, text, sizeof(text), 1, 0, false);
	/* 1022 'a' then "é": byte 1023 is inside the character. */
	memcpy(text + 1022, "\xc3\xa9", 2);
	querystats_record(qs, 2, text, sizeof(text), 2, 0, false);
	/* A NUL ends the text early. */
	querystats_record(qs, 3, "ab\0cd", 5, 3, 0, false);
	querystats_record(qs, 4, NULL, 0, 4, 0, false);
	const struct querystats_entry *top[4];
	ck_assert_uint_eq(querystats_top(qs, top, 4), 4);
	ck_assert_uint_eq(strlen(top[3]->normalized), 1023);
	ck_assert_uint_eq(strlen(top[2]->normalized), 1022);
	ck_assert_str_eq(top[1]->normalized, "ab");
	ck_assert_str_eq(top[0]->normalized, "");
	querystats_free(qs);
}
END_TEST

START_TEST(querystats_evicts_the_least_recent)
{
	struct querystats *qs = querystats_create(3);
	record(qs, 1, 10);
	record(qs, 2, 20);
	record(qs, 3, 30);
	record(qs, 1, 10); /* 1 is now the most recent: 2 is the oldest */
	record(qs, 4, 40);
	ck_assert_uint_eq(querystats_count(qs), 3);
	expect_top(qs, 10, "4 3 1");
	/* An evicted fingerprint comes back from zero. */
	record(qs, 2, 5);
	expect_top(qs, 10, "4 1 2");
	const struct querystats_entry *top[3];
	querystats_top(qs, top, 3);
	ck_assert_uint_eq(top[2]->calls, 1);
	ck_assert_uint_eq(top[2]->total_usec, 5);
	ck_assert_uint_eq(histogram_count(&top[2]->latency), 1);
	ck_assert_str_eq(top[2]->normalized, "select 2");
	querystats_free(qs);
}
END_TEST

START_TEST(querystats_top_orders_by_time_calls_fingerprint)
{
	struct querystats *qs = querystats_create(16);
	record(qs, 1, 100);
	record(qs, 2, 150);
	record(qs, 2, 150);
	record(qs, 4, 100);
	record(qs, 4, 100);
	record(qs, 4, 100);
	record(qs, 3, 100);
	record(qs, 3, 100);
	record(qs, 3, 100);
	record(qs, 5, 0);
	expect_top(qs, 10, "3 4 2 1 5");
	expect_top(qs, 5, "3 4 2 1 5");
	expect_top(qs, 2, "3 4");
	expect_top(qs, 1, "3");
	expect_top(qs, 0, "");
	querystats_free(qs);
}
END_TEST

START_TEST(querystats_set_max_evicts_and_disables)
{
	struct querystats *qs = querystats_create(5);
	for (uint64_t fp = 1; fp <= 5; fp++)
		record(qs, fp, fp * 10);
	record(qs, 1, 1); /* most recent: survives the shrink */
	querystats_set_max(qs, 2);
	ck_assert_uint_eq(querystats_count(qs), 2);
	expect_top(qs, 10, "5 1");
	record(qs, 6, 1);
	expect_top(qs, 10, "1 6");
	querystats_set_max(qs, 0);
	ck_assert_uint_eq(querystats_count(qs), 0);
	record(qs, 7, 1);
	ck_assert_uint_eq(querystats_count(qs), 0);
	expect_top(qs, 10, "");
	/* Growing again, past the first table size. */
	querystats_set_max(qs, 100);
	for (uint64_t fp = 1; fp <= 150; fp++)
		record(qs, fp, fp);
	ck_assert_uint_eq(querystats_count(qs), 100);
	expect_top(qs, 3, "150 149 148");
	querystats_set_max(qs, 1000);
	ck_assert_uint_eq(querystats_count(qs), 100);
	record(qs, 150, 1);
	expect_top(qs, 1, "150");
	querystats_free(qs);
}
END_TEST

START_TEST(querystats_disabled_with_zero)
{
	struct querystats *qs = querystats_create(0);
	ck_assert_ptr_nonnull(qs);
	record(qs, 1, 1);
	ck_assert_uint_eq(querystats_count(qs), 0);
	expect_top(qs, 4, "");
	querystats_set_max(qs, 1);
	record(qs, 1, 1);
	record(qs, 2, 1);
	ck_assert_uint_eq(querystats_count(qs), 1);
	expect_top(qs, 4, "2");
	querystats_free(qs);
}
END_TEST

static int cmp_entries(const void *pa, const void *pb)
{
	const struct querystats_entry *a = *(const struct querystats_entry *const *)pa;
	const struct querystats_entry *b = *(const struct querystats_entry *const *)pb;
	if (a->total_usec != b->total_usec)
		return a->total_usec > b->total_usec ? -1 : 1;
	if (a->calls != b->calls)
		return a->calls > b->calls ? -1 : 1;
	return a->fingerprint < b->fingerprint ? -1 : a->fingerprint > b->fingerprint;
}

START_TEST(querystats_stays_bounded_under_many_fingerprints)
{
	struct querystats *qs = querystats_create(1000);
	rng_state = 42;
	uint64_t last = 0;
	for (int i = 0; i < 100000; i++) {
		/* Hashes as fingerprints, a few repeating far more often than the rest. */
		uint64_t k = rng_next() % 5000;
		if (rng_next() % 4 == 0)
			k %= 50;
		last = (k + 1) * 0x9e3779b97f4a7c15ULL;
		querystats_record(qs, last, "select ?", 8, rng_next() % 100000, 1,
				  rng_next() % 100 == 0);
	}
	ck_assert_uint_eq(querystats_count(qs), 1000);
	static const struct querystats_entry *all[1000], *top[20];
	ck_assert_uint_eq(querystats_top(qs, all, 1000), 1000);
	bool found = false;
	for (size_t i = 0; i < 1000; i++) {
		ck_assert_uint_ge(all[i]->calls, 1);
		ck_assert_uint_eq(histogram_count(&all[i]->latency), all[i]->calls);
		ck_assert_uint_eq(histogram_sum(&all[i]->latency), all[i]->total_usec);
		found = found || all[i]->fingerprint == last;
		if (i > 0)
			ck_assert_int_lt(cmp_entries(&all[i - 1], &all[i]), 0);
	}
	ck_assert(found);
	/* The heap-selected top equals the head of the full sort. */
	ck_assert_uint_eq(querystats_top(qs, top, 20), 20);
	ck_assert(memcmp(top, all, sizeof(top)) == 0);
	querystats_set_max(qs, 10);
	ck_assert_uint_eq(querystats_count(qs), 10);
	querystats_free(qs);
}
END_TEST

Suite *slowlog_suite(void)
{
	Suite *s = suite_create("slowlog");

	TCase *tj = tcase_create("json");
	tcase_set_timeout(tj, 60);
	tcase_add_test(tj, json_escapes_by_name_and_code);
	tcase_add_test(tj, json_passes_valid_utf8);
	tcase_add_test(tj, json_escapes_line_separators);
	tcase_add_test(tj, json_replaces_every_byte_of_invalid_utf8);
	tcase_add_test(tj, json_round_trips_random_bytes);
	tcase_add_test(tj, json_reports_the_limit);
	tcase_add_test(tj, json_writes_keys_numbers_and_literals);
	tcase_add_test(tj, json_checker_rejects_bad_json);
	suite_add_tcase(s, tj);

	TCase *ts = tcase_create("slowlog");
	tcase_add_checked_fixture(ts, tmpdir_setup, tmpdir_teardown);
	tcase_set_timeout(ts, 60);
	tcase_add_test(ts, slowlog_formats_a_full_record);
	tcase_add_test(ts, slowlog_omits_or_nulls_missing_fields);
	tcase_add_test(ts, slowlog_puts_the_plan_on_one_line);
	tcase_add_test(ts, slowlog_formats_time_in_utc_milliseconds);
	tcase_add_test(ts, slowlog_escapes_awkward_text);
	tcase_add_test(ts, slowlog_drops_a_plan_past_one_mebibyte);
	tcase_add_test(ts, slowlog_cuts_texts_too_large_without_a_plan);
	tcase_add_test(ts, slowlog_format_leaves_a_too_small_buffer_unchanged);
	tcase_add_test(ts, slowlog_ring_keeps_the_newest);
	tcase_add_test(ts, slowlog_writes_one_line_per_record);
	tcase_add_test(ts, slowlog_reopens_after_rename);
	tcase_add_test(ts, slowlog_open_failure_keeps_the_ring);
	tcase_add_test(ts, slowlog_warns_once_about_failed_writes);
	suite_add_tcase(s, ts);

	TCase *tq = tcase_create("querystats");
	tcase_set_timeout(tq, 60);
	tcase_add_test(tq, querystats_counts_per_fingerprint);
	tcase_add_test(tq, querystats_cuts_long_text_at_a_character);
	tcase_add_test(tq, querystats_evicts_the_least_recent);
	tcase_add_test(tq, querystats_top_orders_by_time_calls_fingerprint);
	tcase_add_test(tq, querystats_set_max_evicts_and_disables);
	tcase_add_test(tq, querystats_disabled_with_zero);
	tcase_add_test(tq, querystats_stays_bounded_under_many_fingerprints);
	suite_add_tcase(s, tq);
	return s;
}
