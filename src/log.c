/*
 * log.c - leveled logging to stderr, a log file or syslog.
 *
 * Lines are formatted into a stack buffer and written with one write() so
 * that concurrent writers (a daemonized parent and child, logrotate) never
 * interleave half lines.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"ERROR", "WARNING", "LOG", "DEBUG", "TRACE"};

static struct {
	int fd;
	char *path;
	bool syslog;
	enum log_level max_level;
} sink = {STDERR_FILENO, NULL, false, LOG_LEVEL_INFO};

bool log_open(const char *path, bool use_syslog, int verbose)
{
	sink.max_level = verbose <= 0 ? LOG_LEVEL_INFO : verbose == 1 ? LOG_LEVEL_DEBUG : LOG_LEVEL_TRACE;
	if (use_syslog && !sink.syslog)
		openlog("pgsluice", LOG_PID, LOG_DAEMON);
	else if (!use_syslog && sink.syslog)
		closelog();
	sink.syslog = use_syslog;
	if (path == NULL || path[0] == '\0') {
		log_close();
		return true;
	}
	if (sink.path != NULL && strcmp(sink.path, path) == 0)
		return true;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return false;
	log_close();
	sink.fd = fd;
	sink.path = strdup(path);
	return true;
}

void log_reopen(void)
{
	if (sink.path == NULL)
		return;
	int fd = open(sink.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_error("could not reopen log file \"%s\": %s", sink.path, strerror(errno));
		return;
	}
	close(sink.fd);
	sink.fd = fd;
}

void log_close(void)
{
	if (sink.fd != STDERR_FILENO)
		close(sink.fd);
	sink.fd = STDERR_FILENO;
	free(sink.path);
	sink.path = NULL;
}

bool log_enabled(enum log_level level)
{
	return level <= sink.max_level;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved_errno = errno;
	char line[2048];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03d [%d] %s ", (int)(tv.tv_usec / 1000),
			      (int)getpid(), level_names[level]);
	size_t head = n;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n += m < 0 ? 0 : (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (sink.syslog) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};
		syslog(prio[level], "%.*s", (int)(n - head - 1), line + head);
	}
	ssize_t w = write(sink.fd, line, n);
	(void)w;
	errno = saved_errno;
}
