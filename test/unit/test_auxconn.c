/*
 * test_auxconn.c - the libpq parameters of pgsluice's own connections (auxconn.c):
 * server_tls_mode mapped to sslmode (allow and unix sockets mean plaintext), the TLS
 * files and protocol floor passed only when TLS may be used, hostaddr only for numeric
 * hosts, unset values left out, and copies of the TLS settings that outlive the
 * configuration they came from. The connections themselves run against a real server
 * in test/integration/test_tls.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auxconn.h"
#include "config.h"
#include "suites.h"
#include "tls.h"

/* The value of key in p, or NULL when it is not there; checks that keys are unique. */
static const char *param(const struct auxconn_params *p, size_t n, const char *key)
{
	const char *found = NULL;
	ck_assert_ptr_null(p->keys[n]);
	ck_assert_ptr_null(p->values[n]);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(p->keys[i], key) == 0) {
			ck_assert_msg(found == NULL, "%s given twice", key);
			found = p->values[i];
		}
	}
	return found;
}

/* A TCP connection with every field set, TLS verify-full with all files. */
static struct auxconn_spec full_spec(void)
{
	struct auxconn_spec spec = {
		.host = "127.0.0.1",
		.port = 5433,
		.dbname = "app",
		.user = "probe",
		.password = "secret",
		.application_name = "pgsluice-test",
		.connect_timeout = 2.2,
		.options = "-c statement_timeout=5000",
		.tls = {TLS_MODE_VERIFY_FULL, "/etc/ca.crt", "/etc/client.crt", "/etc/client.key",
			"TLSv1.3"},
	};
	return spec;
}

START_TEST(every_mode_maps_to_sslmode_and_allow_means_plaintext)
{
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_DISABLE, "db.example"), "disable");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_ALLOW, "db.example"), "disable");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_PREFER, "db.example"), "prefer");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_REQUIRE, "db.example"), "require");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_VERIFY_CA, "10.0.0.1"), "verify-ca");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_VERIFY_FULL, "::1"), "verify-full");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_VERIFY_FULL, NULL), "verify-full");
}
END_TEST

START_TEST(unix_socket_is_plaintext_in_every_mode)
{
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_REQUIRE, "/var/run/postgresql"), "disable");
	ck_assert_str_eq(auxconn_sslmode(TLS_MODE_VERIFY_FULL, "/tmp"), "disable");
	struct auxconn_spec spec = full_spec();
	spec.host = "/var/run/postgresql";
	struct auxconn_params p;
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_str_eq(param(&p, n, "sslmode"), "disable");
	ck_assert_ptr_null(param(&p, n, "sslrootcert"));
	ck_assert_ptr_null(param(&p, n, "sslcert"));
	ck_assert_ptr_null(param(&p, n, "ssl_min_protocol_version"));
	ck_assert_ptr_null(param(&p, n, "hostaddr"));
	ck_assert_str_eq(param(&p, n, "host"), "/var/run/postgresql");
}
END_TEST

START_TEST(verify_full_passes_every_field_and_the_tls_files)
{
	struct auxconn_spec spec = full_spec();
	struct auxconn_params p;
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_uint_eq(n, 14);
	ck_assert_uint_le(n, AUXCONN_PARAMS_MAX);
	ck_assert_str_eq(param(&p, n, "host"), "127.0.0.1");
	ck_assert_str_eq(param(&p, n, "hostaddr"), "127.0.0.1");
	ck_assert_str_eq(param(&p, n, "port"), "5433");
	ck_assert_str_eq(param(&p, n, "dbname"), "app");
	ck_assert_str_eq(param(&p, n, "user"), "probe");
	ck_assert_str_eq(param(&p, n, "password"), "secret");
	ck_assert_str_eq(param(&p, n, "application_name"), "pgsluice-test");
	ck_assert_str_eq(param(&p, n, "connect_timeout"), "3");
	ck_assert_str_eq(param(&p, n, "options"), "-c statement_timeout=5000");
	ck_assert_str_eq(param(&p, n, "sslmode"), "verify-full");
	ck_assert_str_eq(param(&p, n, "sslrootcert"), "/etc/ca.crt");
	ck_assert_str_eq(param(&p, n, "sslcert"), "/etc/client.crt");
	ck_assert_str_eq(param(&p, n, "sslkey"), "/etc/client.key");
	ck_assert_str_eq(param(&p, n, "ssl_min_protocol_version"), "TLSv1.3");
}
END_TEST

START_TEST(disable_passes_sslmode_but_no_tls_file)
{
	struct auxconn_spec spec = full_spec();
	spec.tls.mode = TLS_MODE_DISABLE;
	struct auxconn_params p;
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_uint_eq(n, 10);
	ck_assert_str_eq(param(&p, n, "sslmode"), "disable");
	ck_assert_ptr_null(param(&p, n, "sslrootcert"));
	ck_assert_ptr_null(param(&p, n, "sslcert"));
	ck_assert_ptr_null(param(&p, n, "sslkey"));
	ck_assert_ptr_null(param(&p, n, "ssl_min_protocol_version"));
}
END_TEST

