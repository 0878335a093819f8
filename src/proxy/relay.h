/* relay.h: the byte relay of the proxy's CONNECT and SOCKS5 tunnels, on the relay pair of
 * net/relay: the client side may be TLS (tls_listen), and `relay` in the config picks splice
 * or copy mode. It moves bytes and says when the tunnel is over; the session closes it. */
#ifndef IPLOCK_PROXY_RELAY_H
#define IPLOCK_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/relay.h"
#include "net/stream.h"

/* What one tunnel's relay works with (a: the client, b: the upstream). */
struct tunnel_env {
	struct relay_env env;
	struct relay_io io;
	struct stream *cs;           /* the client's stream when it is TLS, else NULL */
	const struct io *client;
	struct loop *loop;
};

/* cs: the client's stream; its hooks are used only when it is TLS (plain bytes may splice). */
void tunnel_env_init(struct tunnel_env *t, struct relay_pair *p, struct stream *cs, struct loop *loop,
		     char *scratch, struct pipe_pool *pipes, bool splice, bool splice_auto);

/* As relay_pair_event (0 goes on, 1 both FINs through, -errno: end). */
int relay_start(struct relay_pair *p, struct tunnel_env *t);   /* queued bytes out, then events */
int relay_event(struct relay_pair *p, struct tunnel_env *t, bool from_client, uint32_t revents);

#endif
