/*
 * worker.h - one event loop and everything that lives on it.
 *
 * All per-loop state (clients, servers, pools, databases, buffers, timers)
 * hangs off struct worker, never off globals, so that more event-loop
 * threads can come without a rewrite. The structs of the objects that move
 * between the modules (client, server, pool, database) are declared here
 * so that each module sees the others' fields it links through; the
 * behaviour of each lives in its own file.
 */
#ifndef PGSLUICE_WORKER_H
#define PGSLUICE_WORKER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "list.h"
#include "params.h"
#include "stats.h"
#include "stmtcache.h"
#include "stmtreg.h"
struct scram_client;
struct scram_server;

/* Bound of what pgsluice itself queues for one socket. */
#define OUTPUT_LIMIT (64u << 20)
/* Bytes of a replica read kept for a retry; a larger read is not retried. */
#define RETRY_LIMIT (64u << 10)
/* Output memory kept between messages; more goes back to malloc. */
#define OUTPUT_KEEP (64u << 10)

struct userlist;
struct listener;
struct metrics_listener;
struct admin_batch;
struct classify_options;
struct querylog;
struct inflight;
struct prepared_set;
struct session_pending;
struct hba_rules;
struct authquery;
struct authquery_wait;
struct batch;

enum target_role { TARGET_PRIMARY, TARGET_REPLICA };

struct health_probe;

/* One server a database can send work to: its primary or one of its replicas. */
struct target {
	struct list_head node;  /* database.targets; the primary is first */
	struct database *db;
	char *host;
	int port;
	enum target_role role;
	int weight;             /* share of the read rotation */
	int pool_size;          /* -1: the database's replica pool size */
	int n_pools;            /* pools that still use it (removed targets linger) */
	bool removed;           /* gone from the config */
	/* Health, kept by health.c. */
	bool banned;
	ev_tstamp banned_until;
	char ban_reason[128];
	bool in_recovery;
	bool probed;            /* at least one probe answered */
	uint64_t lsn;           /* primary: current WAL position; replica: replayed position */
	ev_tstamp lsn_at;       /* when lsn was read */
	int64_t lag_bytes;      /* replica: behind the primary's last known position */
	double lag_seconds;
	ev_tstamp behind_since; /* replica: first probe of the current spell behind, 0 none */
	struct health_probe *probe;
	/* Routing counters, shown by SHOW ROUTING. */
	uint64_t routed;        /* transactions sent here */
	uint64_t retries;       /* reads retried here after another target failed */
	uint64_t bans;
	int rr_credit;          /* weighted round-robin state */
};

/* The runtime side of a [databases] entry; survives reloads. */
struct database {
	struct list_head node; /* worker.databases */
	char *name;            /* what clients ask for */
	char *dbname;          /* the database on the server */
	char *host;
	int port;
	char *login_user;      /* override of the server login, or NULL */
	char *login_password;
	int pool_size;
	int min_pool_size;
	int reserve_pool_size;
	int max_db_connections;
	bool pool_mode_set;
	enum pool_mode pool_mode;
	bool removed;          /* gone from the config: no new clients */
	bool paused;           /* PAUSE: running transactions finish, new ones wait */
	bool disabled;         /* DISABLE: new clients are refused */
	bool from_wildcard;    /* made for a name the "*" entry matched */
	uint32_t generation;   /* bumped when the target changes: old servers retire */
	struct list_head pools;
	struct list_head targets;  /* struct target; the primary first */
	struct target *primary;
	bool read_routing;
	bool replica_only;
	int replica_pool_size;     /* -1: global replica_pool_size */
	int read_your_writes;      /* enum read_your_writes */
	uint64_t global_floor;     /* read_your_writes=global: LSN every read must see */
	uint64_t fallbacks;        /* reads sent to the primary for want of a replica */
	uint64_t reads_failed;     /* reads refused for want of a replica (replica_fallback=error) */
	ev_tstamp ryw_pending_since; /* read_your_writes=global: last commit not yet probed */
	int64_t slow_query_threshold; /* µs; -1: the global slow_query_threshold */
	struct authquery *authquery; /* auth.c: auth_query lookups on the primary, made on use */
	int batch_inserts;         /* 1 on, 0 off, -1: the global batch_inserts (a user overrides) */
	struct list_head batch_tallies; /* struct batch_tally, one per user with a pool */
	struct stats stats;
};

