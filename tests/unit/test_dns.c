/* test_dns.c: net/dns against a DNS server of the test's own (a thread answering UDP queries
 * on 127.0.0.1:<ephemeral>, as tests/e2e/test_dns.py does for the proxy): answers are cached
 * for their TTL (the smallest of the records, at most an hour, not at all for 0), "no such
 * name" and "no address" for DNS_NEGATIVE_TTL_S, a server failure or a timeout not at all;
 * a cancelled lookup never calls back; an /etc/hosts answer is not delivered from inside
 * dns_resolve().
 *
 * The event loop runs on its own thread; the test body hands it one call at a time (through
 * loop_wakeup) and waits for the result, so every dns_* call happens on the loop's thread.
 * Expiry is tested without waiting: clock_gettime(CLOCK_MONOTONIC) is wrapped here and moved
 * forward, between lookups only, so c-ares never sees time jump under a query in flight. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/dns.h"

#define NEG_TTL_MS 5000   /* dns.c's DNS_NEGATIVE_TTL_S */
#define MAX_TTL_MS 3600000ULL

/* --- a movable monotonic clock --- */

static int64_t clock_skew_ms;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	long rc = syscall(SYS_clock_gettime, id, ts);

	if (rc == 0 && id == CLOCK_MONOTONIC) {
		int64_t skew = __atomic_load_n(&clock_skew_ms, __ATOMIC_ACQUIRE);
		ts->tv_sec += skew / 1000;
		ts->tv_nsec += (skew % 1000) * 1000000;
		if (ts->tv_nsec >= 1000000000) {
			ts->tv_sec++;
			ts->tv_nsec -= 1000000000;
		}
	}
	return (int)rc;
}

static void clock_forward(int64_t ms)
{
	__atomic_add_fetch(&clock_skew_ms, ms, __ATOMIC_RELEASE);
}

/* --- the DNS server --- */

struct rr { const char *ip; uint32_t ttl; };
struct zone {
	const char *name;
	int rcode;            /* 0, 2 (SERVFAIL), or -1: never answer */
	struct rr a[3];
};

static const struct zone zones[] = {
	{ "ttl1.test", 0, { { "127.0.0.9", 1 } } },
	{ "ttl0.test", 0, { { "127.0.0.10", 0 } } },
	{ "day.test", 0, { { "127.0.0.11", 86400 } } },
	{ "multi.test", 0, { { "127.0.0.1", 30 }, { "127.0.0.2", 10 }, { "127.0.0.3", 20 } } },
	{ "nodata.test", 0, { { NULL, 0 } } },
	{ "fail.test", 2, { { NULL, 0 } } },
	{ "drop.test", -1, { { NULL, 0 } } },
};

static struct {
	int fd;
	uint16_t port;
	pthread_t th;
	bool stop;
	unsigned a_queries[16];     /* per zone, A queries seen; index 15: unknown names */
	unsigned all_queries;
} srv;

static int zone_find(const char *name)
{
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (!strcasecmp(zones[i].name, name))
			return (int)i;
	return -1;
}

static unsigned a_queries(const char *name)
{
	int z = zone_find(name);

	return __atomic_load_n(&srv.a_queries[z < 0 ? 15 : z], __ATOMIC_ACQUIRE);
}

static size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap)
{
	char name[256];
	size_t i = 12, nlen = 0;

	if (qlen < 17)
		return 0;
	while (i < qlen && q[i]) {
		size_t l = q[i];
		if (i + 1 + l >= qlen || nlen + l + 1 >= sizeof(name))
			return 0;
		if (nlen)
			name[nlen++] = '.';
		memcpy(name + nlen, q + i + 1, l);
		nlen += l;
		i += 1 + l;
	}
	name[nlen] = 0;
	if (i + 5 > qlen)
		return 0;
	uint16_t qtype = (uint16_t)(q[i + 1] << 8 | q[i + 2]);
	size_t qend = i + 5;
	int z = zone_find(name);
	__atomic_add_fetch(&srv.all_queries, 1, __ATOMIC_RELEASE);
	if (qtype == 1)
		__atomic_add_fetch(&srv.a_queries[z < 0 ? 15 : z], 1, __ATOMIC_RELEASE);
	if (z >= 0 && zones[z].rcode < 0)
		return 0;   /* a server that never answers */
	if (qend + 16 * 3 > cap)
		return 0;
	memcpy(out, q, qend);
	int rcode = z < 0 ? 3 : zones[z].rcode;
	out[2] = 0x81;                       /* QR, RD */
	out[3] = (uint8_t)(0x80 | rcode);    /* RA, rcode */
	out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
	size_t n = qend;
	unsigned an = 0;
	if (z >= 0 && rcode == 0 && qtype == 1) {
		for (int k = 0; k < 3 && zones[z].a[k].ip; k++) {
			uint32_t ttl = zones[z].a[k].ttl;
			uint8_t rr[16] = { 0xc0, 0x0c, 0, 1, 0, 1, (uint8_t)(ttl >> 24), (uint8_t)(ttl >> 16),
					   (uint8_t)(ttl >> 8), (uint8_t)ttl, 0, 4 };
			inet_pton(AF_INET, zones[z].a[k].ip, rr + 12);
			memcpy(out + n, rr, 16);
			n += 16;
			an++;
		}
	}
	out[7] = (uint8_t)an;
	return n;
}

