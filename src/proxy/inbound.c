/* inbound.c: [inbound NAME] endpoints: a fixed address that relays TCP to a backend without
 * terminating TLS. With sni routes the first bytes are held until the ClientHello's server
 * name is known (never decrypted), then sent on untouched; a PROXY v2 header can go first so
 * the backend sees the client's address; allow CIDRs refuse other clients at accept. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/dlist.h"
#include "core/log.h"
#include "net/dial.h"
#include "net/dns.h"
#include "net/proxyproto.h"
#include "net/sock.h"
#include "net/tls_sni.h"
#include "proxy/inbound.h"
#include "proxy/proxy.h"


enum in_state {
	IN_SNIFF = 0,     /* reading the ClientHello to learn the server name */
	IN_RESOLVE,       /* waiting for the backend's addresses */
	IN_CONNECT,       /* non-blocking connect to the backend in progress */
	IN_RELAY,         /* bytes relayed both ways */
	IN_DONE,          /* closed, queued for free after this batch of events */
};

struct inbound_conn {
	struct worker *w;
	struct cfg_ref *cfg;
	const struct proxy_inbound *ib;
	uint64_t id;
	enum in_state state;
	struct io cio, bio;           /* client, backend */
	struct timer timer;
	struct sockaddr_storage peer, local;
	struct buf *hello;            /* bytes read while sniffing; sent first */
	char sni[TLS_SNI_NAME_MAX + 1];
	const struct host *target;
	uint16_t tport;
	struct dial dial;             /* the backend's addresses and the attempt in flight */
	struct relay_pair relay;      /* up: client -> backend */
	uint64_t bytes_up, bytes_down, start_ms, last_ms;
	uint32_t pp_len;              /* PROXY header bytes: counted by the relay, not the client's */
	const char *reason;
	struct inbound_conn *next, *prev;
	struct deferred dfr;
};

static void in_io_client(struct loop *loop, struct io *io, uint32_t revents);
static void in_io_backend(struct loop *loop, struct io *io, uint32_t revents);

static const struct proxy_config *cfg_of(const struct inbound_conn *c) { return c->cfg->cfg; }

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
		     : ((const struct sockaddr_in *)ss)->sin_port);
}

/* ---------------------------------------------------------------- life cycle */

static void in_free(struct deferred *d)
{
	free(container_of(d, struct inbound_conn, dfr));
}

static void in_log(struct inbound_conn *c)
{
	int fd = c->cfg->log_fd;   /* the snapshot's: a reload's reopen never closes it under us */
	char client[IPADDR_STRLEN] = "", dest[IPADDR_STRLEN] = "", backend[300] = "";
	struct ipaddr peer;
	struct jline j;

	if (fd < 0)
		return;
	ipaddr_from_sockaddr((struct sockaddr *)&c->peer, &peer);
	ipaddr_format(&peer, client, sizeof(client));
	if (c->dial.dest.family)
		ipaddr_format(&c->dial.dest, dest, sizeof(dest));
	if (c->target)
		snprintf(backend, sizeof(backend), strchr(c->target->name, ':') ? "[%s]:%u" : "%s:%u",
			 c->target->name, c->tport);
	jline_begin(&j);
	jline_time(&j, "time");
	jline_uint(&j, "id", c->id);
	jline_str(&j, "inbound", c->ib->name);
	jline_str(&j, "client", client);
	jline_str(&j, "sni", c->sni[0] ? c->sni : NULL);
	jline_str(&j, "backend", backend[0] ? backend : NULL);
	jline_str(&j, "resolved", dest[0] ? dest : NULL);
	jline_uint(&j, "bytes_up", c->bytes_up > c->pp_len ? c->bytes_up - c->pp_len : 0);
	jline_uint(&j, "bytes_down", c->bytes_down);
	jline_uint(&j, "duration_ms", loop_now(c->w->loop) - c->start_ms);
	jline_str(&j, "reason", c->reason);
	jline_end(&j);
	jline_write(&j, fd);
}

