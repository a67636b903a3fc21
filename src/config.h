/*
 * config.h - the configuration snapshot.
 *
 * An INI file (parsed with inih) becomes an immutable struct config. Every
 * global key is declared once in config_keys[] (name, type, default,
 * reloadable, one-line doc); parsing, SHOW CONFIG, etc/pgsluice.ini and the
 * man page all read that table. A reload builds a new snapshot and the
 * daemon swaps it in; nothing mutates a snapshot after config_load().
 */
#ifndef PGSLUICE_CONFIG_H
#define PGSLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pool_mode { POOL_SESSION, POOL_TRANSACTION, POOL_STATEMENT };

enum auth_type { AUTH_TRUST, AUTH_MD5, AUTH_SCRAM };

enum primary_reads { PRIMARY_READS_OFF, PRIMARY_READS_ON, PRIMARY_READS_FALLBACK_ONLY };
enum replica_fallback { REPLICA_FALLBACK_PRIMARY, REPLICA_FALLBACK_ERROR };
enum route_unknown { ROUTE_UNKNOWN_PRIMARY, ROUTE_UNKNOWN_REPLICA };
enum read_your_writes { RYW_OFF, RYW_CLIENT, RYW_GLOBAL };
/* SIGTERM: close clients as their transactions end, or serve them until they leave. */
enum shutdown_drain { DRAIN_TRANSACTIONS, DRAIN_CLIENTS };

enum slow_query_explain { EXPLAIN_OFF, EXPLAIN_PLAN, EXPLAIN_ANALYZE };

enum cfg_type {
	CFG_STRING,   /* char * (NULL when empty) */
	CFG_INT,      /* int, bounded by min/max */
	CFG_BOOL,     /* bool: on/off, true/false, yes/no, 1/0 */
	CFG_DURATION, /* int64_t microseconds; "250ms", "5s", "10min"; bare = seconds */
	CFG_SIZE,     /* int64_t bytes; "16kB", "1MB"; bare = bytes */
	CFG_SIZE_INT, /* int bytes, CFG_SIZE syntax: buffer sizes that must fit an int */
	CFG_ENUM,     /* int, index into enum_names */
};

/* One global key of the [pgsluice] section. */
struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;                 /* offsetof(struct config, field) */
	const char *default_value;     /* as written in the INI file */
	bool reloadable;               /* may change on SIGHUP / RELOAD */
	const char *const *enum_names; /* CFG_ENUM only, NULL-terminated */
	int64_t min, max;              /* CFG_INT/SIZE/SIZE_INT/DURATION bounds */
	const char *doc;               /* one line */
};

/* The table of every [pgsluice] key; ends with a {NULL} entry. */
extern const struct cfg_key config_keys[];

struct replica_conf {
	char *host;
	int port;
	int weight;    /* round-robin weight, default 1 */
	int pool_size; /* -1: database's replica pool size */
};

/* One [databases] entry. Numeric -1 / unset flags mean "use the global". */
struct db_conf {
	char *name;   /* name clients connect to */
	char *host;   /* primary host (name, address or unix socket dir) */
	int port;
	char *dbname; /* database on the server; defaults to name */
	char *user;   /* server login user override, or NULL */
	char *password;
	int pool_size;
	int min_pool_size;
	int reserve_pool_size;
	int max_db_connections; /* 0 = unlimited */
	bool pool_mode_set;
	enum pool_mode pool_mode;
	int replica_pool_size; /* -1: the global replica_pool_size */
	bool read_routing_set;
	bool read_routing;
	bool read_your_writes_set;
	int read_your_writes; /* enum read_your_writes */
	bool batch_inserts_set;
	bool batch_inserts;
	bool replica_only;    /* every session of this alias goes to the replicas */
	bool slow_query_threshold_set;
	int64_t slow_query_threshold;
	struct replica_conf *replicas;
	size_t n_replicas;
	int line; /* where it was declared, for messages */
};

/* One [users] entry. */
struct user_conf {
	char *name;
	bool pool_mode_set;
	enum pool_mode pool_mode;
	int max_user_connections; /* -1: the global max_user_connections; 0 = unlimited */
	bool read_routing_set;
	bool read_routing;
	bool batch_inserts_set;
	bool batch_inserts;
	int line;
};

struct config {
	char *path;

	/* [pgsluice] - every field here has a row in config_keys[] */
	char *listen_addr;
	int listen_port;
	char *unix_socket_dir;
	int listen_backlog;
	bool so_reuseport;
	int client_tls_mode; /* enum tls_mode */
	char *client_tls_cert_file;
	char *client_tls_key_file;
	char *client_tls_ca_file;
	char *client_tls_protocols;
	char *client_tls_ciphers;
	int server_tls_mode; /* enum tls_mode */
	char *server_tls_ca_file;
	char *server_tls_cert_file;
	char *server_tls_key_file;
	char *server_tls_protocols;
	char *server_tls_ciphers;
	char *logfile;
	char *pidfile;
	bool syslog;
	int verbose;
	bool log_connections;
	bool log_disconnections;

