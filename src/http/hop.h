/* hop.h: hop-by-hop header fields (RFC 9110 7.6.1), one rule for every iplock intermediary
 * (the proxy and the gate), requests and responses alike: Connection and every field it
 * names, Keep-Alive, TE, Trailer, Upgrade and every Proxy-* field (Proxy-Connection,
 * Proxy-Authorization, Proxy-Authenticate, ...) are never passed on. Transfer-Encoding is
 * kept: bodies are relayed with their original framing, so it still describes them; for the
 * same reason Content-Length, Transfer-Encoding and Host stay even when Connection names
 * them (dropping them would let the next hop read the body as a smuggled request). */
#ifndef IPLOCK_HTTP_HOP_H
#define IPLOCK_HTTP_HOP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/head.h"

/* Is name hop-by-hop by itself (without looking at Connection)? */
bool http_hop_by_hop(const char *name, size_t len);

/* Is field i of h hop-by-hop: by name, or named in any Connection field of h? */
bool http_field_is_hop(const struct http_head *h, const char *base, size_t i);

/* A product's own extra rule: true = leave field i out too. */
typedef bool (*http_field_skip_fn)(void *arg, const char *name, size_t len);

/* Appends "Name: value\r\n" without printf (this runs for every header of every request):
 * 0, or -ENOSPC with b unchanged. */
int http_field_append(struct buf *b, const char *name, size_t nlen, const char *val, size_t vlen);

/* Appends "Name: value\r\n" for every end-to-end field of h to out, leaving out hop-by-hop
 * ones and those skip() names (skip may be NULL). -ENOSPC when out is full. */
int http_fields_copy(const struct http_head *h, const char *base, struct buf *out,
		     http_field_skip_fn skip, void *arg);

#endif