START_TEST(unset_values_are_left_to_libpq)
{
	struct auxconn_spec spec = {.application_name = "pgsluice-test",
				    .tls = {TLS_MODE_REQUIRE, "", NULL, "", NULL}};
	struct auxconn_params p;
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(param(&p, n, "application_name"), "pgsluice-test");
	ck_assert_str_eq(param(&p, n, "sslmode"), "require");
	/* An unset protocols key is pgsluice's default, TLS 1.2, said explicitly. */
	ck_assert_str_eq(param(&p, n, "ssl_min_protocol_version"), "TLSv1.2");
}
END_TEST

START_TEST(host_names_get_no_hostaddr_and_ipv6_does)
{
	struct auxconn_spec spec = full_spec();
	struct auxconn_params p;
	spec.host = "db.example";
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_str_eq(param(&p, n, "host"), "db.example");
	ck_assert_ptr_null(param(&p, n, "hostaddr"));
	spec.host = "::1";
	n = auxconn_params_build(&spec, &p);
	ck_assert_str_eq(param(&p, n, "hostaddr"), "::1");
}
END_TEST

START_TEST(protocols_floor_follows_server_tls_protocols)
{
	struct auxconn_spec spec = full_spec();
	struct auxconn_params p;
	const char *const cases[][2] = {{"secure", "TLSv1.2"}, {"tlsv1.2", "TLSv1.2"},
					{"TLSV1.3", "TLSv1.3"}, {"SSLv3", "SSLv3"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spec.tls.protocols = cases[i][0];
		size_t n = auxconn_params_build(&spec, &p);
		ck_assert_str_eq(param(&p, n, "ssl_min_protocol_version"), cases[i][1]);
	}
}
END_TEST

START_TEST(timeouts_round_up_to_a_whole_second_within_int)
{
	struct auxconn_spec spec = full_spec();
	struct auxconn_params p;
	spec.connect_timeout = 0.01;
	size_t n = auxconn_params_build(&spec, &p);
	ck_assert_str_eq(param(&p, n, "connect_timeout"), "1");
	spec.connect_timeout = 1e12;
	n = auxconn_params_build(&spec, &p);
	ck_assert_str_eq(param(&p, n, "connect_timeout"), "2147483647");
	spec.connect_timeout = 0;
	n = auxconn_params_build(&spec, &p);
	ck_assert_ptr_null(param(&p, n, "connect_timeout"));
}
END_TEST

START_TEST(tls_settings_come_from_server_tls_keys)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.server_tls_mode = TLS_MODE_VERIFY_CA;
	cfg.server_tls_ca_file = "/ca";
	cfg.server_tls_cert_file = "/cert";
	cfg.server_tls_key_file = "/key";
	cfg.server_tls_protocols = "TLSv1.3";
	cfg.client_tls_ca_file = "/client-ca";
	struct auxconn_tls tls;
	auxconn_tls_from_config(&cfg, &tls);
	ck_assert_int_eq(tls.mode, TLS_MODE_VERIFY_CA);
	ck_assert_str_eq(tls.ca_file, "/ca");
	ck_assert_str_eq(tls.cert_file, "/cert");
	ck_assert_str_eq(tls.key_file, "/key");
	ck_assert_str_eq(tls.protocols, "TLSv1.3");
}
END_TEST

START_TEST(a_copy_outlives_its_source)
{
	char ca[] = "/etc/ca.crt", key[] = "/etc/client.key";
	struct auxconn_tls src = {TLS_MODE_VERIFY_FULL, ca, NULL, key, ""};
	struct auxconn_tls copy;
	char *block = auxconn_tls_copy(&copy, &src);
	ck_assert_ptr_nonnull(block);
	memset(ca, 'x', sizeof(ca) - 1);
	memset(key, 'x', sizeof(key) - 1);
	ck_assert_int_eq(copy.mode, TLS_MODE_VERIFY_FULL);
	ck_assert_str_eq(copy.ca_file, "/etc/ca.crt");
	ck_assert_ptr_null(copy.cert_file);
	ck_assert_str_eq(copy.key_file, "/etc/client.key");
	ck_assert_str_eq(copy.protocols, "");
	/* In place: the copy replaces the borrowed strings. */
	char *again = auxconn_tls_copy(&copy, &copy);
	ck_assert_ptr_nonnull(again);
	free(block);
	ck_assert_str_eq(copy.ca_file, "/etc/ca.crt");
	ck_assert_str_eq(copy.key_file, "/etc/client.key");
	free(again);
}
END_TEST

Suite *auxconn_suite(void)
{
	Suite *s = suite_create("auxconn");
	TCase *tc = tcase_create("sslmode");
	tcase_add_test(tc, every_mode_maps_to_sslmode_and_allow_means_plaintext);
	tcase_add_test(tc, unix_socket_is_plaintext_in_every_mode);
	suite_add_tcase(s, tc);
	tc = tcase_create("params");
	tcase_add_test(tc, verify_full_passes_every_field_and_the_tls_files);
	tcase_add_test(tc, disable_passes_sslmode_but_no_tls_file);
	tcase_add_test(tc, unset_values_are_left_to_libpq);
	tcase_add_test(tc, host_names_get_no_hostaddr_and_ipv6_does);
	tcase_add_test(tc, protocols_floor_follows_server_tls_protocols);
	tcase_add_test(tc, timeouts_round_up_to_a_whole_second_within_int);
	suite_add_tcase(s, tc);
	tc = tcase_create("settings");
	tcase_add_test(tc, tls_settings_come_from_server_tls_keys);
	tcase_add_test(tc, a_copy_outlives_its_source);
	suite_add_tcase(s, tc);
	return s;
}
