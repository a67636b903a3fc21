/*
 * admin.c - the admin console: the pseudo-database "pgsluice" (admin.h).
 *
 * A logged-in console client never reaches a server. Its simple Query is
 * parsed into statements (all of them before any runs), checked against
 * the user's rights, then answered into the client's output buffer: SHOW
 * commands as tables through resultset.c from figures metrics.c reads,
 * control commands by changing databases, pools and the configuration.
 * Commands that close other connections or swap the configuration run
 * from admin_run_pending, after the client's input processing has stopped.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "classify.h"
#include "auth.h"
#include "cancel.h"
#include "client.h"
#include "hba.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proto.h"
#include "querylog.h"
#include "resultset.h"
#include "router.h"
#include "server.h"
#include "userlist.h"

#define HINT_HELP "Use SHOW HELP for the list of commands."

/* What a command takes after its keywords. */
enum admin_arg {
	ARG_NONE,
	ARG_DB_OPTIONAL, /* a database, or none for all */
	ARG_DB,		 /* a database */
	ARG_SET,	 /* key = value */
};

struct command_info {
	const char *words; /* its keywords, space separated, upper case */
	enum admin_arg arg;
	const char *tag;
	bool changes;
	bool deferred; /* runs from admin_run_pending */
	const char *usage;
	const char *doc;
};

