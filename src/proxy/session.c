/* session.c: a client connection's life: read a request head, authenticate, check the
 * destination, resolve, connect from an egress address, then tunnel (CONNECT) or forward
 * (absolute-form HTTP) and log one line per request or tunnel. States are in session.h. */
#include "proxy/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/bug.h"
#include "core/log.h"
#include "http/hop.h"
#include "net/host.h"
#include "net/sock.h"
#include "proxy/auth.h"
#include "proxy/respond.h"

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents);
static void session_client_event(struct loop *loop, struct session *s, uint32_t revents);
static void session_io_upstream(struct loop *loop, struct io *io, uint32_t revents);
static void session_timer(struct loop *loop, struct timer *t);
static void head_continue(struct session *s);
static const struct dial_ops session_dial_ops;
static void forward_pump(struct session *s);

static const struct proxy_config *cfg_of(const struct session *s) { return s->cfg->cfg; }

/* ---------------------------------------------------------------- life cycle */

static void session_free(struct deferred *d)
{
	struct session *s = container_of(d, struct session, dfr);

	free(s);
}

void sess_shutdown_write(struct session *s, int fd)
{
	if (s->ssl && fd == s->cio.fd)
		SSL_shutdown(s->ssl);   /* close_notify; the peer's is not waited for */
	shutdown(fd, SHUT_WR);
}

void session_touch(struct session *s)
{
	s->last_ms = loop_now(s->w->loop);
}

static void upstream_close(struct session *s)
{
	metrics_upstream_close(s);
	io_close(s->w->loop, &s->uio);
	buf_put(s->uin);
	s->uin = NULL;
	s->u_idle = false;
}

static void exchange_reset(struct session *s)
{
	free(s->req);
	free(s->resp);
	s->req = s->resp = NULL;
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
	metrics_request_reset(s);
}