static void *srv_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&srv.stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { .fd = srv.fd, .events = POLLIN };
		uint8_t q[512], a[512];
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);

		if (poll(&p, 1, 20) != 1)
			continue;
		ssize_t n = recvfrom(srv.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
		if (n <= 0)
			continue;
		size_t alen = dns_answer(q, (size_t)n, a, sizeof(a));
		if (alen)
			sendto(srv.fd, a, alen, 0, (struct sockaddr *)&from, flen);
	}
	return NULL;
}

static void srv_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(&srv, 0, sizeof(srv));
	srv.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(srv.fd >= 0);
	assert_int_equal(bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&sa, &len), 0);
	srv.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&srv.th, NULL, srv_main, NULL), 0);
}

static void srv_stop(void)
{
	__atomic_store_n(&srv.stop, true, __ATOMIC_RELEASE);
	pthread_join(srv.th, NULL);
	close(srv.fd);
}

/* --- the loop thread and calls into it --- */

enum op { OP_RESOLVE, OP_RESOLVE_CANCEL, OP_RESOLVE_HOSTS, OP_CACHED, OP_STATS, OP_STOP };

struct call {
	enum op op;
	const char *name;
	struct dns_result res;
	bool hit;
	bool called_back;
	bool called_inside;    /* the callback ran from inside dns_resolve() */
	struct dns_stats st;
	int rc;
};

static struct {
	struct loop *loop;
	struct dns *dns;
	pthread_t th;
	sem_t done;
	struct call *pending;
	bool in_resolve;
} rt;

static void resolved(void *arg, const struct dns_result *res)
{
	struct call *c = arg;

	c->res = *res;
	c->called_back = true;
	c->called_inside = rt.in_resolve;
	if (c->op != OP_RESOLVE_CANCEL)
		sem_post(&rt.done);
}

static void cancel_grace(struct loop *loop, struct timer *t);
static struct timer grace;
static struct call *grace_call;
static int grace_rounds;

static void on_wake(struct loop *loop, void *arg)
{
	struct call *c = __atomic_exchange_n(&rt.pending, NULL, __ATOMIC_ACQ_REL);
	struct dns_req *req;

	(void)arg;
	if (!c)
		return;
	switch (c->op) {
	case OP_RESOLVE:
	case OP_RESOLVE_HOSTS:
		rt.in_resolve = true;
		c->rc = dns_resolve(rt.dns, c->name, resolved, c, &req);
		rt.in_resolve = false;
		if (c->rc)
			sem_post(&rt.done);
		return;
	case OP_RESOLVE_CANCEL:
		c->rc = dns_resolve(rt.dns, c->name, resolved, c, &req);
		dns_cancel(req);
		/* until the answer has arrived and been dropped */
		grace_call = c;
		grace_rounds = 0;
		timer_start(loop, &grace, 20);
		return;
	case OP_CACHED:
		c->hit = dns_cached(rt.dns, c->name, &c->res);
		break;
	case OP_STATS:
		dns_get_stats(rt.dns, &c->st);
		break;
	case OP_STOP:
		loop_stop(loop);
		break;
	}
	sem_post(&rt.done);
}

/* Done once the answer is in (the cache has it), or after about 3 s. */
static void cancel_grace(struct loop *loop, struct timer *t)
{
	struct dns_result r;

	if (!dns_cached(rt.dns, grace_call->name, &r) && ++grace_rounds < 150) {
		timer_start(loop, t, 20);
		return;
	}
	/* a little longer: a callback that was not cancelled would run now */
	if (grace_rounds < 1000) {
		grace_rounds = 1000;
		timer_start(loop, t, 50);
		return;
	}
	sem_post(&rt.done);
}

