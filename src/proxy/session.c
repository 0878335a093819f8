/* session.c: a client connection's life and the dispatch of its events: accept, read a request
 * head (or SOCKS5), hand it to admission (admit.c), dial (route.c), then tunnel (CONNECT) or
 * forward (forward.c); the proxy's own replies, HTTP or SOCKS5, and one log line per request or
 * tunnel. States are in session.h. */
#include "proxy/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/host.h"
#include "proxy/fleet.h"
#include "net/sock.h"
#include "proxy/relay.h"
#include "proxy/respond.h"

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents);
static void session_client_event(struct loop *loop, struct session *s, uint32_t revents);
static void session_io_upstream(struct loop *loop, struct io *io, uint32_t revents);
static void session_timer(struct loop *loop, struct timer *t);
static void session_kick(struct loop *loop, struct timer *t);

/* ---------------------------------------------------------------- life cycle */

#define SESS_POOL_MAX 64   /* per thread: about the requests in flight at once on one worker */

static _Thread_local struct http_head *head_pool[SESS_POOL_MAX];
static _Thread_local unsigned head_pooled;
static _Thread_local struct http_exchange *xchg_pool[SESS_POOL_MAX];
static _Thread_local unsigned xchg_pooled;

struct http_head *session_head_get(void)
{
	return head_pooled ? head_pool[--head_pooled] : malloc(sizeof(struct http_head));
}

void session_head_put(struct http_head *h)
{
	if (h && head_pooled < SESS_POOL_MAX)
		head_pool[head_pooled++] = h;
	else
		free(h);
}

struct http_exchange *session_xchg_get(void)
{
	return xchg_pooled ? xchg_pool[--xchg_pooled] : malloc(sizeof(struct http_exchange));
}

void session_xchg_put(struct http_exchange *x)
{
	if (x && xchg_pooled < SESS_POOL_MAX)
		xchg_pool[xchg_pooled++] = x;
	else
		free(x);
}

void session_pool_trim(void)
{
	while (head_pooled)
		free(head_pool[--head_pooled]);
	while (xchg_pooled)
		free(xchg_pool[--xchg_pooled]);
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
	struct proxy *px = s->w->px;
	char client[IPADDR_STRLEN] = "", dest[IPADDR_STRLEN] = "", egress[IPADDR_STRLEN] = "";
	char hostport[300];
	struct ipaddr peer;
	struct jline j;

	/* the proxy's own "200 Connection established" is not payload */
	uint64_t down = s->is_connect && !s->socks && s->status == 200 && s->bytes_down >= 39
			? s->bytes_down - 39 : s->bytes_down;

	fleet_count_bytes(s, true);
	if (!s->status && !s->host[0])
		return;   /* nothing was asked */
	struct metrics_req r = { s->code, s->status, s->socks ? MU_REQ_SOCKS : s->is_connect ? MU_REQ_CONNECT : MU_REQ_FORWARD,
				 session_egress(s), s->bytes_up, down };
	metrics_request_done(s->w->metrics, &s->ms, &r);
	if (px->log_fd < 0)
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
	jline_write(&j, px->log_fd);
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
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	cfg_ref_put(s->cfg);
	loop_defer(w->loop, &s->dfr, session_free);
}

void session_arm(struct session *s, unsigned ms)
{
	timer_start(s->w->loop, &s->timer, ms);
}

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
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
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

