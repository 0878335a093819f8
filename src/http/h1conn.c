/* h1conn.c (http): the connection loop of a small HTTP/1 server (h1conn.h). */
#include "http/h1conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/dlist.h"
#include "net/sock.h"

static void conn_free(struct deferred *d)
{
	struct h1conn *c = container_of(d, struct h1conn, dfr);

	c->set->ops->free(c);
}

void h1conn_close(struct h1conn *c)
{
	struct h1conn_set *s = c->set;

	if (c->closed)
		return;
	c->closed = true;
	timer_stop(s->loop, &c->timer);
	stream_free(&c->st);
	io_close(s->loop, &c->io);
	DLIST_UNLINK(s->conns, c);
	s->n--;
	/* a request may have held a key's or a password's text: gone with the connection */
	if (s->ops->wipe)
		explicit_bzero(c->in, c->inlen);
	loop_defer(s->loop, &c->dfr, conn_free);
}

static void conn_error(struct h1conn *c, int status, const char *reason)
{
	c->close_after = true;
	c->set->ops->error(c, status, reason);
}

/* The whole request is in c->in: answer it, then drop it from the buffer. */
static void conn_request(struct h1conn *c)
{
	const struct h1conn_ops *ops = c->set->ops;

	c->nreq++;
	if (!llhttp_should_keep_alive(&c->head.parser) || c->nreq >= ops->max_reqs || c->set->stopping)
		c->close_after = true;
	ops->request(c);
	if (ops->wipe)
		explicit_bzero(c->in, c->need);
	memmove(c->in, c->in + c->need, c->inlen - c->need);
	c->inlen -= c->need;
	c->have_head = false;
	c->need = 0;
	http_head_init(&c->head, HTTP_REQUEST, ops->max_headers);
}

/* Make every step that can progress: send pending output, answer buffered requests, read. */
static void conn_pump(struct h1conn *c)
{
	const struct h1conn_ops *ops = c->set->ops;
	struct loop *loop = c->set->loop;
	SSL *ssl = c->st.ssl;

	for (unsigned guard = 0; guard < 4 * ops->max_reqs + 64; guard++) {
		if (c->draining) {
			long n = sock_read(c->io.fd, c->in, c->incap);
			if (n == -EAGAIN) {
				io_want(loop, &c->io, EPOLLIN);
				return;
			}
			if (n <= 0 || (c->drained += (size_t)n) > ops->drain_max)
				goto close;
			continue;
		}
		if (c->outoff < c->outlen) {
			long n = stream_write(&c->st, c->out + c->outoff, c->outlen - c->outoff);
			if (n == -EAGAIN) {
				io_want(loop, &c->io, ssl && SSL_want_read(ssl) ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (n <= 0)
				goto close;
			c->outoff += (size_t)n;
			continue;
		}
		if (c->outlen) {
			if (ops->wipe)
				explicit_bzero(c->out, c->outlen);
			c->outlen = c->outoff = 0;
			if (c->close_after) {
				stream_shutdown(&c->st);   /* best effort close_notify */
				shutdown(c->io.fd, SHUT_WR);
				c->draining = true;
				timer_start(loop, &c->timer, ops->drain_ms);
				continue;
			}
		}
		if (c->close_after && !ops->answer_on_stop)
			goto close;
		if (c->inlen && !c->have_head) {
			enum http_parse_result r = http_head_parse(&c->head, c->in, c->inlen);
			if (r == HTTP_DONE) {
				c->have_head = true;
				ops->head(c);
				continue;
			}
			if (r == HTTP_ERROR) {
				conn_error(c, c->head.err_status ? c->head.err_status : 400,
					   c->head.err ? c->head.err : "malformed request");
				continue;
			}
			if (c->inlen >= ops->head_max) {
				conn_error(c, 431, "request head too large");
				continue;
			}
		}
		if (c->have_head && c->inlen >= c->need) {
			conn_request(c);
			continue;
		}
		c->st.want_write = false;
		long n = stream_read(&c->st, c->in + c->inlen, c->incap - c->inlen);
		if (n == -EAGAIN) {
			io_want(loop, &c->io, c->st.want_write ? EPOLLOUT : EPOLLIN);
			return;
		}
		if (n <= 0)
			goto close;
		c->inlen += (size_t)n;
		timer_start(loop, &c->timer, ops->idle_ms);
	}
close:
	h1conn_close(c);
}

static void conn_io_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)loop;
	(void)revents;
	conn_pump(container_of(io, struct h1conn, io));
}

static void conn_timer_cb(struct loop *loop, struct timer *t)
{
	(void)loop;
	h1conn_close(container_of(t, struct h1conn, timer));
}

int h1conn_open(struct h1conn_set *s, struct h1conn *c, int fd, const struct sockaddr_storage *ss,
		SSL_CTX *ctx)
{
	if (!c || stream_init(&c->st, fd, ctx)) {
		if (c)
			s->ops->free(c);
		close(fd);
		return -1;
	}
	c->set = s;
	struct ipaddr peer;
	ipaddr_from_sockaddr((const struct sockaddr *)ss, &peer);
	if (ipaddr_format(&peer, c->peer, sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "unknown");
	http_head_init(&c->head, HTTP_REQUEST, s->ops->max_headers);
	io_init(&c->io, fd, conn_io_cb);
	timer_init(&c->timer, conn_timer_cb);
	DLIST_PUSH(s->conns, c);
	s->n++;
	timer_start(s->loop, &c->timer, s->ops->idle_ms);
	conn_pump(c);
	return 0;
}

void h1conn_set_drain(struct h1conn_set *s)
{
	s->stopping = true;
	for (struct h1conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->draining)
			continue;   /* answered and half-closed: its own short timer ends it */
		if (!c->inlen && c->outoff >= c->outlen)
			h1conn_close(c);
		else
			c->close_after = true;
	}
}

void h1conn_set_teardown(struct h1conn_set *s)
{
	while (s->conns)
		h1conn_close(s->conns);
	loop_run_deferred(s->loop);
}

void h1conn_set_init(struct h1conn_set *s, const struct h1conn_ops *ops, struct loop *loop,
		     void **wstate)
{
	s->ops = ops;
	s->loop = loop;
	*wstate = s;
}

void h1conn_worker_drain(void *wstate)
{
	h1conn_set_drain(wstate);
}

bool h1conn_worker_busy(void *wstate)
{
	return ((struct h1conn_set *)wstate)->n > 0;
}

void h1conn_worker_teardown(void *wstate)
{
	h1conn_set_teardown(wstate);
}
