/*
 * classify.c - the SQL lexer and the decisions built on it (classify.h).
 *
 * lex_next() turns PostgreSQL SQL into tokens without copying: whitespace
 * and comments (nested, possibly holding a routing hint) are skipped;
 * strings of every kind, dollar quotes, quoted names, numbers, parameters,
 * operators and punctuation come out as offsets into the caller's text.
 * Routing runs a small per-statement state machine over those tokens;
 * fingerprints, redaction and insert shapes are other walks over the same
 * tokens. Every walk is one pass with bounded look-ahead and no allocation.
 */
#include "classify.h"

#include <ctype.h>
#include <string.h>

/* Longest dollar-quote tag accepted; it keeps the closing-tag search linear. */
#define DOLLAR_TAG_MAX 63
/* PostgreSQL's limit on bind parameters. */
#define PARAM_MAX 65535u

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

/* ---------- characters ---------- */

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Bytes >= 0x80 belong to identifiers, as in PostgreSQL (multibyte letters). */
static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

/* Dollar-quote tags, unlike identifiers, cannot hold '$'. */
static bool is_tag_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c);
}

static bool is_op_char(unsigned char c)
{
	switch (c) {
	case '+': case '-': case '*': case '/': case '<': case '>': case '=': case '~':
	case '!': case '@': case '#': case '%': case '^': case '&': case '|': case '`':
	case '?':
		return true;
	default:
		return false;
	}
}

static char lower_ascii(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True when the n bytes at p equal the lower-case word w, ignoring ASCII case. */
static bool eq_ci(const char *p, size_t n, const char *w)
{
	size_t i = 0;
	for (; i < n; i++)
		if (w[i] == '\0' || lower_ascii(p[i]) != w[i])
			return false;
	return w[i] == '\0';
}

/* ---------- the lexer ---------- */

enum tok_type {
	TOK_EOF,
	TOK_IDENT,  /* unquoted identifier or keyword */
	TOK_QIDENT, /* "quoted" or U&"quoted" identifier */
	TOK_STRING, /* '', E'', B'', X'', N'', U&'' and dollar-quoted strings */
	TOK_NUMBER,
	TOK_PARAM, /* $n */
	TOK_OP,    /* a run of operator characters */
	TOK_PUNCT, /* one of ( ) [ ] , ; . : */
	TOK_CAST,  /* :: */
	TOK_ERROR, /* lexer->error says why; the text from off on is not lexed */
};

struct token {
	enum tok_type type;
	size_t off, len;
};

struct lexer {
	const char *s;
	size_t len, pos;
	bool hint_primary, hint_replica;
	const char *error; /* static, once a TOK_ERROR was returned */
};

static void lex_init(struct lexer *lx, const char *s, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->s = s;
	lx->len = len;
}

/* Matches the lower-case word w at p[*i] (n bytes in all) and moves past it. */
static bool hint_word(const char *p, size_t n, size_t *i, const char *w)
{
	size_t wl = strlen(w);
	if (n - *i < wl || !eq_ci(p + *i, wl, w))
		return false;
	*i += wl;
	return true;
}

static size_t hint_spaces(const char *p, size_t i, size_t n)
{
	while (i < n && is_space((unsigned char)p[i]))
		i++;
	return i;
}

/* Records a routing hint when the comment body p is exactly "pgsluice: primary|replica". */
static void lex_check_hint(struct lexer *lx, const char *p, size_t n)
{
	size_t i = hint_spaces(p, 0, n);
	if (!hint_word(p, n, &i, "pgsluice"))
		return;
	i = hint_spaces(p, i, n);
	if (i >= n || p[i] != ':')
		return;
	i = hint_spaces(p, i + 1, n);
	bool primary = hint_word(p, n, &i, "primary");
	if (!primary && !hint_word(p, n, &i, "replica"))
		return;
	if (hint_spaces(p, i, n) != n)
		return;
	if (primary)
		lx->hint_primary = true;
	else
		lx->hint_replica = true;
}

/* Skips whitespace and comments; false (lx->error set) on an unterminated comment. */
static bool lex_skip(struct lexer *lx)
{
	const char *s = lx->s;
	size_t n = lx->len, i = lx->pos;
	for (;;) {
		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
			size_t start = i + 2;
			while (i < n && s[i] != '\n' && s[i] != '\r')
				i++;
			lex_check_hint(lx, s + start, i - start);
		} else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
			size_t start = i, depth = 1;
			i += 2;
			while (i < n && depth > 0) {
				if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else {
					i++;
				}
			}
			if (depth > 0) {
				lx->pos = start;
				lx->error = "unterminated comment";
				return false;
			}
			lex_check_hint(lx, s + start + 2, i - start - 4);
		} else {
			break;
		}
	}
	lx->pos = i;
	return true;
}

/* A string with '' doubling and no backslash escapes; q is at the opening quote. */
static size_t lex_plain_string(struct lexer *lx, size_t q)
{
	const char *s = lx->s;
	size_t n = lx->len, i = q + 1;
	for (;;) {
		const char *p = memchr(s + i, '\'', n - i);
		if (p == NULL) {
			lx->error = "unterminated quoted string";
			return 0;
		}
		i = (size_t)(p - s) + 1;
		if (i < n && s[i] == '\'') {
			i++;
			continue;
		}
		return i;
	}
}

/* An E'' string: a backslash escapes the next byte, '' is a quote too. */
static size_t lex_escape_string(struct lexer *lx, size_t q)
{
	const char *s = lx->s;
	size_t n = lx->len, i = q + 1;
	while (i < n) {
		if (s[i] == '\\') {
			i += 2;
		} else if (s[i] == '\'') {
			if (i + 1 < n && s[i + 1] == '\'')
				i += 2;
			else
				return i + 1;
		} else {
			i++;
		}
	}
	lx->error = "unterminated quoted string";
	return 0;
}

static size_t lex_quoted_ident(struct lexer *lx, size_t q)
{
	const char *s = lx->s;
	size_t n = lx->len, i = q + 1;
	for (;;) {
		const char *p = memchr(s + i, '"', n - i);
		if (p == NULL) {
			lx->error = "unterminated quoted identifier";
			return 0;
		}
		i = (size_t)(p - s) + 1;
		if (i < n && s[i] == '"') {
			i++;
			continue;
		}
		break;
	}
	if (i - q == 2) {
		lx->error = "zero-length quoted identifier";
		return 0;
	}
	return i;
}

/* $n, or a dollar-quoted string $tag$...$tag$; i is at the '$'. */
static size_t lex_dollar(struct lexer *lx, size_t i, enum tok_type *type)
{
	const char *s = lx->s;
	size_t n = lx->len, j = i + 1;
	if (j < n && is_digit((unsigned char)s[j])) {
		while (j < n && is_digit((unsigned char)s[j]))
			j++;
		*type = TOK_PARAM;
		return j;
	}
	if (j < n && s[j] != '$') {
		if (!is_ident_start((unsigned char)s[j])) {
			lx->error = "unexpected $";
			return 0;
		}
		while (j < n && j - i <= DOLLAR_TAG_MAX && is_tag_cont((unsigned char)s[j]))
			j++;
	}
	if (j >= n || s[j] != '$') {
		lx->error = "unexpected $";
		return 0;
	}
	size_t open = j + 1 - i; /* the whole "$tag$" */
	size_t k = j + 1;
	for (;;) {
		const char *p = memchr(s + k, '$', n - k);
		if (p == NULL) {
			lx->error = "unterminated dollar-quoted string";
			return 0;
		}
		k = (size_t)(p - s);
		if (n - k >= open && memcmp(s + k, s + i, open) == 0) {
			*type = TOK_STRING;
			return k + open;
		}
		k++;
	}
}

/* Digits with PostgreSQL 16's single '_' separators ("1_000"). */
static size_t lex_digits(const char *s, size_t n, size_t i, bool (*digit)(unsigned char))
{
	while (i < n && (digit((unsigned char)s[i]) ||
			 (s[i] == '_' && i + 1 < n && digit((unsigned char)s[i + 1]))))
		i++;
	return i;
}

static bool is_hex_digit(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_octal_digit(unsigned char c)
{
	return c >= '0' && c <= '7';
}

static bool is_binary_digit(unsigned char c)
{
	return c == '0' || c == '1';
}

static size_t lex_number(const char *s, size_t n, size_t i)
{
	/* 0x1F, 0o17, 0b101: integers in other bases (PostgreSQL 16). */
	if (s[i] == '0' && i + 2 < n) {
		char base = lower_ascii(s[i + 1]);
		bool (*digit)(unsigned char) = base == 'x'   ? is_hex_digit
					       : base == 'o' ? is_octal_digit
					       : base == 'b' ? is_binary_digit
							     : NULL;
		if (digit && digit((unsigned char)s[i + 2]))
			return lex_digits(s, n, i + 2, digit);
	}
	i = lex_digits(s, n, i, is_digit);
	/* "1..2" keeps its dots for the parser, as PostgreSQL's lexer does. */
	if (i < n && s[i] == '.' && !(i + 1 < n && s[i + 1] == '.'))
		i = lex_digits(s, n, i + 1, is_digit);
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && is_digit((unsigned char)s[j]))
			i = lex_digits(s, n, j, is_digit);
	}
	return i;
}

/*
 * An operator: the longest run of operator characters that does not start
 * a comment, then, as in PostgreSQL, without trailing + and - unless it
 * holds one of ~ ! @ # % ^ & | ` ? (so "=-1" is "=" and "-1").
 */
static size_t lex_operator(const char *s, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && is_op_char((unsigned char)s[j])) {
		if (j > i && j + 1 < n &&
		    ((s[j] == '-' && s[j + 1] == '-') || (s[j] == '/' && s[j + 1] == '*')))
			break;
		j++;
	}
	size_t len = j - i;
	if (len > 1) {
		bool keeps_sign = false;
		for (size_t k = i; k < j; k++)
			if (strchr("~!@#%^&|`?", s[k]) != NULL)
				keeps_sign = true;
		while (!keeps_sign && len > 1 && (s[i + len - 1] == '+' || s[i + len - 1] == '-'))
			len--;
	}
	return i + len;
}

/* The next token; after an error every call returns TOK_ERROR again. */
static enum tok_type lex_next(struct lexer *lx, struct token *t)
{
	if (lx->error == NULL)
		lex_skip(lx);
	const char *s = lx->s;
	size_t n = lx->len, i = lx->pos, end = 0;
	t->off = i;
	t->len = 0;
	if (lx->error != NULL) {
		t->len = n - i;
		return t->type = TOK_ERROR;
	}
	if (i >= n)
		return t->type = TOK_EOF;
	unsigned char c = (unsigned char)s[i];
	char l = lower_ascii((char)c);
	char c1 = i + 1 < n ? s[i + 1] : '\0';
	char c2 = i + 2 < n ? s[i + 2] : '\0';
	enum tok_type type = TOK_STRING;
	if (l == 'e' && c1 == '\'') {
		end = lex_escape_string(lx, i + 1);
	} else if ((l == 'b' || l == 'x' || l == 'n') && c1 == '\'') {
		end = lex_plain_string(lx, i + 1);
	} else if (l == 'u' && c1 == '&' && c2 == '\'') {
		end = lex_plain_string(lx, i + 2);
	} else if (l == 'u' && c1 == '&' && c2 == '"') {
		type = TOK_QIDENT;
		end = lex_quoted_ident(lx, i + 2);
	} else if (is_ident_start(c)) {
		type = TOK_IDENT;
		end = i + 1;
		while (end < n && is_ident_cont((unsigned char)s[end]))
			end++;
	} else if (c == '\'') {
		end = lex_plain_string(lx, i);
	} else if (c == '"') {
		type = TOK_QIDENT;
		end = lex_quoted_ident(lx, i);
	} else if (is_digit(c) || (c == '.' && is_digit((unsigned char)c1))) {
		type = TOK_NUMBER;
		end = lex_number(s, n, i);
	} else if (c == '$') {
		end = lex_dollar(lx, i, &type);
	} else if (is_op_char(c)) {
		type = TOK_OP;
		end = lex_operator(s, n, i);
	} else if (c == ':' && c1 == ':') {
		type = TOK_CAST;
		end = i + 2;
	} else if (c != '\0' && strchr("()[],;.:", (char)c) != NULL) {
		type = TOK_PUNCT;
		end = i + 1;
	} else {
		lx->error = "unexpected character";
	}
	if (lx->error != NULL) {
		t->len = n - i;
		return t->type = TOK_ERROR;
	}
	lx->pos = end;
	t->len = end - i;
	return t->type = type;
}