static void access_log(struct session *s)
{
	struct proxy *px = s->w->px;
	char client[IPADDR_STRLEN] = "", dest[IPADDR_STRLEN] = "", egress[IPADDR_STRLEN] = "";
	char hostport[300];
	struct ipaddr peer;
	struct jline j;

	metrics_request_done(s);
	if (px->log_fd < 0 || (!s->status && !s->host[0]))
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
	jline_str(&j, "user", s->user >= 0 ? cfg_of(s)->users[s->user].name : NULL);
	jline_str(&j, "client", client);
	jline_str(&j, "method", s->socks ? "SOCKS5" : s->has_method ? llhttp_method_name(s->method) : NULL);
	jline_str(&j, "destination", s->host[0] ? hostport : NULL);
	jline_str(&j, "resolved", dest[0] ? dest : NULL);
	jline_str(&j, "egress", egress[0] ? egress : NULL);
	jline_int(&j, "status", s->status);
	jline_uint(&j, "bytes_up", s->bytes_up);
	/* the proxy's own "200 Connection established" is not payload */
	jline_uint(&j, "bytes_down", s->is_connect && !s->socks && s->status == 200 && s->bytes_down >= 39
		   ? s->bytes_down - 39 : s->bytes_down);
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
	access_log(s);
	metrics_conn_close(s);
	s->state = SESS_DONE;
	timer_stop(w->loop, &s->timer);
	timer_stop(w->loop, &s->kick);
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	dial_cancel(&s->dial);
	relay_release(s);
	io_close(w->loop, &s->cio);
	upstream_close(s);
	exchange_reset(s);
	buf_put(s->cin);
	s->cin = NULL;
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

static void timer_arm(struct session *s, unsigned ms)
{
	timer_start(s->w->loop, &s->timer, ms);
}

static void session_kick(struct loop *loop, struct timer *t);

void session_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool socks, bool tls)
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
	s->splice = !strcmp(cfg_of(s)->relay, "splice");
	s->splice_auto = !strcmp(cfg_of(s)->relay, "auto");
	relay_pair_init(&s->relay, &s->cio, &s->uio, &s->bytes_up, &s->bytes_down);
	s->start_ms = s->req_start_ms = s->last_ms = loop_now(w->loop);
	io_init(&s->cio, fd, session_io_client);
	io_init(&s->uio, -1, session_io_upstream);
	dial_init(&s->dial, w->loop, w->dns, &session_dial_ops, s, &s->uio, session_io_upstream,
		  cfg_of(s)->connect_timeout_ms);
	timer_init(&s->timer, session_timer);
	timer_init(&s->kick, session_kick);
	w->nsessions++;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	metrics_conn_open(s);
	if (cfg_of(s)->max_conns && atomic_load(&w->px->conns) > cfg_of(s)->max_conns) {
		respond_error(s, 503, "too_many_connections", "the proxy is at its connection limit");
		return;
	}
	if (tls) {
		s->ssl = s->cfg->tls_ctx ? SSL_new(s->cfg->tls_ctx) : NULL;
		if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
			s->reason = "cannot start TLS";
			session_close(s);
			return;
		}
		SSL_set_accept_state(s->ssl);
		s->splice = s->splice_auto = false;   /* bytes must pass through OpenSSL */
		s->state = SESS_TLS;
	}
	if (socks) {
		s->socks = true;
		s->head_started = true;
		s->state = SESS_SOCKS;
		s->pool = &((struct proxy_config *)cfg_of(s))->egress;
		if (!(s->cin = buf_get())) {
			session_close(s);
			return;
		}
	}
	timer_arm(s, cfg_of(s)->header_timeout_ms);
	io_want(w->loop, &s->cio, EPOLLIN);
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
	const struct proxy_config *c = cfg_of(s);

	switch (s->state) {
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
			respond_error(s, 408, "header_timeout", "request head not received in time");
		} else {
			s->reason = "idle";
			session_close(s);
		}
		return;
	case SESS_RESOLVE:
	case SESS_CONNECT:
		respond_error(s, 504, "connect_timeout", "destination did not answer in time");
		return;
	case SESS_TUNNEL:
	case SESS_FORWARD: {
		uint64_t idle = loop_now(loop) - s->last_ms;
		if (idle < c->idle_timeout_ms) {
			timer_arm(s, (unsigned)(c->idle_timeout_ms - idle));
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
	timer_arm(s, 2000);
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
	upstream_close(s);
	buf_put(s->out_c);
	s->out_c = b;
	s->state = SESS_REPLY;
	timer_arm(s, 5000);
	if (!b) {
		session_close(s);
		return;
	}
	reply_flush(s);
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

static const char *hdr_val(const struct session *s, int i, size_t *len)
{
	*len = s->req->hdrs[i].val_len;
	return s->cin->data + s->cin->off + s->req->hdrs[i].val_off;
}

/* The proxy's own field on top of the shared hop-by-hop rule (http/hop.c). */
static bool skip_own(void *arg, const char *name, size_t len)
{
	(void)arg;
	return len == 15 && !strncasecmp(name, "x-iplock-egress", 15);
}

/* ... and Host, when the proxy writes it from the request target. */
static bool skip_own_host(void *arg, const char *name, size_t len)
{
	return skip_own(arg, name, len) || (len == 4 && !strncasecmp(name, "host", 4));
}

/* Copy a head's end-to-end fields to out. */
static int copy_fields(const struct http_head *h, const char *base, struct buf *out, bool skip_host)
{
	return http_fields_copy(h, base, out, skip_host ? skip_own_host : skip_own, NULL);
}

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
	snprintf(s->host, sizeof(s->host), "%s", h.kind == HOST_IP ? "" : h.name);
	if (h.kind == HOST_IP) {
		ipaddr_format(&h.ip, s->host, sizeof(s->host));
		dial_set_addr(&s->dial, &h.ip);
	}
	*path = p;
	*pathlen = (size_t)(end - p);
	return NULL;
}

static int build_upstream_head(struct session *s, const char *path, size_t pathlen)
{
	const char *base = s->cin->data + s->cin->off;
	struct buf *o = buf_get();
	char line[320];

	if (!o)
		return -ENOMEM;
	s->out_u = o;
	const char *m = llhttp_method_name(s->method);
	if (buf_append(o, m, strlen(m)) || buf_append(o, " ", 1))
		return -ENOSPC;
	if (pathlen == 0 || path[0] != '/') {
		if (buf_append(o, "/", 1))
			return -ENOSPC;
	}
	if (buf_append(o, path, pathlen))
		return -ENOSPC;
	int n = snprintf(line, sizeof(line), " HTTP/%d.%d\r\n", s->req->parser.http_major,
			 s->req->parser.http_minor);
	if (buf_append(o, line, (size_t)n))
		return -ENOSPC;
	/* Host comes from the request target, whatever the client's Host field said */
	bool v6 = strchr(s->host, ':') != NULL;
	if (s->port == 80)
		n = snprintf(line, sizeof(line), v6 ? "Host: [%s]\r\n" : "Host: %s\r\n", s->host);
	else
		n = snprintf(line, sizeof(line), v6 ? "Host: [%s]:%u\r\n" : "Host: %s:%u\r\n", s->host, s->port);
	if (buf_append(o, line, (size_t)n))
		return -ENOSPC;
	if (copy_fields(s->req, base, o, true) || buf_append(o, "\r\n", 2))
		return -ENOSPC;
	return 0;
}

/* X-Iplock-Egress: a 1-based pool index or a pool address; must agree with the username option */
static const char *parse_pin_header(struct session *s)
{
	size_t len;
	int pin, i = http_head_find(s->req, s->cin->data + s->cin->off, "x-iplock-egress");

	if (i < 0)
		return NULL;
	const char *v = hdr_val(s, i, &len);
	const char *err = egress_pin_parse(s->pool, v, len, &pin);
	if (err)
		return err;
	if (s->pin != -1 && s->pin != pin)
		return "X-Iplock-Egress disagrees with the username option";
	s->pin = pin;
	return NULL;
}

/* Authentication, limits and policy: everything decided before any byte leaves. */
/* Credentials (a "Basic ..." value) -> user, pin, pool, per-user cap. 0, -EACCES or -EBUSY. */
int session_authenticate(struct session *s, const char *basic, size_t len)
{
	const struct proxy_config *c = cfg_of(s);
	struct auth_result ar;
	struct ipaddr client;
	uint64_t now = loop_now(s->w->loop);

	ipaddr_from_sockaddr((struct sockaddr *)&s->peer, &client);
	bool slow_ok = !auth_client_throttled(s->w->auth, &client, now);
	int rc = auth_check_basic_ex(c->users, c->nusers, c->generation, s->w->auth, basic, len, slow_ok, &ar);
	if (rc == -EAGAIN)
		return -ETIMEDOUT;   /* throttled: no password check for this address for now */
	if (rc) {
		auth_client_failed(s->w->auth, &client, now);
		return -EACCES;
	}
	if (s->user != ar.user && s->counted_user) {
		atomic_fetch_sub(&s->cfg->user_conns[s->user], 1);
		s->counted_user = false;
	}
	s->user = ar.user;
	s->pin = ar.egress_pin;
	const struct proxy_user *u = &c->users[s->user];
	if (u->egress)
		s->pool = u->egress;
	metrics_user_set(s);
	if (!s->counted_user) {
		unsigned cap = u->max_conns ? u->max_conns : c->max_conns_per_user;
		unsigned open = atomic_fetch_add(&s->cfg->user_conns[s->user], 1) + 1;
		s->counted_user = true;
		if (cap && open > cap)
			return -EBUSY;
	}
	return 0;
}

/* Port policy and the user's destination rules, for any protocol (s->host, s->port set). */
bool session_admit_destination(struct session *s)
{
	const struct proxy_config *c = cfg_of(s);

	if (s->pin != -1 && (size_t)s->pin > s->pool->n) {
		respond_error(s, 400, "bad_egress_pin", "egress pin is outside your egress pool");
		return false;
	}
	const struct portset *ports = s->is_connect ? &c->connect_ports : &c->http_ports;
	if (!portset_has(ports, s->port)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s to port %u is not allowed",
			 s->is_connect ? "CONNECT" : "forwarding", s->port);
		respond_error_dup(s, 403, "port_not_allowed", msg);
		return false;
	}
	if (s->user >= 0) {
		const struct proxy_user *u = &c->users[s->user];
		if (!dest_rules_allow(u->allow, u->nallow, s->host, s->port)) {
			respond_error(s, 403, "destination_not_allowed",
				      "this destination is not in your allow list");
			return false;
		}
	}
	return true;
}

