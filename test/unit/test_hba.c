/*
 * test_hba.c - hba.c: pg_hba.conf syntax (lists, quotes, comments,
 * continuation lines, options), every parse error with its FILE:LINE,
 * first-match order, IPv4 and IPv6 networks (prefix and netmask forms,
 * IPv4-mapped clients), connection types against TLS, samehost/samenet on
 * the loopback interface, and the no-match log line.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hba.h"
#include "suites.h"

static char err[4096];

static struct hba_rules *parse(const char *text)
{
	err[0] = '\0';
	return hba_parse(text, strlen(text), "hba.conf", err, sizeof(err));
}

/* Parses text, which must be fine. */
static struct hba_rules *parse_ok(const char *text)
{
	struct hba_rules *r = parse(text);
	ck_assert_msg(r != NULL, "unexpected error: %s", err);
	ck_assert_str_eq(err, "");
	return r;
}

/* Parsing text must fail with exactly expected. */
static void expect_error(const char *text, const char *expected)
{
	ck_assert_ptr_null(parse(text));
	ck_assert_str_eq(err, expected);
}

static struct hba_request tcp(const char *ip, bool tls, const char *db, const char *user)
{
	struct hba_request req = {.transport = HBA_TRANSPORT_TCP, .tls = tls, .database = db,
				  .user = user};
	struct sockaddr_in *in4 = (struct sockaddr_in *)&req.addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&req.addr;

	if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return req;
}

static struct hba_request unix_req(const char *db, const char *user)
{
	return (struct hba_request){.transport = HBA_TRANSPORT_UNIX, .database = db, .user = user};
}

/* The line of the rule req matches, or 0. */
static int line_of(const struct hba_rules *r, struct hba_request req)
{
	const struct hba_rule *rule = hba_match(r, &req);
	return rule == NULL ? 0 : rule->line;
}

static int line_tcp(const struct hba_rules *r, const char *ip, const char *user)
{
	return line_of(r, tcp(ip, false, "db", user));
}

START_TEST(ipv4_prefixes)
{
	struct hba_rules *r = parse_ok("host all u32 10.1.2.3/32 trust\n"
				       "host all u8 10.0.0.0/8 md5\n"
				       "host all u0 0.0.0.0/0 reject\n"
				       "host all u24 192.168.7.99/24 md5\n");
	ck_assert_uint_eq(hba_count(r), 4);
	ck_assert_int_eq(line_tcp(r, "10.1.2.3", "u32"), 1);
	ck_assert_int_eq(line_tcp(r, "10.1.2.4", "u32"), 0);
	ck_assert_int_eq(line_tcp(r, "10.255.0.1", "u8"), 2);
	ck_assert_int_eq(line_tcp(r, "10.0.0.0", "u8"), 2);
	ck_assert_int_eq(line_tcp(r, "11.0.0.1", "u8"), 0);
	ck_assert_int_eq(line_tcp(r, "9.255.255.255", "u8"), 0);
	ck_assert_int_eq(line_tcp(r, "192.0.2.7", "u0"), 3);
	ck_assert_int_eq(line_tcp(r, "255.255.255.255", "u0"), 3);
	/* An IPv4 rule never matches a native IPv6 client. */
	ck_assert_int_eq(line_tcp(r, "2001:db8::1", "u0"), 0);
	/* Host bits past the prefix are ignored, as PostgreSQL does. */
	ck_assert_int_eq(line_tcp(r, "192.168.7.1", "u24"), 4);
	ck_assert_int_eq(line_tcp(r, "192.168.8.1", "u24"), 0);
	hba_free(r);
}
END_TEST

START_TEST(ipv6_prefixes)
{
	struct hba_rules *r = parse_ok("host all lo ::1/128 trust\n"
				       "host all ll fe80::/10 md5\n"
				       "host all any ::/0 md5\n");
	ck_assert_int_eq(line_tcp(r, "::1", "lo"), 1);
	ck_assert_int_eq(line_tcp(r, "::2", "lo"), 0);
	ck_assert_int_eq(line_tcp(r, "127.0.0.1", "lo"), 0);
	ck_assert_int_eq(line_tcp(r, "fe80::1", "ll"), 2);
	ck_assert_int_eq(line_tcp(r, "febf:ffff::1", "ll"), 2);
	ck_assert_int_eq(line_tcp(r, "fec0::1", "ll"), 0);
	ck_assert_int_eq(line_tcp(r, "fe7f::1", "ll"), 0);
	ck_assert_int_eq(line_tcp(r, "2001:db8::5", "any"), 3);
	hba_free(r);
}
END_TEST

