/*
 * json.h - a minimal JSON writer on top of struct obuf.
 *
 * The slow-query log (slowlog.c) and the bound parameters of a slow record
 * (querylog.c) are written as JSON with these few helpers: strings escaped
 * so that any byte sequence, valid UTF-8 or not, gives valid JSON on one
 * line, object keys, numbers and literals. Nothing here allocates except
 * through the obuf, whose limit bounds every output.
 */
#ifndef PGSLUICE_JSON_H
#define PGSLUICE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Appends s as a quoted JSON string. '"' and '\' are escaped, \b \f \n \r \t
 * by name, other bytes below 0x20 (NUL included) and 0x7f as \u00xx, and
 * U+2028 and U+2029 as \u2028 and \u2029. Valid UTF-8 passes through; every
 * byte of an invalid sequence (overlong form, surrogate, past U+10FFFF,
 * truncated, stray continuation byte) becomes \ufffd.
 * ob: the buffer.
 * s: the bytes (need not be NUL-terminated).
 * n: how many bytes.
 * Returns false when ob's limit was hit (the content is then incomplete).
 */
bool json_put_string(struct obuf *ob, const char *s, size_t n);

/*
 * Appends an object key and its colon: "key": or, unless first, ,"key":
 * ob: the buffer.
 * first: true for the first key of an object (no comma).
 * key: NUL-terminated, escaped like any string.
 * Returns false when ob's limit was hit.
 */
bool json_put_key(struct obuf *ob, bool first, const char *key);

/*
 * Appends an unsigned integer in decimal.
 * ob: the buffer.
 * v: the value.
 * Returns false when ob's limit was hit.
 */
bool json_put_u64(struct obuf *ob, uint64_t v);

/*
 * Appends a number with exactly three decimals (12.345); NaN and the
 * infinities, which JSON cannot express, are written as null.
 * ob: the buffer.
 * v: the value.
 * Returns false when ob's limit was hit.
 */
bool json_put_fixed3(struct obuf *ob, double v);

/*
 * Appends null.
 * ob: the buffer.
 * Returns false when ob's limit was hit.
 */
bool json_put_null(struct obuf *ob);

/*
 * Appends true or false.
 * ob: the buffer.
 * v: the value.
 * Returns false when ob's limit was hit.
 */
bool json_put_bool(struct obuf *ob, bool v);

#endif