static void *loop_main(void *arg)
{
	(void)arg;
	loop_run(rt.loop);
	return NULL;
}

static void call(struct call *c)
{
	struct timespec ts;

	__atomic_store_n(&rt.pending, c, __ATOMIC_RELEASE);
	loop_wakeup(rt.loop);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	assert_int_equal(sem_timedwait(&rt.done, &ts), 0);
}

static struct dns_result resolve(const char *name)
{
	struct call c = { .op = OP_RESOLVE, .name = name };

	call(&c);
	assert_int_equal(c.rc, 0);
	assert_true(c.called_back);
	assert_false(c.called_inside);
	return c.res;
}

static bool cached(const char *name, struct dns_result *out)
{
	struct call c = { .op = OP_CACHED, .name = name };

	call(&c);
	if (out)
		*out = c.res;
	return c.hit;
}

static struct dns_stats stats(void)
{
	struct call c = { .op = OP_STATS };

	call(&c);
	return c.st;
}

/* Move the clock on, then let the loop see it (its clock is read after each wakeup). */
static void advance(int64_t ms)
{
	clock_forward(ms);
	stats();
}

static unsigned setup_timeout_ms;

static int setup(void **state)
{
	char servers[64];

	(void)state;
	srv_start();
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv.port);
	memset(&rt, 0, sizeof(rt));
	assert_int_equal(sem_init(&rt.done, 0, 0), 0);
	assert_int_equal(loop_new(&rt.loop), 0);
	assert_int_equal(loop_set_wakeup(rt.loop, on_wake, NULL), 0);
	timer_init(&grace, cancel_grace);
	/* generous: a loaded machine must not turn an answer into a retry or a timeout */
	assert_int_equal(dns_new(rt.loop, servers, setup_timeout_ms ? setup_timeout_ms : 1500, &rt.dns), 0);
	setup_timeout_ms = 0;
	assert_int_equal(pthread_create(&rt.th, NULL, loop_main, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	struct call c = { .op = OP_STOP };

	(void)state;
	call(&c);
	pthread_join(rt.th, NULL);
	timer_stop(rt.loop, &grace);
	dns_free(rt.dns);
	loop_run_deferred(rt.loop);
	loop_free(rt.loop);
	sem_destroy(&rt.done);
	srv_stop();
	return 0;
}

static void assert_ip4(const struct ipaddr *ip, const char *want)
{
	struct in_addr in;

	assert_int_equal(ip->family, AF_INET);
	assert_int_equal(inet_pton(AF_INET, want, &in), 1);
	assert_memory_equal(ip->a, &in, 4);   /* IPv4 in the first 4 bytes */
}

/* --- tests --- */

static void test_ttl_honoured(void **state)
{
	struct dns_result r;

	(void)state;
	assert_false(cached("ttl1.test", &r));
	r = resolve("ttl1.test");
	assert_int_equal(r.status, 0);
	assert_int_equal(r.naddrs, 1);
	assert_ip4(&r.addrs[0], "127.0.0.9");
	assert_int_equal(r.ttl_s, 1);
	unsigned asked = a_queries("ttl1.test");
	assert_true(asked >= 1);
	/* within the TTL: from the cache, the server is not asked */
	assert_true(cached("ttl1.test", &r));
	assert_int_equal(r.status, 0);
	assert_ip4(&r.addrs[0], "127.0.0.9");
	assert_int_equal(stats().cache_hits, 1);
	advance(900);
	assert_true(cached("ttl1.test", NULL));
	assert_int_equal(a_queries("ttl1.test"), asked);
	/* past the TTL: gone, and the next lookup asks the server again */
	advance(150);
	assert_false(cached("ttl1.test", NULL));
	r = resolve("ttl1.test");
	assert_int_equal(r.status, 0);
	assert_true(a_queries("ttl1.test") > asked);
	assert_true(cached("ttl1.test", NULL));
	struct dns_stats st = stats();
	assert_int_equal(st.queries, 2);
	assert_int_equal(st.failures, 0);
	/* names are distinct keys */
	assert_false(cached("ttl1.tes", NULL));
	assert_false(cached("multi.test", NULL));
}

static void test_ttl_smallest_record(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("multi.test");
	assert_int_equal(r.status, 0);
	assert_int_equal(r.naddrs, 3);
	assert_int_equal(r.ttl_s, 10);
	advance(9500);
	assert_true(cached("multi.test", &r));
	assert_int_equal(r.naddrs, 3);
	advance(600);
	assert_false(cached("multi.test", NULL));
}

static void test_ttl_capped(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("day.test");
	assert_int_equal(r.status, 0);
	assert_int_equal(r.ttl_s, 86400);
	/* kept for at most an hour, whatever the record says */
	advance((int64_t)MAX_TTL_MS - 1000);
	assert_true(cached("day.test", NULL));
	advance(2000);
	assert_false(cached("day.test", NULL));
}

static void test_ttl_zero_not_cached(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("ttl0.test");
	assert_int_equal(r.status, 0);
	assert_ip4(&r.addrs[0], "127.0.0.10");
	assert_int_equal(r.ttl_s, 0);
	assert_false(cached("ttl0.test", NULL));
	unsigned asked = a_queries("ttl0.test");
	resolve("ttl0.test");
	assert_true(a_queries("ttl0.test") > asked);
}

static void test_negative(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("nx.test");
	assert_int_equal(r.status, -ENOENT);
	assert_int_equal(r.naddrs, 0);
	assert_int_equal(stats().failures, 1);
	unsigned asked = a_queries("nx.test");
	assert_true(asked >= 1);
	/* "no such name" is remembered for the negative TTL */
	assert_true(cached("nx.test", &r));
	assert_int_equal(r.status, -ENOENT);
	advance(NEG_TTL_MS - 200);
	assert_true(cached("nx.test", &r));
	assert_int_equal(r.status, -ENOENT);
	advance(400);
	assert_false(cached("nx.test", NULL));
	r = resolve("nx.test");
	assert_int_equal(r.status, -ENOENT);
	assert_true(a_queries("nx.test") > asked);

	/* a name with no address record is negative too */
	r = resolve("nodata.test");
	assert_int_equal(r.status, -ENOENT);
	assert_true(cached("nodata.test", &r));
	assert_int_equal(r.status, -ENOENT);
	advance(NEG_TTL_MS + 100);
	assert_false(cached("nodata.test", NULL));
}

/* A server failure is not an answer: nothing is cached. */
static void test_servfail_not_cached(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("fail.test");
	assert_int_equal(r.status, -EIO);
	assert_false(cached("fail.test", NULL));
	assert_int_equal(stats().failures, 1);
}

/* Nor is a timeout (a channel with a short timeout, against a name the server ignores). */
static int setup_short(void **state)
{
	setup_timeout_ms = 100;
	return setup(state);
}

static void test_timeout_not_cached(void **state)
{
	struct dns_result r;

	(void)state;
	r = resolve("drop.test");
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(a_queries("drop.test") >= 1);
	assert_false(cached("drop.test", NULL));
	assert_int_equal(stats().failures, 1);
}

/* A cancelled lookup never calls back; its answer still fills the cache. */
static void test_cancel(void **state)
{
	struct call c = { .op = OP_RESOLVE_CANCEL, .name = "multi.test" };

	(void)state;
	call(&c);
	assert_int_equal(c.rc, 0);
	assert_false(c.called_back);
	assert_true(a_queries("multi.test") >= 1);
	assert_true(cached("multi.test", NULL));
}

/* c-ares answers /etc/hosts names inside ares_getaddrinfo(): the callback still comes later. */
static void test_hosts_answer_later(void **state)
{
	struct call c = { .op = OP_RESOLVE_HOSTS, .name = "localhost" };
	FILE *f = fopen("/etc/hosts", "r");
	char line[512];
	bool listed = false;

	(void)state;
	while (f && fgets(line, sizeof(line), f))
		listed |= !strncmp(line, "127.0.0.1", 9) && strstr(line, "localhost");
	if (f)
		fclose(f);
	if (!listed)
		skip();
	unsigned before = __atomic_load_n(&srv.all_queries, __ATOMIC_ACQUIRE);
	call(&c);
	assert_int_equal(c.rc, 0);
	assert_true(c.called_back);
	assert_false(c.called_inside);
	assert_int_equal(c.res.status, 0);
	assert_true(c.res.naddrs >= 1);
	bool v4 = false;
	for (unsigned i = 0; i < c.res.naddrs; i++)
		v4 |= c.res.addrs[i].family == AF_INET;
	assert_true(v4);
	assert_int_equal(__atomic_load_n(&srv.all_queries, __ATOMIC_ACQUIRE), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ttl_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_smallest_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_zero_not_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_servfail_not_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_not_cached, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts_answer_later, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
