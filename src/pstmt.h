/*
 * pstmt.h - named prepared statements under transaction and statement
 * pooling, where a client's next request may run on another server.
 *
 * A client's Parse of a name is recorded (prepared.h) and sent to the server
 * under the shared statement's own name (stmtreg.h); a later Bind or
 * Describe of that name is rewritten to it, after pgsluice prepares the
 * statement on the linked server if that server lacks it (stmtcache.h) and
 * swallows the ParseComplete nobody asked for. A Parse of a statement the
 * server already has, and every Close of a named statement, are answered by
 * pgsluice in the place the server's answer would have had (replyq.h).
 * Errors naming pgsluice's statement are given the client's name back.
 * Unnamed statements and portals pass through untouched.
 */
#ifndef PGSLUICE_PSTMT_H
#define PGSLUICE_PSTMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "worker.h"

/* What the server side should do with a server message after pstmt saw it. */
enum pstmt_verdict {
	PSTMT_PASS,     /* the usual path decides (forward, release, ...) */
	PSTMT_REPLACED, /* pgsluice wrote what the client gets: run the usual path, send nothing */
	PSTMT_SWALLOW,  /* the reply to pgsluice's own message: drop it */
	PSTMT_NEED_ALL, /* call again with the whole message */
};

/* c's statement set, made on first use (NULL when out of memory). */
struct prepared_set *pstmt_client_set(struct worker *w, struct client *c);

/*
 * One message of c's request, c linked to s, under transaction/statement
 * pooling (c->rename_statements). Returns CONN_FORWARD to pass it as is,
 * CONN_FORWARD_TAIL when pgsluice wrote the message's head itself,
 * CONN_CONSUMED / CONN_SKIP when pgsluice answered or replaced it,
 * CONN_NEED_ALL, or CONN_STOP while too many replies are owed (c is resumed
 * as they arrive).
 */
enum conn_action pstmt_on_client_message(struct worker *w, struct client *c, struct server *s,
					 const uint8_t *msg, uint32_t total, uint32_t avail);

/*
 * Sends bytes pgsluice answers c itself, after whatever s (c's server, may
 * be NULL) still owes c before them.
 */
void pstmt_client_answer(struct client *c, struct server *s, const uint8_t *msg, size_t len);

/* One message from s (linked, not answering pgsluice's own query). */
enum pstmt_verdict pstmt_on_server_message(struct worker *w, struct server *s,
					   const uint8_t *msg, uint32_t total, uint32_t avail);

/* Whether pstmt_replay can take the request data (len bytes of whole messages) at once. */
bool pstmt_replay_fits(const uint8_t *data, size_t len);

/*
 * Sends the request c sent before (a retried read, a batch's row; the
 * messages as c wrote them) to s, newly linked: each passes
 * pstmt_on_client_message as it did the first time, so a Bind of a named
 * statement is renamed, and prepared first when s lacks it. Returns false
 * when c is gone (out of memory).
 */
bool pstmt_replay(struct worker *w, struct client *c, struct server *s, const uint8_t *data,
		  size_t len);

/*
 * A Parse of c with no server linked (msg, its whole message; end, the end
 * of c's input so far): when it is a prepare on its own - Parse of a name
 * c does not use, then Sync - of a statement some server already accepted,
 * pgsluice answers it and its Sync (CONN_CONSUMED; c->sync_answered set),
 * so that a prepare never waits for a server. CONN_FORWARD otherwise.
 */
enum conn_action pstmt_parse_unlinked(struct worker *w, struct client *c, const uint8_t *msg,
				      uint32_t total, const uint8_t *end);

/*
 * The text of the statement a Bind (the first avail bytes of msg) names,
 * or NULL; *def receives its shared statement (for the router's cache).
 */
const char *pstmt_bound_text(struct client *c, const uint8_t *msg, uint32_t avail, size_t *len,
			     struct stmt_def **def);

/* s goes back to the pool or to another client: nothing is owed any more. */
void pstmt_server_unlinked(struct server *s);

/* s ran DISCARD ALL / DEALLOCATE ALL: it has no statement left. */
void pstmt_server_forgot(struct server *s);

/* Frees what s holds for statements. */
void pstmt_server_free(struct server *s);

#endif
