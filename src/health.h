/*
 * health.h - probes of every server target (libpq, asynchronous on the loop).
 *
 * Each target of each database keeps one libpq connection that runs a small
 * probe every health_check_period (every lsn_probe_period where
 * read_your_writes is on): is the server in recovery, and its WAL position
 * (current on the primary, replayed on a replica). A replica that fails a
 * connect or a probe, is not in recovery, or lags past max_replica_lag /
 * max_replica_lag_bytes is banned for replica_ban_time; it comes back once
 * a probe passes after that. Every ban and unban is logged once.
 */
#ifndef PGSLUICE_HEALTH_H
#define PGSLUICE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

/* What one probe of a server read. */
struct health_sample {
	bool in_recovery;
	bool lsn_known;      /* false when the server returned NULL */
	uint64_t lsn;        /* primary: current WAL position; replica: replayed position */
	bool age_known;      /* false when nothing was replayed yet (and on a primary) */
	double replay_age;   /* seconds since the last replayed transaction's commit */
	double behind_for;   /* seconds it has been seen behind without catching up; < 0 unknown */
};

/*
 * Starts the probe timer. It runs even with health_check_period = 0 (then it
 * probes nothing and only lets bans expire), so that a reload or an admin
 * SET can turn probes on. Needs w->health_timer (see worker.h).
 */
void health_start(struct worker *w);

/* Stops the timer and closes every probe connection; safe to call twice. */
void health_stop(struct worker *w);

/* Closes t's probe (t is being removed). */
void health_forget_target(struct worker *w, struct target *t);

/*
 * The proxy path saw t fail (connect refused, login failed, connection
 * lost): ban a replica now for replica_ban_time with reason (a ban in force
 * is extended, not logged again); a primary's failure is only logged.
 */
void health_report_failure(struct worker *w, struct target *t, const char *reason);

/*
 * true when t may take new work: a primary always, a replica when not
 * banned. A ban ends when a probe passes after banned_until, or, where no
 * probe runs (health_check_period = 0, no credentials), at banned_until.
 */
bool health_target_usable(const struct target *t, ev_tstamp now);

/*
 * The primary's WAL position from a probe whose query was sent strictly
 * after since (seconds, ev_now scale), or 0 when no such probe has answered
 * yet. Strictly: a probe sent in the same loop iteration as the commit was
 * seen may have run on the server before that commit.
 */
uint64_t health_primary_lsn_since(const struct database *db, ev_tstamp since);

/*
 * Parses PostgreSQL's text form of an LSN, "X/Y" with 1 to 8 hex digits on
 * each side, into (X << 32) | Y.
 * text: NUL-terminated; nothing else may surround it.
 * lsn: receives the value on success.
 * Returns false when text is not an LSN.
 */
bool health_parse_lsn(const char *text, uint64_t *lsn);

/*
 * Reads the three columns of the probe query's row.
 * in_recovery: "t" or "f".
 * lsn: an LSN, or NULL for SQL NULL.
 * replay_age: seconds as a decimal number, or NULL for SQL NULL.
 * out: receives the sample.
 * Returns false when a column is malformed.
 */
bool health_parse_sample(const char *in_recovery, const char *lsn, const char *replay_age,
			 struct health_sample *out);

/*
 * Judges a replica from its sample against the primary's position.
 * lag_bytes = primary_lsn - replayed position (0 when negative or either is
 * unknown, primary_lsn = 0 meaning unknown); lag_seconds = 0 when lag_bytes
 * is 0, else the replay age, but no more than behind_for when that is known
 * (after an idle spell the last replayed commit is old even for a replica
 * that is one write behind). A limit of 0 means no limit.
 * s: the replica's sample.
 * primary_lsn: the primary's position measured before the replica's probe.
 * max_lag_usec, max_lag_bytes: max_replica_lag and max_replica_lag_bytes.
 * lag_bytes, lag_seconds: receive the lag.
 * reason, cap: receive why the replica must be banned, when it must.
 * Returns true when the replica may serve reads.
 */
bool health_judge_replica(const struct health_sample *s, uint64_t primary_lsn,
			  int64_t max_lag_usec, int64_t max_lag_bytes, int64_t *lag_bytes,
			  double *lag_seconds, char *reason, size_t cap);

#endif
