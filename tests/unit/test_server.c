/* test_server.c: net/server with 2 workers on one ephemeral port: connections are served by
 * the workers, a second server cannot join the port, SIGHUP runs the reload callback on the
 * signal thread and hands every worker a new snapshot and listener set, SIGTERM closes the
 * listeners and waits for the last connection (drain), every snapshot reference is put. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/server.h"

struct snap {
	atomic_int refs;
	int gen;
};

static atomic_int snaps_freed;

struct held {
	struct io io;
	struct tw *w;
	bool used;
};

struct tw {                       /* a test worker */
	unsigned id;
	struct loop *loop;
	struct snap *snap;
	struct held held[8];
	int nheld;
	atomic_int accepted;
	bool drained_called;
};

struct harness {
	struct server *srv;
	struct tw tw[2];
	pthread_t run_thread;
	int run_rc;
	atomic_bool run_done;
	atomic_int reloads;
	atomic_bool reload_on_signal_thread;
	struct server_listen next[2];  /* what the next reload listens on */
	size_t nnext;
	struct snap *next_snap;
	atomic_int reload_rc;
	unsigned drain_ms;
};

static void snap_get(void *p)
{
	atomic_fetch_add(&((struct snap *)p)->refs, 1);
}

static void snap_put(void *p)
{
	struct snap *s = p;

	if (atomic_fetch_sub(&s->refs, 1) == 1) {
		free(s);
		atomic_fetch_add(&snaps_freed, 1);
	}
}

static struct snap *snap_new(int gen)
{
	struct snap *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	atomic_init(&s->refs, 1);
	s->gen = gen;
	return s;
}

static int t_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct harness *h = arg;

	h->tw[id].id = id;
	h->tw[id].loop = loop;
	*wstate = &h->tw[id];
	return 0;
}

static void held_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct held *hd = container_of(io, struct held, io);
	char c;

	(void)revents;
	if (read(io->fd, &c, 1) <= 0) {
		io_close(loop, io);
		hd->used = false;
		hd->w->nheld--;
	}
}

/* Answers "w<id> g<gen> <tag>\n"; a client that sends nothing first is held open. */
static void t_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *peer)
{
	struct tw *w = wstate;
	char line[64];
	int n = snprintf(line, sizeof(line), "w%u g%d %s\n", w->id, w->snap ? w->snap->gen : -1, (const char *)tag);

	(void)peer;
	atomic_fetch_add(&w->accepted, 1);
	struct held *hd = NULL;
	for (int i = 0; i < 8 && !hd; i++)
		if (!w->held[i].used)
			hd = &w->held[i];
	if (write(fd, line, (size_t)n) != n || !hd) {
		close(fd);
		return;
	}
	w->nheld++;
	hd->used = true;
	hd->w = w;
	io_init(&hd->io, fd, held_cb);
	io_want(w->loop, &hd->io, EPOLLIN);
}

static void t_snapshot(void *wstate, void *snap)
{
	struct tw *w = wstate;

	if (w->snap)
		snap_put(w->snap);
	w->snap = snap;
}

static void t_drain(void *wstate)
{
	((struct tw *)wstate)->drained_called = true;
}

static bool t_busy(void *wstate)
{
	return ((struct tw *)wstate)->nheld > 0;
}

static void t_teardown(void *wstate)
{
	struct tw *w = wstate;

	for (int i = 0; i < 8; i++)
		if (w->held[i].used)
			io_close(w->loop, &w->held[i].io);
	if (w->snap)
		snap_put(w->snap);
	w->snap = NULL;
}

static void t_reload(void *arg)
{
	struct harness *h = arg;
	struct server_plan *p;
	size_t bad;

	atomic_store(&h->reload_on_signal_thread, pthread_equal(pthread_self(), h->run_thread));
	int rc = server_plan_new(h->srv, h->next, h->nnext, &p, &bad);
	if (rc == 0) {
		server_plan_commit(h->srv, p, h->next_snap);
		snap_put(h->next_snap);   /* the workers hold theirs */
		h->next_snap = NULL;
	}
	atomic_store(&h->reload_rc, rc);
	atomic_fetch_add(&h->reloads, 1);
}

static unsigned t_stop(void *arg, int sig)
{
	(void)sig;
	return ((struct harness *)arg)->drain_ms;
}

