/* tunnel.c (~900 lines: the CONNECT and SOCKS5 client handshakes and TLS to the proxy are steps
 * of one per-connection state machine and read best together): the runtime of `iplock tunnel`:
 * one loop, a listener per mapping, and per accepted connection a small state machine (dial
 * the proxy on net/dial, CONNECT or SOCKS5 handshake, relay on net/relay's pair). A failure is
 * logged once per mapping and kind until the proxy answers again. */
#include "tunnel/tunnel.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/dlist.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/basic.h"
#include "http/head.h"
#include "net/acceptor.h"
#include "net/dial.h"
#include "net/dns.h"
#include "net/relay.h"
#include "net/sock.h"
#include "net/stream.h"

#define REPLY_BODY_MAX 4096          /* of a refusal's body: enough for the proxy's JSON */

enum tconn_state {
	TC_RESOLVE = 0,   /* resolving the proxy's name */
	TC_CONNECT,       /* non-blocking connect to the proxy in progress */
	TC_TLS,           /* https:// proxy: TLS handshake with the proxy */
	TC_HANDSHAKE,     /* CONNECT or SOCKS5 request going out, its answer coming in */
	TC_RELAY,         /* tunnel established: bytes relayed both ways */
	TC_DONE,          /* closed, queued for free after this batch of events */
};

enum s5_step {
	S5_METHOD = 0,    /* greeting sent, waiting for the chosen method */
	S5_AUTH,          /* RFC 1929 username/password sent, waiting for its status */
	S5_REQUEST,       /* CONNECT request sent, waiting for the reply */
};

struct trun;

struct tmap {
	struct acceptor acc;
	char what[80];                /* "tunnel NAME" for the acceptor's log lines */
	struct trun *rt;
	const struct tunnel_map *m;
	int fail_key;                 /* the failure last logged (0 = none since the last success) */
};

struct tconn {
	struct trun *rt;
	struct tmap *map;
	uint64_t id;
	enum tconn_state state;
	enum s5_step s5;
	struct io cio;                /* the local client */
	struct io pio;                /* the proxy */
	struct stream ps;             /* the proxy's bytes: plain, or TLS (https://); set once connected */
	struct timer timer;
	struct dial dial;             /* the proxy's addresses and the attempt in flight */
	struct buf *out, *in;         /* handshake bytes, only until the tunnel is up */
	struct relay_pair relay;      /* up: client -> proxy */
	uint64_t bytes_up, bytes_down, start_ms, last_ms;
	struct tconn *next, *prev;
	struct deferred dfr;
};

struct trun {
	const struct tunnel_config *cfg;
	struct loop *loop;
	struct dns *dns;
	SSL_CTX *tls;                 /* https:// proxies: client context, peer verified */
	struct tmap maps[TUNNEL_MAX_MAPS];
	size_t nmaps;
	struct tconn *conns;
	struct pipe_pool pipes;
	char *scratch;
	struct io sigio;
	struct timer drain;           /* after SIGTERM/SIGINT: the deadline for open connections */
	bool stopping;
	uint64_t next_id;
	char auth[800];               /* "Proxy-Authorization: Basic ...\r\n" or "" */
};

static void tconn_io_client(struct loop *loop, struct io *io, uint32_t revents);
static void tconn_io_proxy(struct loop *loop, struct io *io, uint32_t revents);
static const struct dial_ops tconn_dial_ops;

/* ---------------------------------------------------------------- life cycle */

/* The handshake buffers held the credentials (Basic header, RFC 1929 request): wiped before
 * they go back to the pool. Requests are built in at most 2 KiB. */
static void handshake_bufs_put(struct tconn *c)
{
	if (c->out)
		OPENSSL_cleanse(c->out->data, c->out->cap < 2048 ? c->out->cap : 2048);
	buf_put(c->in);
	buf_put(c->out);
	c->in = c->out = NULL;
}

static void tconn_free(struct deferred *d)
{
	free(container_of(d, struct tconn, dfr));
}