static bool tok_punct(const struct lexer *lx, const struct token *t, char c)
{
	return t->type == TOK_PUNCT && lx->s[t->off] == c;
}

static bool tok_word(const struct lexer *lx, const struct token *t, const char *w)
{
	return t->type == TOK_IDENT && eq_ci(lx->s + t->off, t->len, w);
}

static bool tok_literal(const struct token *t)
{
	return t->type == TOK_STRING || t->type == TOK_NUMBER || t->type == TOK_PARAM;
}

/*
 * The name a token denotes, cut like PostgreSQL at CLASSIFY_NAME_MAX - 1
 * bytes: an unquoted name lower-cased (ASCII only), a quoted one unescaped.
 */
static void tok_name(const struct lexer *lx, const struct token *t, char *buf)
{
	const char *p = lx->s + t->off;
	size_t n = t->len, o = 0;
	if (t->type == TOK_QIDENT) {
		size_t q = p[0] == '"' ? 1 : 3; /* "x" or U&"x" */
		for (size_t i = q; i + 1 < n && o < CLASSIFY_NAME_MAX - 1; i++) {
			buf[o++] = p[i];
			if (p[i] == '"')
				i++;
		}
	} else {
		for (size_t i = 0; i < n && o < CLASSIFY_NAME_MAX - 1; i++)
			buf[o++] = lower_ascii(p[i]);
	}
	buf[o] = '\0';
}

/* The value of $n, or 0 when it is out of PostgreSQL's range. */
static unsigned param_number(const char *p, size_t n)
{
	unsigned v = 0;
	for (size_t i = 1; i < n; i++) {
		v = v * 10 + (unsigned)(p[i] - '0');
		if (v > PARAM_MAX)
			return 0;
	}
	return v;
}

/* ---------- word tables ---------- */

enum keyword_flag {
	KW_NONCALL = 1, /* "word (" is syntax, not a function call */
	KW_ARGS = 2,    /* what its parentheses hold are arguments, not a query */
};

struct keyword {
	const char *name;
	unsigned flags;
};

/*
 * SQL keywords, sorted (binary search). Reserved and column-name keywords
 * are KW_NONCALL: PostgreSQL never takes them for function names. The rest
 * are unreserved words that only tell the classifier "this is syntax"
 * when it judges what precedes a name.
 */
static const struct keyword keywords[] = {
	{"all", KW_NONCALL},
	{"analyse", KW_NONCALL},
	{"analyze", KW_NONCALL},
	{"and", KW_NONCALL},
	{"any", KW_NONCALL},
	{"array", KW_NONCALL},
	{"as", KW_NONCALL},
	{"asc", KW_NONCALL},
	{"asymmetric", KW_NONCALL},
	{"at", 0},
	{"authorization", KW_NONCALL},
	{"between", KW_NONCALL},
	{"bigint", KW_NONCALL | KW_ARGS},
	{"binary", KW_NONCALL},
	{"bit", KW_NONCALL | KW_ARGS},
	{"boolean", KW_NONCALL | KW_ARGS},
	{"both", KW_NONCALL},
	{"breadth", 0},
	{"by", 0},
	{"case", KW_NONCALL},
	{"cast", KW_NONCALL | KW_ARGS},
	{"char", KW_NONCALL | KW_ARGS},
	{"character", KW_NONCALL | KW_ARGS},
	{"check", KW_NONCALL},
	{"coalesce", KW_NONCALL | KW_ARGS},
	{"collate", KW_NONCALL},
	{"collation", KW_NONCALL},
	{"column", KW_NONCALL},
	{"concurrently", KW_NONCALL},
	{"constraint", KW_NONCALL},
	{"create", KW_NONCALL},
	{"cross", KW_NONCALL},
	{"current", 0},
	{"current_catalog", KW_NONCALL},
	{"current_date", KW_NONCALL},
	{"current_role", KW_NONCALL},
	{"current_time", KW_NONCALL | KW_ARGS},
	{"current_timestamp", KW_NONCALL | KW_ARGS},
	{"current_user", KW_NONCALL},
	{"cycle", 0},
	{"day", 0},
	{"dec", KW_NONCALL | KW_ARGS},
	{"decimal", KW_NONCALL | KW_ARGS},
	{"default", KW_NONCALL},
	{"deferrable", KW_NONCALL},
	{"delete", 0},
	{"depth", 0},
	{"desc", KW_NONCALL},
	{"distinct", KW_NONCALL},
	{"do", KW_NONCALL},
	{"else", KW_NONCALL},
	{"end", KW_NONCALL},
	{"escape", 0},
	{"except", KW_NONCALL},
	{"exclude", 0},
	{"exists", KW_NONCALL},
	{"extract", KW_NONCALL | KW_ARGS},
	{"false", KW_NONCALL},
	{"fetch", KW_NONCALL},
	{"filter", 0},
	{"first", 0},
	{"float", KW_NONCALL | KW_ARGS},
	{"following", 0},
	{"for", KW_NONCALL},
	{"foreign", KW_NONCALL},
	{"freeze", KW_NONCALL},
	{"from", KW_NONCALL},
	{"full", KW_NONCALL},
	{"grant", KW_NONCALL},
	{"greatest", KW_NONCALL | KW_ARGS},
	{"group", KW_NONCALL},
	{"grouping", KW_NONCALL | KW_ARGS},
	{"groups", 0},
	{"having", KW_NONCALL},
	{"hour", 0},
	{"ilike", KW_NONCALL},
	{"in", KW_NONCALL},
	{"initially", KW_NONCALL},
	{"inner", KW_NONCALL},
	{"inout", KW_NONCALL | KW_ARGS},
	{"insert", 0},
	{"int", KW_NONCALL | KW_ARGS},
	{"integer", KW_NONCALL | KW_ARGS},
	{"intersect", KW_NONCALL},
	{"interval", KW_NONCALL | KW_ARGS},
	{"into", KW_NONCALL},
	{"is", KW_NONCALL},
	{"isnull", KW_NONCALL},
	{"join", KW_NONCALL},
	{"key", 0},
	{"last", 0},
	{"lateral", KW_NONCALL},
	{"leading", KW_NONCALL},
	{"least", KW_NONCALL | KW_ARGS},
	{"like", KW_NONCALL},
	{"limit", KW_NONCALL},
	{"local", 0},
	{"localtime", KW_NONCALL | KW_ARGS},
	{"localtimestamp", KW_NONCALL | KW_ARGS},
	{"locked", 0},
	{"materialized", 0},
	{"merge", 0},
	{"minute", 0},
	{"month", 0},
	{"national", KW_NONCALL | KW_ARGS},
	{"natural", KW_NONCALL},
	{"nchar", KW_NONCALL | KW_ARGS},
	{"next", 0},
	{"no", 0},
	{"normalize", KW_NONCALL | KW_ARGS},
	{"not", KW_NONCALL},
	{"notnull", KW_NONCALL},
	{"nowait", 0},
	{"null", KW_NONCALL},
	{"nullif", KW_NONCALL | KW_ARGS},
	{"nulls", 0},
	{"numeric", KW_NONCALL | KW_ARGS},
	{"of", 0},
	{"offset", KW_NONCALL},
	{"on", KW_NONCALL},
	{"only", KW_NONCALL},
	{"operator", KW_NONCALL},
	{"or", KW_NONCALL},
	{"order", KW_NONCALL},
	{"ordinality", 0},
	{"others", 0},
	{"out", KW_NONCALL | KW_ARGS},
	{"outer", KW_NONCALL},
	{"over", 0},
	{"overlay", KW_NONCALL | KW_ARGS},
	{"partition", 0},
	{"placing", KW_NONCALL},
	{"position", KW_NONCALL | KW_ARGS},
	{"preceding", 0},
	{"precision", KW_NONCALL | KW_ARGS},
	{"primary", KW_NONCALL},
	{"range", 0},
	{"real", KW_NONCALL | KW_ARGS},
	{"recursive", 0},
	{"references", KW_NONCALL},
	{"repeatable", 0},
	{"returning", KW_NONCALL},
	{"row", KW_NONCALL | KW_ARGS},
	{"rows", 0},
	{"search", 0},
	{"second", 0},
	{"select", KW_NONCALL},
	{"session_user", KW_NONCALL},
	{"set", 0},
	{"setof", KW_NONCALL | KW_ARGS},
	{"sets", 0},
	{"share", 0},
	{"similar", KW_NONCALL},
	{"skip", 0},
	{"smallint", KW_NONCALL | KW_ARGS},
	{"some", KW_NONCALL},
	{"substring", KW_NONCALL | KW_ARGS},
	{"symmetric", KW_NONCALL},
	{"table", KW_NONCALL},
	{"tablesample", KW_NONCALL},
	{"then", KW_NONCALL},
	{"ties", 0},
	{"time", KW_NONCALL | KW_ARGS},
	{"timestamp", KW_NONCALL | KW_ARGS},
	{"to", KW_NONCALL},
	{"trailing", KW_NONCALL},
	{"treat", KW_NONCALL | KW_ARGS},
	{"trim", KW_NONCALL | KW_ARGS},
	{"true", KW_NONCALL},
	{"unbounded", 0},
	{"union", KW_NONCALL},
	{"unique", KW_NONCALL},
	{"update", 0},
	{"user", KW_NONCALL},
	{"using", KW_NONCALL},
	{"values", KW_NONCALL},
	{"varchar", KW_NONCALL | KW_ARGS},
	{"variadic", KW_NONCALL},
	{"varying", 0},
	{"verbose", KW_NONCALL},
	{"when", KW_NONCALL},
	{"where", KW_NONCALL},
	{"window", KW_NONCALL},
	{"with", KW_NONCALL},
	{"within", 0},
	{"without", 0},
	{"xmlattributes", KW_NONCALL | KW_ARGS},
	{"xmlconcat", KW_NONCALL | KW_ARGS},
	{"xmlelement", KW_NONCALL | KW_ARGS},
	{"xmlexists", KW_NONCALL | KW_ARGS},
	{"xmlforest", KW_NONCALL | KW_ARGS},
	{"xmlnamespaces", KW_NONCALL | KW_ARGS},
	{"xmlparse", KW_NONCALL | KW_ARGS},
	{"xmlpi", KW_NONCALL | KW_ARGS},
	{"xmlroot", KW_NONCALL | KW_ARGS},
	{"xmlserialize", KW_NONCALL | KW_ARGS},
	{"xmltable", KW_NONCALL | KW_ARGS},
	{"year", 0},
	{"zone", 0},
};

