/*
 * session.c - session SETs that must follow a client from server to server
 * (see session.h), and the statements about session state that cannot
 * follow one. Only the proxy path calls in: once per simple Query a client
 * sends (checked) and once per such Query outside a transaction (SETs
 * noted), per ErrorResponse, per ReadyForQuery.
 */
#include "session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "log.h"
#include "params.h"
#include "prepared.h"

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

/* Whether the lower-case word appears in the text in any case: most queries need no lexing. */
/* sql's byte c in lower case (ASCII letters only). */
static inline char lower_ascii(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

/*
 * Whether sql holds one of words (lower case, starting with a letter), in any
 * case: one pass over the text; a position is compared with the words only when
 * one of them starts with its letter.
 * Runs on every Query, so it must cost little more than reading the text once.
 */
static bool mentions_any(const char *sql, size_t len, const char *const *words, size_t n_words)
{
	uint32_t starts = 0; /* bit c - 'a': a word starts with letter c */
	for (size_t k = 0; k < n_words; k++)
		starts |= 1u << (words[k][0] - 'a');
	for (size_t i = 0; i < len; i++) {
		char first = lower_ascii(sql[i]);
		if (first < 'a' || first > 'z' || !(starts & (1u << (first - 'a'))))
			continue;
		for (size_t k = 0; k < n_words; k++) {
			const char *w = words[k];
			if (w[0] != first)
				continue;
			size_t j = 1;
			while (w[j] != '\0' && i + j < len && lower_ascii(sql[i + j]) == w[j])
				j++;
			if (w[j] == '\0')
				return true;
		}
	}
	return false;
}

static bool mentions_set(const char *sql, size_t len)
{
	static const char *const words[] = {"set"};
	return mentions_any(sql, len, words, 1);
}

/*
 * Adds the SET or RESET that the statement stmt[0..n) is to *p (made on first
 * use); other statements add nothing. Returns false when the request cannot be
 * tracked: transaction control decides by itself what stays, too many SETs, or
 * no memory.
 */
static bool session_add_set(struct session_pending **p, const char *stmt, size_t n)
{
	struct classify_result r;
	classify_statement(stmt, n, NULL, &r);
	if (r.is_transaction_control)
		return false;
	if (r.kind != CLASSIFY_SET && r.kind != CLASSIFY_RESET)
		return true;
	struct session_set set;
	enum classify_set k = classify_session_set(stmt, n, set.name, set.value, sizeof(set.value));
	if (k == CLASSIFY_SET_NONE)
		return true;
	if (*p == NULL && (*p = calloc(1, sizeof(**p))) == NULL)
		return false;
	if ((*p)->n == SESSION_MAX_SETS)
		return false;
	set.to_default = k == CLASSIFY_SET_DEFAULT;
	(*p)->sets[(*p)->n++] = set;
	return true;
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
		if (!session_add_set(&p, sql + off, n)) {
			free(p);
			return;
		}
	}
	session_forget(c);
	c->session_pending = p;
}

void session_note_parse(struct client *c, const char *sql, size_t len)
{
	if (!mentions_set(sql, len))
		return;
	struct session_pending *p = c->session_pending;
	c->session_pending = NULL;
	if (!session_add_set(&p, sql, len)) {
		free(p);
		return;
	}
	c->session_pending = p;
}

void session_note_bind(struct client *c, struct stmt_def *def)
{
	if (def->sets == STMT_SETS_UNKNOWN)
		def->sets = mentions_set(def->text, def->text_len) ? STMT_SETS_MAYBE : STMT_SETS_NO;
	if (def->sets == STMT_SETS_MAYBE)
		session_note_parse(c, def->text, def->text_len);
}

void session_note_error(struct client *c)
{
	if (c->session_pending != NULL)
		c->session_pending->failed = true;
}

void session_keep_login_params(struct client *c)
{
	if (c->login_params != NULL || c->mode == POOL_SESSION)
		return;
	c->login_params = malloc(sizeof(*c->login_params));
	if (c->login_params == NULL) {
		log_warning("client %s: out of memory: DISCARD ALL will not restore its settings",
			    c->addr);
		return;
	}
	params_init(c->login_params);
	params_copy(c->login_params, &c->params);
}

void session_on_ready(struct client *c, struct server *s, char status)
{
	struct session_pending *p = c->session_pending;
	if (p == NULL || s == NULL)
		return;
	c->session_pending = NULL;
	if (status == 'I' && !p->failed)
		session_keep_login_params(c);
	for (int i = 0; status == 'I' && !p->failed && i < p->n; i++) {
		const struct session_set *set = &p->sets[i];
		if (params_is_reported(&c->params, set->name))
			continue;
		if (set->to_default) {
			const char *base = params_get(&s->startup, set->name);
			bool ok = params_remove(&c->params, set->name) &&
				  (base != NULL ? params_set(&s->params, set->name, base, false)
						: params_remove(&s->params, set->name));
			if (!ok)
				log_warning("client %s: RESET %s not tracked: out of memory", c->addr,
					    set->name);
		} else if (!params_set_sql(&c->params, set->name, set->value) ||
			   !params_set_sql(&s->params, set->name, set->value)) {
			log_warning("client %s: SET %s not tracked: too many or too long settings",
				    c->addr, set->name);
		}
	}
	free(p);
}