static void tconn_close(struct tconn *c)
{
	struct trun *rt = c->rt;

	if (c->state == TC_DONE)
		return;
	if (c->state == TC_RELAY)
		log_debug("tunnel %s: connection %llu closed: %llu bytes up, %llu down, %llu ms", c->map->m->name,
			  (unsigned long long)c->id, (unsigned long long)c->bytes_up,
			  (unsigned long long)c->bytes_down,
			  (unsigned long long)(loop_now(rt->loop) - c->start_ms));
	c->state = TC_DONE;
	timer_stop(rt->loop, &c->timer);
	dial_cancel(&c->dial);
	relay_pair_release(&c->relay, &rt->pipes);
	stream_free(&c->ps);
	io_close(rt->loop, &c->cio);
	io_close(rt->loop, &c->pio);
	handshake_bufs_put(c);
	DLIST_UNLINK(rt->conns, c);
	loop_defer(rt->loop, &c->dfr, tconn_free);
	if (rt->stopping && !rt->conns)
		loop_stop(rt->loop);   /* drained: the last connection was closed */
}

/* A failure ends this client connection; it is logged once per mapping and kind (key), so a
 * proxy that stays down does not flood the log, and again after the next success. */
static void tconn_fail(struct tconn *c, int key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void tconn_fail(struct tconn *c, int key, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->map->fail_key != key) {
		log_error("tunnel %s: %s; closing the local connection (the listener stays; "
			  "further failures of this kind are logged at debug level)", c->map->m->name, msg);
		c->map->fail_key = key;
	} else {
		log_debug("tunnel %s: connection %llu: %s", c->map->m->name, (unsigned long long)c->id, msg);
	}
	tconn_close(c);
}

static void tconn_timer(struct loop *loop, struct timer *t)
{
	struct tconn *c = container_of(t, struct tconn, timer);
	const struct tunnel_config *cfg = c->rt->cfg;

	if (c->state == TC_RELAY) {
		uint64_t idle = loop_now(loop) - c->last_ms;
		if (idle < cfg->idle_timeout_ms) {
			timer_start(loop, &c->timer, cfg->idle_timeout_ms - idle);
			return;
		}
		log_debug("tunnel %s: connection %llu idle: closed", c->map->m->name, (unsigned long long)c->id);
		tconn_close(c);
		return;
	}
	tconn_fail(c, -ETIMEDOUT, "proxy %s did not %s within %u ms", cfg->proxy.display,
		   c->state == TC_HANDSHAKE ? "answer the tunnel request"
		   : c->state == TC_TLS ? "finish the TLS handshake" : "accept the connection",
		   cfg->connect_timeout_ms);
}

/* ---------------------------------------------------------------- relay */

/* The proxy side may be TLS (https://): its bytes go through its stream, the client's do not. */
static long proxy_read(struct tconn *c, void *buf, size_t len)
{
	return stream_read(&c->ps, buf, len);
}

static long proxy_write(struct tconn *c, const void *buf, size_t len)
{
	return stream_write(&c->ps, buf, len);
}

static long hook_read(void *ctx, int fd, void *buf, size_t len)
{
	struct tconn *c = ctx;

	return fd == c->pio.fd ? proxy_read(c, buf, len) : sock_read(fd, buf, len);
}

static long hook_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct tconn *c = ctx;

	return fd == c->pio.fd ? proxy_write(c, buf, len) : sock_write(fd, buf, len);
}

static void hook_shutdown(void *ctx, int fd)
{
	struct tconn *c = ctx;

	if (fd == c->pio.fd && stream_is_tls(&c->ps))
		stream_shutdown(&c->ps);   /* close_notify first; the peer's is not waited for */
	shutdown(fd, SHUT_WR);
}

static bool hook_buffered(void *ctx, int fd)
{
	struct tconn *c = ctx;

	return fd == c->pio.fd && stream_pending(&c->ps) > 0;
}

static void relay_event(struct tconn *c, bool from_client, uint32_t revents)
{
	struct trun *rt = c->rt;
	struct relay_io io = { hook_read, hook_write, hook_shutdown, hook_buffered, c };
	bool plain = !stream_is_tls(&c->ps);   /* splice needs the bytes as they are on the wire */
	struct relay_env env = { rt->scratch, &rt->pipes, rt->cfg->splice && plain, rt->cfg->splice_auto && plain,
				 plain ? NULL : &io };

	c->last_ms = loop_now(rt->loop);
	if (relay_pair_event(&c->relay, &env, rt->loop, from_client, revents))
		tconn_close(c);
}

