/* relay.c: CONNECT and SOCKS5 tunnels, on the byte relay of net/relay.c; `relay` in the config
 * picks splice or copy mode. FIN is passed on per direction (half-close), after pending bytes
 * are out. A TLS client's bytes go through its net/stream (copy mode only). */
#include "proxy/relay.h"

#include <errno.h>
#include <sys/socket.h>

#include "net/sock.h"

static long hook_read(void *ctx, int fd, void *buf, size_t len)
{
	const struct tunnel_env *t = ctx;

	return fd == t->client->fd ? stream_read(t->cs, buf, len) : sock_read(fd, buf, len);
}

static long hook_write(void *ctx, int fd, const void *buf, size_t len)
{
	const struct tunnel_env *t = ctx;

	return fd == t->client->fd ? stream_write(t->cs, buf, len) : sock_write(fd, buf, len);
}

static void hook_shutdown(void *ctx, int fd)
{
	const struct tunnel_env *t = ctx;

	if (fd == t->client->fd)
		stream_shutdown(t->cs);   /* close_notify; the peer's is not waited for */
	shutdown(fd, SHUT_WR);
}

static bool hook_buffered(void *ctx, int fd)
{
	const struct tunnel_env *t = ctx;

	return fd == t->client->fd && stream_pending(t->cs);
}

void tunnel_env_init(struct tunnel_env *t, struct relay_pair *p, struct stream *cs, struct loop *loop,
		     char *scratch, struct pipe_pool *pipes, bool splice, bool splice_auto)
{
	bool tls = stream_is_tls(cs);

	t->io = (struct relay_io){ hook_read, hook_write, hook_shutdown, hook_buffered, t };
	t->env = (struct relay_env){ scratch, pipes, splice, splice_auto, tls ? &t->io : NULL };
	t->cs = tls ? cs : NULL;
	t->client = p->a;
	t->loop = loop;
}

/* Send the 200 (or SOCKS reply) and any early client bytes; reads wait for epoll: right after
 * the connect neither side has usually sent anything, so reading now would only say EAGAIN. */
int relay_start(struct relay_pair *p, struct tunnel_env *t)
{
	int rc = relay_pair_flush(p, &t->env, t->loop);

	if (!rc && t->cs && stream_pending(t->cs))
		rc = relay_event(p, t, true, EPOLLIN);   /* bytes already decrypted inside OpenSSL */
	return rc;
}

int relay_event(struct relay_pair *p, struct tunnel_env *t, bool from_client, uint32_t revents)
{
	/* once one direction is through, the other's FIN is followed at once by close(), which
	 * sends it (everything the other side sent was read, so no reset); TLS needs close_notify */
	p->up.fin_by_close = p->down.shut;
	p->down.fin_by_close = p->up.shut && !t->cs;
	return relay_pair_event(p, &t->env, t->loop, from_client, revents);
}
