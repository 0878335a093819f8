/* session.c: the session core, what every handler of a connection stands on: the per-thread
 * pools of heads and exchanges, close and the access log line, deadlines, the proxy's own
 * replies (HTTP or SOCKS5, whichever the client speaks) and the tunnel relay. It calls no
 * handler: the handlers (admit.c, forward.c, route.c, socks.c, request.c) stand on it, the
 * dispatch (dispatch.c) on them, and a handler that starts a step above it uses s->steps. */
#include "proxy/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/dlist.h"
#include "core/log.h"
#include "net/sock.h"
#include "proxy/relay.h"
#include "proxy/respond.h"
#include "proxy/socks_wire.h"
#include "proxy/usage.h"

/* ---------------------------------------------------------------- life cycle */

#define SESS_POOL_MAX 64   /* per thread: about the requests in flight at once on one worker */

/* A thread's idle objects of one kind; above SESS_POOL_MAX they go back to malloc. */
struct sess_pool {
	void *idle[SESS_POOL_MAX];
	unsigned n;
};

static _Thread_local struct sess_pool head_pool, xchg_pool;

static void *pool_get(struct sess_pool *p, size_t size)
{
	return p->n ? p->idle[--p->n] : malloc(size);
}

static void pool_put(struct sess_pool *p, void *o)
{
	if (o && p->n < SESS_POOL_MAX)
		p->idle[p->n++] = o;
	else
		free(o);
}

struct http_head *session_head_get(void)
{
	return pool_get(&head_pool, sizeof(struct http_head));
}

void session_head_put(struct http_head *h)
{
	pool_put(&head_pool, h);
}

struct http_exchange *session_xchg_get(void)
{
	return pool_get(&xchg_pool, sizeof(struct http_exchange));
}

void session_xchg_put(struct http_exchange *x)
{
	pool_put(&xchg_pool, x);
}

void session_pool_trim(void)
{
	while (head_pool.n)
		free(head_pool.idle[--head_pool.n]);
	while (xchg_pool.n)
		free(xchg_pool.idle[--xchg_pool.n]);
}

static void session_free(struct deferred *d)
{
	struct session *s = container_of(d, struct session, dfr);

	free(s);
}

void sess_shutdown_write(struct session *s, int fd)
{
	if (fd == s->cio.fd && stream_is_tls(&s->cs))
		stream_shutdown(&s->cs);   /* close_notify; the peer's is not waited for */
	shutdown(fd, SHUT_WR);
}

void session_touch(struct session *s)
{
	s->last_ms = loop_now(s->w->loop);
}

void session_upstream_close(struct session *s)
{
	metrics_upstream_close(s->w->metrics, &s->ms);
	io_close(s->w->loop, &s->uio);
	buf_put(s->uin);
	s->uin = NULL;
	s->u_idle = false;
}

void session_exchange_reset(struct session *s)
{
	session_head_put(s->req);
	session_xchg_put(s->x);
	s->req = NULL;
	s->x = NULL;
	buf_put(s->out_u);
	buf_put(s->out_c);
	s->out_u = s->out_c = NULL;
	s->req_ready = s->resp_ready = 0;
	s->status = 0;
	s->reason = NULL;
	s->bytes_up = s->bytes_down = 0;
	dial_reset(&s->dial);
	s->have_egress = false;
	s->tried = 0;
	s->pin = -1;
	s->host[0] = '\0';
	s->port = 0;
	s->has_method = false;
	s->reason_buf[0] = '\0';
	s->dest.family = 0;
	s->code = NULL;
	metrics_request_reset(&s->ms);
}

