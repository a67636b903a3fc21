/*
 * classify.h - the SQL lexer and what the pooler learns from statement text.
 *
 * The router asks whether the first statement of a transaction is provably
 * read-only (classify_statement), the slow-query log wants a fingerprint
 * and a redacted text (classify_fingerprint, classify_redact), and insert
 * batching wants to know whether a statement is one plain single-row INSERT
 * (classify_insert_shape, classify_shift_params). Transaction pooling asks
 * about DEALLOCATE, DISCARD ALL and statements that leave session state
 * behind (classify_deallocate, classify_is_discard_all,
 * classify_session_state). All of it is pure: no I/O,
 * no allocation, one pass over the caller's buffer, results in caller-owned
 * fixed-size structs. The text is PostgreSQL SQL with
 * standard_conforming_strings on.
 */
#ifndef PGSLUICE_CLASSIFY_H
#define PGSLUICE_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest identifier kept, as in PostgreSQL (NAMEDATALEN - 1), plus a NUL. */
#define CLASSIFY_NAME_MAX 64
/* Room for "reason detail" in struct classify_result.reason_text. */
#define CLASSIFY_REASON_MAX (48 + CLASSIFY_NAME_MAX)
/* Deepest nesting of parentheses and brackets the classifier follows. */
#define CLASSIFY_MAX_DEPTH 64
/* Highest $n whose single use classify_insert_shape can verify. */
#define CLASSIFY_MAX_CHECKED_PARAMS 1664

/* The kind of a statement, from its leading keyword(s). */
enum classify_kind {
	CLASSIFY_EMPTY, /* nothing but whitespace, comments and ';' */
	CLASSIFY_SELECT,
	CLASSIFY_INSERT,
	CLASSIFY_UPDATE,
	CLASSIFY_DELETE,
	CLASSIFY_MERGE,
	CLASSIFY_WITH,
	CLASSIFY_VALUES,
	CLASSIFY_TABLE,
	CLASSIFY_SHOW,
	CLASSIFY_EXPLAIN,
	CLASSIFY_BEGIN,
	CLASSIFY_START,    /* START TRANSACTION */
	CLASSIFY_COMMIT,   /* also END; not COMMIT PREPARED (that is OTHER) */
	CLASSIFY_ROLLBACK, /* also ABORT and ROLLBACK TO; not ROLLBACK PREPARED */
	CLASSIFY_SAVEPOINT,
	CLASSIFY_RELEASE,
	CLASSIFY_PREPARE_TRANSACTION,
	CLASSIFY_SET,
	CLASSIFY_RESET,
	CLASSIFY_DISCARD,
	CLASSIFY_DEALLOCATE,
	CLASSIFY_PREPARE,
	CLASSIFY_EXECUTE,
	CLASSIFY_LISTEN,
	CLASSIFY_UNLISTEN,
	CLASSIFY_NOTIFY,
	CLASSIFY_COPY,
	CLASSIFY_DECLARE,
	CLASSIFY_FETCH,
	CLASSIFY_CLOSE,
	CLASSIFY_CALL,
	CLASSIFY_DO,
	CLASSIFY_OTHER, /* any other leading keyword, or text that is not a statement */
};

/*
 * A routing hint: a comment (block or line) that holds exactly "pgsluice: primary"
 * or "pgsluice: replica", in any case and spacing, anywhere in the text.
 */
enum classify_hint {
	CLASSIFY_HINT_NONE,
	CLASSIFY_HINT_PRIMARY, /* wins when both hints appear */
	CLASSIFY_HINT_REPLICA,
};

/*
 * What the classifier may be told by the configuration. Names are
 * lower-case; an unquoted name in the SQL matches case-insensitively, a
 * quoted one exactly. An entry without a dot matches the last part of a
 * qualified call (pg_catalog.nextval matches "nextval"); an entry with a dot
 * matches the qualified name "schema.func" only. The arrays stay owned by
 * the caller and must outlive every call that uses them.
 */
struct classify_options {
	const char *const *write_functions; /* calls that make a statement a write */
	size_t n_write_functions;
	const char *const *read_only_functions; /* user functions known to be read-only */
	size_t n_read_only_functions;
	bool unknown_functions_readonly; /* route_unknown_functions = replica */
};

/*
 * The classification of a text that may hold several statements. kind and
 * the flags describe the first non-empty statement; read_only holds for the
 * whole text.
 */
