/* forward.c: a session's forwarded exchange (absolute-form HTTP): the rewritten head out, the
 * body with its own framing, the response head and body back, the upstream kept alive for
 * the next request to the same place, one redial of a kept-alive upstream found closed. */
#include "proxy/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include "core/bug.h"
#include "http/hop.h"

/* ---------------------------------------------------------------- forwarding */

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

int session_upstream_head(struct session *s, const char *path, size_t pathlen)
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
	/* no printf on this path: it showed in the profile of a forwarded GET */
	char ver[] = " HTTP/1.1\r\n";
	ver[6] = (char)('0' + s->req->parser.http_major % 10);
	ver[8] = (char)('0' + s->req->parser.http_minor % 10);
	if (buf_append(o, ver, sizeof(ver) - 1))
		return -ENOSPC;
	/* Host comes from the request target, whatever the client's Host field said */
	size_t hl = strlen(s->host), n = 0;
	bool v6 = memchr(s->host, ':', hl) != NULL;
	if (hl > sizeof(line) - 24)
		return -ENOSPC;
	memcpy(line, "Host: ", 6);
	n = 6;
	if (v6)
		line[n++] = '[';
	memcpy(line + n, s->host, hl);
	n += hl;
	if (v6)
		line[n++] = ']';
	if (s->port != 80) {
		char digits[6];
		size_t d = 0;
		unsigned p = s->port;
		do
			digits[d++] = (char)('0' + p % 10);
		while (p /= 10);
		line[n++] = ':';
		while (d)
			line[n++] = digits[--d];
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (buf_append(o, line, n))
		return -ENOSPC;
	if (copy_fields(s->req, base, o, true) || buf_append(o, "\r\n", 2))
		return -ENOSPC;
	return 0;
}

static bool resp_has_no_body(const struct session *s)
{
	int st = s->resp->parser.status_code;

	return s->method == HTTP_HEAD || st == 204 || st == 304 || (st >= 100 && st < 200);
}

static int build_response_head(struct session *s)
{
	const char *base = s->uin->data + s->uin->off;
	struct buf *o = buf_get();
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
	if (st >= 200 && s->close_after && buf_append(o, "Connection: close\r\n", 19))
		return -ENOSPC;
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

/* Framed body bytes from in to fd. Returns false on a hard error. readable (NULL: always
 * try) is src's read hint: false once a read found it drained, until epoll says otherwise. */
static bool body_move(struct session *s, struct http_head *h, struct buf **inp, size_t *ready,
		      int src, int dst, uint64_t *count, enum fwd_phase *phase, bool *src_eof,
		      bool *readable)
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
			if (readable && !*readable)
				return true;
			long n = sess_read(s, src, in->data, in->cap);
			if (n == -EAGAIN) {
				if (readable)
					*readable = false;
				return true;
			}
			if (n < 0)
				return false;
			if (readable && (size_t)n < in->cap)
				*readable = false;   /* drained: the next read waits for epoll */
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
	/* quiet sides keep EPOLLIN until an early event says otherwise (session.h) */
	if (!s->c_early && !stream_is_tls(&s->cs))
		cev |= EPOLLIN;
	if (!s->u_early)
		uev |= EPOLLIN;
	io_want(s->w->loop, &s->cio, cev);
	io_want(s->w->loop, &s->uio, uev);
}

static void exchange_done(struct session *s)
{
	bool upstream_keep = s->resp->body_done && llhttp_should_keep_alive(&s->resp->parser);

	session_log(s);
	if (s->close_after) {
		session_close(s);
		return;
	}
	if (upstream_keep && !buf_pending(s->uin)) {
		s->u_idle = true;
		memcpy(s->u_host, s->host, sizeof(s->u_host));   /* same size, NUL-terminated */
		s->u_port = s->port;
		s->u_egress = s->egress_idx;
		s->u_dest = s->dest;
		/* an idle upstream that speaks or closes is dropped (session.c, SESS_HEAD) */
		io_want(s->w->loop, &s->uio, EPOLLIN);
	} else {
		session_upstream_close(s);
	}
	session_exchange_reset(s);
	s->upstream_reused = false;
	s->c_early = s->u_early = false;
	s->state = SESS_HEAD;
	s->head_started = buf_pending(s->cin) > 0;
	session_arm(s, s->head_started ? session_cfg(s)->header_timeout_ms : session_cfg(s)->idle_timeout_ms);
	io_want(s->w->loop, &s->cio, EPOLLIN);
	if (s->cin && !buf_pending(s->cin)) {
		/* nothing pipelined: give the buffer back while the connection idles */
		buf_put(s->cin);
		s->cin = NULL;
	}
	session_head_continue(s);
}