void session_metrics_tick(struct worker *w)
{
	for (struct session *s = w->sessions; s; s = s->next) {
		if (s->state != SESS_TUNNEL && s->state != SESS_FORWARD)
			continue;
		/* the proxy's own "200 Connection established" is not payload */
		bool ok_line = s->is_connect && !s->socks && s->status == 200;
		metrics_bytes(w->metrics, &s->ms, session_egress(s), s->bytes_up,
			      ok_line ? (s->bytes_down >= 39 ? s->bytes_down - 39 : 0) : s->bytes_down);
		fleet_count_bytes(s, false);
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

/* ---------------------------------------------------------------- replies */

static void reply_flush(struct session *s)
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
	reply_flush(s);
}

void session_error(struct session *s, int status, const char *code, const char *message)
{
	s->code = code;
	if (s->socks) {
		s->reason = message;
		socks_reply_error(s, code, status);
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
		socks_reply_error(s, code, status);
		return;
	}
	session_reply(s, respond_error_build(status, code, message), status, s->reason_buf);
}

void session_json(struct session *s, int status, const char *json, size_t len)
{
	session_reply(s, respond_json_build(status, json, len), status, NULL);
}

static void linger_read(struct session *s)
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

/* "http://host[:port]/path?q" -> host, port, and where the origin-form target starts. */
static const char *parse_absolute(struct session *s, const char *url, size_t len,
				  const char **path, size_t *pathlen)
{
	struct host h;
	const char *err;

	if (len >= 8 && !strncasecmp(url, "https://", 8))
		return "https:// URLs are not forwarded: use CONNECT (with absolute-form https the "
		       "request, API key included, crosses the proxy hop in cleartext)";
	if (len < 7 || strncasecmp(url, "http://", 7))
		return url[0] == '/' ? "this is a proxy: send absolute-form requests or CONNECT"
				     : "unsupported URL scheme";
	const char *a = url + 7, *end = url + len;
	const char *p = a;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	if (memchr(a, '@', (size_t)(p - a)))
		return "credentials in the URL are not forwarded";
	err = authority_parse(a, (size_t)(p - a), &h, &s->port, 80);
	if (err)
		return err;
	if (h.kind != HOST_IP) {
		size_t n = strnlen(h.name, sizeof(s->host) - 1);   /* no printf per request */
		memcpy(s->host, h.name, n);
		s->host[n] = '\0';
	} else {
		ipaddr_format(&h.ip, s->host, sizeof(s->host));
		dial_set_addr(&s->dial, &h.ip);
	}
	*path = p;
	*pathlen = (size_t)(end - p);
	return NULL;
}

/* GET /iplock/pool (origin form, to the proxy itself, authenticated): the caller's egress pool,
 * so `iplock verify` can pin and check every address. */
static void pool_describe(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);
	char json[2048];
	size_t n = 0;

	n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"user\": ");
	if (s->user >= 0)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "\"%s\"", c->users[s->user].name);
	else
		n += (size_t)snprintf(json + n, sizeof(json) - n, "null");
	n += (size_t)snprintf(json + n, sizeof(json) - n, ", \"policy\": \"%s\", \"egress\": [",
			      egress_policy_name(s->pool->policy));
	for (size_t i = 0; i < s->pool->n && n < sizeof(json) - 64; i++) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&s->pool->addrs[i], ip, sizeof(ip));
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\"", i ? ", " : "", ip);
	}
	n += (size_t)snprintf(json + n, sizeof(json) - n,
			      "], \"pin\": {\"header\": \"X-Iplock-Egress\", \"username_option\": \"+egress=N\"}}\n");
	session_json(s, 200, json, n);
}

static void request_start(struct session *s)
{
	const char *base = s->cin->data + s->cin->off;
	const char *url = base + s->req->url_off;
	const char *err, *path = NULL;
	size_t pathlen = 0;
	struct host h;

	s->method = s->req->parser.method;
	s->has_method = true;
	s->is_connect = s->method == HTTP_CONNECT;
	s->req_start_ms = loop_now(s->w->loop);
	if (s->is_connect) {
		err = authority_parse(url, s->req->url_len, &h, &s->port, 0);
		if (!err) {
			if (h.kind == HOST_IP) {
				ipaddr_format(&h.ip, s->host, sizeof(s->host));
				dial_set_addr(&s->dial, &h.ip);
			} else {
				snprintf(s->host, sizeof(s->host), "%s", h.name);
			}
		}
	} else if (s->req->url_len == 12 && !memcmp(url, "/iplock/pool", 12)) {
		if (session_admit_request(s, true))
			pool_describe(s);
		return;
	} else {
		err = parse_absolute(s, url, s->req->url_len, &path, &pathlen);
	}
	if (err) {
		session_error_dup(s, 400, "bad_request_target", err);
		return;
	}
	if (!s->is_connect && (s->req->parser.upgrade || (s->req->parser.flags & F_UPGRADE))) {
		session_error(s, 400, "upgrade_not_supported",
			      "protocol upgrades are not forwarded: use CONNECT");
		return;
	}
	if (!session_admit_request(s, false))
		return;
	if (!s->is_connect && session_upstream_head(s, path, pathlen)) {
		session_error(s, 431, "head_too_large", "request head too large after rewriting");
		return;
	}
	/* a kept-alive upstream serves the next request to the same place from the same address */
	if (!s->is_connect && s->u_idle && !strcmp(s->u_host, s->host) && s->u_port == s->port &&
	    (s->pin == -1 || (size_t)s->pin == s->u_egress + 1)) {
		s->have_egress = true;
		s->egress_idx = s->u_egress;
		s->dest = s->u_dest;
		s->upstream_reused = true;
		s->u_idle = false;
		fleet_count_request(s);
		s->state = SESS_FORWARD;
		session_forward(s);
		return;
	}
	if (s->u_idle)
		session_upstream_close(s);
	session_route(s);
}