static void in_close(struct inbound_conn *c, const char *reason)
{
	struct worker *w = c->w;

	if (c->state == IN_DONE)
		return;
	if (!c->reason)
		c->reason = reason;
	in_log(c);
	c->state = IN_DONE;
	timer_stop(w->loop, &c->timer);
	dial_cancel(&c->dial);
	relay_pair_release(&c->relay, &w->pipes);
	io_close(w->loop, &c->cio);
	io_close(w->loop, &c->bio);
	buf_put(c->hello);
	c->hello = NULL;
	DLIST_UNLINK(w->inbound_conns, c);
	atomic_fetch_sub(&w->px->conns, 1);
	cfg_ref_put(c->cfg);
	loop_defer(w->loop, &c->dfr, in_free);
}

void inbound_close_all(struct worker *w)
{
	while (w->inbound_conns)
		in_close(w->inbound_conns, "proxy stopping");
}

static void in_timer(struct loop *loop, struct timer *t)
{
	struct inbound_conn *c = container_of(t, struct inbound_conn, timer);
	const struct proxy_config *cfg = cfg_of(c);

	switch (c->state) {
	case IN_SNIFF:
		in_close(c, "no ClientHello in time");
		return;
	case IN_RESOLVE:
	case IN_CONNECT:
		in_close(c, "backend did not answer in time");
		return;
	case IN_RELAY: {
		uint64_t idle = loop_now(loop) - c->last_ms;
		if (idle < cfg->idle_timeout_ms) {
			timer_start(loop, &c->timer, cfg->idle_timeout_ms - idle);
			return;
		}
		in_close(c, "idle timeout");
		return;
	}
	case IN_DONE:
		return;
	}
}

/* ---------------------------------------------------------------- relay */

static void in_relay(struct inbound_conn *c, bool from_client, uint32_t revents)
{
	struct worker *w = c->w;
	const char *mode = cfg_of(c)->relay;
	struct relay_env env = { w->scratch, &w->pipes, !strcmp(mode, "splice"), !strcmp(mode, "auto"), NULL };

	c->last_ms = loop_now(w->loop);
	int rc = relay_pair_event(&c->relay, &env, w->loop, from_client, revents);
	if (rc)
		in_close(c, rc == 1 ? NULL : rc == -ECONNRESET || rc == -EPIPE ? "connection reset" : "relay error");
}

static void backend_connected(struct inbound_conn *c)
{
	const struct proxy_inbound *ib = c->ib;

	if (ib->proxy_protocol == PP_V2) {
		/* the backend learns the client's address and the endpoint it came to */
		struct ipaddr src, dst;
		uint8_t hdr[64];
		ipaddr_from_sockaddr((struct sockaddr *)&c->peer, &src);
		ipaddr_from_sockaddr((struct sockaddr *)&c->local, &dst);
		int n = proxyproto_v2_build(&src, sa_port(&c->peer), &dst, sa_port(&c->local), hdr, sizeof(hdr));
		if (n < 0 || relay_dir_queue(&c->relay.up, hdr, (size_t)n)) {
			in_close(c, "cannot build the PROXY header");
			return;
		}
		c->pp_len = (uint32_t)n;
	}
	if (buf_pending(c->hello) &&
	    relay_dir_queue(&c->relay.up, c->hello->data + c->hello->off, buf_pending(c->hello))) {
		in_close(c, "out of memory");
		return;
	}
	buf_put(c->hello);
	c->hello = NULL;
	c->state = IN_RELAY;
	c->last_ms = loop_now(c->w->loop);
	timer_start(c->w->loop, &c->timer, cfg_of(c)->idle_timeout_ms);
	in_relay(c, false, EPOLLIN | EPOLLOUT);
}

/* ---------------------------------------------------------------- backend */

static void dial_connected(void *ctx, struct dial *d)
{
	(void)d;
	backend_connected(ctx);
}

static void dial_resolving(void *ctx, struct dial *d)
{
	(void)d;
	((struct inbound_conn *)ctx)->state = IN_RESOLVE;
}

