/* tls_sni.h: the server name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), read without
 * decrypting anything, so an inbound endpoint can route by hostname and relay the bytes
 * untouched. Strict: anything that is not a well-formed ClientHello is refused. Pure code. */
#ifndef IPLOCK_NET_TLS_SNI_H
#define IPLOCK_NET_TLS_SNI_H

#include <stddef.h>
#include <stdint.h>

#define TLS_SNI_NAME_MAX  253          /* a DNS name; the buffer takes one more for the NUL */
#define TLS_HELLO_MAX     16384        /* the largest ClientHello accepted (handshake bytes) */

/* buf[0..len) is what the client sent first: TLS records (the ClientHello may span several).
 * Returns 1 with the lowercased host name in name (NUL-terminated), 0 when more bytes are
 * needed, -ENOENT for a complete ClientHello without a server name, or -EPROTO when the bytes
 * are not a well-formed ClientHello (*err says why). */
int tls_sni_parse(const uint8_t *buf, size_t len, char name[TLS_SNI_NAME_MAX + 1], const char **err);

#endif
