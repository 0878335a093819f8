/* link.h: a blocking client connection for `iplock verify` and `iplock scan --verify`: TCP with
 * poll() deadlines, and up to two TLS layers on top (TLS to an https:// proxy, then the
 * destination's own TLS inside the CONNECT tunnel). Every TLS layer reads and writes through
 * the layer below with a custom BIO, so nested TLS needs no special case. One HTTP/1.1 exchange
 * at a time. */
#ifndef IPLOCK_HTTP_LINK_H
#define IPLOCK_HTTP_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "http/resp.h"

#define VLINK_READ_CAP  (1024 * 1024)   /* bytes read for one response before giving up */

enum vlink_fail {
	VLINK_OK = 0,         /* no failure */
	VLINK_CONNECT,        /* TCP connect failed (refused, unreachable, name not found) */
	VLINK_TIMEOUT,        /* the deadline passed */
	VLINK_TLS,            /* handshake or certificate failure */
	VLINK_IO,             /* reset or closed mid-exchange */
	VLINK_PROTOCOL,       /* not HTTP, or too large */
};

struct vlink;
struct vlink_bio {
	struct vlink *link;
	int level;             /* the layer this BIO writes into: 0 = the socket, 1 = ssl[0] */
};

struct vlink {
	int fd;
	int nssl;
	SSL *ssl[2];
	struct vlink_bio bio[2];
	uint64_t deadline_ms;  /* loop_clock_ms() time when every wait gives up */
	enum vlink_fail fail;
	char err[320];         /* one line: why it failed */
};

/* A client TLS context: verify against cafile (or the system store when NULL). */
SSL_CTX *vlink_tls_ctx(const char *cafile, char *err, size_t cap);

void vlink_init(struct vlink *l, uint64_t deadline_ms);
/* host: an IP literal or a name (getaddrinfo); 0 or -1 with l->fail and l->err set. */
int vlink_connect(struct vlink *l, const char *host, uint16_t port);
/* Push a TLS layer (SNI for names; the certificate must match host); 0 or -1. */
int vlink_tls(struct vlink *l, SSL_CTX *ctx, const char *host, bool host_is_ip);
int vlink_write_all(struct vlink *l, const void *buf, size_t len);
/* Send req, read one response. connect: a 2xx ends at its head (the tunnel starts). */
int vlink_exchange(struct vlink *l, const char *req, size_t len, bool connect, struct vresp *out);
void vlink_close(struct vlink *l);
/* Free the BIO method at exit (so leak checkers see nothing left). */
void vlink_cleanup(void);

#endif
