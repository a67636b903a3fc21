/*
 * config.c - the configuration snapshot: an INI file (inih) becomes a struct config.
 *
 * Owns the table of every [pgsluice] key (config_keys[]), the value syntaxes
 * (integer, boolean, enum, duration, size), the libpq-like connection strings
 * of [databases], the [users] entries and the checks that span several keys.
 * A line reader in front of inih counts lines and tracks sections, so that
 * every problem becomes one "FILE:LINE: key: why" line; config_load() collects
 * them all before it gives up. No sockets, no event loop: the daemon loads a
 * snapshot at start and on SIGHUP and swaps it in whole.
 */
#include "config.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "authquery.h"

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_DAY (INT64_C(86400) * USEC_PER_SEC)
#define DURATION_MAX (365 * USEC_PER_DAY)
#define KB	     INT64_C(1024)
#define MB	     (1024 * KB)
#define GB	     (1024 * MB)

#define NAME_MAX_LEN   63     /* PostgreSQL identifiers: NAMEDATALEN - 1 */
#define MAX_ERRORS     100    /* reported; the rest are only counted */
#define MAX_ENTRIES    100000 /* per [databases] or [users] section */
#define MAX_REPLICAS   64     /* per database */
#define READ_LINE_MAX  4096   /* longer physical lines are refused whole */
#define WHY_MAX	       200    /* one reason, without file, line and key */
#define PATH_MAX_SHOWN 4096   /* room for the file name in a summary line */

/* Enum fields are stored through int pointers; the two must agree in size. */
_Static_assert(sizeof(enum pool_mode) == sizeof(int), "enum pool_mode must be int-sized");

static const char *const pool_mode_names[] = {"session", "transaction", "statement", NULL};
static const char *const auth_type_names[] = {"trust", "md5", "scram-sha-256", NULL};
static const char *const primary_reads_names[] = {"off", "on", "fallback-only", NULL};
static const char *const replica_fallback_names[] = {"primary", "error", NULL};
static const char *const route_unknown_names[] = {"primary", "replica", NULL};
static const char *const read_your_writes_names[] = {"off", "client", "global", NULL};
static const char *const slow_query_explain_names[] = {"off", "plan", "analyze", NULL};
static const char *const shutdown_drain_names[] = {"transactions", "clients", NULL};
/* In enum tls_mode's order: the field holds the enum value. */
static const char *const tls_mode_names[] = {"disable", "allow",     "prefer",
					     "require", "verify-ca", "verify-full", NULL};
_Static_assert(TLS_MODE_VERIFY_FULL == 5, "tls_mode_names must follow enum tls_mode");

/* offsetof(struct config, f), refused at compile time unless f has type T. */
#define FIELD(f, T)                                                                                \
	(offsetof(struct config, f) + 0 * sizeof(_Generic(((struct config *)0)->f, T : 1)))