void session_log(struct session *s)
{
	char client[IPADDR_STRLEN] = "", dest[IPADDR_STRLEN] = "", egress[IPADDR_STRLEN] = "";
	char hostport[300];
	struct ipaddr peer;
	struct jline j;

	uint64_t down = session_payload_down(s);

	usage_count_bytes(&s->use, s->bytes_up, down, true);
	if (!s->status && !s->host[0])
		return;   /* nothing was asked */
	struct metrics_req r = { s->code, s->status, s->socks ? MU_REQ_SOCKS : s->is_connect ? MU_REQ_CONNECT : MU_REQ_FORWARD,
				 session_egress(s), s->bytes_up, down };
	metrics_request_done(s->w->metrics, &s->ms, &r);
	if (s->cfg->log_fd < 0)
		return;
	ipaddr_from_sockaddr((struct sockaddr *)&s->peer, &peer);
	ipaddr_format(&peer, client, sizeof(client));
	if (s->dest.family)
		ipaddr_format(&s->dest, dest, sizeof(dest));
	if (s->have_egress)
		ipaddr_format(&s->pool->addrs[s->egress_idx], egress, sizeof(egress));
	snprintf(hostport, sizeof(hostport), strchr(s->host, ':') ? "[%s]:%u" : "%s:%u", s->host, s->port);

	jline_begin(&j);
	jline_time(&j, "time");
	jline_uint(&j, "id", s->id);
	jline_str(&j, "user", s->user >= 0 ? session_cfg(s)->users[s->user].name : NULL);
	jline_str(&j, "client", client);
	jline_str(&j, "method", s->socks ? "SOCKS5" : s->has_method ? llhttp_method_name(s->method) : NULL);
	jline_str(&j, "destination", s->host[0] ? hostport : NULL);
	jline_str(&j, "resolved", dest[0] ? dest : NULL);
	jline_str(&j, "egress", egress[0] ? egress : NULL);
	jline_int(&j, "status", s->status);
	jline_uint(&j, "bytes_up", s->bytes_up);
	jline_uint(&j, "bytes_down", down);
	jline_uint(&j, "duration_ms", loop_now(s->w->loop) - s->req_start_ms);
	jline_str(&j, "reason", s->reason);
	jline_end(&j);
	jline_write(&j, s->cfg->log_fd);
}

void session_close(struct session *s)
{
	struct worker *w = s->w;

	if (s->state == SESS_DONE)
		return;
	session_log(s);
	metrics_conn_close(w->metrics, &s->ms);
	s->state = SESS_DONE;
	timer_stop(w->loop, &s->timer);
	timer_stop(w->loop, &s->kick);
	stream_free(&s->cs);
	dial_cancel(&s->dial);
	relay_pair_release(&s->relay, &w->pipes);
	io_close(w->loop, &s->cio);
	session_upstream_close(s);
	session_exchange_reset(s);
	buf_put(s->cin);
	s->cin = NULL;
	free(s->pp);
	s->pp = NULL;
	if (s->counted_user)
		atomic_fetch_sub(&s->cfg->user_conns[s->user], 1);
	atomic_fetch_sub(&w->px->conns, 1);
	w->nsessions--;
	DLIST_UNLINK(w->sessions, s);
	cfg_ref_put(s->cfg);
	loop_defer(w->loop, &s->dfr, session_free);
}

void session_count_request(struct session *s)
{
	struct usage_tab *tabs = s->w->px->usage;

	if (tabs && s->user >= 0)
		usage_count_request(&tabs[s->w->id], session_cfg(s)->users[s->user].quota, session_egress(s),
				    &s->use);
}

void session_arm(struct session *s, unsigned ms)
{
	timer_start(s->w->loop, &s->timer, ms);
}



void session_metrics_tick(struct worker *w)
{
	for (struct session *s = w->sessions; s; s = s->next) {
		if (s->state != SESS_TUNNEL && s->state != SESS_FORWARD)
			continue;
		uint64_t down = session_payload_down(s);
		metrics_bytes(w->metrics, &s->ms, session_egress(s), s->bytes_up, down);
		usage_count_bytes(&s->use, s->bytes_up, down, false);
	}
}

void session_close_all(struct worker *w)
{
	while (w->sessions) {
		w->sessions->reason = "proxy stopping";
		session_close(w->sessions);
	}
}

/* ---------------------------------------------------------------- timers */


/* ---------------------------------------------------------------- replies */

