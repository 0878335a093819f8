/* tls.h (net): server-side TLS contexts and non-blocking TLS I/O for every listener: the
 * proxy's https:// hop, iplock echo, and the client side of iplock tunnel. A CONNECT tunnel's
 * payload stays the client's own end-to-end TLS; only the hop to the proxy is ours. */
#ifndef IPLOCK_NET_TLS_H
#define IPLOCK_NET_TLS_H

#include <openssl/ssl.h>

/* A server context from PEM files; NULL and err set on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errcap);

/* Non-blocking I/O with socket semantics: bytes, 0 on a clean close, -EAGAIN, -errno. */
long tls_read(SSL *ssl, void *buf, size_t len);
long tls_write(SSL *ssl, const void *buf, size_t len);

#endif
