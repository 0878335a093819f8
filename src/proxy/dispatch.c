/* dispatch.c: a client connection from accept on: the checks at accept (trusted balancers,
 * the connection limit), TLS and the PROXY header before anything else, then each event and
 * deadline to the handler of the session's state (request.c, socks.c, forward.c, the tunnel
 * and replies of session.c). The top of the session stack: nothing here is called by name
 * from below; handlers start steps above them through session_steps. */
#include "proxy/dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dlist.h"
#include "core/log.h"
#include "proxy/forward.h"
#include "proxy/request.h"
#include "proxy/route.h"
#include "proxy/session.h"
#include "proxy/socks.h"

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents);
static void session_io_upstream(struct loop *loop, struct io *io, uint32_t revents);
static void session_timer(struct loop *loop, struct timer *t);
static void session_kick(struct loop *loop, struct timer *t);

static const struct session_steps steps = {
	.redial = session_route,
	.next_head = session_head_continue,
};

/* A proxy_protocol listener takes connections from trusted_balancers only: anyone else could
 * claim any client address in the header. Refusals are counted, and logged once a second. */
static bool balancer_trusted(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);
	struct ipaddr ip;
	char a[IPADDR_STRLEN];

	ipaddr_from_sockaddr((const struct sockaddr *)&s->peer, &ip);
	if (c->trusted_balancers && cidr_set_contains(c->trusted_balancers, &ip))
		return true;
	metrics_code_count(s->w->metrics, "proxy_protocol_untrusted");
	if (loop_now(s->w->loop) >= s->w->pp_log_ms) {
		s->w->pp_log_ms = loop_now(s->w->loop) + 1000;
		ipaddr_format(&ip, a, sizeof(a));
		log_info("conn %llu: %s is not in trusted_balancers: closed (a proxy_protocol listener)",
			 (unsigned long long)s->id, a);
	}
	return false;
}

void session_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool socks, bool tls,
		    enum pp_version pp)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		atomic_fetch_sub(&w->px->conns, 1);
		return;
	}
	s->w = w;
	s->steps = &steps;
	s->cfg = cfg_ref_get(w->cfg);
	s->id = atomic_fetch_add(&w->px->next_id, 1);
	s->state = SESS_HEAD;
	s->peer = *peer;
	s->user = -1;
	s->pin = -1;
	s->splice = !strcmp(session_cfg(s)->relay, "splice");
	s->splice_auto = !strcmp(session_cfg(s)->relay, "auto");
	relay_pair_init(&s->relay, &s->cio, &s->uio, &s->bytes_up, &s->bytes_down);
	s->start_ms = s->req_start_ms = s->last_ms = loop_now(w->loop);
	io_init(&s->cio, fd, session_io_client);
	stream_init(&s->cs, fd, NULL);   /* plain; TLS below */
	io_init(&s->uio, -1, session_io_upstream);
	dial_init(&s->dial, w->loop, w->dns, &session_dial_ops, s, &s->uio, session_io_upstream,
		  session_cfg(s)->connect_timeout_ms);
	timer_init(&s->timer, session_timer);
	timer_init(&s->kick, session_kick);
	w->nsessions++;
	DLIST_PUSH(w->sessions, s);
	metrics_conn_open(w->metrics);
	if (pp != PP_OFF && !balancer_trusted(s)) {
		s->reason = "peer not in trusted_balancers";
		session_close(s);
		return;
	}
	if (session_cfg(s)->max_conns && atomic_load(&w->px->conns) > session_cfg(s)->max_conns) {
		session_error(s, 503, "too_many_connections", "the proxy is at its connection limit");
		return;
	}
	if (tls) {
		if (!s->cfg->tls_ctx || stream_init(&s->cs, fd, s->cfg->tls_ctx)) {
			s->reason = "cannot start TLS";
			session_close(s);
			return;
		}
		s->splice = s->splice_auto = false;   /* bytes must pass through OpenSSL */
		s->state = SESS_TLS;
	}
	if (socks) {
		s->socks = true;
		s->head_started = true;
		s->state = SESS_SOCKS;
		s->pool = &((struct proxy_config *)session_cfg(s))->egress;
		if (!(s->cin = buf_get())) {
			session_close(s);
			return;
		}
	}
	if (pp != PP_OFF) {
		/* the header comes before anything else, TLS included; the header timeout covers both */
		if (!(s->pp = calloc(1, sizeof(*s->pp)))) {
			session_close(s);
			return;
		}
		s->pp->want = pp;
		s->pp_next = s->state;
		s->state = SESS_PROXY_HDR;
	}
	session_arm(s, session_cfg(s)->header_timeout_ms);
	io_want(w->loop, &s->cio, EPOLLIN);
}

static void session_timer(struct loop *loop, struct timer *t)
{
	struct session *s = container_of(t, struct session, timer);
	const struct proxy_config *c = session_cfg(s);

	switch (s->state) {
	case SESS_PROXY_HDR:
		metrics_code_count(s->w->metrics, "proxy_protocol_timeout");
		s->reason = "PROXY header not received in time";
		session_close(s);
		return;
	case SESS_TLS:
		s->reason = "TLS handshake not finished in time";
		session_close(s);
		return;
	case SESS_SOCKS:
		s->reason = "SOCKS5 negotiation not finished in time";
		session_close(s);
		return;
	case SESS_HEAD:
		if (s->cin && buf_pending(s->cin)) {
			session_error(s, 408, "header_timeout", "request head not received in time");
		} else {
			s->reason = "idle";
			session_close(s);
		}
		return;
	case SESS_RESOLVE:
	case SESS_CONNECT:
		session_error(s, 504, "connect_timeout", "destination did not answer in time");
		return;
	case SESS_TUNNEL:
	case SESS_FORWARD: {
		uint64_t idle = loop_now(loop) - s->last_ms;
		if (idle < c->idle_timeout_ms) {
			session_arm(s, (unsigned)(c->idle_timeout_ms - idle));
			return;
		}
		s->reason = "idle timeout";
		session_close(s);
		return;
	}
	case SESS_REPLY:
	case SESS_LINGER:
	case SESS_DONE:
		session_close(s);
		return;
	}
}