void session_reply_flush(struct session *s)
{
	while (buf_pending(s->out_c)) {
		long n = sess_write(s, s->cio.fd, s->out_c->data + s->out_c->off, buf_pending(s->out_c));
		if (n == -EAGAIN) {
			io_want(s->w->loop, &s->cio, EPOLLOUT);
			return;
		}
		if (n < 0) {
			session_close(s);
			return;
		}
		s->out_c->off += (size_t)n;
	}
	/* Lingering close: FIN first, then read until the client's FIN, so unread request
	 * bytes do not make the kernel answer with a reset that destroys the reply. */
	sess_shutdown_write(s, s->cio.fd);
	s->state = SESS_LINGER;
	session_arm(s, 2000);
	io_want(s->w->loop, &s->cio, EPOLLIN);
}

void session_reply_bytes(struct session *s, const void *msg, size_t len, int status, const char *reason)
{
	struct buf *b = buf_get();

	if (b && buf_append(b, msg, len)) {
		buf_put(b);
		b = NULL;
	}
	session_reply(s, b, status, reason);
}

/* The proxy's refusal in SOCKS terms: a reply with the code's REP, then close. */
static void socks_refuse(struct session *s, const char *code, int status)
{
	unsigned char rep[SOCKS_REPLY_MAX];

	session_reply_bytes(s, rep, socks_build_error(code, rep), status, NULL);
}

void session_reply(struct session *s, struct buf *b, int status, const char *reason)
{
	if (s->state == SESS_DONE)
		return;
	s->status = status;
	if (!s->reason)
		s->reason = reason;
	dial_cancel(&s->dial);
	session_upstream_close(s);
	buf_put(s->out_c);
	s->out_c = b;
	s->state = SESS_REPLY;
	session_arm(s, 5000);
	if (!b) {
		session_close(s);
		return;
	}
	session_reply_flush(s);
}

void session_error(struct session *s, int status, const char *code, const char *message)
{
	s->code = code;
	if (s->socks) {
		s->reason = message;
		socks_refuse(s, code, status);
		return;
	}
	session_reply(s, respond_error_build(status, code, message), status, message);
}

void session_error_dup(struct session *s, int status, const char *code, const char *message)
{
	snprintf(s->reason_buf, sizeof(s->reason_buf), "%s", message);
	s->reason = s->reason_buf;
	s->code = code;
	if (s->socks) {
		socks_refuse(s, code, status);
		return;
	}
	session_reply(s, respond_error_build(status, code, message), status, s->reason_buf);
}

void session_json(struct session *s, int status, const char *json, size_t len)
{
	session_reply(s, respond_json_build(status, json, len), status, NULL);
}

void session_linger_read(struct session *s)
{
	char sink[4096];

	for (int i = 0; i < 16; i++) {
		long n = sess_read(s, s->cio.fd, sink, sizeof(sink));
		if (n == -EAGAIN)
			return;
		if (n <= 0)
			break;
	}
	session_close(s);
}

/* ---------------------------------------------------------------- request head */







/* ---------------------------------------------------------------- tunnel */

static void tunnel_env_of(struct session *s, struct tunnel_env *t)
{
	tunnel_env_init(t, &s->relay, &s->cs, s->w->loop, s->w->scratch, &s->w->pipes, s->splice, s->splice_auto);
}

/* The relay moved bytes: end the tunnel on error or when both FINs are through. */
static void tunnel_settle(struct session *s, int rc)
{
	if (rc < 0 && !s->reason)
		s->reason = (rc == -ECONNRESET || rc == -EPIPE) ? "connection reset" : "relay error";
	if (rc)
		session_close(s);
}

void session_tunnel_start(struct session *s)
{
	struct tunnel_env t;

	tunnel_env_of(s, &t);
	tunnel_settle(s, relay_start(&s->relay, &t));
}

void session_tunnel_event(struct session *s, bool from_client, uint32_t revents)
{
	struct tunnel_env t;

	session_touch(s);
	tunnel_env_of(s, &t);
	tunnel_settle(s, relay_event(&s->relay, &t, from_client, revents));
}

/* ---------------------------------------------------------------- events */






