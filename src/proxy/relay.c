/* relay.c: CONNECT tunnels, on the byte relay of net/relay.c; `relay` in the config picks
 * splice or copy mode. FIN is passed on per direction (half-close), after pending bytes are out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/relay.h"
#include "proxy/session.h"

int pipe_take(struct worker *w, int p[2])
{
	return pipe_pool_take(&w->pipes, p);
}

void pipe_give(struct worker *w, int p[2])
{
	pipe_pool_give(&w->pipes, p);
}

/* The client side may be TLS (tls_listen): its bytes go through OpenSSL. */
static long hook_read(void *ctx, int fd, void *buf, size_t len)
{
	return sess_read(ctx, fd, buf, len);
}

static long hook_write(void *ctx, int fd, const void *buf, size_t len)
{
	return sess_write(ctx, fd, buf, len);
}

static void hook_shutdown(void *ctx, int fd)
{
	sess_shutdown_write(ctx, fd);
}

static bool hook_buffered(void *ctx, int fd)
{
	struct session *s = ctx;

	return s->ssl && fd == s->cio.fd && SSL_pending(s->ssl);
}

static void relay_settle(struct session *s, int rc);

/* Send the 200 (or SOCKS reply) and any early client bytes; reads wait for epoll: right after
 * the connect neither side has usually sent anything, so reading now would only say EAGAIN. */
void relay_start(struct session *s)
{
	struct relay_io io = { hook_read, hook_write, hook_shutdown, hook_buffered, s };
	struct relay_env env = { s->w->scratch, &s->w->pipes, s->splice, s->splice_auto, s->ssl ? &io : NULL };
	int rc = relay_dir_flush(&env, &s->down, s->cio.fd, &s->bytes_down);

	if (!rc)
		rc = relay_dir_flush(&env, &s->up, s->uio.fd, &s->bytes_up);
	relay_settle(s, rc);
	if (s->state != SESS_DONE && s->ssl && SSL_pending(s->ssl))
		relay_event(s, true, EPOLLIN);   /* bytes already decrypted inside OpenSSL */
}

void relay_event(struct session *s, bool from_client, uint32_t revents)
{
	struct relay_io io = { hook_read, hook_write, hook_shutdown, hook_buffered, s };
	struct relay_env env = { s->w->scratch, &s->w->pipes, s->splice, s->splice_auto, s->ssl ? &io : NULL };
	int rc = 0;
	bool both = revents & (EPOLLERR | EPOLLHUP);

	session_touch(s);
	/* once one direction is through, the other's FIN is followed at once by close(), which
	 * sends it (everything the other side sent was read, so no reset); TLS needs close_notify */
	s->up.fin_by_close = s->down.shut;
	s->down.fin_by_close = s->up.shut && !s->ssl;
	/* readable client or writable upstream move bytes up; the reverse moves them down */
	if (both || (from_client ? (revents & EPOLLIN) : (revents & EPOLLOUT)))
		rc = relay_dir_pump(&env, &s->up, s->cio.fd, s->uio.fd, &s->bytes_up);
	if (!rc && (both || (from_client ? (revents & EPOLLOUT) : (revents & EPOLLIN))))
		rc = relay_dir_pump(&env, &s->down, s->uio.fd, s->cio.fd, &s->bytes_down);
	relay_settle(s, rc);
}

/* After moving bytes: end the tunnel on error or when both FINs are through, else re-arm. */
static void relay_settle(struct session *s, int rc)
{
	uint32_t cev, uev;

	if (rc) {
		if (!s->reason)
			s->reason = (rc == -ECONNRESET || rc == -EPIPE) ? "connection reset" : "relay error";
		session_close(s);
		return;
	}
	if (s->up.shut && s->down.shut) {
		session_close(s);
		return;
	}
	relay_interest(&s->up, &s->down, &cev, &uev);
	io_want(s->w->loop, &s->cio, cev);
	io_want(s->w->loop, &s->uio, uev);
}

void relay_release(struct session *s)
{
	relay_dir_release(&s->up, &s->w->pipes);
	relay_dir_release(&s->down, &s->w->pipes);
}
