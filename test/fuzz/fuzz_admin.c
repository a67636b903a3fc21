/*
 * fuzz_admin.c - libFuzzer target: the admin console's command parser.
 *
 * The input, NUL-terminated, is the text of a simple Query sent to the
 * pgsluice database: admin_parse with room for every statement and with
 * room for one. The count stays within the room, parsed names and values
 * are NUL-terminated in their fields, and a refusal carries a SQLSTATE and
 * a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static void run(const char *sql, size_t max)
{
	static struct admin_statement out[ADMIN_MAX_STATEMENTS];
	struct admin_error err;
	memset(&err, 0, sizeof(err));
	int n = admin_parse(sql, out, max, &err);
	check(n >= -1 && n <= (int)max);
	if (n < 0) {
		check(strnlen(err.sqlstate, sizeof(err.sqlstate)) == 5);
		check(memchr(err.message, 0, sizeof(err.message)) != NULL && err.message[0] != '\0');
		return;
	}
	for (int i = 0; i < n; i++) {
		check(memchr(out[i].name, 0, sizeof(out[i].name)) != NULL);
		check(memchr(out[i].value, 0, sizeof(out[i].value)) != NULL);
		check(admin_command_tag(out[i].command) != NULL);
		admin_command_changes(out[i].command);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = malloc(size + 1);
	if (sql == NULL)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	run(sql, ADMIN_MAX_STATEMENTS);
	run(sql, 1);
	free(sql);
	return 0;
}