static const struct server_ops t_ops = {
	.worker_init = t_worker_init, .accept = t_accept, .snapshot = t_snapshot, .snap_get = snap_get,
	.snap_put = snap_put, .drain = t_drain, .busy = t_busy, .teardown = t_teardown,
	.reload = t_reload, .stop = t_stop,
};

static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static struct server_listen listen_on(uint16_t port, const char *tag)
{
	struct server_listen l = { .len = sizeof(struct sockaddr_in), .backlog = 64, .what = "test listener",
				   .tag = (void *)tag };
	struct sockaddr_in *sa = (struct sockaddr_in *)&l.addr;

	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return l;
}

/* Connects and reads the greeting line; -errno when the connect fails. The socket stays open
 * in *keep when keep is given. */
static int greet(uint16_t port, char *line, size_t cap, int *keep)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t n = 0;

	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n + 1 < cap) {
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	if (keep)
		*keep = fd;
	else
		close(fd);
	return 0;
}

static void *run_main(void *arg)
{
	struct harness *h = arg;

	h->run_rc = server_run(h->srv);
	atomic_store(&h->run_done, true);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool wait_for(atomic_bool *b, long ms)
{
	for (long i = 0; i < ms / 10 && !atomic_load(b); i++)
		sleep_ms(10);
	return atomic_load(b);
}

static void test_server_life(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct server_config cfg = { .ops = &t_ops, .nworkers = 2, .reuseport = true };
	uint16_t port = free_port(), port2 = free_port();
	struct server_listen l1 = listen_on(port, "a");
	char line[64];
	size_t bad;

	(void)state;
	assert_non_null(h);
	cfg.arg = h;
	atomic_store(&snaps_freed, 0);
	assert_int_equal(server_new(&cfg, &h->srv), 0);
	struct snap *s1 = snap_new(1);
	assert_int_equal(server_start(h->srv, &l1, 1, s1, &bad), 0);
	snap_put(s1);   /* each worker holds one */
	assert_int_equal(atomic_load(&s1->refs), 2);

	/* a second server (another process would be the same) cannot join the port */
	struct server *other;
	struct server_config ocfg = cfg;
	struct harness oh = { 0 };
	ocfg.arg = &oh;
	assert_int_equal(server_new(&ocfg, &other), 0);
	assert_int_equal(server_start(other, &l1, 1, NULL, &bad), -EADDRINUSE);
	assert_int_equal(bad, 0);
	server_free(other);

	assert_int_equal(pthread_create(&h->run_thread, NULL, run_main, h), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(greet(port, line, sizeof(line), NULL), 0);
		assert_true(!strcmp(line, "w0 g1 a") || !strcmp(line, "w1 g1 a"));
	}
	assert_int_equal(atomic_load(&h->tw[0].accepted) + atomic_load(&h->tw[1].accepted), 16);

	/* reload: a new snapshot, the first address relabelled, a second address opened */
	h->next[0] = listen_on(port, "b");
	h->next[1] = listen_on(port2, "c");
	h->nnext = 2;
	h->next_snap = snap_new(2);
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	for (int i = 0; i < 500 && atomic_load(&h->reloads) < 1; i++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&h->reloads), 1);
	assert_int_equal(atomic_load(&h->reload_rc), 0);
	assert_true(atomic_load(&h->reload_on_signal_thread));
	assert_int_equal(atomic_load(&snaps_freed), 1);   /* every worker put generation 1 */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(greet(port, line, sizeof(line), NULL), 0);
		assert_true(!strcmp(line, "w0 g2 b") || !strcmp(line, "w1 g2 b"));
		assert_int_equal(greet(port2, line, sizeof(line), NULL), 0);
		assert_true(!strcmp(line, "w0 g2 c") || !strcmp(line, "w1 g2 c"));
	}

	/* reload dropping the first address: it stops accepting */
	h->next[0] = listen_on(port2, "d");
	h->nnext = 1;
	h->next_snap = snap_new(3);
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	for (int i = 0; i < 500 && atomic_load(&h->reloads) < 2; i++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&h->reload_rc), 0);
	assert_int_equal(greet(port, line, sizeof(line), NULL), -ECONNREFUSED);
	assert_int_equal(greet(port2, line, sizeof(line), NULL), 0);
	assert_true(!strcmp(line, "w0 g3 d") || !strcmp(line, "w1 g3 d"));

	/* drain: a held connection keeps the server running after SIGTERM, the listener is closed */
	int held;
	h->drain_ms = 10000;
	assert_int_equal(greet(port2, line, sizeof(line), &held), 0);
	sleep_ms(50);   /* the worker registered it */
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	sleep_ms(300);
	assert_false(atomic_load(&h->run_done));
	assert_int_equal(greet(port2, line, sizeof(line), NULL), -ECONNREFUSED);
	assert_true(h->tw[0].drained_called || h->tw[1].drained_called);
	close(held);
	assert_true(wait_for(&h->run_done, 3000));
	pthread_join(h->run_thread, NULL);
	assert_int_equal(h->run_rc, 0);
	assert_true(h->tw[0].drained_called && h->tw[1].drained_called);
	server_free(h->srv);
	assert_int_equal(atomic_load(&snaps_freed), 3);   /* every reference was put */
	free(h);
}

