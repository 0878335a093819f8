/* test_acceptor.c: net/acceptor: connections are accepted (non-blocking, close-on-exec, with
 * the peer's address), and when the process is out of descriptors (EMFILE) the listener
 * pauses instead of spinning on a socket that stays readable, then resumes once a descriptor
 * is free. The test lowers its own RLIMIT_NOFILE and fills the table; the teardown restores
 * both. accept4() is wrapped here to count the attempts the acceptor makes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "net/acceptor.h"
#include "net/sock.h"

/* Every accept4() of the process (sock_accept's included) is counted on its way to the kernel. */
static volatile unsigned long accept_calls, accept_emfile;

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	long rc = syscall(SYS_accept4, fd, addr, len, flags);

	accept_calls++;
	if (rc == -1 && errno == EMFILE)
		accept_emfile++;
	return (int)rc;
}

static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int listen_local(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lfd = sock_listen((struct sockaddr *)&any, sizeof(any), false, 64);

	assert_true(lfd >= 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)sa, &len), 0);
	return lfd;
}

static int client(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	return fd;
}

static void client_connect(int fd, const struct sockaddr_in *sa)
{
	assert_int_equal(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)), 0);
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

/* --- what the callbacks record --- */

static struct {
	int n;
	uint16_t ports[16];
	bool nonblock, cloexec;
	uint64_t at_ms[16];
	int stop_after;
} got;

static void on_accept(struct acceptor *a, int fd, const struct sockaddr_storage *peer)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

	(void)a;
	got.nonblock = fcntl(fd, F_GETFL) & O_NONBLOCK;
	got.cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	if (got.n < 16) {
		got.ports[got.n] = ntohs(in->sin_port);
		got.at_ms[got.n] = loop_clock_ms();
	}
	got.n++;
	close(fd);
}

static bool watchdog_fired;

static void watchdog_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	watchdog_fired = true;
	loop_stop(loop);
}

/* Stop once the wanted number of connections is in. */
static void until_cb(struct loop *loop, struct timer *t)
{
	if (got.n >= got.stop_after) {
		loop_stop(loop);
		return;
	}
	timer_start(loop, t, 2);
}

static void test_accepts(void **state)
{
	struct loop *loop;
	struct acceptor acc;
	struct sockaddr_in sa;
	struct timer wd, until;
	int c[3];

	(void)state;
	memset(&got, 0, sizeof(got));
	assert_int_equal(loop_new(&loop), 0);
	int lfd = listen_local(&sa);
	assert_int_equal(acceptor_start(loop, &acc, lfd, "test", on_accept), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = client();
		client_connect(c[i], &sa);
	}
	got.stop_after = 3;
	timer_init(&wd, watchdog_cb);
	timer_start(loop, &wd, 2000);
	timer_init(&until, until_cb);
	timer_start(loop, &until, 0);
	watchdog_fired = false;
	assert_int_equal(loop_run(loop), 0);
	assert_false(watchdog_fired);
	assert_int_equal(got.n, 3);
	assert_true(got.nonblock);
	assert_true(got.cloexec);
	/* every client is seen with its own address */
	for (int i = 0; i < 3; i++) {
		bool seen = false;
		for (int j = 0; j < 3; j++)
			seen |= got.ports[j] == local_port(c[i]);
		assert_true(seen);
		close(c[i]);
	}
	timer_stop(loop, &wd);
	timer_stop(loop, &until);
	acceptor_close(loop, &acc);
	assert_int_equal(acc.io.fd, -1);
	acceptor_close(loop, &acc);   /* fine on a closed one */
	loop_free(loop);
}

/* --- EMFILE --- */

#define MAX_FILL 4096
static struct rlimit saved_limit;
static bool limit_lowered;
static int fill[MAX_FILL];
static int nfill;

static int restore_limits(void **state)
{
	(void)state;
	while (nfill > 0)
		close(fill[--nfill]);
	if (limit_lowered) {
		setrlimit(RLIMIT_NOFILE, &saved_limit);
		limit_lowered = false;
	}
	return 0;
}

static struct {
	unsigned long calls_at_start, calls_in_window, emfile_in_window;
	uint64_t cpu_at_start, cpu_in_window;
	uint64_t freed_at_ms;
	int accepted_in_window;
} em;

static void window_end_cb(struct loop *loop, struct timer *t)
{
	(void)loop;
	(void)t;
	em.calls_in_window = accept_calls - em.calls_at_start;
	em.emfile_in_window = accept_emfile;
	em.cpu_in_window = thread_cpu_ms() - em.cpu_at_start;
	em.accepted_in_window = got.n;
	/* free one descriptor: the next attempt after the pause gets it */
	close(fill[--nfill]);
	em.freed_at_ms = loop_clock_ms();
}

