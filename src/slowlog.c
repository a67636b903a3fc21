/*
 * slowlog.c - the slow-query log file and ring (see slowlog.h).
 *
 * A record is formatted once into a line buffer kept by the log (bounded by
 * SLOWLOG_LINE_MAX) and written with write(2) so that a line is never
 * interleaved with another writer's. The ring is a circular array of record
 * pointers; the newest sits just before head.
 */
#include "slowlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"

/* Seconds between two warnings about failed writes. */
#define SLOWLOG_WARN_INTERVAL 60.0

/*
 * How a record is made to fit in a line: the passes of slowlog_format_fit
 * try these combinations in increasing order.
 */
enum {
	SLOWLOG_DROP_PLAN = 1, /* plan null, plan_skipped "plan too large" */
	SLOWLOG_CUT = 2,       /* texts cut, parameters left out, truncated true */
	SLOWLOG_PASSES = 4,
};

struct slowlog {
	struct slow_record **ring; /* ring_cap slots */
	size_t ring_cap;
	size_t ring_count;
	size_t ring_head; /* the slot the next record goes to */
	int fd;           /* -1: no file */
	char *path;       /* the file's path, or NULL */
	struct obuf line; /* the line being written, kept between records */
	bool warned;      /* a write failure was logged at warn_time */
	double warn_time; /* CLOCK_MONOTONIC seconds */
	uint64_t write_failures; /* since the last warning */
};

void slowlog_record_free(struct slow_record *rec)
{
	if (rec == NULL)
		return;
	free(rec->normalized);
	free(rec->text);
	free(rec->parameters);
	free(rec->plan);
	free(rec);
}

struct slowlog *slowlog_create(size_t ring_size)
{
	struct slowlog *sl = calloc(1, sizeof(*sl));
	if (sl == NULL)
		return NULL;
	if (ring_size > 0 && (sl->ring = calloc(ring_size, sizeof(*sl->ring))) == NULL) {
		free(sl);
		return NULL;
	}
	sl->ring_cap = ring_size;
	sl->fd = -1;
	obuf_init(&sl->line, SLOWLOG_LINE_MAX);
	return sl;
}

static void slowlog_close_file(struct slowlog *sl)
{
	if (sl->fd >= 0)
		close(sl->fd);
	sl->fd = -1;
	free(sl->path);
	sl->path = NULL;
}

void slowlog_free(struct slowlog *sl)
{
	if (sl == NULL)
		return;
	slowlog_set_ring_size(sl, 0);
	slowlog_close_file(sl);
	obuf_free(&sl->line);
	free(sl);
}

static int slowlog_open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		log_warning("could not open slow query log \"%s\": %s", path, strerror(errno));
	return fd;
}

bool slowlog_open(struct slowlog *sl, const char *path)
{
	if (path == NULL || path[0] == '\0') {
		slowlog_close_file(sl);
		return true;
	}
	if (sl->fd >= 0 && strcmp(sl->path, path) == 0)
		return true;
	char *copy = strdup(path);
	if (copy == NULL) {
		log_warning("could not open slow query log \"%s\": out of memory", path);
		return false;
	}
	slowlog_close_file(sl);
	sl->path = copy;
	sl->fd = slowlog_open_path(path);
	return sl->fd >= 0;
}

bool slowlog_reopen(struct slowlog *sl)
{
	if (sl->path == NULL)
		return true;
	int fd = slowlog_open_path(sl->path);
	if (fd < 0)
		return false;
	if (sl->fd >= 0)
		close(sl->fd);
	sl->fd = fd;
	return true;
}

size_t slowlog_count(const struct slowlog *sl)
{
	return sl->ring_count;
}

const struct slow_record *slowlog_get(const struct slowlog *sl, size_t i)
{
	if (i >= sl->ring_count)
		return NULL;
	return sl->ring[(sl->ring_head + sl->ring_cap - 1 - i) % sl->ring_cap];
}

void slowlog_set_ring_size(struct slowlog *sl, size_t n)
{
	if (n == sl->ring_cap)
		return;
	struct slow_record **ring = NULL;
	if (n > 0 && (ring = calloc(n, sizeof(*ring))) == NULL) {
		log_warning("slow query ring not resized to %zu: out of memory", n);
		return;
	}
	size_t keep = sl->ring_count < n ? sl->ring_count : n;
	for (size_t i = 0; i < sl->ring_count; i++) {
		struct slow_record *rec = (struct slow_record *)slowlog_get(sl, i);
		if (i < keep)
			ring[keep - 1 - i] = rec;
		else
			slowlog_record_free(rec);
	}
	free(sl->ring);
	sl->ring = ring;
	sl->ring_cap = n;
	sl->ring_count = keep;
	sl->ring_head = n > 0 ? keep % n : 0;
}

