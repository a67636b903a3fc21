/*
 * hba.c - the hba_file (hba.h): pg_hba.conf lines become an array of rules.
 *
 * Parsed at start and on every reload, matched at every client login before
 * authentication. A logical line (continuations joined) is split into fields
 * of comma-separated tokens, quotes removed, then each field is checked in
 * turn. Every name of every rule sits in one string pool, and addresses are
 * kept as 16-byte IPv6 with IPv4 as ::ffff:a.b.c.d (a /n prefix becoming
 * /96+n), so that one masked comparison serves both families and clients
 * that arrive as IPv4-mapped IPv6.
 */
#include "hba.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HBA_FILE_MAX    ((size_t)64 << 20) /* 10 000 rules of 4096 bytes fit, with comments */
#define HBA_SHOW_MAX    48  /* bytes of a token quoted in an error message */
#define HBA_SHOW_SIZE   (HBA_SHOW_MAX * 4 + 8)
#define HBA_NAME_SHOW   128 /* bytes of a client's user or database name in a log line */
#define HBA_MORE_ROOM   48  /* error buffer bytes kept for the "(N more errors)" line */
/* Every token but the last takes a character and a separator. */
#define HBA_MAX_TOKENS  (HBA_LINE_MAX / 2 + 1)

enum hba_conn { HBA_CONN_LOCAL, HBA_CONN_HOST, HBA_CONN_HOSTSSL, HBA_CONN_HOSTNOSSL };

enum hba_addr_kind { HBA_ADDR_ALL, HBA_ADDR_CIDR, HBA_ADDR_SAMEHOST, HBA_ADDR_SAMENET };

enum hba_name_kind { HBA_NAME_LITERAL, HBA_NAME_ALL, HBA_NAME_SAMEUSER, HBA_NAME_REPLICATION };

struct hba_name {
	enum hba_name_kind kind;
	uint32_t off; /* LITERAL: of the NUL-terminated name in the pool */
};

struct hba_entry {
	struct hba_rule rule; /* what hba_match() hands out */
	enum hba_conn conn;
	enum hba_addr_kind addr_kind;
	uint8_t addr[16]; /* CIDR: the network, already masked */
	uint8_t mask[16];
	uint32_t db_first, db_count; /* a run of names[] */
	uint32_t user_first, user_count;
};

struct hba_rules {
	struct hba_entry *entries;
	size_t n_entries, cap_entries;
	struct hba_name *names;
	size_t n_names, cap_names;
	char *pool; /* fits in uint32_t offsets: it is smaller than HBA_FILE_MAX */
	size_t pool_len, pool_cap;
};

struct hba_token {
	const char *s; /* NUL-terminated, quotes removed */
	size_t len;
	bool quoted; /* some of it was in double quotes: never a keyword */
};

struct hba_field {
	const struct hba_token *tok;
	size_t n; /* tokens in the comma-separated list, at least one */
};

struct hba_parser {
	const char *name; /* the file, for messages */
	struct hba_rules *rules;
	bool too_many; /* HBA_MAX_RULES was reached and reported */
	char *err;
	size_t err_len, err_used;
	bool err_full; /* later errors are only counted, so that the shown ones stay in order */
	int n_errors, n_dropped;
	int line;   /* where the logical line starts */
	char text[HBA_LINE_MAX + 1];
	size_t text_len;
	bool text_too_long;
	char scratch[HBA_LINE_MAX + HBA_MAX_TOKENS + 1]; /* token texts */
	struct hba_token tokens[HBA_MAX_TOKENS];
	struct hba_field fields[HBA_MAX_TOKENS];
	size_t n_fields;
};

static const struct {
	const char *name;
	enum hba_method method;
} hba_methods[] = {
	{"trust", HBA_METHOD_TRUST},	   {"reject", HBA_METHOD_REJECT},
	{"md5", HBA_METHOD_MD5},	   {"scram-sha-256", HBA_METHOD_SCRAM_SHA_256},
	{"password", HBA_METHOD_PASSWORD}, {"cert", HBA_METHOD_CERT},
};

