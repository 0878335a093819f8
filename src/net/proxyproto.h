/* proxyproto.h: the HAProxy PROXY protocol, v1 (text) and v2 (binary): parse the header a
 * trusted load balancer puts before the first byte of a connection, and build a v2 header to
 * send. A listener either requires it or never looks for it: it is never sniffed. */
#ifndef IPLOCK_NET_PROXYPROTO_H
#define IPLOCK_NET_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define PP_V1_MAX   107        /* longest v1 line, CRLF included */
#define PP_V2_MAX   (16 + 1024) /* longest v2 header we accept (TLVs included) */

enum pp_version {
	PP_OFF = 0,     /* listener takes no PROXY header */
	PP_V1,          /* listener requires a v1 text header */
	PP_V2,          /* listener requires a v2 binary header */
};

enum pp_kind {
	PP_KIND_PROXY = 0,  /* addresses relayed: src is the client */
	PP_KIND_LOCAL,      /* v2 LOCAL (health check by the proxy itself): use the real peer */
	PP_KIND_UNKNOWN,    /* v1 UNKNOWN or v2 with an unsupported family: client unknown */
};

struct pp_info {
	enum pp_kind kind;
	struct ipaddr src, dst;
	uint16_t sport, dport;
};

/* Parses a header of version `want` at buf[0..len). Returns bytes consumed (> 0), 0 when more
 * bytes are needed, or -EPROTO when malformed (*err says why). */
int proxyproto_parse(enum pp_version want, const uint8_t *buf, size_t len, struct pp_info *out,
		     const char **err);

/* A header being read from a socket (the balancer may split it across segments): the bytes
 * taken so far, never more than the header, so what follows (a ClientHello, a request head)
 * stays in the socket for whoever reads next. */
struct pp_reader {
	enum pp_version want;
	size_t len;
	uint8_t buf[PP_V2_MAX];
};

/* Takes what fd holds of the header (MSG_PEEK, then exactly the header's bytes). Returns 1 with
 * *out once complete, 0 when more is needed (nothing left to read now), -EPROTO when malformed
 * (*err says why), -ECONNRESET when the peer closed first, or another -errno. */
int proxyproto_recv(int fd, struct pp_reader *r, struct pp_info *out, const char **err);

/* Builds a v2 PROXY header (TCP over v4 or v6; families must match, else LOCAL).
 * Returns its length or -ENOSPC. */
int proxyproto_v2_build(const struct ipaddr *src, uint16_t sport, const struct ipaddr *dst,
			uint16_t dport, uint8_t *out, size_t cap);

/* Builds a v1 line. Returns its length or -ENOSPC. */
int proxyproto_v1_build(const struct ipaddr *src, uint16_t sport, const struct ipaddr *dst,
			uint16_t dport, char *out, size_t cap);

#endif