/* Built-in functions that only read, sorted. Matched unqualified or in pg_catalog. */
static const char *const read_only_builtins[] = {
	"abs", "acos", "acosd", "age", "array_agg", "array_append", "array_cat", "array_dims",
	"array_fill", "array_length", "array_lower", "array_ndims", "array_position",
	"array_positions", "array_prepend", "array_remove", "array_replace", "array_to_json",
	"array_to_string", "array_upper", "ascii", "asin", "atan", "atan2", "avg", "bernoulli",
	"bit_and", "bit_count", "bit_length", "bit_or", "bit_xor", "bool", "bool_and", "bool_or",
	"btrim", "cardinality", "cbrt", "ceil", "ceiling", "char_length", "character_length",
	"chr", "clock_timestamp", "col_description", "concat", "concat_ws", "convert",
	"convert_from", "convert_to", "corr", "cos", "cot", "count", "covar_pop", "covar_samp",
	"cube", "cume_dist", "current_database", "current_query", "current_schema",
	"current_schemas", "current_setting", "date", "date_bin", "date_part", "date_trunc",
	"decode", "degrees", "dense_rank", "div", "encode", "every", "exp", "factorial",
	"first_value", "float4", "float8", "floor", "format", "format_type", "gcd",
	"gen_random_uuid", "generate_series", "generate_subscripts", "get_bit", "get_byte",
	"has_column_privilege", "has_database_privilege", "has_function_privilege",
	"has_schema_privilege", "has_sequence_privilege", "has_table_privilege", "host",
	"hostmask", "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
	"initcap", "int2", "int4", "int8", "isempty", "isfinite", "json_agg",
	"json_array_elements", "json_array_elements_text", "json_array_length", "json_build_array",
	"json_build_object", "json_each", "json_each_text", "json_extract_path",
	"json_extract_path_text", "json_object", "json_object_agg", "json_object_keys",
	"json_populate_record", "json_populate_recordset", "json_strip_nulls", "json_to_record",
	"json_to_recordset", "json_typeof", "jsonb_agg", "jsonb_array_elements",
	"jsonb_array_elements_text", "jsonb_array_length", "jsonb_build_array",
	"jsonb_build_object", "jsonb_each", "jsonb_each_text", "jsonb_extract_path",
	"jsonb_extract_path_text", "jsonb_insert", "jsonb_object", "jsonb_object_agg",
	"jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query",
	"jsonb_path_query_array", "jsonb_path_query_first", "jsonb_populate_record",
	"jsonb_populate_recordset", "jsonb_pretty", "jsonb_set", "jsonb_set_lax",
	"jsonb_strip_nulls", "jsonb_to_record", "jsonb_to_recordset", "jsonb_typeof",
	"justify_days", "justify_hours", "justify_interval", "lag", "last_value", "lcm", "lead",
	"left", "length", "ln", "log", "log10", "lower", "lower_inc", "lower_inf", "lpad", "ltrim",
	"make_date", "make_interval", "make_time", "make_timestamp", "make_timestamptz", "masklen",
	"max", "md5", "min", "min_scale", "mod", "mode", "now", "nth_value", "ntile",
	"num_nonnulls", "num_nulls", "numeric", "obj_description", "octet_length", "overlaps",
	"parse_ident", "percent_rank", "percentile_cont", "percentile_disc", "pg_backend_pid",
	"pg_blocking_pids", "pg_client_encoding", "pg_column_size", "pg_conf_load_time",
	"pg_database_size", "pg_encoding_to_char", "pg_get_constraintdef", "pg_get_expr",
	"pg_get_function_arguments", "pg_get_function_result", "pg_get_functiondef",
	"pg_get_indexdef", "pg_get_keywords", "pg_get_serial_sequence", "pg_get_triggerdef",
	"pg_get_userbyid", "pg_get_viewdef", "pg_has_role", "pg_indexes_size", "pg_is_in_recovery",
	"pg_is_wal_replay_paused", "pg_jit_available", "pg_last_wal_receive_lsn",
	"pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp", "pg_listening_channels",
	"pg_my_temp_schema", "pg_postmaster_start_time", "pg_relation_filenode",
	"pg_relation_size", "pg_size_bytes", "pg_size_pretty", "pg_sleep", "pg_sleep_for",
	"pg_sleep_until", "pg_table_is_visible", "pg_table_size", "pg_tablespace_size",
	"pg_total_relation_size", "pg_trigger_depth", "pg_typeof", "pg_wal_lsn_diff",
	"phraseto_tsquery", "pi", "plainto_tsquery", "power", "quote_ident", "quote_literal",
	"quote_nullable", "radians", "random", "rank", "regexp_count", "regexp_instr",
	"regexp_like", "regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
	"regexp_split_to_table", "regexp_substr", "repeat", "replace", "reverse", "right",
	"rollup", "round", "row_number", "row_to_json", "rpad", "rtrim", "scale", "sha224",
	"sha256", "sha384", "sha512", "sign", "sin", "split_part", "sqrt", "starts_with",
	"statement_timestamp", "stddev", "stddev_pop", "stddev_samp", "string_agg",
	"string_to_array", "string_to_table", "strpos", "substr", "sum", "system", "tan", "text",
	"timeofday", "to_ascii", "to_char", "to_date", "to_hex", "to_json", "to_jsonb",
	"to_number", "to_regclass", "to_regproc", "to_regtype", "to_timestamp", "to_tsquery",
	"to_tsvector", "transaction_timestamp", "translate", "trim_array", "trim_scale", "trunc",
	"ts_headline", "ts_rank", "ts_rank_cd", "unistr", "unnest", "upper", "upper_inc",
	"upper_inf", "var_pop", "var_samp", "variance", "version", "websearch_to_tsquery",
	"width_bucket", "xmlagg",
};

/* Built-in functions that write or need the primary, sorted. Matched in any schema. */
static const char *const write_builtins[] = {
	"currval", "lastval", "loread", "lowrite", "nextval", "pg_backup_start", "pg_backup_stop",
	"pg_cancel_backend", "pg_create_logical_replication_slot",
	"pg_create_physical_replication_slot", "pg_create_restore_point", "pg_current_xact_id",
	"pg_current_xact_id_if_assigned", "pg_drop_replication_slot",
	"pg_import_system_collations", "pg_log_backend_memory_contexts", "pg_logical_emit_message",
	"pg_notify", "pg_promote", "pg_reload_conf", "pg_rotate_logfile", "pg_start_backup",
	"pg_stop_backup", "pg_switch_wal", "pg_terminate_backend", "pg_wal_replay_pause",
	"pg_wal_replay_resume", "set_config", "setval", "txid_current", "txid_current_if_assigned",
};

/* Whole families of write functions. */
static const char *const write_prefixes[] = {
	"dblink", "lo_", "pg_advisory_", "pg_copy_", "pg_current_wal_", "pg_file_",
	"pg_replication_origin_", "pg_replication_slot_", "pg_stat_reset", "pg_try_advisory_",
};

