/* respond.h: the proxy's own responses. Every error is an HTTP status with a one-line reason
 * and a small JSON body, because SDKs such as stripe-node hand a failed CONNECT's body to
 * their JSON parser and otherwise report only "Invalid JSON". The connection closes after. */
#ifndef IPLOCK_PROXY_RESPOND_H
#define IPLOCK_PROXY_RESPOND_H

#include <stddef.h>

struct session;
struct buf;

/* message must be a string constant (it is kept as the log reason) */
void respond_error(struct session *s, int status, const char *code, const char *message);
/* message is copied */
void respond_error_dup(struct session *s, int status, const char *code, const char *message);

/* session.c: send b (or close when NULL), log status and reason, close after. */
void session_reply(struct session *s, struct buf *b, int status, const char *reason);

/* A JSON answer of the proxy's own (the pool endpoint); the connection closes after. */
void respond_json(struct session *s, int status, const char *json, size_t len);

#endif
