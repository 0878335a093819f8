/* forward.c: a session's forwarded exchange (absolute-form HTTP): the rewritten head out, the
 * body with its own framing, the response head and body back, the upstream kept alive for
 * the next request to the same place, one redial of a kept-alive upstream found closed. */
#include "proxy/forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The client's copy of the upstream head at uin (http/exchange: the proxy's own version). */
static int build_response_head(struct session *s)
{
	struct buf *o = buf_get();

	if (!o)
		return -ENOMEM;
	buf_put(s->out_c);
	s->out_c = o;
	return http_exchange_client_head(s->x, s->uin->data + s->uin->off, o, s->close_after,
					 NULL, skip_own, NULL);
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
static bool body_move(struct session *s, struct http_head *h, struct http_exchange *x,
		      struct buf **inp, size_t *ready, int src, int dst, uint64_t *count,
		      enum fwd_phase *phase, bool *src_eof, bool *readable)
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
		if (x ? x->body_done : h->body_done) {
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
				if ((x ? http_exchange_eof(x) : http_body_eof(h)) == HTTP_DONE) {
					*phase = FWD_DONE;
					return true;
				}
				return false;
			}
			in->len = (size_t)n;
		}
		size_t consumed;
		enum http_parse_result r = x ? http_exchange_body(x, in->data + in->off, buf_pending(in), &consumed)
					     : http_body_feed(h, in->data + in->off, buf_pending(in), &consumed);
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
	bool upstream_keep = s->x->body_done && s->x->up_keep;

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
		/* an idle upstream that speaks or closes is dropped (dispatch.c, SESS_HEAD) */
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
	s->steps->next_head(s);   /* a pipelined request may wait in cin */
}

void session_forward(struct session *s)
{
	bool err = false, eof = false;

	session_touch(s);
	if (!s->x) {
		/* first pass for this request: framing decisions */
		s->x = session_xchg_get();
		if (!s->x || (!s->uin && !(s->uin = buf_get()))) {
			session_close(s);
			return;
		}
		/* a fresh or idle upstream holds nothing before the request: read when epoll says */
		s->u_readable = false;
		s->req_phase = FWD_HEAD_OUT;
		s->resp_phase = FWD_WAIT_HEAD;
		s->close_after = !llhttp_should_keep_alive(&s->req->parser) || s->w->draining;
		/* the head is consumed; what follows in cin is body (or the next request) */
		s->cin->off += s->req->head_len;
		http_body_begin(s->req, false);
		s->req_ready = 0;
		s->req->body_done = !http_request_has_body(s->req);
		s->req_had_body = !s->req->body_done;
		http_exchange_begin(s->x, s->method == HTTP_HEAD, s->req_had_body, s->upstream_reused);
	}
	/* request: head, then body */
	if (s->req_phase == FWD_HEAD_OUT) {
		if (flush_buf(s, s->out_u, s->uio.fd, &err))
			s->req_phase = s->req->body_done ? FWD_DONE : FWD_BODY;
		else if (err)
			goto upstream_failed;
	}
	if (s->req_phase == FWD_BODY) {
		if (!body_move(s, s->req, NULL, &s->cin, &s->req_ready, s->cio.fd, s->uio.fd,
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
		enum http_xhead r = http_exchange_head(s->x, s->uin->data + s->uin->off, buf_pending(s->uin));
		if (r == HTTP_XHEAD_MORE) {
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
				if (http_exchange_redial(s->x, buf_pending(s->uin))) {
					/* a kept-alive upstream closed as we reused it: dial afresh */
					session_upstream_close(s);
					s->upstream_reused = false;
					session_xchg_put(s->x);
					s->x = NULL;
					s->cin->off -= s->req->head_len;
					s->out_u->off = 0;
					http_head_init(s->req, HTTP_REQUEST, session_cfg(s)->max_headers);
					http_head_parse(s->req, s->cin->data + s->cin->off, buf_pending(s->cin));
					s->steps->redial(s);
					return;
				}
				session_error(s, 502, "upstream_closed", "upstream closed without a response");
				return;
			}
			s->uin->len += (size_t)n;
			continue;
		}
		if (r == HTTP_XHEAD_ERROR) {
			session_error(s, 502, "bad_upstream_response", s->x->err);
			return;
		}
		if (s->x->body == HTTP_XBODY_UNTIL_CLOSE && r == HTTP_XHEAD_FINAL)
			s->close_after = true;   /* body until close: the client learns the end by FIN */
		if (build_response_head(s)) {
			session_error(s, 502, "bad_upstream_response", "upstream response head too large");
			return;
		}
		s->status = s->x->resp.parser.status_code;
		s->uin->off += s->x->resp.head_len;
		s->resp_phase = FWD_HEAD_OUT;
		s->resp_ready = 0;
		if (r == HTTP_XHEAD_FINAL && !s->x->body_done && buf_pending(s->uin)) {
			/* body bytes that came with the head: framed now, sent with it (writev) */
			size_t consumed = 0;
			/* a malformed body is found again by body_move, after the head, as before */
			if (http_exchange_body(s->x, s->uin->data + s->uin->off, buf_pending(s->uin),
					       &consumed) != HTTP_ERROR)
				s->resp_ready = consumed;
		}
	}
	if (s->resp_phase == FWD_HEAD_OUT && s->resp_ready && !stream_is_tls(&s->cs)) {
		/* plain client: the response head and the body bytes behind it in one writev */
		while (buf_pending(s->out_c)) {
			ssize_t n = http_exchange_writev(s->cio.fd, s->out_c, s->uin->data + s->uin->off,
							 s->resp_ready);
			if (n == -EAGAIN)
				break;
			if (n < 0) {
				s->reason = "client write error";
				session_close(s);
				return;
			}
			s->uin->off += (size_t)n;
			s->resp_ready -= (size_t)n;
			s->bytes_down += (size_t)n;
		}
	}
	if (s->resp_phase == FWD_HEAD_OUT) {
		if (flush_buf(s, s->out_c, s->cio.fd, &err)) {
			s->bytes_down += s->out_c->len;
			if (!s->x->status) {
				/* interim response (100 Continue): the real one follows */
				http_exchange_next(s->x);
				s->resp_phase = FWD_WAIT_HEAD;
				session_forward(s);
				return;
			}
			s->resp_phase = s->x->body_done && !s->resp_ready ? FWD_DONE : FWD_BODY;
		} else if (err) {
			s->reason = "client write error";
			session_close(s);
			return;
		}
	}
	if (s->resp_phase == FWD_BODY) {
		eof = false;
		if (!body_move(s, NULL, s->x, &s->uin, &s->resp_ready, s->uio.fd, s->cio.fd,
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
