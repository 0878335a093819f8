/* test_relay.c: net/relay over TCP loopback pairs, in each mode it offers (copy, splice, and
 * auto: copy until a full read, then splice). Large random payloads arrive intact both ways;
 * a FIN in one direction reaches the other side while the reverse keeps flowing; a slow
 * reader makes the relay hold a capped amount and stop reading, and an idle direction holds
 * neither a buffer nor a pipe; queued bytes go first; a reset ends the relay with an error.
 *
 * The rig: peer_a <-> a [relay] b <-> peer_b, all non-blocking, driven by poll() here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/relay.h"

#define READ_MAX_COPY (64 * 1024)   /* relay.c's RELAY_READ_MAX: what copy mode may hold */

enum mode { MODE_COPY, MODE_SPLICE, MODE_AUTO };
static const enum mode modes[] = { MODE_COPY, MODE_SPLICE, MODE_AUTO };

struct ep {
	int fd;
	const uint8_t *out;
	size_t out_len, out_off;
	bool shut_after;        /* shutdown(SHUT_WR) once everything is written */
	bool shut_done;
	bool reading;
	uint8_t *in;
	size_t in_len, in_cap;
	bool got_eof;
};

struct rig {
	int a, b;               /* the relay's two sockets */
	struct ep pa, pb;       /* the test's peers */
	struct pipe_pool pool;
	struct relay_env env;
	struct relay_dir up, down;   /* up: a -> b, down: b -> a */
	uint64_t up_count, down_count;
	int up_rc, down_rc;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A connected TCP pair over 127.0.0.1 (an ephemeral port). */
static void tcp_pair(int *x, int *y)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*x = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*x >= 0);
	assert_int_equal(connect(*x, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*y = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*y >= 0);
	close(l);
	nonblock(*x);
	nonblock(*y);
}

static void rig_init(struct rig *r, enum mode m)
{
	memset(r, 0, sizeof(*r));
	tcp_pair(&r->pa.fd, &r->a);
	tcp_pair(&r->b, &r->pb.fd);
	r->env.scratch = malloc(RELAY_SCRATCH);
	assert_non_null(r->env.scratch);
	r->env.pipes = &r->pool;
	r->env.splice = m == MODE_SPLICE;
	r->env.splice_auto = m == MODE_AUTO;
	relay_dir_init(&r->up);
	relay_dir_init(&r->down);
}

static void rig_free(struct rig *r)
{
	relay_dir_release(&r->up, &r->pool);
	relay_dir_release(&r->down, &r->pool);
	pipe_pool_drain(&r->pool);
	free(r->env.scratch);
	close(r->a);
	close(r->b);
	close(r->pa.fd);
	close(r->pb.fd);
	free(r->pa.in);
	free(r->pb.in);
}

