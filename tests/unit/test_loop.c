/* test_loop.c: core/loop: timers fire in deadline order (many, with equal deadlines, started,
 * stopped and restarted at random and from inside callbacks), deferred frees wait for the end
 * of the batch, io_stop quiets a hung-up fd that interest 0 would report forever, wakeups from
 * another thread, loop_stop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

static struct loop *new_loop(void)
{
	struct loop *loop = NULL;

	assert_int_equal(loop_new(&loop), 0);
	assert_non_null(loop);
	return loop;
}

static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A timer that ends a test which would otherwise hang: it records that it fired and stops. */
static bool watchdog_fired;
static void watchdog_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	watchdog_fired = true;
	loop_stop(loop);
}

/* --- timers --- */

struct rec_timer {
	struct timer t;
	int id;
	bool expect;     /* should fire */
	int fired;
};

static struct {
	int n, want;
	int order[4096];
	uint64_t deadline[4096];
	bool bad_time;    /* fired before its deadline */
	bool bad_active;  /* timer_active() true inside its own callback */
} rec;

static void rec_reset(int want)
{
	memset(&rec, 0, sizeof(rec));
	rec.want = want;
}

static void rec_cb(struct loop *loop, struct timer *t)
{
	struct rec_timer *r = container_of(t, struct rec_timer, t);

	if (loop_now(loop) < t->deadline_ms || loop_clock_ms() < t->deadline_ms)
		rec.bad_time = true;
	if (timer_active(t))
		rec.bad_active = true;
	r->fired++;
	if (rec.n < 4096) {
		rec.order[rec.n] = r->id;
		rec.deadline[rec.n] = t->deadline_ms;
	}
	if (++rec.n == rec.want)
		loop_stop(loop);
}

static void check_order(void)
{
	assert_false(rec.bad_time);
	assert_false(rec.bad_active);
	for (int i = 1; i < rec.n; i++)
		assert_true(rec.deadline[i - 1] <= rec.deadline[i]);
}

static void test_timer_order(void **state)
{
	enum { N = 2000 };
	struct loop *loop = new_loop();
	struct rec_timer *ts = calloc(N, sizeof(*ts));
	struct timer wd;

	(void)state;
	assert_non_null(ts);
	srand(7);
	rec_reset(N);
	for (int i = 0; i < N; i++) {
		ts[i].id = i;
		timer_init(&ts[i].t, rec_cb);
		assert_false(timer_active(&ts[i].t));
		/* 0..29 ms: about 67 timers share each deadline; the first is the latest, so every
		 * later one must climb past it to the top of the heap */
		assert_int_equal(timer_start(loop, &ts[i].t, i ? (uint64_t)(rand() % 30) : 29), 0);
		assert_true(timer_active(&ts[i].t));
	}
	timer_init(&wd, watchdog_cb);
	watchdog_fired = false;
	timer_start(loop, &wd, 3000);
	assert_int_equal(loop_run(loop), 0);
	assert_false(watchdog_fired);
	assert_int_equal(rec.n, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ts[i].fired, 1);
		assert_false(timer_active(&ts[i].t));
	}
	check_order();
	timer_stop(loop, &wd);
	loop_free(loop);
	free(ts);
}

/* Two timers, the later started first: the second must reach the top of the heap. */
static void test_timer_two(void **state)
{
	struct loop *loop = new_loop();
	struct rec_timer ts[2] = { { .id = 0 }, { .id = 1 } };

	(void)state;
	rec_reset(2);
	timer_init(&ts[0].t, rec_cb);
	timer_init(&ts[1].t, rec_cb);
	timer_start(loop, &ts[0].t, 20);
	timer_start(loop, &ts[1].t, 5);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.order[0], 1);
	assert_int_equal(rec.order[1], 0);
	check_order();
	loop_free(loop);
}

