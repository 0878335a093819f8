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

static void relay_env_of(struct session *s, struct relay_env *env, struct relay_io *io)
{
	*io = (struct relay_io){ hook_read, hook_write, hook_shutdown, hook_buffered, s };
	*env = (struct relay_env){ s->w->scratch, &s->w->pipes, s->splice, s->splice_auto, s->ssl ? io : NULL };
}

/* Send the 200 (or SOCKS reply) and any early client bytes; reads wait for epoll: right after
 * the connect neither side has usually sent anything, so reading now would only say EAGAIN. */
void relay_start(struct session *s)
{
	struct relay_io io;
	struct relay_env env;

	relay_env_of(s, &env, &io);
	relay_settle(s, relay_pair_flush(&s->relay, &env, s->w->loop));
	if (s->state != SESS_DONE && s->ssl && SSL_pending(s->ssl))
		relay_event(s, true, EPOLLIN);   /* bytes already decrypted inside OpenSSL */
}

void relay_event(struct session *s, bool from_client, uint32_t revents)
{
	struct relay_io io;
	struct relay_env env;

	relay_env_of(s, &env, &io);
	session_touch(s);
	/* once one direction is through, the other's FIN is followed at once by close(), which
	 * sends it (everything the other side sent was read, so no reset); TLS needs close_notify */
	s->relay.up.fin_by_close = s->relay.down.shut;
	s->relay.down.fin_by_close = s->relay.up.shut && !s->ssl;
	relay_settle(s, relay_pair_event(&s->relay, &env, s->w->loop, from_client, revents));
}

/* After moving bytes: end the tunnel on error or when both FINs are through. */
static void relay_settle(struct session *s, int rc)
{
	if (rc < 0 && !s->reason)
		s->reason = (rc == -ECONNRESET || rc == -EPIPE) ? "connection reset" : "relay error";
	if (rc)
		session_close(s);
}

void relay_release(struct session *s)
{
	relay_pair_release(&s->relay, &s->w->pipes);
}
