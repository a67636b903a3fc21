/*
 * session.c - session SETs that must follow a client from server to server
 * (see session.h). Only the proxy path calls in: once per simple Query a
 * client sends outside a transaction, per ErrorResponse, per ReadyForQuery.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "log.h"
#include "params.h"

/* SETs one request may carry that are tracked; a request with more tracks none. */
#define SESSION_MAX_SETS 8

struct session_set {
	char name[CLASSIFY_NAME_MAX];
	char value[PARAMS_MAX_VALUE];
	bool to_default;
};

struct session_pending {
	struct session_set sets[SESSION_MAX_SETS];
	int n;
	bool failed;
};

void session_forget(struct client *c)
{
	free(c->session_pending);
	c->session_pending = NULL;
}

/* Whether "set" appears in the text in any case: most queries need no lexing at all. */
static bool mentions_set(const char *sql, size_t len)
{
	for (size_t i = 0; i + 3 <= len; i++)
		if ((sql[i] | 0x20) == 's' && (sql[i + 1] | 0x20) == 'e' && (sql[i + 2] | 0x20) == 't')
			return true;
	return false;
}

void session_note_query(struct client *c, const char *sql, size_t len)
{
	size_t pos = 0, off, n;
	struct session_pending *p = NULL;
	if (!mentions_set(sql, len)) {
		session_forget(c);
		return;
	}
	while (classify_next_statement(sql, len, &pos, &off, &n)) {
		struct classify_result r;
		classify_statement(sql + off, n, NULL, &r);
		/* A transaction in the string decides by itself what stays: not tracked. */
		if (r.is_transaction_control) {
			free(p);
			return;
		}
		if (r.kind != CLASSIFY_SET && r.kind != CLASSIFY_RESET)
			continue;
		struct session_set set;
		enum classify_set k =
			classify_session_set(sql + off, n, set.name, set.value, sizeof(set.value));
		if (k == CLASSIFY_SET_NONE)
			continue;
		if (p == NULL && (p = calloc(1, sizeof(*p))) == NULL)
			return;
		if (p->n == SESSION_MAX_SETS) {
			free(p);
			return;
		}
		set.to_default = k == CLASSIFY_SET_DEFAULT;
		p->sets[p->n++] = set;
	}
	session_forget(c);
	c->session_pending = p;
}

void session_note_error(struct client *c)
{
	if (c->session_pending != NULL)
		c->session_pending->failed = true;
}

void session_on_ready(struct client *c, struct server *s, char status)
{
	struct session_pending *p = c->session_pending;
	if (p == NULL || s == NULL)
		return;
	c->session_pending = NULL;
	for (int i = 0; status == 'I' && !p->failed && i < p->n; i++) {
		const struct session_set *set = &p->sets[i];
		if (params_is_reported(&c->params, set->name))
			continue;
		if (set->to_default) {
			params_remove(&c->params, set->name);
			const char *base = params_get(&s->startup, set->name);
			if (base != NULL)
				params_set(&s->params, set->name, base, false);
			else
				params_remove(&s->params, set->name);
		} else if (!params_set_sql(&c->params, set->name, set->value) ||
			   !params_set_sql(&s->params, set->name, set->value)) {
			log_warning("client %s: SET %s not tracked: too many or too long settings",
				    c->addr, set->name);
		}
	}
	free(p);
}