/* PostgreSQL methods that need something pgsluice does not have. */
static const char *const hba_unsupported_methods[] = {
	"peer", "ident", "gss", "sspi", "ldap", "radius", "pam", "bsd", "oauth",
};

static bool hba_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Writes at most max bytes of s into buf (size bytes), with bytes that are
 * not printable ASCII as \xNN and "..." when s was cut. Returns buf.
 */
static const char *hba_escape(const char *s, size_t max, char *buf, size_t size)
{
	size_t n = 0, i;

	for (i = 0; i < max && s[i] != '\0' && n + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[n++] = (char)c;
		else
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
	}
	if (s[i] != '\0' && n + 4 <= size) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* A token fit for an error message; the text lives until the end of the enclosing block. */
#define HBA_SHOW(s) hba_escape((s), HBA_SHOW_MAX, (char[HBA_SHOW_SIZE]){""}, HBA_SHOW_SIZE)

static void hba_error(struct hba_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void hba_error(struct hba_parser *p, int line, const char *fmt, ...)
{
	char msg[512], entry[PATH_MAX + sizeof(msg) + 32];
	va_list ap;

	p->n_errors++;
	if (p->err == NULL || p->err_len == 0)
		return;
	if (p->err_full) {
		p->n_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(entry, sizeof(entry), "%s:%d: %s", p->name, line, msg);
	else
		snprintf(entry, sizeof(entry), "%s: %s", p->name, msg);
	size_t len = strlen(entry);
	size_t sep = p->err_used > 0 ? 1 : 0;
	if (p->err_used + sep + len + HBA_MORE_ROOM < p->err_len) {
		if (sep)
			p->err[p->err_used++] = '\n';
		memcpy(p->err + p->err_used, entry, len + 1);
		p->err_used += len;
	} else if (p->err_used == 0) {
		/* Too small a buffer still shows the start of the first problem. */
		snprintf(p->err, p->err_len, "%s", entry);
		p->err_used = strlen(p->err);
		p->err_full = true;
	} else {
		p->err_full = true;
		p->n_dropped++;
	}
}

/* Makes room for one more element in an array of elements of size bytes. */
static bool hba_grow(void **array, size_t *cap, size_t used, size_t size)
{
	if (used < *cap)
		return true;
	size_t cap2 = *cap == 0 ? 64 : *cap * 2;
	void *p = realloc(*array, cap2 * size);
	if (p == NULL)
		return false;
	*array = p;
	*cap = cap2;
	return true;
}

static bool hba_add_name(struct hba_parser *p, enum hba_name_kind kind, const struct hba_token *t)
{
	struct hba_rules *r = p->rules;
	uint32_t off = 0;

	if (kind == HBA_NAME_LITERAL) {
		while (r->pool_len + t->len + 1 > r->pool_cap) {
			size_t cap = r->pool_cap == 0 ? 4096 : r->pool_cap * 2;
			char *pool = realloc(r->pool, cap);
			if (pool == NULL)
				goto oom;
			r->pool = pool;
			r->pool_cap = cap;
		}
		off = (uint32_t)r->pool_len;
		memcpy(r->pool + off, t->s, t->len + 1);
		r->pool_len += t->len + 1;
	}
	if (!hba_grow((void **)&r->names, &r->cap_names, r->n_names, sizeof(*r->names)))
		goto oom;
	r->names[r->n_names++] = (struct hba_name){kind, off};
	return true;
oom:
	hba_error(p, p->line, "out of memory");
	return false;
}

/*
 * Splits p->text into fields. Quotes may cover any part of a token and make
 * it literal; "" inside quotes is one quote; blanks after a comma continue
 * the list. Returns false (after reporting) on a malformed line.
 */
static bool hba_tokenize(struct hba_parser *p)
{
	const char *r = p->text;
	char *w = p->scratch;
	size_t n_tok = 0;

	p->n_fields = 0;
	for (;;) {
		while (hba_is_blank(*r))
			r++;
		if (*r == '\0' || *r == '#')
			return true;
		struct hba_field *f = &p->fields[p->n_fields++];
		f->tok = &p->tokens[n_tok];
		f->n = 0;
		for (;;) {
			struct hba_token *t = &p->tokens[n_tok++];
			bool in_quote = false;

			t->s = w;
			t->quoted = false;
			for (; *r != '\0'; r++) {
				if (*r == '"') {
					if (in_quote && r[1] == '"') {
						*w++ = '"';
						r++;
					} else {
						in_quote = !in_quote;
						t->quoted = true;
					}
					continue;
				}
				if (!in_quote && (hba_is_blank(*r) || *r == ',' || *r == '#'))
					break;
				*w++ = *r;
			}
			if (in_quote) {
				hba_error(p, p->line, "unterminated double quote");
				return false;
			}
			t->len = (size_t)(w - t->s);
			*w++ = '\0';
			f->n++;
			if (t->len == 0 && !t->quoted) {
				hba_error(p, p->line, "empty item in a comma-separated list");
				return false;
			}
			if (*r != ',')
				break;
			r++;
			while (hba_is_blank(*r))
				r++;
			if (*r == '\0' || *r == '#') {
				hba_error(p, p->line, "comma-separated list ends with a comma");
				return false;
			}
		}
	}
}

/* The field after *fi, or NULL (reported) when the line ends before the field called what. */
static const struct hba_field *hba_next_field(struct hba_parser *p, size_t *fi, const char *what)
{
	if (*fi == p->n_fields) {
		hba_error(p, p->line, "end of line before the %s field", what);
		return NULL;
	}
	return &p->fields[(*fi)++];
}

/* The only token of f, or NULL (reported) when f is a list. */
static const struct hba_token *hba_single(struct hba_parser *p, const struct hba_field *f,
					  const char *what)
{
	if (f->n != 1) {
		hba_error(p, p->line, "the %s field takes one value, not a list", what);
		return NULL;
	}
	return &f->tok[0];
}

static bool hba_keyword(const struct hba_token *t, const char *kw)
{
	return !t->quoted && strcmp(t->s, kw) == 0;
}

/* Adds the names of a DATABASE (is_db) or USER field; *first and *count locate them. */
static bool hba_parse_names(struct hba_parser *p, const struct hba_field *f, bool is_db,
			    uint32_t *first, uint32_t *count)
{
	const char *what = is_db ? "database" : "user";

	*first = (uint32_t)p->rules->n_names;
	*count = (uint32_t)f->n;
	for (size_t i = 0; i < f->n; i++) {
		const struct hba_token *t = &f->tok[i];
		enum hba_name_kind kind = HBA_NAME_LITERAL;

		if (hba_keyword(t, "all")) {
			kind = HBA_NAME_ALL;
		} else if (is_db && hba_keyword(t, "sameuser")) {
			kind = HBA_NAME_SAMEUSER;
		} else if (is_db && hba_keyword(t, "replication")) {
			kind = HBA_NAME_REPLICATION;
		} else if (is_db && (hba_keyword(t, "samerole") || hba_keyword(t, "samegroup"))) {
			hba_error(p, p->line, "%s is not supported (pgsluice does not read role "
					      "membership)", t->s);
			return false;
		} else if (!t->quoted && t->s[0] == '@') {
			hba_error(p, p->line, "file inclusion (\"%s\") is not supported",
				  HBA_SHOW(t->s));
			return false;
		} else if (!is_db && !t->quoted && t->s[0] == '+') {
			hba_error(p, p->line, "group membership (\"%s\") is not supported",
				  HBA_SHOW(t->s));
			return false;
		} else if (t->len == 0) {
			hba_error(p, p->line, "empty %s name", what);
			return false;
		}
		if (!hba_add_name(p, kind, t))
			return false;
	}
	return true;
}

/* Address bytes of family af as the 16-byte form used everywhere in this file. */
static void hba_addr16(int af, const void *bytes, uint8_t out[16])
{
	if (af == AF_INET6) {
		memcpy(out, bytes, 16);
	} else {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, bytes, 4);
	}
}

/* A netmask of family af in the 16-byte form: an IPv4 one is prefixed by 96 one bits. */
static void hba_mask16(int af, const void *bytes, uint8_t out[16])
{
	if (af == AF_INET6) {
		memcpy(out, bytes, 16);
	} else {
		memset(out, 0xff, 12);
		memcpy(out + 12, bytes, 4);
	}
}

static void hba_prefix_mask(unsigned bits, uint8_t mask[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned b = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
		mask[i] = (uint8_t)(0xff00u >> b);
	}
}

static bool hba_mask_contiguous(const uint8_t mask[16])
{
	bool zero_seen = false;

	for (unsigned i = 0; i < 128; i++) {
		bool one = mask[i / 8] & (0x80u >> (i % 8));
		if (one && zero_seen)
			return false;
		if (!one)
			zero_seen = true;
	}
	return true;
}

/* a & mask == net & mask, where net is already masked. */
static bool hba_in_net(const uint8_t a[16], const uint8_t net[16], const uint8_t mask[16])
{
	for (unsigned i = 0; i < 16; i++)
		if ((a[i] & mask[i]) != net[i])
			return false;
	return true;
}

/* Reads an IPv4 or IPv6 address; returns its family, or 0. */
static int hba_parse_ip(const char *s, uint8_t bytes[16])
{
	if (inet_pton(AF_INET, s, bytes) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, bytes) == 1)
		return AF_INET6;
	return 0;
}

/* Parses ADDRESS (and NETMASK when ADDRESS has no /len) into e. */
static bool hba_parse_address(struct hba_parser *p, size_t *fi, struct hba_entry *e)
{
	const struct hba_field *f = hba_next_field(p, fi, "address");
	const struct hba_token *t = f == NULL ? NULL : hba_single(p, f, "address");
	char ip[INET6_ADDRSTRLEN + 8];
	uint8_t bytes[16];

	if (t == NULL)
		return false;
	if (hba_keyword(t, "all")) {
		e->addr_kind = HBA_ADDR_ALL;
		return true;
	}
	if (hba_keyword(t, "samehost")) {
		e->addr_kind = HBA_ADDR_SAMEHOST;
		return true;
	}
	if (hba_keyword(t, "samenet")) {
		e->addr_kind = HBA_ADDR_SAMENET;
		return true;
	}
	const char *slash = strchr(t->s, '/');
	size_t ip_len = slash != NULL ? (size_t)(slash - t->s) : t->len;
	int af = 0;
	if (ip_len < sizeof(ip)) {
		memcpy(ip, t->s, ip_len);
		ip[ip_len] = '\0';
		af = hba_parse_ip(ip, bytes);
	}
	if (af == 0) {
		hba_error(p, p->line, "\"%s\" is not an IP address (host names are not supported)",
			  HBA_SHOW(t->s));
		return false;
	}
	e->addr_kind = HBA_ADDR_CIDR;
	hba_addr16(af, bytes, e->addr);
	if (slash != NULL) {
		unsigned max = af == AF_INET ? 32 : 128, bits = 0;
		const char *d = slash + 1;
		size_t n = strspn(d, "0123456789");
		if (n == 0 || n > 3 || d[n] != '\0' || (bits = (unsigned)atoi(d)) > max) {
			hba_error(p, p->line, "invalid prefix length in \"%s\" (0 to %u)",
				  HBA_SHOW(t->s), max);
			return false;
		}
		hba_prefix_mask(af == AF_INET ? 96 + bits : bits, e->mask);
	} else {
		f = hba_next_field(p, fi, "netmask");
		const struct hba_token *m = f == NULL ? NULL : hba_single(p, f, "netmask");
		if (m == NULL)
			return false;
		int maf = hba_parse_ip(m->s, bytes);
		if (maf == 0) {
			hba_error(p, p->line, "invalid netmask \"%s\" (an address without /len "
					      "needs a netmask column)", HBA_SHOW(m->s));
			return false;
		}
		if (maf != af) {
			hba_error(p, p->line, "netmask \"%s\" and address \"%s\" are not of the "
					      "same IP version", HBA_SHOW(m->s), HBA_SHOW(t->s));
			return false;
		}
		hba_mask16(af, bytes, e->mask);
		if (!hba_mask_contiguous(e->mask)) {
			hba_error(p, p->line, "netmask \"%s\" is not contiguous", HBA_SHOW(m->s));
			return false;
		}
	}
	for (unsigned i = 0; i < 16; i++)
		e->addr[i] &= e->mask[i];
	return true;
}

static bool hba_parse_method(struct hba_parser *p, const struct hba_token *t, struct hba_entry *e)
{
	for (size_t i = 0; i < sizeof(hba_methods) / sizeof(hba_methods[0]); i++) {
		if (strcmp(t->s, hba_methods[i].name) != 0)
			continue;
		e->rule.method = hba_methods[i].method;
		if (e->rule.method == HBA_METHOD_CERT) {
			if (e->conn != HBA_CONN_HOSTSSL) {
				hba_error(p, p->line, "cert authentication is only possible on "
						      "hostssl lines");
				return false;
			}
			e->rule.clientcert = HBA_CLIENTCERT_VERIFY_FULL;
		}
		return true;
	}
	for (size_t i = 0; i < sizeof(hba_unsupported_methods) / sizeof(char *); i++) {
		if (strcmp(t->s, hba_unsupported_methods[i]) == 0) {
			hba_error(p, p->line, "authentication method \"%s\" is not supported by "
					      "pgsluice", t->s);
			return false;
		}
	}
	hba_error(p, p->line, "unknown authentication method \"%s\"", HBA_SHOW(t->s));
	return false;
}

static bool hba_parse_option(struct hba_parser *p, const struct hba_token *t, struct hba_entry *e,
			     bool *seen_clientcert)
{
	const char *eq = strchr(t->s, '=');

	static const char clientcert[] = "clientcert";

	if (eq == NULL) {
		hba_error(p, p->line, "invalid option \"%s\" (expected name=value)",
			  HBA_SHOW(t->s));
		return false;
	}
	size_t name_len = (size_t)(eq - t->s);
	if (name_len != strlen(clientcert) || memcmp(t->s, clientcert, name_len) != 0) {
		hba_error(p, p->line, "unknown option \"%s\" (only clientcert is supported)",
			  HBA_SHOW(t->s));
		return false;
	}
	if (*seen_clientcert) {
		hba_error(p, p->line, "clientcert is given twice");
		return false;
	}
	*seen_clientcert = true;
	if (e->conn != HBA_CONN_HOSTSSL) {
		hba_error(p, p->line, "clientcert is only possible on hostssl lines");
		return false;
	}
	if (strcmp(eq + 1, "verify-full") == 0) {
		e->rule.clientcert = HBA_CLIENTCERT_VERIFY_FULL;
	} else if (strcmp(eq + 1, "verify-ca") == 0) {
		if (e->rule.method == HBA_METHOD_CERT) {
			hba_error(p, p->line, "clientcert=verify-ca cannot be used with cert "
					      "authentication, which always verifies the full "
					      "certificate");
			return false;
		}
		e->rule.clientcert = HBA_CLIENTCERT_VERIFY_CA;
	} else {
		hba_error(p, p->line, "invalid clientcert value \"%s\" (expected verify-ca or "
				      "verify-full)", HBA_SHOW(eq + 1));
		return false;
	}
	return true;
}

/* Turns the fields of the current line into a rule. */
static void hba_parse_rule(struct hba_parser *p)
{
	struct hba_entry e = {.rule.line = p->line, .rule.clientcert = HBA_CLIENTCERT_NONE};
	struct hba_rules *r = p->rules;
	size_t fi = 1; /* the line has at least one field */
	const struct hba_field *f;
	const struct hba_token *t = hba_single(p, &p->fields[0], "connection type");

	if (t == NULL)
		return;
	if (strcmp(t->s, "local") == 0) {
		e.conn = HBA_CONN_LOCAL;
	} else if (strcmp(t->s, "host") == 0 || strcmp(t->s, "hostnogssenc") == 0) {
		e.conn = HBA_CONN_HOST;
	} else if (strcmp(t->s, "hostssl") == 0) {
		e.conn = HBA_CONN_HOSTSSL;
	} else if (strcmp(t->s, "hostnossl") == 0) {
		e.conn = HBA_CONN_HOSTNOSSL;
	} else if (strcmp(t->s, "hostgssenc") == 0) {
		hba_error(p, p->line, "hostgssenc is not supported (pgsluice does not do GSSAPI "
				      "encryption)");
		return;
	} else {
		hba_error(p, p->line, "unknown connection type \"%s\" (expected local, host, "
				      "hostssl or hostnossl)", HBA_SHOW(t->s));
		return;
	}
	if ((f = hba_next_field(p, &fi, "database")) == NULL ||
	    !hba_parse_names(p, f, true, &e.db_first, &e.db_count))
		return;
	if ((f = hba_next_field(p, &fi, "user")) == NULL ||
	    !hba_parse_names(p, f, false, &e.user_first, &e.user_count))
		return;
	if (e.conn != HBA_CONN_LOCAL && !hba_parse_address(p, &fi, &e))
		return;
	if ((f = hba_next_field(p, &fi, "method")) == NULL ||
	    (t = hba_single(p, f, "method")) == NULL || !hba_parse_method(p, t, &e))
		return;
	bool seen_clientcert = false;
	while (fi < p->n_fields) {
		f = &p->fields[fi++];
		if ((t = hba_single(p, f, "option")) == NULL ||
		    !hba_parse_option(p, t, &e, &seen_clientcert))
			return;
	}
	if (r->n_entries == HBA_MAX_RULES) {
		if (!p->too_many)
			hba_error(p, p->line, "more than %d rules", HBA_MAX_RULES);
		p->too_many = true;
		return;
	}
	if (!hba_grow((void **)&r->entries, &r->cap_entries, r->n_entries, sizeof(e))) {
		hba_error(p, p->line, "out of memory");
		return;
	}
	r->entries[r->n_entries++] = e;
}

/* Handles the logical line gathered in p->text. */
static void hba_end_line(struct hba_parser *p)
{
	if (p->text_too_long)
		hba_error(p, p->line, "line is longer than %d bytes", HBA_LINE_MAX);
	else if (hba_tokenize(p) && p->n_fields > 0)
		hba_parse_rule(p);
	p->text_len = 0;
	p->text_too_long = false;
	p->line = 0;
}

struct hba_rules *hba_parse(const char *text, size_t len, const char *name, char *err,
			    size_t err_len)
{
	struct hba_parser *p = calloc(1, sizeof(*p));
	const char *pos = text, *end = text + len;
	int lineno = 0;

	if (p == NULL || (p->rules = calloc(1, sizeof(*p->rules))) == NULL) {
		free(p);
		if (err != NULL && err_len > 0)
			snprintf(err, err_len, "%s: out of memory", name);
		return NULL;
	}
	p->name = name;
	p->err = err;
	p->err_len = err_len;
	while (pos < end) {
		const char *nl = memchr(pos, '\n', (size_t)(end - pos));
		const char *le = nl != NULL ? nl : end;
		size_t n = (size_t)(le - pos);

		lineno++;
		if (p->line == 0)
			p->line = lineno;
		while (n > 0 && hba_is_blank(pos[n - 1]))
			n--;
		bool more = n > 0 && pos[n - 1] == '\\';
		if (more)
			n--;
		if (memchr(pos, '\0', n) != NULL) {
			hba_error(p, lineno, "NUL byte in the line");
			p->text_len = 0;
			p->text_too_long = false;
			p->line = 0;
			pos = nl != NULL ? nl + 1 : end;
			continue;
		}
		if (p->text_len + n > HBA_LINE_MAX) {
			p->text_too_long = true;
		} else if (!p->text_too_long) {
			memcpy(p->text + p->text_len, pos, n);
			p->text_len += n;
			p->text[p->text_len] = '\0';
		}
		if (!more)
			hba_end_line(p);
		pos = nl != NULL ? nl + 1 : end;
	}
	/* A backslash on the last line continues into nothing: the line ends there. */
	if (p->line != 0)
		hba_end_line(p);

	struct hba_rules *rules = p->rules;
	if (p->n_errors > 0) {
		if (p->n_dropped > 0 && p->err_used + 1 < p->err_len)
			snprintf(p->err + p->err_used, p->err_len - p->err_used,
				 "\n(%d more errors not shown)", p->n_dropped);
		hba_free(rules);
		rules = NULL;
	}
	free(p);
	return rules;
}

struct hba_rules *hba_load(const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, cap = 0;
	const char *problem = NULL;

	if (f == NULL) {
		problem = strerror(errno);
	} else {
		for (;;) {
			if (len == cap) {
				size_t cap2 = cap == 0 ? 65536 : cap * 2;
				char *t = cap2 > HBA_FILE_MAX + 1 ? NULL : realloc(text, cap2);
				if (t == NULL) {
					problem = cap2 > HBA_FILE_MAX + 1 ? "larger than 64 MiB"
									  : "out of memory";
					break;
				}
				text = t;
				cap = cap2;
			}
			size_t got = fread(text + len, 1, cap - len, f);
			len += got;
			if (got == 0) {
				if (ferror(f))
					problem = strerror(errno);
				break;
			}
		}
		fclose(f);
	}
	if (problem != NULL) {
		if (err != NULL && err_len > 0)
			snprintf(err, err_len, "%s: cannot read: %s", path, problem);
		free(text);
		return NULL;
	}
	struct hba_rules *rules = hba_parse(text == NULL ? "" : text, len, path, err, err_len);
	free(text);
	return rules;
}

/*
 * The 16-byte form of an AF_INET or AF_INET6 socket address, or of a netmask
 * when is_mask; false for other families.
 */
static bool hba_sockaddr16(const struct sockaddr *sa, bool is_mask, uint8_t out[16])
{
	const void *bytes;

	if (sa->sa_family == AF_INET)
		bytes = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		bytes = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return false;
	if (is_mask)
		hba_mask16(sa->sa_family, bytes, out);
	else
		hba_addr16(sa->sa_family, bytes, out);
	return true;
}

/* Whether addr is an address of this host (samenet: is on a subnet of one). */
static bool hba_match_interfaces(const uint8_t addr[16], bool samenet)
{
	struct ifaddrs *list;
	bool found = false;

	if (getifaddrs(&list) != 0)
		return false;
	for (const struct ifaddrs *ifa = list; ifa != NULL && !found; ifa = ifa->ifa_next) {
		uint8_t a[16], m[16];
		if (ifa->ifa_addr == NULL || !hba_sockaddr16(ifa->ifa_addr, false, a))
			continue;
		if (!samenet) {
			found = memcmp(a, addr, 16) == 0;
			continue;
		}
		if (ifa->ifa_netmask == NULL || !hba_sockaddr16(ifa->ifa_netmask, true, m))
			continue;
		for (unsigned i = 0; i < 16; i++)
			a[i] &= m[i];
		found = hba_in_net(addr, a, m);
	}
	freeifaddrs(list);
	return found;
}

static bool hba_match_names(const struct hba_rules *rules, uint32_t first, uint32_t count,
			    const char *name, const char *user)
{
	for (uint32_t i = first; i < first + count; i++) {
		const struct hba_name *n = &rules->names[i];
		switch (n->kind) {
		case HBA_NAME_ALL:
			return true;
		case HBA_NAME_SAMEUSER:
			if (strcmp(name, user) == 0)
				return true;
			break;
		case HBA_NAME_REPLICATION:
			break;
		case HBA_NAME_LITERAL:
			if (strcmp(name, rules->pool + n->off) == 0)
				return true;
			break;
		}
	}
	return false;
}

static bool hba_match_conn(enum hba_conn conn, const struct hba_request *req)
{
	switch (conn) {
	case HBA_CONN_LOCAL:
		return req->transport == HBA_TRANSPORT_UNIX;
	case HBA_CONN_HOST:
		return req->transport == HBA_TRANSPORT_TCP;
	case HBA_CONN_HOSTSSL:
		return req->transport == HBA_TRANSPORT_TCP && req->tls;
	case HBA_CONN_HOSTNOSSL:
		return req->transport == HBA_TRANSPORT_TCP && !req->tls;
	}
	return false;
}

const struct hba_rule *hba_match(const struct hba_rules *rules, const struct hba_request *req)
{
	uint8_t addr[16];
	bool have_addr = req->transport == HBA_TRANSPORT_TCP &&
			 hba_sockaddr16((const struct sockaddr *)&req->addr, false, addr);

	if (rules == NULL)
		return NULL;
	for (size_t i = 0; i < rules->n_entries; i++) {
		const struct hba_entry *e = &rules->entries[i];
		if (!hba_match_conn(e->conn, req))
			continue;
		if (e->conn != HBA_CONN_LOCAL) {
			bool ok = false;
			switch (e->addr_kind) {
			case HBA_ADDR_ALL:
				ok = true;
				break;
			case HBA_ADDR_CIDR:
				ok = have_addr && hba_in_net(addr, e->addr, e->mask);
				break;
			case HBA_ADDR_SAMEHOST:
			case HBA_ADDR_SAMENET:
				ok = have_addr &&
				     hba_match_interfaces(addr, e->addr_kind == HBA_ADDR_SAMENET);
				break;
			}
			if (!ok)
				continue;
		}
		if (!hba_match_names(rules, e->db_first, e->db_count, req->database, req->user) ||
		    !hba_match_names(rules, e->user_first, e->user_count, req->user, req->user))
			continue;
		return &e->rule;
	}
	return NULL;
}

size_t hba_describe_no_match(const struct hba_request *req, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	char user[HBA_NAME_SHOW * 4 + 8], db[HBA_NAME_SHOW * 4 + 8];
	uint8_t a[16];
	const char *tls;
	int n;

	if (req->transport == HBA_TRANSPORT_UNIX) {
		strcpy(host, "[local]");
	} else if (hba_sockaddr16((const struct sockaddr *)&req->addr, false, a)) {
		/* Mapped addresses were matched as IPv4, so they are shown as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a))
			inet_ntop(AF_INET, a + 12, host, sizeof(host));
		else
			inet_ntop(AF_INET6, a, host, sizeof(host));
	}
	hba_escape(req->user, HBA_NAME_SHOW, user, sizeof(user));
	hba_escape(req->database, HBA_NAME_SHOW, db, sizeof(db));
	if (req->transport == HBA_TRANSPORT_UNIX)
		tls = "";
	else
		tls = req->tls ? ", TLS on" : ", TLS off";
	n = snprintf(buf, len, "no hba_file rule matches host \"%s\", user \"%s\", database "
			       "\"%s\"%s", host, user, db, tls);
	if (n < 0 || len == 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

const char *hba_method_name(enum hba_method m)
{
	for (size_t i = 0; i < sizeof(hba_methods) / sizeof(hba_methods[0]); i++)
		if (hba_methods[i].method == m)
			return hba_methods[i].name;
	return "?";
}

size_t hba_count(const struct hba_rules *rules)
{
	return rules == NULL ? 0 : rules->n_entries;
}

void hba_free(struct hba_rules *rules)
{
	if (rules == NULL)
		return;
	free(rules->entries);
	free(rules->names);
	free(rules->pool);
	free(rules);
}