void session_head_continue(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);

	if (!buf_pending(s->cin))
		return;
	if (!s->req) {
		if (!(s->req = session_head_get())) {
			session_close(s);
			return;
		}
		http_head_init(s->req, HTTP_REQUEST, c->max_headers);
	}
	size_t avail = buf_pending(s->cin);
	size_t cap = c->max_header_bytes < BUF_SIZE ? c->max_header_bytes : BUF_SIZE;
	enum http_parse_result r = http_head_parse(s->req, s->cin->data + s->cin->off,
						   avail < cap ? avail : cap);
	if (r == HTTP_MORE) {
		if (avail >= cap) {
			session_error(s, 431, "head_too_large", "request head too large");
			return;
		}
		return;
	}
	if (r == HTTP_ERROR) {
		char msg[160];
		snprintf(msg, sizeof(msg), "malformed request: %s", s->req->err);
		session_error_dup(s, s->req->err_status, s->req->err_status == 431 ? "head_too_large"
							 : "bad_request", msg);
		return;
	}
	request_start(s);
}

static void head_read(struct session *s)
{
	if (!s->cin && !(s->cin = buf_get())) {
		session_close(s);
		return;
	}
	buf_compact(s->cin);
	if (buf_room(s->cin) == 0) {
		session_head_continue(s);
		return;
	}
	long n = sess_read(s, s->cio.fd, s->cin->data + s->cin->len, buf_room(s->cin));
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (buf_pending(s->cin) || !s->head_started)
			s->reason = n == 0 ? "client closed" : "client error";
		session_close(s);
		return;
	}
	s->cin->len += (size_t)n;
	if (!s->head_started && !s->has_method && (unsigned char)s->cin->data[s->cin->off] == 5 &&
	    session_cfg(s)->socks_sniff) {
		/* a SOCKS5 greeting on the HTTP port: no HTTP method starts with byte 5 */
		s->socks = true;
		s->head_started = true;
		s->state = SESS_SOCKS;
		s->pool = &((struct proxy_config *)session_cfg(s))->egress;
		socks_read(s);
		return;
	}
	if (!s->head_started) {
		/* a kept-alive connection waits under the idle timeout, a head under the header one */
		s->head_started = true;
		session_arm(s, session_cfg(s)->header_timeout_ms);
	}
	session_head_continue(s);
}

static void socks_input(struct session *s)
{
	if (!s->cin && !(s->cin = buf_get())) {
		session_close(s);
		return;
	}
	buf_compact(s->cin);
	long n = sess_read(s, s->cio.fd, s->cin->data + s->cin->len, buf_room(s->cin));
	if (n == -EAGAIN)
		return;
	if (n <= 0 || buf_room(s->cin) == 0) {
		s->reason = "client closed during SOCKS5 negotiation";
		session_close(s);
		return;
	}
	s->cin->len += (size_t)n;
	socks_read(s);
}

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

static void tunnel_event(struct session *s, bool from_client, uint32_t revents)
{
	struct tunnel_env t;

	session_touch(s);
	tunnel_env_of(s, &t);
	tunnel_settle(s, relay_event(&s->relay, &t, from_client, revents));
}

/* ---------------------------------------------------------------- events */

static void tls_handshake(struct session *s)
{
	int rc = stream_handshake(&s->cs);

	if (rc == 1) {
		s->state = SESS_HEAD;
		io_want(s->w->loop, &s->cio, EPOLLIN);
		if (stream_has_input(&s->cs))
			head_read(s);
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

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents)
{
	struct session *s = container_of(io, struct session, cio);

	session_client_event(loop, s, revents);
	if (s->state != SESS_DONE && stream_pending(&s->cs) && (s->cio.want & EPOLLIN))
		timer_start(loop, &s->kick, 0);
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
		head_read(s);
		break;
	case SESS_SOCKS:
		socks_input(s);
		break;
	case SESS_TUNNEL:
		tunnel_event(s, true, revents);
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
		reply_flush(s);
		break;
	case SESS_LINGER:
		linger_read(s);
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

static void session_io_upstream(struct loop *loop, struct io *io, uint32_t revents)
{
	struct session *s = container_of(io, struct session, uio);

	switch (s->state) {
	case SESS_CONNECT:
		dial_io_events(&s->dial, revents);
		break;
	case SESS_TUNNEL:
		tunnel_event(s, false, revents);
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
