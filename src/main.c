/*
 * main.c - command line, daemonizing, signals, start and stop.
 *
 * pgsluice [-d] [--check] [--version] [--help] CONFIG.ini
 * SIGHUP reloads the configuration and reopens the log file; SIGUSR2
 * reopens the log file only; SIGTERM shuts down gracefully (clients leave
 * as shutdown_drain says, bounded by shutdown_timeout); SIGINT stops at once.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "hba.h"
#include "log.h"
#include "querylog.h"
#include "userlist.h"
#include "worker.h"

static void usage(FILE *out)
{
	fprintf(out, "pgsluice %s - PostgreSQL connection pooler and query router\n\n"
		     "Usage: pgsluice [OPTIONS] CONFIG.ini\n\n"
		     "Options:\n"
		     "  -d, --daemon    run in the background (writes pidfile if configured)\n"
		     "      --check     validate the configuration and exit 0 (valid) or 1\n"
		     "  -V, --version   print the version and exit\n"
		     "  -h, --help      print this help and exit\n\n"
		     "Signals: SIGHUP reload, SIGTERM graceful stop, SIGINT immediate stop,\n"
		     "SIGUSR2 reopen the log file.\n",
		PACKAGE_VERSION);
}

/* Loads the configuration, its auth file and its hba file; prints every problem. */
static bool load_all(const char *path, struct config **cfg, struct userlist **users,
		     struct hba_rules **hba)
{
	char *errors = NULL;
	*cfg = config_load(path, &errors);
	if (*cfg == NULL) {
		fprintf(stderr, "%s", errors != NULL ? errors : "configuration could not be read\n");
		free(errors);
		return false;
	}
	*users = NULL;
	if ((*cfg)->auth_file != NULL) {
		*users = userlist_load((*cfg)->auth_file, &errors);
		if (*users == NULL) {
			fprintf(stderr, "%s", errors != NULL ? errors : "auth_file could not be read\n");
			free(errors);
			config_free(*cfg);
			*cfg = NULL;
			return false;
		}
	}
	if (!worker_load_hba(*cfg, hba, &errors)) {
		fprintf(stderr, "%s", errors != NULL ? errors : "hba_file could not be read\n");
		free(errors);
		userlist_free(*users);
		config_free(*cfg);
		*cfg = NULL;
		return false;
	}
	return true;
}

static bool write_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	bool ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	return ok;
}

/*
 * Forks into the background. The command returns only once the daemon is
 * listening (exit 0) or has failed to start (exit 1, its errors already
 * printed): the daemon reports through *ready_fd with daemon_ready().
 */
static bool daemonize(int *ready_fd)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return false;
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid > 0) {
		close(pipefd[1]);
		char ok = 0;
		ssize_t n;
		while ((n = read(pipefd[0], &ok, 1)) < 0 && errno == EINTR)
			;
		_exit(n == 1 && ok == '1' ? 0 : 1);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		return false;
	pid = fork();
	if (pid < 0)
		return false;
	if (pid > 0)
		_exit(0);
	*ready_fd = pipefd[1];
	return true;
}

/* Tells the waiting command the daemon is up and detaches from the terminal. */
static void daemon_ready(int ready_fd)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (write(ready_fd, "1", 1) != 1)
		log_warning("could not tell the starting command that pgsluice is up");
	close(ready_fd);
}

struct daemon_state {
	struct worker worker;
	const char *config_path;
	ev_signal sighup, sigterm, sigint, sigusr2;
};

static void on_sighup(struct ev_loop *loop, ev_signal *sig, int revents)
{
	(void)loop;
	(void)revents;
	struct daemon_state *d = sig->data;
	log_info("SIGHUP: reloading %s", d->config_path);
	char *errors = worker_reload_from_file(&d->worker);
	if (errors != NULL) {
		log_error("reload failed, keeping the running configuration:\n%s", errors);
		free(errors);
	}
}

static void on_sigterm(struct ev_loop *loop, ev_signal *sig, int revents)
{
	(void)loop;
	(void)revents;
	struct daemon_state *d = sig->data;
	log_info("SIGTERM: graceful shutdown");
	worker_begin_shutdown(&d->worker);
}

static void on_sigint(struct ev_loop *loop, ev_signal *sig, int revents)
{
	(void)revents;
	(void)sig;
	log_info("SIGINT: immediate shutdown");
	ev_break(loop, EVBREAK_ALL);
}

static void on_sigusr2(struct ev_loop *loop, ev_signal *sig, int revents)
{
	(void)loop;
	(void)revents;
	struct daemon_state *d = sig->data;
	log_reopen();
	querylog_reopen(&d->worker);
}

static void start_signal(struct ev_loop *loop, ev_signal *w, void (*cb)(struct ev_loop *, ev_signal *, int),
			 int signum, struct daemon_state *d)
{
	ev_signal_init(w, cb, signum);
	w->data = d;
	ev_signal_start(loop, w);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"daemon", no_argument, NULL, 'd'}, {"check", no_argument, NULL, 'c'},
	    {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool daemon = false, check = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "dVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			daemon = true;
			break;
		case 'c':
			check = true;
			break;
		case 'V':
			printf("pgsluice %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	struct daemon_state *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return 1;
	d->config_path = argv[optind];
	struct config *cfg;
	struct userlist *users;
	struct hba_rules *hba;
	if (!load_all(d->config_path, &cfg, &users, &hba)) {
		free(d);
		return 1;
	}
	if (check) {
		printf("%s: configuration is valid (%zu databases)\n", d->config_path, cfg->n_dbs);
		config_free(cfg);
		userlist_free(users);
		hba_free(hba);
		free(d);
		return 0;
	}
	if (!log_open(cfg->logfile, cfg->syslog, cfg->verbose)) {
		fprintf(stderr, "could not open log file \"%s\": %s\n", cfg->logfile, strerror(errno));
		return 1;
	}
	int ready_fd = -1;
	if (daemon && !daemonize(&ready_fd)) {
		log_error("could not daemonize: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	if (loop == NULL) {
		log_error("could not start the event loop");
		return 1;
	}
	d->worker.config_path = d->config_path;
	if (!worker_init(&d->worker, loop, cfg, users, hba)) {
		log_error("could not start: see the messages above");
		return 1;
	}
	if (cfg->pidfile != NULL && !write_pidfile(cfg->pidfile)) {
		log_error("could not write pidfile \"%s\": %s", cfg->pidfile, strerror(errno));
		return 1;
	}
	start_signal(loop, &d->sighup, on_sighup, SIGHUP, d);
	start_signal(loop, &d->sigterm, on_sigterm, SIGTERM, d);
	start_signal(loop, &d->sigint, on_sigint, SIGINT, d);
	start_signal(loop, &d->sigusr2, on_sigusr2, SIGUSR2, d);
	log_info("pgsluice %s started (pid %d)", PACKAGE_VERSION, (int)getpid());
	if (ready_fd >= 0)
		daemon_ready(ready_fd);
	ev_run(loop, 0);
	char *pidfile = d->worker.cfg->pidfile != NULL ? strdup(d->worker.cfg->pidfile) : NULL;
	worker_destroy(&d->worker);
	ev_loop_destroy(loop);
	if (pidfile != NULL) {
		unlink(pidfile);
		free(pidfile);
	}
	log_info("pgsluice stopped");
	log_close();
	free(d);
	return 0;
}