/* Equal deadlines only: every one fires exactly once. */
static void test_timer_equal(void **state)
{
	enum { N = 300 };
	struct loop *loop = new_loop();
	static struct rec_timer ts[N];

	(void)state;
	rec_reset(N);
	for (int i = 0; i < N; i++) {
		memset(&ts[i], 0, sizeof(ts[i]));
		ts[i].id = i;
		timer_init(&ts[i].t, rec_cb);
		assert_int_equal(timer_start(loop, &ts[i].t, 3), 0);
	}
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(rec.n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(ts[i].fired, 1);
	check_order();
	loop_free(loop);
}

/* Random starts, restarts of armed timers and stops keep the heap whole: exactly the timers
 * left armed fire, in deadline order. */
static void test_timer_churn(void **state)
{
	enum { N = 1500 };
	struct loop *loop = new_loop();
	struct rec_timer *ts = calloc(N, sizeof(*ts));
	struct timer wd;
	int want = 0;

	(void)state;
	assert_non_null(ts);
	srand(11);
	for (int i = 0; i < N; i++) {
		ts[i].id = i;
		timer_init(&ts[i].t, rec_cb);
	}
	for (int round = 0; round < 6 * N; round++) {
		struct rec_timer *r = &ts[rand() % N];
		switch (rand() % 3) {
		case 0:
		case 1:   /* start, or move an armed one */
			assert_int_equal(timer_start(loop, &r->t, (uint64_t)(rand() % 40)), 0);
			break;
		default:
			timer_stop(loop, &r->t);
			timer_stop(loop, &r->t);   /* twice is harmless */
			break;
		}
	}
	for (int i = 0; i < N; i++) {
		ts[i].expect = timer_active(&ts[i].t);
		want += ts[i].expect;
	}
	assert_true(want > 0 && want < N);
	rec_reset(want);
	timer_init(&wd, watchdog_cb);
	watchdog_fired = false;
	timer_start(loop, &wd, 3000);
	assert_int_equal(loop_run(loop), 0);
	assert_false(watchdog_fired);
	assert_int_equal(rec.n, want);
	for (int i = 0; i < N; i++)
		assert_int_equal(ts[i].fired, ts[i].expect ? 1 : 0);
	check_order();
	timer_stop(loop, &wd);
	loop_free(loop);
	free(ts);
}

/* Stopping and restarting from inside callbacks, including a timer due in the same pass. */
static struct timer cb_a, cb_b, cb_c, cb_p, cb_s, cb_end;
static int fired_a, fired_b, fired_c, fired_p, fired_s;
static uint64_t at_a, at_c;
static bool p_active_inside, p_active_after;

static void a_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	fired_a++;
	at_a = loop_now(loop);
	/* b is due in this same pass (its deadline has passed too): stopping it must hold */
	assert_true(timer_active(&cb_b));
	assert_true(cb_b.deadline_ms <= loop_now(loop));
	timer_stop(loop, &cb_b);
	/* c is due too: restarting it pushes it 30 ms on */
	timer_start(loop, &cb_c, 30);
}
static void b_cb(struct loop *loop, struct timer *t) { (void)loop; (void)t; fired_b++; }
static void c_cb(struct loop *loop, struct timer *t) { (void)t; fired_c++; at_c = loop_now(loop); }
static void p_cb(struct loop *loop, struct timer *t)
{
	p_active_inside |= timer_active(t);
	if (++fired_p < 5) {
		timer_start(loop, t, 2);
		p_active_after = timer_active(t);
	}
}
static void s_cb(struct loop *loop, struct timer *t)
{
	fired_s++;
	timer_start(loop, t, 1);   /* restart, then think better of it */
	timer_stop(loop, t);
}
/* Ends the test once p and c are through (re-checked every 10 ms; about 3 s at most). */
static int end_rounds;
static void end_cb(struct loop *loop, struct timer *t)
{
	if ((fired_p >= 5 && fired_c >= 1) || ++end_rounds > 300) {
		loop_stop(loop);
		return;
	}
	timer_start(loop, t, 10);
}

