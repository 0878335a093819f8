/* forward.h: absolute-form HTTP (forward.c): one request and its response streamed between
 * the client and the upstream, kept-alive upstreams reused. */
#ifndef IPLOCK_PROXY_FORWARD_H
#define IPLOCK_PROXY_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/session.h"

/* The request head for the upstream, in origin form, into s->out_u. 0 or -errno (too large). */
int session_upstream_head(struct session *s, const char *path, size_t pathlen);
void session_forward(struct session *s);

/* Whether the forwarded exchange reads the client (request body) or the upstream (response)
 * now: an event on a side it does not read is early (see c_early, u_early). */
static inline bool session_forward_reads_client(const struct session *s)
{
	return s->req_phase == FWD_BODY && !s->req_ready;
}
static inline bool session_forward_reads_upstream(const struct session *s)
{
	return s->resp_phase == FWD_WAIT_HEAD || (s->resp_phase == FWD_BODY && !s->resp_ready);
}
static inline bool session_forward_writes_upstream(const struct session *s)
{
	return s->req_phase == FWD_HEAD_OUT || (s->req_phase == FWD_BODY && s->req_ready);
}

#endif