static bool dial_resolved(void *ctx, struct dial *d, const struct dns_result *res)
{
	struct inbound_conn *c = ctx;

	if (res->status || !d->naddrs) {
		in_close(c, "backend name does not resolve");
		return false;
	}
	c->state = IN_CONNECT;
	return true;
}

static void dial_gave_up(void *ctx, struct dial *d, int err, enum dial_end end)
{
	(void)d;
	in_close(ctx, end == DIAL_END_TIMEOUT ? "backend did not answer in time"
		 : end == DIAL_END_DNS ? "cannot start a DNS lookup"
		 : err == -ECONNREFUSED ? "backend refused the connection" : "backend unreachable");
}

static const struct dial_ops inbound_dial_ops = {
	.resolving = dial_resolving,
	.resolved = dial_resolved,
	.connected = dial_connected,
	.gave_up = dial_gave_up,
};

static void route_to(struct inbound_conn *c, const struct host *h, uint16_t port)
{
	c->target = h;
	c->tport = port;
	io_want(c->w->loop, &c->cio, 0);   /* further client bytes wait in the kernel */
	timer_stop(c->w->loop, &c->timer);   /* the dial times the resolve and each attempt */
	c->state = IN_CONNECT;
	if (h->kind == HOST_IP) {
		dial_set_addr(&c->dial, &h->ip);
		dial_connect(&c->dial, port);
		return;
	}
	dial_resolve(&c->dial, h->name, port);
}

/* ---------------------------------------------------------------- SNI */

/* The exact name first, then a "*." route (one more label, as in certificates), then the
 * "**." route with the longest suffix (any depth). */
const struct inbound_route *inbound_route_find(const struct proxy_inbound *ib, const char *sni)
{
	const struct inbound_route *best = NULL;
	size_t len = strlen(sni);

	for (size_t i = 0; i < ib->nroutes; i++)
		if (ib->routes[i].wild == HOST_WILD_NONE && host_wild_match(HOST_WILD_NONE, ib->routes[i].host, sni, len))
			return &ib->routes[i];
	for (size_t i = 0; i < ib->nroutes; i++) {
		const struct inbound_route *r = &ib->routes[i];
		if (r->wild == HOST_WILD_ONE && host_wild_match(HOST_WILD_ONE, r->host + r->skip, sni, len))
			return r;
	}
	for (size_t i = 0; i < ib->nroutes; i++) {
		const struct inbound_route *r = &ib->routes[i];
		if (r->wild == HOST_WILD_ANY && host_wild_match(HOST_WILD_ANY, r->host + r->skip, sni, len) &&
		    (!best || strlen(r->host) > strlen(best->host)))
			best = r;
	}
	return best;
}

static void sniff(struct inbound_conn *c)
{
	const char *err;

	if (!c->hello && !(c->hello = buf_get())) {
		in_close(c, "out of memory");
		return;
	}
	long n = sock_read(c->cio.fd, c->hello->data + c->hello->len, buf_room(c->hello));
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		in_close(c, n == 0 ? "client closed before its ClientHello" : "client error");
		return;
	}
	c->hello->len += (size_t)n;
	int rc = tls_sni_parse((const uint8_t *)c->hello->data, c->hello->len, c->sni, &err);
	if (rc == 0 && !buf_room(c->hello)) {
		rc = -EPROTO;
		err = "ClientHello larger than the sniff buffer";
	}
	if (rc == 0)
		return;
	if (rc == 1) {
		const struct inbound_route *r = inbound_route_find(c->ib, c->sni);
		if (r) {
			route_to(c, &r->backend, r->port);
			return;
		}
	}
	if (c->ib->has_forward) {
		route_to(c, &c->ib->forward, c->ib->forward_port);
		return;
	}
	if (rc == -EPROTO) {
		snprintf(c->sni, sizeof(c->sni), "%s", "");
		log_debug("inbound %s: connection %llu: not a TLS ClientHello: %s", c->ib->name,
			  (unsigned long long)c->id, err);
	}
	in_close(c, rc == 1 ? "no route for this server name" : rc == -ENOENT ? "ClientHello without a server name"
		 : "not a TLS ClientHello");
}

/* ---------------------------------------------------------------- events */

