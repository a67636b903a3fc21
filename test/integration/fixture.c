/*
 * fixture.c - the integration-test fixture behind fixture.h. It owns the per-process
 * PostgreSQL cluster (scripts/pgcluster in a mkdtemp directory, torn down at exit by
 * the process that started it, never by Check's forked test children), the pgsluice
 * daemons tests start (config writer, spawn, readiness wait, stop, and a kill of
 * leftovers when a test dies early), and libpq and shell helpers that assert on
 * failure. The daemon is only ever driven from outside, like a real client would.
 */
#include "fixture.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

/* Most replicas a run may ask for; each is a full PostgreSQL instance. */
#define FIXTURE_MAX_REPLICAS 8
/* Most pgsluice daemons one test process runs at a time. */
#define FIXTURE_MAX_SLUICES 32
/* Attempts at starting a cluster or a daemon when a picked port was taken meanwhile. */
#define FIXTURE_PORT_ATTEMPTS 3
/* How long sluice_start() waits for the daemon's port. */
#define FIXTURE_READY_SECONDS 5.0
/* How long sluice_stop() waits after SIGTERM before SIGKILL. */
#define FIXTURE_STOP_SECONDS 15.0
/* Largest log sluice_log() returns; a test that needs more is logging too much. */
#define FIXTURE_MAX_LOG (16u * 1024 * 1024)
/* How much of the daemon's log a failed start quotes. */
#define FIXTURE_LOG_TAIL 3000
/* Room for the output of pgcluster and other setup commands. */
#define FIXTURE_SH_OUT 16384

static struct {
	bool started;
	pid_t owner;
	char tmpdir[64];
	char cluster_dir[96];
	char bindir[256];
	char script[512];
	int primary_port;
	int replica_ports[FIXTURE_MAX_REPLICAS];
	int replica_count;
} cluster;

/* Daemons this process started and has not stopped; killed if the process exits early. */
static struct {
	pid_t owner;
	pid_t pids[FIXTURE_MAX_SLUICES];
	int count;
} running;

static void fixture_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The cluster runs outside Check's control, so its failures abort with a message. */
static void fixture_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fixture: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

double fixture_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool fixture_direct_mode(void)
{
	const char *v = getenv("PGSLUICE_TEST_DIRECT");
	return v != NULL && strcmp(v, "1") == 0;
}

void fixture_sleep(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Exit status as a shell reports it: the code, or 128 + the killing signal. */
static int fixture_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* Children must not hold the test's sockets and files: a daemon that outlives a test
 * would otherwise keep its client connections open. */
static void fixture_close_inherited_fds(void)
{
	close_range(3, ~0u, 0);
}

int fixture_sh(const char *cmd, char *out, size_t cap)
{
	char path[] = "/tmp/pgsluice-sh-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		fixture_close_inherited_fds();
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	if (out != NULL && cap > 0) {
		size_t len = 0;
		ssize_t n;
		if (lseek(fd, 0, SEEK_SET) == 0) {
			while (len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0)
				len += (size_t)n;
		}
		out[len] = '\0';
	}
	close(fd);
	return fixture_status_code(status);
}

/* Ask the kernel for a free port; the socket is handed back open so that several
 * picks in a row are distinct. The caller closes it just before use. */
static int fixture_reserve_port(int *sock_out)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0) {
		close(s);
		return -1;
	}
	*sock_out = s;
	return ntohs(a.sin_port);
}

static int fixture_free_port(void)
{
	int s;
	int port = fixture_reserve_port(&s);
	if (port > 0)
		close(s);
	return port;
}

static void fixture_find_bindir(void)
{
	const char *env = getenv("PG_BINDIR");
	if (env != NULL && env[0] != '\0') {
		snprintf(cluster.bindir, sizeof(cluster.bindir), "%s", env);
		return;
	}
	glob_t g;
	int best = -1;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			int major = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
			if (major > best) {
				best = major;
				snprintf(cluster.bindir, sizeof(cluster.bindir),
					 "/usr/lib/postgresql/%d/bin", major);
			}
		}
		globfree(&g);
	}
	if (best < 0)
		fixture_die("no PostgreSQL under /usr/lib/postgresql (install postgresql)");
}

static void fixture_write_userlist(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/userlist.txt", cluster.tmpdir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fixture_die("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "\"%s\" \"%s\"\n\"%s\" \"%s\"\n\"%s\" \"%s\"\n", FIXTURE_USER, FIXTURE_PASSWORD,
		FIXTURE_USER2, FIXTURE_PASSWORD2, FIXTURE_ADMIN_USER, FIXTURE_ADMIN_PASSWORD);
	if (fclose(f) != 0)
		fixture_die("cannot write %s", path);
}

