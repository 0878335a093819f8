/* tls.h (net): server-side TLS contexts for every listener: the proxy's https:// hop, the
 * gate, iplock echo. Reads and writes go through net/stream. A CONNECT tunnel's payload stays
 * the client's own end-to-end TLS; only the hop to the proxy is ours. */
#ifndef IPLOCK_NET_TLS_H
#define IPLOCK_NET_TLS_H

#include <openssl/ssl.h>

/* A server context from PEM files; NULL and err set on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errcap);

#endif