START_TEST(ipv4_mapped_clients_match_as_ipv4)
{
	struct hba_rules *r = parse_ok("host all a 127.0.0.1/32 trust\n"
				       "host all b ::ffff:10.0.0.0/104 trust\n");
	ck_assert_int_eq(line_tcp(r, "::ffff:127.0.0.1", "a"), 1);
	ck_assert_int_eq(line_tcp(r, "127.0.0.1", "a"), 1);
	ck_assert_int_eq(line_tcp(r, "::ffff:127.0.0.2", "a"), 0);
	/* ::1 is not 127.0.0.1. */
	ck_assert_int_eq(line_tcp(r, "::1", "a"), 0);
	/* An IPv4 client matches an IPv6 rule written in mapped form. */
	ck_assert_int_eq(line_tcp(r, "10.9.8.7", "b"), 2);
	ck_assert_int_eq(line_tcp(r, "11.9.8.7", "b"), 0);
	hba_free(r);
}
END_TEST

START_TEST(address_with_netmask_column)
{
	struct hba_rules *r = parse_ok("host all a 192.168.0.0 255.255.0.0 md5\n"
				       "host all b fd00:: ffff:ffff:: md5\n"
				       "host all c 0.0.0.0 0.0.0.0 md5\n");
	ck_assert_int_eq(line_tcp(r, "192.168.44.1", "a"), 1);
	ck_assert_int_eq(line_tcp(r, "192.169.0.1", "a"), 0);
	ck_assert_int_eq(line_tcp(r, "fd00:0:1::2", "b"), 2);
	ck_assert_int_eq(line_tcp(r, "fd00:1::2", "b"), 0);
	ck_assert_int_eq(line_tcp(r, "203.0.113.1", "c"), 3);
	hba_free(r);
}
END_TEST

START_TEST(ssl_connection_types)
{
	struct hba_rules *r = parse_ok("hostssl all a all scram-sha-256\n"
				       "hostnossl all a all reject\n"
				       "host all b all md5\n"
				       "hostnogssenc all c all md5\n");
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", true, "db", "a")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db", "a")), 2);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", true, "db", "b")), 3);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db", "b")), 3);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", true, "db", "c")), 4);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db", "c")), 4);
	/* No host* rule matches a Unix socket. */
	ck_assert_int_eq(line_of(r, unix_req("db", "a")), 0);
	ck_assert_int_eq(line_of(r, unix_req("db", "b")), 0);
	hba_free(r);
}
END_TEST

START_TEST(local_matches_unix_sockets_only)
{
	struct hba_rules *r = parse_ok("local all all trust\n"
		     "host all all 127.0.0.1/32 md5\n");
	ck_assert_int_eq(line_of(r, unix_req("db", "x")), 1);
	ck_assert_int_eq(line_tcp(r, "127.0.0.1", "x"), 2);
	ck_assert_int_eq(line_tcp(r, "127.0.0.2", "x"), 0);
	hba_free(r);
}
END_TEST

START_TEST(database_and_user_lists)
{
	struct hba_rules *r = parse_ok("host db1,db2 \"u1\",u2 all md5\n");
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db1", "u1")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db2", "u2")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db3", "u1")), 0);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db1", "u3")), 0);
	hba_free(r);
	/* Blanks after a comma continue the list; before one they end the field. */
	expect_error("host db3, db4 u3 ,u4 all trust\n",
		     "hba.conf:1: empty item in a comma-separated list");
	r = parse_ok("host db3, db4 u3,  u4 all trust\n");
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db4", "u4")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db5", "u4")), 0);
	/* Names are case-sensitive. */
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "DB3", "u3")), 0);
	hba_free(r);
}
END_TEST