static const struct command_info commands[] = {
	[ADMIN_SHOW_HELP] = {"SHOW HELP", ARG_NONE, "SHOW", false, false, "SHOW HELP", "This list"},
	[ADMIN_SHOW_VERSION] = {"SHOW VERSION", ARG_NONE, "SHOW", false, false, "SHOW VERSION",
				"pgsluice's version"},
	[ADMIN_SHOW_CONFIG] = {"SHOW CONFIG", ARG_NONE, "SHOW", false, false, "SHOW CONFIG",
			       "Every [pgsluice] key: value, default, changeable by SET/RELOAD"},
	[ADMIN_SHOW_DATABASES] =
		{"SHOW DATABASES", ARG_NONE, "SHOW", false, false, "SHOW DATABASES",
		 "Databases: target, replicas, pool sizes, mode, paused, disabled"},
	[ADMIN_SHOW_POOLS] = {"SHOW POOLS", ARG_NONE, "SHOW", false, false, "SHOW POOLS",
			      "Pools: clients active and waiting, servers by state, max wait"},
	[ADMIN_SHOW_CLIENTS] = {"SHOW CLIENTS", ARG_NONE, "SHOW", false, false, "SHOW CLIENTS",
				"Every client connection"},
	[ADMIN_SHOW_SERVERS] = {"SHOW SERVERS", ARG_NONE, "SHOW", false, false, "SHOW SERVERS",
				"Every server connection with its role and health"},
	[ADMIN_SHOW_STATS] = {"SHOW STATS", ARG_NONE, "SHOW", false, false, "SHOW STATS",
			      "Traffic per database: totals, averages, latency percentiles"},
	[ADMIN_SHOW_STATS_TOTALS] = {"SHOW STATS_TOTALS", ARG_NONE, "SHOW", false, false,
				     "SHOW STATS_TOTALS", "Traffic totals per database"},
	[ADMIN_SHOW_STATS_AVERAGES] = {"SHOW STATS_AVERAGES", ARG_NONE, "SHOW", false, false,
				       "SHOW STATS_AVERAGES",
				       "Traffic averages of the last stats period per database"},
	[ADMIN_SHOW_LATENCY] = {"SHOW LATENCY", ARG_NONE, "SHOW", false, false, "SHOW LATENCY",
				"Latency percentiles, last stats period and since start"},
	[ADMIN_SHOW_ROUTING] = {"SHOW ROUTING", ARG_NONE, "SHOW", false, false, "SHOW ROUTING",
				"Transactions routed to each server, fallbacks, retries, bans"},
	[ADMIN_SHOW_BATCHES] = {"SHOW BATCHES", ARG_NONE, "SHOW", false, false, "SHOW BATCHES",
				"Insert batching per database and user: batches, rows, fallbacks"},
	[ADMIN_SHOW_LISTS] = {"SHOW LISTS", ARG_NONE, "SHOW", false, false, "SHOW LISTS",
			      "Object counts"},
	[ADMIN_SHOW_MEM] = {"SHOW MEM", ARG_NONE, "SHOW", false, false, "SHOW MEM",
			    "Memory of buffers and objects"},
	[ADMIN_SHOW_SLOW_QUERIES] = {"SHOW SLOW_QUERIES", ARG_NONE, "SHOW", false, false,
				     "SHOW SLOW_QUERIES",
				     "The latest slow statements, newest first, with their plans"},
	[ADMIN_SHOW_QUERIES] = {"SHOW QUERIES", ARG_NONE, "SHOW", false, false, "SHOW QUERIES",
				"Statistics per statement fingerprint, most total time first"},
	/* Parsed apart (admin_parse_route): its argument is SQL of any shape. */
	[ADMIN_SHOW_ROUTE] = {"SHOW ROUTE", ARG_NONE, "SHOW", false, false, "SHOW ROUTE statement",
			      "Where read routing would send a statement, and why"},
	[ADMIN_RELOAD] = {"RELOAD", ARG_NONE, "RELOAD", true, true, "RELOAD",
			  "Read the configuration file and the auth file again"},
	[ADMIN_PAUSE] = {"PAUSE", ARG_DB_OPTIONAL, "PAUSE", true, false, "PAUSE [db]",
			 "Hold new transactions; running ones finish"},
	[ADMIN_RESUME] = {"RESUME", ARG_DB_OPTIONAL, "RESUME", true, true, "RESUME [db]",
			  "End PAUSE or KILL: held transactions go on"},
	[ADMIN_RECONNECT] = {"RECONNECT", ARG_DB_OPTIONAL, "RECONNECT", true, false,
			     "RECONNECT [db]", "Replace every server connection once released"},
	[ADMIN_DISABLE] = {"DISABLE", ARG_DB, "DISABLE", true, false, "DISABLE db",
			   "Refuse new clients of the database"},
	[ADMIN_ENABLE] = {"ENABLE", ARG_DB, "ENABLE", true, false, "ENABLE db",
			  "Accept new clients of the database again"},
	[ADMIN_KILL] = {"KILL", ARG_DB, "KILL", true, true, "KILL db",
			"Close every client and server of the database, then hold it paused"},
	[ADMIN_SET] = {"SET", ARG_SET, "SET", true, false, "SET key = value",
		       "Change a key that SHOW CONFIG lists as changeable"},
	[ADMIN_SHUTDOWN] = {"SHUTDOWN", ARG_NONE, "SHUTDOWN", true, true, "SHUTDOWN",
			    "Stop accepting; exit when clients finished (shutdown_timeout)"},
	[ADMIN_SHUTDOWN_IMMEDIATE] = {"SHUTDOWN IMMEDIATE", ARG_NONE, "SHUTDOWN", true, true,
				      "SHUTDOWN IMMEDIATE", "Close everything and exit now"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

bool admin_command_changes(enum admin_command cmd)
{
	return commands[cmd].changes;
}

const char *admin_command_tag(enum admin_command cmd)
{
	return commands[cmd].tag;
}

/* ----- parsing ----- */

enum tok_kind {
	TOK_END,
	TOK_SEMI,
	TOK_EQ,
	TOK_WORD,
	TOK_NAME,
	TOK_STRING
};

struct token {
	enum tok_kind kind;
	char text[ADMIN_VALUE_MAX];
};

/* Most tokens one statement has: SET key = value. */
#define MAX_TOKENS 4

static bool parse_fail(struct admin_error *err, const char *sqlstate, const char *hint,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool parse_fail(struct admin_error *err, const char *sqlstate, const char *hint,
		       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
	err->hint = hint;
	return false;
}

/* Skips blanks and comments; false on an unterminated comment. */
static bool lex_skip(const char **pp, struct admin_error *err)
{
	const char *p = *pp;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			if (end == NULL)
				return parse_fail(err, "42601", NULL, "unterminated /* comment");
			p = end + 2;
		} else {
			*pp = p;
			return true;
		}
	}
}

/* Copies a quoted token (quote doubled inside) starting at the opening quote. */
static bool lex_quoted(const char **pp, struct token *t, struct admin_error *err)
{
	const char *p = *pp;
	char q = *p++;
	size_t n = 0;
	for (;;) {
		if (*p == '\0')
			return parse_fail(err, "42601", NULL, "unterminated quoted %s",
					  q == '"' ? "name" : "string");
		if (*p == q) {
			if (p[1] != q)
				break;
			p++;
		}
		if (n + 1 >= sizeof(t->text))
			return parse_fail(err, "54000", NULL, "quoted %s longer than %zu bytes",
					  q == '"' ? "name" : "string", sizeof(t->text) - 1);
		t->text[n++] = *p++;
	}
	t->text[n] = '\0';
	t->kind = q == '"' ? TOK_NAME : TOK_STRING;
	*pp = p + 1;
	return true;
}

/* Reads the next token at *pp; false (err filled) on a lexical error. */
static bool lex_next(const char **pp, struct token *t, struct admin_error *err)
{
	if (!lex_skip(pp, err))
		return false;
	const char *p = *pp;
	t->text[0] = '\0';
	if (*p == '\0') {
		t->kind = TOK_END;
		return true;
	}
	if (*p == ';' || *p == '=') {
		t->kind = *p == ';' ? TOK_SEMI : TOK_EQ;
		t->text[0] = *p;
		t->text[1] = '\0';
		*pp = p + 1;
		return true;
	}
	if (*p == '\'' || *p == '"')
		return lex_quoted(pp, t, err);
	size_t n = 0;
	while (*p != '\0' && !isspace((unsigned char)*p) && strchr(";='\"", *p) == NULL) {
		if (n + 1 >= sizeof(t->text))
			return parse_fail(err, "54000", NULL, "word longer than %zu bytes",
					  sizeof(t->text) - 1);
		t->text[n++] = *p++;
	}
	t->text[n] = '\0';
	t->kind = TOK_WORD;
	*pp = p;
	return true;
}

/* How many of cmd's keywords the tokens spell (0 when they do not match). */
static size_t command_match(const struct command_info *ci, const struct token *toks, size_t n)
{
	const char *w = ci->words;
	size_t k = 0;
	while (*w != '\0') {
		size_t len = strcspn(w, " ");
		if (k >= n || toks[k].kind != TOK_WORD || strlen(toks[k].text) != len ||
		    strncasecmp(toks[k].text, w, len) != 0)
			return 0;
		k++;
		w += len;
		while (*w == ' ')
			w++;
	}
	return k;
}

/* Copies a database name token into st->name. */
static bool take_name(const struct token *t, struct admin_statement *st, struct admin_error *err)
{
	if (t->kind != TOK_WORD && t->kind != TOK_NAME)
		return parse_fail(err, "42601", HINT_HELP, "expected a name, not \"%s\"", t->text);
	if (strlen(t->text) >= sizeof(st->name))
		return parse_fail(err, "42622", NULL, "name \"%.40s...\" is longer than %zu bytes",
				  t->text, sizeof(st->name) - 1);
	memcpy(st->name, t->text, strlen(t->text) + 1);
	return true;
}

/* Turns one statement's tokens into st. */
static bool parse_statement(const struct token *toks, size_t n, struct admin_statement *st,
			    struct admin_error *err)
{
	size_t best = 0, used = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		size_t k = command_match(&commands[i], toks, n);
		if (k > used) {
			used = k;
			best = i;
		}
	}
	if (used == 0) {
		if (toks[0].kind == TOK_WORD && strcasecmp(toks[0].text, "SHOW") == 0)
			return parse_fail(err, "42601", HINT_HELP,
					  n > 1 ? "unknown SHOW subject \"%s\""
						: "SHOW needs a subject%s",
					  n > 1 ? toks[1].text : "");
		return parse_fail(err, "42601", HINT_HELP, "unknown command \"%s\"", toks[0].text);
	}
	const struct command_info *ci = &commands[best];
	memset(st, 0, sizeof(*st));
	st->command = (enum admin_command)best;
	const struct token *rest = toks + used;
	size_t left = n - used;
	switch (ci->arg) {
	case ARG_NONE:
		break;
	case ARG_DB_OPTIONAL:
	case ARG_DB:
		if (left == 0 && ci->arg == ARG_DB)
			return parse_fail(err, "42601", HINT_HELP, "%s needs a database name",
					  ci->tag);
		if (left > 0) {
			if (!take_name(&rest[0], st, err))
				return false;
			rest++;
			left--;
		}
		break;
	case ARG_SET: {
		bool eq = left >= 2 &&
			  (rest[1].kind == TOK_EQ ||
			   (rest[1].kind == TOK_WORD && strcasecmp(rest[1].text, "TO") == 0));
		if (left < 3 || rest[0].kind != TOK_WORD || !eq ||
		    (rest[2].kind != TOK_WORD && rest[2].kind != TOK_STRING))
			return parse_fail(err, "42601", HINT_HELP, "SET needs key = value");
		if (!take_name(&rest[0], st, err))
			return false;
		snprintf(st->value, sizeof(st->value), "%s", rest[2].text);
		rest += 3;
		left -= 3;
		break;
	}
	}
	if (left > 0)
		return parse_fail(err, "42601", HINT_HELP, "unexpected \"%s\" after %s",
				  rest[0].text, ci->usage);
	return true;
}

/* The word w (any case) at *pp followed by a blank or the end: moves past it. */
static bool take_keyword(const char **pp, const char *w)
{
	size_t n = strlen(w);
	const char *p = *pp;
	if (strncasecmp(p, w, n) != 0 || (p[n] != '\0' && !isspace((unsigned char)p[n])))
		return false;
	p += n;
	while (isspace((unsigned char)*p))
		p++;
	*pp = p;
	return true;
}

/*
 * "SHOW ROUTE statement": the whole rest of the query is the statement, ';'
 * and all. Returns 1 with out filled, 0 when sql is something else, -1 on error.
 */
static int admin_parse_route(const char *sql, struct admin_statement *out,
			     struct admin_error *err)
{
	const char *p = sql;
	if (!lex_skip(&p, err) || !take_keyword(&p, "SHOW") || !take_keyword(&p, "ROUTE"))
		return 0;
	size_t n = strlen(p);
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n == 0) {
		parse_fail(err, "42601", HINT_HELP, "SHOW ROUTE needs a statement");
		return -1;
	}
	if (n >= sizeof(out->value)) {
		parse_fail(err, "54000", NULL, "SHOW ROUTE takes statements of up to %zu bytes",
			   sizeof(out->value) - 1);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->command = ADMIN_SHOW_ROUTE;
	memcpy(out->value, p, n);
	out->value[n] = '\0';
	return 1;
}

