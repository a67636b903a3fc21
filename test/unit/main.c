/*
 * main.c - runs every unit suite. CK_RUN_SUITE=name (a Check variable)
 * selects one; the exit code is non-zero when any test failed.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *runner = srunner_create(classify_suite());
	srunner_add_suite(runner, admin_suite());
	srunner_add_suite(runner, auxconn_suite());
	srunner_add_suite(runner, batchsql_suite());
	srunner_add_suite(runner, config_suite());
	srunner_add_suite(runner, histogram_suite());
	srunner_add_suite(runner, health_unit_suite());
	srunner_add_suite(runner, inflight_suite());
	srunner_add_suite(runner, manual_suite());
	srunner_add_suite(runner, migrate_suite());
	srunner_add_suite(runner, password_suite());
	srunner_add_suite(runner, proto_suite());
	srunner_add_suite(runner, scram_suite());
	srunner_add_suite(runner, scramkeys_suite());
	srunner_add_suite(runner, slowlog_suite());
	srunner_add_suite(runner, userlist_suite());
	srunner_add_suite(runner, authquery_suite());
	srunner_add_suite(runner, hba_suite());
	srunner_add_suite(runner, tls_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