START_TEST(sameuser_and_replication)
{
	struct hba_rules *r = parse_ok("host sameuser all all md5\n"
				       "host replication all all trust\n"
				       "host \"replication\" all all password\n");
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "alice", "alice")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "bob", "alice")), 0);
	/* The keyword matches nothing; the quoted name is a database called replication. */
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "replication", "alice")), 3);
	hba_free(r);
}
END_TEST

START_TEST(quoted_keywords_are_names)
{
	struct hba_rules *r = parse("host \"all\" all all md5\n"
				    "host db \"all\" all trust\n"
				    "host \"sameuser\" bob all reject\n"
				    "host \"my db\",\"a\"\"b\" \"+grp\",\"@f\" all password\n"
				    "host \"x#y\" all all cert\n");
	ck_assert_ptr_null(r);
	ck_assert_str_eq(err, "hba.conf:5: cert authentication is only possible on hostssl lines");
	r = parse_ok("host \"all\" all all md5\n"
		     "host db \"all\" all trust\n"
		     "host \"sameuser\" bob all reject\n"
		     "host \"my db\",\"a\"\"b\" \"+grp\",\"@f\" all password\n"
		     "hostssl \"x#y\" all all cert\n");
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "all", "u")), 1);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db", "all")), 2);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db", "u")), 0);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "sameuser", "bob")), 3);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "bob", "bob")), 0);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "my db", "+grp")), 4);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "a\"b", "@f")), 4);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", true, "x#y", "u")), 5);
	hba_free(r);
}
END_TEST

START_TEST(first_matching_rule_wins)
{
	struct hba_rules *r = parse_ok("host all mallory all reject\n"
				       "host all all 10.0.0.0/8 scram-sha-256\n"
				       "host all all all md5\n"
				       "host all mallory all trust\n");
	const struct hba_request req = tcp("10.1.1.1", false, "db", "mallory");
	const struct hba_rule *rule = hba_match(r, &req);
	ck_assert_ptr_nonnull(rule);
	ck_assert_int_eq(rule->line, 1);
	ck_assert_int_eq(rule->method, HBA_METHOD_REJECT);
	const struct hba_request req2 = tcp("10.1.1.1", false, "db", "alice");
	rule = hba_match(r, &req2);
	ck_assert_int_eq(rule->method, HBA_METHOD_SCRAM_SHA_256);
	ck_assert_int_eq(rule->line, 2);
	ck_assert_int_eq(line_tcp(r, "172.16.0.1", "alice"), 3);
	hba_free(r);
}
END_TEST

START_TEST(every_method_and_its_name)
{
	static const char *const names[] = {"trust", "reject", "md5", "scram-sha-256",
					    "password", "cert"};
	static const enum hba_method methods[] = {
		HBA_METHOD_TRUST,    HBA_METHOD_REJECT, HBA_METHOD_MD5, HBA_METHOD_SCRAM_SHA_256,
		HBA_METHOD_PASSWORD, HBA_METHOD_CERT};
	char text[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(text, sizeof(text), "hostssl all all all %s\n", names[i]);
		struct hba_rules *r = parse_ok(text);
		const struct hba_request req = tcp("10.0.0.1", true, "db", "u");
		const struct hba_rule *rule = hba_match(r, &req);
		ck_assert_int_eq(rule->method, methods[i]);
		ck_assert_str_eq(hba_method_name(rule->method), names[i]);
		ck_assert_int_eq(rule->clientcert, methods[i] == HBA_METHOD_CERT
							   ? HBA_CLIENTCERT_VERIFY_FULL
							   : HBA_CLIENTCERT_NONE);
		hba_free(r);
	}
}
END_TEST

