/*
 * json.c - a minimal JSON writer (see json.h).
 *
 * Strings are checked against the well-formed UTF-8 byte sequences of the
 * Unicode standard (table 3-7) one sequence at a time; runs of bytes that
 * need no escape are copied with a single obuf_put.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * The length (2 to 4) of the well-formed multi-byte UTF-8 sequence at p, or
 * 0 when the bytes there do not start one. left: bytes available at p.
 */
static size_t json_utf8_seq_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates U+D800..U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0; /* ASCII, a continuation byte, C0, C1 or F5..FF */
	}
	if (left < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

bool json_put_string(struct obuf *ob, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!obuf_put_u8(ob, '"'))
		return false;
	size_t run = 0; /* start of the bytes not yet copied */
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			continue;
		}
		size_t seq = c >= 0x80 ? json_utf8_seq_len(p + i, n - i) : 0;
		/* U+2028 and U+2029 (E2 80 A8/A9) end lines for JavaScript. */
		bool line_sep = seq == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
				(p[i + 2] == 0xa8 || p[i + 2] == 0xa9);
		if (seq > 0 && !line_sep) {
			i += seq;
			continue;
		}
		if (!obuf_put(ob, p + run, i - run))
			return false;
		char esc[8];
		size_t len = 2;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			if (line_sep)
				len = (size_t)snprintf(esc, sizeof(esc), "\\u%s",
						       p[i + 2] == 0xa8 ? "2028" : "2029");
			else if (c < 0x80)
				len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
			else
				len = (size_t)snprintf(esc, sizeof(esc), "\\ufffd");
			break;
		}
		if (!obuf_put(ob, esc, len))
			return false;
		i += line_sep ? 3 : 1;
		run = i;
	}
	return obuf_put(ob, p + run, n - run) && obuf_put_u8(ob, '"');
}

bool json_put_key(struct obuf *ob, bool first, const char *key)
{
	if (!first && !obuf_put_u8(ob, ','))
		return false;
	return json_put_string(ob, key, strlen(key)) && obuf_put_u8(ob, ':');
}

bool json_put_u64(struct obuf *ob, uint64_t v)
{
	char num[24];
	int len = snprintf(num, sizeof(num), "%" PRIu64, v);
	return obuf_put(ob, num, (size_t)len);
}

bool json_put_fixed3(struct obuf *ob, double v)
{
	if (!isfinite(v))
		return json_put_null(ob);
	/* DBL_MAX has 309 integer digits: sign, digits, point and decimals fit. */
	char num[320];
	int len = snprintf(num, sizeof(num), "%.3f", v);
	return obuf_put(ob, num, (size_t)len);
}

bool json_put_null(struct obuf *ob)
{
	return obuf_put(ob, "null", 4);
}

bool json_put_bool(struct obuf *ob, bool v)
{
	return v ? obuf_put(ob, "true", 4) : obuf_put(ob, "false", 5);
}