/* Authentication, limits and policy: everything decided before any byte leaves. */
static bool request_admit(struct session *s, bool local)
{
	const struct proxy_config *c = cfg_of(s);
	const char *base = s->cin->data + s->cin->off;

	s->pool = &((struct proxy_config *)c)->egress;
	if (c->auth_required) {
		int i = http_head_find(s->req, base, "proxy-authorization");
		if (i < 0 && local)   /* the proxy's own endpoints also take plain Authorization */
			i = http_head_find(s->req, base, "authorization");
		int rc = -EACCES;
		if (i >= 0) {
			size_t len;
			const char *v = hdr_val(s, i, &len);
			rc = session_authenticate(s, v, len);
		}
		if (rc == -EBUSY) {
			respond_error(s, 503, "too_many_connections", "this user is at its connection limit");
			return false;
		}
		if (rc == -ETIMEDOUT) {
			respond_error(s, 407, "proxy_auth_throttled",
				      "too many failed proxy logins from this address: try again in a minute");
			return false;
		}
		if (rc) {
			respond_error(s, 407, i < 0 ? "proxy_auth_required" : "proxy_auth_invalid",
				      i < 0 ? "proxy authentication required"
					    : "proxy credentials are not valid");
			return false;
		}
	}
	metrics_user_set(s);   /* with auth = none: the "" user */
	if (local)
		return true;
	const char *pin_err = parse_pin_header(s);
	if (pin_err) {
		respond_error_dup(s, 400, "bad_egress_pin", pin_err);
		return false;
	}
	return session_admit_destination(s);
}