static uint8_t *random_bytes(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	uint32_t x = seed * 2654435761u + 1;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void ep_expect(struct ep *e, size_t cap)
{
	e->reading = true;
	e->in_cap = cap;
	e->in = malloc(cap ? cap : 1);
	assert_non_null(e->in);
}

/* Move what the peer can without blocking. Returns true if anything happened. */
static bool ep_step(struct ep *e)
{
	bool moved = false;

	while (e->out_off < e->out_len) {
		size_t n = e->out_len - e->out_off;
		ssize_t w = write(e->fd, e->out + e->out_off, n > 65536 ? 65536 : n);
		if (w < 0) {
			assert_true(errno == EAGAIN);
			break;
		}
		e->out_off += (size_t)w;
		moved = true;
	}
	if (e->out_off == e->out_len && e->shut_after && !e->shut_done) {
		assert_int_equal(shutdown(e->fd, SHUT_WR), 0);
		e->shut_done = true;
		moved = true;
	}
	while (e->reading && !e->got_eof) {
		uint8_t tmp[65536];
		ssize_t n = read(e->fd, tmp, sizeof(tmp));
		if (n < 0) {
			assert_true(errno == EAGAIN);
			break;
		}
		if (n == 0) {
			e->got_eof = true;
			moved = true;
			break;
		}
		assert_true(e->in_len + (size_t)n <= e->in_cap);   /* never more than was sent */
		memcpy(e->in + e->in_len, tmp, (size_t)n);
		e->in_len += (size_t)n;
		moved = true;
	}
	return moved;
}

/* One round: the relay pumps both directions (as an owner does on any event), peers move. */
static bool rig_step(struct rig *r, bool pump_up, bool pump_down)
{
	uint64_t before = r->up_count + r->down_count;
	bool moved = false;

	if (pump_up && !r->up_rc)
		r->up_rc = relay_dir_pump(&r->env, &r->up, r->a, r->b, &r->up_count);
	if (pump_down && !r->down_rc)
		r->down_rc = relay_dir_pump(&r->env, &r->down, r->b, r->a, &r->down_count);
	moved |= ep_step(&r->pa);
	moved |= ep_step(&r->pb);
	return moved || r->up_count + r->down_count != before;
}

/* Wait for any fd of the rig to be ready in the directions the relay and peers want. */
static void rig_poll(struct rig *r)
{
	uint32_t aev, bev;
	struct pollfd p[4];

	relay_interest(&r->up, &r->down, &aev, &bev);
	p[0] = (struct pollfd){ .fd = r->a, .events = (short)((aev & EPOLLIN ? POLLIN : 0) | (aev & EPOLLOUT ? POLLOUT : 0)) };
	p[1] = (struct pollfd){ .fd = r->b, .events = (short)((bev & EPOLLIN ? POLLIN : 0) | (bev & EPOLLOUT ? POLLOUT : 0)) };
	p[2] = (struct pollfd){ .fd = r->pa.fd, .events = (short)((r->pa.out_off < r->pa.out_len ? POLLOUT : 0) | (r->pa.reading && !r->pa.got_eof ? POLLIN : 0)) };
	p[3] = (struct pollfd){ .fd = r->pb.fd, .events = (short)((r->pb.out_off < r->pb.out_len ? POLLOUT : 0) | (r->pb.reading && !r->pb.got_eof ? POLLIN : 0)) };
	poll(p, 4, 20);
}

typedef bool (*done_fn)(const struct rig *r);

static void rig_run(struct rig *r, done_fn done, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	while (!done(r)) {
		assert_true(now_ms() < deadline);
		if (!rig_step(r, true, true))
			rig_poll(r);
		assert_int_equal(r->up_rc, 0);
		assert_int_equal(r->down_rc, 0);
	}
}

static bool both_eof(const struct rig *r) { return r->pa.got_eof && r->pb.got_eof; }
static bool pb_eof(const struct rig *r) { return r->pb.got_eof; }
static bool pa_eof(const struct rig *r) { return r->pa.got_eof; }

static void assert_idle(const struct relay_dir *d)
{
	assert_false(relay_dir_pending(d));
	assert_null(d->pend);
	assert_int_equal(d->pipe[0], -1);
	assert_int_equal(d->pipe[1], -1);
}

/* --- bytes intact both ways --- */

static void test_both_ways(void **state)
{
	enum mode m = *(const enum mode *)*state;
	const size_t nup = 4u << 20, ndown = (3u << 20) + 12345;
	uint8_t *up = random_bytes(nup, 1), *down = random_bytes(ndown, 2);
	struct rig r;

	rig_init(&r, m);
	r.pa.out = up;
	r.pa.out_len = nup;
	r.pa.shut_after = true;
	r.pb.out = down;
	r.pb.out_len = ndown;
	r.pb.shut_after = true;
	ep_expect(&r.pa, ndown);
	ep_expect(&r.pb, nup);
	rig_run(&r, both_eof, 4000);
	assert_int_equal(r.pb.in_len, nup);
	assert_memory_equal(r.pb.in, up, nup);
	assert_int_equal(r.pa.in_len, ndown);
	assert_memory_equal(r.pa.in, down, ndown);
	assert_int_equal(r.up_count, nup);
	assert_int_equal(r.down_count, ndown);
	assert_true(r.up.eof && r.up.shut);
	assert_true(r.down.eof && r.down.shut);
	/* finished directions hold nothing; splice pipes went back to the pool */
	assert_idle(&r.up);
	assert_idle(&r.down);
	if (m != MODE_COPY)
		assert_true(r.pool.n >= 1);
	/* auto mode moved the bulk direction to splice after a full read */
	assert_true((r.up.spliced || r.down.spliced) == (m == MODE_AUTO));
	rig_free(&r);
	free(up);
	free(down);
}

/* --- half-close --- */

/* The first peer shuts its sending side after a little data; the other direction then carries
 * a lot, and the first peer still gets all of it, then its own EOF. */
static size_t hc_want;
static bool hc_a_first;
static bool first_has_big(const struct rig *r)
{
	return (hc_a_first ? r->pa.in_len : r->pb.in_len) == hc_want;
}

static void half_close_run(enum mode m, bool a_first)
{
	const size_t nsmall = 100 * 1000, nbig = 2u << 20;
	uint8_t *small = random_bytes(nsmall, 3), *big = random_bytes(nbig, 4);
	struct rig r;
	struct ep *first, *second;
	struct relay_dir *fdir, *sdir;
	uint32_t aev, bev;

	rig_init(&r, m);
	first = a_first ? &r.pa : &r.pb;
	second = a_first ? &r.pb : &r.pa;
	fdir = a_first ? &r.up : &r.down;
	sdir = a_first ? &r.down : &r.up;
	first->out = small;
	first->out_len = nsmall;
	first->shut_after = true;
	ep_expect(second, nsmall);
	ep_expect(first, nbig);
	rig_run(&r, a_first ? pb_eof : pa_eof, 3000);
	/* the FIN went through once the bytes before it were out */
	assert_int_equal(second->in_len, nsmall);
	assert_memory_equal(second->in, small, nsmall);
	assert_true(fdir->eof && fdir->shut);
	assert_false(sdir->eof || sdir->shut);
	assert_false(first->got_eof);
	/* the relay no longer reads the finished side, and still reads the other */
	relay_interest(&r.up, &r.down, &aev, &bev);
	assert_false((a_first ? aev : bev) & EPOLLIN);
	assert_true((a_first ? bev : aev) & EPOLLIN);
	/* the reverse direction keeps flowing after the half-close */
	second->out = big;
	second->out_len = nbig;
	hc_want = nbig;
	hc_a_first = a_first;
	rig_run(&r, first_has_big, 4000);
	assert_memory_equal(first->in, big, nbig);
	assert_false(first->got_eof);
	assert_false(sdir->eof);
	/* and ends with its own FIN */
	second->shut_after = true;
	rig_run(&r, a_first ? pa_eof : pb_eof, 3000);
	assert_true(sdir->eof && sdir->shut);
	assert_int_equal(first->in_len, nbig);
	rig_free(&r);
	free(small);
	free(big);
}

static void test_half_close_a(void **state)
{
	half_close_run(*(const enum mode *)*state, true);
}

static void test_half_close_b(void **state)
{
	half_close_run(*(const enum mode *)*state, false);
}

/* --- a slow reader --- */

static void test_slow_reader(void **state)
{
	enum mode m = *(const enum mode *)*state;
	const size_t total = 16u << 20;
	uint8_t *data = random_bytes(total, 5);
	struct rig r;
	uint32_t aev, bev;
	int still = 0;

	rig_init(&r, m);
	/* small socket buffers, so the sink fills quickly */
	int sz = 64 * 1024;
	setsockopt(r.pb.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(r.b, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	r.pa.out = data;
	r.pa.out_len = total;
	/* peer_b does not read: pump until nothing moves for a while */
	for (uint64_t deadline = now_ms() + 3000; still < 20;) {
		assert_true(now_ms() < deadline);
		uint64_t before = r.up_count;
		size_t sent = r.pa.out_off;
		rig_step(&r, true, true);
		assert_int_equal(r.up_rc, 0);
		still = (r.up_count == before && r.pa.out_off == sent) ? still + 1 : 0;
		if (still)
			usleep(1000);
	}
	assert_true(r.pa.out_off < total);   /* the writer was held back: nothing unbounded */
	/* the relay holds some bytes for the sink, capped, and stops reading the source */
	assert_true(relay_dir_pending(&r.up));
	if (r.up.pipe[0] != -1) {
		assert_true(m != MODE_COPY);
		int cap = fcntl(r.up.pipe[0], F_GETPIPE_SZ);
		assert_true(cap > 0);
		assert_true(r.up.inpipe > 0 && r.up.inpipe <= (uint32_t)cap);
		assert_null(r.up.pend);
	} else {
		assert_true(m != MODE_SPLICE);
		assert_non_null(r.up.pend);
		assert_true(r.up.pend_len - r.up.pend_off > 0);
		assert_true(r.up.pend_len - r.up.pend_off <= READ_MAX_COPY);
	}
	relay_interest(&r.up, &r.down, &aev, &bev);
	assert_false(aev & EPOLLIN);
	assert_true(bev & EPOLLOUT);
	/* the idle direction holds neither a buffer nor a pipe */
	assert_idle(&r.down);
	assert_int_equal(r.down_count, 0);
	/* the reader wakes up: every byte arrives, in order, and the relay lets go of its hold */
	ep_expect(&r.pb, total);
	r.pa.shut_after = true;
	rig_run(&r, pb_eof, 4000);
	assert_int_equal(r.pb.in_len, total);
	assert_memory_equal(r.pb.in, data, total);
	assert_idle(&r.up);
	assert_idle(&r.down);
	rig_free(&r);
	free(data);
}

/* --- queued bytes, reset, release --- */

static void test_queue_first(void **state)
{
	enum mode m = *(const enum mode *)*state;
	static const char head[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	const size_t n = 300 * 1000;
	uint8_t *data = random_bytes(n, 6);
	struct rig r;

	rig_init(&r, m);
	assert_int_equal(relay_dir_queue(&r.down, head, 20), 0);
	assert_int_equal(relay_dir_queue(&r.down, head + 20, sizeof(head) - 1 - 20), 0);
	assert_int_equal(relay_dir_queue(&r.down, "", 0), 0);
	assert_true(relay_dir_pending(&r.down));
	r.pb.out = data;
	r.pb.out_len = n;
	r.pb.shut_after = true;
	ep_expect(&r.pa, sizeof(head) - 1 + n);
	rig_run(&r, pa_eof, 3000);
	assert_int_equal(r.pa.in_len, sizeof(head) - 1 + n);
	assert_memory_equal(r.pa.in, head, sizeof(head) - 1);
	assert_memory_equal(r.pa.in + sizeof(head) - 1, data, n);
	assert_int_equal(r.down_count, sizeof(head) - 1 + n);
	assert_idle(&r.down);
	rig_free(&r);
	free(data);
}

static void test_reset(void **state)
{
	enum mode m = *(const enum mode *)*state;
	struct rig r;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int rc = 0;

	rig_init(&r, m);
	/* peer_b resets; peer_a's bytes then have nowhere to go: the relay ends with an error */
	assert_int_equal(setsockopt(r.pb.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(r.pb.fd);
	r.pb.fd = -1;
	for (int i = 0; i < 200 && !rc; i++) {
		assert_int_equal(write(r.pa.fd, "ping", 4), 4);
		usleep(2000);
		rc = relay_dir_pump(&r.env, &r.up, r.a, r.b, &r.up_count);
		if (!rc)
			rc = relay_dir_pump(&r.env, &r.down, r.b, r.a, &r.down_count);
	}
	assert_true(rc < 0);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	rig_free(&r);
}

/* fin_by_close: the owner closes the sink as soon as the FIN is due, so the relay marks the
 * direction shut without a shutdown() of its own; the peer sees EOF only at that close. */
static void test_fin_by_close(void **state)
{
	enum mode m = *(const enum mode *)*state;
	const size_t n = 200 * 1000;
	uint8_t *data = random_bytes(n, 9);
	struct rig r;
	char c;

	rig_init(&r, m);
	r.up.fin_by_close = true;
	r.pa.out = data;
	r.pa.out_len = n;
	r.pa.shut_after = true;
	ep_expect(&r.pb, n);
	for (uint64_t deadline = now_ms() + 3000; !r.up.shut;) {
		assert_true(now_ms() < deadline);
		if (!rig_step(&r, true, false))
			rig_poll(&r);
		assert_int_equal(r.up_rc, 0);
	}
	/* every byte is out before the FIN is due */
	for (uint64_t deadline = now_ms() + 3000; r.pb.in_len < n;) {
		assert_true(now_ms() < deadline);
		if (!ep_step(&r.pb))
			usleep(1000);
	}
	assert_memory_equal(r.pb.in, data, n);
	assert_false(relay_dir_pending(&r.up));
	/* no FIN yet: the relay left it to the owner's close */
	assert_int_equal(recv(r.pb.fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	close(r.b);
	r.b = -1;
	usleep(10 * 1000);
	assert_int_equal(recv(r.pb.fd, &c, 1, MSG_DONTWAIT), 0);
	rig_free(&r);
	free(data);
}

/* --- a side that is not a plain socket (relay_io, as the proxy's TLS client) --- */

/* The fake: bytes on fd a are XOR-ed with 0x5a both ways (a stand-in for TLS), reads on a
 * return at most 1000 bytes (record-sized) and say the rest is "buffered" above the socket. */
static struct { int a; unsigned reads, writes, shuts, buffered_calls; } fake;

static long fake_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	fake.reads++;
	if (fd == fake.a && len > 1000)
		len = 1000;
	ssize_t n = read(fd, buf, len);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	if (fd == fake.a)
		for (ssize_t i = 0; i < n; i++)
			((uint8_t *)buf)[i] ^= 0x5a;
	return n;
}

static long fake_write(void *ctx, int fd, const void *buf, size_t len)
{
	uint8_t tmp[65536];

	(void)ctx;
	fake.writes++;
	if (fd == fake.a) {
		if (len > sizeof(tmp))
			len = sizeof(tmp);
		for (size_t i = 0; i < len; i++)
			tmp[i] = ((const uint8_t *)buf)[i] ^ 0x5a;
		buf = tmp;
	}
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return n;
}

static void fake_shutdown(void *ctx, int fd)
{
	(void)ctx;
	fake.shuts++;
	shutdown(fd, SHUT_WR);
}

static bool fake_buffered(void *ctx, int fd)
{
	char c;

	(void)ctx;
	fake.buffered_calls++;
	return fd == fake.a && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static void test_custom_io(void **state)
{
	static const struct relay_io io = { fake_read, fake_write, fake_shutdown, fake_buffered, NULL };
	const size_t nup = 700 * 1000, ndown = 900 * 1000;
	uint8_t *up = random_bytes(nup, 7), *down = random_bytes(ndown, 8);
	uint8_t *up_x = malloc(nup);
	struct rig r;

	(void)state;
	assert_non_null(up_x);
	/* auto mode asked for, but a relay_io side keeps it in copy mode */
	rig_init(&r, MODE_AUTO);
	r.env.io = &io;
	memset(&fake, 0, sizeof(fake));
	fake.a = r.a;
	for (size_t i = 0; i < nup; i++)
		up_x[i] = up[i] ^ 0x5a;
	r.pa.out = up_x;          /* what a TLS client would put on the wire */
	r.pa.out_len = nup;
	r.pa.shut_after = true;
	r.pb.out = down;
	r.pb.out_len = ndown;
	r.pb.shut_after = true;
	ep_expect(&r.pa, ndown);
	ep_expect(&r.pb, nup);
	rig_run(&r, both_eof, 4000);
	/* every byte went through the hooks: decoded going up, encoded coming down */
	assert_int_equal(r.pb.in_len, nup);
	assert_memory_equal(r.pb.in, up, nup);
	assert_int_equal(r.pa.in_len, ndown);
	for (size_t i = 0; i < ndown; i++)
		if ((r.pa.in[i] ^ 0x5a) != down[i])
			fail_msg("byte %zu not encoded by the write hook", i);
	assert_true(fake.reads > nup / 1000);
	assert_true(fake.writes > 0);
	assert_true(fake.buffered_calls > 0);
	assert_int_equal(fake.shuts, 2);   /* each FIN through the hook, none by shutdown() */
	assert_false(r.up.spliced || r.down.spliced);
	assert_int_equal(r.pool.n, 0);      /* no pipe was ever taken */
	rig_free(&r);
	free(up);
	free(up_x);
	free(down);
}

static void test_release_pipes(void **state)
{
	struct pipe_pool pool = { .n = 0 };
	struct relay_dir d;
	int p[2];

	(void)state;
	/* a pipe given back is reused; one with bytes inside is closed instead */
	assert_int_equal(pipe_pool_take(&pool, p), 0);
	int r0 = p[0];
	pipe_pool_give(&pool, p);
	assert_int_equal(p[0], -1);
	assert_int_equal(pool.n, 1);
	assert_int_equal(pipe_pool_take(&pool, p), 0);
	assert_int_equal(p[0], r0);
	assert_int_equal(pool.n, 0);
	relay_dir_init(&d);
	d.pipe[0] = p[0];
	d.pipe[1] = p[1];
	assert_int_equal(write(d.pipe[1], "abc", 3), 3);
	d.inpipe = 3;
	relay_dir_release(&d, &pool);
	assert_int_equal(pool.n, 0);
	assert_int_equal(d.pipe[0], -1);
	assert_int_equal(fcntl(r0, F_GETFD), -1);   /* closed */
	assert_int_equal(pipe_pool_take(&pool, p), 0);
	d.pipe[0] = p[0];
	d.pipe[1] = p[1];
	assert_int_equal(relay_dir_queue(&d, "xyz", 3), 0);
	relay_dir_release(&d, &pool);   /* empty pipe: back to the pool; queued bytes freed */
	assert_int_equal(pool.n, 1);
	assert_null(d.pend);
	assert_false(relay_dir_pending(&d));
	pipe_pool_drain(&pool);
	assert_int_equal(pool.n, 0);
}

#define EACH_MODE(fn) \
	{ #fn "(copy)", fn, NULL, NULL, (void *)&modes[MODE_COPY] }, \
	{ #fn "(splice)", fn, NULL, NULL, (void *)&modes[MODE_SPLICE] }, \
	{ #fn "(auto)", fn, NULL, NULL, (void *)&modes[MODE_AUTO] }

int main(void)
{
	signal(SIGPIPE, SIG_IGN);   /* as the proxy does: a write to a reset peer is an error, not a kill */
	const struct CMUnitTest tests[] = {
		EACH_MODE(test_both_ways),
		EACH_MODE(test_half_close_a),
		EACH_MODE(test_half_close_b),
		EACH_MODE(test_slow_reader),
		EACH_MODE(test_queue_first),
		EACH_MODE(test_reset),
		EACH_MODE(test_fin_by_close),
		cmocka_unit_test(test_custom_io),
		cmocka_unit_test(test_release_pipes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