void session_forward(struct session *s)
{
	bool err = false, eof = false;

	session_touch(s);
	if (!s->resp) {
		/* first pass for this request: framing decisions */
		if (!s->resp_mem)
			s->resp_mem = malloc(sizeof(*s->resp_mem));
		s->resp = s->resp_mem;
		if (!s->resp || (!s->uin && !(s->uin = buf_get()))) {
			session_close(s);
			return;
		}
		/* a fresh or idle upstream holds nothing before the request: read when epoll says */
		s->u_readable = false;
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
			       &s->bytes_up, &s->req_phase, &eof, NULL)) {
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
				session_error(s, 502, "bad_upstream_response", "upstream response head too large");
				return;
			}
			if (!s->u_readable)
				break;
			size_t want = buf_room(s->uin);
			long n = sess_read(s, s->uio.fd, s->uin->data + s->uin->len, want);
			if (n == -EAGAIN) {
				s->u_readable = false;
				break;
			}
			if (n > 0 && (size_t)n < want)
				s->u_readable = false;
			if (n <= 0) {
				if (s->upstream_reused && !buf_pending(s->uin) && !s->req_had_body) {
					/* a kept-alive upstream closed as we reused it: dial afresh */
					session_upstream_close(s);
					s->upstream_reused = false;
					s->resp = NULL;
					s->cin->off -= s->req->head_len;
					s->out_u->off = 0;
					http_head_init(s->req, HTTP_REQUEST, session_cfg(s)->max_headers);
					http_head_parse(s->req, s->cin->data + s->cin->off, buf_pending(s->cin));
					session_route(s);
					return;
				}
				session_error(s, 502, "upstream_closed", "upstream closed without a response");
				return;
			}
			s->uin->len += (size_t)n;
			continue;
		}
		if (r == HTTP_ERROR) {
			session_error(s, 502, "bad_upstream_response", "upstream sent a malformed response");
			return;
		}
		int st = s->resp->parser.status_code;
		if (st == 101) {
			session_error(s, 502, "bad_upstream_response", "upstream switched protocols");
			return;
		}
		bool skip = resp_has_no_body(s);
		if (st >= 200 && !skip && !(s->resp->parser.flags & (F_CHUNKED | F_CONTENT_LENGTH)))
			s->close_after = true;   /* body until close: the client learns the end by FIN */
		if (build_response_head(s)) {
			session_error(s, 502, "bad_upstream_response", "upstream response head too large");
			return;
		}
		s->status = st;
		s->uin->off += s->resp->head_len;
		http_body_begin(s->resp, skip);
		if (skip || ((s->resp->parser.flags & F_CONTENT_LENGTH) && s->resp->parser.content_length == 0 &&
			     !(s->resp->parser.flags & F_CHUNKED)))
			s->resp->body_done = true;
		s->resp_phase = FWD_HEAD_OUT;
		s->resp_ready = 0;
		if (!s->resp->body_done && buf_pending(s->uin)) {
			/* body bytes that came with the head: framed now, sent with it (writev) */
			size_t consumed = 0;
			/* a malformed body is found again by body_move, after the head, as before */
			if (http_body_feed(s->resp, s->uin->data + s->uin->off, buf_pending(s->uin),
					   &consumed) != HTTP_ERROR)
				s->resp_ready = consumed;
		}
	}
	if (s->resp_phase == FWD_HEAD_OUT && s->resp_ready && !stream_is_tls(&s->cs)) {
		/* plain client: the response head and the body bytes behind it in one writev */
		while (buf_pending(s->out_c)) {
			struct iovec iov[2] = {
				{ s->out_c->data + s->out_c->off, buf_pending(s->out_c) },
				{ s->uin->data + s->uin->off, s->resp_ready },
			};
			ssize_t n = writev(s->cio.fd, iov, 2);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				s->reason = "client write error";
				session_close(s);
				return;
			}
			size_t head = buf_pending(s->out_c) < (size_t)n ? buf_pending(s->out_c) : (size_t)n;
			s->out_c->off += head;
			s->uin->off += (size_t)n - head;
			s->resp_ready -= (size_t)n - head;
			s->bytes_down += (size_t)n - head;
		}
	}
	if (s->resp_phase == FWD_HEAD_OUT) {
		if (flush_buf(s, s->out_c, s->cio.fd, &err)) {
			int st = s->resp->parser.status_code;
			s->bytes_down += s->out_c->len;
			if (st >= 100 && st < 200) {
				/* interim response (100 Continue): the real one follows */
				http_head_init(s->resp, HTTP_RESPONSE, HTTP_HEADERS_CAP);
				s->resp_phase = FWD_WAIT_HEAD;
				session_forward(s);
				return;
			}
			s->resp_phase = s->resp->body_done && !s->resp_ready ? FWD_DONE : FWD_BODY;
		} else if (err) {
			s->reason = "client write error";
			session_close(s);
			return;
		}
	}
	if (s->resp_phase == FWD_BODY) {
		eof = false;
		if (!body_move(s, s->resp, &s->uin, &s->resp_ready, s->uio.fd, s->cio.fd,
			       &s->bytes_down, &s->resp_phase, &eof, &s->u_readable)) {
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
	session_error(s, 502, "upstream_write_failed", "could not send the request upstream");
}
