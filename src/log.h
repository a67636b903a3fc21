/*
 * log.h - leveled logging to stderr, a log file or syslog.
 *
 * One process-wide sink (the daemon has a single log destination whatever
 * the number of workers). Messages never contain passwords: callers log
 * user and database names only.
 */
#ifndef PGSLUICE_LOG_H
#define PGSLUICE_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_TRACE };

/*
 * Points logging at path (NULL or "" = stderr) and optionally syslog.
 * verbose 0 logs up to INFO, 1 DEBUG, 2+ TRACE. Returns false when the
 * file cannot be opened (logging then stays on its previous sink).
 */
bool log_open(const char *path, bool use_syslog, int verbose);

/* Reopens the current log file (after logrotate moved it). */
void log_reopen(void);

/* Closes the log file; later messages go to stderr. */
void log_close(void);

/* true when a message of this level would be written. */
bool log_enabled(enum log_level level);

/* Writes one line: timestamp, level, message. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LEVEL_DEBUG))                                                  \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                   \
	} while (0)

#endif
