/* test_dial.c: net/dial on a real loop and loopback sockets: the next address after a refusal,
 * the same address again when the owner asks, the bind hook (skip, stop, source address), the
 * last error when every address fails, and the dial's own timeout while a lookup hangs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/dial.h"

struct probe {
	struct loop *loop;
	struct dial d;
	struct io io;
	struct timer guard;          /* ends a test that would otherwise hang */
	int connected, gave_up, fails, async_fails, sources, resolving;
	int err;
	enum dial_end end;
	enum dial_next answer[8];    /* what ops->failed says, failure by failure */
	int source_rc[8];            /* what ops->source says, attempt by attempt */
	const char *source_ip;       /* bind to this address (NULL: no bind) */
	struct ipaddr dest;          /* d->dest when connected */
	bool guard_fired;
};

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;

	assert_null(ipaddr_parse(s, strlen(s), &a));
	return a;
}

static void on_io(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)loop;
	(void)revents;
	dial_io(&container_of(io, struct probe, io)->d);
}

static void on_guard(struct loop *loop, struct timer *t)
{
	container_of(t, struct probe, guard)->guard_fired = true;
	loop_stop(loop);
}

static void op_resolving(void *ctx, struct dial *d)
{
	(void)d;
	((struct probe *)ctx)->resolving++;
}

static bool op_resolved(void *ctx, struct dial *d, const struct dns_result *res)
{
	(void)ctx;
	(void)d;
	return res->status == 0;
}

static int op_source(void *ctx, struct dial *d, struct sockaddr_storage *src, socklen_t *srclen)
{
	struct probe *p = ctx;
	int rc = p->source_rc[p->sources++ & 7];

	(void)d;
	if (!rc && p->source_ip) {
		struct ipaddr a = ip(p->source_ip);
		*srclen = ipaddr_to_sockaddr(&a, 0, src);
	}
	return rc;
}

static enum dial_next op_failed(void *ctx, struct dial *d, int err, bool bind_failed, bool async)
{
	struct probe *p = ctx;

	(void)d;
	(void)err;
	(void)bind_failed;
	p->async_fails += async;
	return p->answer[p->fails++ & 7];
}

static void op_connected(void *ctx, struct dial *d)
{
	struct probe *p = ctx;

	p->connected++;
	p->dest = d->dest;
	loop_stop(p->loop);
}

static void op_gave_up(void *ctx, struct dial *d, int err, enum dial_end end)
{
	struct probe *p = ctx;

	(void)d;
	p->gave_up++;
	p->err = err;
	p->end = end;
	loop_stop(p->loop);
}

static const struct dial_ops ops = { op_resolving, op_resolved, op_source, op_failed, op_connected, op_gave_up };