static void test_timer_in_callback(void **state)
{
	struct loop *loop = new_loop();

	(void)state;
	fired_a = fired_b = fired_c = fired_p = fired_s = 0;
	end_rounds = 0;
	p_active_inside = p_active_after = false;
	timer_init(&cb_a, a_cb);
	timer_init(&cb_b, b_cb);
	timer_init(&cb_c, c_cb);
	timer_init(&cb_p, p_cb);
	timer_init(&cb_s, s_cb);
	timer_init(&cb_end, end_cb);
	timer_start(loop, &cb_a, 5);
	timer_start(loop, &cb_b, 6);
	timer_start(loop, &cb_c, 7);
	timer_start(loop, &cb_p, 1);
	timer_start(loop, &cb_s, 1);
	timer_start(loop, &cb_end, 50);
	/* the loop's clock is cached: after this sleep a, b and c are all due in the first pass,
	 * and a (earliest deadline) runs first */
	usleep(20 * 1000);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(fired_a, 1);
	assert_int_equal(fired_b, 0);
	assert_false(timer_active(&cb_b));
	assert_int_equal(fired_c, 1);
	assert_true(at_c >= at_a + 30);
	assert_int_equal(fired_p, 5);
	assert_false(p_active_inside);
	assert_true(p_active_after);
	assert_false(timer_active(&cb_p));
	assert_int_equal(fired_s, 1);
	assert_false(timer_active(&cb_s));
	loop_free(loop);
}

/* --- deferred frees --- */

struct conn {
	struct io a, b;
	int peer_a, peer_b;
	bool closed;
	bool close_both;       /* the closing event closes both fds, else only its own */
	struct deferred d;
};

static char order[32];
static size_t norder;
static int nfreed;

static void log_order(char c)
{
	if (norder < sizeof(order) - 1)
		order[norder++] = c;
}

static void conn_free(struct deferred *d)
{
	struct conn *c = container_of(d, struct conn, d);

	log_order('F');
	nfreed++;
	io_close(NULL, &c->a);
	io_close(NULL, &c->b);
	close(c->peer_a);
	close(c->peer_b);
	memset(c, 0x5a, sizeof(*c));   /* what a reuse would leave behind */
	free(c);
}

static void conn_a_cb(struct loop *loop, struct io *io, uint32_t revents);
static void conn_b_cb(struct loop *loop, struct io *io, uint32_t revents);

static void conn_event(struct loop *loop, struct conn *c, struct io *io)
{
	if (c->closed) {
		/* the second event of the batch reaches a closed connection: still valid memory */
		log_order('S');
		return;
	}
	log_order('C');
	c->closed = true;
	if (c->close_both) {
		io_close(loop, &c->a);
		io_close(loop, &c->b);
	} else {
		io_close(loop, io);
	}
	loop_defer(loop, &c->d, conn_free);
}

static void conn_a_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)revents;
	conn_event(loop, container_of(io, struct conn, a), io);
}

static void conn_b_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)revents;
	conn_event(loop, container_of(io, struct conn, b), io);
}

static void order_timer_cb(struct loop *loop, struct timer *t)
{
	(void)loop;
	(void)t;
	log_order('T');
}

static void stop_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	loop_stop(loop);
}

static void run_deferred_case(bool close_both, const char *want)
{
	struct loop *loop = new_loop();
	struct conn *c = calloc(1, sizeof(*c));
	int sa[2], sb[2];
	struct timer t0, end;

	assert_non_null(c);
	norder = 0;
	nfreed = 0;
	memset(order, 0, sizeof(order));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sa), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sb), 0);
	c->close_both = close_both;
	c->peer_a = sa[1];
	c->peer_b = sb[1];
	io_init(&c->a, sa[0], conn_a_cb);
	io_init(&c->b, sb[0], conn_b_cb);
	assert_int_equal(io_want(loop, &c->a, EPOLLIN), 0);
	assert_int_equal(io_want(loop, &c->b, EPOLLIN), 0);
	/* both readable before the loop runs: one epoll_wait returns both events */
	assert_int_equal(write(sa[1], "x", 1), 1);
	assert_int_equal(write(sb[1], "y", 1), 1);
	/* a 0 ms timer runs after the first batch's events and before its deferred frees */
	timer_init(&t0, order_timer_cb);
	timer_start(loop, &t0, 0);
	timer_init(&end, stop_cb);
	timer_start(loop, &end, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_string_equal(order, want);
	assert_int_equal(nfreed, 1);
	loop_free(loop);
}

