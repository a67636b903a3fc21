/*
 * hba.h - the hba_file: host-based access rules in pg_hba.conf syntax.
 *
 * Before a client authenticates, its connection type, TLS state, address,
 * database and user are matched against the rules; the first matching rule
 * gives the authentication method, and no match means the client is refused
 * (28000). A loaded rule set is immutable: a reload parses a new one and
 * swaps it in, and a file with any bad line is refused as a whole so that
 * the caller keeps the rules it had. This module is pure: no sockets, no
 * event loop (samehost and samenet read the interface list at match time).
 */
#ifndef PGSLUICE_HBA_H
#define PGSLUICE_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HBA_MAX_RULES 10000
#define HBA_LINE_MAX 4096 /* bytes of a line, continuation lines joined */

enum hba_method {
	HBA_METHOD_TRUST,
	HBA_METHOD_REJECT,
	HBA_METHOD_MD5,
	HBA_METHOD_SCRAM_SHA_256,
	HBA_METHOD_PASSWORD,
	HBA_METHOD_CERT,
};

/* The client certificate check a rule asks for, on top of its method. */
enum hba_clientcert {
	HBA_CLIENTCERT_NONE,
	HBA_CLIENTCERT_VERIFY_CA,   /* a certificate signed by a trusted CA */
	HBA_CLIENTCERT_VERIFY_FULL, /* ... whose CN is also the user name */
};

/* What a matching rule tells the caller. */
struct hba_rule {
	enum hba_method method;
	/* Method cert always gives VERIFY_FULL, since it logs the user in by the CN. */
	enum hba_clientcert clientcert;
	int line; /* where the rule starts in its file (1-based) */
};

enum hba_transport {
	HBA_TRANSPORT_UNIX, /* matches local rules */
	HBA_TRANSPORT_TCP,  /* matches host, hostssl and hostnossl rules */
};

/* One client asking to log in. */
struct hba_request {
	enum hba_transport transport;
	bool tls; /* the connection is encrypted */
	/* The client's address (TCP only): AF_INET or AF_INET6; an IPv4-mapped
	 * IPv6 address (::ffff:a.b.c.d) matches as the IPv4 address it holds. */
	struct sockaddr_storage addr;
	const char *database;
	const char *user;
};

struct hba_rules;

/*
 * Parses rules from memory (tests, or a file the caller already read).
 * text: the content; len: its length in bytes (NUL bytes are an error).
 * name: the file name used in error messages.
 * err, err_len: receives the problems, one "NAME:LINE: what is wrong" per
 *     line separated by '\n', truncated to fit (a last line says how many
 *     were left out); untouched on success. err may be NULL.
 * Returns the rule set (empty when the text holds no rule), or NULL when any
 * line is bad or memory runs out.
 *
 * Syntax is pg_hba.conf's, restricted to what pgsluice can honour:
 *   local     DATABASE USER METHOD [OPTIONS]
 *   host      DATABASE USER ADDRESS METHOD [OPTIONS]   (also hostssl,
 *             hostnossl, and hostnogssenc, which is host since pgsluice
 *             never uses GSSAPI encryption; hostgssenc is an error)
 * DATABASE and USER are comma-separated lists. DATABASE keywords: all,
 * sameuser (the database named like the user), replication (matches nothing:
 * pgsluice does not proxy replication connections). USER keyword: all.
 * A double-quoted name is literal ("all" is a database called all); +group,
 * @file, samerole and samegroup are errors. ADDRESS: IPv4 or IPv6 CIDR
 * (a.b.c.d/len), an address followed by a netmask column, all, samehost (any
 * address of this host) or samenet (any subnet this host is on); host names
 * are errors. METHOD: trust, reject, md5, scram-sha-256, password, cert
 * (hostssl only). OPTIONS: clientcert=verify-ca|verify-full (hostssl only,
 * verify-full with cert). # starts a comment outside quotes. When the last
 * non-blank character of a line is a backslash, the backslash is dropped and
 * the next line appended as it is (a comment continues too); errors name the
 * line where the rule starts. Keywords and names are case-sensitive.
 */
struct hba_rules *hba_parse(const char *text, size_t len, const char *name, char *err,
			    size_t err_len);

/*
 * Reads and parses the file at path, as hba_parse() with name = path; a file
 * that cannot be read gives "PATH: why".
 */
struct hba_rules *hba_load(const char *path, char *err, size_t err_len);

/*
 * Finds the first rule, in file order, that matches req.
 * rules: a rule set (NULL matches nothing).
 * req: the client; database and user must not be NULL.
 * Returns the rule, valid as long as rules, or NULL when no rule matches:
 * the caller then refuses the client (28000) and logs
 * hba_describe_no_match(). A samehost or samenet rule reads the interface
 * list (getifaddrs) each time it is tried, so new addresses count at once.
 */
const struct hba_rule *hba_match(const struct hba_rules *rules, const struct hba_request *req);

/*
 * Writes the one-line reason a request matched no rule, naming its host
 * (or [local]), user, database and TLS state; characters that are not
 * printable ASCII in the names are written as \xNN.
 * req: the request; buf, len: the output, always NUL-terminated when len > 0.
 * Returns the length of the text written.
 */
size_t hba_describe_no_match(const struct hba_request *req, char *buf, size_t len);

/* The hba_file keyword of method m ("scram-sha-256", ...). */
const char *hba_method_name(enum hba_method m);

/* Number of rules in rules (0 for NULL). */
size_t hba_count(const struct hba_rules *rules);

/* Frees rules (NULL is fine). */
void hba_free(struct hba_rules *rules);

#endif