	int pool_mode; /* enum pool_mode */
	int auth_type; /* enum auth_type */
	char *auth_file;
	char *hba_file;
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	int64_t auth_query_timeout; /* µs */
	int64_t auth_query_cache_ttl;
	int64_t auth_query_negative_ttl;
	int auth_query_cache_size;
	int auth_query_max_waiting;
	char *admin_users; /* comma separated */
	char *stats_users;

	int max_client_conn;
	int default_pool_size;
	int min_pool_size;
	int reserve_pool_size;
	int max_db_connections;
	int max_user_connections;

	int64_t reserve_pool_timeout;
	int64_t server_connect_timeout;
	int64_t server_login_retry;
	int64_t server_idle_timeout;
	int64_t server_lifetime;
	int64_t query_wait_timeout;
	int64_t query_timeout;
	int64_t client_login_timeout;
	int64_t client_idle_timeout;
	int64_t idle_transaction_timeout;
	int64_t client_stall_timeout;
	int64_t shutdown_timeout;
	int shutdown_drain; /* enum shutdown_drain */

	char *server_reset_query;
	bool server_reset_query_always;
	char *ignore_startup_parameters; /* comma separated */

	/* read routing */
	bool read_routing;
	int replica_pool_size;
	int primary_reads;           /* enum primary_reads */
	int replica_fallback;        /* enum replica_fallback */
	int route_unknown_functions; /* enum route_unknown */
	char *write_functions;       /* comma separated */
	char *read_only_functions;
	int64_t health_check_period;
	int64_t health_check_timeout;
	char *health_check_user;
	char *health_check_password;
	int64_t max_replica_lag;
	int64_t max_replica_lag_bytes;
	int64_t replica_ban_time;
	int read_your_writes;        /* enum read_your_writes */
	int64_t lsn_probe_period;

	int64_t stats_period;
	char *metrics_listen;

	int64_t slow_query_threshold;
	char *slow_query_log;
	bool slow_query_log_parameters;
	int slow_query_ring;
	int slow_query_explain;      /* enum slow_query_explain */
	int64_t slow_query_explain_interval;
	int64_t slow_query_explain_timeout;
	int slow_query_explain_queue;
	int slow_query_explain_connections;
	int query_stats_max;
	int query_stats_metrics_top;

	/* insert batching (batch.c) */
	bool batch_inserts;
	int batch_max_rows;
	int64_t batch_max_delay;

	int max_prepared_statements;
	int max_client_prepared_statements;
	bool pin_on_session_state;

	int64_t max_packet_size;
	int pkt_buf;
	int max_startup_packet;

	/* [databases] and [users] */
	struct db_conf *dbs;
	size_t n_dbs;
	struct user_conf *users;
	size_t n_users;
};

/*
 * Reads and validates path. Returns a new snapshot, or NULL when any line is
 * bad; then *errors (if errors != NULL) receives a malloc'd text with one
 * "FILE:LINE: key: why" line per problem (the caller frees it).
 */
struct config *config_load(const char *path, char **errors);

/* Frees a snapshot returned by config_load (NULL is fine). */
void config_free(struct config *cfg);

/* "250ms", "5s", "10min", "2h", "1d", "100us"; bare number = seconds. */
bool config_parse_duration(const char *text, int64_t *usec);

/* "8192", "16kB", "1MB", "1GB"; bare number = bytes. */
bool config_parse_size(const char *text, int64_t *bytes);

/* The [databases] entry named name, the "*" wildcard entry, or NULL. */
const struct db_conf *config_find_db(const struct config *cfg, const char *name);

/* The [users] entry named name, or NULL. */
const struct user_conf *config_find_user(const struct config *cfg, const char *name);

/* Writes key's current value as INI text into buf; returns buf. */
const char *config_format_value(const struct config *cfg, const struct cfg_key *key,
				char *buf, size_t cap);

/* Effective figures for a database (per-database override or global). */
int config_db_pool_size(const struct config *cfg, const struct db_conf *db);
enum pool_mode config_db_pool_mode(const struct config *cfg, const struct db_conf *db,
				   const char *user);

/* true when user appears in the comma separated list. */
bool config_list_contains(const char *list, const char *user);

/*
 * Changes one reloadable [pgsluice] key of a running snapshot in place (the
 * admin console's SET; the event loop is single-threaded, so no reader sees
 * half a change). text is parsed as a file value would be, then the facts
 * that span keys (min_pool_size <= pool sizes, auth_file with auth_type) are
 * checked again; on any failure the old value stays.
 * cfg: the running snapshot.
 * key: a row of config_keys[].
 * text: the new value as INI text ("" empties a string key).
 * why, cap: receive the reason on failure.
 * Returns true when the value was changed.
 */
bool config_set_value(struct config *cfg, const struct cfg_key *key, const char *text, char *why,
		      size_t cap);

#endif