static void test_deferred_both_closed(void **state)
{
	(void)state;
	/* the second event is skipped (its io was closed), the free waits for the batch's end */
	run_deferred_case(true, "CTF");
}

static void test_deferred_second_event(void **state)
{
	(void)state;
	/* the other fd stays open: its event in the same batch still sees the connection */
	run_deferred_case(false, "CSTF");
}

/* Regression (io_reused_in_batch): an io closed by an earlier callback of the batch and at once
 * re-initialised on a new fd (a redial into the same struct) must not receive the event queued
 * for its old fd. Before the fix the loop only skipped ios whose fd was -1, so the stale
 * EPOLLIN reached the new, idle socket (in the proxy: connect_done() on a connect still in
 * progress). */
struct pairio {
	struct io io;
	int peer;
	int calls;       /* events handled on the io's current fd */
	int stale;       /* events for which the current fd had nothing to read */
	int reinit;
	struct pairio *other;
};
static int fresh_pairs[2][2];
static struct pairio *poke_pairs;
static struct timer poke_end;

/* Later, in its own batch: a byte for the redialled io's new fd; the next iteration delivers
 * it (events come before timers), then the loop stops. */
static void poke_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	for (int i = 0; i < 2; i++)
		if (poke_pairs[i].reinit)
			assert_int_equal(write(fresh_pairs[i][1], "y", 1), 1);
	timer_start(loop, &poke_end, 10);
}

static void pair_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct pairio *p = container_of(io, struct pairio, io);
	char c;

	(void)revents;
	p->calls++;
	if (read(io->fd, &c, 1) != 1)
		p->stale++;
	if (!p->other->reinit && !p->reinit) {
		/* the first event of the batch: redial the other one into the same struct io */
		struct pairio *o = p->other;
		io_close(loop, &o->io);
		o->reinit = 1;
		o->calls = 0;
		int idx = o < p ? 0 : 1;
		io_init(&o->io, fresh_pairs[idx][0], pair_cb);
		assert_int_equal(io_want(loop, &o->io, EPOLLIN), 0);
	}
}

static void test_io_reused_in_batch(void **state)
{
	struct loop *loop = new_loop();
	struct pairio p[2];
	int sp[2][2];

	(void)state;
	memset(p, 0, sizeof(p));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp[i]), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fresh_pairs[i]), 0);
		p[i].peer = sp[i][1];
		p[i].other = &p[1 - i];
		io_init(&p[i].io, sp[i][0], pair_cb);
		assert_int_equal(io_want(loop, &p[i].io, EPOLLIN), 0);
		/* both readable before the loop runs: one batch holds both events */
		assert_int_equal(write(sp[i][1], "x", 1), 1);
	}
	struct timer poke;
	poke_pairs = p;
	timer_init(&poke, poke_cb);
	timer_start(loop, &poke, 20);
	timer_init(&poke_end, stop_cb);
	assert_int_equal(loop_run(loop), 0);
	/* exactly one was redialled; its new fd saw only the byte sent to it later */
	assert_int_equal(p[0].reinit + p[1].reinit, 1);
	struct pairio *re = p[0].reinit ? &p[0] : &p[1];
	struct pairio *first = p[0].reinit ? &p[1] : &p[0];
	assert_int_equal(first->calls, 1);
	assert_int_equal(first->stale, 0);
	assert_int_equal(re->calls, 1);
	assert_int_equal(re->stale, 0);
	loop_free(loop);
	for (int i = 0; i < 2; i++) {
		close(sp[i][1]);
		close(p[i].io.fd);
		close(fresh_pairs[i][1]);
		if (!p[i].reinit)
			close(fresh_pairs[i][0]);
	}
}

/* A deferral made by the callback that stops the loop runs before loop_run returns. */
static struct deferred last_d;
static bool last_ran;
static void last_fn(struct deferred *d) { (void)d; last_ran = true; }
static void stop_and_defer_cb(struct loop *loop, struct timer *t)
{
	(void)t;
	loop_defer(loop, &last_d, last_fn);
	loop_stop(loop);
}

