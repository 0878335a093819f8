/* request.c: an HTTP request head on a session: read it (or notice a SOCKS5 greeting on the
 * HTTP port), parse the target, answer the pool endpoint, admit (admit.c), then reuse the
 * kept-alive upstream (forward.c) or dial (route.c). */
#include "proxy/request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "net/host.h"
#include "proxy/admit.h"
#include "proxy/forward.h"
#include "proxy/route.h"
#include "proxy/session.h"
#include "proxy/socks.h"

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
		session_count_request(s);
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

void session_head_read(struct session *s)
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