int admin_parse(const char *sql, struct admin_statement *out, size_t max, struct admin_error *err)
{
	int route = max > 0 ? admin_parse_route(sql, out, err) : 0;
	if (route != 0)
		return route;
	const char *p = sql;
	struct token toks[MAX_TOKENS], extra;
	size_t count = 0;
	for (;;) {
		size_t n = 0;
		struct token *t;
		for (;;) {
			t = n < MAX_TOKENS ? &toks[n] : &extra;
			if (!lex_next(&p, t, err))
				return -1;
			if (t->kind == TOK_END || t->kind == TOK_SEMI)
				break;
			if (n == MAX_TOKENS) {
				/* Longer than any command: report where it stops making sense. */
				struct admin_statement st;
				if (parse_statement(toks, n, &st, err))
					parse_fail(err, "42601", HINT_HELP,
						   "unexpected \"%s\" after %s", extra.text,
						   commands[st.command].usage);
				return -1;
			}
			n++;
		}
		if (n > 0) {
			if (count == max) {
				parse_fail(err, "54000", NULL,
					   "more than %zu statements in one query", max);
				return -1;
			}
			if (!parse_statement(toks, n, &out[count], err))
				return -1;
			count++;
		}
		if (t->kind == TOK_END)
			return (int)count;
	}
}

/* ----- answers ----- */

static void admin_put_error(struct obuf *ob, const char *sqlstate, const char *hint,
			    const char *detail, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void admin_put_error(struct obuf *ob, const char *sqlstate, const char *hint,
			    const char *detail, const char *fmt, ...)
{
	char message[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	proto_put_error(ob, false, sqlstate, message, detail, hint);
}

static const char *pool_mode_name(enum pool_mode mode)
{
	switch (mode) {
	case POOL_SESSION:
		return "session";
	case POOL_STATEMENT:
		return "statement";
	case POOL_TRANSACTION:
		break;
	}
	return "transaction";
}

static struct database *admin_find_db(struct worker *w, const char *name)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		if (!db->removed && strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

/* Splits "host:port" (as listener.c and server.c write addresses) at its last colon. */
static void split_addr(const char *addr, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(addr, ':');
	*port = 0;
	if (addr[0] == '/' || colon == NULL) {
		snprintf(host, cap, "unix");
		return;
	}
	snprintf(host, cap, "%.*s", (int)(colon - addr), addr);
	*port = atoi(colon + 1);
}

/* The local end of a socket: numeric address and port, or "unix". */
static void local_addr(int fd, char *host, size_t cap, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	*port = 0;
	snprintf(host, cap, "unix");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, (socklen_t)cap);
		*port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, (socklen_t)cap);
		*port = ntohs(a->sin6_port);
	}
}

/* The process id of a unix-socket peer, 0 for TCP or when unknown. */
static int peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != AF_UNIX)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return 0;
	return cred.pid;
}

static void show_help(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {{"command", RESULTSET_TEXT},
						       {"description", RESULTSET_TEXT}};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, 2);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		resultset_row_begin(&rs);
		resultset_put_text(&rs, commands[i].usage);
		resultset_put_text(&rs, commands[i].doc);
	}
	resultset_end(&rs, "SHOW");
}

static void show_version(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {{"version", RESULTSET_TEXT}};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, 1);
	resultset_row_begin(&rs);
	resultset_put_text(&rs, "pgsluice " PACKAGE_VERSION);
	resultset_end(&rs, "SHOW");
}

static void show_config(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {{"key", RESULTSET_TEXT},
						       {"value", RESULTSET_TEXT},
						       {"default", RESULTSET_TEXT},
						       {"changeable", RESULTSET_TEXT}};
	struct resultset rs;
	char value[1024];
	resultset_begin(&rs, ob, cols, 4);
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		resultset_row_begin(&rs);
		resultset_put_text(&rs, k->name);
		resultset_put_text(&rs, config_format_value(w->cfg, k, value, sizeof(value)));
		resultset_put_text(&rs, k->default_value);
		resultset_put_text(&rs, k->reloadable ? "yes" : "no");
	}
	resultset_end(&rs, "SHOW");
}

static void show_databases(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"name", RESULTSET_TEXT},
		{"host", RESULTSET_TEXT},
		{"port", RESULTSET_INT4},
		{"database", RESULTSET_TEXT},
		{"force_user", RESULTSET_TEXT},
		{"pool_size", RESULTSET_INT4},
		{"min_pool_size", RESULTSET_INT4},
		{"reserve_pool", RESULTSET_INT4},
		{"pool_mode", RESULTSET_TEXT},
		{"max_connections", RESULTSET_INT4},
		{"current_connections", RESULTSET_INT4},
		{"paused", RESULTSET_INT4},
		{"disabled", RESULTSET_INT4},
		{"replicas", RESULTSET_TEXT},
	};
	const struct config *cfg = w->cfg;
	struct resultset rs;
	struct list_head *pos, *tmp, *tpos, *ttmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		int servers = 0;
		struct list_head *pp, *pt;
		list_for_each_safe(pp, pt, &db->pools)
		{
			servers += pool_server_count(list_entry(pp, struct pool, node));
		}
		/* "host:port" of each replica, comma separated (64 replicas at most). */
		char replicas[64 * 80] = "";
		size_t len = 0;
		list_for_each_safe(tpos, ttmp, &db->targets)
		{
			struct target *t = list_entry(tpos, struct target, node);
			if (t->role != TARGET_REPLICA || t->removed || len >= sizeof(replicas))
				continue;
			len += (size_t)snprintf(replicas + len, sizeof(replicas) - len, "%s%s:%d",
						len > 0 ? "," : "", t->host, t->port);
		}
		resultset_row_begin(&rs);
		resultset_put_text(&rs, db->name);
		resultset_put_text(&rs, db->host);
		resultset_put_int(&rs, db->port);
		resultset_put_text(&rs, db->dbname);
		resultset_put_text(&rs, db->login_user);
		resultset_put_int(&rs, db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size);
		resultset_put_int(&rs,
				  db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size);
		resultset_put_int(&rs, db->reserve_pool_size >= 0 ? db->reserve_pool_size
								  : cfg->reserve_pool_size);
		resultset_put_text(&rs, pool_mode_name(db->pool_mode_set
							       ? db->pool_mode
							       : (enum pool_mode)cfg->pool_mode));
		resultset_put_int(&rs, db->max_db_connections > 0 ? db->max_db_connections
								  : cfg->max_db_connections);
		resultset_put_int(&rs, servers);
		resultset_put_int(&rs, db->paused);
		resultset_put_int(&rs, db->disabled);
		resultset_put_text(&rs, replicas);
	}
	resultset_end(&rs, "SHOW");
}