/* A listener on 127.0.0.1 only: the same port on 127.0.0.2 and 127.0.0.3 refuses. */
static int listener(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void probe_start(struct probe *p, struct dns *dns, unsigned timeout_ms)
{
	assert_int_equal(loop_new(&p->loop), 0);
	io_init(&p->io, -1, on_io);
	timer_init(&p->guard, on_guard);
	dial_init(&p->d, p->loop, dns, &ops, p, &p->io, on_io, timeout_ms);
}

static void probe_run(struct probe *p)
{
	if (p->connected || p->gave_up)
		return;   /* the outcome came from inside the call */
	timer_start(p->loop, &p->guard, 3000);
	loop_run(p->loop);
	timer_stop(p->loop, &p->guard);
	assert_false(p->guard_fired);
}

static void probe_end(struct probe *p)
{
	dial_cancel(&p->d);
	if (p->io.fd >= 0)
		io_close(p->loop, &p->io);
	loop_free(p->loop);
}

static void dial_addrs(struct probe *p, const char *a, const char *b, uint16_t port)
{
	p->d.addrs[0] = ip(a);
	p->d.naddrs = 1;
	if (b) {
		p->d.addrs[1] = ip(b);
		p->d.naddrs = 2;
	}
	p->d.next = 0;
	dial_connect(&p->d, port);
}

static void test_next_address_after_refusal(void **state)
{
	struct probe p = { 0 };
	uint16_t port;
	int lfd = listener(&port);
	struct ipaddr want = ip("127.0.0.1");

	(void)state;
	probe_start(&p, NULL, 2000);
	dial_addrs(&p, "127.0.0.2", "127.0.0.1", port);
	probe_run(&p);
	assert_int_equal(p.connected, 1);
	assert_int_equal(p.gave_up, 0);
	assert_int_equal(p.fails, 1);
	assert_int_equal(p.sources, 2);
	assert_true(ipaddr_equal(&p.dest, &want));
	probe_end(&p);
	close(lfd);
}

static void test_every_address_refused(void **state)
{
	struct probe p = { 0 };
	uint16_t port;
	int lfd = listener(&port);

	(void)state;
	probe_start(&p, NULL, 2000);
	dial_addrs(&p, "127.0.0.2", "127.0.0.3", port);
	probe_run(&p);
	assert_int_equal(p.connected, 0);
	assert_int_equal(p.gave_up, 1);
	assert_int_equal(p.err, -ECONNREFUSED);
	assert_int_equal(p.fails, 2);
	assert_true(p.end == DIAL_END_ASYNC || p.end == DIAL_END_SYNC);
	probe_end(&p);
	close(lfd);
}

static void test_same_address_again(void **state)
{
	struct probe p = { .answer = { DIAL_SAME_ADDR, DIAL_NEXT_ADDR } };
	uint16_t port;
	int lfd = listener(&port);

	(void)state;
	probe_start(&p, NULL, 2000);
	dial_addrs(&p, "127.0.0.2", "127.0.0.1", port);
	probe_run(&p);
	assert_int_equal(p.connected, 1);
	assert_int_equal(p.fails, 2);     /* 127.0.0.2 twice */
	assert_int_equal(p.sources, 3);
	probe_end(&p);
	close(lfd);
}

static void test_source_hook(void **state)
{
	struct probe p = { .source_rc = { -EAFNOSUPPORT, 0 }, .source_ip = "127.0.0.5" };
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct ipaddr got, want = ip("127.0.0.5");
	uint16_t port;
	int lfd = listener(&port);

	(void)state;
	probe_start(&p, NULL, 2000);
	dial_addrs(&p, "127.0.0.3", "127.0.0.1", port);   /* the first is skipped, never tried */
	probe_run(&p);
	assert_int_equal(p.connected, 1);
	assert_int_equal(p.fails, 0);
	int afd = accept(lfd, (struct sockaddr *)&peer, &plen);
	assert_true(afd >= 0);
	ipaddr_from_sockaddr((struct sockaddr *)&peer, &got);
	assert_true(ipaddr_equal(&got, &want));   /* left from the address the hook picked */
	close(afd);
	probe_end(&p);

	/* a skipped address's error is the last one; 1 stops without an outcome */
	struct probe q = { .source_rc = { -EAFNOSUPPORT } };
	probe_start(&q, NULL, 2000);
	dial_addrs(&q, "127.0.0.1", NULL, port);
	assert_int_equal(q.gave_up, 1);
	assert_int_equal(q.err, -EAFNOSUPPORT);
	assert_int_equal(q.end, DIAL_END_SYNC);
	probe_end(&q);

	struct probe r = { .source_rc = { 1 } };
	probe_start(&r, NULL, 2000);
	dial_addrs(&r, "127.0.0.1", NULL, port);
	assert_int_equal(r.gave_up + r.connected, 0);
	assert_int_equal(r.io.fd, -1);
	probe_end(&r);
	close(lfd);
}

/* A DNS server that never answers: the dial's own timer ends the wait, not c-ares'. */
static void test_resolve_timeout(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct probe p = { 0 };
	struct dns *dns;
	char servers[64];

	(void)state;
	assert_int_equal(bind(ufd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(ufd, (struct sockaddr *)&sa, &len), 0);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(loop_new(&p.loop), 0);
	assert_int_equal(dns_new(p.loop, servers, 10000, &dns), 0);
	io_init(&p.io, -1, on_io);
	timer_init(&p.guard, on_guard);
	dial_init(&p.d, p.loop, dns, &ops, &p, &p.io, on_io, 150);
	uint64_t t0 = loop_now(p.loop);
	dial_resolve(&p.d, "nothing.invalid.example", 443);
	probe_run(&p);
	assert_int_equal(p.resolving, 1);
	assert_int_equal(p.gave_up, 1);
	assert_int_equal(p.end, DIAL_END_TIMEOUT);
	assert_int_equal(p.err, -ETIMEDOUT);
	assert_true(loop_now(p.loop) - t0 < 2000);
	dial_cancel(&p.d);
	dns_free(dns);
	loop_free(p.loop);
	close(ufd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_address_after_refusal),
		cmocka_unit_test(test_every_address_refused),
		cmocka_unit_test(test_same_address_again),
		cmocka_unit_test(test_source_hook),
		cmocka_unit_test(test_resolve_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