/* Runs in the owner only: Check's forked children inherit both atexit and handlers. */
static void fixture_atexit_teardown(void)
{
	if (cluster.started && cluster.owner == getpid())
		fixture_cluster_stop();
}

static void fixture_on_fatal_signal(int sig)
{
	/* Best effort: a run interrupted by ^C or a CI timeout must not leave postmasters. */
	fixture_atexit_teardown();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool fixture_try_start_cluster(char *out, size_t cap)
{
	int socks[FIXTURE_MAX_REPLICAS + 1];
	int nsocks = 0;
	char cmd[1024];
	int len = snprintf(cmd, sizeof(cmd), "%s start %s", cluster.script, cluster.cluster_dir);
	for (int i = 0; i <= cluster.replica_count; i++) {
		int port = fixture_reserve_port(&socks[nsocks]);
		if (port <= 0)
			fixture_die("cannot find a free port: %s", strerror(errno));
		nsocks++;
		if (i == 0)
			cluster.primary_port = port;
		else
			cluster.replica_ports[i - 1] = port;
		len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " %d", port);
	}
	for (int i = 0; i < nsocks; i++)
		close(socks[i]);
	return fixture_sh(cmd, out, cap) == 0;
}

void fixture_cluster_start(void)
{
	if (cluster.started)
		return;
	const char *script = getenv("PGSLUICE_PGCLUSTER");
	snprintf(cluster.script, sizeof(cluster.script), "%s",
		 script != NULL ? script : "scripts/pgcluster");
	if (access(cluster.script, X_OK) != 0)
		fixture_die("%s not found: run the tests from the repository root", cluster.script);
	fixture_find_bindir();

	const char *nrep = getenv("PGSLUICE_TEST_REPLICAS");
	cluster.replica_count = nrep != NULL ? atoi(nrep) : 2;
	if (cluster.replica_count < 0 || cluster.replica_count > FIXTURE_MAX_REPLICAS)
		fixture_die("PGSLUICE_TEST_REPLICAS must be 0..%d", FIXTURE_MAX_REPLICAS);

	snprintf(cluster.tmpdir, sizeof(cluster.tmpdir), "/tmp/pgsluice-test-XXXXXX");
	if (mkdtemp(cluster.tmpdir) == NULL)
		fixture_die("mkdtemp: %s", strerror(errno));
	/* PostgreSQL runs as postgres when we are root and must be able to enter it. */
	if (chmod(cluster.tmpdir, 0755) != 0)
		fixture_die("chmod %s: %s", cluster.tmpdir, strerror(errno));
	snprintf(cluster.cluster_dir, sizeof(cluster.cluster_dir), "%s/cluster", cluster.tmpdir);

	cluster.owner = getpid();
	cluster.started = true;
	atexit(fixture_atexit_teardown);
	signal(SIGINT, fixture_on_fatal_signal);
	signal(SIGTERM, fixture_on_fatal_signal);

	char *out = malloc(FIXTURE_SH_OUT);
	if (out == NULL)
		fixture_die("out of memory");
	double t0 = fixture_now();
	bool ok = false;
	for (int attempt = 0; attempt < FIXTURE_PORT_ATTEMPTS && !ok; attempt++) {
		if (attempt > 0) {
			char cmd[1024];
			/* A port picked a moment ago may have been taken by another process. */
			snprintf(cmd, sizeof(cmd), "%s stop %s; rm -rf %s", cluster.script,
				 cluster.cluster_dir, cluster.cluster_dir);
			fixture_sh(cmd, NULL, 0);
		}
		ok = fixture_try_start_cluster(out, FIXTURE_SH_OUT);
	}
	if (!ok) {
		fprintf(stderr, "%s", out);
		free(out);
		fixture_die("scripts/pgcluster could not start a cluster in %s", cluster.tmpdir);
	}
	free(out);
	fixture_write_userlist();
	fprintf(stderr, "fixture: primary on %d, %d replica(s), in %s (%.1f s)\n",
		cluster.primary_port, cluster.replica_count, cluster.tmpdir, fixture_now() - t0);
}