/* One row of config_keys[] each; clang-format cannot lay out braced macro bodies. */
/* clang-format off */
#define K_STR(f, def, rl, doc) \
	{#f, CFG_STRING, FIELD(f, char *), def, rl, NULL, 0, 0, doc}
#define K_BOOL(f, def, rl, doc) \
	{#f, CFG_BOOL, FIELD(f, bool), def, rl, NULL, 0, 1, doc}
#define K_INT(f, def, rl, lo, hi, doc) \
	{#f, CFG_INT, FIELD(f, int), def, rl, NULL, lo, hi, doc}
#define K_ENUM(f, def, rl, names, doc) \
	{#f, CFG_ENUM, FIELD(f, int), def, rl, names, 0, 0, doc}
#define K_DUR(f, def, doc) \
	{#f, CFG_DURATION, FIELD(f, int64_t), def, true, NULL, 0, DURATION_MAX, doc}
#define K_SIZE(f, def, rl, lo, hi, doc) \
	{#f, CFG_SIZE, FIELD(f, int64_t), def, rl, NULL, lo, hi, doc}
#define K_SIZE_INT(f, def, rl, lo, hi, doc) \
	{#f, CFG_SIZE_INT, FIELD(f, int), def, rl, NULL, lo, hi, doc}
/* clang-format on */

const struct cfg_key config_keys[] = {
	K_STR(listen_addr, "127.0.0.1", false,
	      "TCP addresses to listen on, comma separated; * = every address; empty = no TCP"),
	K_INT(listen_port, "6432", false, 1, 65535,
	      "TCP port; the unix socket is named .s.PGSQL.<port> after it"),
	K_STR(unix_socket_dir, "/tmp", false,
	      "Directory of the unix socket; empty = no unix socket"),
	K_INT(listen_backlog, "128", false, 1, 65535,
	      "Length of the kernel's queue of pending connections"),
	K_BOOL(so_reuseport, "off", false,
	       "Several pgsluice processes share the TCP port; cancels reach the right one"),
	K_ENUM(client_tls_mode, "disable", true, tls_mode_names,
	       "TLS toward clients: disable, allow, prefer, require, verify-ca or verify-full"),
	K_STR(client_tls_cert_file, "", true,
	      "PEM certificate chain pgsluice shows clients (leaf first)"),
	K_STR(client_tls_key_file, "", true, "PEM private key of client_tls_cert_file"),
	K_STR(client_tls_ca_file, "", true,
	      "PEM CA certificates client certificates must chain to; required by verify-*"),
	K_STR(client_tls_protocols, "secure", true,
	      "Oldest TLS version clients may use: secure (= TLSv1.2), TLSv1.2 or TLSv1.3"),
	K_STR(client_tls_ciphers, "", true,
	      "OpenSSL cipher list for TLS 1.2 toward clients; empty = OpenSSL's default"),
	K_ENUM(server_tls_mode, "disable", true, tls_mode_names,
	       "TLS toward servers: disable, allow, prefer, require, verify-ca or verify-full"),
	K_STR(server_tls_ca_file, "", true,
	      "PEM CA certificates server certificates must chain to; required by verify-*"),
	K_STR(server_tls_cert_file, "", true,
	      "PEM certificate pgsluice shows servers that ask for one; empty = none"),
	K_STR(server_tls_key_file, "", true, "PEM private key of server_tls_cert_file"),
	K_STR(server_tls_protocols, "secure", true,
	      "Oldest TLS version used with servers: secure (= TLSv1.2), TLSv1.2 or TLSv1.3"),
	K_STR(server_tls_ciphers, "", true,
	      "OpenSSL cipher list for TLS 1.2 toward servers; empty = OpenSSL's default"),
	K_STR(logfile, "", true, "Log file; empty = standard error"),
	K_STR(pidfile, "", false, "File that receives the process id; empty = none"),
	K_BOOL(syslog, "off", true, "Also send the log to syslog"),
	K_INT(verbose, "0", true, 0, 3,
	      "Log detail: 0 = notices and errors, 1 to 3 = ever more debug output"),
	K_BOOL(log_connections, "on", true, "Log every successful client login"),
	K_BOOL(log_disconnections, "on", true, "Log every client disconnection with its reason"),
	K_ENUM(pool_mode, "transaction", true, pool_mode_names,
	       "When a server returns to the pool: after the session, transaction or statement"),
	K_ENUM(auth_type, "md5", true, auth_type_names,
	       "How clients prove who they are: trust, md5 or scram-sha-256"),
	K_STR(auth_file, "", true,
	      "File of \"user\" \"secret\" lines; required unless auth_type = trust"),
	K_STR(hba_file, "", true,
	      "pg_hba.conf-style rules choosing each client's method; empty = auth_type for all"),
	K_STR(auth_user, "", true,
	      "User that runs auth_query for users missing from auth_file; empty = no auth_query"),
	K_STR(auth_query, AUTHQUERY_DEFAULT_QUERY, true,
	      "Query returning the user name and secret of the user in $1"),
	K_STR(auth_dbname, "", true,
	      "Database auth_query runs in; empty = the server database the client asked for"),
	K_DUR(auth_query_timeout, "5s", "Longest wait of a login for its auth_query answer"),
	K_DUR(auth_query_cache_ttl, "1min", "How long a secret auth_query found is kept; 0 = not"),
	K_DUR(auth_query_negative_ttl, "5s",
	      "How long an auth_query answer of no such user is kept; 0 = not"),
	K_INT(auth_query_cache_size, "10000", true, 0, 1000000,
	      "Most auth_query answers kept per database"),
	K_INT(auth_query_max_waiting, "1000", true, 1, 1000000,
	      "Most logins waiting for auth_query per database; more are refused"),
	K_STR(admin_users, "", true, "Users who may run every admin command, comma separated"),
	K_STR(stats_users, "", true,
	      "Users who may run the read-only SHOW commands, comma separated"),
	K_INT(max_client_conn, "1000", true, 1, 1000000, "Most client connections open at once"),
	K_INT(default_pool_size, "20", true, 1, 10000,
	      "Server connections per database and user, unless the database sets pool_size"),
	K_INT(min_pool_size, "0", true, 0, 10000,
	      "Server connections each pool keeps open even when idle"),
	K_INT(reserve_pool_size, "0", true, 0, 10000,
	      "Extra server connections per pool for clients waiting past reserve_pool_timeout"),
	K_INT(max_db_connections, "0", true, 0, 1000000,
	      "Most server connections per database over all users; 0 = unlimited"),
	K_INT(max_user_connections, "0", true, 0, 1000000,
	      "Most server connections per user over all databases; 0 = unlimited"),
	K_DUR(reserve_pool_timeout, "5s",
	      "How long a client waits before the reserve pool may serve it"),
	K_DUR(server_connect_timeout, "15s",
	      "Time allowed to connect to a server and log in; 0 = no limit"),
	K_DUR(server_login_retry, "15s",
	      "Pause after a failed server login before the next attempt"),
	K_DUR(server_idle_timeout, "10min",
	      "Idle server connections above min_pool_size are closed after this; 0 = never"),
	K_DUR(server_lifetime, "1h",
	      "Server connections older than this are closed when released; 0 = never"),
	K_DUR(query_wait_timeout, "2min", "Longest wait of a client for a server; 0 = forever"),
	K_DUR(query_timeout, "0", "Queries running longer are canceled; 0 = no limit"),
	K_DUR(client_login_timeout, "1min", "Time a client has to finish logging in; 0 = no limit"),
	K_DUR(client_idle_timeout, "0",
	      "Clients idle this long outside a transaction are closed; 0 = never"),
	K_DUR(idle_transaction_timeout, "0",
	      "Clients idle this long inside a transaction are closed; 0 = never"),
	K_DUR(client_stall_timeout, "30s",
	      "A client that stops sending in the middle of a message is closed after this; 0 = never"),
	K_DUR(shutdown_timeout, "30s", "On SIGTERM, how long clients are still served"),
	K_ENUM(shutdown_drain, "transactions", true, shutdown_drain_names,
	       "On SIGTERM close each client after its transaction, or serve clients until they leave"),
	K_STR(server_reset_query, "DISCARD ALL", true,
	      "Run on a server before the next client gets it (session pooling); empty = none"),
	K_BOOL(server_reset_query_always, "off", true,
	       "Run server_reset_query in transaction and statement pooling too"),
	K_INT(max_prepared_statements, "200", true, 0, 10000,
	      "Named statements each server keeps prepared for transaction pooling; 0 = pass through"),
	K_INT(max_client_prepared_statements, "1000", true, 1, 100000,
	      "Named prepared statements one client may hold under transaction pooling"),
	K_BOOL(pin_on_session_state, "off", true,
	       "LISTEN, session advisory locks, temp tables, WITH HOLD: pin (on) or refuse (off)"),
	K_STR(ignore_startup_parameters, "", true,
	      "Client parameters to drop instead of refuse, comma list (e.g. extra_float_digits)"),
	K_BOOL(read_routing, "on", true,
	       "Send provably read-only transactions to the replicas (transaction/statement pooling)"),
	K_INT(replica_pool_size, "0", true, 0, 10000,
	      "Server connections per replica, database and user; 0 = the database's pool size"),
	K_ENUM(primary_reads, "fallback-only", true, primary_reads_names,
	       "Whether the primary takes part in the read rotation: off, on or fallback-only"),
	K_ENUM(replica_fallback, "primary", true, replica_fallback_names,
	       "With no healthy replica, reads go to the primary or fail with an error"),
	K_ENUM(route_unknown_functions, "primary", true, route_unknown_names,
	       "Where statements that call unknown user functions go: primary or replica"),
	K_STR(write_functions, "", true,
	      "Extra functions whose call makes a statement a write, comma separated"),
	K_STR(read_only_functions, "", true,
	      "User functions known to be read-only, comma separated"),
	K_DUR(health_check_period, "2s", "How often every server is probed; 0 = no probes"),
	K_DUR(health_check_timeout, "3s", "A probe that takes longer fails"),
	K_STR(health_check_user, "", true,
	      "User of the health probes; empty = the database's user= or a pool's user"),
	K_STR(health_check_password, "", true,
	      "Password of health_check_user; empty = from the auth file"),
	K_DUR(max_replica_lag, "10s", "A replica further behind in time is banned; 0 = no limit"),
	K_SIZE(max_replica_lag_bytes, "16MB", true, 0, INT64_MAX,
	       "A replica further behind in WAL bytes is banned; 0 = no limit"),
	K_DUR(replica_ban_time, "10s", "How long a failed or lagging replica is skipped"),
	K_ENUM(read_your_writes, "off", true, read_your_writes_names,
	       "After a commit, reads wait for replicas that replayed it: off, client or global"),
	K_DUR(lsn_probe_period, "50ms",
	      "How often the primary's WAL position is read when read_your_writes is on"),
	K_DUR(stats_period, "1min",
	      "Length of the period SHOW STATS averages and the \"last period\" percentiles cover"),
	K_STR(metrics_listen, "", false,
	      "host:port of the Prometheus endpoint (GET /metrics); empty = off"),
	K_DUR(slow_query_threshold, "1s",
	      "Statements that take longer are logged as slow (per database too); 0 = off"),
	K_STR(slow_query_log, "", true,
	      "File the slow statements are appended to, one JSON object a line; empty = none"),
	K_BOOL(slow_query_log_parameters, "off", true,
	       "Log slow statements with their literals and bound values instead of redacted"),
	K_INT(slow_query_ring, "100", true, 0, 10000,
	      "Slow statements kept in memory for SHOW SLOW_QUERIES"),
	K_ENUM(slow_query_explain, "plan", true, slow_query_explain_names,
	       "Capture the plan of slow statements: off, plan, or analyze (read-only ones)"),
	K_DUR(slow_query_explain_interval, "1min",
	      "Least time between two plan captures of one fingerprint"),
	K_DUR(slow_query_explain_timeout, "5s",
	      "A plan not captured within this is given up; the record is written without"),
	K_INT(slow_query_explain_queue, "16", true, 1, 10000,
	      "Plan captures that may wait for a connection; more are skipped"),
	K_INT(slow_query_explain_connections, "2", true, 1, 100,
	      "Connections pgsluice opens in all to capture plans"),
	K_INT(query_stats_max, "1000", true, 0, 100000,
	      "Fingerprints SHOW QUERIES keeps statistics for (about 9 kB each); 0 = off"),
	K_INT(query_stats_metrics_top, "20", true, 0, 10000,
	      "Fingerprints with the most total time exported in /metrics"),
	K_BOOL(batch_inserts, "off", true,
	       "Join single-row autocommit INSERTs of concurrent clients into multi-row INSERTs"),
	K_INT(batch_max_rows, "500", true, 1, 10000, "Most rows one batched INSERT carries"),
	K_DUR(batch_max_delay, "2ms",
	      "Longest a batch collects rows before it waits in line for a server"),
	K_SIZE(max_packet_size, "1GB", true, 16 * KB, 2 * GB,
	       "Largest protocol message in either direction"),
	K_SIZE_INT(pkt_buf, "16kB", false, 4 * KB, MB,
		   "Input buffer per connection; a message that must be inspected has to fit"),
	K_SIZE_INT(max_startup_packet, "10000", false, KB, MB,
		   "Largest startup packet a client may send"),
	{NULL, CFG_STRING, 0, NULL, false, NULL, 0, 0, NULL},
};

/* The syntax of durations and sizes: a number, optional spaces, a unit. */
struct unit {
	const char *name;
	int64_t factor;
};

/* Largest first: formatting writes the largest unit that divides exactly. */
static const struct unit duration_units[] = {
	{"d", USEC_PER_DAY},
	{"h", 3600 * USEC_PER_SEC},
	{"min", 60 * USEC_PER_SEC},
	{"s", USEC_PER_SEC},
	{"ms", 1000},
	{"us", 1},
	{NULL, 0},
};

static const struct unit size_units[] = {
	{"GB", GB},
	{"MB", MB},
	{"kB", KB},
	{NULL, 0},
};

enum scaled_result {
	SCALED_OK,
	SCALED_SYNTAX,
	SCALED_TOO_LARGE,
	SCALED_TOO_FINE
};

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b != 0) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/*
 * Parses "<digits>[.<digits>][ ]*[unit]" into a whole number of base units
 * (microseconds, bytes); a bare number counts bare_factor base units.
 */
static enum scaled_result scaled_parse(const char *text, const struct unit *units,
				       int64_t bare_factor, int64_t *out)
{
	const char *p = text;
	int64_t whole = 0, frac = 0, frac_scale = 1;

	if (!isdigit((unsigned char)*p))
		return SCALED_SYNTAX;
	for (; isdigit((unsigned char)*p); p++) {
		int d = *p - '0';
		if (whole > (INT64_MAX - d) / 10)
			return SCALED_TOO_LARGE;
		whole = whole * 10 + d;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return SCALED_SYNTAX;
		for (; isdigit((unsigned char)*p); p++) {
			/* 18 digits resolve far below one base unit of any unit here. */
			if (frac_scale == INT64_C(1000000000000000000)) {
				if (*p != '0')
					return SCALED_TOO_FINE;
				continue;
			}
			frac = frac * 10 + (*p - '0');
			frac_scale *= 10;
		}
	}
	while (*p == ' ')
		p++;

	int64_t factor = bare_factor;
	if (*p != '\0') {
		const struct unit *u = units;
		while (u->name != NULL && strcasecmp(p, u->name) != 0)
			u++;
		if (u->name == NULL)
			return SCALED_SYNTAX;
		factor = u->factor;
	}

	/* frac/frac_scale of factor must be whole: reduce the fraction first. */
	int64_t frac_units = 0;
	if (frac != 0) {
		int64_t g = gcd64(factor, frac_scale);
		int64_t scale = frac_scale / g;
		if (frac % scale != 0)
			return SCALED_TOO_FINE;
		frac_units = frac / scale * (factor / g); /* below factor: cannot overflow */
	}
	if (whole > (INT64_MAX - frac_units) / factor)
		return SCALED_TOO_LARGE;
	*out = whole * factor + frac_units;
	return SCALED_OK;
}

/* Writes v in the largest unit that divides it exactly; bare when none does. */
static void scaled_format(int64_t v, const struct unit *units, char *buf, size_t cap)
{
	if (v != 0) {
		for (const struct unit *u = units; u->name != NULL; u++) {
			if (v % u->factor == 0) {
				snprintf(buf, cap, "%" PRId64 "%s", v / u->factor, u->name);
				return;
			}
		}
	}
	snprintf(buf, cap, "%" PRId64, v);
}

bool config_parse_duration(const char *text, int64_t *usec)
{
	return scaled_parse(text, duration_units, USEC_PER_SEC, usec) == SCALED_OK;
}

bool config_parse_size(const char *text, int64_t *bytes)
{
	return scaled_parse(text, size_units, 1, bytes) == SCALED_OK;
}

/* Optional '-' and decimal digits, nothing else, within int64_t. */
static bool integer_parse(const char *text, int64_t *out)
{
	const char *p = text;
	bool negative = *p == '-';
	int64_t v = 0;

	if (negative)
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		int d = *p - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (*p != '\0')
		return false;
	*out = negative ? -v : v;
	return true;
}

static const char *const bool_words[] = {"on", "off", "true", "false", "yes", "no", "1", "0", NULL};

/* Writes a value of a non-string type as INI text. */
static void value_format(enum cfg_type type, const char *const *enum_names, int64_t v, char *buf,
			 size_t cap)
{
	switch (type) {
	case CFG_BOOL:
		snprintf(buf, cap, "%s", v ? "on" : "off");
		break;
	case CFG_ENUM:
		snprintf(buf, cap, "%s", enum_names[v]);
		break;
	case CFG_DURATION:
		scaled_format(v, duration_units, buf, cap);
		break;
	case CFG_SIZE:
	case CFG_SIZE_INT:
		scaled_format(v, size_units, buf, cap);
		break;
	default:
		snprintf(buf, cap, "%" PRId64, v);
		break;
	}
}

/* Copies text into out between double quotes, cut short and with control bytes masked. */
static void value_quote(const char *text, char *out, size_t cap)
{
	const size_t shown_max = 60;
	size_t n = 0, i = 0;

	out[n++] = '"';
	for (; text[i] != '\0' && i < shown_max && n + 6 < cap; i++)
		out[n++] = iscntrl((unsigned char)text[i]) ? '?' : text[i];
	if (text[i] != '\0') {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/*
 * Parses text as a value of a non-string type within min..max. On failure
 * writes the reason (which quotes the value) into why.
 */
static bool value_parse(enum cfg_type type, const char *const *enum_names, int64_t min, int64_t max,
			const char *text, int64_t *out, char *why, size_t cap)
{
	char shown[80];
	enum scaled_result r;
	int64_t v = 0;

	value_quote(text, shown, sizeof(shown));
	if (*text == '\0') {
		snprintf(why, cap, "value is empty");
		return false;
	}
	switch (type) {
	case CFG_BOOL:
		for (int i = 0; bool_words[i] != NULL; i++) {
			if (strcasecmp(text, bool_words[i]) == 0) {
				*out = i % 2 == 0;
				return true;
			}
		}
		snprintf(why, cap, "%s is not a boolean (on/off, true/false, yes/no, 1/0)", shown);
		return false;
	case CFG_ENUM: {
		size_t n = (size_t)snprintf(why, cap, "%s is not one of ", shown);
		for (int i = 0; enum_names[i] != NULL; i++) {
			if (strcasecmp(text, enum_names[i]) == 0) {
				*out = i;
				return true;
			}
			if (n < cap)
				n += (size_t)snprintf(why + n, cap - n, "%s%s", i > 0 ? ", " : "",
						      enum_names[i]);
		}
		return false;
	}
	case CFG_DURATION:
	case CFG_SIZE:
	case CFG_SIZE_INT:
		if (type == CFG_DURATION)
			r = scaled_parse(text, duration_units, USEC_PER_SEC, &v);
		else
			r = scaled_parse(text, size_units, 1, &v);
		if (r == SCALED_TOO_LARGE) {
			snprintf(why, cap, "%s is too large", shown);
			return false;
		}
		if (r == SCALED_TOO_FINE) {
			snprintf(why, cap, "%s is finer than one %s", shown,
				 type == CFG_DURATION ? "microsecond" : "byte");
			return false;
		}
		if (r == SCALED_SYNTAX && type == CFG_DURATION) {
			snprintf(why, cap,
				 "%s is not a duration (a number and us, ms, s, min, h or d)",
				 shown);
			return false;
		}
		if (r == SCALED_SYNTAX) {
			snprintf(why, cap,
				 "%s is not a size (a number of bytes, or a number and kB, MB or "
				 "GB)",
				 shown);
			return false;
		}
		break;
	default: /* CFG_INT; strings never get here */
		if (!integer_parse(text, &v)) {
			snprintf(why, cap, "%s is not an integer", shown);
			return false;
		}
		break;
	}
	if (v < min || v > max) {
		char lo[32], hi[32];
		value_format(type, NULL, min, lo, sizeof(lo));
		value_format(type, NULL, max, hi, sizeof(hi));
		snprintf(why, cap, "%s is out of range %s..%s", shown, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

static int64_t field_get(const void *field, enum cfg_type type)
{
	switch (type) {
	case CFG_BOOL:
		return *(const bool *)field;
	case CFG_DURATION:
	case CFG_SIZE:
		return *(const int64_t *)field;
	default:
		return *(const int *)field;
	}
}

/* Stores a parsed value of a non-string type into its field. */
static void field_put(void *field, enum cfg_type type, int64_t v)
{
	switch (type) {
	case CFG_BOOL:
		*(bool *)field = v != 0;
		break;
	case CFG_DURATION:
	case CFG_SIZE:
		*(int64_t *)field = v;
		break;
	default:
		*(int *)field = (int)v;
		break;
	}
}

/*
 * Parses text and stores it in the field at field. A string that is empty
 * stores NULL, unless required: then it is an error.
 */
static bool field_store(void *field, enum cfg_type type, const char *const *enum_names, int64_t min,
			int64_t max, bool required, const char *text, char *why, size_t cap)
{
	int64_t v;

	if (type == CFG_STRING) {
		char *copy = NULL;
		if (*text == '\0' && required) {
			snprintf(why, cap, "value is empty");
			return false;
		}
		if (*text != '\0' && (copy = strdup(text)) == NULL) {
			snprintf(why, cap, "out of memory");
			return false;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return true;
	}
	if (!value_parse(type, enum_names, min, max, text, &v, why, cap))
		return false;
	field_put(field, type, v);
	return true;
}

/* Problems collected while loading, as "FILE:LINE: ..." lines. */
struct errors {
	char *text;
	size_t len, cap;
	int count;
	bool out_of_memory;
};

/* Appends one line, whatever the count. */
static void errors_append(struct errors *e, const char *line)
{
	size_t len = strlen(line);

	if (e->out_of_memory)
		return;
	if (e->len + len + 2 > e->cap) {
		size_t cap = e->cap == 0 ? 1024 : e->cap * 2;
		while (cap < e->len + len + 2)
			cap *= 2;
		char *text = realloc(e->text, cap);
		if (text == NULL) {
			e->out_of_memory = true;
			return;
		}
		e->text = text;
		e->cap = cap;
	}
	memcpy(e->text + e->len, line, len);
	e->len += len;
	e->text[e->len++] = '\n';
	e->text[e->len] = '\0';
}

static void errors_vadd(struct errors *e, const char *fmt, va_list ap)
{
	char line[512];

	if (e->count++ >= MAX_ERRORS)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	errors_append(e, line);
}

static void errors_add(struct errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void errors_add(struct errors *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errors_vadd(e, fmt, ap);
	va_end(ap);
}

enum section {
	SECTION_NONE,
	SECTION_PGSLUICE,
	SECTION_DATABASES,
	SECTION_USERS,
	SECTION_UNKNOWN
};

struct load_ctx {
	struct config *cfg;
	const char *path;
	FILE *file;
	int lineno;	      /* of the line inih works on */
	enum section section; /* tracked by the reader, not by inih */
	int *key_line;	      /* per config_keys[] row: the line that set it, 0 = default */
	bool *key_bad;	      /* per config_keys[] row: its value was refused */
	size_t dbs_cap, users_cap;
	struct errors err;
};

static void load_error(struct load_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void load_error(struct load_ctx *ctx, int line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errors_add(&ctx->err, "%s:%d: %s", ctx->path, line, msg);
}

/*
 * Maps a section header line (starting with '[') to its section; reports
 * malformed or unknown headers.
 */
static enum section section_parse(struct load_ctx *ctx, char *start)
{
	char *end = strchr(start, ']');
	if (end == NULL) {
		load_error(ctx, ctx->lineno, "%s: section header has no closing ]", start);
		return SECTION_UNKNOWN;
	}
	char *rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		load_error(ctx, ctx->lineno, "%.*s: unexpected text after the section header",
			   (int)(end - start + 1), start);
		return SECTION_UNKNOWN;
	}
	*end = '\0';
	char *name = start + 1;
	while (isspace((unsigned char)*name))
		name++;
	for (char *e = end; e > name && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	if (strcasecmp(name, "pgsluice") == 0)
		return SECTION_PGSLUICE;
	if (strcasecmp(name, "databases") == 0)
		return SECTION_DATABASES;
	if (strcasecmp(name, "users") == 0)
		return SECTION_USERS;
	load_error(ctx, ctx->lineno,
		   "[%s]: unknown section (expected [pgsluice], [databases] or [users])", name);
	return SECTION_UNKNOWN;
}

/*
 * inih's line source. It numbers the lines, and hands inih only lines it can
 * take as meant: leading blanks are removed (inih would read an indented
 * line as the continuation of the previous value), while section headers,
 * overlong lines and lines without '=' are checked and reported here and
 * given to inih as blank lines.
 */
static char *config_read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char line[READ_LINE_MAX];
	size_t len = 0;
	bool too_long = false;
	int c;

	while ((c = getc(ctx->file)) != EOF && c != '\n') {
		if (len + 1 < sizeof(line))
			line[len++] = (char)c;
		else
			too_long = true;
	}
	if (c == EOF && len == 0)
		return NULL;
	ctx->lineno++;
	line[len] = '\0';

	char *start = line;
	if (ctx->lineno == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
		start += 3;
	while (isspace((unsigned char)*start))
		start++;
	size_t n = strlen(start);
	while (n > 0 && isspace((unsigned char)start[n - 1]))
		start[--n] = '\0';

	snprintf(str, (size_t)num, "\n");
	if (too_long || n + 2 > (size_t)num) {
		load_error(ctx, ctx->lineno, "line is longer than %d characters", num - 2);
		return str;
	}
	if (n == 0 || *start == ';' || *start == '#')
		return str;
	if (*start == '[') {
		ctx->section = section_parse(ctx, start);
		/* inih needs no section: the reader's ctx->section is the one used. */
		return str;
	}
	size_t sep = strcspn(start, "=:");
	if (start[sep] == '\0') {
		load_error(ctx, ctx->lineno, "expected key = value");
		return str;
	}
	if (sep == 0) {
		load_error(ctx, ctx->lineno, "missing key name before '%c'", start[0]);
		return str;
	}
	snprintf(str, (size_t)num, "%s\n", start);
	return str;
}

static const struct cfg_key *key_find(const char *name)
{
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		if (strcasecmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

static void global_set(struct load_ctx *ctx, const char *name, const char *value)
{
	const struct cfg_key *k = key_find(name);
	char why[WHY_MAX];

	if (k == NULL) {
		load_error(ctx, ctx->lineno, "%s: unknown key", name);
		return;
	}
	int *seen = &ctx->key_line[k - config_keys];
	if (*seen != 0) {
		load_error(ctx, ctx->lineno, "%s: duplicate key (first set on line %d)", k->name,
			   *seen);
		return;
	}
	*seen = ctx->lineno;
	if (!field_store((char *)ctx->cfg + k->offset, k->type, k->enum_names, k->min, k->max,
			 false, value, why, sizeof(why))) {
		load_error(ctx, ctx->lineno, "%s: %s", k->name, why);
		ctx->key_bad[k - config_keys] = true;
	}
}

/* One key of a [databases] or [users] entry. */
struct entry_key {
	const char *name;
	enum cfg_type type;
	size_t offset;
	size_t set_flag; /* offset of the bool that records "given", or NO_SET_FLAG */
	const char *const *enum_names;
	int64_t min, max;
	bool required; /* strings: empty is refused */
};

#define NO_SET_FLAG SIZE_MAX

static const struct entry_key db_keys[] = {
	{"host", CFG_STRING, offsetof(struct db_conf, host), NO_SET_FLAG, NULL, 0, 0, true},
	{"port", CFG_INT, offsetof(struct db_conf, port), NO_SET_FLAG, NULL, 1, 65535, true},
	{"dbname", CFG_STRING, offsetof(struct db_conf, dbname), NO_SET_FLAG, NULL, 0, 0, true},
	{"user", CFG_STRING, offsetof(struct db_conf, user), NO_SET_FLAG, NULL, 0, 0, false},
	{"password", CFG_STRING, offsetof(struct db_conf, password), NO_SET_FLAG, NULL, 0, 0,
	 false},
	{"pool_size", CFG_INT, offsetof(struct db_conf, pool_size), NO_SET_FLAG, NULL, 1, 10000,
	 true},
	{"min_pool_size", CFG_INT, offsetof(struct db_conf, min_pool_size), NO_SET_FLAG, NULL, 0,
	 10000, true},
	{"reserve_pool_size", CFG_INT, offsetof(struct db_conf, reserve_pool_size), NO_SET_FLAG,
	 NULL, 0, 10000, true},
	{"max_db_connections", CFG_INT, offsetof(struct db_conf, max_db_connections), NO_SET_FLAG,
	 NULL, 0, 1000000, true},
	{"pool_mode", CFG_ENUM, offsetof(struct db_conf, pool_mode),
	 offsetof(struct db_conf, pool_mode_set), pool_mode_names, 0, 2, true},
	{"replica_pool_size", CFG_INT, offsetof(struct db_conf, replica_pool_size), NO_SET_FLAG,
	 NULL, 1, 10000, true},
	{"read_routing", CFG_BOOL, offsetof(struct db_conf, read_routing),
	 offsetof(struct db_conf, read_routing_set), NULL, 0, 1, true},
	{"batch_inserts", CFG_BOOL, offsetof(struct db_conf, batch_inserts),
	 offsetof(struct db_conf, batch_inserts_set), NULL, 0, 1, true},
	{"read_your_writes", CFG_ENUM, offsetof(struct db_conf, read_your_writes),
	 offsetof(struct db_conf, read_your_writes_set), read_your_writes_names, 0, 2, true},
	{"replica_only", CFG_BOOL, offsetof(struct db_conf, replica_only), NO_SET_FLAG, NULL, 0, 1,
	 true},
	{"slow_query_threshold", CFG_DURATION, offsetof(struct db_conf, slow_query_threshold),
	 offsetof(struct db_conf, slow_query_threshold_set), NULL, 0, DURATION_MAX, true},
	/* Parsed by replicas_parse; listed so that the key is known and not given twice. */
	{"replicas", CFG_STRING, 0, NO_SET_FLAG, NULL, 0, 0, true},
	{NULL, CFG_STRING, 0, NO_SET_FLAG, NULL, 0, 0, false},
};

static const struct entry_key user_keys[] = {
	{"pool_mode", CFG_ENUM, offsetof(struct user_conf, pool_mode),
	 offsetof(struct user_conf, pool_mode_set), pool_mode_names, 0, 2, true},
	{"max_user_connections", CFG_INT, offsetof(struct user_conf, max_user_connections),
	 NO_SET_FLAG, NULL, 0, 1000000, true},
	{"read_routing", CFG_BOOL, offsetof(struct user_conf, read_routing),
	 offsetof(struct user_conf, read_routing_set), NULL, 0, 1, true},
	{"batch_inserts", CFG_BOOL, offsetof(struct user_conf, batch_inserts),
	 offsetof(struct user_conf, batch_inserts_set), NULL, 0, 1, true},
	{NULL, CFG_STRING, 0, NO_SET_FLAG, NULL, 0, 0, false},
};

/* Bit per entry_key row that records which keys an entry gave. */
_Static_assert(sizeof(db_keys) / sizeof(db_keys[0]) <= 32, "entry keys must fit a uint32_t mask");

/*
 * Reads the next key=value pair of a connection string at *pos: returns 1
 * with key and value filled, 0 at the end, -1 with why filled. Values may be
 * single-quoted, with \' and \\ inside. Reasons never quote a value: it may
 * be a password.
 */
static int conn_next(const char **pos, const char *prev_key, char *key, size_t key_cap, char *val,
		     size_t val_cap, char *why, size_t why_cap)
{
	const char *p = *pos;
	size_t n = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	while (isalnum((unsigned char)*p) || *p == '_') {
		if (n + 1 >= key_cap)
			break;
		key[n++] = *p++;
	}
	key[n] = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (n == 0 || *p != '=') {
		if (prev_key[0] == '\0')
			snprintf(why, why_cap, "expected key=value at the start");
		else
			snprintf(why, why_cap, "expected key=value after the value of %s",
				 prev_key);
		return -1;
	}
	p++;
	while (isspace((unsigned char)*p))
		p++;

	n = 0;
	if (*p == '\'') {
		for (p++; *p != '\'' && *p != '\0'; p++) {
			if (*p == '\\' && (p[1] == '\'' || p[1] == '\\'))
				p++;
			if (n + 1 < val_cap)
				val[n++] = *p;
		}
		if (*p == '\0') {
			snprintf(why, why_cap, "%s: unterminated quoted value", key);
			return -1;
		}
		p++;
		if (*p != '\0' && !isspace((unsigned char)*p)) {
			snprintf(why, why_cap, "%s: unexpected text after the closing quote", key);
			return -1;
		}
	} else {
		while (*p != '\0' && !isspace((unsigned char)*p)) {
			if (n + 1 < val_cap)
				val[n++] = *p;
			p++;
		}
	}
	val[n] = '\0';
	*pos = p;
	return 1;
}

/* Parses one "host[:port][@weight]" item; IPv6 hosts go in brackets. */
static bool replica_parse(char *item, struct replica_conf *r, char *why, size_t cap)
{
	char shown[80], *host = item, *port = NULL, *weight;
	int64_t v;

	value_quote(item, shown, sizeof(shown));
	weight = strrchr(item, '@');
	if (weight != NULL)
		*weight++ = '\0';
	if (*host == '[') {
		char *close = strchr(host, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto syntax;
		*close = '\0';
		host++;
		port = close[1] == ':' ? close + 2 : NULL;
	} else if ((port = strrchr(host, ':')) != NULL) {
		*port++ = '\0';
	}
	if (*host == '\0' || (port != NULL && *port == '\0') || (weight != NULL && *weight == '\0'))
		goto syntax;
	r->port = 0;
	if (port != NULL) {
		if (!integer_parse(port, &v) || v < 1 || v > 65535) {
			snprintf(why, cap, "%s: port must be 1..65535", shown);
			return false;
		}
		r->port = (int)v;
	}
	r->weight = 1;
	if (weight != NULL) {
		if (!integer_parse(weight, &v) || v < 1 || v > 100) {
			snprintf(why, cap, "%s: weight must be 1..100", shown);
			return false;
		}
		r->weight = (int)v;
	}
	r->pool_size = -1;
	if ((r->host = strdup(host)) == NULL) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	return true;
syntax:
	snprintf(why, cap, "%s is not host[:port][@weight]", shown);
	return false;
}

/* Parses the comma separated replicas of db; ports left 0 get the primary's later. */
static bool replicas_parse(struct db_conf *db, char *list, char *why, size_t cap)
{
	char *save = NULL;
	size_t n = 1;

	if (*list == '\0') {
		snprintf(why, cap, "value is empty");
		return false;
	}
	for (const char *c = list; *c != '\0'; c++)
		n += *c == ',';
	if (n > MAX_REPLICAS) {
		snprintf(why, cap, "more than %d replicas", MAX_REPLICAS);
		return false;
	}
	db->replicas = calloc(n, sizeof(*db->replicas));
	if (db->replicas == NULL) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	/* strtok_r would merge empty items silently; split by hand to refuse them. */
	for (char *item = list; item != NULL; item = save) {
		save = strchr(item, ',');
		if (save != NULL)
			*save++ = '\0';
		while (isspace((unsigned char)*item))
			item++;
		for (size_t len = strlen(item); len > 0 && isspace((unsigned char)item[len - 1]);)
			item[--len] = '\0';
		if (*item == '\0') {
			snprintf(why, cap, "empty item in the list");
			return false;
		}
		if (!replica_parse(item, &db->replicas[db->n_replicas], why, cap))
			return false;
		db->n_replicas++;
	}
	return true;
}

/*
 * Parses the key=value pairs of text into the entry at base; keys is the
 * table of the section. Every problem is reported with label ("[databases]
 * app") in front.
 */
static void entry_parse(struct load_ctx *ctx, const char *label, const struct entry_key *keys,
			void *base, struct db_conf *db, const char *text)
{
	size_t val_cap = strlen(text) + 1;
	char *val = malloc(val_cap);
	char key[32], prev_key[32] = "", why[WHY_MAX];
	uint32_t given = 0;
	const char *pos = text;
	int r;

	if (val == NULL) {
		load_error(ctx, ctx->lineno, "%s: out of memory", label);
		return;
	}
	while ((r = conn_next(&pos, prev_key, key, sizeof(key), val, val_cap, why, sizeof(why))) >
	       0) {
		const struct entry_key *k = keys;
		while (k->name != NULL && strcmp(k->name, key) != 0)
			k++;
		snprintf(prev_key, sizeof(prev_key), "%s", key);
		if (k->name == NULL) {
			load_error(ctx, ctx->lineno, "%s: %s: unknown key", label, key);
			continue;
		}
		uint32_t bit = UINT32_C(1) << (k - keys);
		if (given & bit) {
			load_error(ctx, ctx->lineno, "%s: %s: given twice", label, key);
			continue;
		}
		given |= bit;
		bool ok;
		if (db != NULL && strcmp(k->name, "replicas") == 0) {
			ok = replicas_parse(db, val, why, sizeof(why));
		} else {
			ok = field_store((char *)base + k->offset, k->type, k->enum_names, k->min,
					 k->max, k->required, val, why, sizeof(why));
			if (ok && k->set_flag != NO_SET_FLAG)
				*(bool *)((char *)base + k->set_flag) = true;
		}
		if (!ok)
			load_error(ctx, ctx->lineno, "%s: %s: %s", label, k->name, why);
	}
	if (r < 0)
		load_error(ctx, ctx->lineno, "%s: %s", label, why);
	free(val);
}

/* Grows *array (of *count elements of size) by one zeroed element; NULL when full. */
static void *array_push(void **array, size_t *count, size_t *cap, size_t size)
{
	if (*count == MAX_ENTRIES)
		return NULL;
	if (*count == *cap) {
		size_t new_cap = *cap == 0 ? 16 : *cap * 2;
		void *grown = realloc(*array, new_cap * size);
		if (grown == NULL)
			return NULL;
		*array = grown;
		*cap = new_cap;
	}
	void *slot = (char *)*array + *count * size;
	memset(slot, 0, size);
	(*count)++;
	return slot;
}

/* Checks an entry name; returns false (reported) when it cannot be used. */
static bool entry_name_ok(struct load_ctx *ctx, const char *section, const char *name)
{
	if (strlen(name) > NAME_MAX_LEN) {
		load_error(ctx, ctx->lineno, "[%s] %.20s...: name is longer than %d bytes", section,
			   name, NAME_MAX_LEN);
		return false;
	}
	return true;
}

static void database_add(struct load_ctx *ctx, const char *name, const char *value)
{
	struct config *cfg = ctx->cfg;
	char label[NAME_MAX_LEN + 16];

	if (!entry_name_ok(ctx, "databases", name))
		return;
	snprintf(label, sizeof(label), "[databases] %s", name);
	const struct db_conf *prev = config_find_db(cfg, name);
	if (prev != NULL && strcmp(prev->name, name) == 0) {
		load_error(ctx, ctx->lineno, "%s: duplicate database (first declared on line %d)",
			   label, prev->line);
		return;
	}
	struct db_conf *db =
		array_push((void **)&cfg->dbs, &cfg->n_dbs, &ctx->dbs_cap, sizeof(*db));
	if (db == NULL || (db->name = strdup(name)) == NULL) {
		if (db != NULL)
			cfg->n_dbs--;
		load_error(ctx, ctx->lineno, "%s: out of memory or more than %d databases", label,
			   MAX_ENTRIES);
		return;
	}
	db->port = 5432;
	db->pool_size = db->min_pool_size = db->reserve_pool_size = db->max_db_connections = -1;
	db->replica_pool_size = -1;
	db->line = ctx->lineno;
	entry_parse(ctx, label, db_keys, db, db, value);

	if (db->host == NULL && (db->host = strdup("127.0.0.1")) == NULL)
		load_error(ctx, ctx->lineno, "%s: out of memory", label);
	/* The wildcard serves whatever database the client asks for. */
	if (db->dbname == NULL && strcmp(name, "*") != 0 && (db->dbname = strdup(name)) == NULL)
		load_error(ctx, ctx->lineno, "%s: out of memory", label);
	for (size_t i = 0; i < db->n_replicas; i++) {
		if (db->replicas[i].port == 0)
			db->replicas[i].port = db->port;
	}
}

static void user_add(struct load_ctx *ctx, const char *name, const char *value)
{
	struct config *cfg = ctx->cfg;
	char label[NAME_MAX_LEN + 16];

	if (!entry_name_ok(ctx, "users", name))
		return;
	snprintf(label, sizeof(label), "[users] %s", name);
	const struct user_conf *prev = config_find_user(cfg, name);
	if (prev != NULL) {
		load_error(ctx, ctx->lineno, "%s: duplicate user (first declared on line %d)",
			   label, prev->line);
		return;
	}
	struct user_conf *u =
		array_push((void **)&cfg->users, &cfg->n_users, &ctx->users_cap, sizeof(*u));
	if (u == NULL || (u->name = strdup(name)) == NULL) {
		if (u != NULL)
			cfg->n_users--;
		load_error(ctx, ctx->lineno, "%s: out of memory or more than %d users", label,
			   MAX_ENTRIES);
		return;
	}
	u->max_user_connections = -1;
	u->line = ctx->lineno;
	entry_parse(ctx, label, user_keys, u, NULL, value);
}

static int config_handle_line(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;

	(void)section; /* the reader's ctx->section also knows about refused headers */
	switch (ctx->section) {
	case SECTION_NONE:
		load_error(ctx, ctx->lineno, "%s: key outside of any section", name);
		break;
	case SECTION_PGSLUICE:
		global_set(ctx, name, value);
		break;
	case SECTION_DATABASES:
		database_add(ctx, name, value);
		break;
	case SECTION_USERS:
		user_add(ctx, name, value);
		break;
	case SECTION_UNKNOWN:
		break; /* reported once, at the header */
	}
	return 1;
}

static int key_index(const char *name)
{
	return (int)(key_find(name) - config_keys);
}

/* A fact about a and b is worth checking only when both values were accepted. */
static bool check_wanted(const struct load_ctx *ctx, const char *a, const char *b)
{
	return !ctx->key_bad[key_index(a)] && !ctx->key_bad[key_index(b)];
}

/* The line where a fact that spans keys is reported: the latest that set one, else the end. */
static int check_line(const struct load_ctx *ctx, const char *a, const char *b)
{
	int la = ctx->key_line[key_index(a)], lb = ctx->key_line[key_index(b)];
	int line = la > lb ? la : lb;
	if (line == 0)
		line = ctx->lineno > 0 ? ctx->lineno : 1;
	return line;
}

/* Facts that no single line decides. */
static void config_check(struct load_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;

	if (check_wanted(ctx, "min_pool_size", "default_pool_size") &&
	    cfg->min_pool_size > cfg->default_pool_size)
		load_error(ctx, check_line(ctx, "min_pool_size", "default_pool_size"),
			   "min_pool_size: %d is larger than default_pool_size (%d)",
			   cfg->min_pool_size, cfg->default_pool_size);
	if (check_wanted(ctx, "auth_type", "auth_file") && cfg->auth_type != AUTH_TRUST &&
	    cfg->auth_file == NULL)
		load_error(ctx, check_line(ctx, "auth_type", "auth_file"),
			   "auth_file: required when auth_type is %s (or set auth_type = trust)",
			   auth_type_names[cfg->auth_type]);
	if (cfg->listen_addr == NULL && cfg->unix_socket_dir == NULL)
		load_error(ctx, check_line(ctx, "listen_addr", "unix_socket_dir"),
			   "listen_addr: nothing to listen on: listen_addr and unix_socket_dir are "
			   "both empty");
	for (size_t i = 0;
	     i < cfg->n_dbs && check_wanted(ctx, "min_pool_size", "default_pool_size"); i++) {
		const struct db_conf *db = &cfg->dbs[i];
		int size = config_db_pool_size(cfg, db);
		int min = db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size;
		if (min > size)
			load_error(ctx, db->line,
				   "[databases] %s: min_pool_size: %d is larger than the pool size "
				   "(%d)",
				   db->name, min, size);
	}
}

/* Applies every default through the same parser as file values. */
static void config_apply_defaults(struct load_ctx *ctx)
{
	char why[WHY_MAX];

	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		if (!field_store((char *)ctx->cfg + k->offset, k->type, k->enum_names, k->min,
				 k->max, false, k->default_value, why, sizeof(why)))
			errors_add(&ctx->err, "built-in default: %s: %s", k->name, why);
	}
}

struct config *config_load(const char *path, char **errors)
{
	struct load_ctx ctx = {.path = path, .section = SECTION_NONE};
	size_t n_keys = 0;

	if (errors != NULL)
		*errors = NULL;
	while (config_keys[n_keys].name != NULL)
		n_keys++;
	ctx.cfg = calloc(1, sizeof(*ctx.cfg));
	ctx.key_line = calloc(n_keys, sizeof(*ctx.key_line));
	ctx.key_bad = calloc(n_keys, sizeof(*ctx.key_bad));
	if (ctx.cfg == NULL || ctx.key_line == NULL || ctx.key_bad == NULL ||
	    (ctx.cfg->path = strdup(path)) == NULL) {
		errors_add(&ctx.err, "%s: out of memory", path);
	} else if ((ctx.file = fopen(path, "r")) == NULL) {
		errors_add(&ctx.err, "%s: cannot open: %s", path, strerror(errno));
	} else {
		config_apply_defaults(&ctx);
		int r = ini_parse_stream(config_read_line, &ctx, config_handle_line, &ctx);
		if (ferror(ctx.file))
			errors_add(&ctx.err, "%s: read error", path);
		fclose(ctx.file);
		/* The reader passes inih only well-formed lines, but inih has the last word. */
		if (r > 0)
			load_error(&ctx, r, "syntax error");
		else if (r == -2)
			errors_add(&ctx.err, "%s: out of memory", path);
		config_check(&ctx);
	}
	free(ctx.key_line);
	free(ctx.key_bad);

	if (ctx.err.count == 0)
		return ctx.cfg;
	config_free(ctx.cfg);
	if (ctx.err.count > MAX_ERRORS) {
		char line[PATH_MAX_SHOWN + 64];
		snprintf(line, sizeof(line), "%s: %d more problems not shown", path,
			 ctx.err.count - MAX_ERRORS);
		errors_append(&ctx.err, line);
	}
	if (errors != NULL)
		*errors = ctx.err.out_of_memory ? NULL : ctx.err.text;
	if (errors == NULL || ctx.err.out_of_memory)
		free(ctx.err.text);
	return NULL;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		if (k->type == CFG_STRING)
			free(*(char **)((char *)cfg + k->offset));
	}
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		struct db_conf *db = &cfg->dbs[i];
		for (size_t j = 0; j < db->n_replicas; j++)
			free(db->replicas[j].host);
		free(db->replicas);
		free(db->name);
		free(db->host);
		free(db->dbname);
		free(db->user);
		free(db->password);
	}
	free(cfg->dbs);
	for (size_t i = 0; i < cfg->n_users; i++)
		free(cfg->users[i].name);
	free(cfg->users);
	free(cfg->path);
	free(cfg);
}

const struct db_conf *config_find_db(const struct config *cfg, const char *name)
{
	const struct db_conf *wildcard = NULL;

	for (size_t i = 0; i < cfg->n_dbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			wildcard = &cfg->dbs[i];
	}
	return wildcard;
}

const struct user_conf *config_find_user(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	}
	return NULL;
}

const char *config_format_value(const struct config *cfg, const struct cfg_key *key, char *buf,
				size_t cap)
{
	const void *field = (const char *)cfg + key->offset;

	if (key->type == CFG_STRING) {
		const char *s = *(char *const *)field;
		snprintf(buf, cap, "%s", s != NULL ? s : "");
	} else {
		value_format(key->type, key->enum_names, field_get(field, key->type), buf, cap);
	}
	return buf;
}

int config_db_pool_size(const struct config *cfg, const struct db_conf *db)
{
	return db != NULL && db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size;
}

enum pool_mode config_db_pool_mode(const struct config *cfg, const struct db_conf *db,
				   const char *user)
{
	const struct user_conf *u = user != NULL ? config_find_user(cfg, user) : NULL;

	if (u != NULL && u->pool_mode_set)
		return u->pool_mode;
	if (db != NULL && db->pool_mode_set)
		return db->pool_mode;
	return (enum pool_mode)cfg->pool_mode;
}

bool config_list_contains(const char *list, const char *user)
{
	if (list == NULL || user == NULL || *user == '\0')
		return false;
	size_t user_len = strlen(user);
	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ",");
		const char *item = p, *end = p + len;
		while (item < end && isspace((unsigned char)*item))
			item++;
		while (end > item && isspace((unsigned char)end[-1]))
			end--;
		if ((size_t)(end - item) == user_len && memcmp(item, user, user_len) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

/* The facts spanning keys that a single SET could break; false with why when one does. */
static bool config_still_consistent(const struct config *cfg, char *why, size_t cap)
{
	if (cfg->min_pool_size > cfg->default_pool_size) {
		snprintf(why, cap, "min_pool_size (%d) would be larger than default_pool_size (%d)",
			 cfg->min_pool_size, cfg->default_pool_size);
		return false;
	}
	if (cfg->auth_type != AUTH_TRUST && cfg->auth_file == NULL) {
		snprintf(why, cap, "auth_file is required when auth_type is %s",
			 auth_type_names[cfg->auth_type]);
		return false;
	}
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_conf *db = &cfg->dbs[i];
		int min = db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size;
		int size = config_db_pool_size(cfg, db);
		if (min > size) {
			snprintf(why, cap,
				 "[databases] %s: min_pool_size (%d) would be larger than its pool "
				 "size (%d)",
				 db->name, min, size);
			return false;
		}
	}
	return true;
}

bool config_set_value(struct config *cfg, const struct cfg_key *key, const char *text, char *why,
		      size_t cap)
{
	void *field = (char *)cfg + key->offset;

	if (!key->reloadable) {
		snprintf(why, cap, "%s cannot be changed while pgsluice runs", key->name);
		return false;
	}
	if (key->type == CFG_STRING) {
		char *copy = NULL, *old = *(char **)field;
		if (*text != '\0' && (copy = strdup(text)) == NULL) {
			snprintf(why, cap, "out of memory");
			return false;
		}
		*(char **)field = copy;
		if (!config_still_consistent(cfg, why, cap)) {
			*(char **)field = old;
			free(copy);
			return false;
		}
		free(old);
		return true;
	}
	int64_t v, old = field_get(field, key->type);
	if (!value_parse(key->type, key->enum_names, key->min, key->max, text, &v, why, cap))
		return false;
	field_put(field, key->type, v);
	if (!config_still_consistent(cfg, why, cap)) {
		field_put(field, key->type, old);
		return false;
	}
	return true;
}
