/*
 * admin.h - the admin console: the pseudo-database "pgsluice".
 *
 * A client that logs in to ADMIN_DATABASE never reaches a server: its
 * simple-protocol queries are SHOW and control commands answered here with
 * ordinary RowDescription/DataRow/CommandComplete messages.
 */
#ifndef PGSLUICE_ADMIN_H
#define PGSLUICE_ADMIN_H

#include "conn.h"
#include "worker.h"

#define ADMIN_DATABASE "pgsluice"

/* Most statements one admin query may hold (a longer script is refused). */
#define ADMIN_MAX_STATEMENTS 16
/* Room for a database name or a configuration key, with its NUL. */
#define ADMIN_NAME_MAX 64
/* Room for SET's value, with its NUL. */
#define ADMIN_VALUE_MAX 1024

/* Every command of the console; SHOW subjects are commands of their own. */
enum admin_command {
	ADMIN_SHOW_HELP,
	ADMIN_SHOW_VERSION,
	ADMIN_SHOW_CONFIG,
	ADMIN_SHOW_DATABASES,
	ADMIN_SHOW_POOLS,
	ADMIN_SHOW_CLIENTS,
	ADMIN_SHOW_SERVERS,
	ADMIN_SHOW_STATS,
	ADMIN_SHOW_STATS_TOTALS,
	ADMIN_SHOW_STATS_AVERAGES,
	ADMIN_SHOW_LATENCY,
	ADMIN_SHOW_ROUTING,
	ADMIN_SHOW_BATCHES,
	ADMIN_SHOW_LISTS,
	ADMIN_SHOW_MEM,
	ADMIN_SHOW_SLOW_QUERIES,
	ADMIN_SHOW_QUERIES,
	ADMIN_SHOW_ROUTE,
	ADMIN_RELOAD,
	ADMIN_PAUSE,
	ADMIN_RESUME,
	ADMIN_RECONNECT,
	ADMIN_DISABLE,
	ADMIN_ENABLE,
	ADMIN_KILL,
	ADMIN_SET,
	ADMIN_SHUTDOWN,
	ADMIN_SHUTDOWN_IMMEDIATE,
};

/* One parsed statement. */
struct admin_statement {
	enum admin_command command;
	char name[ADMIN_NAME_MAX];   /* the database ("" = all, where optional) or SET's key */
	char value[ADMIN_VALUE_MAX]; /* SET's value, SHOW ROUTE's statement */
};

/* Why a query was refused before anything ran. */
struct admin_error {
	char sqlstate[6];
	char message[256];
	const char *hint; /* static text, or NULL */
};

/*
 * Parses the text of a simple Query into statements separated by ';'.
 * Keywords are case-insensitive; names are bare words or "quoted"; SET's
 * value is a bare word or a 'quoted' string; -- and slash-star comments
 * are skipped. Nothing runs unless every statement parses.
 * sql: the query text, NUL-terminated.
 * out: receives up to max statements.
 * max: room in out.
 * err: receives the reason on failure.
 * Returns the number of statements (0 for an empty query), or -1.
 */
int admin_parse(const char *sql, struct admin_statement *out, size_t max, struct admin_error *err);

/*
 * cmd: a command.
 * Returns true for commands that change something (admin_users only).
 */
bool admin_command_changes(enum admin_command cmd);

/*
 * cmd: a command.
 * Returns the tag its CommandComplete carries ("SHOW", "PAUSE", ...).
 */
const char *admin_command_tag(enum admin_command cmd);

/*
 * Finishes the login of authenticated client c to the console: refuses
 * users in neither admin_users nor stats_users (42501), else sends the
 * startup ParameterStatus messages, BackendKeyData and ReadyForQuery.
 */
void admin_login(struct worker *w, struct client *c);

/*
 * Handles one whole message (msg points at its type byte, total bytes) from
 * an admin client: a Query is answered into c->conn.out; other messages
 * get an error. Returns CONN_CONSUMED, or CONN_YIELD when an action must
 * run after processing stops (admin_run_pending), or CONN_GONE when c was
 * closed.
 */
enum conn_action admin_on_message(struct worker *w, struct client *c, const uint8_t *msg,
				  uint32_t total);

/* Runs the action admin_on_message deferred (shutdown, kill, reload...). */
void admin_run_pending(struct worker *w, struct client *c);

#endif