/* Insert batching figures of one pool (SHOW BATCHES, /metrics). */
enum batch_flush { BATCH_FLUSH_IDLE, BATCH_FLUSH_DELAY, BATCH_FLUSH_ROWS, BATCH_FLUSH_N };
struct batch_counts {
	uint64_t batches;         /* flushed: ran on a server, one row or more */
	uint64_t rows;            /* rows of the flushed batches */
	uint64_t fallbacks;       /* batches whose rows were re-run one by one */
	uint64_t unknown;         /* batches lost after COMMIT was sent */
	uint64_t flushes[BATCH_FLUSH_N];
	uint64_t rows_waiting;    /* rows in batches not running yet */
};

/* The batching figures of one user of a database: they outlive its pools. */
struct batch_tally {
	struct list_head node; /* database.batch_tallies */
	char *user;
	struct batch_counts counts;
};

/* Servers of one (database, user) pair and the clients waiting for them. */
struct pool {
	struct list_head node; /* database.pools */
	struct database *db;
	struct target *target; /* the server this pool connects to */
	char *user;
	char *auth_secret;           /* the user's secret auth_query found, for server logins */
	enum pool_mode mode;
	struct list_head idle;       /* SERVER_IDLE, most recently used first */
	struct list_head active;     /* SERVER_ACTIVE */
	struct list_head opening;    /* SERVER_CONNECTING and SERVER_LOGIN */
	struct list_head resetting;  /* SERVER_RESETTING */
	struct list_head waiting;    /* clients in CLIENT_WAITING, FIFO */
	int n_idle, n_active, n_opening, n_resetting, n_waiting;
	int n_clients;               /* logged-in clients using this pool */
	/* The normalized startup parameters a client with the same requested
	 * parameters (welcome_asked) gets, learned from a server: skips a round
	 * trip at login, and the clients share the one set. */
	struct params welcome_asked;
	struct params welcome;
	bool have_welcome;
	ev_tstamp last_failure;      /* of a connect or login, for server_login_retry */
	char failure_sqlstate[6];
	char failure_message[256];
	/* Insert batching (batch.c), primary pools only. */
	struct list_head batches_open;    /* struct batch collecting rows, oldest first */
	struct list_head batches_waiting; /* struct batch waiting for a server, FIFO */
	int n_batches_waiting;
	int n_batches_running; /* multi-row batches on a server now */
	struct batch_counts *batching; /* its database's tally for its user */
};

enum server_state {
	SERVER_CONNECTING, /* TCP connect in progress */
	SERVER_LOGIN,      /* startup and authentication */
	SERVER_IDLE,       /* in the pool, ready */
	SERVER_ACTIVE,     /* linked to a client */
	SERVER_RESETTING,  /* running server_reset_query, replies swallowed */
};

/* What a server's ReadyForQuery asks to be done once processing stops. */
enum server_event {
	SERVER_EVENT_NONE,
	SERVER_EVENT_LOGGED_IN,    /* login finished: ready for the pool */
	SERVER_EVENT_RESET_DONE,   /* server_reset_query finished */
	SERVER_EVENT_WELCOME_DONE, /* a new client's settings are applied */
	SERVER_EVENT_SYNC_FAILED,  /* a SET for the client's settings failed */
	SERVER_EVENT_STATEMENT_TX, /* a transaction began in statement mode */
	SERVER_EVENT_BATCH,        /* a batched INSERT's step finished (batch.c) */
};

/* Where a server connection is in asking for TLS (server_tls_mode). */
enum server_tls_setup {
	SERVER_TLS_NONE,      /* not asking: plaintext, or TLS is up */
	SERVER_TLS_ANSWER,    /* SSLRequest sent, its one-byte answer awaited */
	SERVER_TLS_HANDSHAKE, /* the server said 'S': handshake in progress */
};

struct server {
	struct conn conn;
	struct list_head node; /* the pool list its state names */
	struct pool *pool;
	enum server_state state;
	enum server_tls_setup tls_setup; /* before the startup packet (SERVER_LOGIN) */
	struct client *client; /* linked client (SERVER_ACTIVE) */
	struct batch *batch;   /* the batch it runs (SERVER_ACTIVE, no client linked) */
	struct params params;  /* settings it runs with now */
	struct params startup; /* what it logged in with: DISCARD ALL returns here */
	uint32_t backend_pid, backend_key;
	uint32_t expect_rfq;   /* ReadyForQuery messages owed to the client */
	uint32_t swallow_rfq;  /* ReadyForQuery messages of pgsluice's own queries */
	char tx_status;        /* of the last ReadyForQuery */
	bool close_on_release; /* stale: close instead of pooling */
	bool sync_failed;      /* an own query (sync/reset) got an error */
	bool release_pending;  /* release once the client has been sent everything */
	bool fatal_forwarded;  /* the client was sent the server's FATAL error */
	bool forwarded_to_client; /* something of this link reached the client */
	uint32_t generation;
	enum server_event event;
	struct scram_client *scram;
	ev_tstamp opened_at, last_used;
	ev_tstamp query_start;  /* first message of the current transaction */
	struct inflight *inflight; /* statements being timed, made on first use */
	struct stmtcache statements; /* named statements prepared on it (pstmt.c) */
	struct replyq *replies; /* what it owes, while statements are renamed (pstmt.c) */
	char addr[64];
};