/* drain deadline: a connection that never closes does not hold the stop past it */
static void test_server_drain_deadline(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct server_config cfg = { .ops = &t_ops, .nworkers = 2, .reuseport = true };
	uint16_t port = free_port();
	struct server_listen l1 = listen_on(port, "a");
	char line[64];
	size_t bad;
	int held;

	(void)state;
	assert_non_null(h);
	cfg.arg = h;
	h->drain_ms = 1000;
	assert_int_equal(server_new(&cfg, &h->srv), 0);
	assert_int_equal(server_start(h->srv, &l1, 1, NULL, &bad), 0);
	assert_int_equal(pthread_create(&h->run_thread, NULL, run_main, h), 0);
	assert_int_equal(greet(port, line, sizeof(line), &held), 0);
	sleep_ms(50);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	sleep_ms(100);
	assert_false(atomic_load(&h->run_done));
	assert_true(wait_for(&h->run_done, 3000));   /* the deadline, with the client still open */
	pthread_join(h->run_thread, NULL);
	char c;
	assert_int_equal(read(held, &c, 1), 0);      /* closed by the teardown */
	close(held);
	server_free(h->srv);
	free(h);
}

/* embedded (the proxy's admin listener): no reuseport, so a second bind fails; it serves from
 * server_spawn, takes a plan that moves its listener, leaves the signal mask alone, and
 * server_stop closes a held connection at once (drain 0). */
static void test_server_embedded(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct server_config cfg = { .ops = &t_ops, .nworkers = 1, .embedded = true };
	uint16_t port = free_port(), port2 = free_port();
	struct server_listen l1 = listen_on(port, "a"), l2 = listen_on(port2, "b");
	struct server_plan *p;
	sigset_t before, after;
	char line[64], c;
	size_t bad;
	int held;

	(void)state;
	assert_non_null(h);
	cfg.arg = h;
	atomic_store(&snaps_freed, 0);
	pthread_sigmask(SIG_SETMASK, NULL, &before);
	assert_int_equal(server_new(&cfg, &h->srv), 0);
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	assert_int_equal(sigismember(&after, SIGHUP), sigismember(&before, SIGHUP));
	assert_int_equal(server_start(h->srv, &l1, 1, NULL, &bad), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_not_equal(bind(fd, (struct sockaddr *)&l1.addr, l1.len), 0);   /* no SO_REUSEPORT */
	close(fd);
	assert_int_equal(server_spawn(h->srv), 0);
	assert_int_equal(greet(port, line, sizeof(line), NULL), 0);
	assert_string_equal(line, "w0 g-1 a");
	struct snap *s2 = snap_new(2);
	assert_int_equal(server_plan_new(h->srv, &l2, 1, &p, &bad), 0);
	server_plan_commit(h->srv, p, s2);
	snap_put(s2);
	assert_int_equal(greet(port, line, sizeof(line), NULL), -ECONNREFUSED);
	assert_int_equal(greet(port2, line, sizeof(line), &held), 0);
	assert_string_equal(line, "w0 g2 b");
	sleep_ms(50);
	server_stop(h->srv, 0);
	assert_int_equal(read(held, &c, 1), 0);
	close(held);
	assert_true(h->tw[0].drained_called);
	server_free(h->srv);
	assert_int_equal(atomic_load(&snaps_freed), 1);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_embedded),
		cmocka_unit_test(test_server_life),
		cmocka_unit_test(test_server_drain_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