/* Words that continue a type name after its first word: "double precision" etc. */
static const char *const type_continuations[] = {
	"day", "hour", "minute", "month", "precision", "second", "time",
	"to", "varying", "with", "without", "year", "zone",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct keyword *keyword_find(const char *word)
{
	size_t lo = 0, hi = COUNT(keywords);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(word, keywords[mid].name);
		if (c == 0)
			return &keywords[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool name_in_sorted(const char *const *tab, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, tab[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static bool name_in_list(const char *const *tab, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i], name) == 0)
			return true;
	return false;
}

/* A configured list entry: "func" matches the last part, "schema.func" both parts. */
static bool name_in_config(const char *const *tab, size_t n, const char *schema, const char *name)
{
	size_t sl = strlen(schema);
	for (size_t i = 0; i < n; i++) {
		const char *e = tab[i];
		if (e == NULL)
			continue;
		const char *dot = strchr(e, '.');
		if (dot == NULL) {
			if (strcmp(e, name) == 0)
				return true;
		} else if (sl > 0 && (size_t)(dot - e) == sl && memcmp(e, schema, sl) == 0 &&
			   strcmp(dot + 1, name) == 0) {
			return true;
		}
	}
	return false;
}

static bool is_write_builtin(const char *name)
{
	if (name_in_sorted(write_builtins, COUNT(write_builtins), name))
		return true;
	for (size_t i = 0; i < COUNT(write_prefixes); i++)
		if (strncmp(name, write_prefixes[i], strlen(write_prefixes[i])) == 0)
			return true;
	return false;
}

/* ---------- statement kinds ---------- */

struct kind_word {
	const char *word;
	enum classify_kind kind;
};

/* Leading keywords, sorted. */
static const struct kind_word kind_words[] = {
	{"abort", CLASSIFY_ROLLBACK},     {"begin", CLASSIFY_BEGIN},
	{"call", CLASSIFY_CALL},          {"close", CLASSIFY_CLOSE},
	{"commit", CLASSIFY_COMMIT},      {"copy", CLASSIFY_COPY},
	{"deallocate", CLASSIFY_DEALLOCATE}, {"declare", CLASSIFY_DECLARE},
	{"delete", CLASSIFY_DELETE},      {"discard", CLASSIFY_DISCARD},
	{"do", CLASSIFY_DO},              {"end", CLASSIFY_COMMIT},
	{"execute", CLASSIFY_EXECUTE},    {"explain", CLASSIFY_EXPLAIN},
	{"fetch", CLASSIFY_FETCH},        {"insert", CLASSIFY_INSERT},
	{"listen", CLASSIFY_LISTEN},      {"merge", CLASSIFY_MERGE},
	{"notify", CLASSIFY_NOTIFY},      {"prepare", CLASSIFY_PREPARE},
	{"release", CLASSIFY_RELEASE},    {"reset", CLASSIFY_RESET},
	{"rollback", CLASSIFY_ROLLBACK},  {"savepoint", CLASSIFY_SAVEPOINT},
	{"select", CLASSIFY_SELECT},      {"set", CLASSIFY_SET},
	{"show", CLASSIFY_SHOW},          {"start", CLASSIFY_START},
	{"table", CLASSIFY_TABLE},        {"unlisten", CLASSIFY_UNLISTEN},
	{"update", CLASSIFY_UPDATE},      {"values", CLASSIFY_VALUES},
	{"with", CLASSIFY_WITH},
};

static enum classify_kind kind_of_word(const char *word)
{
	size_t lo = 0, hi = COUNT(kind_words);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(word, kind_words[mid].word);
		if (c == 0)
			return kind_words[mid].kind;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return CLASSIFY_OTHER;
}

static const char *const kind_names[] = {
	[CLASSIFY_EMPTY] = "EMPTY",         [CLASSIFY_SELECT] = "SELECT",
	[CLASSIFY_INSERT] = "INSERT",       [CLASSIFY_UPDATE] = "UPDATE",
	[CLASSIFY_DELETE] = "DELETE",       [CLASSIFY_MERGE] = "MERGE",
	[CLASSIFY_WITH] = "WITH",           [CLASSIFY_VALUES] = "VALUES",
	[CLASSIFY_TABLE] = "TABLE",         [CLASSIFY_SHOW] = "SHOW",
	[CLASSIFY_EXPLAIN] = "EXPLAIN",     [CLASSIFY_BEGIN] = "BEGIN",
	[CLASSIFY_START] = "START TRANSACTION", [CLASSIFY_COMMIT] = "COMMIT",
	[CLASSIFY_ROLLBACK] = "ROLLBACK",   [CLASSIFY_SAVEPOINT] = "SAVEPOINT",
	[CLASSIFY_RELEASE] = "RELEASE",     [CLASSIFY_PREPARE_TRANSACTION] = "PREPARE TRANSACTION",
	[CLASSIFY_SET] = "SET",             [CLASSIFY_RESET] = "RESET",
	[CLASSIFY_DISCARD] = "DISCARD",     [CLASSIFY_DEALLOCATE] = "DEALLOCATE",
	[CLASSIFY_PREPARE] = "PREPARE",     [CLASSIFY_EXECUTE] = "EXECUTE",
	[CLASSIFY_LISTEN] = "LISTEN",       [CLASSIFY_UNLISTEN] = "UNLISTEN",
	[CLASSIFY_NOTIFY] = "NOTIFY",       [CLASSIFY_COPY] = "COPY",
	[CLASSIFY_DECLARE] = "DECLARE",     [CLASSIFY_FETCH] = "FETCH",
	[CLASSIFY_CLOSE] = "CLOSE",         [CLASSIFY_CALL] = "CALL",
	[CLASSIFY_DO] = "DO",               [CLASSIFY_OTHER] = "OTHER",
};

/* "statement KIND": why a statement of that kind is not read-only. */
static const char *const kind_reasons[] = {
	[CLASSIFY_EMPTY] = "empty statement",
	[CLASSIFY_SELECT] = "statement SELECT",
	[CLASSIFY_INSERT] = "statement INSERT",
	[CLASSIFY_UPDATE] = "statement UPDATE",
	[CLASSIFY_DELETE] = "statement DELETE",
	[CLASSIFY_MERGE] = "statement MERGE",
	[CLASSIFY_WITH] = "statement WITH",
	[CLASSIFY_VALUES] = "statement VALUES",
	[CLASSIFY_TABLE] = "statement TABLE",
	[CLASSIFY_SHOW] = "statement SHOW",
	[CLASSIFY_EXPLAIN] = "statement EXPLAIN",
	[CLASSIFY_BEGIN] = "statement BEGIN",
	[CLASSIFY_START] = "statement START TRANSACTION",
	[CLASSIFY_COMMIT] = "statement COMMIT",
	[CLASSIFY_ROLLBACK] = "statement ROLLBACK",
	[CLASSIFY_SAVEPOINT] = "statement SAVEPOINT",
	[CLASSIFY_RELEASE] = "statement RELEASE",
	[CLASSIFY_PREPARE_TRANSACTION] = "statement PREPARE TRANSACTION",
	[CLASSIFY_SET] = "statement SET",
	[CLASSIFY_RESET] = "statement RESET",
	[CLASSIFY_DISCARD] = "statement DISCARD",
	[CLASSIFY_DEALLOCATE] = "statement DEALLOCATE",
	[CLASSIFY_PREPARE] = "statement PREPARE",
	[CLASSIFY_EXECUTE] = "statement EXECUTE",
	[CLASSIFY_LISTEN] = "statement LISTEN",
	[CLASSIFY_UNLISTEN] = "statement UNLISTEN",
	[CLASSIFY_NOTIFY] = "statement NOTIFY",
	[CLASSIFY_COPY] = "statement COPY",
	[CLASSIFY_DECLARE] = "statement DECLARE",
	[CLASSIFY_FETCH] = "statement FETCH",
	[CLASSIFY_CLOSE] = "statement CLOSE",
	[CLASSIFY_CALL] = "statement CALL",
	[CLASSIFY_DO] = "statement DO",
	[CLASSIFY_OTHER] = "statement",
};

const char *classify_kind_name(enum classify_kind kind)
{
	if ((unsigned)kind >= COUNT(kind_names))
		return "OTHER";
	return kind_names[kind];
}

/* Kinds whose whole text the classifier reads to prove them read-only. */
static bool kind_is_query(enum classify_kind k)
{
	return k == CLASSIFY_SELECT || k == CLASSIFY_WITH || k == CLASSIFY_VALUES ||
	       k == CLASSIFY_TABLE;
}

/* Kinds EXPLAIN (without ANALYZE) plans without running them. */
static bool kind_is_explainable(enum classify_kind k)
{
	return kind_is_query(k) || k == CLASSIFY_INSERT || k == CLASSIFY_UPDATE ||
	       k == CLASSIFY_DELETE || k == CLASSIFY_MERGE;
}

static const char *query_reason(enum classify_kind k)
{
	switch (k) {
	case CLASSIFY_WITH:
		return "read-only WITH";
	case CLASSIFY_VALUES:
		return "read-only VALUES";
	case CLASSIFY_TABLE:
		return "read-only TABLE";
	default:
		return "read-only SELECT";
	}
}

/* ---------- one statement, token by token ---------- */

/* What opened a nesting level, which decides how its contents read. */
enum paren_kind {
	PK_STMT,         /* level 0: the statement itself */
	PK_PLAIN,        /* ( expression or subquery ) */
	PK_ARGS,         /* arguments of a call or a call-like construct */
	PK_CAST,         /* CAST( x AS type ) */
	PK_TYPMOD,       /* numeric(10,2) after :: or AS */
	PK_TYPE_BRACKET, /* int[3] after :: or AS */
	PK_OPERATOR,     /* OPERATOR(schema.+) */
	PK_COLLIST,      /* names: AS t(a, b), WITH w(a, b) */
	PK_CTE_BODY,     /* WITH w AS ( query ) */
	PK_BRACKET,      /* [ subscript ] or ARRAY[ ... ] */
};

/* Where a WITH list at this level stands. */
enum with_state {
	W_NONE,
	W_NAME,       /* a CTE name comes next */
	W_AFTER_NAME, /* ( columns ) or AS */
	W_AFTER_COLS, /* AS */
	W_AFTER_AS,   /* [NOT] MATERIALIZED or ( */
	W_AFTER_BODY, /* , another CTE, or the main statement */
};

/* What the previous token was, as far as a following name cares. */
enum prev_class {
	PV_NONE,
	PV_KEYWORD,
	PV_WORD, /* a name that is no keyword */
	PV_AS,
	PV_CLOSE,
	PV_OP,
	PV_PUNCT,
	PV_LITERAL,
	PV_DOT,
};

enum type_state {
	TS_NONE,
	TS_START, /* after :: or CAST(... AS: a type name comes */
	TS_AFTER, /* after a type name: more of it may follow */
};

enum lock_state {
	LK_NONE,
	LK_FOR,
	LK_NO,
	LK_NO_KEY,
	LK_KEY,
};

enum phase {
	PH_LEAD,    /* only '(' so far */
	PH_QUERY,   /* SELECT, WITH, VALUES, TABLE: every token is examined */
	PH_EXPLAIN, /* EXPLAIN options */
	PH_BEGIN,   /* transaction modes */
	PH_SET,     /* SET: is it LOCAL? */
	PH_TXN,     /* COMMIT/ROLLBACK: is it PREPARED? */
	PH_PREPARE, /* PREPARE: is it TRANSACTION? */
	PH_SKIP,    /* the kind decided it */
};

enum explain_state {
	EX_START,
	EX_OPT_NAME,
	EX_OPT_VALUE,
	EX_AFTER_OPTS,
};

enum begin_state {
	BG_START, /* after BEGIN or START */
	BG_FIRST, /* after WORK or TRANSACTION */
	BG_AFTER, /* after a complete mode */
	BG_NEED,  /* after a comma */
	BG_ISOLATION,
	BG_LEVEL,
	BG_REPEATABLE,
	BG_READ_LEVEL,
	BG_READ,
	BG_NOT,
	BG_BAD,
};

struct level {
	unsigned char paren; /* enum paren_kind */
	unsigned char with;  /* enum with_state */
	bool from;           /* in a FROM clause */
	bool started;        /* a token was seen at this level */
};

/* A name that a following '(' would call. */
struct call_name {
	bool active;
	bool eligible; /* false for aliases, CTE and type names */
	bool dot;      /* a '.' followed: the next name part extends it */
	char schema[CLASSIFY_NAME_MAX];
	char name[CLASSIFY_NAME_MAX];
};

#define PREV_WORD_MAX 24

struct stmt {
	const struct classify_options *opts;
	enum phase phase;
	enum classify_kind kind;  /* as reported */
	enum classify_kind inner; /* as examined: the explained statement for EXPLAIN */
	unsigned ntok;
	bool write; /* decided: not read-only */
	const char *reason;
	char detail[CLASSIFY_NAME_MAX];
	bool set_local;
	enum begin_state begin;
	bool begin_ro;
	enum explain_state explain;
	bool ex_analyze, ex_opt_analyze, ex_inner;
	/* PH_QUERY */
	struct level lv[CLASSIFY_MAX_DEPTH];
	unsigned depth;
	enum prev_class prev;
	unsigned prev_flags;             /* keyword flags of the previous word */
	char prev_word[PREV_WORD_MAX];   /* the previous unquoted word, if short */
	enum type_state type;
	enum lock_state lock;
	struct call_name call;
};

static void stmt_init(struct stmt *st, const struct classify_options *opts)
{
	st->opts = opts;
	st->phase = PH_LEAD;
	st->kind = st->inner = CLASSIFY_EMPTY;
	st->ntok = 0;
	st->write = false;
	st->reason = NULL;
	st->detail[0] = '\0';
	st->set_local = false;
	st->begin = BG_START;
	st->begin_ro = false;
	st->explain = EX_START;
	st->ex_analyze = st->ex_opt_analyze = st->ex_inner = false;
	memset(&st->lv[0], 0, sizeof(st->lv[0]));
	st->lv[0].paren = PK_STMT;
	st->depth = 0;
	st->prev = PV_NONE;
	st->prev_flags = 0;
	st->prev_word[0] = '\0';
	st->type = TS_NONE;
	st->lock = LK_NONE;
	st->call.active = false;
}

/* dst may be src: stmt_decide() passes st->detail back in. */
static void copy_name(char *dst, const char *src)
{
	size_t n = strlen(src);
	if (n > CLASSIFY_NAME_MAX - 1)
		n = CLASSIFY_NAME_MAX - 1;
	memmove(dst, src, n);
	dst[n] = '\0';
}

/* The statement is not read-only; the first reason found is the one reported. */
static void stmt_decide(struct stmt *st, const char *reason, const char *detail)
{
	if (st->write)
		return;
	st->write = true;
	st->reason = reason;
	copy_name(st->detail, detail);
}

static bool stmt_push(struct stmt *st, enum paren_kind pk)
{
	if (st->depth + 1 >= CLASSIFY_MAX_DEPTH) {
		stmt_decide(st, "nesting too deep", "");
		return false;
	}
	st->depth++;
	memset(&st->lv[st->depth], 0, sizeof(st->lv[0]));
	st->lv[st->depth].paren = (unsigned char)pk;
	return true;
}

static void stmt_set_prev_word(struct stmt *st, const char *word)
{
	size_t n = strlen(word);
	if (n >= PREV_WORD_MAX)
		n = 0;
	memcpy(st->prev_word, word, n);
	st->prev_word[n] = '\0';
}

static bool prev_word_is(const struct stmt *st, const char *w)
{
	return strcmp(st->prev_word, w) == 0;
}

/* The name in st->call is called: is that a write? */
static void stmt_check_call(struct stmt *st)
{
	const struct classify_options *o = st->opts;
	const char *schema = st->call.schema, *name = st->call.name;
	if (name_in_config(o->write_functions, o->n_write_functions, schema, name)) {
		stmt_decide(st, "configured write function", name);
		return;
	}
	if (is_write_builtin(name)) {
		stmt_decide(st, "write function", name);
		return;
	}
	if (name_in_config(o->read_only_functions, o->n_read_only_functions, schema, name))
		return;
	/* A same-named function in another schema may be anything. */
	if ((schema[0] == '\0' || strcmp(schema, "pg_catalog") == 0) &&
	    name_in_sorted(read_only_builtins, COUNT(read_only_builtins), name))
		return;
	if (o->unknown_functions_readonly)
		return;
	stmt_decide(st, "unknown function", name);
}

/* A name starts at level L: would a '(' after it call a function? */
static void stmt_start_name(struct stmt *st, const struct level *L, const char *name)
{
	bool eligible = true;
	if (st->prev == PV_AS)
		eligible = false; /* AS alias(columns) */
	else if (L->from && (st->prev == PV_WORD || st->prev == PV_CLOSE))
		eligible = false; /* FROM t alias(columns), FROM f() alias(columns) */
	st->call.active = true;
	st->call.eligible = eligible;
	st->call.dot = false;
	st->call.schema[0] = '\0';
	copy_name(st->call.name, name);
}

/* FOR [NO KEY] UPDATE, FOR [KEY] SHARE; true when word belonged to such a clause. */
static bool stmt_lock_word(struct stmt *st, const char *w)
{
	enum lock_state s = st->lock;
	st->lock = LK_NONE;
	switch (s) {
	case LK_FOR:
		if (strcmp(w, "update") == 0)
			stmt_decide(st, "FOR UPDATE", "");
		else if (strcmp(w, "share") == 0)
			stmt_decide(st, "FOR SHARE", "");
		else if (strcmp(w, "no") == 0)
			st->lock = LK_NO;
		else if (strcmp(w, "key") == 0)
			st->lock = LK_KEY;
		else
			return false;
		return true;
	case LK_NO:
		if (strcmp(w, "key") != 0)
			return false;
		st->lock = LK_NO_KEY;
		return true;
	case LK_NO_KEY:
		if (strcmp(w, "update") != 0)
			return false;
		stmt_decide(st, "FOR NO KEY UPDATE", "");
		return true;
	case LK_KEY:
		if (strcmp(w, "share") != 0)
			return false;
		stmt_decide(st, "FOR KEY SHARE", "");
		return true;
	case LK_NONE:
		break;
	}
	return false;
}

static bool is_clause_end(const char *w)
{
	static const char *const ends[] = {
		"except", "fetch", "for", "group", "having", "intersect", "limit", "offset",
		"on", "order", "returning", "select", "union", "values", "where", "window",
	};
	return name_in_list(ends, COUNT(ends), w);
}

/* An unquoted word in a query. */
static void stmt_query_word(struct stmt *st, struct level *L, const char *w, bool level_start)
{
	if (st->lock != LK_NONE && stmt_lock_word(st, w))
		return;
	if (strcmp(w, "insert") == 0 || strcmp(w, "update") == 0 || strcmp(w, "delete") == 0 ||
	    strcmp(w, "merge") == 0) {
		/* Also a column named so: a false "write" only costs a replica read. */
		stmt_decide(st, st->inner == CLASSIFY_WITH ? "data-modifying WITH"
							   : "data-modifying statement", w);
		return;
	}
	if (strcmp(w, "into") == 0) {
		stmt_decide(st, "SELECT INTO", "");
		return;
	}
	if (strcmp(w, "for") == 0)
		st->lock = LK_FOR;
	if (level_start && strcmp(w, "with") == 0)
		L->with = W_NAME;
	bool query_level = L->paren == PK_STMT || L->paren == PK_PLAIN || L->paren == PK_CTE_BODY;
	if ((strcmp(w, "from") == 0 && !prev_word_is(st, "distinct")) || strcmp(w, "join") == 0)
		L->from = query_level;
	else if (is_clause_end(w))
		L->from = false;

	const struct keyword *kw = keyword_find(w);
	bool syntax = kw != NULL && (kw->flags & KW_NONCALL);
	if (!syntax) {
		if (strcmp(w, "over") == 0 || strcmp(w, "filter") == 0)
			syntax = st->prev == PV_CLOSE;
		else if (strcmp(w, "sets") == 0)
			syntax = prev_word_is(st, "grouping");
		else if (strcmp(w, "by") == 0)
			syntax = prev_word_is(st, "group") || prev_word_is(st, "order") ||
				 prev_word_is(st, "partition");
	}
	if (strcmp(w, "as") == 0) {
		if (L->paren == PK_CAST)
			st->type = TS_START;
		st->prev = PV_AS;
		st->call.active = false;
	} else if (syntax) {
		st->prev = PV_KEYWORD;
		st->call.active = false;
	} else {
		stmt_start_name(st, L, w);
		st->prev = kw != NULL ? PV_KEYWORD : PV_WORD;
	}
	st->prev_flags = kw != NULL ? kw->flags : 0;
	stmt_set_prev_word(st, w);
}

static void stmt_open_paren(struct stmt *st)
{
	enum paren_kind pk = PK_PLAIN;
	if (st->call.active && !st->call.dot) {
		if (st->call.eligible) {
			stmt_check_call(st);
			pk = PK_ARGS;
		} else {
			pk = PK_COLLIST;
		}
	} else if (st->prev == PV_KEYWORD && prev_word_is(st, "cast")) {
		pk = PK_CAST;
	} else if (st->prev == PV_KEYWORD && prev_word_is(st, "operator")) {
		pk = PK_OPERATOR;
	} else if (st->prev == PV_KEYWORD && (st->prev_flags & KW_ARGS)) {
		pk = PK_ARGS;
	}
	stmt_push(st, pk);
	st->prev = PV_PUNCT;
}

static void stmt_close_paren(struct stmt *st, char c)
{
	if (st->depth == 0) {
		stmt_decide(st, "unbalanced parentheses", "");
		return;
	}
	enum paren_kind pk = st->lv[st->depth].paren;
	bool bracket = pk == PK_BRACKET || pk == PK_TYPE_BRACKET;
	if (bracket != (c == ']')) {
		stmt_decide(st, "unbalanced parentheses", "");
		return;
	}
	st->depth--;
	st->prev = PV_CLOSE;
	if (pk == PK_TYPMOD || pk == PK_TYPE_BRACKET)
		st->type = TS_AFTER;
	else if (pk == PK_OPERATOR)
		st->prev = PV_OP;
}

static bool is_type_continuation(const char *w)
{
	return name_in_list(type_continuations, COUNT(type_continuations), w);
}

/* Type names after :: and CAST(... AS; true when the token was part of one. */
static bool stmt_type_token(struct stmt *st, const struct lexer *lx, const struct token *t,
			    const char *w)
{
	if (st->type == TS_START) {
		if (t->type == TOK_IDENT || t->type == TOK_QIDENT) {
			st->type = TS_AFTER;
			st->prev = PV_WORD;
			return true;
		}
	} else if (st->type == TS_AFTER) {
		if (t->type == TOK_IDENT && is_type_continuation(w))
			return true;
		if (tok_punct(lx, t, '.')) {
			st->type = TS_START;
			return true;
		}
		bool paren = tok_punct(lx, t, '(');
		if (paren || tok_punct(lx, t, '[')) {
			st->type = TS_NONE;
			stmt_push(st, paren ? PK_TYPMOD : PK_TYPE_BRACKET);
			st->prev = PV_PUNCT;
			return true;
		}
	}
	st->type = TS_NONE;
	return false;
}

/* The WITH list at level L; true when the token was part of its syntax. */
static bool stmt_with_token(struct stmt *st, struct level *L, const struct lexer *lx,
			    const struct token *t, const char *w)
{
	bool name = t->type == TOK_IDENT || t->type == TOK_QIDENT;
	bool word = t->type == TOK_IDENT;
	switch ((enum with_state)L->with) {
	case W_NAME:
		if (word && strcmp(w, "recursive") == 0)
			return true;
		if (name) {
			L->with = W_AFTER_NAME;
			st->prev = PV_WORD;
			return true;
		}
		break;
	case W_AFTER_NAME:
		if (tok_punct(lx, t, '(')) {
			L->with = W_AFTER_COLS;
			stmt_push(st, PK_COLLIST);
			st->prev = PV_PUNCT;
			return true;
		}
		/* fall through */
	case W_AFTER_COLS:
		if (word && strcmp(w, "as") == 0) {
			L->with = W_AFTER_AS;
			st->prev = PV_AS;
			return true;
		}
		break;
	case W_AFTER_AS:
		if (word && (strcmp(w, "not") == 0 || strcmp(w, "materialized") == 0))
			return true;
		if (tok_punct(lx, t, '(')) {
			L->with = W_AFTER_BODY;
			stmt_push(st, PK_CTE_BODY);
			st->prev = PV_PUNCT;
			return true;
		}
		break;
	case W_AFTER_BODY:
		if (tok_punct(lx, t, ',')) {
			L->with = W_NAME;
			st->prev = PV_PUNCT;
			return true;
		}
		break;
	case W_NONE:
		break;
	}
	L->with = W_NONE;
	return false;
}

/* One token of a SELECT, WITH, VALUES or TABLE statement. */
static void stmt_query_token(struct stmt *st, const struct lexer *lx, const struct token *t)
{
	if (st->write)
		return;
	char w[CLASSIFY_NAME_MAX] = "";
	if (t->type == TOK_IDENT || t->type == TOK_QIDENT)
		tok_name(lx, t, w);
	struct level *L = &st->lv[st->depth];
	bool level_start = !L->started;
	L->started = true;

	bool was_call = st->call.active;
	bool name = t->type == TOK_IDENT || t->type == TOK_QIDENT;
	if (st->type != TS_NONE && stmt_type_token(st, lx, t, w)) {
		st->call.active = false;
		st->prev_word[0] = '\0';
		return;
	}
	if (st->prev == PV_DOT && name) {
		/* A qualified part is a name even when it spells a keyword. */
		if (was_call && st->call.dot) {
			memcpy(st->call.schema, st->call.name, sizeof(st->call.schema));
			copy_name(st->call.name, w);
			st->call.dot = false;
		} else {
			st->call.active = false;
		}
		st->prev = PV_WORD;
		st->prev_word[0] = '\0';
		return;
	}
	if (L->with != W_NONE && stmt_with_token(st, L, lx, t, w)) {
		st->call.active = false;
		st->prev_word[0] = '\0';
		return;
	}
	if (t->type == TOK_IDENT) {
		stmt_query_word(st, L, w, level_start);
		return;
	}
	if (t->type == TOK_QIDENT) {
		stmt_start_name(st, L, w);
		st->prev = PV_WORD;
		st->prev_flags = 0;
		st->prev_word[0] = '\0';
		st->lock = LK_NONE;
		return;
	}
	if (tok_punct(lx, t, '.')) {
		if (was_call)
			st->call.dot = true;
		st->prev = PV_DOT;
		st->lock = LK_NONE;
		return;
	}
	if (tok_punct(lx, t, '(')) {
		stmt_open_paren(st);
	} else if (tok_punct(lx, t, ')') || tok_punct(lx, t, ']')) {
		stmt_close_paren(st, lx->s[t->off]);
	} else if (tok_punct(lx, t, '[')) {
		stmt_push(st, PK_BRACKET);
		st->prev = PV_PUNCT;
	} else if (t->type == TOK_CAST) {
		st->type = TS_START;
		st->prev = PV_OP;
	} else if (t->type == TOK_OP) {
		st->prev = PV_OP;
	} else if (tok_literal(t)) {
		st->prev = PV_LITERAL;
	} else {
		st->prev = PV_PUNCT;
	}
	st->call.active = false;
	st->lock = LK_NONE;
	st->prev_word[0] = '\0';
}

/* A boolean option value as PostgreSQL reads it: 1 true, 0 false, -1 neither. */
static int explain_bool(const struct lexer *lx, const struct token *t)
{
	const char *p = lx->s + t->off;
	size_t n = t->len;
	if (t->type == TOK_STRING && n >= 2 && p[0] == '\'') {
		p++;
		n -= 2;
	} else if (t->type != TOK_IDENT && t->type != TOK_NUMBER) {
		return -1;
	}
	if (eq_ci(p, n, "true") || eq_ci(p, n, "on") || eq_ci(p, n, "yes") || eq_ci(p, n, "1"))
		return 1;
	if (eq_ci(p, n, "false") || eq_ci(p, n, "off") || eq_ci(p, n, "no") || eq_ci(p, n, "0"))
		return 0;
	return -1;
}

static void stmt_explain_token(struct stmt *st, const struct lexer *lx, const struct token *t)
{
	bool analyze_word = tok_word(lx, t, "analyze") || tok_word(lx, t, "analyse");
	switch (st->explain) {
	case EX_START:
		if (tok_punct(lx, t, '(')) {
			st->explain = EX_OPT_NAME;
			return;
		}
		if (analyze_word) {
			st->ex_analyze = true;
			return;
		}
		if (tok_word(lx, t, "verbose"))
			return;
		break;
	case EX_OPT_NAME:
		if (t->type != TOK_IDENT) {
			stmt_decide(st, "invalid EXPLAIN options", "");
			st->phase = PH_SKIP;
			return;
		}
		st->ex_opt_analyze = analyze_word;
		if (analyze_word)
			st->ex_analyze = true;
		st->explain = EX_OPT_VALUE;
		return;
	case EX_OPT_VALUE:
		if (tok_punct(lx, t, ','))
			st->explain = EX_OPT_NAME;
		else if (tok_punct(lx, t, ')'))
			st->explain = EX_AFTER_OPTS;
		else if (st->ex_opt_analyze) {
			int b = explain_bool(lx, t);
			if (b < 0) {
				stmt_decide(st, "invalid EXPLAIN options", "");
				st->phase = PH_SKIP;
			}
			st->ex_analyze = b > 0;
		}
		return;
	case EX_AFTER_OPTS:
		break;
	}
	/* The explained statement starts here. */
	st->ex_inner = true;
	st->phase = PH_SKIP;
	if (t->type != TOK_IDENT) {
		st->inner = CLASSIFY_OTHER;
		return;
	}
	char w[CLASSIFY_NAME_MAX];
	tok_name(lx, t, w);
	st->inner = kind_of_word(w);
	if (st->inner == CLASSIFY_OTHER)
		copy_name(st->detail, w);
	/* Without ANALYZE nothing runs, so only ANALYZE needs the statement read. */
	if (st->ex_analyze && kind_is_query(st->inner)) {
		st->phase = PH_QUERY;
		stmt_query_token(st, lx, t);
	}
}

/* A transaction mode word where a mode may start. */
static enum begin_state begin_mode(const char *w)
{
	if (strcmp(w, "isolation") == 0)
		return BG_ISOLATION;
	if (strcmp(w, "read") == 0)
		return BG_READ;
	if (strcmp(w, "not") == 0)
		return BG_NOT;
	if (strcmp(w, "deferrable") == 0)
		return BG_AFTER;
	return BG_BAD;
}

static void stmt_begin_token(struct stmt *st, const struct lexer *lx, const struct token *t)
{
	char w[CLASSIFY_NAME_MAX] = "";
	if (t->type == TOK_IDENT)
		tok_name(lx, t, w);
	bool comma = tok_punct(lx, t, ',');
	enum begin_state s = st->begin, next = BG_BAD;
	switch (s) {
	case BG_START:
		if (strcmp(w, "work") == 0 || strcmp(w, "transaction") == 0)
			next = BG_FIRST;
		else
			next = begin_mode(w);
		break;
	case BG_FIRST:
	case BG_NEED:
		next = begin_mode(w);
		break;
	case BG_AFTER:
		next = comma ? BG_NEED : begin_mode(w);
		break;
	case BG_ISOLATION:
		if (strcmp(w, "level") == 0)
			next = BG_LEVEL;
		break;
	case BG_LEVEL:
		if (strcmp(w, "serializable") == 0)
			next = BG_AFTER;
		else if (strcmp(w, "repeatable") == 0)
			next = BG_REPEATABLE;
		else if (strcmp(w, "read") == 0)
			next = BG_READ_LEVEL;
		break;
	case BG_REPEATABLE:
		if (strcmp(w, "read") == 0)
			next = BG_AFTER;
		break;
	case BG_READ_LEVEL:
		if (strcmp(w, "committed") == 0 || strcmp(w, "uncommitted") == 0)
			next = BG_AFTER;
		break;
	case BG_READ:
		if (strcmp(w, "only") == 0 || strcmp(w, "write") == 0) {
			st->begin_ro = w[0] == 'o';
			next = BG_AFTER;
		}
		break;
	case BG_NOT:
		if (strcmp(w, "deferrable") == 0)
			next = BG_AFTER;
		break;
	case BG_BAD:
		break;
	}
	st->begin = next;
	if (next == BG_BAD)
		st->phase = PH_SKIP;
}

/* The first token of a statement (or the first after leading parentheses). */
static void stmt_lead_token(struct stmt *st, const struct lexer *lx, const struct token *t)
{
	if (tok_punct(lx, t, '(')) {
		stmt_push(st, PK_PLAIN);
		return;
	}
	st->phase = PH_SKIP;
	if (t->type != TOK_IDENT) {
		st->kind = st->inner = CLASSIFY_OTHER;
		stmt_decide(st, "not a statement", "");
		return;
	}
	char w[CLASSIFY_NAME_MAX];
	tok_name(lx, t, w);
	enum classify_kind k = kind_of_word(w);
	st->kind = st->inner = k;
	if (k == CLASSIFY_OTHER)
		copy_name(st->detail, w);
	if (st->depth > 0 && !kind_is_query(k)) {
		st->kind = st->inner = CLASSIFY_OTHER;
		stmt_decide(st, "not a statement", w);
		return;
	}
	switch (k) {
	case CLASSIFY_SELECT:
	case CLASSIFY_WITH:
	case CLASSIFY_VALUES:
	case CLASSIFY_TABLE:
		st->phase = PH_QUERY;
		stmt_query_token(st, lx, t);
		break;
	case CLASSIFY_EXPLAIN:
		st->phase = PH_EXPLAIN;
		break;
	case CLASSIFY_BEGIN:
	case CLASSIFY_START:
		st->phase = PH_BEGIN;
		break;
	case CLASSIFY_SET:
		st->phase = PH_SET;
		break;
	case CLASSIFY_COMMIT:
	case CLASSIFY_ROLLBACK:
		st->phase = PH_TXN;
		break;
	case CLASSIFY_PREPARE:
		st->phase = PH_PREPARE;
		break;
	default:
		break;
	}
}

static void stmt_token(struct stmt *st, const struct lexer *lx, const struct token *t)
{
	st->ntok++;
	switch (st->phase) {
	case PH_LEAD:
		stmt_lead_token(st, lx, t);
		break;
	case PH_QUERY:
		stmt_query_token(st, lx, t);
		break;
	case PH_EXPLAIN:
		stmt_explain_token(st, lx, t);
		break;
	case PH_BEGIN:
		stmt_begin_token(st, lx, t);
		break;
	case PH_SET:
		st->set_local = tok_word(lx, t, "local");
		st->phase = PH_SKIP;
		break;
	case PH_TXN:
		if (tok_word(lx, t, "prepared"))
			st->kind = st->inner = CLASSIFY_OTHER;
		st->phase = PH_SKIP;
		break;
	case PH_PREPARE:
		if (tok_word(lx, t, "transaction"))
			st->kind = st->inner = CLASSIFY_PREPARE_TRANSACTION;
		st->phase = PH_SKIP;
		break;
	case PH_SKIP:
		break;
	}
}

/* The verdict on a whole statement: true when read-only, st->reason says why. */
static bool stmt_finish(struct stmt *st)
{
	if (st->phase == PH_LEAD) {
		st->kind = CLASSIFY_OTHER;
		stmt_decide(st, "not a statement", "");
	}
	if (st->phase == PH_QUERY && st->depth != 0)
		stmt_decide(st, "unbalanced parentheses", "");
	if (st->write)
		return false;
	switch (st->kind) {
	case CLASSIFY_SELECT:
	case CLASSIFY_WITH:
	case CLASSIFY_VALUES:
	case CLASSIFY_TABLE:
		st->reason = query_reason(st->kind);
		return true;
	case CLASSIFY_SHOW:
		st->reason = "read-only SHOW";
		return true;
	case CLASSIFY_EXPLAIN:
		if (!st->ex_inner) {
			stmt_decide(st, "EXPLAIN without a statement", "");
			return false;
		}
		if (!st->ex_analyze && kind_is_explainable(st->inner)) {
			st->reason = "read-only EXPLAIN";
			return true;
		}
		if (st->ex_analyze && kind_is_query(st->inner)) {
			st->reason = "read-only EXPLAIN ANALYZE";
			return true;
		}
		stmt_decide(st, kind_reasons[st->inner], st->detail);
		return false;
	case CLASSIFY_BEGIN:
	case CLASSIFY_START:
		if (st->begin != BG_START && st->begin != BG_FIRST && st->begin != BG_AFTER)
			st->begin_ro = false;
		break;
	default:
		break;
	}
	stmt_decide(st, kind_reasons[st->kind], st->detail);
	return false;
}

static bool kind_is_transaction_control(enum classify_kind k)
{
	return k == CLASSIFY_BEGIN || k == CLASSIFY_START || k == CLASSIFY_COMMIT ||
	       k == CLASSIFY_ROLLBACK || k == CLASSIFY_SAVEPOINT || k == CLASSIFY_RELEASE ||
	       k == CLASSIFY_PREPARE_TRANSACTION;
}

/* Folds a finished statement into the result of the whole text. */
struct fold {
	bool all_read_only;
	bool closed; /* a COMMIT/ROLLBACK followed the read-only BEGIN */
};

static void fold_statement(struct classify_result *out, struct fold *f, struct stmt *st)
{
	bool ro = stmt_finish(st);
	out->statement_count++;
	if (out->statement_count == 1) {
		out->kind = st->kind;
		out->set_local = st->kind == CLASSIFY_SET && st->set_local;
		out->is_transaction_control = kind_is_transaction_control(st->kind);
		out->begin_read_only = st->begin_ro && (st->kind == CLASSIFY_BEGIN ||
							 st->kind == CLASSIFY_START);
		out->reason = st->reason;
		copy_name(out->detail, st->detail);
	} else if (out->begin_read_only) {
		bool ends = st->kind == CLASSIFY_COMMIT || st->kind == CLASSIFY_ROLLBACK;
		bool fine = ro || st->kind == CLASSIFY_SAVEPOINT || st->kind == CLASSIFY_RELEASE || ends;
		if (f->closed || !fine)
			out->begin_read_only = false;
		f->closed = f->closed || ends;
	}
	if (!ro && f->all_read_only) {
		f->all_read_only = false;
		out->reason = st->reason;
		copy_name(out->detail, st->detail);
	}
}

bool classify_statement(const char *sql, size_t len, const struct classify_options *opts,
			struct classify_result *out)
{
	static const struct classify_options no_options;
	if (opts == NULL)
		opts = &no_options;
	memset(out, 0, sizeof(*out));
	out->kind = CLASSIFY_EMPTY;
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct stmt st;
	stmt_init(&st, opts);
	struct fold f = {.all_read_only = true, .closed = false};
	struct token t;
	for (;;) {
		lex_next(&lx, &t);
		if (t.type == TOK_ERROR) {
			out->lex_error = true;
			if (st.ntok > 0)
				fold_statement(out, &f, &st);
			break;
		}
		if (t.type == TOK_EOF || tok_punct(&lx, &t, ';')) {
			if (st.ntok > 0)
				fold_statement(out, &f, &st);
			if (t.type == TOK_EOF)
				break;
			stmt_init(&st, opts);
			continue;
		}
		stmt_token(&st, &lx, &t);
	}
	out->read_only = f.all_read_only && out->statement_count > 0 && !out->lex_error;
	if (out->lex_error && f.all_read_only) {
		out->reason = lx.error;
		out->detail[0] = '\0';
	} else if (out->statement_count == 0) {
		out->reason = "empty statement";
	}
	if (lx.hint_primary)
		out->hint = CLASSIFY_HINT_PRIMARY;
	else if (lx.hint_replica)
		out->hint = CLASSIFY_HINT_REPLICA;
	size_t rl = strlen(out->reason), dl = strlen(out->detail);
	if (rl > CLASSIFY_REASON_MAX - 1)
		rl = CLASSIFY_REASON_MAX - 1;
	memcpy(out->reason_text, out->reason, rl);
	if (dl > 0 && rl + 1 + dl < CLASSIFY_REASON_MAX) {
		out->reason_text[rl++] = ' ';
		memcpy(out->reason_text + rl, out->detail, dl);
		rl += dl;
	}
	out->reason_text[rl] = '\0';
	return !out->lex_error;
}

bool classify_next_statement(const char *sql, size_t len, size_t *pos, size_t *off,
			     size_t *stmt_len)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	lx.pos = *pos;
	struct token t;
	bool found = false;
	size_t start = *pos, end = len;
	for (;;) {
		lex_next(&lx, &t);
		if (t.type == TOK_EOF || tok_punct(&lx, &t, ';')) {
			end = t.type == TOK_EOF ? len : t.off;
			*pos = t.type == TOK_EOF ? len : t.off + 1;
			if (found || t.type == TOK_EOF)
				break;
			start = *pos; /* an empty statement: the next one starts after its ';' */
			continue;
		}
		found = true;
		if (t.type == TOK_ERROR) {
			end = *pos = len;
			break;
		}
	}
	if (!found)
		return false;
	/* Comments stay with their statement: they carry hints and application tags. */
	while (start < end && isspace((unsigned char)sql[start]))
		start++;
	while (end > start && isspace((unsigned char)sql[end - 1]))
		end--;
	*off = start;
	*stmt_len = end - start;
	return true;
}

enum classify_set classify_session_set(const char *sql, size_t len, char *name, char *value,
				       size_t value_cap)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct token t;
	lex_next(&lx, &t);
	bool reset = tok_word(&lx, &t, "reset");
	if (!reset && !tok_word(&lx, &t, "set"))
		return CLASSIFY_SET_NONE;
	lex_next(&lx, &t);
	if (!reset && tok_word(&lx, &t, "session"))
		lex_next(&lx, &t);
	/* SET LOCAL, SET SESSION AUTHORIZATION, SET ROLE, SET TIME ZONE, RESET ALL: not tracked. */
	static const char *const untracked[] = {"local", "authorization", "role", "time",
						"all", "transaction", "characteristics", "schema",
						"names", "constraints", "xml"};
	for (size_t i = 0; i < sizeof(untracked) / sizeof(untracked[0]); i++)
		if (tok_word(&lx, &t, untracked[i]))
			return CLASSIFY_SET_NONE;
	if (t.type != TOK_IDENT && t.type != TOK_QIDENT)
		return CLASSIFY_SET_NONE;
	/* name or custom.name, as the server folds it. */
	char part[CLASSIFY_NAME_MAX];
	tok_name(&lx, &t, name);
	lex_next(&lx, &t);
	if (tok_punct(&lx, &t, '.')) {
		lex_next(&lx, &t);
		if (t.type != TOK_IDENT && t.type != TOK_QIDENT)
			return CLASSIFY_SET_NONE;
		tok_name(&lx, &t, part);
		size_t n = strlen(name);
		if (n + 1 + strlen(part) >= CLASSIFY_NAME_MAX)
			return CLASSIFY_SET_NONE;
		name[n] = '.';
		memcpy(name + n + 1, part, strlen(part) + 1);
		lex_next(&lx, &t);
	}
	if (reset)
		return t.type == TOK_EOF ? CLASSIFY_SET_DEFAULT : CLASSIFY_SET_NONE;
	if (!tok_word(&lx, &t, "to") && !(t.type == TOK_OP && t.len == 1 && sql[t.off] == '='))
		return CLASSIFY_SET_NONE;
	lex_next(&lx, &t);
	if (tok_word(&lx, &t, "default")) {
		lex_next(&lx, &t);
		return t.type == TOK_EOF ? CLASSIFY_SET_DEFAULT : CLASSIFY_SET_NONE;
	}
	/* The value's tokens, comments dropped, one blank apart: the client's own words. */
	size_t o = 0;
	for (; t.type != TOK_EOF; lex_next(&lx, &t)) {
		if (t.type == TOK_ERROR || t.type == TOK_PARAM || o + t.len + 2 > value_cap)
			return CLASSIFY_SET_NONE;
		if (o > 0)
			value[o++] = ' ';
		memcpy(value + o, sql + t.off, t.len);
		o += t.len;
	}
	if (o == 0)
		return CLASSIFY_SET_NONE;
	value[o] = '\0';
	return CLASSIFY_SET_VALUE;
}