/* Every resolved address is checked; one refused address refuses the request (fail closed:
 * a name with one private and one public record is not quietly sent to the public one). */
static bool destination_check(struct session *s)
{
	const struct proxy_config *c = cfg_of(s);

	const struct ipaddr *addrs = s->dial.addrs;

	for (unsigned i = 0; i < s->dial.naddrs; i++) {
		const char *range = ipaddr_check_destination(&addrs[i], c->allow_destinations);
		bool self = false;
		for (size_t l = 0; l < c->nlisten && !range; l++)
			if (s->port == c->listen[l].port &&
			    (ipaddr_equal(&addrs[i], &c->listen[l].ip) ||
			     (c->listen[l].ip.family == addrs[i].family &&
			      !memcmp(c->listen[l].ip.a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16))))
				self = true;
		if (range || self) {
			char ip[IPADDR_STRLEN], msg[200];
			ipaddr_format(&addrs[i], ip, sizeof(ip));
			if (self)
				snprintf(msg, sizeof(msg), "destination %s is this proxy", ip);
			else
				snprintf(msg, sizeof(msg), "destination resolves to %s, in %s, which is not allowed", ip, range);
			s->dest = addrs[i];
			respond_error_dup(s, 403, "destination_forbidden", msg);
			return false;
		}
	}
	return true;
}

/* A real lookup starts (not a cache hit). */
static void dial_resolving(void *ctx, struct dial *d)
{
	struct session *s = ctx;

	(void)d;
	s->state = SESS_RESOLVE;
	/* client interest stays as it is: an event while resolving turns it off (saves epoll_ctl) */
	metrics_dns_start(s);
}

static bool dial_resolved(void *ctx, struct dial *d, const struct dns_result *res)
{
	struct session *s = ctx;

	(void)d;
	metrics_dns_done(s);
	if (res->status) {
		respond_error(s, res->status == -ENOENT ? 502 : 504, "dns_failure",
			      res->status == -ENOENT ? "destination name does not resolve"
						     : "DNS lookup failed or timed out");
		return false;
	}
	if (!destination_check(s))
		return false;
	s->state = SESS_CONNECT;
	return true;
}

void session_route(struct session *s)
{
	/* the dial times the resolve and each attempt (connect_timeout) */
	timer_stop(s->w->loop, &s->timer);
	if (s->dial.naddrs) {   /* an IP literal */
		if (destination_check(s)) {
			s->state = SESS_CONNECT;
			dial_connect(&s->dial, s->port);
		}
		return;
	}
	dial_resolve(&s->dial, s->host, s->port);
}

/* GET /iplock/pool (origin form, to the proxy itself, authenticated): the caller's egress pool,
 * so `iplock verify` can pin and check every address. */
static void pool_describe(struct session *s)
{
	const struct proxy_config *c = cfg_of(s);
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
	respond_json(s, 200, json, n);
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
		if (request_admit(s, true))
			pool_describe(s);
		return;
	} else {
		err = parse_absolute(s, url, s->req->url_len, &path, &pathlen);
	}
	if (err) {
		respond_error_dup(s, 400, "bad_request_target", err);
		return;
	}
	if (!s->is_connect && (s->req->parser.upgrade || (s->req->parser.flags & F_UPGRADE))) {
		respond_error(s, 400, "upgrade_not_supported",
			      "protocol upgrades are not forwarded: use CONNECT");
		return;
	}
	if (!request_admit(s, false))
		return;
	if (!s->is_connect && build_upstream_head(s, path, pathlen)) {
		respond_error(s, 431, "head_too_large", "request head too large after rewriting");
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
		s->state = SESS_FORWARD;
		forward_pump(s);
		return;
	}
	if (s->u_idle)
		upstream_close(s);
	session_route(s);
}