enum client_state {
	CLIENT_STARTUP, /* waiting for the startup packet */
	CLIENT_TLS,     /* TLS handshake after an SSLRequest answered 'S' */
	CLIENT_AUTH,    /* authentication exchange */
	CLIENT_WELCOME, /* authenticated; learning its session parameters */
	CLIENT_IDLE,    /* logged in, no server linked */
	CLIENT_WAITING, /* has a request, waiting for a server */
	CLIENT_ACTIVE,  /* linked to a server */
	CLIENT_BATCHED, /* its INSERT waits in a batch (batch.c); its input waits */
};

/* SET pgsluice.route = ... of a session. */
enum route_pin { ROUTE_PIN_AUTO, ROUTE_PIN_PRIMARY, ROUTE_PIN_REPLICA };

enum client_auth_step {
	AUTH_STEP_NONE,
	AUTH_STEP_LOOKUP, /* waiting for auth_query's answer */
	AUTH_STEP_MD5,
	AUTH_STEP_PASSWORD, /* hba_file method password: the password in clear */
	AUTH_STEP_SCRAM_FIRST,
	AUTH_STEP_SCRAM_FINAL,
};

struct client {
	struct conn conn;
	struct list_head node;      /* worker.clients */
	struct list_head wait_node; /* pool.waiting while CLIENT_WAITING */
	struct list_head deferred_node; /* worker.deferred */
	struct pool *pool;          /* home pool: the primary's, for this user */
	struct pool *wait_pool;     /* the pool whose queue it is on */
	struct server *server;
	char *user;
	char *dbname;               /* in user's allocation */
	struct params params;       /* the session settings it wants */
	struct params asked;        /* what it asked for at startup, until it is welcomed */
	struct params *login_params; /* settings after login, for DISCARD ALL (not session mode) */
	struct client *cancel_next; /* worker's cancel table chain */
	struct authquery *aq;       /* the lookup object c waits on (AUTH_STEP_LOOKUP) */
	struct authquery_wait *aq_wait;
	char *auth_secret;          /* the secret auth_query found (malloc'd, wiped when freed) */
	struct scram_server *scram;
	struct admin_batch *admin_pending; /* statements admin_run_pending runs next */
	struct prepared_set *prepared; /* its Parse texts and last Bind, made on first use */
	struct session_pending *session_pending; /* SETs of the running request (session.c) */
	struct batch *batch;        /* CLIENT_BATCHED: the batch holding its row */
	struct obuf retry;          /* a replica read's messages, to resend elsewhere */
	ev_tstamp xact_start;
	uint64_t bytes_in_counted, bytes_out_counted; /* already added to the stats */
	ev_tstamp ryw_pending_since; /* a commit not yet covered by a probe */
	uint64_t ryw_floor;         /* WAL position its reads must see */
	ev_tstamp connected_at, wait_since, last_activity;
	ev_tstamp last_read;        /* when the client last sent bytes */
	/* Narrow fields together, so that padding does not grow every connection. */
	enum client_state state;
	enum pool_mode mode;
	uint32_t cancel_pid, cancel_key;
	enum client_auth_step auth_step;
	enum route_pin route_pin;
	uint32_t retry_rfq;         /* ReadyForQuery messages the bytes in retry ask for */
	uint8_t auth_outcome;       /* enum auth_result of the last message */
	uint8_t auth_method;        /* enum hba_method: hba_file's rule, else auth_type */
	uint8_t md5_salt[4];
	uint8_t batch_skip;         /* messages of its batched request still to drop */
	bool fail_pending;          /* drop the request's messages up to Sync */
	bool in_transaction;        /* last ReadyForQuery said T or E */
	bool xact_open;             /* a transaction is being timed */
	bool closing_after_flush;   /* a FATAL was queued; close once sent */
	bool read_routing;          /* the database's and user's read_routing */
	bool route_read;            /* the current transaction was routed as a read */
	bool retried;               /* the current read was already retried once */
	bool retry_ok;              /* retry holds every byte sent for the current read */
	bool refusing;              /* over max_client_conn: refused after startup */
	bool is_admin;              /* connected to the admin console */
	bool admin_may_change;      /* in admin_users (else stats_users: SHOW only) */
	bool rename_statements;     /* transaction/statement pooling: pstmt.c shares statements */
	bool skip_to_sync;          /* pstmt.c answered an error: drop messages up to Sync */
	bool sync_answered;         /* pstmt.c answered a Parse without a server: and its Sync */
	bool waits_for_replies;     /* pstmt.c's reply queue is full: resume as it drains */
	bool pinned;                /* session state keeps it on its server */
	bool awaits_quiet;          /* a Query pgsluice answers waits for the server's replies */
	bool batch_rerun;           /* its batched request waits to run alone (from retry) */
	char addr[64];
};