static void tunnel_established(struct tconn *c, const char *early, size_t n)
{
	struct trun *rt = c->rt;

	if (c->map->fail_key) {
		log_info("tunnel %s: the proxy carries tunnels again", c->map->m->name);
		c->map->fail_key = 0;
	}
	if (n && relay_dir_queue(&c->relay.down, early, n)) {
		tconn_close(c);
		return;
	}
	handshake_bufs_put(c);
	c->state = TC_RELAY;
	c->last_ms = loop_now(rt->loop);
	timer_stop(rt->loop, &c->timer);
	if (rt->cfg->idle_timeout_ms)
		timer_start(rt->loop, &c->timer, rt->cfg->idle_timeout_ms);
	log_debug("tunnel %s: connection %llu established to %s", c->map->m->name,
		  (unsigned long long)c->id, c->map->m->authority);
	relay_event(c, true, EPOLLIN | EPOLLOUT);
}

/* ---------------------------------------------------------------- HTTP CONNECT */

/* The answer's head by http/head (the one response-head parser): 1 when its blank line has
 * not come yet, 0 with its status, length and body length (Content-Length, capped), -EPROTO
 * when it is not HTTP. */
static int reply_head(const char *data, size_t len, int *status, size_t *headlen, size_t *body_len)
{
	struct http_head h;

	http_head_init(&h, HTTP_RESPONSE, HTTP_HEADERS_CAP);
	switch (http_head_parse(&h, data, len)) {
	case HTTP_MORE:
		return 1;
	case HTTP_ERROR:
		return -EPROTO;
	case HTTP_DONE:
		break;
	}
	*status = h.parser.status_code;
	*headlen = h.head_len;
	*body_len = 0;
	if (h.parser.flags & F_CONTENT_LENGTH)
		*body_len = h.parser.content_length > REPLY_BODY_MAX ? REPLY_BODY_MAX : (size_t)h.parser.content_length;
	return 0;
}

int tunnel_parse_reply(const char *head, size_t headlen, int *status)
{
	size_t hl, bl;

	return reply_head(head, headlen, status, &hl, &bl) ? -EPROTO : 0;
}

/* The body's "error": {"code", "message"} as "code: message"; the first line of anything
 * else, printable characters only. */
