/*
 * fuzz_config.c - libFuzzer target: the configuration file parser.
 *
 * The input becomes the content of an in-memory file (memfd) that
 * config_load() opens by its /proc path, as the daemon opens pgsluice.ini.
 * A loaded snapshot and the error text are freed, so that a leak in either
 * path is reported.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("pgsluice-fuzz.ini", 0);
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
	struct config *cfg = config_load(path, &errors);
	/* Exactly one: a snapshot, or the errors that refused it. */
	if ((cfg != NULL && errors != NULL) || (cfg == NULL && errors == NULL))
		__builtin_trap();
	config_free(cfg);
	free(errors);
	close(fd);
	return 0;
}