void fixture_cluster_stop(void)
{
	if (!cluster.started)
		return;
	cluster.started = false;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s stop %s", cluster.script, cluster.cluster_dir);
	char out[FIXTURE_SH_OUT];
	if (fixture_sh(cmd, out, sizeof(out)) != 0)
		fprintf(stderr, "fixture: stopping the cluster failed:\n%s", out);
	const char *keep = getenv("PGSLUICE_KEEP_TMP");
	if (keep != NULL && strcmp(keep, "1") == 0) {
		fprintf(stderr, "fixture: kept %s\n", cluster.tmpdir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cluster.tmpdir);
	fixture_sh(cmd, NULL, 0);
}

int fixture_primary_port(void)
{
	fixture_cluster_start();
	return cluster.primary_port;
}

int fixture_replica_port(int i)
{
	fixture_cluster_start();
	if (i < 0 || i >= cluster.replica_count)
		fixture_die("no replica %d (there are %d)", i, cluster.replica_count);
	return cluster.replica_ports[i];
}

int fixture_replica_count(void)
{
	fixture_cluster_start();
	return cluster.replica_count;
}

const char *fixture_tmpdir(void)
{
	fixture_cluster_start();
	return cluster.tmpdir;
}

const char *fixture_pg_bindir(void)
{
	fixture_cluster_start();
	return cluster.bindir;
}

/* ---- pgsluice daemons ---- */

static void fixture_kill_leftovers(void)
{
	if (running.owner != getpid())
		return;
	for (int i = 0; i < running.count; i++) {
		kill(running.pids[i], SIGKILL);
		waitpid(running.pids[i], NULL, 0);
	}
	running.count = 0;
}

static void fixture_track(pid_t pid)
{
	if (running.owner != getpid()) {
		/* A forked test child inherits the parent's list; those pids are not its own. */
		running.owner = getpid();
		running.count = 0;
		atexit(fixture_kill_leftovers);
	}
	ck_assert_msg(running.count < FIXTURE_MAX_SLUICES, "more than %d daemons at once",
		      FIXTURE_MAX_SLUICES);
	running.pids[running.count++] = pid;
}

static void fixture_untrack(pid_t pid)
{
	for (int i = 0; i < running.count; i++) {
		if (running.pids[i] == pid) {
			running.pids[i] = running.pids[--running.count];
			return;
		}
	}
}

/* True when one of extra's lines sets key (so the base line of that key is left out). */
static bool fixture_extra_sets(const char *extra, const char *key)
{
	size_t klen = strlen(key);
	for (const char *line = extra; line != NULL && *line != '\0';) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, key, klen) == 0) {
			const char *p = line + klen;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '=')
				return true;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return false;
}

static bool fixture_write_config(const struct sluice *s, const char *global_extra,
				 const char *databases_extra)
{
	FILE *f = fopen(s->conf_path, "w");
	if (f == NULL)
		return false;
	/* Extras may replace any base key except where the daemon listens. */
	static const char *const base_keys[] = { "unix_socket_dir", "auth_type", "auth_file",
						 "admin_users" };
	char base_values[4][200];
	snprintf(base_values[0], sizeof(base_values[0]), "%s", "");
	snprintf(base_values[1], sizeof(base_values[1]), "%s", "scram-sha-256");
	snprintf(base_values[2], sizeof(base_values[2]), "%s/userlist.txt", cluster.tmpdir);
	snprintf(base_values[3], sizeof(base_values[3]), "%s", FIXTURE_ADMIN_USER);

	fprintf(f, "[pgsluice]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n", s->port);
	for (size_t i = 0; i < sizeof(base_keys) / sizeof(base_keys[0]); i++) {
		if (!fixture_extra_sets(global_extra, base_keys[i]))
			fprintf(f, "%s = %s\n", base_keys[i], base_values[i]);
	}
	if (global_extra != NULL)
		fprintf(f, "%s\n", global_extra);
	fprintf(f, "\n[databases]\n");
	if (!fixture_extra_sets(databases_extra, FIXTURE_DB)) {
		fprintf(f, "%s = host=127.0.0.1 port=%d dbname=%s", FIXTURE_DB,
			cluster.primary_port, FIXTURE_DB);
		for (int i = 0; i < cluster.replica_count; i++)
			fprintf(f, "%s127.0.0.1:%d", i == 0 ? " replicas=" : ",",
				cluster.replica_ports[i]);
		fputc('\n', f);
	}
	if (databases_extra != NULL)
		fprintf(f, "%s\n", databases_extra);
	bool ok = !ferror(f);
	return fclose(f) == 0 && ok;
}