START_TEST(clientcert_options_are_stored)
{
	struct hba_rules *r = parse_ok("hostssl all a all md5 clientcert=verify-ca\n"
				       "hostssl all b all scram-sha-256 clientcert=verify-full\n"
				       "hostssl all c all cert clientcert=verify-full\n"
				       "hostssl all d all trust \"clientcert=verify-ca\"\n");
	const struct hba_request a = tcp("10.0.0.1", true, "db", "a");
	const struct hba_request b = tcp("10.0.0.1", true, "db", "b");
	const struct hba_request c = tcp("10.0.0.1", true, "db", "c");
	const struct hba_request d = tcp("10.0.0.1", true, "db", "d");
	ck_assert_int_eq(hba_match(r, &a)->clientcert, HBA_CLIENTCERT_VERIFY_CA);
	ck_assert_int_eq(hba_match(r, &b)->clientcert, HBA_CLIENTCERT_VERIFY_FULL);
	ck_assert_int_eq(hba_match(r, &c)->clientcert, HBA_CLIENTCERT_VERIFY_FULL);
	ck_assert_int_eq(hba_match(r, &d)->clientcert, HBA_CLIENTCERT_VERIFY_CA);
	hba_free(r);
}
END_TEST

START_TEST(comments_blanks_and_trailing_whitespace)
{
	struct hba_rules *r = parse_ok("# a comment\n"
				       "\n"
				       "   \t  \n"
				       "   # indented comment\n"
				       "host all all 10.0.0.0/8 md5   # why\n"
				       "host all all 10.0.0.0/8 trust#glued\n"
				       "local all all trust \t \r\n"
				       "host all all all reject");
	ck_assert_uint_eq(hba_count(r), 4);
	ck_assert_int_eq(line_tcp(r, "10.0.0.1", "u"), 5);
	ck_assert_int_eq(line_of(r, unix_req("db", "u")), 7);
	ck_assert_int_eq(line_tcp(r, "11.0.0.1", "u"), 8);
	hba_free(r);
}
END_TEST

START_TEST(empty_file_matches_nothing)
{
	struct hba_rules *r = parse_ok("");
	ck_assert_uint_eq(hba_count(r), 0);
	ck_assert_int_eq(line_of(r, unix_req("db", "u")), 0);
	hba_free(r);
	r = parse_ok("# nothing\n\n");
	ck_assert_uint_eq(hba_count(r), 0);
	hba_free(r);
	ck_assert_ptr_null(hba_match(NULL, &(struct hba_request){.database = "d", .user = "u"}));
	ck_assert_uint_eq(hba_count(NULL), 0);
	hba_free(NULL);
}
END_TEST

START_TEST(continuation_lines)
{
	struct hba_rules *r = parse_ok("# first\n"
				       "host \\\n"
				       "   db1,\\\n"
				       "   db2 alice \\   \n"
				       "   10.0.0.0/8 md5\n"
				       "host all bob all trust \\");
	ck_assert_uint_eq(hba_count(r), 2);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db2", "alice")), 2);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "db3", "alice")), 0);
	ck_assert_int_eq(line_of(r, tcp("10.0.0.1", false, "x", "bob")), 6);
	hba_free(r);
	/* A comment continues too, so it hides the next line. */
	r = parse_ok("# comment \\\nhost all all all trust\n");
	ck_assert_uint_eq(hba_count(r), 0);
	hba_free(r);
	/* Errors name the line where the rule starts. */
	expect_error("local all all trust\nhost all \\\n all \\\n 10.0.0.0/33 md5\n",
		     "hba.conf:2: invalid prefix length in \"10.0.0.0/33\" (0 to 32)");
}
END_TEST