/* ---------- statements about prepared statements and session state ---------- */

enum classify_dealloc classify_deallocate(const char *sql, size_t len, char *name)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct token t;
	lex_next(&lx, &t);
	if (!tok_word(&lx, &t, "deallocate"))
		return CLASSIFY_DEALLOC_NONE;
	lex_next(&lx, &t);
	if (tok_word(&lx, &t, "prepare"))
		lex_next(&lx, &t);
	enum classify_dealloc kind = CLASSIFY_DEALLOC_NAME;
	if (tok_word(&lx, &t, "all"))
		kind = CLASSIFY_DEALLOC_ALL;
	else if (t.type == TOK_IDENT || t.type == TOK_QIDENT)
		tok_name(&lx, &t, name);
	else
		return CLASSIFY_DEALLOC_NONE;
	lex_next(&lx, &t);
	return t.type == TOK_EOF ? kind : CLASSIFY_DEALLOC_NONE;
}

bool classify_is_discard_all(const char *sql, size_t len)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct token t;
	lex_next(&lx, &t);
	if (!tok_word(&lx, &t, "discard"))
		return false;
	lex_next(&lx, &t);
	if (!tok_word(&lx, &t, "all"))
		return false;
	lex_next(&lx, &t);
	return t.type == TOK_EOF;
}