/* Words one of the checked statements cannot do without. */
static bool mentions_session_statement(const char *sql, size_t len)
{
	static const char *const words[] = {"deallocate", "discard", "prepare", "listen",
					    "temp",       "hold",    "advisory_lock"};
	return mentions_any(sql, len, words, sizeof(words) / sizeof(words[0]));
}

static const char *session_state_feature(enum classify_state st)
{
	switch (st) {
	case CLASSIFY_STATE_LISTEN:
		return "LISTEN";
	case CLASSIFY_STATE_ADVISORY_LOCK:
		return "session-level advisory locks";
	case CLASSIFY_STATE_TEMP_OBJECT:
		return "temporary tables, sequences and views";
	case CLASSIFY_STATE_HOLD_CURSOR:
		return "cursors WITH HOLD";
	case CLASSIFY_STATE_NONE:
		break;
	}
	return NULL;
}

static void session_refuse(struct session_check *out, const char *mode, const char *feature,
			   const char *advice)
{
	if (out->verdict == SESSION_REFUSE)
		return; /* the first refusal is the one reported */
	out->verdict = SESSION_REFUSE;
	out->feature = feature;
	snprintf(out->message, sizeof(out->message), "%s %s under %s pooling: %s", feature,
		 strcmp(feature, "DEALLOCATE") == 0 ? "cannot be combined with other statements"
						    : "is not supported",
		 mode, advice);
}

void session_check_query(const struct client *c, bool pin, const char *sql, size_t len,
			 struct session_check *out)
{
	memset(out, 0, sizeof(*out));
	if (!mentions_session_statement(sql, len))
		return;
	bool check_state = c->mode != POOL_SESSION, statements = c->rename_statements;
	const char *mode = c->mode == POOL_STATEMENT ? "statement" : "transaction";
	bool in_block = c->in_transaction, deallocate = false, discard_all = false;
	enum classify_dealloc dealloc = CLASSIFY_DEALLOC_NONE;
	unsigned n_statements = 0;
	size_t pos = 0, off, n;
	while (classify_next_statement(sql, len, &pos, &off, &n)) {
		n_statements++;
		struct classify_result r;
		classify_statement(sql + off, n, NULL, &r);
		switch (r.kind) {
		case CLASSIFY_BEGIN:
		case CLASSIFY_START:
			in_block = true;
			break;
		case CLASSIFY_COMMIT:
		case CLASSIFY_ROLLBACK:
		case CLASSIFY_PREPARE_TRANSACTION:
			in_block = false;
			break;
		case CLASSIFY_DEALLOCATE:
			if (!statements)
				break;
			dealloc = classify_deallocate(sql + off, n, out->name);
			/* Another statement's name (an SQL PREPARE's) is the server's business. */
			deallocate = deallocate || dealloc == CLASSIFY_DEALLOC_ALL ||
				     (dealloc == CLASSIFY_DEALLOC_NAME && c->prepared != NULL &&
				      prepared_lookup(c->prepared, out->name) != NULL);
			break;
		case CLASSIFY_DISCARD:
			discard_all = discard_all ||
				      (statements && classify_is_discard_all(sql + off, n));
			break;
		case CLASSIFY_PREPARE:
			if (!check_state)
				break;
			if (in_block && out->verdict == SESSION_PASS)
				out->verdict = SESSION_MARK_SERVER;
			else if (!in_block)
				session_refuse(out, mode, "SQL PREPARE outside a transaction block",
					       "use protocol-level prepared statements (PQprepare, "
					       "a driver's prepared statements) or PREPARE inside "
					       "a transaction");
			break;
		default:
			break;
		}
		const char *feature = check_state ? session_state_feature(classify_session_state(
							    sql + off, n))
						  : NULL;
		if (feature != NULL && pin && out->verdict != SESSION_REFUSE) {
			out->verdict = SESSION_PIN;
			out->feature = feature;
		} else if (feature != NULL) {
			session_refuse(out, mode, feature,
				       "the next transaction may run on another server connection "
				       "(pin_on_session_state = on keeps the connection)");
		}
	}
	if (deallocate && n_statements > 1)
		session_refuse(out, mode, "DEALLOCATE",
			       "send it as a query of its own (or use the protocol's Close)");
	if (out->verdict == SESSION_REFUSE || n_statements != 1)
		return;
	if (dealloc == CLASSIFY_DEALLOC_NAME)
		out->verdict = SESSION_DEALLOCATE;
	else if (dealloc == CLASSIFY_DEALLOC_ALL)
		out->verdict = SESSION_DEALLOCATE_ALL;
	else if (discard_all)
		out->verdict = SESSION_DISCARD_ALL;
}