/* One bad line among good ones: expected names its line. */
static const struct {
	const char *line;
	const char *expected;
} bad_lines[] = {
	{"hots all all all md5",
	 "unknown connection type \"hots\" (expected local, host, hostssl or hostnossl)"},
	{"hostgssenc all all all md5",
	 "hostgssenc is not supported (pgsluice does not do GSSAPI encryption)"},
	{"host,local all all all md5", "the connection type field takes one value, not a list"},
	{"host", "end of line before the database field"},
	{"host all", "end of line before the user field"},
	{"host all all", "end of line before the address field"},
	{"host all all all", "end of line before the method field"},
	{"local all all", "end of line before the method field"},
	{"host all all 10.0.0.1", "end of line before the netmask field"},
	{"host all all 10.0.0.1 md5 ", "invalid netmask \"md5\" (an address without /len needs a "
				       "netmask column)"},
	{"host all all 10.0.0.0 255.0.0.0", "end of line before the method field"},
	{"host all all 10.0.0.0 ffff:: md5",
	 "netmask \"ffff::\" and address \"10.0.0.0\" are not of the same IP version"},
	{"host all all 10.0.0.0 255.0.255.0 md5", "netmask \"255.0.255.0\" is not contiguous"},
	{"host all all db.example.com md5",
	 "\"db.example.com\" is not an IP address (host names are not supported)"},
	{"host all all \"all\" md5", "\"all\" is not an IP address (host names are not supported)"},
	{"host all all 10.0.0.0/ md5", "invalid prefix length in \"10.0.0.0/\" (0 to 32)"},
	{"host all all 10.0.0.0/8x md5", "invalid prefix length in \"10.0.0.0/8x\" (0 to 32)"},
	{"host all all ::1/129 md5", "invalid prefix length in \"::1/129\" (0 to 128)"},
	{"host all all 10.0.0.0/8,::1/128 md5", "the address field takes one value, not a list"},
	{"host all +admins all md5", "group membership (\"+admins\") is not supported"},
	{"host @dbs all all md5", "file inclusion (\"@dbs\") is not supported"},
	{"host all @users all md5", "file inclusion (\"@users\") is not supported"},
	{"host samerole all all md5", "samerole is not supported (pgsluice does not read role "
				      "membership)"},
	{"host samegroup all all md5", "samegroup is not supported (pgsluice does not read role "
				       "membership)"},
	{"host \"\" all all md5", "empty database name"},
	{"host db1,,db2 all all md5", "empty item in a comma-separated list"},
	{"host db1, all all md5 # x",
	 "\"md5\" is not an IP address (host names are not supported)"},
	{"host db1,", "comma-separated list ends with a comma"},
	{"host \"db all all md5", "unterminated double quote"},
	{"local all all peer", "authentication method \"peer\" is not supported by pgsluice"},
	{"local all all ldap ldapserver=x", "authentication method \"ldap\" is not supported by "
					    "pgsluice"},
	{"local all all scram", "unknown authentication method \"scram\""},
	{"local all all MD5", "unknown authentication method \"MD5\""},
	{"local all all md5,trust", "the method field takes one value, not a list"},
	{"local all all cert", "cert authentication is only possible on hostssl lines"},
	{"host all all all cert", "cert authentication is only possible on hostssl lines"},
	{"hostssl all all all md5 clientcert", "invalid option \"clientcert\" (expected "
					       "name=value)"},
	{"hostssl all all all md5 clientcert=no-verify",
	 "invalid clientcert value \"no-verify\" (expected verify-ca or verify-full)"},
	{"hostssl all all all md5 clientcert=1",
	 "invalid clientcert value \"1\" (expected verify-ca or verify-full)"},
	{"hostssl all all all md5 map=x", "unknown option \"map=x\" (only clientcert is "
					  "supported)"},
	{"hostssl all all all md5 clientcert=verify-ca clientcert=verify-full",
	 "clientcert is given twice"},
	{"host all all all md5 clientcert=verify-ca", "clientcert is only possible on hostssl "
						      "lines"},
	{"local all all md5 clientcert=verify-full", "clientcert is only possible on hostssl "
						     "lines"},
	{"hostssl all all all cert clientcert=verify-ca",
	 "clientcert=verify-ca cannot be used with cert authentication, which always verifies "
	 "the full certificate"},
	{"host all all 10.0.0.0/8 md5 clientcert=verify-ca,x", "the option field takes one value, "
							       "not a list"},
};

START_TEST(each_bad_line_is_reported_with_its_line)
{
	char text[512], want[512];

	snprintf(text, sizeof(text), "# header\nlocal all all trust\n%s\nhost all all all md5\n",
		 bad_lines[_i].line);
	snprintf(want, sizeof(want), "hba.conf:3: %s", bad_lines[_i].expected);
	expect_error(text, want);
}
END_TEST

START_TEST(all_errors_are_collected_and_the_file_is_refused)
{
	expect_error("host all all all md5\n"
		     "bogus\n"
		     "host all all all md5\n"
		     "local all all\n"
		     "local all all trust\n",
		     "hba.conf:2: unknown connection type \"bogus\" (expected local, host, hostssl "
		     "or hostnossl)\n"
		     "hba.conf:4: end of line before the method field");
}
END_TEST

