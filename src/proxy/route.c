/* route.c: a session's way to its destination on net/dial: resolve, check every address
 * (admit.c), connect from an egress address of the user's pool (the dial's bind hook), mark
 * an egress address down when it fails locally, then start the tunnel or the forwarding. */
#include "proxy/route.h"

#include "proxy/admit.h"
#include "proxy/forward.h"
#include "proxy/session.h"
#include "proxy/socks_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ---------------------------------------------------------------- route */

/* A real lookup starts (not a cache hit). */
static void route_resolving(void *ctx, struct dial *d)
{
	struct session *s = ctx;

	(void)d;
	s->state = SESS_RESOLVE;
	/* client interest stays as it is: an event while resolving turns it off (saves epoll_ctl) */
	metrics_dns_start(&s->ms);
}

static bool route_resolved(void *ctx, struct dial *d, const struct dns_result *res)
{
	struct session *s = ctx;

	(void)d;
	metrics_dns_done(s->w->metrics, &s->ms);
	if (res->status) {
		session_error(s, res->status == -ENOENT ? 502 : 504, "dns_failure",
			      res->status == -ENOENT ? "destination name does not resolve"
						     : "DNS lookup failed or timed out");
		return false;
	}
	if (!session_check_addresses(s))
		return false;
	s->state = SESS_CONNECT;
	return true;
}

void session_route(struct session *s)
{
	/* the dial times the resolve and each attempt (connect_timeout) */
	timer_stop(s->w->loop, &s->timer);
	if (s->dial.naddrs) {   /* an IP literal */
		if (session_check_addresses(s)) {
			s->state = SESS_CONNECT;
			dial_connect(&s->dial, s->port);
		}
		return;
	}
	dial_resolve(&s->dial, s->host, s->port);
}

/* ---------------------------------------------------------------- connect */

/* SOCKS5 success, queued before the tunnel's bytes: BND is the upstream's local end. */
static int socks_success(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned char rep[SOCKS_REPLY_MAX];
	size_t n;

	if (getsockname(s->uio.fd, (struct sockaddr *)&ss, &len) == -1)
		memset(&ss, 0, sizeof(ss));
	n = socks_build_success(&ss, rep);
	if (!(s->relay.down.pend = malloc(n)))
		return -ENOMEM;
	memcpy(s->relay.down.pend, rep, n);
	s->relay.down.pend_len = (uint32_t)n;
	s->status = 200;
	return 0;
}

static void connected(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);

	metrics_connected(s->w->metrics, &s->ms, session_egress(s), s->is_connect);
	session_count_request(s);
	session_arm(s, c->idle_timeout_ms);
	session_touch(s);
	if (s->is_connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		size_t skip = s->socks ? 0 : s->req->head_len;
		size_t early = buf_pending(s->cin) - skip;

		if (s->socks) {
			if (socks_success(s)) {
				session_close(s);
				return;
			}
		} else {
			s->status = 200;
			s->relay.down.pend = malloc(sizeof(ok) - 1);
			if (!s->relay.down.pend) {
				session_close(s);
				return;
			}
			memcpy(s->relay.down.pend, ok, sizeof(ok) - 1);
			s->relay.down.pend_len = sizeof(ok) - 1;
		}
		if (early) {
			/* the client sent its first bytes (a TLS ClientHello) right behind CONNECT */
			s->relay.up.pend = malloc(early);
			if (!s->relay.up.pend) {
				session_close(s);
				return;
			}
			memcpy(s->relay.up.pend, s->cin->data + s->cin->off + skip, early);
			s->relay.up.pend_len = (uint32_t)early;
		}
		buf_put(s->cin);
		s->cin = NULL;
		session_head_put(s->req);   /* a tunnel holds no head */
		s->req = NULL;
		s->method = HTTP_CONNECT;
		s->state = SESS_TUNNEL;
		session_tunnel_start(s);
		return;
	}
	s->state = SESS_FORWARD;
	session_forward(s);
}