static void show_pools(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT},
		{"user", RESULTSET_TEXT},
		{"cl_active", RESULTSET_INT4},
		{"cl_waiting", RESULTSET_INT4},
		{"cl_active_cancel_req", RESULTSET_INT4},
		{"cl_waiting_cancel_req", RESULTSET_INT4},
		{"sv_active", RESULTSET_INT4},
		{"sv_active_cancel", RESULTSET_INT4},
		{"sv_being_canceled", RESULTSET_INT4},
		{"sv_idle", RESULTSET_INT4},
		{"sv_used", RESULTSET_INT4},
		{"sv_tested", RESULTSET_INT4},
		{"sv_login", RESULTSET_INT4},
		{"maxwait", RESULTSET_INT8},
		{"maxwait_us", RESULTSET_INT8},
		{"pool_mode", RESULTSET_TEXT},
		{"role", RESULTSET_TEXT},
		{"server", RESULTSET_TEXT},
		{"pool_size", RESULTSET_INT4},
	};
	struct resultset rs;
	struct list_head *dpos, *dtmp, *pos, *tmp;
	double now = ev_now(w->loop);
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		list_for_each_safe(pos, tmp, &db->pools)
		{
			struct pool *p = list_entry(pos, struct pool, node);
			struct metrics_pool f;
			metrics_read_pool(w, p, now, &f);
			resultset_row_begin(&rs);
			resultset_put_text(&rs, db->name);
			resultset_put_text(&rs, p->user);
			resultset_put_int(&rs, f.cl_active);
			resultset_put_int(&rs, f.cl_waiting);
			resultset_put_int(&rs, 0); /* cancels are not tracked per pool */
			resultset_put_int(&rs, 0);
			resultset_put_int(&rs, f.sv_active);
			resultset_put_int(&rs, 0);
			resultset_put_int(&rs, 0);
			resultset_put_int(&rs, f.sv_idle);
			resultset_put_int(&rs, 0); /* no server_check_query: never "used" */
			resultset_put_int(&rs, f.sv_tested);
			resultset_put_int(&rs, f.sv_login);
			resultset_put_uint(&rs, f.maxwait_us / 1000000);
			resultset_put_uint(&rs, f.maxwait_us % 1000000);
			resultset_put_text(&rs, pool_mode_name(f.mode));
			resultset_put_text(&rs, f.role);
			resultset_put_textf(&rs, "%s:%d", p->target->host, p->target->port);
			resultset_put_int(&rs, f.pool_size);
		}
	}
	resultset_end(&rs, "SHOW");
}

/* The columns SHOW CLIENTS and SHOW SERVERS share (PgBouncer's order). */
static const struct resultset_column socket_cols[] = {
	{"type", RESULTSET_TEXT},
	{"user", RESULTSET_TEXT},
	{"database", RESULTSET_TEXT},
	{"state", RESULTSET_TEXT},
	{"addr", RESULTSET_TEXT},
	{"port", RESULTSET_INT4},
	{"local_addr", RESULTSET_TEXT},
	{"local_port", RESULTSET_INT4},
	{"connect_time", RESULTSET_TIMESTAMPTZ},
	{"request_time", RESULTSET_TIMESTAMPTZ},
	{"wait", RESULTSET_INT8},
	{"wait_us", RESULTSET_INT8},
	{"close_needed", RESULTSET_INT4},
	{"ptr", RESULTSET_TEXT},
	{"link", RESULTSET_TEXT},
	{"remote_pid", RESULTSET_INT4},
	{"tls", RESULTSET_TEXT},
	{"application_name", RESULTSET_TEXT},
	/* pgsluice's own, SHOW SERVERS only */
	{"role", RESULTSET_TEXT},
	{"health", RESULTSET_TEXT},
	{"ban_reason", RESULTSET_TEXT},
	{"lag_seconds", RESULTSET_FLOAT8},
	{"lag_bytes", RESULTSET_INT8},
};

#define N_SOCKET_COLS_SHARED 18

/* The figures of one connection in socket_cols' order. */
struct socket_row {
	const char *type, *user, *database, *state, *addr;
	int port;
	int fd;
	double connect_time, request_time, wait;
	bool close_needed;
	const void *ptr, *link;
	int remote_pid;
	SSL *ssl; /* TLS state, NULL for plaintext */
	const char *application_name;
};

static void put_socket_row(struct resultset *rs, const struct socket_row *r)
{
	char host[64];
	int port;
	resultset_row_begin(rs);
	resultset_put_text(rs, r->type);
	resultset_put_text(rs, r->user);
	resultset_put_text(rs, r->database);
	resultset_put_text(rs, r->state);
	split_addr(r->addr, host, sizeof(host), &port);
	resultset_put_text(rs, host);
	resultset_put_int(rs, r->port > 0 ? r->port : port);
	local_addr(r->fd, host, sizeof(host), &port);
	resultset_put_text(rs, host);
	resultset_put_int(rs, port);
	resultset_put_time(rs, r->connect_time);
	resultset_put_time(rs, r->request_time);
	uint64_t wait_us = r->wait > 0 ? (uint64_t)(r->wait * 1e6) : 0;
	resultset_put_uint(rs, wait_us / 1000000);
	resultset_put_uint(rs, wait_us % 1000000);
	resultset_put_int(rs, r->close_needed);
	resultset_put_textf(rs, "%p", r->ptr);
	if (r->link != NULL)
		resultset_put_textf(rs, "%p", r->link);
	else
		resultset_put_null(rs);
	resultset_put_int(rs, r->remote_pid);
	if (r->ssl != NULL)
		resultset_put_textf(rs, "%s/%s", tls_version(r->ssl), tls_cipher(r->ssl));
	else
		resultset_put_text(rs, "");
	resultset_put_text(rs, r->application_name != NULL ? r->application_name : "");
}

static const char *client_state_name(enum client_state state)
{
	switch (state) {
	case CLIENT_WAITING:
		return "waiting";
	case CLIENT_BATCHED:
		return "batched";
	case CLIENT_IDLE:
	case CLIENT_ACTIVE:
		return "active";
	case CLIENT_STARTUP:
	case CLIENT_TLS:
	case CLIENT_AUTH:
	case CLIENT_WELCOME:
		break;
	}
	return "login";
}

static void show_clients(struct worker *w, struct obuf *ob)
{
	struct resultset rs;
	struct list_head *pos, *tmp;
	double now = ev_now(w->loop);
	resultset_begin(&rs, ob, socket_cols, N_SOCKET_COLS_SHARED);
	list_for_each_safe(pos, tmp, &w->clients)
	{
		struct client *c = list_entry(pos, struct client, node);
		struct socket_row r = {
			.type = "C",
			.user = c->user,
			.database = c->dbname,
			.state = client_state_name(c->state),
			.addr = c->addr,
			.fd = c->conn.fd,
			.connect_time = c->connected_at,
			.request_time = c->last_activity,
			.wait = c->state == CLIENT_WAITING ? now - c->wait_since : 0,
			.ptr = c,
			.link = c->server,
			.remote_pid = peer_pid(c->conn.fd),
			.ssl = c->conn.ssl,
			.application_name = params_get(&c->params, "application_name"),
		};
		put_socket_row(&rs, &r);
	}
	resultset_end(&rs, "SHOW");
}

static const char *server_state_name(enum server_state state)
{
	switch (state) {
	case SERVER_IDLE:
		return "idle";
	case SERVER_ACTIVE:
		return "active";
	case SERVER_RESETTING:
		return "tested";
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		break;
	}
	return "login";
}