START_TEST(long_error_lists_are_cut_with_a_count)
{
	char small[200];
	char text[64 * 10 + 1] = "";

	for (int i = 0; i < 10; i++)
		strcat(text, "bogus\n");
	ck_assert_ptr_null(hba_parse(text, strlen(text), "f", small, sizeof(small)));
	/* Whole lines only, then how many were left out. */
	const char *more = strstr(small, "\n(");
	ck_assert_ptr_nonnull(more);
	ck_assert_int_eq(small[more - small - 1], ')');
	int shown = 0;
	for (const char *p = small; (p = strstr(p, "f:")) != NULL; p++)
		shown++;
	char tail[64];
	snprintf(tail, sizeof(tail), "\n(%d more errors not shown)", 10 - shown);
	ck_assert_str_eq(more, tail);
	ck_assert_int_gt(shown, 0);
	/* A tiny buffer still gets the start of the first problem. */
	char tiny[12];
	ck_assert_ptr_null(hba_parse(text, strlen(text), "f", tiny, sizeof(tiny)));
	ck_assert_str_eq(tiny, "f:1: unknow");
	/* No buffer at all is fine. */
	ck_assert_ptr_null(hba_parse(text, strlen(text), "f", NULL, 0));
}
END_TEST

START_TEST(nul_bytes_are_refused)
{
	static const char text[] = "local all all trust\nhost a\0b all all md5\n";
	ck_assert_ptr_null(hba_parse(text, sizeof(text) - 1, "hba.conf", err, sizeof(err)));
	ck_assert_str_eq(err, "hba.conf:2: NUL byte in the line");
}
END_TEST

START_TEST(line_length_bound)
{
	static char text[HBA_LINE_MAX + 64];
	const char *head = "host ";
	const char *tail = " all all md5";
	size_t name_len = HBA_LINE_MAX - strlen(head) - strlen(tail);

	strcpy(text, head);
	memset(text + strlen(head), 'd', name_len);
	strcpy(text + strlen(head) + name_len, tail);
	ck_assert_uint_eq(strlen(text), HBA_LINE_MAX);
	struct hba_rules *r = parse_ok(text);
	ck_assert_uint_eq(hba_count(r), 1);
	hba_free(r);
	/* One byte more, split over two lines, is too long. */
	strcpy(text, "host \\\n");
	memset(text + strlen(text), 'd', name_len + 1);
	strcpy(text + strlen("host \\\n") + name_len + 1, tail);
	expect_error(text, "hba.conf:1: line is longer than 4096 bytes");
}
END_TEST

START_TEST(rule_count_bound)
{
	const char *line = "host all all all md5\n";
	size_t n = strlen(line);
	char *text = malloc(n * (HBA_MAX_RULES + 1) + 1);

	for (size_t i = 0; i < HBA_MAX_RULES + 1; i++)
		memcpy(text + i * n, line, n);
	struct hba_rules *r = hba_parse(text, n * HBA_MAX_RULES, "hba.conf", err, sizeof(err));
	ck_assert_uint_eq(hba_count(r), HBA_MAX_RULES);
	hba_free(r);
	ck_assert_ptr_null(hba_parse(text, n * (HBA_MAX_RULES + 1), "hba.conf", err, sizeof(err)));
	ck_assert_str_eq(err, "hba.conf:10001: more than 10000 rules");
	free(text);
}
END_TEST