static bool egress_local_failure(int err)
{
	return err == -EADDRNOTAVAIL || err == -ENETUNREACH || err == -EADDRINUSE ||
	       err == -EAFNOSUPPORT || err == -EINVAL || err == -EPERM || err == -EACCES;
}

/* The bind hook: an egress address of the pool for this attempt. */
static int route_source(void *ctx, struct dial *d, struct sockaddr_storage *src, socklen_t *srclen)
{
	struct session *s = ctx;
	size_t idx;

	s->state = SESS_CONNECT;
	if (egress_pick(s->pool, s->host, s->pin, loop_now(s->w->loop), s->tried, &idx)) {
		session_error(s, 502, "no_egress", s->pin != -1
			      ? "the pinned egress address is down"
			      : "no egress address of your pool is available");
		return 1;
	}
	s->dest = d->dest;
	s->egress_idx = idx;
	s->have_egress = true;
	if (s->pool->addrs[idx].family != s->dest.family)
		return -EAFNOSUPPORT;   /* this egress address cannot reach that family: the next destination */
	*srclen = ipaddr_to_sockaddr(&s->pool->addrs[idx], 0, src);
	metrics_connect_start(&s->ms);
	return 0;
}

static enum dial_next route_failed(void *ctx, struct dial *d, int err, bool bind_failed, bool async)
{
	struct session *s = ctx;
	const struct proxy_config *c = session_cfg(s);

	(void)d;
	metrics_connect_failed(s->w->metrics, &s->ms, session_egress(s));
	if (async) {
		s->have_egress = false;
		if (egress_local_failure(err) || err == -ENETUNREACH) {
			egress_mark_down(s->pool, s->egress_idx, loop_now(s->w->loop), c->egress_down_ms);
			s->tried |= 1u << s->egress_idx;
			return DIAL_SAME_ADDR;
		}
		return DIAL_NEXT_ADDR;
	}
	if (bind_failed && egress_local_failure(err)) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&s->pool->addrs[s->egress_idx], ip, sizeof(ip));
		log_warn("egress %s failed locally (%s): marked down for %u ms", ip, strerror(-err), c->egress_down_ms);
		egress_mark_down(s->pool, s->egress_idx, loop_now(s->w->loop), c->egress_down_ms);
		s->tried |= 1u << s->egress_idx;
		s->have_egress = false;
		return DIAL_SAME_ADDR;
	}
	if (err == -EADDRNOTAVAIL) {
		/* every port from this egress address to this destination is taken (TIME-WAIT):
		 * the next pool address has its own ports; this one stays up */
		s->tried |= 1u << s->egress_idx;
		s->have_egress = false;
		return DIAL_SAME_ADDR;
	}
	return DIAL_NEXT_ADDR;
}

static void route_connected(void *ctx, struct dial *d)
{
	(void)d;
	connected(ctx);
}

static void route_gave_up(void *ctx, struct dial *d, int err, enum dial_end end)
{
	struct session *s = ctx;

	(void)d;
	switch (end) {
	case DIAL_END_TIMEOUT:
		session_error(s, 504, "connect_timeout", "destination did not answer in time");
		return;
	case DIAL_END_DNS:
		session_error(s, 502, "dns_failure", "cannot start a DNS lookup");
		return;
	case DIAL_END_ASYNC:
		session_error(s, 502, err == -ECONNREFUSED ? "connect_refused" : "connect_failed",
			      err == -ECONNREFUSED ? "destination refused the connection" : "destination unreachable");
		return;
	case DIAL_END_SYNC:
		break;
	}
	session_error(s, err == -ETIMEDOUT ? 504 : 502,
		      err == -ECONNREFUSED ? "connect_refused" : err == -ENETUNREACH ? "network_unreachable" : "connect_failed",
		      err == -ECONNREFUSED ? "destination refused the connection"
		      : err == -EAFNOSUPPORT ? "no egress address of the destination's address family"
		      : "destination unreachable");
}

const struct dial_ops session_dial_ops = {
	.resolving = route_resolving,
	.resolved = route_resolved,
	.source = route_source,
	.failed = route_failed,
	.connected = route_connected,
	.gave_up = route_gave_up,
};
