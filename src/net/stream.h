/* stream.h (net): a connected socket with optional TLS, for servers that speak to their
 * clients in plain text or TLS alike (the proxy, the gate, echo) and for iplock tunnel's
 * https:// proxy hop. read, write, handshake, shutdown, pending; socket semantics on both.
 * The one wrapper of OpenSSL reads and writes. May include core/ and net/ only. */
#ifndef IPLOCK_NET_STREAM_H
#define IPLOCK_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct stream {
	int fd;              /* borrowed: the owner's watcher closes it */
	SSL *ssl;            /* NULL: plain; owned (stream_free) */
	bool want_write;     /* the last TLS read or handshake waits for the socket to be writable */
};

/* A plain stream, or a server-side TLS one from ctx (NULL: plain). 0 or -errno. */
int stream_init(struct stream *st, int fd, SSL_CTX *ctx);
/* The same for the client side of TLS (the caller sets SNI and the name to verify on ssl). */
int stream_init_client(struct stream *st, int fd, SSL_CTX *ctx);
void stream_free(struct stream *st);   /* the TLS session; fd stays open */

static inline bool stream_is_tls(const struct stream *st) { return st->ssl != NULL; }

/* TLS handshake (server or client side): 1 done, 0 again later (want_write says for which
 * event), -EPROTO. */
int stream_handshake(struct stream *st);

/* Bytes read, 0 on a clean close, -EAGAIN, or -errno: the socket's own (-ECONNRESET for a
 * reset under TLS too), -EPROTO for a TLS failure. */
long stream_read(struct stream *st, void *buf, size_t len);
/* Bytes written (never 0), -EAGAIN, or -errno (-EPIPE after the peer's close_notify). */
long stream_write(struct stream *st, const void *buf, size_t len);

/* No more output: TLS sends close_notify once the handshake is done (a TLS client tells a
 * complete close-delimited body from a cut one by it); plain: shutdown(SHUT_WR). */
void stream_shutdown(struct stream *st);

/* Bytes TLS has decrypted and holds (epoll does not see them); 0 for plain. */
size_t stream_pending(const struct stream *st);
/* Input TLS holds that epoll cannot see: decrypted bytes or a record not yet processed. */
bool stream_has_input(const struct stream *st);

#endif