START_TEST(load_reads_a_file)
{
	char path[] = "/tmp/pgsluice-hba-XXXXXX";
	const char *text = "local all all trust\nhost all all ::1/128 md5\n";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct hba_rules *r = hba_load(path, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(hba_count(r), 2);
	hba_free(r);

	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "host\n", 5), 5);
	close(fd);
	ck_assert_ptr_null(hba_load(path, err, sizeof(err)));
	char want[128];
	snprintf(want, sizeof(want), "%s:3: end of line before the database field", path);
	ck_assert_str_eq(err, want);
	unlink(path);

	ck_assert_ptr_null(hba_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(samehost_and_samenet_use_the_loopback_interface)
{
	struct hba_rules *r = parse("host all a samehost trust\n"
				    "host all b samenet trust\n"
				    "host all c \"samehost\"/32 trust\n");
	ck_assert_ptr_null(r);
	ck_assert_str_eq(err, "hba.conf:3: \"samehost/32\" is not an IP address (host names are "
			      "not supported)");
	r = parse_ok("host all a samehost trust\n"
		     "host all b samenet trust\n");
	ck_assert_int_eq(line_tcp(r, "127.0.0.1", "a"), 1);
	ck_assert_int_eq(line_tcp(r, "::ffff:127.0.0.1", "a"), 1);
	ck_assert_int_eq(line_tcp(r, "127.0.0.2", "a"), 0);
	ck_assert_int_eq(line_tcp(r, "127.0.0.2", "b"), 2);
	ck_assert_int_eq(line_tcp(r, "203.0.113.254", "a"), 0);
	ck_assert_int_eq(line_tcp(r, "203.0.113.254", "b"), 0);
	hba_free(r);
}
END_TEST

START_TEST(no_match_description)
{
	char buf[256];
	struct hba_request req = tcp("::ffff:192.0.2.9", true, "sales", "bob");

	hba_describe_no_match(&req, buf, sizeof(buf));
	ck_assert_str_eq(buf, "no hba_file rule matches host \"192.0.2.9\", user \"bob\", "
			      "database \"sales\", TLS on");
	req = tcp("2001:db8::7", false, "sales", "bo\nb\"");
	hba_describe_no_match(&req, buf, sizeof(buf));
	ck_assert_str_eq(buf, "no hba_file rule matches host \"2001:db8::7\", user "
			      "\"bo\\x0ab\"\", database \"sales\", TLS off");
	req = unix_req("d", "u");
	size_t n = hba_describe_no_match(&req, buf, sizeof(buf));
	ck_assert_str_eq(buf, "no hba_file rule matches host \"[local]\", user \"u\", "
			      "database \"d\"");
	ck_assert_uint_eq(n, strlen(buf));
	n = hba_describe_no_match(&req, buf, 10);
	ck_assert_uint_eq(n, 9);
	ck_assert_str_eq(buf, "no hba_fi");
}
END_TEST

Suite *hba_suite(void)
{
	Suite *s = suite_create("hba");
	TCase *tc = tcase_create("match");
	tcase_add_test(tc, ipv4_prefixes);
	tcase_add_test(tc, ipv6_prefixes);
	tcase_add_test(tc, ipv4_mapped_clients_match_as_ipv4);
	tcase_add_test(tc, address_with_netmask_column);
	tcase_add_test(tc, ssl_connection_types);
	tcase_add_test(tc, local_matches_unix_sockets_only);
	tcase_add_test(tc, database_and_user_lists);
	tcase_add_test(tc, sameuser_and_replication);
	tcase_add_test(tc, quoted_keywords_are_names);
	tcase_add_test(tc, first_matching_rule_wins);
	tcase_add_test(tc, every_method_and_its_name);
	tcase_add_test(tc, clientcert_options_are_stored);
	tcase_add_test(tc, samehost_and_samenet_use_the_loopback_interface);
	tcase_add_test(tc, no_match_description);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_test(tc, comments_blanks_and_trailing_whitespace);
	tcase_add_test(tc, empty_file_matches_nothing);
	tcase_add_test(tc, continuation_lines);
	tcase_add_loop_test(tc, each_bad_line_is_reported_with_its_line, 0,
			    (int)(sizeof(bad_lines) / sizeof(bad_lines[0])));
	tcase_add_test(tc, all_errors_are_collected_and_the_file_is_refused);
	tcase_add_test(tc, long_error_lists_are_cut_with_a_count);
	tcase_add_test(tc, nul_bytes_are_refused);
	tcase_add_test(tc, line_length_bound);
	tcase_add_test(tc, rule_count_bound);
	tcase_add_test(tc, load_reads_a_file);
	suite_add_tcase(s, tc);
	return s;
}