/* The ISO 8601 UTC time with milliseconds, or null when t is not a representable time. */
static bool slowlog_put_time(struct obuf *ob, double t)
{
	/* Beyond about ±3e13 s, gmtime's year no longer fits an int. */
	if (!isfinite(t) || fabs(t) > 1e13)
		return json_put_null(ob);
	long long total_ms = llround(t * 1000.0);
	long long sec = total_ms / 1000;
	long long ms = total_ms % 1000;
	if (ms < 0) {
		ms += 1000;
		sec--;
	}
	time_t tt = (time_t)sec;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return json_put_null(ob);
	char text[64];
	size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(text + n, sizeof(text) - n, ".%03lldZ", ms);
	return json_put_string(ob, text, n);
}

/* A NUL-terminated field of a fixed-size array (tolerating a missing NUL). */
static bool slowlog_put_field(struct obuf *ob, const char *key, const char *s, size_t cap)
{
	return json_put_key(ob, false, key) && json_put_string(ob, s, strnlen(s, cap));
}

/* A string that may be NULL (null), at most keep bytes of it, cut at a character boundary. */
static bool slowlog_put_text(struct obuf *ob, const char *key, const char *s, size_t keep)
{
	if (!json_put_key(ob, false, key))
		return false;
	if (s == NULL)
		return json_put_null(ob);
	size_t len = strlen(s);
	if (len > keep) {
		len = keep;
		/* Back off over continuation bytes: at most three in valid UTF-8. */
		for (int i = 0; i < 3 && len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80; i++)
			len--;
	}
	return json_put_string(ob, s, len);
}

/*
 * EXPLAIN's JSON as a value on one line: whitespace between tokens is left
 * out (the pretty-printed text spans many lines); inside strings, where JSON
 * allows no raw control character, any found is escaped.
 */
static bool slowlog_put_plan(struct obuf *ob, const char *plan)
{
	if (plan[strspn(plan, " \t\r\n")] == '\0')
		return json_put_null(ob);
	bool in_string = false, escaped = false;
	size_t run = 0, i;
	for (i = 0; plan[i] != '\0'; i++) {
		unsigned char c = (unsigned char)plan[i];
		bool skip = false;
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			else if (c < 0x20)
				skip = true;
		} else if (c == '"') {
			in_string = true;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			skip = true;
		}
		if (!skip)
			continue;
		if (!obuf_put(ob, plan + run, i - run))
			return false;
		run = i + 1;
		if (in_string) {
			char esc[8];
			int n = snprintf(esc, sizeof(esc), "\\u%04x", c);
			if (!obuf_put(ob, esc, (size_t)n))
				return false;
		}
	}
	return obuf_put(ob, plan + run, i - run);
}

/* Every key of rec, as pass (SLOWLOG_DROP_PLAN, SLOWLOG_CUT) says. */
static bool slowlog_put_record(struct obuf *ob, const struct slow_record *rec, int pass)
{
	bool drop_plan = (pass & SLOWLOG_DROP_PLAN) != 0 && rec->plan != NULL;
	bool cut = (pass & SLOWLOG_CUT) != 0;
	size_t keep = cut ? SLOWLOG_TEXT_KEEP : SIZE_MAX;
	char fingerprint[17];
	snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, rec->fingerprint);
	bool ok = obuf_put_u8(ob, '{') && json_put_key(ob, true, "time") &&
		  slowlog_put_time(ob, rec->time) &&
		  slowlog_put_field(ob, "database", rec->database, sizeof(rec->database)) &&
		  slowlog_put_field(ob, "user", rec->user, sizeof(rec->user)) &&
		  slowlog_put_field(ob, "application_name", rec->application_name,
				    sizeof(rec->application_name)) &&
		  slowlog_put_field(ob, "client", rec->client_addr, sizeof(rec->client_addr)) &&
		  slowlog_put_field(ob, "server", rec->server, sizeof(rec->server)) &&
		  slowlog_put_text(ob, "role", rec->role, SIZE_MAX) &&
		  json_put_key(ob, false, "duration_ms") && json_put_fixed3(ob, rec->duration_ms) &&
		  json_put_key(ob, false, "rows") && json_put_u64(ob, rec->rows) &&
		  json_put_key(ob, false, "sqlstate") &&
		  (rec->sqlstate[0] == '\0'
			   ? json_put_null(ob)
			   : json_put_string(ob, rec->sqlstate,
					     strnlen(rec->sqlstate, sizeof(rec->sqlstate)))) &&
		  json_put_key(ob, false, "fingerprint") && json_put_string(ob, fingerprint, 16) &&
		  slowlog_put_text(ob, "normalized", rec->normalized, keep) &&
		  slowlog_put_text(ob, "query", rec->text, keep);
	if (ok && rec->parameters != NULL && !cut)
		ok = json_put_key(ob, false, "parameters") &&
		     obuf_put(ob, rec->parameters, strlen(rec->parameters));
	ok = ok && json_put_key(ob, false, "plan") &&
	     (rec->plan == NULL || drop_plan ? json_put_null(ob) : slowlog_put_plan(ob, rec->plan));
	const char *skipped = drop_plan ? "plan too large" : rec->plan_skipped;
	if (ok && skipped[0] != '\0')
		ok = slowlog_put_field(ob, "plan_skipped", skipped, sizeof(rec->plan_skipped));
	if (ok && (cut || rec->truncated))
		ok = json_put_key(ob, false, "truncated") && json_put_bool(ob, true);
	return ok && obuf_put_u8(ob, '}');
}

