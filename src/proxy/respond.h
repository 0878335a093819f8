/* respond.h: the proxy's own HTTP responses. Every error is an HTTP status with a one-line
 * reason and a small JSON body, because SDKs such as stripe-node hand a failed CONNECT's body
 * to their JSON parser and otherwise report only "Invalid JSON". The connection closes after.
 * Only the bytes: the session sends them (session.h: session_error, session_json). */
#ifndef IPLOCK_PROXY_RESPOND_H
#define IPLOCK_PROXY_RESPOND_H

#include <stddef.h>

struct buf;

/* The whole response, or NULL when no buffer is free. */
struct buf *respond_error_build(int status, const char *code, const char *message);
struct buf *respond_json_build(int status, const char *json, size_t len);

#endif