static void show_server_row(struct resultset *rs, const struct server *s)
{
	const struct pool *p = s->pool;
	const struct target *t = p->target;
	bool stale = s->close_on_release || s->generation != p->db->generation;
	const char *health = "ok";
	if (t->banned)
		health = "banned";
	else if (stale)
		health = "stale";
	else if (s->state == SERVER_CONNECTING || s->state == SERVER_LOGIN)
		health = "connecting";
	struct socket_row r = {
		.type = "S",
		.user = p->db->login_user != NULL ? p->db->login_user : p->user,
		.database = p->db->name,
		.state = server_state_name(s->state),
		.addr = s->addr,
		.port = s->addr[0] == '/' ? t->port : 0,
		.fd = s->conn.fd,
		.connect_time = s->opened_at,
		.request_time = s->query_start > s->last_used ? s->query_start : s->last_used,
		.close_needed = stale,
		.ptr = s,
		.link = s->client,
		.remote_pid = (int)s->backend_pid,
		.ssl = s->conn.ssl,
		.application_name = params_get(&s->params, "application_name"),
	};
	put_socket_row(rs, &r);
	resultset_put_text(rs, metrics_role_name(t));
	resultset_put_text(rs, health);
	resultset_put_text(rs, t->banned ? t->ban_reason : NULL);
	if (t->role == TARGET_REPLICA && t->probed) {
		resultset_put_float(rs, t->lag_seconds);
		resultset_put_int(rs, t->lag_bytes);
	}
}

static void show_servers(struct worker *w, struct obuf *ob)
{
	struct resultset rs;
	struct list_head *dpos, *dtmp, *pos, *tmp, *spos, *stmp;
	resultset_begin(&rs, ob, socket_cols, sizeof(socket_cols) / sizeof(socket_cols[0]));
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		list_for_each_safe(pos, tmp, &db->pools)
		{
			struct pool *p = list_entry(pos, struct pool, node);
			struct list_head *lists[] = {&p->active, &p->idle, &p->resetting,
						     &p->opening};
			for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
				list_for_each_safe(spos, stmp, lists[i])
				{
					show_server_row(&rs, list_entry(spos, struct server, node));
				}
			}
		}
	}
	resultset_end(&rs, "SHOW");
}

/* The seven figures of SHOW STATS_TOTALS / STATS_AVERAGES in their order. */
static void put_totals(struct resultset *rs, const struct stats_totals *t)
{
	resultset_put_uint(rs, t->xact_count);
	resultset_put_uint(rs, t->query_count);
	resultset_put_uint(rs, t->bytes_received);
	resultset_put_uint(rs, t->bytes_sent);
	resultset_put_uint(rs, t->xact_time);
	resultset_put_uint(rs, t->query_time);
	resultset_put_uint(rs, t->wait_time);
}

static void put_percentiles(struct resultset *rs, const uint64_t *v)
{
	for (size_t i = 0; i < METRICS_N_QUANTILES; i++)
		resultset_put_uint(rs, v[i]);
}

/* clang-format off */
/* Columns of the twelve percentiles, query_p50_us .. wait_p999_us. */
#define PERCENTILE_COLS \
	{"query_p50_us", RESULTSET_INT8}, {"query_p95_us", RESULTSET_INT8}, \
	{"query_p99_us", RESULTSET_INT8}, {"query_p999_us", RESULTSET_INT8}, \
	{"xact_p50_us", RESULTSET_INT8}, {"xact_p95_us", RESULTSET_INT8}, \
	{"xact_p99_us", RESULTSET_INT8}, {"xact_p999_us", RESULTSET_INT8}, \
	{"wait_p50_us", RESULTSET_INT8}, {"wait_p95_us", RESULTSET_INT8}, \
	{"wait_p99_us", RESULTSET_INT8}, {"wait_p999_us", RESULTSET_INT8}
/* clang-format on */

static void show_stats(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT},	       {"total_xact_count", RESULTSET_INT8},
		{"total_query_count", RESULTSET_INT8}, {"total_received", RESULTSET_INT8},
		{"total_sent", RESULTSET_INT8},	       {"total_xact_time", RESULTSET_INT8},
		{"total_query_time", RESULTSET_INT8},  {"total_wait_time", RESULTSET_INT8},
		{"avg_xact_count", RESULTSET_INT8},    {"avg_query_count", RESULTSET_INT8},
		{"avg_recv", RESULTSET_INT8},	       {"avg_sent", RESULTSET_INT8},
		{"avg_xact_time", RESULTSET_INT8},     {"avg_query_time", RESULTSET_INT8},
		{"avg_wait_time", RESULTSET_INT8},     PERCENTILE_COLS,
	};
	struct resultset rs;
	struct list_head *pos, *tmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		struct metrics_db f;
		struct metrics_latency l;
		metrics_read_db(db, &f);
		metrics_read_latency(&db->stats.since_start, &l);
		resultset_row_begin(&rs);
		resultset_put_text(&rs, db->name);
		put_totals(&rs, &f.total);
		put_totals(&rs, &f.avg);
		put_percentiles(&rs, l.query);
		put_percentiles(&rs, l.xact);
		put_percentiles(&rs, l.wait);
	}
	resultset_end(&rs, "SHOW");
}

static void show_stats_part(struct worker *w, struct obuf *ob, bool averages)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT},	 {"xact_count", RESULTSET_INT8},
		{"query_count", RESULTSET_INT8}, {"bytes_received", RESULTSET_INT8},
		{"bytes_sent", RESULTSET_INT8},	 {"xact_time", RESULTSET_INT8},
		{"query_time", RESULTSET_INT8},	 {"wait_time", RESULTSET_INT8},
	};
	struct resultset rs;
	struct list_head *pos, *tmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		struct metrics_db f;
		metrics_read_db(db, &f);
		resultset_row_begin(&rs);
		resultset_put_text(&rs, db->name);
		put_totals(&rs, averages ? &f.avg : &f.total);
	}
	resultset_end(&rs, "SHOW");
}

static void show_latency(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT}, {"role", RESULTSET_TEXT}, {"window", RESULTSET_TEXT},
		{"count", RESULTSET_INT8},    PERCENTILE_COLS,
	};
	struct resultset rs;
	struct list_head *pos, *tmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		const struct stats_latency *windows[] = {&db->stats.last, &db->stats.since_start};
		const char *names[] = {"last_period", "since_start"};
		for (size_t i = 0; i < 2; i++) {
			struct metrics_latency l;
			metrics_read_latency(windows[i], &l);
			resultset_row_begin(&rs);
			resultset_put_text(&rs, db->name);
			/* The histograms are kept per database, over every target. */
			resultset_put_text(&rs, "all");
			resultset_put_text(&rs, names[i]);
			resultset_put_uint(&rs, l.query_count);
			put_percentiles(&rs, l.query);
			put_percentiles(&rs, l.xact);
			put_percentiles(&rs, l.wait);
		}
	}
	resultset_end(&rs, "SHOW");
}