/*
 * slowlog_format, also saying through *pass_out which pass made the object
 * fit in SLOWLOG_LINE_MAX - 1 bytes and out's limit.
 */
static size_t slowlog_format_fit(const struct slow_record *rec, struct obuf *out, int *pass_out)
{
	if (out->failed)
		return 0;
	/* Offsets from out->off: obuf_reserve may move the unsent bytes to the front. */
	size_t start = out->len - out->off;
	size_t limit = out->limit;
	for (int pass = 0; pass < SLOWLOG_PASSES; pass++) {
		if ((pass & SLOWLOG_DROP_PLAN) != 0 && rec->plan == NULL)
			continue;
		/* A temporary lower limit stops a huge plan early. */
		if (out->len + SLOWLOG_LINE_MAX - 1 < limit)
			out->limit = out->len + SLOWLOG_LINE_MAX - 1;
		bool ok = slowlog_put_record(out, rec, pass);
		out->limit = limit;
		size_t n = out->len - out->off - start;
		if (ok && n <= SLOWLOG_LINE_MAX - 1) {
			*pass_out = pass;
			return n;
		}
		out->len = out->off + start;
		out->failed = false;
	}
	return 0;
}

size_t slowlog_format(const struct slow_record *rec, struct obuf *out)
{
	int pass;
	return slowlog_format_fit(rec, out, &pass);
}

/* Makes rec what its line says after pass, so that the ring agrees with the file. */
static void slowlog_apply_pass(struct slow_record *rec, int pass)
{
	if ((pass & SLOWLOG_DROP_PLAN) != 0 && rec->plan != NULL) {
		free(rec->plan);
		rec->plan = NULL;
		snprintf(rec->plan_skipped, sizeof(rec->plan_skipped), "plan too large");
	}
	if ((pass & SLOWLOG_CUT) == 0)
		return;
	free(rec->parameters);
	rec->parameters = NULL;
	char **texts[] = {&rec->normalized, &rec->text};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *s = *texts[i];
		if (s == NULL || strlen(s) <= SLOWLOG_TEXT_KEEP)
			continue;
		size_t len = SLOWLOG_TEXT_KEEP;
		for (int k = 0; k < 3 && len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80; k++)
			len--;
		s[len] = '\0';
		char *smaller = realloc(s, len + 1);
		if (smaller != NULL)
			*texts[i] = smaller;
	}
	rec->truncated = true;
}

static double slowlog_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void slowlog_write_failed(struct slowlog *sl, int err)
{
	sl->write_failures++;
	double now = slowlog_monotonic();
	if (sl->warned && now - sl->warn_time < SLOWLOG_WARN_INTERVAL)
		return;
	log_warning("could not write to slow query log \"%s\": %s (%" PRIu64
		    " records lost since the last warning)",
		    sl->path, strerror(err), sl->write_failures);
	sl->warned = true;
	sl->warn_time = now;
	sl->write_failures = 0;
}

static void slowlog_write(struct slowlog *sl, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(sl->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* A regular file that takes nothing is as full as ENOSPC says. */
			slowlog_write_failed(sl, w < 0 ? errno : ENOSPC);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void slowlog_ring_push(struct slowlog *sl, struct slow_record *rec)
{
	if (sl->ring_cap == 0) {
		slowlog_record_free(rec);
		return;
	}
	if (sl->ring_count == sl->ring_cap)
		slowlog_record_free(sl->ring[sl->ring_head]);
	else
		sl->ring_count++;
	sl->ring[sl->ring_head] = rec;
	sl->ring_head = (sl->ring_head + 1) % sl->ring_cap;
}

void slowlog_emit(struct slowlog *sl, struct slow_record *rec)
{
	if (rec == NULL)
		return;
	if (sl->fd >= 0 || sl->ring_cap > 0) {
		int pass;
		obuf_reset(&sl->line);
		if (slowlog_format_fit(rec, &sl->line, &pass) > 0) {
			slowlog_apply_pass(rec, pass);
			if (sl->fd >= 0 && obuf_put_u8(&sl->line, '\n'))
				slowlog_write(sl, sl->line.data, sl->line.len);
		} else if (sl->fd >= 0) {
			slowlog_write_failed(sl, ENOMEM);
		}
	}
	slowlog_ring_push(sl, rec);
}