struct classify_result {
	bool read_only;              /* every statement provably read-only */
	enum classify_hint hint;     /* a routing hint comment anywhere in the text */
	enum classify_kind kind;     /* of the first non-empty statement */
	unsigned statement_count;    /* non-empty statements */
	bool begin_read_only;        /* BEGIN/START TRANSACTION ... READ ONLY (see below) */
	bool set_local;              /* SET LOCAL ... */
	bool is_transaction_control; /* BEGIN, START, COMMIT, ROLLBACK, SAVEPOINT, RELEASE,
				      * PREPARE TRANSACTION */
	bool lex_error;              /* unterminated literal or comment, stray character */
	/*
	 * Why: a static string that stays valid forever (the router keeps it),
	 * e.g. "read-only SELECT", "statement INSERT", "FOR UPDATE",
	 * "SELECT INTO", "write function", "unknown function".
	 */
	const char *reason;
	char detail[CLASSIFY_NAME_MAX];        /* the deciding name or keyword, or "" */
	char reason_text[CLASSIFY_REASON_MAX]; /* reason and detail, e.g. "write function nextval" */
};

/*
 * Classifies the len bytes at sql for routing. opts may be NULL (no
 * configured functions, unknown functions are writes). A statement is
 * read-only only when it is SELECT, VALUES, TABLE, SHOW, WITH without a
 * data-modifying part, or EXPLAIN (EXPLAIN ANALYZE only of a read-only
 * statement), takes no row locks (FOR UPDATE/SHARE...), is no SELECT INTO,
 * and calls no function on a write list nor one that is unknown.
 * begin_read_only is set only when the first statement is a well-formed
 * BEGIN/START TRANSACTION ... READ ONLY and every later statement in the
 * text is read-only, SAVEPOINT or RELEASE, or a final COMMIT/ROLLBACK.
 * Always fills *out. Returns false when the lexer was unsure of the text
 * (out->lex_error; out->read_only is then false), true otherwise.
 */
bool classify_statement(const char *sql, size_t len, const struct classify_options *opts,
			struct classify_result *out);

/*
 * Finds the next non-empty statement of the len bytes at sql, starting at
 * *pos (0 for the first): *off and *stmt_len cover the text between the
 * ';' before it and its own ';', comments included, blanks around it
 * trimmed. Moves *pos past it.
 * Returns false when no statement is left. After a lexer error the rest of
 * the text is one statement. Splits where PostgreSQL's simple-query
 * protocol answers each statement with its own CommandComplete.
 */
bool classify_next_statement(const char *sql, size_t len, size_t *pos, size_t *off,
			     size_t *stmt_len);

/* What classify_session_set found. */
enum classify_set {
	CLASSIFY_SET_NONE,    /* not a session SET/RESET of one parameter */
	CLASSIFY_SET_VALUE,   /* SET [SESSION] name {= | TO} value */
	CLASSIFY_SET_DEFAULT, /* SET name TO DEFAULT, RESET name */
};

/*
 * Reads one statement (as classify_next_statement gives it) that sets a
 * session parameter. name (CLASSIFY_NAME_MAX bytes) receives the
 * parameter as the server folds it; value (value_cap bytes) the value's
 * tokens as written, one blank apart, without comments, ready to follow
 * "SET name TO ". SET LOCAL, SET ROLE, SET SESSION AUTHORIZATION, SET TIME
 * ZONE, SET SCHEMA, SET NAMES, RESET ALL and anything else are NONE.
 */
enum classify_set classify_session_set(const char *sql, size_t len, char *name, char *value,
				       size_t value_cap);

/* What classify_deallocate found. */
enum classify_dealloc {
	CLASSIFY_DEALLOC_NONE, /* not a well-formed DEALLOCATE */
	CLASSIFY_DEALLOC_NAME, /* DEALLOCATE [PREPARE] name */
	CLASSIFY_DEALLOC_ALL,  /* DEALLOCATE [PREPARE] ALL */
};

/*
 * Reads one statement (as classify_next_statement gives it). On
 * CLASSIFY_DEALLOC_NAME, name (CLASSIFY_NAME_MAX bytes) receives the
 * statement name as the server folds it (unquoted: lower-case).
 */
enum classify_dealloc classify_deallocate(const char *sql, size_t len, char *name);

/* True when the statement (as classify_next_statement gives it) is exactly DISCARD ALL. */
bool classify_is_discard_all(const char *sql, size_t len);

/* Server session state a statement may leave behind after its transaction. */
enum classify_state {
	CLASSIFY_STATE_NONE,
	CLASSIFY_STATE_LISTEN,        /* LISTEN channel */
	CLASSIFY_STATE_ADVISORY_LOCK, /* a call of pg_[try_]advisory_lock[_shared] */
	CLASSIFY_STATE_TEMP_OBJECT,   /* CREATE [OR REPLACE] [LOCAL|GLOBAL] TEMP|TEMPORARY ...,
				       * SELECT ... INTO TEMP|TEMPORARY */
	CLASSIFY_STATE_HOLD_CURSOR,   /* DECLARE ... WITH HOLD */
};