static void test_emfile_backoff(void **state)
{
	struct loop *loop;
	struct acceptor acc;
	struct sockaddr_in sa;
	struct timer wd, window, until;
	struct rlimit low;
	int c;
	uint64_t t0;

	(void)state;
	memset(&got, 0, sizeof(got));
	memset(&em, 0, sizeof(em));
	log_verbosity = LOG_ERROR;   /* the pause is logged at warn level; keep the output clean */
	assert_int_equal(loop_new(&loop), 0);
	int lfd = listen_local(&sa);
	assert_int_equal(acceptor_start(loop, &acc, lfd, "test", on_accept), 0);
	c = client();   /* made now: connecting needs no new descriptor later */

	/* a small table, then filled to the last slot */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
	low = saved_limit;
	low.rlim_cur = (rlim_t)(c + 32);
	if (low.rlim_cur > saved_limit.rlim_cur)
		low.rlim_cur = saved_limit.rlim_cur;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	limit_lowered = true;
	for (;;) {
		int fd = dup(0);
		if (fd == -1) {
			assert_int_equal(errno, EMFILE);
			break;
		}
		assert_true(nfill < MAX_FILL);
		fill[nfill++] = fd;
	}
	assert_true(nfill > 0);

	/* a connection waits in the listener's queue that cannot be accepted */
	client_connect(c, &sa);
	accept_calls = accept_emfile = 0;
	em.calls_at_start = 0;
	em.cpu_at_start = thread_cpu_ms();
	timer_init(&window, window_end_cb);
	timer_start(loop, &window, 450);
	got.stop_after = 1;
	timer_init(&until, until_cb);
	timer_start(loop, &until, 0);
	timer_init(&wd, watchdog_cb);
	timer_start(loop, &wd, 3000);
	watchdog_fired = false;
	t0 = loop_clock_ms();
	assert_int_equal(loop_run(loop), 0);
	assert_false(watchdog_fired);

	/* while out of descriptors: a few attempts, one per back-off period, not a busy loop */
	assert_int_equal(em.accepted_in_window, 0);
	assert_true(em.emfile_in_window >= 2);
	assert_true(em.calls_in_window <= 450 / ACCEPTOR_BACKOFF_MS + 2);
	assert_true(em.cpu_in_window < 150);
	/* once a descriptor is free the listener resumes within one back-off period */
	assert_int_equal(got.n, 1);
	assert_int_equal(got.ports[0], local_port(c));
	assert_true(got.at_ms[0] >= em.freed_at_ms);
	assert_true(got.at_ms[0] - em.freed_at_ms <= ACCEPTOR_BACKOFF_MS + 400);   /* slack for a loaded machine */
	assert_true(got.at_ms[0] - t0 < 2000);

	restore_limits(NULL);
	struct rlimit now;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
	assert_int_equal(now.rlim_cur, saved_limit.rlim_cur);
	log_verbosity = LOG_INFO;
	close(c);
	timer_stop(loop, &wd);
	timer_stop(loop, &until);
	timer_stop(loop, &window);
	acceptor_close(loop, &acc);
	loop_free(loop);
}

/* Closing the acceptor during a back-off stops its timer: nothing fires on a closed listener. */
static void test_close_during_backoff(void **state)
{
	struct loop *loop;
	struct acceptor acc;
	struct sockaddr_in sa;
	struct timer end;
	struct rlimit low;
	int c;

	(void)state;
	memset(&got, 0, sizeof(got));
	log_verbosity = LOG_ERROR;
	assert_int_equal(loop_new(&loop), 0);
	int lfd = listen_local(&sa);
	assert_int_equal(acceptor_start(loop, &acc, lfd, "test", on_accept), 0);
	c = client();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
	low = saved_limit;
	low.rlim_cur = (rlim_t)(c + 32);
	if (low.rlim_cur > saved_limit.rlim_cur)
		low.rlim_cur = saved_limit.rlim_cur;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	limit_lowered = true;
	for (int fd; (fd = dup(0)) != -1 && nfill < MAX_FILL;)
		fill[nfill++] = fd;
	client_connect(c, &sa);
	accept_emfile = 0;
	timer_init(&end, watchdog_cb);
	timer_start(loop, &end, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_true(accept_emfile >= 1);
	assert_true(timer_active(&acc.backoff));   /* paused, waiting to resume */
	acceptor_close(loop, &acc);
	assert_false(timer_active(&acc.backoff));
	assert_int_equal(acc.io.fd, -1);
	restore_limits(NULL);
	log_verbosity = LOG_INFO;
	close(c);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test_teardown(test_emfile_backoff, restore_limits),
		cmocka_unit_test_teardown(test_close_during_backoff, restore_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