char *sluice_log(struct sluice *s)
{
	FILE *f = s->log_path[0] != '\0' ? fopen(s->log_path, "r") : NULL;
	char *text = malloc(FIXTURE_MAX_LOG + 1);
	ck_assert_msg(text != NULL, "out of memory");
	size_t len = 0;
	if (f != NULL) {
		len = fread(text, 1, FIXTURE_MAX_LOG, f);
		fclose(f);
	}
	text[len] = '\0';
	return text;
}

/* The end of the log, for failure messages. */
static const char *fixture_log_tail(const char *log)
{
	size_t len = strlen(log);
	return len > FIXTURE_LOG_TAIL ? log + len - FIXTURE_LOG_TAIL : log;
}

static pid_t fixture_spawn_daemon(const char *bin, const struct sluice *s)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int log = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	int devnull = open("/dev/null", O_RDONLY);
	if (log < 0 || devnull < 0 || dup2(devnull, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
		_exit(127);
	/* Check kills a test that times out with SIGKILL; its daemon must die with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	fixture_close_inherited_fds();
	execl(bin, bin, s->conf_path, (char *)NULL);
	dprintf(2, "fixture: cannot execute %s: %s\n", bin, strerror(errno));
	_exit(127);
}

static bool fixture_port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

struct sluice *sluice_start(const char *global_extra, const char *databases_extra)
{
	return sluice_start_on_port(0, global_extra, databases_extra);
}

/* true once the daemon's log says it started (it listens by then). */
static bool fixture_daemon_started(struct sluice *s)
{
	char *log = sluice_log(s);
	bool started = strstr(log, " started (pid ") != NULL;
	free(log);
	return started;
}

struct sluice *sluice_start_on_port(int port, const char *global_extra,
				    const char *databases_extra)
{
	fixture_cluster_start();
	struct sluice *s = calloc(1, sizeof(*s));
	ck_assert_msg(s != NULL, "out of memory");
	if (fixture_direct_mode()) {
		s->port = cluster.primary_port;
		return s;
	}
	const char *bin = getenv("PGSLUICE_BIN");
	if (bin == NULL || bin[0] == '\0')
		bin = "./src/pgsluice";
	ck_assert_msg(access(bin, X_OK) == 0, "pgsluice binary %s not found (set PGSLUICE_BIN)",
		      bin);

	snprintf(s->dir, sizeof(s->dir), "%s/sluice-XXXXXX", cluster.tmpdir);
	ck_assert_msg(mkdtemp(s->dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(s->conf_path, sizeof(s->conf_path), "%s/pgsluice.ini", s->dir);
	snprintf(s->log_path, sizeof(s->log_path), "%s/pgsluice.log", s->dir);

	for (int attempt = 0; attempt < FIXTURE_PORT_ATTEMPTS; attempt++) {
		s->port = port > 0 ? port : fixture_free_port();
		ck_assert_msg(s->port > 0, "no free port: %s", strerror(errno));
		ck_assert_msg(fixture_write_config(s, global_extra, databases_extra),
			      "cannot write %s", s->conf_path);
		s->pid = fixture_spawn_daemon(bin, s);
		ck_assert_msg(s->pid > 0, "fork: %s", strerror(errno));
		fixture_track(s->pid);

		double deadline = fixture_now() + FIXTURE_READY_SECONDS;
		int status = 0;
		bool exited = false;
		while (fixture_now() < deadline) {
			if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
				exited = true;
				break;
			}
			/* A given port may already be served by another process. */
			if (port > 0 ? fixture_daemon_started(s) : fixture_port_accepts(s->port))
				return s;
			fixture_sleep(0.02);
		}
		char *log = sluice_log(s);
		if (exited) {
			fixture_untrack(s->pid);
			if (port == 0 && strstr(log, "in use") != NULL &&
			    attempt + 1 < FIXTURE_PORT_ATTEMPTS) {
				free(log);
				continue;
			}
			ck_abort_msg(
				"pgsluice exited with status %d before listening on %d; log:\n%s",
				fixture_status_code(status), s->port, fixture_log_tail(log));
		}
		ck_abort_msg("pgsluice did not accept on port %d within %.0f s; log:\n%s", s->port,
			     FIXTURE_READY_SECONDS, fixture_log_tail(log));
	}
	ck_abort_msg("pgsluice could not get a free port in %d attempts", FIXTURE_PORT_ATTEMPTS);
	return NULL;
}

bool sluice_rewrite(struct sluice *s, const char *global_extra, const char *databases_extra)
{
	if (fixture_direct_mode())
		return true;
	/* Write beside and rename, so that a reload never reads a half-written file. */
	struct sluice tmp = *s;
	snprintf(tmp.conf_path, sizeof(tmp.conf_path), "%s/pgsluice.ini.new", s->dir);
	if (!fixture_write_config(&tmp, global_extra, databases_extra))
		return false;
	return rename(tmp.conf_path, s->conf_path) == 0;
}

void sluice_signal(struct sluice *s, int sig)
{
	if (s->pid > 0)
		ck_assert_msg(kill(s->pid, sig) == 0, "kill(%d, %d): %s", (int)s->pid, sig,
			      strerror(errno));
}

int sluice_wait_exit(struct sluice *s, double timeout_s)
{
	if (s->pid <= 0) {
		free(s);
		return 0;
	}
	double deadline = fixture_now() + timeout_s;
	int status;
	for (;;) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid)
			break;
		if (r < 0 && errno != EINTR) {
			fixture_untrack(s->pid);
			free(s);
			return -1;
		}
		if (fixture_now() >= deadline)
			return -2;
		fixture_sleep(0.01);
	}
	fixture_untrack(s->pid);
	free(s);
	return fixture_status_code(status);
}

int sluice_stop(struct sluice *s)
{
	if (s->pid <= 0) {
		free(s);
		return 0;
	}
	kill(s->pid, SIGTERM);
	int rc = sluice_wait_exit(s, FIXTURE_STOP_SECONDS);
	if (rc != -2)
		return rc;
	kill(s->pid, SIGKILL);
	return sluice_wait_exit(s, FIXTURE_STOP_SECONDS);
}

void sluice_stop_clean(struct sluice *s)
{
	struct sluice copy = *s;
	int rc = sluice_stop(s);
	if (rc != 0) {
		char *log = sluice_log(&copy);
		ck_abort_msg("pgsluice exited with %d; log tail:\n%s", rc, fixture_log_tail(log));
	}
}

/* ---- libpq helpers ---- */

/* Append key='value' with libpq's quoting; returns false when it does not fit. */
static bool fixture_conninfo_add(char *buf, size_t cap, const char *key, const char *value)
{
	size_t len = strlen(buf);
	int n = snprintf(buf + len, cap - len, "%s%s='", len > 0 ? " " : "", key);
	if (n < 0 || (size_t)n >= cap - len)
		return false;
	len += (size_t)n;
	for (const char *p = value; *p != '\0'; p++) {
		if (len + 3 >= cap)
			return false;
		if (*p == '\'' || *p == '\\')
			buf[len++] = '\\';
		buf[len++] = *p;
	}
	buf[len++] = '\'';
	buf[len] = '\0';
	return true;
}

PGconn *fixture_connect(int port, const char *db, const char *user, const char *password,
			const char *extra_conninfo)
{
	char conninfo[4096] = "";
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	bool ok = fixture_conninfo_add(conninfo, sizeof(conninfo), "host", "127.0.0.1") &&
		  fixture_conninfo_add(conninfo, sizeof(conninfo), "port", port_text) &&
		  fixture_conninfo_add(conninfo, sizeof(conninfo), "dbname", db) &&
		  fixture_conninfo_add(conninfo, sizeof(conninfo), "user", user) &&
		  fixture_conninfo_add(conninfo, sizeof(conninfo), "connect_timeout", "10");
	if (ok && password != NULL)
		ok = fixture_conninfo_add(conninfo, sizeof(conninfo), "password", password);
	size_t len = strlen(conninfo);
	if (ok && extra_conninfo != NULL) {
		int n = snprintf(conninfo + len, sizeof(conninfo) - len, " %s", extra_conninfo);
		ok = n >= 0 && (size_t)n < sizeof(conninfo) - len;
	}
	/* An overlong conninfo is a bug in the test, not a connection failure. */
	if (!ok)
		fixture_die("conninfo too long");
	return PQconnectdb(conninfo);
}

PGconn *fixture_connect_ok(int port, const char *db, const char *user, const char *password,
			   const char *extra_conninfo)
{
	PGconn *c = fixture_connect(port, db, user, password, extra_conninfo);
	ck_assert_msg(c != NULL && PQstatus(c) == CONNECTION_OK,
		      "connect to port %d db %s user %s failed: %s", port, db, user,
		      c != NULL ? PQerrorMessage(c) : "out of memory");
	return c;
}

PGresult *fixture_exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
			      st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH,
		      "\"%.200s\" failed (%s, SQLSTATE %s): %s", sql, PQresStatus(st),
		      fixture_sqlstate(r), PQerrorMessage(c));
	return r;
}

