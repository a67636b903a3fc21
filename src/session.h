/*
 * session.h - session settings a client changes with SET under transaction
 * and statement pooling.
 *
 * "SET search_path = x" in autocommit changes the server the client
 * happens to use; its next transaction may run on another one. So each
 * session-level SET (and RESET / SET ... TO DEFAULT) of a parameter the
 * server does not report is noted when the client sends it and applied to
 * the client's wanted settings (and its server's known ones) once the
 * request ends outside a transaction without an error; linking then
 * replays it on any other server (params_sync_sql). Reported parameters
 * need nothing: their ParameterStatus already updates both sides.
 *
 * session_check_query looks at the same Queries, and at Parses, for
 * statements about state that cannot follow a client
 * (doc/session-state.md): DEALLOCATE and DISCARD
 * ALL act on what pgsluice keeps for the client, SQL PREPARE outside a
 * transaction block and LISTEN, session advisory locks, temporary objects
 * and WITH HOLD cursors are refused or pin the client to its server.
 */
#ifndef PGSLUICE_SESSION_H
#define PGSLUICE_SESSION_H

#include <stddef.h>

#include "classify.h"
#include "worker.h"

/* c sends the simple Query sql (len bytes): note its session SETs. */
void session_note_query(struct client *c, const char *sql, size_t len);

/*
 * c sends Parse of the unnamed statement sql (len bytes) outside a transaction,
 * which its request then executes (drivers send Parse, Bind and Execute
 * together): its SET joins the request's others, applied at its ReadyForQuery.
 */
void session_note_parse(struct client *c, const char *sql, size_t len);

/*
 * c sends Bind of the named statement def outside a transaction: as
 * session_note_parse for its text, which is scanned once per statement.
 */
void session_note_bind(struct client *c, struct stmt_def *def);

/* The server answered c's request with an error: its SETs did not happen. */
void session_note_error(struct client *c);

/*
 * Keeps c's settings as they were after login, for DISCARD ALL, before the first
 * change (transaction and statement pooling only): most clients never change one.
 */
void session_keep_login_params(struct client *c);

/* c's request ended on s with ReadyForQuery status: apply or drop its SETs. */
void session_on_ready(struct client *c, struct server *s, char status);

/* What a Query (or a Parse) means for session state under transaction/statement pooling. */
enum session_verdict {
	SESSION_PASS,           /* nothing to do: it goes to the server as usual */
	SESSION_PIN,            /* it goes to the server, which the client keeps from now on */
	SESSION_MARK_SERVER,    /* it goes to the server and leaves it changed for good
				 * (an SQL PREPARE in a transaction block) */
	SESSION_REFUSE,         /* answer with ERROR 0A000 and message */
	SESSION_DEALLOCATE,     /* a lone DEALLOCATE [PREPARE] name */
	SESSION_DEALLOCATE_ALL, /* a lone DEALLOCATE [PREPARE] ALL */
	SESSION_DISCARD_ALL,    /* a lone DISCARD ALL */
};

/* What session_check_query found. */
struct session_check {
	enum session_verdict verdict;
	char name[CLASSIFY_NAME_MAX]; /* SESSION_DEALLOCATE: the statement's name */
	const char *feature;          /* SESSION_PIN, SESSION_REFUSE: what it is about */
	char message[256];            /* SESSION_REFUSE: the error message */
};

/*
 * c (transaction/statement pooling, or renamed statements) sends the
 * simple Query sql (len bytes). The statement checks apply while c is not
 * pinned (c->mode is not POOL_SESSION), the DEALLOCATE / DISCARD ALL ones
 * while c->rename_statements; pin is pin_on_session_state. Fills *out.
 */
void session_check_query(const struct client *c, bool pin, const char *sql, size_t len,
			 struct session_check *out);

/* c leaves: forget what it noted. */
void session_forget(struct client *c);

#endif
