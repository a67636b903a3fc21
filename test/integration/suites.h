/* suites.h - the integration suites; main.c runs them against a real cluster. */
#ifndef PGSLUICE_INTEGRATION_SUITES_H
#define PGSLUICE_INTEGRATION_SUITES_H

#include <check.h>

/* Pooling, protocol, errors, timeouts, signals and load through a running pgsluice. */
Suite *core_suite(void);

/* The same protocol script direct and through pgsluice must give the same messages. */
Suite *differential_suite(void);

/* Replicas banned when down or lagging, and back after they recover. */
Suite *health_suite(void);
Suite *routing_suite(void);

/* test_deploy.c: several processes on one port (so_reuseport), takeover under load. */
Suite *deploy_suite(void);

/* test_prepared.c: named prepared statements under transaction pooling. */
Suite *prepared_suite(void);

/* The admin console (every command, through libpq and psql) and the Prometheus endpoint. */
Suite *admin_integration_suite(void);

/* Slow statements: the JSON log, captured plans, rotation, SHOW SLOW_QUERIES/QUERIES. */
Suite *slowlog_integration_suite(void);

/* test_faults.c: servers and clients that die, stall or misbehave; load, leaks, crashes. */
Suite *faults_suite(void);

/* test_access.c: hba_file rules and reloads; auth_query logins, refusals and failures. */
Suite *access_suite(void);

/* test_tls.c: TLS toward clients (modes, certificates, reload) and toward the server. */
Suite *tls_integration_suite(void);

/* test_batching.c: insert batching against the real primary. */
Suite *batching_suite(void);

#endif