static void in_io_client(struct loop *loop, struct io *io, uint32_t revents)
{
	struct inbound_conn *c = container_of(io, struct inbound_conn, cio);

	switch (c->state) {
	case IN_SNIFF:
		sniff(c);
		break;
	case IN_RELAY:
		in_relay(c, true, revents);
		break;
	case IN_RESOLVE:
	case IN_CONNECT:
		if (revents & (EPOLLERR | EPOLLHUP)) {
			in_close(c, "client went away");
			break;
		}
		io_want(loop, io, 0);   /* early bytes wait in the socket until the backend is up */
		break;
	default:
		io_want(loop, io, 0);
		break;
	}
}

static void in_io_backend(struct loop *loop, struct io *io, uint32_t revents)
{
	struct inbound_conn *c = container_of(io, struct inbound_conn, bio);

	switch (c->state) {
	case IN_CONNECT:
		dial_io(&c->dial);
		break;
	case IN_RELAY:
		in_relay(c, false, revents);
		break;
	default:
		io_want(loop, io, 0);
		break;
	}
}

/* The endpoint of the current config that owns the local address a client came to. */
static const struct proxy_inbound *endpoint_find(const struct proxy_config *cfg,
						  const struct sockaddr_storage *local)
{
	struct ipaddr ip;
	uint16_t port = sa_port(local);

	ipaddr_from_sockaddr((const struct sockaddr *)local, &ip);
	for (size_t i = 0; i < cfg->ninbound; i++) {
		const struct listen_addr *l = &cfg->inbound[i].listen;
		static const uint8_t zero[16];
		if (l->port == port && (ipaddr_equal(&l->ip, &ip) || !memcmp(l->ip.a, zero, 16)))
			return &cfg->inbound[i];
	}
	return NULL;
}

void inbound_accept(struct worker *w, int fd, const struct sockaddr_storage *peer)
{
	struct inbound_conn *c = calloc(1, sizeof(*c));
	socklen_t llen = sizeof(c->local);
	struct ipaddr pip;

	if (!c) {
		close(fd);
		return;
	}
	c->w = w;
	c->cfg = cfg_ref_get(w->cfg);
	c->id = atomic_fetch_add(&w->px->next_id, 1);
	c->peer = *peer;
	c->start_ms = c->last_ms = loop_now(w->loop);
	relay_pair_init(&c->relay, &c->cio, &c->bio, &c->bytes_up, &c->bytes_down);
	io_init(&c->cio, fd, in_io_client);
	io_init(&c->bio, -1, in_io_backend);
	dial_init(&c->dial, w->loop, w->dns, &inbound_dial_ops, c, &c->bio, in_io_backend,
		  cfg_of(c)->connect_timeout_ms);
	timer_init(&c->timer, in_timer);
	DLIST_PUSH(w->inbound_conns, c);
	/* inbound connections share the process's budget (max_conns) with proxy clients */
	unsigned now = atomic_fetch_add(&w->px->conns, 1) + 1;
	getsockname(fd, (struct sockaddr *)&c->local, &llen);
	c->ib = endpoint_find(cfg_of(c), &c->local);
	if (!c->ib) {
		/* not expected: a reload closes a removed endpoint's listener with the config switch */
		static const struct proxy_inbound gone = { .name = "(removed)" };
		c->ib = &gone;
		in_close(c, "inbound endpoint removed from the configuration");
		return;
	}
	ipaddr_from_sockaddr((struct sockaddr *)peer, &pip);
	if (c->ib->allow && !cidr_set_contains(c->ib->allow, &pip)) {
		in_close(c, "client address not allowed");
		return;
	}
	if (cfg_of(c)->max_conns && now > cfg_of(c)->max_conns) {
		in_close(c, "the proxy is at its connection limit");
		return;
	}
	if (!c->ib->nroutes) {
		route_to(c, &c->ib->forward, c->ib->forward_port);
		return;
	}
	c->state = IN_SNIFF;
	timer_start(w->loop, &c->timer, cfg_of(c)->header_timeout_ms);
	io_want(w->loop, &c->cio, EPOLLIN);
}
