/*
 * batchsql.c - insert batching's statement and message rewriting (see batchsql.h).
 *
 * classify_insert_shape finds the parts of a single-row INSERT; this file
 * copies what a row needs into one block, reads the client's Bind, derives
 * the exact group text, and writes the multi-row statement. Rows are
 * written into the caller's obuf directly (parameter renumbering shifts
 * into room reserved at its tail), so building a batch allocates nothing.
 */
#include "batchsql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCHSQL_SEP '\x1f'

/*
 * The INSERT runs inside a WITH that counts the rows it stored and divides by
 * zero unless all were: a row a trigger, a rule or ON CONFLICT DO NOTHING
 * dropped fails the batch, whose rows then run alone to learn whose it was.
 */
static const char batchsql_head[] = "WITH pgsluice_batch AS (INSERT INTO ";
static const char batchsql_check[] = " RETURNING 1) SELECT 1 / (count(*) = ";
static const char batchsql_check_end[] = ")::int FROM pgsluice_batch";
static const char batchsql_values[] = " VALUES (";
static const char batchsql_next[] = "),(";

/* A bounds-checked cursor over a message body. */
struct batchsql_reader {
	const uint8_t *p;
	const uint8_t *end;
};

static bool batchsql_read_u16(struct batchsql_reader *r, uint16_t *v)
{
	if (r->end - r->p < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return true;
}

static bool batchsql_read_i32(struct batchsql_reader *r, int32_t *v)
{
	if (r->end - r->p < 4)
		return false;
	*v = (int32_t)((uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
		       r->p[3]);
	r->p += 4;
	return true;
}

static bool batchsql_skip(struct batchsql_reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	r->p += n;
	return true;
}

/* An empty protocol string: a lone NUL. */
static bool batchsql_read_empty_name(struct batchsql_reader *r)
{
	if (r->p == r->end || *r->p != 0)
		return false;
	r->p++;
	return true;
}

static uint64_t batchsql_fnv(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Length of the normalized text classify_fingerprint makes of a part. */
static size_t batchsql_norm_len(const char *sql, size_t off, size_t len)
{
	size_t n = 0;
	classify_fingerprint(sql + off, len, NULL, 0, &n);
	return n;
}

/* Writes the normalized part (n bytes, from batchsql_norm_len) at out; returns out + n. */
static char *batchsql_put_norm(char *out, const char *sql, size_t off, size_t len, size_t n)
{
	classify_fingerprint(sql + off, len, out, n + 1, NULL);
	return out + n;
}

/*
 * The Bind facts a row keeps. Format codes stay a pointer into the body:
 * they are expanded to one per parameter when the row is copied.
 */
struct batchsql_bind {
	uint16_t n_formats;
	const uint8_t *format_codes;
	size_t values_off;
	size_t values_len;
};

static bool batchsql_parse_bind(const uint8_t *body, size_t len, unsigned n_params,
				struct batchsql_bind *out)
{
	struct batchsql_reader r = {body, body + len};
	if (!batchsql_read_empty_name(&r) || !batchsql_read_empty_name(&r))
		return false;
	if (!batchsql_read_u16(&r, &out->n_formats))
		return false;
	out->format_codes = r.p;
	if (!batchsql_skip(&r, (size_t)out->n_formats * 2))
		return false;
	for (uint16_t i = 0; i < out->n_formats; i++) {
		const uint8_t *c = out->format_codes + 2 * (size_t)i;
		if (c[0] != 0 || c[1] > 1)
			return false;
	}
	uint16_t n_values;
	if (!batchsql_read_u16(&r, &n_values) || n_values != n_params)
		return false;
	if (out->n_formats > 1 && out->n_formats != n_values)
		return false;
	out->values_off = (size_t)(r.p - body);
	for (uint16_t i = 0; i < n_values; i++) {
		int32_t vlen;
		if (!batchsql_read_i32(&r, &vlen) || vlen < -1)
			return false;
		if (vlen > 0 && !batchsql_skip(&r, (size_t)vlen))
			return false;
	}
	out->values_len = (size_t)(r.p - body) - out->values_off;
	uint16_t n_results;
	if (!batchsql_read_u16(&r, &n_results))
		return false;
	for (uint16_t i = 0; i < n_results; i++) {
		uint16_t code;
		if (!batchsql_read_u16(&r, &code) || code != 0)
			return false;
	}
	return r.p == r.end;
}

/* The format code that applies to parameter i (0-based). */
static uint16_t batchsql_format_of(const struct batchsql_bind *b, unsigned i)
{
	if (b->n_formats == 0)
		return 0;
	const uint8_t *c = b->format_codes + (b->n_formats == 1 ? 0 : 2 * (size_t)i);
	return (uint16_t)(c[0] << 8 | c[1]);
}

/*
 * Builds a row from a shape already accepted. The group text is
 *   protocol SEP table SEP columns SEP n_values SEP conflict [SEP raw conflict]
 * with the parts normalized by classify_fingerprint (case of unquoted names,
 * spacing and comments dropped). That normalization turns literals into ?;
 * a conflict clause holding a ? (a literal in its target or WHERE, or the
 * ? operator) also carries its raw text, so that different predicates never
 * share a group. Table and column lists hold only names.
 */
static bool batchsql_row_fill(struct batchsql_row *row, enum batchsql_protocol protocol,
			      const char *sql, size_t len, const struct insert_shape *sh,
			      const uint32_t *param_types, uint16_t n_types,
			      const uint8_t *bind_body, size_t bind_len,
			      const struct batchsql_bind *b)
{
	bool ext = protocol == BATCHSQL_EXTENDED;
	unsigned n_params = sh->max_param;
	size_t lt = batchsql_norm_len(sql, sh->table_off, sh->table_len);
	size_t lc = batchsql_norm_len(sql, sh->columns_off, sh->columns_len);
	size_t lf = batchsql_norm_len(sql, sh->conflict_off, sh->conflict_len);
	size_t group_cap = 2 + lt + 1 + lc + 1 + 10 + 1 + lf + 1 + sh->conflict_len + 1;

	size_t types_size = ext ? (size_t)n_params * sizeof(uint32_t) : 0;
	size_t formats_size = ext ? (size_t)n_params * sizeof(uint16_t) : 0;
	size_t size = types_size + formats_size;
	if (__builtin_add_overflow(size, len + 1, &size) ||
	    __builtin_add_overflow(size, group_cap, &size) ||
	    __builtin_add_overflow(size, ext ? bind_len : 0, &size))
		return false;
	uint8_t *mem = malloc(size);
	if (mem == NULL)
		return false;

	row->protocol = protocol;
	row->shape = *sh;
	row->n_params = n_params;
	row->mem = mem;
	uint8_t *p = mem;
	if (ext) {
		uint32_t *types = (uint32_t *)(void *)p;
		p += types_size;
		uint16_t *formats = (uint16_t *)(void *)p;
		p += formats_size;
		for (unsigned i = 0; i < n_params; i++) {
			types[i] = i < n_types ? param_types[i] : 0;
			formats[i] = batchsql_format_of(b, i);
		}
		row->n_types = n_types;
		row->types = types;
		row->formats = formats;
	}

	char *text = (char *)p;
	memcpy(text, sql, len);
	text[len] = '\0';
	row->sql = text;
	row->sql_len = len;
	p += len + 1;

	char *g = (char *)p;
	char *o = g;
	*o++ = ext ? 'E' : 'S';
	*o++ = BATCHSQL_SEP;
	o = batchsql_put_norm(o, sql, sh->table_off, sh->table_len, lt);
	*o++ = BATCHSQL_SEP;
	o = batchsql_put_norm(o, sql, sh->columns_off, sh->columns_len, lc);
	*o++ = BATCHSQL_SEP;
	char digits[10];
	size_t nd = 0;
	unsigned v = sh->n_values;
	do {
		digits[sizeof(digits) - 1 - nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	memcpy(o, digits + sizeof(digits) - nd, nd);
	o += nd;
	*o++ = BATCHSQL_SEP;
	char *conflict = o;
	o = batchsql_put_norm(o, sql, sh->conflict_off, sh->conflict_len, lf);
	if (memchr(conflict, '?', lf) != NULL) {
		*o++ = BATCHSQL_SEP;
		memcpy(o, sql + sh->conflict_off, sh->conflict_len);
		o += sh->conflict_len;
	}
	*o = '\0';
	row->group = g;
	row->group_len = (size_t)(o - g);
	p += group_cap;

	if (ext) {
		memcpy(p, bind_body, bind_len);
		row->bind = p;
		row->bind_len = bind_len;
		row->values_off = b->values_off;
		row->values_len = b->values_len;
	}

	uint64_t h = batchsql_fnv(14695981039346656037ULL, row->group, row->group_len);
	if (ext) {
		for (unsigned i = 0; i < n_params; i++) {
			uint32_t t = row->types[i];
			uint8_t bytes[5] = {(uint8_t)(t >> 24), (uint8_t)(t >> 16),
					    (uint8_t)(t >> 8), (uint8_t)t,
					    (uint8_t)row->formats[i]};
			h = batchsql_fnv(h, bytes, sizeof(bytes));
		}
	}
	row->group_key = h;
	return true;
}

bool batchsql_candidate_from_query(struct batchsql_row *row, const char *sql, size_t len)
{
	memset(row, 0, sizeof(*row));
	if (memchr(sql, '\0', len) != NULL)
		return false;
	struct insert_shape sh;
	if (!classify_insert_shape(sql, len, &sh) || sh.max_param > 0)
		return false;
	return batchsql_row_fill(row, BATCHSQL_SIMPLE, sql, len, &sh, NULL, 0, NULL, 0, NULL);
}

bool batchsql_candidate_from_extended(struct batchsql_row *row, const char *sql, size_t len,
				      const uint32_t *param_types, uint16_t n_types,
				      const uint8_t *bind_body, size_t bind_len)
{
	memset(row, 0, sizeof(*row));
	if (memchr(sql, '\0', len) != NULL || (n_types > 0 && param_types == NULL) ||
	    (bind_len > 0 && bind_body == NULL))
		return false;
	struct insert_shape sh;
	if (!classify_insert_shape(sql, len, &sh) || !sh.params_exact ||
	    sh.max_param > BATCHSQL_MAX_PARAMS || n_types > sh.max_param)
		return false;
	struct batchsql_bind b;
	if (!batchsql_parse_bind(bind_body, bind_len, sh.max_param, &b))
		return false;
	return batchsql_row_fill(row, BATCHSQL_EXTENDED, sql, len, &sh, param_types, n_types,
				 bind_body, bind_len, &b);
}

/* Big-endian u32 at p. */
static uint32_t batchsql_get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The size of the whole message at p when all of it is before end, else 0. */
static size_t batchsql_whole(const uint8_t *p, const uint8_t *end)
{
	if (end - p < 5)
		return 0;
	size_t total = (size_t)batchsql_get_u32(p + 1) + 1;
	if (total < 5 || (size_t)(end - p) < total)
		return 0;
	return total;
}

enum batchsql_scan batchsql_scan_extended(const uint8_t *msg, const uint8_t *end,
					  struct batchsql_request *req)
{
	static const uint8_t execute[] = {'E', 0, 0, 0, 9, 0, 0, 0, 0, 0};
	static const uint8_t describe[] = {'D', 0, 0, 0, 6, 'P', 0};
	size_t t = batchsql_whole(msg, end);
	if (t == 0 || msg[0] != 'P')
		return BATCHSQL_SCAN_NO;
	const uint8_t *p = msg + t;
	if ((t = batchsql_whole(p, end)) == 0)
		return BATCHSQL_SCAN_MORE;
	if (p[0] != 'B')
		return BATCHSQL_SCAN_NO;
	req->bind = p + 5;
	req->bind_len = t - 5;
	p += t;
	if ((t = batchsql_whole(p, end)) == 0)
		return BATCHSQL_SCAN_MORE;
	req->describe = p[0] == 'D';
	if (req->describe) {
		if (t != sizeof(describe) || memcmp(p, describe, t) != 0)
			return BATCHSQL_SCAN_NO;
		p += t;
		if ((t = batchsql_whole(p, end)) == 0)
			return BATCHSQL_SCAN_MORE;
	}
	if (t != sizeof(execute) || memcmp(p, execute, t) != 0)
		return BATCHSQL_SCAN_NO;
	p += t;
	if ((t = batchsql_whole(p, end)) == 0)
		return BATCHSQL_SCAN_MORE;
	if (t != 5 || p[0] != 'S')
		return BATCHSQL_SCAN_NO;
	req->len = (size_t)(p + t - msg);
	return BATCHSQL_SCAN_YES;
}

bool batchsql_candidate_from_request(struct batchsql_row *row, const uint8_t *msg,
				     const struct batchsql_request *req)
{
	memset(row, 0, sizeof(*row));
	const uint8_t *body = msg + 5, *end = msg + batchsql_get_u32(msg + 1) + 1;
	if (body == end || body[0] != '\0')
		return false; /* a named statement */
	const uint8_t *sql = ++body;
	const uint8_t *nul = memchr(sql, 0, (size_t)(end - sql));
	if (nul == NULL || end - nul < 3)
		return false;
	body = nul + 1;
	uint16_t n_types = (uint16_t)((body[0] << 8) | body[1]);
	body += 2;
	if ((size_t)(end - body) != (size_t)n_types * 4)
		return false;
	uint32_t *types = NULL;
	if (n_types > 0 && (types = malloc((size_t)n_types * sizeof(*types))) == NULL)
		return false;
	for (uint16_t i = 0; i < n_types; i++)
		types[i] = batchsql_get_u32(body + 4 * (size_t)i);
	bool ok = batchsql_candidate_from_extended(row, (const char *)sql, (size_t)(nul - sql),
						   types, n_types, req->bind, req->bind_len);
	free(types);
	return ok;
}

void batchsql_row_free(struct batchsql_row *row)
{
	free(row->mem);
	memset(row, 0, sizeof(*row));
}

bool batchsql_same_group(const struct batchsql_row *a, const struct batchsql_row *b)
{
	if (a->protocol != b->protocol || a->group_key != b->group_key ||
	    a->n_params != b->n_params || a->group_len != b->group_len ||
	    memcmp(a->group, b->group, a->group_len) != 0)
		return false;
	if (a->protocol == BATCHSQL_SIMPLE)
		return true;
	return memcmp(a->types, b->types, a->n_params * sizeof(uint32_t)) == 0 &&
	       memcmp(a->formats, b->formats, a->n_params * sizeof(uint16_t)) == 0;
}

/* Bytes the statement text takes apart from the rows, message framing included. */
static size_t batchsql_fixed_bytes(const struct batchsql_row *first)
{
	const struct insert_shape *sh = &first->shape;
	size_t text = sizeof(batchsql_head) + sh->table_len + 1 + sh->columns_len +
		      sizeof(batchsql_values) + 1 + 1 + sh->conflict_len + sizeof(batchsql_check) +
		      20 + sizeof(batchsql_check_end) + 1;
	if (first->protocol == BATCHSQL_SIMPLE)
		return 5 + text;
	/* Parse: name, text, type count; Bind: names, counts; Execute; Sync. */
	return (5 + 1 + text + 2) + (5 + 2 + 2 + 2 + 2) + (5 + 1 + 4) + 5;
}

/* An upper bound of what one row adds to the batch. */
static size_t batchsql_row_bytes(const struct batchsql_row *row)
{
	size_t text = row->shape.values_len + sizeof(batchsql_next);
	if (row->protocol == BATCHSQL_SIMPLE)
		return text;
	/* "$n" grows by 4 bytes at most when renumbered (up to "$65535"). */
	return text + 4 * (size_t)row->n_params + 4 * (size_t)row->n_params +
	       2 * (size_t)row->n_params + row->values_len;
}

bool batchsql_size_add(struct batchsql_size *size, const struct batchsql_row *row,
		       size_t byte_limit)
{
	size_t bytes = size->bytes == 0 ? batchsql_fixed_bytes(row) : size->bytes;
	size_t more = batchsql_row_bytes(row);
	if (size->params + row->n_params > BATCHSQL_MAX_PARAMS || more > byte_limit ||
	    bytes > byte_limit - more)
		return false;
	size->bytes = bytes + more;
	size->params += row->n_params;
	return true;
}

/* Appends n bytes of room (zeros) to be overwritten in place. */
static bool batchsql_put_room(struct obuf *ob, size_t n)
{
	static const uint8_t zeros[4096];
	while (n > 0) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
		if (!obuf_put(ob, zeros, k))
			return false;
		n -= k;
	}
	return true;
}

/* Appends a row's values with every $i renumbered to $(i + shift). */
static bool batchsql_put_shifted(struct obuf *ob, const struct batchsql_row *row, unsigned shift)
{
	const char *values = row->sql + row->shape.values_off;
	size_t len = row->shape.values_len;
	if (shift == 0 || row->n_params == 0)
		return obuf_put(ob, values, len);
	/*
	 * "$n" grows by 4 bytes at most. The room stops where obuf would refuse
	 * to grow (it counts sent bytes not yet dropped): the text is always
	 * followed by ")", so a text that needs all of it, its NUL included,
	 * could not have fit anyway.
	 */
	size_t room = len + 4 * (size_t)row->n_params + 1;
	size_t free_bytes = ob->limit - ob->len;
	if (room > free_bytes)
		room = free_bytes;
	if (room == 0 || !batchsql_put_room(ob, room))
		return false;
	size_t pos = ob->len - room;
	size_t written;
	if (!classify_shift_params(values, len, shift, (char *)ob->data + pos, room, &written)) {
		ob->len = pos;
		return false;
	}
	ob->len = pos + written;
	return true;
}

/* The statement text, without its NUL. */
static bool batchsql_put_text(struct obuf *ob, struct batchsql_row *const *rows, size_t n)
{
	const struct batchsql_row *first = rows[0];
	const struct insert_shape *sh = &first->shape;
	obuf_put(ob, batchsql_head, sizeof(batchsql_head) - 1);
	obuf_put(ob, first->sql + sh->table_off, sh->table_len);
	if (sh->columns_len > 0) {
		obuf_put(ob, " ", 1);
		obuf_put(ob, first->sql + sh->columns_off, sh->columns_len);
	}
	obuf_put(ob, batchsql_values, sizeof(batchsql_values) - 1);
	unsigned shift = 0;
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			obuf_put(ob, batchsql_next, sizeof(batchsql_next) - 1);
		if (!batchsql_put_shifted(ob, rows[k], shift))
			return false;
		shift += rows[k]->n_params;
	}
	obuf_put(ob, ")", 1);
	if (sh->conflict_len > 0) {
		obuf_put(ob, " ", 1);
		obuf_put(ob, first->sql + sh->conflict_off, sh->conflict_len);
	}
	char count[24];
	int count_len = snprintf(count, sizeof(count), "%zu", n);
	obuf_put(ob, batchsql_check, sizeof(batchsql_check) - 1);
	obuf_put(ob, count, (size_t)count_len);
	obuf_put(ob, batchsql_check_end, sizeof(batchsql_check_end) - 1);
	return !ob->failed;
}

static void batchsql_put_query(struct obuf *ob, const char *sql)
{
	obuf_msg_begin(ob, 'Q');
	obuf_put_str(ob, sql);
	obuf_msg_end(ob);
}

/* Execute of the unnamed portal without a row limit, then Sync. */
static void batchsql_put_execute_sync(struct obuf *ob)
{
	obuf_msg_begin(ob, 'E');
	obuf_put_u8(ob, 0);
	obuf_put_u32(ob, 0);
	obuf_msg_end(ob);
	obuf_msg_begin(ob, 'S');
	obuf_msg_end(ob);
}

static bool batchsql_put_insert(struct obuf *ob, struct batchsql_row *const *rows, size_t n,
				unsigned total)
{
	if (rows[0]->protocol == BATCHSQL_SIMPLE) {
		obuf_msg_begin(ob, 'Q');
		if (!batchsql_put_text(ob, rows, n))
			return false;
		obuf_put_u8(ob, 0);
		obuf_msg_end(ob);
		return !ob->failed;
	}

	obuf_msg_begin(ob, 'P');
	obuf_put_u8(ob, 0);
	if (!batchsql_put_text(ob, rows, n))
		return false;
	obuf_put_u8(ob, 0);
	obuf_put_u16(ob, (uint16_t)total);
	for (size_t k = 0; k < n; k++)
		for (unsigned i = 0; i < rows[k]->n_params; i++)
			obuf_put_u32(ob, rows[k]->types[i]);
	obuf_msg_end(ob);

	obuf_msg_begin(ob, 'B');
	obuf_put_u8(ob, 0);
	obuf_put_u8(ob, 0);
	obuf_put_u16(ob, (uint16_t)total);
	for (size_t k = 0; k < n; k++)
		for (unsigned i = 0; i < rows[k]->n_params; i++)
			obuf_put_u16(ob, rows[k]->formats[i]);
	obuf_put_u16(ob, (uint16_t)total);
	for (size_t k = 0; k < n; k++)
		obuf_put(ob, rows[k]->bind + rows[k]->values_off, rows[k]->values_len);
	obuf_put_u16(ob, 0);
	obuf_msg_end(ob);

	batchsql_put_execute_sync(ob);
	return !ob->failed;
}

/* Checks the preconditions of a build; *total receives the parameter count. */
static bool batchsql_check_batch(struct batchsql_row *const *rows, size_t n, unsigned *total)
{
	if (n == 0)
		return false;
	size_t params = 0;
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && !batchsql_same_group(rows[0], rows[k]))
			return false;
		params += rows[k]->n_params;
		if (params > BATCHSQL_MAX_PARAMS)
			return false;
	}
	*total = (unsigned)params;
	return true;
}

/* Drops what a failed build appended, keeping the bytes queued before it. */
static bool batchsql_undo(struct obuf *ob, size_t pending_before)
{
	ob->len = ob->off + pending_before;
	ob->failed = false;
	return false;
}

bool batchsql_build_insert(struct obuf *ob, struct batchsql_row *const *rows, size_t n)
{
	unsigned total;
	if (ob->failed || !batchsql_check_batch(rows, n, &total))
		return false;
	size_t before = obuf_pending(ob);
	if (!batchsql_put_insert(ob, rows, n, total))
		return batchsql_undo(ob, before);
	return true;
}

bool batchsql_build_single(struct obuf *ob, const struct batchsql_row *row)
{
	if (ob->failed)
		return false;
	size_t before = obuf_pending(ob);
	if (row->protocol == BATCHSQL_SIMPLE) {
		batchsql_put_query(ob, row->sql);
	} else {
		obuf_msg_begin(ob, 'P');
		obuf_put_u8(ob, 0);
		obuf_put_str(ob, row->sql);
		obuf_put_u16(ob, row->n_types);
		for (unsigned i = 0; i < row->n_types; i++)
			obuf_put_u32(ob, row->types[i]);
		obuf_msg_end(ob);
		obuf_msg_begin(ob, 'B');
		obuf_put(ob, row->bind, row->bind_len);
		obuf_msg_end(ob);
		batchsql_put_execute_sync(ob);
	}
	if (ob->failed)
		return batchsql_undo(ob, before);
	return true;
}