void tunnel_error_reason(const char *body, size_t len, char *out, size_t cap)
{
	json_error_t jerr;
	json_t *root = len ? json_loadb(body, len, JSON_DECODE_ANY, &jerr) : NULL;
	json_t *e = root ? json_object_get(root, "error") : NULL;
	const char *code = e ? json_string_value(json_object_get(e, "code")) : NULL;
	const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
	size_t o = 0;

	out[0] = '\0';
	if (code || msg) {
		snprintf(out, cap, "%s%s%s", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
	} else {
		for (size_t i = 0; i < len && body[i] != '\r' && body[i] != '\n' && o + 1 < cap && o < 200; i++)
			out[o++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '?';
		out[o] = '\0';
	}
	json_decref(root);
	/* the proxy's text is not trusted: nothing unprintable reaches the log */
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static const char *status_hint(int st)
{
	switch (st) {
	case 407: return " (check the user name and password in the proxy URL)";
	case 403: return " (the proxy's policy refuses this destination or port: see its connect_ports, "
			 "allow_destinations and the user's allow list)";
	case 502: case 504: return " (the proxy could not reach the remote)";
	default: return "";
	}
}

/* Returns true when the answer is complete (handled), false when more bytes are needed. */
static bool http_reply(struct tconn *c, bool eof)
{
	const struct tunnel_config *cfg = c->rt->cfg;
	const char *data = c->in->data + c->in->off;
	size_t len = buf_pending(c->in), headlen, want;
	int st, rc = reply_head(data, len, &st, &headlen, &want);

	if (rc == 1) {
		if (eof || !buf_room(c->in)) {
			tconn_fail(c, -EPROTO, "proxy %s %s", cfg->proxy.display,
				   eof ? "closed the connection without answering the CONNECT request"
				       : "sent an answer head larger than 16 KiB");
			return true;
		}
		return false;
	}
	if (rc) {
		tconn_fail(c, -EPROTO, "proxy %s did not answer with HTTP (is it an HTTP proxy?)",
			   cfg->proxy.display);
		return true;
	}
	if (st >= 200 && st < 300) {
		tunnel_established(c, data + headlen, len - headlen);
		return true;
	}
	if (len - headlen < want && !eof && buf_room(c->in))
		return false;
	char reason[400];
	size_t blen = len - headlen < want ? len - headlen : want;
	tunnel_error_reason(data + headlen, blen, reason, sizeof(reason));
	tconn_fail(c, st, "proxy %s refused CONNECT %s with %d%s%s%s", cfg->proxy.display,
		   c->map->m->authority, st, reason[0] ? ": " : "", reason, status_hint(st));
	return true;
}

/* ---------------------------------------------------------------- SOCKS5 (RFC 1928, 1929) */

static const char *s5_reply_text(int rep)
{
	static const char *const t[] = {
		"succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
		"network unreachable", "host unreachable", "connection refused", "TTL expired",
		"command not supported", "address type not supported",
	};
	return rep >= 0 && rep < 9 ? t[rep] : "unknown reply code";
}

static int s5_request(struct tconn *c)
{
	const struct tunnel_map *m = c->map->m;
	uint8_t req[4 + 1 + 255 + 2];
	size_t n = 0;

	req[n++] = 5;
	req[n++] = 1;          /* CONNECT */
	req[n++] = 0;
	if (m->remote.kind == HOST_IP && m->remote.ip.family == AF_INET) {
		req[n++] = 1;
		memcpy(req + n, m->remote.ip.a, 4);
		n += 4;
	} else if (m->remote.kind == HOST_IP) {
		req[n++] = 4;
		memcpy(req + n, m->remote.ip.a, 16);
		n += 16;
	} else {
		size_t hl = strlen(m->remote.name);
		req[n++] = 3;
		req[n++] = (uint8_t)hl;
		memcpy(req + n, m->remote.name, hl);
		n += hl;
	}
	req[n++] = (uint8_t)(m->remote_port >> 8);
	req[n++] = (uint8_t)m->remote_port;
	c->s5 = S5_REQUEST;
	return buf_append(c->out, req, n);
}

static int s5_auth(struct tconn *c)
{
	const struct tunnel_proxy *p = &c->rt->cfg->proxy;
	uint8_t req[3 + 2 * TUNNEL_CRED_MAX];
	size_t ul = strlen(p->user), pl = strlen(p->pass), n = 0;

	req[n++] = 1;
	req[n++] = (uint8_t)ul;
	memcpy(req + n, p->user, ul);
	n += ul;
	req[n++] = (uint8_t)pl;
	memcpy(req + n, p->pass, pl);
	n += pl;
	int rc = buf_append(c->out, req, n);
	OPENSSL_cleanse(req, sizeof(req));
	c->s5 = S5_AUTH;
	return rc;
}

static bool socks_reply(struct tconn *c, bool eof)
{
	const struct tunnel_config *cfg = c->rt->cfg;
	const uint8_t *d = (const uint8_t *)c->in->data + c->in->off;
	size_t len = buf_pending(c->in), need;

	switch (c->s5) {
	case S5_METHOD:
	case S5_AUTH:
		need = 2;
		break;
	case S5_REQUEST:
	default:
		need = 5;
		if (len >= 2 && d[1] != 0) {
			need = 2;    /* a refusal: the code is all we need */
		} else if (len >= 4 && d[3] != 1 && d[3] != 3 && d[3] != 4) {
			tconn_fail(c, -EPROTO, "SOCKS5 proxy %s sent a reply with an unknown address type",
				   cfg->proxy.display);
			return true;
		} else if (len >= 5) {
			need = 6 + (d[3] == 1 ? 4 : d[3] == 4 ? 16 : 1 + (size_t)d[4]);
		}
		break;
	}
	if (len < need) {
		if (eof)
			tconn_fail(c, -EPROTO, "SOCKS5 proxy %s closed the connection during the handshake%s",
				   cfg->proxy.display, c->s5 == S5_AUTH ? " (credentials refused?)" : "");
		return eof;
	}
	c->in->off += need;
	int rc = 0;
	switch (c->s5) {
	case S5_METHOD:
		if (d[0] != 5) {
			tconn_fail(c, -EPROTO, "proxy %s is not a SOCKS5 proxy", cfg->proxy.display);
			return true;
		}
		if (d[1] == 2 && cfg->proxy.has_auth)
			rc = s5_auth(c);
		else if (d[1] == 0)
			rc = s5_request(c);
		else {
			tconn_fail(c, 2407, "SOCKS5 proxy %s accepts none of the offered methods (%s)",
				   cfg->proxy.display, cfg->proxy.has_auth ? "username/password"
				   : "no authentication: put user:password in the proxy URL");
			return true;
		}
		break;
	case S5_AUTH:
		if (d[1] != 0) {
			tconn_fail(c, 407, "SOCKS5 proxy %s refused the credentials (check the user name and "
				   "password in the proxy URL)", cfg->proxy.display);
			return true;
		}
		rc = s5_request(c);
		break;
	case S5_REQUEST:
		if (d[0] != 5 || d[1] != 0) {
			tconn_fail(c, 2000 + d[1], "SOCKS5 proxy %s refused CONNECT %s: %s",
				   cfg->proxy.display, c->map->m->authority, s5_reply_text(d[1]));
			return true;
		}
		buf_compact(c->in);
		tunnel_established(c, c->in->data + c->in->off, buf_pending(c->in));
		return true;
	}
	if (rc) {
		tconn_close(c);
		return true;
	}
	io_want(c->rt->loop, &c->pio, EPOLLOUT);
	return false;
}

/* ---------------------------------------------------------------- handshake */

static int handshake_start(struct tconn *c)
{
	struct trun *rt = c->rt;
	char head[1200];

	if (!(c->out = buf_get()) || !(c->in = buf_get()))
		return -ENOMEM;
	if (rt->cfg->proxy.scheme == TUNNEL_SOCKS5H) {
		uint8_t greet[3] = { 5, 1, rt->cfg->proxy.has_auth ? 2 : 0 };
		c->s5 = S5_METHOD;
		return buf_append(c->out, greet, sizeof(greet));
	}
	int n = snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%sUser-Agent: iplock-tunnel\r\n\r\n",
			 c->map->m->authority, c->map->m->authority, rt->auth);
	int rc = n > 0 && (size_t)n < sizeof(head) ? buf_append(c->out, head, (size_t)n) : -ENOSPC;
	OPENSSL_cleanse(head, sizeof(head));
	return rc;
}

static void handshake_io(struct tconn *c, uint32_t revents)
{
	bool eof = false;

	while (buf_pending(c->out)) {
		long n = proxy_write(c, c->out->data + c->out->off, buf_pending(c->out));
		if (n == -EAGAIN) {
			io_want(c->rt->loop, &c->pio, EPOLLOUT);
			return;
		}
		if (n < 0) {
			tconn_fail(c, -ECONNRESET, "proxy %s closed the connection: %s",
				   c->rt->cfg->proxy.display, strerror((int)-n));
			return;
		}
		c->out->off += (size_t)n;
	}
	c->out->off = c->out->len = 0;
	(void)revents;
	for (int round = 0; round < 4; round++) {
		buf_compact(c->in);
		if (buf_room(c->in)) {
			c->ps.want_write = false;
			long n = proxy_read(c, c->in->data + c->in->len, buf_room(c->in));
			if (n == -EAGAIN) {
				io_want(c->rt->loop, &c->pio, c->ps.want_write ? EPOLLOUT : EPOLLIN);
				return;
			}
			if (n <= 0)
				eof = true;
			else
				c->in->len += (size_t)n;
		}
		bool done = c->rt->cfg->proxy.scheme == TUNNEL_SOCKS5H ? socks_reply(c, eof) : http_reply(c, eof);
		if (done)
			return;
		if (buf_pending(c->out)) {
			handshake_io(c, EPOLLOUT);   /* the next SOCKS5 step goes out */
			return;
		}
		if (eof)
			return;
	}
	io_want(c->rt->loop, &c->pio, EPOLLIN);
}

/* ---------------------------------------------------------------- connect */

static void proxy_handshake(struct tconn *c)
{
	int rc = handshake_start(c);

	if (rc) {
		tconn_close(c);
		return;
	}
	c->state = TC_HANDSHAKE;
	handshake_io(c, EPOLLOUT);
}

static void tls_step(struct tconn *c)
{
	const struct tunnel_config *cfg = c->rt->cfg;
	char why[300];

	ERR_clear_error();
	int rc = SSL_connect(c->ps.ssl);   /* not stream_handshake: a failure is explained below */
	if (rc == 1) {
		proxy_handshake(c);
		return;
	}
	int e = SSL_get_error(c->ps.ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		io_want(c->rt->loop, &c->pio, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	long v = SSL_get_verify_result(c->ps.ssl);
	unsigned long err = ERR_get_error();
	if (v != X509_V_OK)
		snprintf(why, sizeof(why), "its certificate is not trusted: %s (give the proxy's CA with "
			 "--proxy-cacert FILE or [proxy] cacert)", X509_verify_cert_error_string(v));
	else if (err)
		ERR_error_string_n(err, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "the connection closed during the handshake (is it the proxy's TLS port?)");
	ERR_clear_error();
	tconn_fail(c, 4000, "TLS to proxy %s failed: %s", cfg->proxy.display, why);
}

static void proxy_connected(struct tconn *c)
{
	const struct tunnel_proxy *p = &c->rt->cfg->proxy;

	if (stream_init_client(&c->ps, c->pio.fd, p->scheme == TUNNEL_HTTPS ? c->rt->tls : NULL)) {
		tconn_close(c);
		return;
	}
	if (p->scheme != TUNNEL_HTTPS) {
		proxy_handshake(c);
		return;
	}
	/* the name (or address) in the URL is what the certificate must show */
	if (p->host.kind == HOST_NAME) {
		SSL_set_tlsext_host_name(c->ps.ssl, p->host.name);
		SSL_set1_host(c->ps.ssl, p->host.name);
	} else {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ps.ssl), p->host.name);
	}
	c->state = TC_TLS;
	tls_step(c);
}

static void dial_connected(void *ctx, struct dial *d)
{
	(void)d;
	proxy_connected(ctx);
}

static bool dial_resolved(void *ctx, struct dial *d, const struct dns_result *res)
{
	struct tconn *c = ctx;

	if (res->status || !d->naddrs) {
		tconn_fail(c, 3000, "cannot resolve the proxy's name %s: %s", c->rt->cfg->proxy.host.name,
			   res->status == -ENOENT ? "no such name" : "lookup failed");
		return false;
	}
	c->state = TC_CONNECT;
	return true;
}

static void dial_gave_up(void *ctx, struct dial *d, int err, enum dial_end end)
{
	struct tconn *c = ctx;

	(void)d;
	if (end == DIAL_END_DNS)
		tconn_fail(c, 3001, "cannot start a DNS lookup for the proxy");
	else
		tconn_fail(c, 1000 - err, "cannot reach proxy %s: %s", c->rt->cfg->proxy.display, strerror(-err));
}

/* The tunnel's own timer covers the whole way to an established tunnel (connect_timeout). */
static const struct dial_ops tconn_dial_ops = {
	.resolved = dial_resolved,
	.connected = dial_connected,
	.gave_up = dial_gave_up,
};

/* ---------------------------------------------------------------- events */

static void tconn_io_client(struct loop *loop, struct io *io, uint32_t revents)
{
	struct tconn *c = container_of(io, struct tconn, cio);

	if (c->state == TC_RELAY)
		relay_event(c, true, revents);
	else
		io_want(loop, io, 0);    /* the client waits in its socket buffer until the tunnel is up */
}

static void tconn_io_proxy(struct loop *loop, struct io *io, uint32_t revents)
{
	struct tconn *c = container_of(io, struct tconn, pio);

	switch (c->state) {
	case TC_CONNECT:
		dial_io(&c->dial);
		break;
	case TC_TLS:
		tls_step(c);
		break;
	case TC_HANDSHAKE:
		handshake_io(c, revents);
		break;
	case TC_RELAY:
		relay_event(c, false, revents);
		break;
	default:
		io_want(loop, io, 0);
		break;
	}
}

static void tconn_start(struct tmap *map, int fd)
{
	struct trun *rt = map->rt;
	struct tconn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->rt = rt;
	c->map = map;
	c->id = ++rt->next_id;
	c->start_ms = c->last_ms = loop_now(rt->loop);
	relay_pair_init(&c->relay, &c->cio, &c->pio, &c->bytes_up, &c->bytes_down);
	io_init(&c->cio, fd, tconn_io_client);
	io_init(&c->pio, -1, tconn_io_proxy);
	c->ps.fd = -1;
	dial_init(&c->dial, rt->loop, rt->dns, &tconn_dial_ops, c, &c->pio, tconn_io_proxy, 0);
	timer_init(&c->timer, tconn_timer);
	DLIST_PUSH(rt->conns, c);
	timer_start(rt->loop, &c->timer, rt->cfg->connect_timeout_ms);
	if (rt->cfg->proxy.host.kind == HOST_IP) {
		c->state = TC_CONNECT;
		dial_set_addr(&c->dial, &rt->cfg->proxy.host.ip);
		dial_connect(&c->dial, rt->cfg->proxy.port);
		return;
	}
	c->state = TC_RESOLVE;   /* a cached answer moves it to TC_CONNECT at once */
	dial_resolve(&c->dial, rt->cfg->proxy.host.name, rt->cfg->proxy.port);
}

static void map_accept(struct acceptor *a, int fd, const struct sockaddr_storage *peer)
{
	(void)peer;
	tconn_start(container_of(a, struct tmap, acc), fd);
}

/* SIGHUP: read the file again and say whether it is valid; the running settings stay (a changed
 * file applies at the next start), so a reload never drops a listener or an open connection. */
static void tunnel_recheck(struct trun *rt)
{
	struct timespec ts;
	char err[512];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	struct tunnel_config *n = rt->cfg->path ? malloc(sizeof(*n)) : NULL;
	if (!rt->cfg->path) {
		log_info("SIGHUP: no configuration file (-c): nothing to read");
	} else if (!n) {
		log_warn("SIGHUP: out of memory: %s not read", rt->cfg->path);
	} else {
		tunnel_config_init(n);
		if (tunnel_config_load(rt->cfg->path, n, err, sizeof(err)))
			log_warn("SIGHUP: %s (the running settings stay)", err);
		else
			log_info("SIGHUP: %s is valid; the running settings stay until a restart", rt->cfg->path);
		explicit_bzero(n, sizeof(*n));   /* the proxy password is in it */
		free(n);
	}
	sd_notify(0, "READY=1");
}

static void drain_deadline(struct loop *loop, struct timer *t)
{
	(void)t;
	log_warn("drain: connections still open after %u s: closing them", TUNNEL_DRAIN_MS / 1000);
	loop_stop(loop);
}

/* SIGTERM/SIGINT: close the listeners, let open connections finish; a second signal, the last
 * connection closing or TUNNEL_DRAIN_MS ends the loop. */
static void signal_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct trun *rt = container_of(io, struct trun, sigio);
	struct signalfd_siginfo si;

	(void)revents;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			tunnel_recheck(rt);
			continue;
		}
		if (rt->stopping || !rt->conns) {
			log_info("signal %u: stopping", si.ssi_signo);
			loop_stop(loop);
			return;
		}
		rt->stopping = true;
		sd_notify(0, "STOPPING=1");
		for (size_t i = 0; i < rt->nmaps; i++)
			acceptor_close(loop, &rt->maps[i].acc);
		log_info("signal %u: listeners closed; open connections get %u s to finish (a second signal "
			 "ends them)", si.ssi_signo, TUNNEL_DRAIN_MS / 1000);
		timer_start(loop, &rt->drain, TUNNEL_DRAIN_MS);
	}
}