/* CREATE [OR REPLACE] [LOCAL | GLOBAL] TEMP | TEMPORARY ..., after the CREATE. */
static bool state_create_temp(struct lexer *lx, struct token *t)
{
	lex_next(lx, t);
	if (tok_word(lx, t, "or")) {
		lex_next(lx, t);
		if (!tok_word(lx, t, "replace"))
			return false;
		lex_next(lx, t);
	}
	if (tok_word(lx, t, "local") || tok_word(lx, t, "global"))
		lex_next(lx, t);
	return tok_word(lx, t, "temp") || tok_word(lx, t, "temporary");
}

/* DECLARE name ... CURSOR [WITH | WITHOUT HOLD] FOR, after the DECLARE. */
static bool state_hold_cursor(struct lexer *lx, struct token *t)
{
	bool with = false;
	for (lex_next(lx, t); t->type == TOK_IDENT || t->type == TOK_QIDENT; lex_next(lx, t)) {
		if (tok_word(lx, t, "for"))
			return false;
		if (with && tok_word(lx, t, "hold"))
			return true;
		with = tok_word(lx, t, "with");
	}
	return false;
}

/* A session-level advisory lock function; the _xact_ ones end with their transaction. */
static bool is_session_lock_function(const char *name)
{
	static const char *const names[] = {"pg_advisory_lock", "pg_advisory_lock_shared",
					    "pg_try_advisory_lock", "pg_try_advisory_lock_shared"};
	for (size_t i = 0; i < COUNT(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

enum classify_state classify_session_state(const char *sql, size_t len)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct token t;
	lex_next(&lx, &t);
	if (tok_word(&lx, &t, "listen"))
		return CLASSIFY_STATE_LISTEN;
	if (tok_word(&lx, &t, "create"))
		return state_create_temp(&lx, &t) ? CLASSIFY_STATE_TEMP_OBJECT
						  : CLASSIFY_STATE_NONE;
	if (tok_word(&lx, &t, "declare"))
		return state_hold_cursor(&lx, &t) ? CLASSIFY_STATE_HOLD_CURSOR
						  : CLASSIFY_STATE_NONE;
	bool select = tok_word(&lx, &t, "select");
	/* Calls anywhere in the statement; SELECT ... INTO TEMP makes a temporary table. */
	char name[CLASSIFY_NAME_MAX] = "";
	bool into = false;
	for (; t.type != TOK_EOF && t.type != TOK_ERROR; lex_next(&lx, &t)) {
		if (tok_punct(&lx, &t, '(') && is_session_lock_function(name))
			return CLASSIFY_STATE_ADVISORY_LOCK;
		if (select && into && (tok_word(&lx, &t, "temp") || tok_word(&lx, &t, "temporary")))
			return CLASSIFY_STATE_TEMP_OBJECT;
		into = tok_word(&lx, &t, "into");
		if (t.type == TOK_IDENT || t.type == TOK_QIDENT)
			tok_name(&lx, &t, name);
		else
			name[0] = '\0';
	}
	return CLASSIFY_STATE_NONE;
}

/* ---------- normalized text: fingerprints and batch keys ---------- */

/* Bytes produced: hashed all, stored while they fit. */
struct sink {
	char *buf;
	size_t cap;
	size_t len; /* all bytes produced, stored or not */
	uint64_t hash;
};

static void sink_init(struct sink *k, char *buf, size_t cap)
{
	k->buf = buf;
	k->cap = buf != NULL ? cap : 0;
	k->len = 0;
	k->hash = FNV_OFFSET;
}

static void sink_put(struct sink *k, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		k->hash ^= (unsigned char)p[i];
		k->hash *= FNV_PRIME;
	}
	if (k->len < k->cap) {
		size_t room = k->cap - k->len;
		memcpy(k->buf + k->len, p, n < room ? n : room);
	}
	k->len += n;
}

/* NUL-terminates what fits, cut at a UTF-8 boundary; returns the bytes kept. */
static size_t sink_finish(struct sink *k)
{
	if (k->cap == 0)
		return 0;
	size_t end = k->len;
	if (end >= k->cap) {
		end = k->cap - 1;
		while (end > 0 && ((unsigned char)k->buf[end] & 0xC0) == 0x80)
			end--;
	}
	k->buf[end] = '\0';
	return end;
}

/* How a normalized token spaces itself against its neighbours. */
enum norm_class {
	NC_START,
	NC_WORD,    /* names, literals, ? */
	NC_KEYWORD, /* a syntax word: "in (" keeps its space */
	NC_OPEN,
	NC_BRACKET,
	NC_CLOSE,
	NC_COMMA,
	NC_TIGHT, /* . :: : */
	NC_OP,
};

struct norm {
	struct sink *k;
	enum norm_class prev;
	bool semi; /* a ';' waits for a following statement */
};

static bool norm_space(enum norm_class prev, enum norm_class cur)
{
	if (prev == NC_START || prev == NC_OPEN || prev == NC_BRACKET || prev == NC_TIGHT)
		return false;
	switch (cur) {
	case NC_CLOSE:
	case NC_COMMA:
	case NC_TIGHT:
		return false;
	case NC_OPEN:
		return prev == NC_KEYWORD || prev == NC_OP || prev == NC_COMMA;
	case NC_BRACKET:
		return prev == NC_OP || prev == NC_COMMA;
	default:
		return true;
	}
}

static void norm_emit(struct norm *nm, enum norm_class cls, const char *p, size_t n, bool lower)
{
	if (nm->semi) {
		sink_put(nm->k, "; ", 2);
		nm->semi = false;
		nm->prev = NC_START;
	}
	if (norm_space(nm->prev, cls))
		sink_put(nm->k, " ", 1);
	if (lower) {
		char chunk[64];
		while (n > 0) {
			size_t c = n < sizeof(chunk) ? n : sizeof(chunk);
			for (size_t i = 0; i < c; i++)
				chunk[i] = lower_ascii(p[i]);
			sink_put(nm->k, chunk, c);
			p += c;
			n -= c;
		}
	} else {
		sink_put(nm->k, p, n);
	}
	nm->prev = cls;
}

/*
 * After IN ( or ARRAY [: true when nothing but literals (each perhaps with a
 * sign) and commas lead to the closing character; lx then stands past it.
 */
static bool norm_literal_list(struct lexer *lx, char close)
{
	struct lexer la = *lx;
	struct token t;
	for (;;) {
		lex_next(&la, &t);
		if (t.type == TOK_OP && t.len == 1 && (la.s[t.off] == '-' || la.s[t.off] == '+'))
			lex_next(&la, &t);
		if (!tok_literal(&t))
			return false;
		lex_next(&la, &t);
		if (tok_punct(&la, &t, close)) {
			*lx = la;
			return true;
		}
		if (!tok_punct(&la, &t, ','))
			return false;
	}
}

/* A '-' or '+' that is a literal's sign, not a binary operator; lx moves past the number. */
static bool norm_signed_number(struct lexer *lx, const struct token *t, enum norm_class prev)
{
	if (t->len != 1 || (lx->s[t->off] != '-' && lx->s[t->off] != '+'))
		return false;
	if (prev != NC_START && prev != NC_OPEN && prev != NC_BRACKET && prev != NC_COMMA &&
	    prev != NC_OP && prev != NC_KEYWORD)
		return false;
	struct lexer la = *lx;
	struct token n;
	if (lex_next(&la, &n) != TOK_NUMBER)
		return false;
	*lx = la;
	return true;
}

/* Writes the normalized text of sql into k; literals become ? unless keep_literals. */
static void norm_run(const char *sql, size_t len, bool keep_literals, struct sink *k)
{
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct norm nm = {.k = k, .prev = NC_START, .semi = false};
	bool after_in = false, after_array = false;
	struct token t;
	for (;;) {
		lex_next(&lx, &t);
		if (t.type == TOK_EOF)
			break;
		if (t.type == TOK_ERROR) {
			norm_emit(&nm, NC_WORD, "?", 1, false);
			break;
		}
		const char *p = sql + t.off;
		bool was_in = after_in, was_array = after_array;
		after_in = after_array = false;
		switch (t.type) {
		case TOK_IDENT: {
			char w[CLASSIFY_NAME_MAX];
			tok_name(&lx, &t, w);
			const struct keyword *kw = keyword_find(w);
			bool syntax = kw != NULL && (kw->flags & (KW_NONCALL | KW_ARGS)) == KW_NONCALL;
			norm_emit(&nm, syntax ? NC_KEYWORD : NC_WORD, p, t.len, true);
			after_in = strcmp(w, "in") == 0;
			after_array = strcmp(w, "array") == 0;
			break;
		}
		case TOK_STRING:
		case TOK_NUMBER:
		case TOK_PARAM:
			if (keep_literals)
				norm_emit(&nm, NC_WORD, p, t.len, false);
			else
				norm_emit(&nm, NC_WORD, "?", 1, false);
			break;
		case TOK_OP:
			if (!keep_literals && norm_signed_number(&lx, &t, nm.prev))
				norm_emit(&nm, NC_WORD, "?", 1, false);
			else
				norm_emit(&nm, NC_OP, p, t.len, false);
			break;
		case TOK_CAST:
			norm_emit(&nm, NC_TIGHT, p, t.len, false);
			break;
		case TOK_PUNCT:
			switch (*p) {
			case '(':
				if (!keep_literals && was_in && norm_literal_list(&lx, ')')) {
					norm_emit(&nm, NC_OPEN, "(", 1, false);
					norm_emit(&nm, NC_WORD, "?", 1, false);
					norm_emit(&nm, NC_CLOSE, ")", 1, false);
				} else {
					norm_emit(&nm, NC_OPEN, p, 1, false);
				}
				break;
			case '[':
				if (!keep_literals && was_array && norm_literal_list(&lx, ']')) {
					norm_emit(&nm, NC_BRACKET, "[", 1, false);
					norm_emit(&nm, NC_WORD, "?", 1, false);
					norm_emit(&nm, NC_CLOSE, "]", 1, false);
				} else {
					norm_emit(&nm, NC_BRACKET, p, 1, false);
				}
				break;
			case ')':
			case ']':
				norm_emit(&nm, NC_CLOSE, p, 1, false);
				break;
			case ',':
				norm_emit(&nm, NC_COMMA, p, 1, false);
				break;
			case ';':
				nm.semi = nm.prev != NC_START;
				break;
			default: /* . : */
				norm_emit(&nm, NC_TIGHT, p, 1, false);
				break;
			}
			break;
		default: /* TOK_QIDENT: kept as written */
			norm_emit(&nm, NC_WORD, p, t.len, false);
			break;
		}
	}
}

uint64_t classify_fingerprint(const char *sql, size_t len, char *norm, size_t norm_cap,
			      size_t *norm_len)
{
	struct sink k;
	sink_init(&k, norm, norm_cap);
	norm_run(sql, len, false, &k);
	sink_finish(&k);
	if (norm_len != NULL)
		*norm_len = k.len;
	return k.hash;
}

/* ---------- redaction ---------- */

size_t classify_redact(const char *sql, size_t len, char *out, size_t cap)
{
	struct sink k;
	sink_init(&k, out, cap);
	struct lexer lx;
	lex_init(&lx, sql, len);
	size_t done = 0;
	struct token t;
	for (;;) {
		lex_next(&lx, &t);
		sink_put(&k, sql + done, t.off - done);
		done = t.off;
		if (t.type == TOK_EOF)
			break;
		if (t.type == TOK_ERROR) {
			sink_put(&k, "?", 1);
			break;
		}
		if (t.type == TOK_STRING || t.type == TOK_NUMBER)
			sink_put(&k, "?", 1);
		else
			sink_put(&k, sql + t.off, t.len);
		done = t.off + t.len;
	}
	return sink_finish(&k);
}

/* ---------- insert shape ---------- */

static bool tok_is_name(const struct token *t)
{
	return t->type == TOK_IDENT || t->type == TOK_QIDENT;
}

/* Parameter bookkeeping for the one VALUES row. */
struct param_use {
	unsigned max, count;
	bool repeated;
	unsigned char seen[(CLASSIFY_MAX_CHECKED_PARAMS + 7) / 8];
};

static bool param_note(struct param_use *pu, const char *p, size_t n)
{
	unsigned v = param_number(p, n);
	if (v == 0)
		return false;
	if (v > pu->max)
		pu->max = v;
	pu->count++;
	if (v > CLASSIFY_MAX_CHECKED_PARAMS) {
		pu->repeated = true; /* cannot tell: say "not exact" */
	} else {
		unsigned char bit = (unsigned char)(1u << ((v - 1) % 8));
		if (pu->seen[(v - 1) / 8] & bit)
			pu->repeated = true;
		pu->seen[(v - 1) / 8] |= bit;
	}
	return true;
}

/* The row after VALUES (; t ends on its closing ')'. */
static bool insert_row(struct lexer *lx, struct token *t, struct insert_shape *sh,
		       struct param_use *pu)
{
	size_t depth = 1;
	bool empty = true;
	sh->n_values = 1;
	for (;;) {
		lex_next(lx, t);
		switch (t->type) {
		case TOK_EOF:
		case TOK_ERROR:
			return false;
		case TOK_PARAM:
			if (!param_note(pu, lx->s + t->off, t->len))
				return false;
			break;
		case TOK_IDENT:
			if (tok_word(lx, t, "select") || tok_word(lx, t, "with") ||
			    tok_word(lx, t, "values") || tok_word(lx, t, "table"))
				return false;
			break;
		case TOK_PUNCT:
			switch (lx->s[t->off]) {
			case '(':
			case '[':
				depth++;
				break;
			case ')':
			case ']':
				if (--depth == 0)
					return lx->s[t->off] == ')' && !empty;
				break;
			case ',':
				if (depth == 1)
					sh->n_values++;
				break;
			case ';':
				return false;
			default:
				break;
			}
			break;
		default:
			break;
		}
		empty = false;
	}
}

/* After ON CONFLICT: [(target) [WHERE ...] | ON CONSTRAINT name] DO NOTHING. */
static bool insert_conflict(struct lexer *lx, struct token *t)
{
	lex_next(lx, t);
	if (tok_punct(lx, t, '(')) {
		size_t depth = 1;
		while (depth > 0) {
			lex_next(lx, t);
			if (t->type == TOK_EOF || t->type == TOK_ERROR || t->type == TOK_PARAM ||
			    tok_punct(lx, t, ';'))
				return false;
			if (tok_punct(lx, t, '('))
				depth++;
			else if (tok_punct(lx, t, ')'))
				depth--;
		}
		lex_next(lx, t);
		if (tok_word(lx, t, "where")) {
			size_t d = 0;
			for (;;) {
				lex_next(lx, t);
				if (t->type == TOK_EOF || t->type == TOK_ERROR ||
				    t->type == TOK_PARAM || tok_punct(lx, t, ';'))
					return false;
				if (d == 0 && tok_word(lx, t, "do"))
					break;
				if (tok_punct(lx, t, '('))
					d++;
				else if (tok_punct(lx, t, ')') && d-- == 0)
					return false;
			}
		}
	} else if (tok_word(lx, t, "on")) {
		lex_next(lx, t);
		if (!tok_word(lx, t, "constraint"))
			return false;
		lex_next(lx, t);
		if (!tok_is_name(t))
			return false;
		lex_next(lx, t);
	}
	if (!tok_word(lx, t, "do"))
		return false;
	lex_next(lx, t);
	return tok_word(lx, t, "nothing");
}

static uint64_t insert_batch_key(const char *sql, const struct insert_shape *sh)
{
	struct sink k;
	sink_init(&k, NULL, 0);
	norm_run(sql + sh->table_off, sh->table_len, true, &k);
	sink_put(&k, "\x1f", 1);
	norm_run(sql + sh->columns_off, sh->columns_len, true, &k);
	sink_put(&k, "\x1f", 1);
	char digits[16];
	size_t n = 0;
	unsigned v = sh->n_values;
	do {
		digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	sink_put(&k, digits + sizeof(digits) - n, n);
	sink_put(&k, "\x1f", 1);
	norm_run(sql + sh->conflict_off, sh->conflict_len, true, &k);
	return k.hash;
}

bool classify_insert_shape(const char *sql, size_t len, struct insert_shape *out)
{
	memset(out, 0, sizeof(*out));
	struct insert_shape sh;
	memset(&sh, 0, sizeof(sh));
	struct param_use pu;
	memset(&pu, 0, sizeof(pu));
	struct lexer lx;
	lex_init(&lx, sql, len);
	struct token t;

	lex_next(&lx, &t);
	if (!tok_word(&lx, &t, "insert"))
		return false;
	lex_next(&lx, &t);
	if (!tok_word(&lx, &t, "into"))
		return false;
	lex_next(&lx, &t);
	if (!tok_is_name(&t))
		return false;
	sh.table_off = t.off;
	size_t end = t.off + t.len;
	for (int parts = 1;; parts++) {
		lex_next(&lx, &t);
		if (!tok_punct(&lx, &t, '.'))
			break;
		lex_next(&lx, &t);
		if (parts == 3 || !tok_is_name(&t))
			return false;
		end = t.off + t.len;
	}
	sh.table_len = end - sh.table_off;

	if (tok_punct(&lx, &t, '(')) {
		sh.columns_off = t.off;
		for (;;) {
			lex_next(&lx, &t);
			if (!tok_is_name(&t))
				return false;
			lex_next(&lx, &t);
			if (tok_punct(&lx, &t, ')'))
				break;
			if (!tok_punct(&lx, &t, ','))
				return false;
		}
		sh.columns_len = t.off + 1 - sh.columns_off;
		lex_next(&lx, &t);
	}
	if (!tok_word(&lx, &t, "values"))
		return false;
	lex_next(&lx, &t);
	if (!tok_punct(&lx, &t, '('))
		return false;
	sh.values_off = t.off + 1;
	if (!insert_row(&lx, &t, &sh, &pu))
		return false;
	sh.values_len = t.off - sh.values_off;

	lex_next(&lx, &t);
	if (tok_word(&lx, &t, "on")) {
		sh.conflict_off = t.off;
		lex_next(&lx, &t);
		if (!tok_word(&lx, &t, "conflict") || !insert_conflict(&lx, &t))
			return false;
		sh.conflict_len = t.off + t.len - sh.conflict_off;
		lex_next(&lx, &t);
	}
	if (tok_punct(&lx, &t, ';'))
		lex_next(&lx, &t);
	if (t.type != TOK_EOF)
		return false;

	sh.max_param = pu.max;
	sh.params_exact = !pu.repeated && pu.count == pu.max;
	sh.batch_key = insert_batch_key(sql, &sh);
	*out = sh;
	return true;
}

bool classify_shift_params(const char *text, size_t len, unsigned shift, char *out, size_t cap,
			   size_t *out_len)
{
	struct sink k;
	sink_init(&k, out, cap);
	struct lexer lx;
	lex_init(&lx, text, len);
	size_t done = 0;
	bool ok = true;
	struct token t;
	while (ok) {
		lex_next(&lx, &t);
		if (t.type == TOK_EOF)
			break;
		if (t.type == TOK_ERROR) {
			ok = false;
		} else if (t.type == TOK_PARAM) {
			unsigned v = param_number(text + t.off, t.len);
			if (v == 0 || shift > PARAM_MAX - v) {
				ok = false;
				break;
			}
			v += shift;
			char num[8];
			size_t n = 0;
			while (v > 0) {
				num[sizeof(num) - 1 - n++] = (char)('0' + v % 10);
				v /= 10;
			}
			num[sizeof(num) - 1 - n++] = '$';
			sink_put(&k, text + done, t.off - done);
			sink_put(&k, num + sizeof(num) - n, n);
			done = t.off + t.len;
		}
	}
	if (ok)
		sink_put(&k, text + done, len - done);
	if (!ok || k.len >= cap) {
		if (cap > 0 && out != NULL)
			out[0] = '\0';
		*out_len = 0;
		return false;
	}
	*out_len = sink_finish(&k);
	return true;
}