char *fixture_value(PGconn *c, const char *sql)
{
	PGresult *r = fixture_exec_ok(c, sql);
	ck_assert_msg(PQntuples(r) >= 1 && PQnfields(r) >= 1, "\"%.200s\" returned no value", sql);
	ck_assert_msg(!PQgetisnull(r, 0, 0), "\"%.200s\" returned NULL", sql);
	char *v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	ck_assert_msg(v != NULL, "out of memory");
	return v;
}

void fixture_parse_error_text(const char *text, char sqlstate[6], char *message, size_t cap)
{
	static const char *const severities[] = {"FATAL:  ", "ERROR:  "};
	for (size_t i = 0; i < 2; i++) {
		const char *p = strstr(text, severities[i]);
		if (p == NULL)
			continue;
		p += strlen(severities[i]);
		if (strlen(p) < 7 || p[5] != ':' || p[6] != ' ')
			continue;
		memcpy(sqlstate, p, 5);
		sqlstate[5] = '\0';
		if (message != NULL && cap > 0)
			snprintf(message, cap, "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
		return;
	}
}

const char *fixture_sqlstate(const PGresult *r)
{
	const char *s = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return s != NULL ? s : "";
}

/* pg_ctl on replica i's data directory, as the postgres user when root. */
static void fixture_replica_ctl(int i, const char *action)
{
	fixture_cluster_start();
	char cmd[2048], out[4096];
	const char *as = geteuid() == 0 ? "runuser -u postgres -- " : "";
	snprintf(cmd, sizeof(cmd), "%s%s/pg_ctl -D %s/replica%d -l %s/replica%d.log -w -t 60 %s",
		 as, fixture_pg_bindir(), cluster.cluster_dir, i + 1, cluster.cluster_dir, i + 1,
		 action);
	int rc = fixture_sh(cmd, out, sizeof(out));
	ck_assert_msg(rc == 0, "%s failed (%d): %s", cmd, rc, out);
}

void fixture_replica_stop(int i)
{
	fixture_replica_ctl(i, "-m immediate stop");
}

void fixture_replica_start(int i)
{
	fixture_replica_ctl(i, "start");
}

long fixture_query_stat(PGconn *c, const char *prefix, const char *col)
{
	PGresult *r = fixture_exec_ok(c, "SHOW QUERIES");
	int fq = PQfnumber(r, "query"), f = PQfnumber(r, col), row = -1;
	ck_assert_msg(fq >= 0 && f >= 0, "SHOW QUERIES has no column %s", col);
	for (int i = 0; i < PQntuples(r); i++) {
		if (strncmp(PQgetvalue(r, i, fq), prefix, strlen(prefix)) != 0)
			continue;
		ck_assert_msg(row < 0, "SHOW QUERIES has two rows starting %s", prefix);
		row = i;
	}
	ck_assert_msg(row >= 0, "SHOW QUERIES has no row starting %s", prefix);
	long v = atol(PQgetvalue(r, row, f));
	PQclear(r);
	return v;
}

char *fixture_admin_value(int port, const char *sql)
{
	char conninfo[256];
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d dbname=%s user=postgres connect_timeout=10", port,
		 FIXTURE_DB);
	PGconn *c = PQconnectdb(conninfo);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "postgres on %d: %s", port, PQerrorMessage(c));
	char *v = fixture_value(c, sql);
	PQfinish(c);
	return v;
}

void fixture_pgbench_init(void)
{
	char cmd[1024], out[FIXTURE_SH_OUT];
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s -i -s 1 -q %s 2>&1",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), fixture_primary_port(), FIXTURE_USER,
		 FIXTURE_DB);
	ck_assert_msg(fixture_sh(cmd, out, sizeof(out)) == 0, "pgbench -i: %s", out);
	char *lsn = fixture_admin_value(fixture_primary_port(), "SELECT pg_current_wal_lsn()");
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
	free(lsn);
	for (int i = 0; i < fixture_replica_count(); i++) {
		bool caught_up = false;
		double deadline = fixture_now() + 30.0;
		while (!caught_up && fixture_now() < deadline) {
			char *v = fixture_admin_value(fixture_replica_port(i), sql);
			caught_up = strcmp(v, "t") == 0;
			free(v);
			if (!caught_up)
				fixture_sleep(0.05);
		}
		ck_assert_msg(caught_up, "replica %d never replayed pgbench's tables", i);
	}
}
