/*
 * slowlog.h - the slow-query log: JSON lines in a file and a ring in memory.
 *
 * querylog.c builds a struct slow_record for each statement slower than
 * slow_query_threshold (with its plan, once captured) and hands it to
 * slowlog_emit, which appends it to the log file as one JSON object per
 * line and keeps the last slow_query_ring records for SHOW SLOW_QUERIES.
 * Everything runs on the worker's event-loop thread.
 */
#ifndef PGSLUICE_SLOWLOG_H
#define PGSLUICE_SLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Longest line written, newline included; a larger record loses its plan first. */
#define SLOWLOG_LINE_MAX ((size_t)1 << 20)

/*
 * Bytes of query and normalized text kept when a record is too large even
 * without its plan: escaped, both still fit in SLOWLOG_LINE_MAX.
 */
#define SLOWLOG_TEXT_KEEP ((size_t)64 << 10)

struct slow_record {
	double time; /* completion, seconds since the Unix epoch */
	char database[64], user[64], application_name[64], client_addr[64];
	char server[96];      /* "host:port" of the server that ran it */
	const char *role;     /* "primary" or "replica" (static string) */
	double duration_ms;
	uint64_t rows;
	char sqlstate[6];     /* "" when it succeeded */
	uint64_t fingerprint;
	char *normalized;     /* malloc'd, owned by the record */
	char *text;           /* malloc'd: redacted unless slow_query_log_parameters */
	char *parameters;     /* malloc'd JSON array text of bound parameters, or NULL */
	char *plan;           /* malloc'd JSON text returned by EXPLAIN (FORMAT JSON), or NULL */
	char plan_skipped[96]; /* why there is no plan, "" when there is one or none was wanted */
	bool truncated;       /* slowlog_emit cut the texts and dropped the parameters to fit */
};

struct slowlog;

/*
 * Makes a slow-query log with no file.
 * ring_size: how many records to keep in memory (0: none).
 * Returns the log, or NULL when out of memory.
 */
struct slowlog *slowlog_create(size_t ring_size);

/*
 * Closes the file and frees the log and every record in its ring.
 * sl: the log (may be NULL).
 */
void slowlog_free(struct slowlog *sl);

/*
 * Points the log at a file, opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC with
 * mode 0640; the file open before (if another) is closed. On failure a
 * warning is logged, records go to the ring only, and slowlog_reopen tries
 * path again.
 * sl: the log.
 * path: the file, or NULL or "" for none.
 * Returns false when the file could not be opened (or out of memory).
 */
bool slowlog_open(struct slowlog *sl, const char *path);

/*
 * Opens the log's path anew and then closes the old descriptor, so that
 * after logrotate renamed the file new lines go to a new file of the old
 * name. On failure the old descriptor is kept and a warning is logged.
 * sl: the log.
 * Returns false when the file could not be opened; true also when there is
 * no file.
 */
bool slowlog_reopen(struct slowlog *sl);

/*
 * Changes how many records the ring keeps (reload); when smaller, the
 * oldest are freed. Out of memory keeps the old ring and logs a warning.
 * sl: the log.
 * n: the new size (0: keep none).
 */
void slowlog_set_ring_size(struct slowlog *sl, size_t n);

/*
 * Writes a record as one JSON line (one write(2), continued after a short
 * write; a failure is logged at most once a minute) and keeps it in the
 * ring, freeing the oldest when full. A record whose line would pass
 * SLOWLOG_LINE_MAX is first changed as slowlog_format writes it: plan freed
 * and plan_skipped "plan too large", then if needed parameters freed, texts
 * cut and truncated set.
 * sl: the log.
 * rec: a malloc'd record; slowlog_emit owns it from now on.
 */
void slowlog_emit(struct slowlog *sl, struct slow_record *rec);

/*
 * Appends a record as a JSON object, without the newline. Keys in order:
 * time (ISO 8601 UTC, milliseconds), database, user, application_name,
 * client, server, role, duration_ms (3 decimals), rows, sqlstate (null when
 * empty), fingerprint (16 hex digits), normalized, query, parameters (raw
 * JSON; omitted when NULL), plan (raw JSON on one line, or null),
 * plan_skipped (omitted when empty), truncated (only when true). When the
 * object would reach SLOWLOG_LINE_MAX, plan is written as null with
 * plan_skipped "plan too large"; when that is not enough either, parameters
 * are left out, query and normalized cut to SLOWLOG_TEXT_KEEP bytes and
 * truncated written as true.
 * rec: the record.
 * out: the buffer, appended to (it needs room for the object within its limit).
 * Returns the number of bytes appended, or 0 (out unchanged) when out's
 * limit did not allow it.
 */
size_t slowlog_format(const struct slow_record *rec, struct obuf *out);

/*
 * sl: the log.
 * Returns how many records the ring holds.
 */
size_t slowlog_count(const struct slowlog *sl);

/*
 * sl: the log.
 * i: 0 for the newest record, up to slowlog_count() - 1 for the oldest.
 * Returns the record (owned by the log: valid until the next emit, resize
 * or free), or NULL when i is out of range.
 */
const struct slow_record *slowlog_get(const struct slowlog *sl, size_t i);

/*
 * Frees a record and the strings it owns.
 * rec: the record (may be NULL).
 */
void slowlog_record_free(struct slow_record *rec);

#endif
