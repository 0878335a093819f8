/* dns.c: c-ares wired to the loop (socket state callback -> io watchers, ares_timeout -> one
 * timer), plus a small open-addressing cache keyed by name. */
#include "net/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"

#define DNS_CACHE_SLOTS 1024       /* per worker; a full cache evicts by slot */
#define DNS_NEGATIVE_TTL_S 5       /* how long "no such name" is remembered */
#define DNS_MAX_TTL_S 3600
#define DNS_MAX_SOCKS 16

struct dns_sock {
	struct io io;
	struct dns *dns;
};

struct dns_entry {
	char name[256];
	uint64_t expires_ms;
	struct dns_result res;
};

struct dns_req {
	struct dns *dns;
	dns_cb cb;
	void *arg;
	bool cancelled;
	bool in_call;          /* inside ares_getaddrinfo(): an answer now is delivered later */
	bool answered;
	struct timer later;
	struct dns_result res;
	char name[256];
};

struct dns {
	struct loop *loop;
	ares_channel channel;
	struct timer timer;
	struct dns_sock socks[DNS_MAX_SOCKS];
	struct dns_entry *cache;
	struct dns_stats stats;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

bool dns_cached(struct dns *dns, const char *name, struct dns_result *out)
{
	struct dns_entry *e = &dns->cache[name_hash(name) % DNS_CACHE_SLOTS];

	if (e->expires_ms > loop_now(dns->loop) && !strcmp(e->name, name)) {
		*out = e->res;
		dns->stats.cache_hits++;
		return true;
	}
	return false;
}

static void cache_put(struct dns *dns, const char *name, const struct dns_result *res)
{
	struct dns_entry *e = &dns->cache[name_hash(name) % DNS_CACHE_SLOTS];
	uint32_t ttl = res->status ? DNS_NEGATIVE_TTL_S : res->ttl_s;

	if (res->status == -ETIMEDOUT || res->status == -EIO)
		return;   /* a resolver hiccup is not an answer */
	if (ttl > DNS_MAX_TTL_S)
		ttl = DNS_MAX_TTL_S;
	if (ttl == 0)
		return;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->expires_ms = loop_now(dns->loop) + (uint64_t)ttl * 1000;
	e->res = *res;
}

static void dns_timer_arm(struct dns *dns)
{
	struct timeval tv, *tvp = ares_timeout(dns->channel, NULL, &tv);

	if (!tvp) {
		timer_stop(dns->loop, &dns->timer);
		return;
	}
	timer_start(dns->loop, &dns->timer, (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000 + 1);
}

static void dns_timer_cb(struct loop *loop, struct timer *t)
{
	struct dns *dns = container_of(t, struct dns, timer);

	(void)loop;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_arm(dns);
}

static void dns_io_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct dns_sock *s = container_of(io, struct dns_sock, io);
	struct dns *dns = s->dns;
	int fd = io->fd;

	(void)loop;
	ares_process_fd(dns->channel, (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
			(revents & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
	dns_timer_arm(dns);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_sock *free_slot = NULL;

	for (int i = 0; i < DNS_MAX_SOCKS; i++) {
		struct dns_sock *s = &dns->socks[i];
		if (s->io.fd == fd) {
			uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
			if (!ev) {
				/* c-ares closes the socket itself: only forget it */
				io_want(dns->loop, &s->io, 0);
				s->io.fd = -1;
				s->io.added = false;
			} else {
				io_want(dns->loop, &s->io, ev);
			}
			return;
		}
		if (s->io.fd == -1 && !free_slot)
			free_slot = s;
	}
	if (!free_slot || (!readable && !writable))
		return;
	io_init(&free_slot->io, fd, dns_io_cb);
	free_slot->dns = dns;
	io_want(dns->loop, &free_slot->io, (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0));
}

int dns_new(struct loop *loop, const char *servers, unsigned timeout_ms, struct dns **out)
{
	static int lib_ready;
	struct ares_options opts = { 0 };
	struct dns *dns;
	int rc;

	if (!__atomic_exchange_n(&lib_ready, 1, __ATOMIC_SEQ_CST))
		ares_library_init(ARES_LIB_INIT_ALL);
	dns = calloc(1, sizeof(*dns));
	if (!dns)
		return -ENOMEM;
	dns->cache = calloc(DNS_CACHE_SLOTS, sizeof(*dns->cache));
	if (!dns->cache) {
		free(dns);
		return -ENOMEM;
	}
	dns->loop = loop;
	for (int i = 0; i < DNS_MAX_SOCKS; i++)
		dns->socks[i].io.fd = -1;
	timer_init(&dns->timer, dns_timer_cb);
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.timeout = timeout_ms ? (int)timeout_ms : 2000;
	opts.tries = 2;
	rc = ares_init_options(&dns->channel, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS)
		goto fail;
	if (servers && *servers && ares_set_servers_ports_csv(dns->channel, servers) != ARES_SUCCESS) {
		ares_destroy(dns->channel);
		rc = ARES_EBADSTR;
		goto fail;
	}
	*out = dns;
	return 0;
fail:
	free(dns->cache);
	free(dns);
	return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
}

void dns_free(struct dns *dns)
{
	if (!dns)
		return;
	ares_destroy(dns->channel);   /* runs pending callbacks with ARES_EDESTRUCTION */
	timer_stop(dns->loop, &dns->timer);
	free(dns->cache);
	free(dns);
}

static void addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_req *req = arg;
	struct dns *dns = req->dns;
	struct dns_result res = { 0 };

	(void)timeouts;
	if (status == ARES_SUCCESS && ai) {
		uint32_t ttl = UINT32_MAX;
		for (struct ares_addrinfo_node *n = ai->nodes; n && res.naddrs < DNS_MAX_ADDRS; n = n->ai_next) {
			struct ipaddr ip;
			ipaddr_from_sockaddr(n->ai_addr, &ip);
			if (!ip.family)
				continue;
			res.addrs[res.naddrs++] = ip;
			if (n->ai_ttl >= 0 && (uint32_t)n->ai_ttl < ttl)
				ttl = (uint32_t)n->ai_ttl;
		}
		res.ttl_s = ttl == UINT32_MAX ? 0 : ttl;
		res.status = res.naddrs ? 0 : -ENOENT;
	} else if (status == ARES_ENOTFOUND || status == ARES_ENODATA || status == ARES_ENONAME) {
		res.status = -ENOENT;
	} else if (status == ARES_ETIMEOUT) {
		res.status = -ETIMEDOUT;
	} else {
		res.status = -EIO;
	}
	if (ai)
		ares_freeaddrinfo(ai);
	if (status == ARES_EDESTRUCTION) {
		free(req);
		return;
	}
	if (res.status)
		dns->stats.failures++;
	cache_put(dns, req->name, &res);
	if (req->in_call) {
		req->res = res;
		req->answered = true;
		return;
	}
	if (!req->cancelled)
		req->cb(req->arg, &res);
	free(req);
}

static void later_cb(struct loop *loop, struct timer *t)
{
	struct dns_req *req = container_of(t, struct dns_req, later);

	(void)loop;
	if (!req->cancelled)
		req->cb(req->arg, &req->res);
	free(req);
}

int dns_resolve(struct dns *dns, const char *name, dns_cb cb, void *arg, struct dns_req **out)
{
	struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC, .ai_flags = ARES_AI_NOSORT };
	struct dns_req *req = calloc(1, sizeof(*req));

	if (!req)
		return -ENOMEM;
	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	snprintf(req->name, sizeof(req->name), "%s", name);
	*out = req;
	dns->stats.queries++;
	/* c-ares may answer from /etc/hosts inside this call: that answer waits for a 0 ms timer */
	req->in_call = true;
	timer_init(&req->later, later_cb);
	ares_getaddrinfo(dns->channel, req->name, NULL, &hints, addrinfo_cb, req);
	req->in_call = false;
	if (req->answered)
		timer_start(dns->loop, &req->later, 0);
	dns_timer_arm(dns);
	return 0;
}

void dns_cancel(struct dns_req *req)
{
	if (req)
		req->cancelled = true;
}

void dns_get_stats(const struct dns *dns, struct dns_stats *out)
{
	*out = dns->stats;
}
