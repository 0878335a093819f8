/* request.h: an HTTP request head on a session (request.c): read, parse, admit, then dial or
 * reuse the kept-alive upstream. */
#ifndef IPLOCK_PROXY_REQUEST_H
#define IPLOCK_PROXY_REQUEST_H

struct session;

void session_head_read(struct session *s);       /* SESS_HEAD: read from the client, then parse */
void session_head_continue(struct session *s);   /* parse what cin holds of the next head */

#endif
