/*
 * main.c - runs every integration suite against a real PostgreSQL cluster that the
 * fixture starts once (scripts/pgcluster) and removes at exit. Run it from the
 * repository root. CK_RUN_SUITE / CK_RUN_CASE (Check variables) select a part,
 * CK_VERBOSITY=verbose lists every test; PGSLUICE_BIN, PGSLUICE_TEST_DIRECT,
 * PGSLUICE_TEST_REPLICAS and PGSLUICE_KEEP_TMP are described in fixture.h.
 * The exit code is non-zero when any test failed.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *runner = srunner_create(core_suite());
	srunner_add_suite(runner, differential_suite());
	srunner_add_suite(runner, admin_integration_suite());
	srunner_add_suite(runner, health_suite());
	srunner_add_suite(runner, routing_suite());
	srunner_add_suite(runner, prepared_suite());
	srunner_add_suite(runner, slowlog_integration_suite());
	srunner_add_suite(runner, deploy_suite());
	srunner_add_suite(runner, faults_suite());
	srunner_add_suite(runner, access_suite());
	srunner_add_suite(runner, tls_integration_suite());
	srunner_add_suite(runner, batching_suite());
	srunner_run_all(runner, CK_ENV);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
