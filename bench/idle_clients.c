/*
 * idle_clients.c - holds N idle client connections open against a pooler.
 *
 * bench/run starts it to measure what an idle client costs a pooler: the
 * connections are opened without blocking (PQconnectStart/PQconnectPoll
 * under poll()), at most IDLE_INFLIGHT_MAX at a time, then held open until
 * standard input closes or SIGINT/SIGTERM arrives. "connected N" on
 * standard output says that every connection is up.
 *
 * Usage: idle_clients CONNINFO COUNT
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Logins in progress at once: enough to keep the pooler busy, few enough for its backlog. */
#define IDLE_INFLIGHT_MAX 200
/* Most connections one run may hold; every one is a file descriptor on both ends. */
#define IDLE_COUNT_MAX 100000
/* A login that has not finished after this long fails the run. */
#define IDLE_LOGIN_SECONDS 60

struct idle_slot {
	PGconn *conn;
	PostgresPollingStatusType want; /* what PQconnectPoll waits for */
	time_t started;
};

static volatile sig_atomic_t idle_stop;

static void idle_on_signal(int sig)
{
	(void)sig;
	idle_stop = 1;
}

static void idle_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = idle_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: poll() must return so that the flag is seen. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Starts one login into *s; false (with the reason printed) when libpq refuses at once. */
static bool idle_start(struct idle_slot *s, const char *conninfo)
{
	s->conn = PQconnectStart(conninfo);
	if (s->conn == NULL) {
		fprintf(stderr, "idle_clients: out of memory\n");
		return false;
	}
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		fprintf(stderr, "idle_clients: %s", PQerrorMessage(s->conn));
		return false;
	}
	s->want = PGRES_POLLING_WRITING;
	s->started = time(NULL);
	return true;
}

/* Closes the logins still in progress after a failure; always false. */
static bool idle_abandon(struct idle_slot *slots, int inflight)
{
	for (int i = 0; i < inflight; i++)
		PQfinish(slots[i].conn);
	return false;
}

/*
 * Opens count connections; the finished ones go to done[]. Returns false on
 * the first failure, after printing it; done[] then holds the finished ones.
 */
static bool idle_connect_all(const char *conninfo, PGconn **done, long count)
{
	struct idle_slot slots[IDLE_INFLIGHT_MAX];
	struct pollfd pfds[IDLE_INFLIGHT_MAX];
	int inflight = 0;
	long started = 0, finished = 0;

	while (finished < count) {
		while (inflight < IDLE_INFLIGHT_MAX && started < count) {
			if (!idle_start(&slots[inflight], conninfo)) {
				PQfinish(slots[inflight].conn);
				return idle_abandon(slots, inflight);
			}
			inflight++;
			started++;
		}
		for (int i = 0; i < inflight; i++) {
			pfds[i].fd = PQsocket(slots[i].conn);
			pfds[i].events = slots[i].want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfds[i].revents = 0;
		}
		int n = poll(pfds, (nfds_t)inflight, 1000);
		if (idle_stop)
			return idle_abandon(slots, inflight);
		if (n < 0 && errno != EINTR) {
			perror("idle_clients: poll");
			return idle_abandon(slots, inflight);
		}
		time_t now = time(NULL);
		/* Walk backwards so that moving the last slot into a finished one skips nothing. */
		for (int i = inflight - 1; i >= 0; i--) {
			struct idle_slot *s = &slots[i];
			if (pfds[i].revents == 0) {
				if (now - s->started > IDLE_LOGIN_SECONDS) {
					fprintf(stderr, "idle_clients: a login took over %d s\n",
						IDLE_LOGIN_SECONDS);
					return idle_abandon(slots, inflight);
				}
				continue;
			}
			s->want = PQconnectPoll(s->conn);
			if (s->want == PGRES_POLLING_FAILED) {
				fprintf(stderr, "idle_clients: after %ld connected: %s", finished,
					PQerrorMessage(s->conn));
				return idle_abandon(slots, inflight);
			}
			if (s->want != PGRES_POLLING_OK)
				continue;
			done[finished++] = s->conn;
			slots[i] = slots[--inflight];
			pfds[i] = pfds[inflight];
		}
	}
	return true;
}

/* Blocks until standard input reaches end of file or a stop signal arrives. */
static void idle_wait_for_eof(void)
{
	char buf[256];
	while (!idle_stop) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			return;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: idle_clients CONNINFO COUNT\n");
		return 2;
	}
	char *end;
	long count = strtol(argv[2], &end, 10);
	if (*end != '\0' || count < 1 || count > IDLE_COUNT_MAX) {
		fprintf(stderr, "idle_clients: COUNT must be 1..%d\n", IDLE_COUNT_MAX);
		return 2;
	}
	PGconn **conns = calloc((size_t)count, sizeof(*conns));
	if (conns == NULL) {
		fprintf(stderr, "idle_clients: out of memory\n");
		return 1;
	}
	idle_install_signals();
	bool ok = idle_connect_all(argv[1], conns, count);
	if (ok) {
		printf("connected %ld\n", count);
		fflush(stdout);
		idle_wait_for_eof();
	}
	for (long i = 0; i < count; i++)
		PQfinish(conns[i]);
	free(conns);
	return ok ? 0 : 1;
}