static void test_loop_stop(void **state)
{
	struct loop *loop = new_loop();
	struct timer t, far;
	uint64_t t0;

	(void)state;
	last_ran = false;
	timer_init(&t, stop_and_defer_cb);
	timer_init(&far, stop_cb);
	timer_start(loop, &t, 10);
	timer_start(loop, &far, 60 * 1000);
	t0 = loop_clock_ms();
	assert_int_equal(loop_run(loop), 0);
	assert_true(loop_clock_ms() - t0 < 1000);
	assert_true(last_ran);
	assert_true(timer_active(&far));   /* stopping the loop leaves timers alone */
	timer_stop(loop, &far);
	loop_free(loop);

	/* a stop requested before loop_run is not lost: the loop returns without waiting */
	loop = new_loop();
	timer_init(&far, stop_cb);
	timer_start(loop, &far, 60 * 1000);
	loop_stop(loop);
	t0 = loop_clock_ms();
	assert_int_equal(loop_run(loop), 0);
	assert_true(loop_clock_ms() - t0 < 1000);
	timer_stop(loop, &far);
	loop_free(loop);
	loop_free(NULL);
}

/* --- io_stop --- */

static int hup_calls;
static uint32_t hup_revents;
static struct io hup_io;
static int hup_phase;

static void hup_stop_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	hup_calls++;
	hup_revents |= revents;
	io_stop(loop, io);
}

static void hup_zero_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	hup_calls++;
	hup_revents |= revents;
	/* interest 0 keeps the fd in the set: ERR/HUP still come (bounded here) */
	if (hup_calls < 1000)
		io_want(loop, io, 0);
	else
		io_stop(loop, io);
}

static int hup_calls_at_timer;
static void hup_timer_cb(struct loop *loop, struct timer *t)
{
	if (hup_phase == 0) {
		hup_calls_at_timer = hup_calls;
		/* the owner is ready again: io_want adds the fd back and the hang-up is reported */
		assert_int_equal(io_want(loop, &hup_io, EPOLLIN), 0);
		hup_phase = 1;
		timer_start(loop, t, 50);
		return;
	}
	loop_stop(loop);
}

static void test_io_stop_hup(void **state)
{
	struct loop *loop = new_loop();
	struct timer t;
	int sp[2];
	uint64_t cpu0, cpu;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	close(sp[1]);   /* the peer hung up: sp[0] is HUP for good */
	hup_calls = 0;
	hup_revents = 0;
	hup_phase = 0;
	io_init(&hup_io, sp[0], hup_stop_cb);
	assert_int_equal(io_want(loop, &hup_io, EPOLLIN), 0);
	timer_init(&t, hup_timer_cb);
	timer_start(loop, &t, 150);
	cpu0 = thread_cpu_ms();
	assert_int_equal(loop_run(loop), 0);
	cpu = thread_cpu_ms() - cpu0;
	assert_true(hup_revents & EPOLLHUP);
	/* one call before the pause (the loop slept, not spun), one after io_want */
	assert_int_equal(hup_calls_at_timer, 1);
	assert_int_equal(hup_calls, 2);
	assert_true(cpu < 100);
	io_close(loop, &hup_io);
	loop_free(loop);
}

/* Why io_stop exists: with interest 0 the same hung-up fd is reported again and again. */
static void test_interest_zero_still_reports_hup(void **state)
{
	struct loop *loop = new_loop();
	struct timer t;
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	close(sp[1]);
	hup_calls = 0;
	hup_revents = 0;
	io_init(&hup_io, sp[0], hup_zero_cb);
	assert_int_equal(io_want(loop, &hup_io, EPOLLIN), 0);
	timer_init(&t, stop_cb);
	timer_start(loop, &t, 50);
	assert_int_equal(loop_run(loop), 0);
	assert_true(hup_calls > 1);
	io_close(loop, &hup_io);
	loop_free(loop);
}

/* io_want changes interest without re-adding; 0 on a never-added io does not add it. */
static int rw_calls;
static uint32_t rw_last;
static void rw_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)io;
	rw_calls++;
	rw_last = revents;
	loop_stop(loop);
}