static void tls_handshake(struct session *s)
{
	int rc = stream_handshake(&s->cs);

	if (rc == 1) {
		s->state = SESS_HEAD;
		io_want(s->w->loop, &s->cio, EPOLLIN);
		if (stream_has_input(&s->cs))
			session_head_read(s);
		return;
	}
	if (rc == 0) {
		io_want(s->w->loop, &s->cio, s->cs.want_write ? EPOLLOUT : EPOLLIN);
		return;
	}
	s->reason = "TLS handshake failed";
	stream_free(&s->cs);   /* no close_notify on a failed handshake */
	session_close(s);
}

/* The balancer's PROXY header: its source becomes the client for everything after (the access
 * log, the auth throttle); LOCAL and UNKNOWN headers keep the balancer's own address. */
static void proxy_header_read(struct session *s)
{
	struct pp_info pi;
	const char *err;
	char a[IPADDR_STRLEN];
	int rc = proxyproto_recv(s->cio.fd, s->pp, &pi, &err);

	if (rc == 0)
		return;
	if (rc < 0) {
		if (rc == -EPROTO) {
			struct ipaddr ip;
			ipaddr_from_sockaddr((const struct sockaddr *)&s->peer, &ip);
			ipaddr_format(&ip, a, sizeof(a));
			metrics_code_count(s->w->metrics, "proxy_protocol_invalid");
			log_info("conn %llu from %s: %s: closed", (unsigned long long)s->id, a, err);
		}
		s->reason = rc == -EPROTO ? "bad PROXY header" : "client closed before the PROXY header";
		session_close(s);
		return;
	}
	free(s->pp);
	s->pp = NULL;
	if (pi.kind == PP_KIND_PROXY)
		ipaddr_to_sockaddr(&pi.src, pi.sport, &s->peer);
	s->state = s->pp_next;
	/* bytes after the header are still in the socket: epoll (level-triggered) says so */
}

/* OpenSSL may hold decrypted bytes after a read that filled our buffer: epoll will not say so. */
static void session_kick(struct loop *loop, struct timer *t)
{
	struct session *s = container_of(t, struct session, kick);

	if (s->state != SESS_DONE && stream_is_tls(&s->cs) && (s->cio.want & EPOLLIN))
		session_io_client(loop, &s->cio, EPOLLIN);
}

static void session_client_event(struct loop *loop, struct session *s, uint32_t revents)
{
	struct io *io = &s->cio;

	(void)loop;
	switch (s->state) {
	case SESS_PROXY_HDR:
		proxy_header_read(s);
		break;
	case SESS_TLS:
		tls_handshake(s);
		break;
	case SESS_HEAD:
		session_head_read(s);
		break;
	case SESS_SOCKS:
		socks_input(s);
		break;
	case SESS_TUNNEL:
		session_tunnel_event(s, true, revents);
		break;
	case SESS_FORWARD:
		if ((revents & (EPOLLERR | EPOLLHUP)) && !session_forward_reads_client(s)) {
			/* reset while we wait for the upstream: nobody is left to answer */
			s->reason = "client went away";
			session_close(s);
			break;
		}
		if ((revents & EPOLLIN) && !session_forward_reads_client(s))
			s->c_early = true;   /* pipelined bytes or a FIN: they wait in the socket */
		session_forward(s);
		break;
	case SESS_REPLY:
		session_reply_flush(s);
		break;
	case SESS_LINGER:
		session_linger_read(s);
		break;
	case SESS_RESOLVE:
	case SESS_CONNECT:
		if (revents & (EPOLLERR | EPOLLHUP)) {
			s->reason = "client went away";
			session_close(s);
			break;
		}
		io_want(loop, io, 0);   /* early bytes wait in the socket until the tunnel is up */
		break;
	case SESS_DONE:
		break;
	}
}

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents)
{
	struct session *s = container_of(io, struct session, cio);

	session_client_event(loop, s, revents);
	if (s->state != SESS_DONE && stream_pending(&s->cs) && (s->cio.want & EPOLLIN))
		timer_start(loop, &s->kick, 0);
}

static void session_io_upstream(struct loop *loop, struct io *io, uint32_t revents)
{
	struct session *s = container_of(io, struct session, uio);

	switch (s->state) {
	case SESS_CONNECT:
		dial_io_events(&s->dial, revents);
		break;
	case SESS_TUNNEL:
		session_tunnel_event(s, false, revents);
		break;
	case SESS_FORWARD:
		if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
			s->u_readable = true;
		if ((revents & (EPOLLERR | EPOLLHUP)) && !session_forward_reads_upstream(s) &&
		    !session_forward_writes_upstream(s)) {
			/* the upstream closed while we still write its bytes to the client: what it
			 * sent is read later; stop the level-triggered hang-up from waking us */
			s->u_early = true;
			io_stop(loop, io);
			break;
		}
		if ((revents & EPOLLIN) && !session_forward_reads_upstream(s))
			s->u_early = true;
		session_forward(s);
		break;
	case SESS_HEAD:
		/* an idle kept-alive upstream spoke or closed: it cannot be reused */
		session_upstream_close(s);
		break;
	default:
		io_want(loop, io, 0);
		break;
	}
}