/*
 * Reads one statement (as classify_next_statement gives it) for session
 * state that outlives its transaction. The transaction-level advisory
 * locks (pg_advisory_xact_lock...) are NONE; so is what a function body,
 * a DO block or EXECUTE creates (the text there is a string).
 */
enum classify_state classify_session_state(const char *sql, size_t len);

/* The upper-case name of a kind ("SELECT", "PREPARE TRANSACTION", ...). */
const char *classify_kind_name(enum classify_kind kind);

/*
 * Normalizes sql and hashes the result (FNV-1a, 64 bits). Normalization:
 * comments dropped; every literal (numbers, strings of all kinds,
 * dollar-quoted strings, $n parameters, a literal's leading unary minus)
 * becomes ?; TRUE, FALSE and NULL stay; IN (...) and ARRAY[...] holding
 * only literals become in (?) and array[?]; keywords and unquoted
 * identifiers are lower-cased, quoted identifiers kept with their quotes;
 * tokens are separated by one space except after ( [ . :: and before
 * ) ] , . :: ; and except ( after a name (a call); empty statements and a
 * trailing ; are dropped. So "SELECT * FROM t WHERE id = 42" and
 * "select *  from t where id=7" both give "select * from t where id = ?".
 * norm (norm_cap bytes, may be NULL when norm_cap is 0) receives the
 * NUL-terminated normalized text, cut at a UTF-8 character boundary when it
 * does not fit; *norm_len (if norm_len is not NULL) receives the length of
 * the whole normalized text, so norm was cut when *norm_len >= norm_cap.
 * The hash always covers the whole normalized text.
 */
uint64_t classify_fingerprint(const char *sql, size_t len, char *norm, size_t norm_cap,
			      size_t *norm_len);

/*
 * Copies sql into out (cap bytes) with every literal - numbers, strings of
 * all kinds, dollar-quoted strings - replaced by ?, for logs. Whitespace,
 * identifiers, $n parameters (they hold no value) and comments are kept:
 * comments carry routing hints and application tags that make a slow-query
 * record useful, and values live in literals, not comments. After a lexer
 * error (say an unterminated string) the rest of the text becomes one ?, so
 * nothing unlexed leaks. out is NUL-terminated when cap > 0 and cut at a
 * UTF-8 character boundary when the text does not fit. Returns the number of
 * bytes written before the NUL.
 */
size_t classify_redact(const char *sql, size_t len, char *out, size_t cap);

/*
 * A single-row INSERT, as offsets and lengths into the caller's text (no
 * copies). Lengths are 0 for absent parts.
 */
struct insert_shape {
	size_t table_off, table_len;       /* "s"."t" as written */
	size_t columns_off, columns_len;   /* "(a, b)" with the parentheses */
	size_t values_off, values_len;     /* the inside of VALUES ( ... ) */
	size_t conflict_off, conflict_len; /* "ON CONFLICT ... DO NOTHING" */
	unsigned n_values;                 /* top-level expressions in the row */
	unsigned max_param;                /* highest $n used, 0 for none */
	bool params_exact;                 /* $1..$max_param each used exactly once */
	uint64_t batch_key;                /* hash of the normalized table, columns,
					    * value count and conflict clause */
};

/*
 * True when sql is exactly one statement of the form
 *   INSERT INTO table [(columns)] VALUES (one row)
 *       [ON CONFLICT [(target) [WHERE ...] | ON CONSTRAINT name] DO NOTHING] [;]
 * with nothing after it but whitespace and comments: no WITH, alias,
 * OVERRIDING, DEFAULT VALUES, subquery, second row, DO UPDATE or RETURNING.
 * Function calls, casts and DEFAULT inside the row are fine. The batch key
 * treats case of unquoted names and whitespace as insignificant, so
 * "INSERT INTO T (a,b) VALUES (1,2)" and "insert into t(a, b) values (3,4)"
 * share it. Fills *out on success; returns false (out zeroed) otherwise.
 */
bool classify_insert_shape(const char *sql, size_t len, struct insert_shape *out);

/*
 * Copies text (len bytes, e.g. a VALUES row from classify_insert_shape)
 * into out with every parameter $n renumbered to $(n + shift); strings,
 * quoted names and comments are copied untouched. out receives cap bytes at
 * most, NUL-terminated; *out_len the bytes before the NUL. Returns false
 * when out is too small, a parameter would pass 65535, or the text does
 * not lex.
 */
bool classify_shift_params(const char *text, size_t len, unsigned shift, char *out, size_t cap,
			   size_t *out_len);

#endif
