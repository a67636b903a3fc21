/* suites.h - one Check suite per pure module; main.c runs them all. */
#ifndef PGSLUICE_UNIT_SUITES_H
#define PGSLUICE_UNIT_SUITES_H

#include <check.h>

Suite *admin_suite(void);
Suite *auxconn_suite(void);
Suite *batchsql_suite(void);
Suite *classify_suite(void);
Suite *config_suite(void);
Suite *histogram_suite(void);
Suite *inflight_suite(void);
Suite *health_unit_suite(void);
Suite *manual_suite(void);
Suite *migrate_suite(void);
Suite *password_suite(void);
Suite *proto_suite(void);
Suite *scram_suite(void);
Suite *scramkeys_suite(void);
Suite *slowlog_suite(void);
Suite *userlist_suite(void);
/* Issue 8: auth_query and hba_file (used by auth.c); TLS (not yet called by the daemon). */
Suite *authquery_suite(void);
Suite *hba_suite(void);
Suite *tls_suite(void);

#endif