/* ---------------------------------------------------------------- run */

static int auth_line(const struct tunnel_proxy *p, char *out, size_t cap)
{
	out[0] = '\0';
	if (!p->has_auth || p->scheme == TUNNEL_SOCKS5H)
		return 0;
	return http_basic_line("Proxy-Authorization", p->user, p->pass, out, cap) < 0 ? -ENOSPC : 0;
}

int tunnel_run(const struct tunnel_config *cfg)
{
	struct trun *rt = calloc(1, sizeof(*rt));
	sigset_t set;
	int rc, status = 1;

	if (!rt)
		return 1;
	rt->cfg = cfg;
	rt->sigio.fd = -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	timer_init(&rt->drain, drain_deadline);
	if ((rc = loop_new(&rt->loop)) != 0 || !(rt->scratch = malloc(RELAY_SCRATCH))) {
		log_error("cannot start: %s", strerror(rc ? -rc : ENOMEM));
		goto out;
	}
	if (auth_line(&cfg->proxy, rt->auth, sizeof(rt->auth))) {
		log_error("proxy credentials too long");
		goto out;
	}
	if (cfg->proxy.host.kind == HOST_NAME &&
	    (rc = dns_new(rt->loop, NULL, cfg->connect_timeout_ms / 2, &rt->dns)) != 0) {
		log_error("cannot start the resolver: %s", strerror(-rc));
		goto out;
	}
	if (cfg->proxy.scheme == TUNNEL_HTTPS) {
		rt->tls = SSL_CTX_new(TLS_client_method());
		if (!rt->tls) {
			log_error("cannot create a TLS context");
			goto out;
		}
		SSL_CTX_set_min_proto_version(rt->tls, TLS1_2_VERSION);
		/* the relay retries partial writes from a moved buffer */
		SSL_CTX_set_mode(rt->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				 SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_verify(rt->tls, SSL_VERIFY_PEER, NULL);
		if (cfg->cacert[0] ? SSL_CTX_load_verify_locations(rt->tls, cfg->cacert, NULL) != 1
				   : SSL_CTX_set_default_verify_paths(rt->tls) != 1) {
			log_error("cannot load the CA certificates %s: %s", cfg->cacert[0] ? cfg->cacert : "(system)",
				  ERR_reason_error_string(ERR_get_error()));
			ERR_clear_error();
			goto out;
		}
	}
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		goto out;
	}
	io_init(&rt->sigio, sfd, signal_cb);
	io_want(rt->loop, &rt->sigio, EPOLLIN);
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct tunnel_map *m = &cfg->maps[i];
		struct tmap *map = &rt->maps[rt->nmaps];
		struct sockaddr_storage ss;
		socklen_t len = ipaddr_to_sockaddr(&m->listen_ip, m->listen_port, &ss);
		int fd = sock_listen((struct sockaddr *)&ss, len, false, 512);
		char ip[IPADDR_STRLEN];
		ipaddr_format(&m->listen_ip, ip, sizeof(ip));
		if (fd < 0) {
			log_error("tunnel %s: cannot listen on %s port %u: %s", m->name, ip, m->listen_port,
				  strerror(-fd));
			goto out;
		}
		map->rt = rt;
		map->m = m;
		snprintf(map->what, sizeof(map->what), "tunnel %s", m->name);
		acceptor_start(rt->loop, &map->acc, fd, map->what, map_accept);
		rt->nmaps++;
		log_info("tunnel %s: listening on %s%s%s:%u, to %s through %s", m->name, m->listen_ip.family == AF_INET6 ? "[" : "",
			 ip, m->listen_ip.family == AF_INET6 ? "]" : "", m->listen_port, m->authority,
			 cfg->proxy.display);
	}
	sd_notify(0, "READY=1");
	loop_run(rt->loop);
	timer_stop(rt->loop, &rt->drain);
	status = 0;
out:
	while (rt->conns)
		tconn_close(rt->conns);
	for (size_t i = 0; i < rt->nmaps; i++) {
		acceptor_close(rt->loop, &rt->maps[i].acc);
	}
	if (rt->sigio.fd >= 0)
		io_close(rt->loop, &rt->sigio);
	if (rt->loop)
		loop_run_deferred(rt->loop);
	if (rt->dns)
		dns_free(rt->dns);
	SSL_CTX_free(rt->tls);
	pipe_pool_drain(&rt->pipes);
	OPENSSL_cleanse(rt->auth, sizeof(rt->auth));
	free(rt->scratch);
	if (rt->loop)
		loop_free(rt->loop);
	buf_pool_trim();
	free(rt);
	return status;
}
