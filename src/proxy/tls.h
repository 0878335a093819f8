/* tls.h: the TLS hop from client to proxy (an HTTPS proxy URL). Only the client side of a
 * session can be TLS; the payload of a CONNECT tunnel stays the client's own end-to-end TLS. */
#ifndef IPLOCK_PROXY_TLS_H
#define IPLOCK_PROXY_TLS_H

#include <openssl/ssl.h>

/* A server context from PEM files; NULL and err set on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errcap);

/* Non-blocking I/O with socket semantics: bytes, 0 on a clean close, -EAGAIN, -errno. */
long tls_read(SSL *ssl, void *buf, size_t len);
long tls_write(SSL *ssl, const void *buf, size_t len);

#endif