struct worker {
	struct ev_loop *loop;
	struct config *cfg;
	const char *config_path; /* what RELOAD and SIGHUP read */
	ev_tstamp started_at;
	ev_tstamp stats_period_start;
	struct userlist *users;
	struct scramkeys *scram_keys; /* ClientKeys for SCRAM pass-through */
	struct hba_rules *hba;       /* hba_file's rules; NULL: none, auth_type for all */
	bool authquery_restarting;   /* auth.c: lookups answered now are asked again */
	struct iobuf_pool iobufs;
	ev_tstamp iobufs_trimmed_at; /* when unneeded buffers were last freed */
	struct list_head databases;
	struct list_head clients;
	struct list_head cancels;
	struct list_head deferred;    /* clients with input to process before polling */
	ev_prepare deferred_watcher;
	int n_clients;
	int n_refusing; /* clients over max_client_conn, waiting to be told so */
	int n_servers;
	struct listener *listeners;
	struct metrics_listener *metrics; /* the Prometheus endpoint, or NULL */
	struct classify_options *classify_opts;
	struct querylog *querylog; /* statement statistics, slow log, plan capture */
	struct stmtreg statements; /* distinct named statements of all clients (pstmt.c) */
	SSL_CTX *client_tls;      /* accepts TLS from clients; NULL: SSLRequest answered 'N' */
	SSL_CTX *server_tls;      /* TLS toward servers; NULL: servers are not asked */
	ev_timer janitor;
	ev_timer health_timer;    /* health.c: the probe tick */
	struct listener *peer;    /* so_reuseport: where the group passes on cancels */
	uint32_t instance_slot;   /* this process's slot in its so_reuseport group */
	uint32_t next_cancel_pid;
	struct client **cancel_table; /* cancel.c: clients chained by cancel_pid */
	bool shutting_down;
	bool closing_clients; /* shutting down: clients go as their transactions end */
	ev_tstamp shutdown_deadline;
	bool stop_requested;
};

/* true when db lists replicas besides its primary (removed ones may linger). */
static inline bool database_has_replicas(const struct database *db)
{
	return db->targets.prev != &db->primary->node;
}

/* Sets up w around loop with cfg, users and hba (which w then owns); false on failure. */
bool worker_init(struct worker *w, struct ev_loop *loop, struct config *cfg,
		 struct userlist *users, struct hba_rules *hba);

/*
 * Builds the TLS contexts w->cfg asks for (client_tls_*, server_tls_*) and swaps
 * them in; connections keep the context they started with. A side whose
 * context cannot be built keeps its running one.
 * err, errlen: receive why, one side's problem ("client_tls: ...").
 * Returns false when a side failed.
 */
bool worker_tls_configure(struct worker *w, char *err, size_t errlen);

/* Applies a new configuration (w takes ownership of cfg, users and hba). */
void worker_reload(struct worker *w, struct config *cfg, struct userlist *users,
		   struct hba_rules *hba);

/*
 * Reads the hba_file cfg names into *hba (NULL when cfg names none).
 * Returns true on success; else false with *errors set to the problems
 * (malloc'd, one per line, or NULL when memory ran out).
 */
bool worker_load_hba(const struct config *cfg, struct hba_rules **hba, char **errors);

/*
 * Reads w->config_path, its auth file and its hba file again and applies
 * them. Returns NULL on success, else the problems (malloc'd; the running
 * config, users and rules stay).
 */
char *worker_reload_from_file(struct worker *w);

/*
 * Stops accepting. With shutdown_drain = transactions clients are closed as
 * their transactions end; with clients they are served until they leave. A
 * second call turns the latter into the former.
 */
void worker_begin_shutdown(struct worker *w);

/* Closes everything at once. */
void worker_close_all(struct worker *w);

/* Frees what worker_init made. */
void worker_destroy(struct worker *w);

/* The database clients call name, created from the "*" entry if needed. */
struct database *worker_find_database(struct worker *w, const char *name);

/* Frees t when it was removed from the config and no pool uses it any more. */
void worker_free_target_if_unused(struct worker *w, struct target *t);

#endif
