/*
 * resultset.c - admin query results as protocol messages (resultset.h).
 *
 * Pure message building: RowDescription, DataRow, CommandComplete and
 * EmptyQueryResponse appended to an obuf. A DataRow's length is filled in
 * when the row closes, so values are written once, straight into place.
 */
#include "resultset.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* PostgreSQL's limit on the columns of one row. */
#define RESULTSET_MAX_COLS 1600
/* Longest value resultset_put_textf writes. */
#define RESULTSET_TEXTF_MAX 1024

struct type_info {
	uint32_t oid;
	int16_t len; /* typlen: -1 for variable length */
};

static const struct type_info type_infos[] = {
	[RESULTSET_TEXT] = {25, -1}, [RESULTSET_INT4] = {23, 4},
	[RESULTSET_INT8] = {20, 8},  [RESULTSET_FLOAT8] = {701, 8},
	[RESULTSET_BOOL] = {16, 1},  [RESULTSET_TIMESTAMPTZ] = {1184, 8},
};

uint32_t resultset_type_oid(enum resultset_type type)
{
	return type_infos[type].oid;
}

bool resultset_begin(struct resultset *rs, struct obuf *ob, const struct resultset_column *cols,
		     size_t n_cols)
{
	memset(rs, 0, sizeof(*rs));
	rs->ob = ob;
	rs->cols = cols;
	if (n_cols > RESULTSET_MAX_COLS)
		return false;
	rs->n_cols = (uint16_t)n_cols;
	obuf_msg_begin(ob, 'T');
	obuf_put_u16(ob, rs->n_cols);
	for (size_t i = 0; i < n_cols; i++) {
		obuf_put_str(ob, cols[i].name);
		obuf_put_u32(ob, 0); /* no table */
		obuf_put_u16(ob, 0); /* no column number */
		obuf_put_u32(ob, type_infos[cols[i].type].oid);
		obuf_put_u16(ob, (uint16_t)type_infos[cols[i].type].len);
		obuf_put_u32(ob, UINT32_MAX); /* typmod -1 */
		obuf_put_u16(ob, 0);	      /* text format */
	}
	obuf_msg_end(ob);
	return !ob->failed;
}

void resultset_row_begin(struct resultset *rs)
{
	if (rs->in_row)
		resultset_row_end(rs);
	obuf_msg_begin(rs->ob, 'D');
	obuf_put_u16(rs->ob, rs->n_cols);
	rs->next_col = 0;
	rs->in_row = true;
}

/* Appends one value of len bytes; len UINT32_MAX is NULL. */
static void resultset_put_raw(struct resultset *rs, const void *data, uint32_t len)
{
	if (!rs->in_row || rs->next_col >= rs->n_cols)
		return;
	obuf_put_u32(rs->ob, len);
	if (len != UINT32_MAX)
		obuf_put(rs->ob, data, len);
	rs->next_col++;
}

void resultset_put_null(struct resultset *rs)
{
	resultset_put_raw(rs, NULL, UINT32_MAX);
}

void resultset_put_text(struct resultset *rs, const char *s)
{
	if (s == NULL) {
		resultset_put_null(rs);
		return;
	}
	size_t len = strlen(s);
	/* A value past 1 GB could not be sent by PostgreSQL either. */
	if (len >= UINT32_MAX) {
		resultset_put_null(rs);
		return;
	}
	resultset_put_raw(rs, s, (uint32_t)len);
}

void resultset_put_textf(struct resultset *rs, const char *fmt, ...)
{
	char buf[RESULTSET_TEXTF_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	resultset_put_text(rs, buf);
}

void resultset_put_int(struct resultset *rs, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
	resultset_put_raw(rs, buf, (uint32_t)n);
}

void resultset_put_uint(struct resultset *rs, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
	resultset_put_raw(rs, buf, (uint32_t)n);
}

void resultset_put_float(struct resultset *rs, double v)
{
	char buf[32];
	if (isnan(v)) {
		resultset_put_text(rs, "NaN");
		return;
	}
	if (isinf(v)) {
		resultset_put_text(rs, v > 0 ? "Infinity" : "-Infinity");
		return;
	}
	/* The fewest digits that read back as v, as PostgreSQL 12+ prints float8. */
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, sizeof(buf), "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	resultset_put_text(rs, buf);
}

void resultset_put_bool(struct resultset *rs, bool v)
{
	resultset_put_raw(rs, v ? "t" : "f", 1);
}

void resultset_put_time(struct resultset *rs, double epoch_seconds)
{
	if (!(epoch_seconds > 0)) {
		resultset_put_null(rs);
		return;
	}
	time_t secs = (time_t)epoch_seconds;
	long usec = (long)((epoch_seconds - (double)secs) * 1e6 + 0.5);
	if (usec >= 1000000) {
		secs++;
		usec -= 1000000;
	}
	struct tm tm;
	char buf[64];
	if (gmtime_r(&secs, &tm) == NULL) {
		resultset_put_null(rs);
		return;
	}
	snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
	resultset_put_text(rs, buf);
}

void resultset_row_end(struct resultset *rs)
{
	if (!rs->in_row)
		return;
	while (rs->next_col < rs->n_cols)
		resultset_put_null(rs);
	obuf_msg_end(rs->ob);
	rs->in_row = false;
	rs->rows++;
}

void resultset_put_complete(struct obuf *ob, const char *tag)
{
	obuf_msg_begin(ob, 'C');
	obuf_put_str(ob, tag);
	obuf_msg_end(ob);
}

bool resultset_end(struct resultset *rs, const char *tag)
{
	resultset_row_end(rs);
	resultset_put_complete(rs->ob, tag);
	return !rs->ob->failed;
}

void resultset_put_empty_query(struct obuf *ob)
{
	obuf_msg_begin(ob, 'I');
	obuf_msg_end(ob);
}