static void show_routing(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT},	   {"role", RESULTSET_TEXT},
		{"server", RESULTSET_TEXT},	   {"weight", RESULTSET_INT4},
		{"transactions", RESULTSET_INT8},  {"retries", RESULTSET_INT8},
		{"bans", RESULTSET_INT8},	   {"banned", RESULTSET_BOOL},
		{"ban_reason", RESULTSET_TEXT},	   {"fallbacks", RESULTSET_INT8},
		{"reads_refused", RESULTSET_INT8},
	};
	struct resultset rs;
	struct list_head *dpos, *dtmp, *pos, *tmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		list_for_each_safe(pos, tmp, &db->targets)
		{
			struct target *t = list_entry(pos, struct target, node);
			resultset_row_begin(&rs);
			resultset_put_text(&rs, db->name);
			resultset_put_text(&rs, metrics_role_name(t));
			resultset_put_textf(&rs, "%s:%d", t->host, t->port);
			resultset_put_int(&rs, t->weight);
			resultset_put_uint(&rs, t->routed);
			resultset_put_uint(&rs, t->retries);
			resultset_put_uint(&rs, t->bans);
			resultset_put_bool(&rs, t->banned);
			resultset_put_text(&rs, t->banned ? t->ban_reason : NULL);
			/* Fallbacks and refusals are reads the replicas could not take: the
			 * database's figures, shown on its primary's row. */
			if (t->role == TARGET_PRIMARY) {
				resultset_put_uint(&rs, db->fallbacks);
				resultset_put_uint(&rs, db->reads_failed);
			}
		}
	}
	resultset_end(&rs, "SHOW");
}

static void show_batches(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"database", RESULTSET_TEXT},	      {"user", RESULTSET_TEXT},
		{"batches", RESULTSET_INT8},	      {"rows", RESULTSET_INT8},
		{"avg_rows", RESULTSET_FLOAT8},	      {"fallbacks", RESULTSET_INT8},
		{"unknown_outcomes", RESULTSET_INT8}, {"flush_idle_server", RESULTSET_INT8},
		{"flush_max_delay", RESULTSET_INT8},  {"flush_max_rows", RESULTSET_INT8},
		{"rows_waiting", RESULTSET_INT8},
	};
	struct resultset rs;
	struct list_head *dpos, *dtmp, *pos, *tmp;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		list_for_each_safe(pos, tmp, &db->batch_tallies)
		{
			const struct batch_tally *t = list_entry(pos, struct batch_tally, node);
			const struct batch_counts *b = &t->counts;
			resultset_row_begin(&rs);
			resultset_put_text(&rs, db->name);
			resultset_put_text(&rs, t->user);
			resultset_put_uint(&rs, b->batches);
			resultset_put_uint(&rs, b->rows);
			double avg = b->batches > 0 ? (double)b->rows / (double)b->batches : 0.0;
			resultset_put_float(&rs, avg);
			resultset_put_uint(&rs, b->fallbacks);
			resultset_put_uint(&rs, b->unknown);
			resultset_put_uint(&rs, b->flushes[BATCH_FLUSH_IDLE]);
			resultset_put_uint(&rs, b->flushes[BATCH_FLUSH_DELAY]);
			resultset_put_uint(&rs, b->flushes[BATCH_FLUSH_ROWS]);
			resultset_put_uint(&rs, b->rows_waiting);
		}
	}
	resultset_end(&rs, "SHOW");
}

static void show_route(struct worker *w, struct obuf *ob, const char *sql)
{
	static const struct resultset_column cols[] = {
		{"target", RESULTSET_TEXT},
		{"reason", RESULTSET_TEXT},
	};
	bool read;
	char reason[CLASSIFY_REASON_MAX];
	router_explain(w, sql, strlen(sql), &read, reason, sizeof(reason));
	struct resultset rs;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	resultset_row_begin(&rs);
	resultset_put_text(&rs, read ? "replica" : "primary");
	resultset_put_text(&rs, reason);
	resultset_row_end(&rs);
	resultset_end(&rs, "SHOW");
}

/* Counts of the runtime objects, for SHOW LISTS and SHOW MEM. */
struct object_counts {
	int databases, pools, targets, login_clients;
};

static void count_objects(struct worker *w, struct object_counts *n)
{
	struct list_head *dpos, *dtmp, *pos, *tmp;
	memset(n, 0, sizeof(*n));
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		n->databases++;
		list_for_each_safe(pos, tmp, &db->pools)
		{
			n->pools++;
		}
		list_for_each_safe(pos, tmp, &db->targets)
		{
			n->targets++;
		}
	}
	list_for_each_safe(pos, tmp, &w->clients)
	{
		const struct client *c = list_entry(pos, struct client, node);
		n->login_clients += c->state == CLIENT_STARTUP || c->state == CLIENT_TLS ||
				    c->state == CLIENT_AUTH || c->state == CLIENT_WELCOME;
	}
}

static void show_lists(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {{"list", RESULTSET_TEXT},
						       {"items", RESULTSET_INT4}};
	struct object_counts n;
	count_objects(w, &n);
	const struct {
		const char *name;
		int items;
	} rows[] = {
		{"databases", n.databases},
		{"users", w->users != NULL ? (int)userlist_count(w->users) : 0},
		{"pools", n.pools},
		{"free_clients", 0}, /* clients are not kept on a free list */
		{"used_clients", w->n_clients},
		{"login_clients", n.login_clients},
		{"free_servers", 0},
		{"used_servers", w->n_servers},
		{"dns_names", 0}, /* no DNS cache: names resolve at connect */
		{"dns_zones", 0},
		{"dns_queries", 0},
		{"dns_pending", 0},
	};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, 2);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		resultset_row_begin(&rs);
		resultset_put_text(&rs, rows[i].name);
		resultset_put_int(&rs, rows[i].items);
	}
	resultset_end(&rs, "SHOW");
}

static void show_mem(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"name", RESULTSET_TEXT}, {"size", RESULTSET_INT8},	{"used", RESULTSET_INT8},
		{"free", RESULTSET_INT8}, {"memtotal", RESULTSET_INT8},
	};
	struct object_counts n;
	count_objects(w, &n);
	const struct iobuf_pool *io = &w->iobufs;
	const struct {
		const char *name;
		uint64_t size, used, free;
	} rows[] = {
		{"iobuf_cache", sizeof(struct iobuf) + io->size, io->n_total - io->n_free,
		 io->n_free},
		{"client_cache", sizeof(struct client), (uint64_t)w->n_clients, 0},
		{"server_cache", sizeof(struct server), (uint64_t)w->n_servers, 0},
		{"pool_cache", sizeof(struct pool), (uint64_t)n.pools, 0},
		{"db_cache", sizeof(struct database), (uint64_t)n.databases, 0},
		{"target_cache", sizeof(struct target), (uint64_t)n.targets, 0},
	};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		resultset_row_begin(&rs);
		resultset_put_text(&rs, rows[i].name);
		resultset_put_uint(&rs, rows[i].size);
		resultset_put_uint(&rs, rows[i].used);
		resultset_put_uint(&rs, rows[i].free);
		resultset_put_uint(&rs, rows[i].size * (rows[i].used + rows[i].free));
	}
	resultset_end(&rs, "SHOW");
}

/* ----- control commands ----- */

/* Closes every client and server of db; db stays paused so that nothing reconnects. */
static void kill_database(struct worker *w, struct database *db)
{
	struct list_head *pos, *tmp;
	db->paused = true;
	/* Closing a client releases or closes only its own server, and the pause keeps
	 * released servers from being handed on, so the walk's next client stays valid. */
	list_for_each_safe(pos, tmp, &w->clients)
	{
		struct client *c = list_entry(pos, struct client, node);
		if (c->pool != NULL && c->pool->db == db)
			client_fatal(w, c, "57P01",
				     "terminating connection due to administrator command");
	}
	list_for_each_safe(pos, tmp, &db->pools)
	{
		struct pool *p = list_entry(pos, struct pool, node);
		struct list_head *lists[] = {&p->idle, &p->active, &p->opening, &p->resetting};
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
			while (!list_empty(lists[i]))
				server_close(w,
					     list_entry(list_first(lists[i]), struct server, node),
					     "KILL", false);
		}
		pool_free_if_unused(w, p);
	}
}