static void test_io_want(void **state)
{
	struct loop *loop = new_loop();
	struct io io;
	struct timer t;
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	io_init(&io, sp[0], rw_cb);
	assert_int_equal(io_want(loop, &io, 0), 0);
	assert_false(io.added);
	assert_int_equal(io_want(loop, &io, EPOLLOUT), 0);   /* a socket is writable at once */
	assert_true(io.added);
	assert_int_equal(io_want(loop, &io, EPOLLOUT), 0);   /* same interest: no syscall needed */
	rw_calls = 0;
	timer_init(&t, stop_cb);
	timer_start(loop, &t, 2000);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(rw_calls, 1);
	assert_true(rw_last & EPOLLOUT);
	timer_stop(loop, &t);
	loop_free(loop);

	/* interest EPOLLIN only, nothing to read: the 30 ms timer ends the loop, no io call */
	loop = new_loop();
	io_init(&io, sp[0], rw_cb);
	assert_int_equal(io_want(loop, &io, EPOLLIN), 0);
	rw_calls = 0;
	timer_init(&t, stop_cb);
	timer_start(loop, &t, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(rw_calls, 0);
	io_stop(loop, &io);
	assert_false(io.added);
	io_stop(loop, &io);   /* twice is harmless */
	loop_free(loop);
	close(sp[0]);
	close(sp[1]);
}

/* --- wakeups --- */

static pthread_t loop_thread;
static int wake_calls;
static bool wake_on_loop_thread;

static struct timer wake_end;
static void wake_fn(struct loop *loop, void *arg)
{
	wake_calls++;
	wake_on_loop_thread = pthread_equal(pthread_self(), loop_thread) && arg == (void *)loop;
	/* stop a little later, so a wakeup that is never consumed shows as repeated calls */
	if (!timer_active(&wake_end))
		timer_start(loop, &wake_end, 30);
}

static void *waker(void *arg)
{
	usleep(30 * 1000);
	loop_wakeup(arg);
	return NULL;
}

static void test_wakeup_thread(void **state)
{
	struct loop *loop = new_loop();
	struct timer wd;
	pthread_t th;
	uint64_t t0;

	(void)state;
	loop_wakeup(loop);   /* no wakeup set: a no-op */
	assert_int_equal(loop_set_wakeup(loop, wake_fn, loop), 0);
	timer_init(&wake_end, stop_cb);
	loop_thread = pthread_self();
	wake_calls = 0;
	wake_on_loop_thread = false;
	watchdog_fired = false;
	timer_init(&wd, watchdog_cb);
	timer_start(loop, &wd, 3000);
	/* nothing else to do: without the wakeup the loop would sleep until the watchdog */
	t0 = loop_clock_ms();
	assert_int_equal(pthread_create(&th, NULL, waker, loop), 0);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(watchdog_fired);
	assert_int_equal(wake_calls, 1);
	assert_true(wake_on_loop_thread);
	assert_true(loop_clock_ms() - t0 < 2000);
	timer_stop(loop, &wd);
	loop_free(loop);
}

/* Wakeups sent while the loop is busy coalesce into one call, and none is lost. */
static void test_wakeup_coalesce(void **state)
{
	struct loop *loop = new_loop();
	struct timer end;

	(void)state;
	assert_int_equal(loop_set_wakeup(loop, wake_fn, loop), 0);
	timer_init(&wake_end, stop_cb);
	loop_thread = pthread_self();
	wake_calls = 0;
	for (int i = 0; i < 100; i++)
		loop_wakeup(loop);
	timer_init(&end, stop_cb);
	timer_start(loop, &end, 2000);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(wake_calls, 1);
	timer_stop(loop, &end);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_two),
		cmocka_unit_test(test_timer_equal),
		cmocka_unit_test(test_timer_churn),
		cmocka_unit_test(test_timer_in_callback),
		cmocka_unit_test(test_deferred_both_closed),
		cmocka_unit_test(test_deferred_second_event),
		cmocka_unit_test(test_io_reused_in_batch),
		cmocka_unit_test(test_loop_stop),
		cmocka_unit_test(test_io_stop_hup),
		cmocka_unit_test(test_interest_zero_still_reports_hup),
		cmocka_unit_test(test_io_want),
		cmocka_unit_test(test_wakeup_thread),
		cmocka_unit_test(test_wakeup_coalesce),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
