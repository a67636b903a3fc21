/*
 * fuzz_userlist.c - libFuzzer target: the auth_file parser.
 *
 * The input becomes the content of an in-memory file (memfd) that
 * userlist_load() opens by its /proc path, as the daemon opens auth_file.
 * A loaded list is searched for a few names and freed, and so is the error
 * text, so that a leak in either path is reported.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "userlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("pgsluice-fuzz-users", 0);
	if (fd < 0)
		return 0;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *errors = NULL;
	struct userlist *ul = userlist_load(path, &errors);
	/* Exactly one: a list, or the errors that refused it. */
	if ((ul != NULL && errors != NULL) || (ul == NULL && errors == NULL))
		__builtin_trap();
	static const char *const names[] = {"", "app", "postgres", "a\"b", "zzzz"};
	size_t found = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (userlist_find(ul, names[i]) != NULL)
			found++;
		userlist_plaintext(ul, names[i]);
	}
	if (ul != NULL && found > userlist_count(ul))
		__builtin_trap();
	userlist_free(ul);
	free(errors);
	close(fd);
	return 0;
}
