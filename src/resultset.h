/*
 * resultset.h - admin query results as PostgreSQL protocol messages.
 *
 * The admin console answers every SHOW with an ordinary table so that
 * psql, `psql -x` and any driver display it: a RowDescription built from a
 * column list (name and type), one DataRow per row and a CommandComplete.
 * Values are sent in text format; the declared type only tells clients
 * how to read them. Everything is appended to a caller's obuf, bounded by
 * its limit. This is the one way admin results are written.
 */
#ifndef PGSLUICE_RESULTSET_H
#define PGSLUICE_RESULTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Column types, each with the PostgreSQL type it is announced as. */
enum resultset_type {
	RESULTSET_TEXT,	       /* text */
	RESULTSET_INT4,	       /* int4 */
	RESULTSET_INT8,	       /* int8 */
	RESULTSET_FLOAT8,      /* float8 */
	RESULTSET_BOOL,	       /* bool: sent as t / f */
	RESULTSET_TIMESTAMPTZ, /* timestamptz: ISO text in UTC */
};

struct resultset_column {
	const char *name;
	enum resultset_type type;
};

/* A result being written: its columns and where the next value goes. */
struct resultset {
	struct obuf *ob;
	const struct resultset_column *cols;
	uint16_t n_cols;
	uint16_t next_col; /* values written in the open row */
	bool in_row;
	uint64_t rows; /* rows finished */
};

/*
 * Returns the type OID a column type is announced with.
 * type: the column type.
 */
uint32_t resultset_type_oid(enum resultset_type type);

/*
 * Starts a result: writes the RowDescription.
 * rs: the result to set up.
 * ob: where the messages go.
 * cols: n_cols columns; must outlive rs.
 * n_cols: how many columns (at most 1600, PostgreSQL's own limit).
 * Returns false when the columns are too many or ob refused the bytes.
 */
bool resultset_begin(struct resultset *rs, struct obuf *ob, const struct resultset_column *cols,
		     size_t n_cols);

/*
 * Opens a DataRow; the values that follow fill its columns from the left.
 * rs: the result.
 */
void resultset_row_begin(struct resultset *rs);

/*
 * Appends a text value (or SQL NULL when s is NULL) to the open row; values
 * beyond the last column are ignored.
 * rs: the result.
 * s: the value, NUL-terminated, or NULL.
 */
void resultset_put_text(struct resultset *rs, const char *s);

/*
 * Appends a printf-formatted text value to the open row (cut at 1 KiB).
 * rs: the result.
 * fmt: the format and its arguments.
 */
void resultset_put_textf(struct resultset *rs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends a signed integer in decimal. rs: the result; v: the value. */
void resultset_put_int(struct resultset *rs, int64_t v);

/* Appends an unsigned integer in decimal. rs: the result; v: the value. */
void resultset_put_uint(struct resultset *rs, uint64_t v);

/*
 * Appends a float with the shortest text that reads back the same value
 * (17 significant digits at most); NaN and infinities as PostgreSQL spells them.
 * rs: the result; v: the value.
 */
void resultset_put_float(struct resultset *rs, double v);

/* Appends a boolean as t or f. rs: the result; v: the value. */
void resultset_put_bool(struct resultset *rs, bool v);

/*
 * Appends a point in time as "YYYY-MM-DD HH:MM:SS.uuuuuu+00", or NULL
 * when epoch_seconds is not positive (never happened).
 * rs: the result.
 * epoch_seconds: seconds since 1970-01-01 UTC (ev_now() scale).
 */
void resultset_put_time(struct resultset *rs, double epoch_seconds);

/* Appends SQL NULL. rs: the result. */
void resultset_put_null(struct resultset *rs);

/*
 * Closes the open row; columns left without a value are sent as NULL.
 * rs: the result.
 */
void resultset_row_end(struct resultset *rs);

/*
 * Finishes the result with CommandComplete.
 * rs: the result.
 * tag: the command tag, e.g. "SHOW".
 * Returns false when ob refused any byte of the result (it is incomplete).
 */
bool resultset_end(struct resultset *rs, const char *tag);

/*
 * Appends a CommandComplete message on its own (control commands).
 * ob: where it goes; tag: the command tag, e.g. "PAUSE".
 */
void resultset_put_complete(struct obuf *ob, const char *tag);

/*
 * Appends an EmptyQueryResponse (the answer to a query with no statement).
 * ob: where it goes.
 */
void resultset_put_empty_query(struct obuf *ob);

#endif