static void head_continue(struct session *s)
{
	const struct proxy_config *c = cfg_of(s);

	if (!buf_pending(s->cin))
		return;
	if (!s->req) {
		s->req = malloc(sizeof(*s->req));
		if (!s->req) {
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
			respond_error(s, 431, "head_too_large", "request head too large");
			return;
		}
		return;
	}
	if (r == HTTP_ERROR) {
		char msg[160];
		snprintf(msg, sizeof(msg), "malformed request: %s", s->req->err);
		respond_error_dup(s, s->req->err_status, s->req->err_status == 431 ? "head_too_large"
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
		head_continue(s);
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
	    cfg_of(s)->socks_sniff) {
		/* a SOCKS5 greeting on the HTTP port: no HTTP method starts with byte 5 */
		s->socks = true;
		s->head_started = true;
		s->state = SESS_SOCKS;
		s->pool = &((struct proxy_config *)cfg_of(s))->egress;
		socks_read(s);
		return;
	}
	if (!s->head_started) {
		/* a kept-alive connection waits under the idle timeout, a head under the header one */
		s->head_started = true;
		timer_arm(s, cfg_of(s)->header_timeout_ms);
	}
	head_continue(s);
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

/* ---------------------------------------------------------------- connect */

static void connected(struct session *s)
{
	const struct proxy_config *c = cfg_of(s);

	metrics_connected(s);
	timer_arm(s, c->idle_timeout_ms);
	session_touch(s);
	if (s->is_connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		size_t skip = s->socks ? 0 : s->req->head_len;
		size_t early = buf_pending(s->cin) - skip;

		if (s->socks) {
			if (socks_reply_success(s)) {
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
		free(s->req);
		s->req = NULL;
		s->method = HTTP_CONNECT;
		s->state = SESS_TUNNEL;
		relay_start(s);
		return;
	}
	s->state = SESS_FORWARD;
	forward_pump(s);
}

static bool egress_local_failure(int err)
{
	return err == -EADDRNOTAVAIL || err == -ENETUNREACH || err == -EADDRINUSE ||
	       err == -EAFNOSUPPORT || err == -EINVAL || err == -EPERM || err == -EACCES;
}

/* The bind hook: an egress address of the pool for this attempt. */
static int dial_source(void *ctx, struct dial *d, struct sockaddr_storage *src, socklen_t *srclen)
{
	struct session *s = ctx;
	size_t idx;

	s->state = SESS_CONNECT;
	if (egress_pick(s->pool, s->host, s->pin, loop_now(s->w->loop), s->tried, &idx)) {
		respond_error(s, 502, "no_egress", s->pin != -1
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
	metrics_connect_start(s);
	return 0;
}

static enum dial_next dial_failed(void *ctx, struct dial *d, int err, bool bind_failed, bool async)
{
	struct session *s = ctx;
	const struct proxy_config *c = cfg_of(s);

	(void)d;
	metrics_connect_failed(s);
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

static void dial_connected(void *ctx, struct dial *d)
{
	(void)d;
	connected(ctx);
}

static void dial_gave_up(void *ctx, struct dial *d, int err, enum dial_end end)
{
	struct session *s = ctx;

	(void)d;
	switch (end) {
	case DIAL_END_TIMEOUT:
		respond_error(s, 504, "connect_timeout", "destination did not answer in time");
		return;
	case DIAL_END_DNS:
		respond_error(s, 502, "dns_failure", "cannot start a DNS lookup");
		return;
	case DIAL_END_ASYNC:
		respond_error(s, 502, err == -ECONNREFUSED ? "connect_refused" : "connect_failed",
			      err == -ECONNREFUSED ? "destination refused the connection" : "destination unreachable");
		return;
	case DIAL_END_SYNC:
		break;
	}
	respond_error(s, err == -ETIMEDOUT ? 504 : 502,
		      err == -ECONNREFUSED ? "connect_refused" : err == -ENETUNREACH ? "network_unreachable" : "connect_failed",
		      err == -ECONNREFUSED ? "destination refused the connection"
		      : err == -EAFNOSUPPORT ? "no egress address of the destination's address family"
		      : "destination unreachable");
}

static const struct dial_ops session_dial_ops = {
	.resolving = dial_resolving,
	.resolved = dial_resolved,
	.source = dial_source,
	.failed = dial_failed,
	.connected = dial_connected,
	.gave_up = dial_gave_up,
};

/* ---------------------------------------------------------------- forwarding */

static bool resp_has_no_body(const struct session *s)
{
	int st = s->resp->parser.status_code;

	return s->method == HTTP_HEAD || st == 204 || st == 304 || (st >= 100 && st < 200);
}

static int build_response_head(struct session *s)
{
	const char *base = s->uin->data + s->uin->off;
	struct buf *o = buf_get();
	char line[128];
	size_t rlen;

	if (!o)
		return -ENOMEM;
	buf_put(s->out_c);
	s->out_c = o;
	/* the proxy's own version (RFC 9110 2.5), then the status code and reason as received */
	const char *eol = memchr(base, '\n', s->resp->head_len);
	const char *sp = memchr(base, ' ', (size_t)(eol - base));
	if (BUG_ON(!eol || !sp)) /* llhttp accepted "HTTP/x.y SP" and a line end */
		return -EPROTO;
	rlen = (size_t)(eol - sp) + 1;
	if (buf_append(o, "HTTP/1.1", 8) || buf_append(o, sp, rlen))
		return -ENOSPC;
	if (copy_fields(s->resp, base, o, false))
		return -ENOSPC;
	int st = s->resp->parser.status_code;
	if (st >= 200 && s->close_after) {
		int n = snprintf(line, sizeof(line), "Connection: close\r\n");
		if (buf_append(o, line, (size_t)n))
			return -ENOSPC;
	}
	return buf_append(o, "\r\n", 2);
}

static bool flush_buf(struct session *s, struct buf *b, int fd, bool *err)
{
	while (buf_pending(b)) {
		long n = sess_write(s, fd, b->data + b->off, buf_pending(b));
		if (n == -EAGAIN)
			return false;
		if (n < 0) {
			*err = true;
			return false;
		}
		b->off += (size_t)n;
	}
	(void)s;
	return true;
}

/* Framed body bytes from in to fd. Returns false on a hard error. */
static bool body_move(struct session *s, struct http_head *h, struct buf **inp, size_t *ready,
		      int src, int dst, uint64_t *count, enum fwd_phase *phase, bool *src_eof)
{
	struct buf *in = *inp;

	for (int round = 0; round < 16; round++) {
		while (*ready) {
			long n = sess_write(s, dst, in->data + in->off, *ready);
			if (n == -EAGAIN)
				return true;
			if (n < 0)
				return false;
			in->off += (size_t)n;
			*ready -= (size_t)n;
			*count += (uint64_t)n;
		}
		if (h->body_done) {
			*phase = FWD_DONE;
			return true;
		}
		if (!buf_pending(in)) {
			in->off = in->len = 0;
			long n = sess_read(s, src, in->data, in->cap);
			if (n == -EAGAIN)
				return true;
			if (n < 0)
				return false;
			if (n == 0) {
				*src_eof = true;
				if (http_body_eof(h) == HTTP_DONE) {
					*phase = FWD_DONE;
					return true;
				}
				return false;
			}
			in->len = (size_t)n;
		}
		size_t consumed;
		enum http_parse_result r = http_body_feed(h, in->data + in->off, buf_pending(in), &consumed);
		if (r == HTTP_ERROR)
			return false;
		*ready = consumed;
	}
	(void)s;
	return true;
}

static void forward_interest(struct session *s)
{
	uint32_t cev = 0, uev = 0;

	if (s->req_phase == FWD_HEAD_OUT || (s->req_phase == FWD_BODY && s->req_ready))
		uev |= EPOLLOUT;
	else if (s->req_phase == FWD_BODY)
		cev |= EPOLLIN;
	if (s->resp_phase == FWD_HEAD_OUT || (s->resp_phase == FWD_BODY && s->resp_ready))
		cev |= EPOLLOUT;
	else if (s->resp_phase == FWD_BODY || s->resp_phase == FWD_WAIT_HEAD)
		uev |= EPOLLIN;
	io_want(s->w->loop, &s->cio, cev);
	io_want(s->w->loop, &s->uio, uev);
}

static void exchange_done(struct session *s)
{
	bool upstream_keep = s->resp->body_done && llhttp_should_keep_alive(&s->resp->parser);

	access_log(s);
	if (s->close_after) {
		session_close(s);
		return;
	}
	if (upstream_keep && !buf_pending(s->uin)) {
		s->u_idle = true;
		snprintf(s->u_host, sizeof(s->u_host), "%s", s->host);
		s->u_port = s->port;
		s->u_egress = s->egress_idx;
		s->u_dest = s->dest;
		io_want(s->w->loop, &s->uio, 0);
	} else {
		upstream_close(s);
	}
	exchange_reset(s);
	s->upstream_reused = false;
	s->state = SESS_HEAD;
	s->head_started = buf_pending(s->cin) > 0;
	timer_arm(s, s->head_started ? cfg_of(s)->header_timeout_ms : cfg_of(s)->idle_timeout_ms);
	io_want(s->w->loop, &s->cio, EPOLLIN);
	if (s->cin && !buf_pending(s->cin)) {
		/* nothing pipelined: give the buffer back while the connection idles */
		buf_put(s->cin);
		s->cin = NULL;
	}
	head_continue(s);
}

static void forward_pump(struct session *s)
{
	bool err = false, eof = false;

	session_touch(s);
	if (!s->resp) {
		/* first pass for this request: framing decisions */
		s->resp = malloc(sizeof(*s->resp));
		if (!s->resp || (!s->uin && !(s->uin = buf_get()))) {
			session_close(s);
			return;
		}
		http_head_init(s->resp, HTTP_RESPONSE, HTTP_HEADERS_CAP);
		s->req_phase = FWD_HEAD_OUT;
		s->resp_phase = FWD_WAIT_HEAD;
		s->close_after = !llhttp_should_keep_alive(&s->req->parser) || s->w->draining;
		/* the head is consumed; what follows in cin is body (or the next request) */
		s->cin->off += s->req->head_len;
		http_body_begin(s->req, false);
		s->req_ready = 0;
		if (!(s->req->parser.flags & (F_CHUNKED | F_CONTENT_LENGTH)) ||
		    ((s->req->parser.flags & F_CONTENT_LENGTH) && s->req->parser.content_length == 0 &&
		     !(s->req->parser.flags & F_CHUNKED)))
			s->req->body_done = true;
		s->req_had_body = !s->req->body_done;
	}
	/* request: head, then body */
	if (s->req_phase == FWD_HEAD_OUT) {
		if (flush_buf(s, s->out_u, s->uio.fd, &err))
			s->req_phase = s->req->body_done ? FWD_DONE : FWD_BODY;
		else if (err)
			goto upstream_failed;
	}
	if (s->req_phase == FWD_BODY) {
		if (!body_move(s, s->req, &s->cin, &s->req_ready, s->cio.fd, s->uio.fd,
			       &s->bytes_up, &s->req_phase, &eof)) {
			s->reason = eof ? "client closed during the request body" : "request body error";
			s->status = s->status ? s->status : 400;
			session_close(s);
			return;
		}
	}
	/* response: head, then body */
	for (int guard = 0; guard < 8 && s->resp_phase == FWD_WAIT_HEAD; guard++) {
		if (!buf_pending(s->uin)) {
			buf_compact(s->uin);
		}
		enum http_parse_result r = http_head_parse(s->resp, s->uin->data + s->uin->off, buf_pending(s->uin));
		if (r == HTTP_MORE) {
			buf_compact(s->uin);
			if (!buf_room(s->uin)) {
				respond_error(s, 502, "bad_upstream_response", "upstream response head too large");
				return;
			}
			long n = sess_read(s, s->uio.fd, s->uin->data + s->uin->len, buf_room(s->uin));
			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				if (s->upstream_reused && !buf_pending(s->uin) && !s->req_had_body) {
					/* a kept-alive upstream closed as we reused it: dial afresh */
					upstream_close(s);
					s->upstream_reused = false;
					free(s->resp);
					s->resp = NULL;
					s->cin->off -= s->req->head_len;
					s->out_u->off = 0;
					http_head_init(s->req, HTTP_REQUEST, cfg_of(s)->max_headers);
					http_head_parse(s->req, s->cin->data + s->cin->off, buf_pending(s->cin));
					session_route(s);
					return;
				}
				respond_error(s, 502, "upstream_closed", "upstream closed without a response");
				return;
			}
			s->uin->len += (size_t)n;
			continue;
		}
		if (r == HTTP_ERROR) {
			respond_error(s, 502, "bad_upstream_response", "upstream sent a malformed response");
			return;
		}
		int st = s->resp->parser.status_code;
		if (st == 101) {
			respond_error(s, 502, "bad_upstream_response", "upstream switched protocols");
			return;
		}
		bool skip = resp_has_no_body(s);
		if (st >= 200 && !skip && !(s->resp->parser.flags & (F_CHUNKED | F_CONTENT_LENGTH)))
			s->close_after = true;   /* body until close: the client learns the end by FIN */
		if (build_response_head(s)) {
			respond_error(s, 502, "bad_upstream_response", "upstream response head too large");
			return;
		}
		s->status = st;
		s->uin->off += s->resp->head_len;
		http_body_begin(s->resp, skip);
		if (skip || ((s->resp->parser.flags & F_CONTENT_LENGTH) && s->resp->parser.content_length == 0 &&
			     !(s->resp->parser.flags & F_CHUNKED)))
			s->resp->body_done = true;
		s->resp_phase = FWD_HEAD_OUT;
	}
	if (s->resp_phase == FWD_HEAD_OUT) {
		if (flush_buf(s, s->out_c, s->cio.fd, &err)) {
			int st = s->resp->parser.status_code;
			s->bytes_down += s->out_c->len;
			if (st >= 100 && st < 200) {
				/* interim response (100 Continue): the real one follows */
				http_head_init(s->resp, HTTP_RESPONSE, HTTP_HEADERS_CAP);
				s->resp_phase = FWD_WAIT_HEAD;
				forward_pump(s);
				return;
			}
			s->resp_phase = s->resp->body_done ? FWD_DONE : FWD_BODY;
		} else if (err) {
			s->reason = "client write error";
			session_close(s);
			return;
		}
	}
	if (s->resp_phase == FWD_BODY) {
		eof = false;
		if (!body_move(s, s->resp, &s->uin, &s->resp_ready, s->uio.fd, s->cio.fd,
			       &s->bytes_down, &s->resp_phase, &eof)) {
			s->reason = "upstream body error";
			session_close(s);
			return;
		}
	}
	if (s->resp_phase == FWD_DONE) {
		if (s->req_phase != FWD_DONE)
			s->close_after = true;   /* answered before the whole request came: end here */
		exchange_done(s);
		return;
	}
	forward_interest(s);
	return;
upstream_failed:
	respond_error(s, 502, "upstream_write_failed", "could not send the request upstream");
}

/* ---------------------------------------------------------------- events */

static void tls_handshake(struct session *s)
{
	ERR_clear_error();
	int rc = SSL_do_handshake(s->ssl);
	if (rc == 1) {
		s->state = SESS_HEAD;
		io_want(s->w->loop, &s->cio, EPOLLIN);
		if (SSL_pending(s->ssl) || SSL_has_pending(s->ssl))
			head_read(s);
		return;
	}
	int e = SSL_get_error(s->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		io_want(s->w->loop, &s->cio, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	ERR_clear_error();
	s->reason = "TLS handshake failed";
	SSL_free(s->ssl);   /* no close_notify on a failed handshake */
	s->ssl = NULL;
	session_close(s);
}

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents);

/* OpenSSL may hold decrypted bytes after a read that filled our buffer: epoll will not say so. */
static void session_kick(struct loop *loop, struct timer *t)
{
	struct session *s = container_of(t, struct session, kick);

	if (s->state != SESS_DONE && s->ssl && (s->cio.want & EPOLLIN))
		session_io_client(loop, &s->cio, EPOLLIN);
}

static void session_io_client(struct loop *loop, struct io *io, uint32_t revents)
{
	struct session *s = container_of(io, struct session, cio);

	session_client_event(loop, s, revents);
	if (s->state != SESS_DONE && s->ssl && SSL_pending(s->ssl) && (s->cio.want & EPOLLIN))
		timer_start(loop, &s->kick, 0);
}

static void session_client_event(struct loop *loop, struct session *s, uint32_t revents)
{
	struct io *io = &s->cio;

	(void)loop;
	switch (s->state) {
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
		relay_event(s, true, revents);
		break;
	case SESS_FORWARD:
		if ((revents & (EPOLLERR | EPOLLHUP)) && !(io->want & EPOLLIN)) {
			/* reset while we wait for the upstream: nobody is left to answer */
			s->reason = "client went away";
			session_close(s);
			break;
		}
		forward_pump(s);
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
		dial_io(&s->dial);
		break;
	case SESS_TUNNEL:
		relay_event(s, false, revents);
		break;
	case SESS_FORWARD:
		if ((revents & (EPOLLERR | EPOLLHUP)) && !io->want) {
			/* the upstream closed while we still write its bytes to the client: what it
			 * sent is read later; stop the level-triggered hang-up from waking us */
			io_stop(loop, io);
			break;
		}
		forward_pump(s);
		break;
	case SESS_HEAD:
		/* an idle kept-alive upstream spoke or closed: it cannot be reused */
		upstream_close(s);
		break;
	default:
		io_want(loop, io, 0);
		break;
	}
}