static void resume_database(struct worker *w, struct database *db)
{
	struct list_head *pos, *tmp;
	db->paused = false;
	list_for_each_safe(pos, tmp, &db->pools)
	{
		pool_wake(w, list_entry(pos, struct pool, node));
	}
}

static const struct cfg_key *find_key(const char *name)
{
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++)
		if (strcasecmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* SET key = value: the value, then what the running daemon must redo for the key. */
static bool run_set(struct worker *w, struct obuf *ob, const struct admin_statement *st)
{
	const struct cfg_key *key = find_key(st->name);
	char why[256], old[1024];
	if (key == NULL) {
		admin_put_error(ob, "42704", "SHOW CONFIG lists the keys.", NULL,
				"unknown configuration key \"%s\"", st->name);
		return false;
	}
	if (!key->reloadable) {
		admin_put_error(ob, "55P02", "Change it in the configuration file and restart.",
				NULL, "%s cannot be changed while pgsluice runs", key->name);
		return false;
	}
	struct userlist *users = NULL;
	char *errors = NULL;
	bool auth_file = strcmp(key->name, "auth_file") == 0;
	/* A new auth file must load before it is named: logins depend on it. */
	if (auth_file && st->value[0] != '\0' &&
	    (users = userlist_load(st->value, &errors)) == NULL) {
		admin_put_error(ob, "F0000", NULL, errors, "could not load auth_file \"%s\"",
				st->value);
		free(errors);
		return false;
	}
	/* So must new hba rules: a bad file keeps the rules in force. */
	bool hba_file = strcmp(key->name, "hba_file") == 0;
	struct hba_rules *hba = NULL;
	if (hba_file) {
		struct config probe = {.hba_file = st->value[0] != '\0' ? (char *)st->value : NULL};
		if (!worker_load_hba(&probe, &hba, &errors)) {
			admin_put_error(ob, "F0000", NULL, errors, "could not load hba_file \"%s\"",
					st->value);
			free(errors);
			return false;
		}
	}
	config_format_value(w->cfg, key, old, sizeof(old));
	if (!config_set_value(w->cfg, key, st->value, why, sizeof(why))) {
		userlist_free(users);
		hba_free(hba);
		admin_put_error(ob, "22023", NULL, NULL, "%s: %s", key->name, why);
		return false;
	}
	if (auth_file) {
		userlist_free(w->users);
		w->users = users;
	}
	if (hba_file) {
		hba_free(w->hba);
		w->hba = hba;
	}
	bool logging = strcmp(key->name, "logfile") == 0 || strcmp(key->name, "syslog") == 0 ||
		       strcmp(key->name, "verbose") == 0;
	if (logging && !log_open(w->cfg->logfile, w->cfg->syslog, w->cfg->verbose)) {
		config_set_value(w->cfg, key, old, why, sizeof(why));
		admin_put_error(ob, "F0000", NULL, NULL, "could not open log file \"%s\"",
				st->value);
		return false;
	}
	bool tls = strncmp(key->name, "client_tls_", 11) == 0 ||
		   strncmp(key->name, "server_tls_", 11) == 0;
	char tls_err[1024];
	if (tls && !worker_tls_configure(w, tls_err, sizeof(tls_err))) {
		/* The running contexts stayed: the old value describes them. */
		config_set_value(w->cfg, key, old, why, sizeof(why));
		admin_put_error(ob, "F0000", NULL, NULL, "%s", tls_err);
		return false;
	}
	/* After the TLS check: a refused server_tls_* value must not reach a new lookup. */
	if (strncmp(key->name, "auth_", 5) == 0 || auth_file ||
	    strncmp(key->name, "server_tls_", 11) == 0)
		auth_restart_lookups(w);
	if (!querylog_configure(w))
		log_error("out of memory applying the slow-query settings");
	log_info("admin: SET %s = %s", key->name, st->value);
	return true;
}

/* Runs one statement into ob; false when it failed (an error was written). */
static bool run_statement(struct worker *w, struct client *c, const struct admin_statement *st,
			  bool *stop_now)
{
	struct obuf *ob = &c->conn.out;
	static void (*const shows[])(struct worker *, struct obuf *) = {
		[ADMIN_SHOW_HELP] = show_help,	     [ADMIN_SHOW_VERSION] = show_version,
		[ADMIN_SHOW_CONFIG] = show_config,   [ADMIN_SHOW_DATABASES] = show_databases,
		[ADMIN_SHOW_POOLS] = show_pools,     [ADMIN_SHOW_CLIENTS] = show_clients,
		[ADMIN_SHOW_SERVERS] = show_servers, [ADMIN_SHOW_STATS] = show_stats,
		[ADMIN_SHOW_LATENCY] = show_latency, [ADMIN_SHOW_ROUTING] = show_routing,
		[ADMIN_SHOW_BATCHES] = show_batches,
		[ADMIN_SHOW_LISTS] = show_lists,     [ADMIN_SHOW_MEM] = show_mem,
		[ADMIN_SHOW_SLOW_QUERIES] = querylog_show_slow,
		[ADMIN_SHOW_QUERIES] = querylog_show_queries,
	};
	struct database *db = NULL;
	if (st->name[0] != '\0' && st->command != ADMIN_SET &&
	    (db = admin_find_db(w, st->name)) == NULL) {
		admin_put_error(ob, "3D000", "SHOW DATABASES lists them.", NULL,
				"database \"%s\" does not exist", st->name);
		return false;
	}
	struct list_head *pos, *tmp;
	switch (st->command) {
	case ADMIN_SHOW_STATS_TOTALS:
	case ADMIN_SHOW_STATS_AVERAGES:
		show_stats_part(w, ob, st->command == ADMIN_SHOW_STATS_AVERAGES);
		return true;
	case ADMIN_SHOW_ROUTE:
		show_route(w, ob, st->value);
		return true;
	case ADMIN_RELOAD: {
		char *errors = worker_reload_from_file(w);
		if (errors != NULL) {
			admin_put_error(ob, "F0000", NULL, errors,
					"reload failed; the running configuration stays");
			free(errors);
			return false;
		}
		log_info("admin: configuration reloaded by %s", c->user);
		break;
	}
	case ADMIN_PAUSE:
	case ADMIN_RESUME:
	case ADMIN_RECONNECT:
		list_for_each_safe(pos, tmp, &w->databases)
		{
			struct database *d = list_entry(pos, struct database, node);
			if (db != NULL && d != db)
				continue;
			if (st->command == ADMIN_PAUSE)
				d->paused = true;
			else if (st->command == ADMIN_RESUME)
				resume_database(w, d);
			else
				d->generation++;
		}
		log_info("admin: %s %s", commands[st->command].tag,
			 db != NULL ? db->name : "(all)");
		break;
	case ADMIN_DISABLE:
	case ADMIN_ENABLE:
		db->disabled = st->command == ADMIN_DISABLE;
		log_info("admin: %s %s", commands[st->command].tag, db->name);
		break;
	case ADMIN_KILL:
		log_info("admin: KILL %s", db->name);
		kill_database(w, db);
		break;
	case ADMIN_SET:
		if (!run_set(w, ob, st))
			return false;
		break;
	case ADMIN_SHUTDOWN:
		log_info("admin: SHUTDOWN by %s", c->user);
		worker_begin_shutdown(w);
		break;
	case ADMIN_SHUTDOWN_IMMEDIATE:
		log_info("admin: SHUTDOWN IMMEDIATE by %s", c->user);
		*stop_now = true;
		break;
	default:
		shows[st->command](w, ob);
		return true;
	}
	resultset_put_complete(ob, commands[st->command].tag);
	return true;
}

/* Runs statements in order until one fails; true when the loop must stop at once. */
static bool run_statements(struct worker *w, struct client *c, const struct admin_statement *sts,
			   size_t n)
{
	struct obuf *ob = &c->conn.out;
	bool stop_now = false;
	for (size_t i = 0; i < n; i++) {
		/* Counted from off, the mark survives the buffer compacting while it grows. */
		size_t mark = obuf_pending(ob);
		bool ok = run_statement(w, c, &sts[i], &stop_now);
		if (ob->failed) {
			ob->len = ob->off + mark;
			ob->failed = false;
			admin_put_error(ob, "54000", NULL, NULL,
					"the result does not fit the output buffer (%u bytes)",
					OUTPUT_LIMIT);
			break;
		}
		if (!ok)
			break;
	}
	proto_put_ready(ob, 'I');
	return stop_now;
}

/* The batch of statements waiting for admin_run_pending. */
struct admin_batch {
	size_t n;
	struct admin_statement st[];
};

enum conn_action admin_on_message(struct worker *w, struct client *c, const uint8_t *msg,
				  uint32_t total)
{
	struct obuf *ob = &c->conn.out;
	switch (msg[0]) {
	case 'Q':
		break;
	case 'd':
	case 'c':
	case 'f':
		/* Copy messages outside COPY are ignored, as PostgreSQL does. */
		return CONN_CONSUMED;
	case 'S':
	case 'F':
		admin_put_error(ob, "0A000", NULL, NULL,
				"the admin console supports only the simple query protocol");
		proto_put_ready(ob, 'I');
		return CONN_CONSUMED;
	default:
		/* The rest of an extended-protocol request is dropped up to its Sync. */
		admin_put_error(ob, "0A000", NULL, NULL,
				"the admin console supports only the simple query protocol");
		c->fail_pending = true;
		return CONN_CONSUMED;
	}
	const char *sql = (const char *)msg + PROTO_HEADER_LEN;
	size_t len = total - PROTO_HEADER_LEN;
	if (len == 0 || memchr(sql, '\0', len) != sql + len - 1) {
		admin_put_error(ob, "08P01", NULL, NULL, "invalid Query message");
		proto_put_ready(ob, 'I');
		return CONN_CONSUMED;
	}
	struct admin_statement sts[ADMIN_MAX_STATEMENTS];
	struct admin_error err;
	int n = admin_parse(sql, sts, ADMIN_MAX_STATEMENTS, &err);
	if (n < 0) {
		proto_put_error(ob, false, err.sqlstate, err.message, NULL, err.hint);
		proto_put_ready(ob, 'I');
		return CONN_CONSUMED;
	}
	if (n == 0) {
		resultset_put_empty_query(ob);
		proto_put_ready(ob, 'I');
		return CONN_CONSUMED;
	}
	bool deferred = false;
	for (int i = 0; i < n; i++) {
		if (admin_command_changes(sts[i].command) && !c->admin_may_change) {
			admin_put_error(ob, "42501",
					"Only admin_users may run it; stats_users may SHOW.", NULL,
					"permission denied for %s", commands[sts[i].command].tag);
			proto_put_ready(ob, 'I');
			return CONN_CONSUMED;
		}
		deferred = deferred || commands[sts[i].command].deferred;
	}
	if (!deferred) {
		run_statements(w, c, sts, (size_t)n);
		return CONN_CONSUMED;
	}
	struct admin_batch *b = malloc(sizeof(*b) + (size_t)n * sizeof(b->st[0]));
	if (b == NULL) {
		admin_put_error(ob, "53200", NULL, NULL, "out of memory");
		proto_put_ready(ob, 'I');
		return CONN_CONSUMED;
	}
	b->n = (size_t)n;
	memcpy(b->st, sts, (size_t)n * sizeof(b->st[0]));
	c->admin_pending = b;
	return CONN_YIELD;
}

void admin_run_pending(struct worker *w, struct client *c)
{
	struct admin_batch *b = c->admin_pending;
	if (b == NULL)
		return;
	c->admin_pending = NULL;
	bool stop_now = run_statements(w, c, b->st, b->n);
	free(b);
	enum conn_result r = conn_flush(&c->conn);
	if (stop_now) {
		/* The answer went out (as far as the socket took it); main closes the rest. */
		w->stop_requested = true;
		ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	if (r == CONN_ERROR) {
		client_close(w, c, "could not write to client");
		return;
	}
	/* Input that arrived behind the deferred query is processed before the next poll. */
	if (conn_buffered(&c->conn) > 0 && !list_linked(&c->deferred_node))
		list_add_tail(&w->deferred, &c->deferred_node);
}

void admin_login(struct worker *w, struct client *c)
{
	const struct config *cfg = w->cfg;
	if (config_list_contains(cfg->admin_users, c->user)) {
		c->admin_may_change = true;
	} else if (config_list_contains(cfg->stats_users, c->user)) {
		c->admin_may_change = false;
	} else {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "permission denied for the admin console: \"%.64s\" is in neither "
			 "admin_users nor stats_users",
			 c->user);
		client_fatal(w, c, "42501", msg);
		return;
	}
	c->is_admin = true;
	cancel_register(w, c);
	struct obuf *ob = &c->conn.out;
	const char *encoding = params_get(&c->params, "client_encoding");
	const char *app = params_get(&c->params, "application_name");
	/* What psql and drivers read at login; the console's text is ASCII or UTF-8. */
	proto_put_param_status(ob, "server_version", "15.0 (pgsluice " PACKAGE_VERSION ")");
	proto_put_param_status(ob, "server_encoding", "UTF8");
	proto_put_param_status(ob, "client_encoding", encoding != NULL ? encoding : "UTF8");
	proto_put_param_status(ob, "DateStyle", "ISO, MDY");
	proto_put_param_status(ob, "TimeZone", "UTC");
	proto_put_param_status(ob, "integer_datetimes", "on");
	proto_put_param_status(ob, "standard_conforming_strings", "on");
	proto_put_param_status(ob, "is_superuser", "off");
	proto_put_param_status(ob, "session_authorization", c->user);
	proto_put_param_status(ob, "application_name", app != NULL ? app : "");
	proto_put_backend_key(ob, c->cancel_pid, c->cancel_key);
	proto_put_ready(ob, 'I');
	client_set_state(c, CLIENT_IDLE);
	c->last_activity = ev_now(w->loop);
	if (cfg->log_connections)
		log_info("client %s: login %s/%s (admin console%s)", c->addr, c->dbname, c->user,
			 c->admin_may_change ? "" : ", SHOW only");
	if (conn_flush(&c->conn) == CONN_ERROR)
		client_close(w, c, "could not write to client");
}
