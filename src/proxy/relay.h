/* relay.h: the byte relay of the proxy's CONNECT and SOCKS5 tunnels, on the relay pair of
 * net/relay: the client side may be TLS (tls_listen), and `relay` in the config picks splice
 * or copy mode. It moves bytes and says when the tunnel is over; the session closes it. */
#ifndef IPLOCK_PROXY_RELAY_H
#define IPLOCK_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/relay.h"
#include "net/tls.h"

/* What one tunnel's relay works with (a: the client, b: the upstream). */
struct tunnel_env {
	struct relay_env env;
	struct relay_io io;
	SSL *ssl;                    /* the client side's TLS, or NULL */
	const struct io *client;
	struct loop *loop;
};

void tunnel_env_init(struct tunnel_env *t, struct relay_pair *p, SSL *ssl, struct loop *loop, char *scratch,
		     struct pipe_pool *pipes, bool splice, bool splice_auto);

/* As relay_pair_event (0 goes on, 1 both FINs through, -errno: end). */
int relay_start(struct relay_pair *p, struct tunnel_env *t);   /* queued bytes out, then events */
int relay_event(struct relay_pair *p, struct tunnel_env *t, bool from_client, uint32_t revents);

#endif
