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
 */
#ifndef PGSLUICE_SESSION_H
#define PGSLUICE_SESSION_H

#include <stddef.h>

#include "worker.h"

/* c sends the simple Query sql (len bytes): note its session SETs. */
void session_note_query(struct client *c, const char *sql, size_t len);

/* The server answered c's request with an error: its SETs did not happen. */
void session_note_error(struct client *c);

/* c's request ended on s with ReadyForQuery status: apply or drop its SETs. */
void session_on_ready(struct client *c, struct server *s, char status);

/* c leaves: forget what it noted. */
void session_forget(struct client *c);

#endif
