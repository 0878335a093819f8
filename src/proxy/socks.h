/* socks.h: SOCKS5 negotiation (RFC 1928, RFC 1929) on a session (socks.c). */
#ifndef IPLOCK_PROXY_SOCKS_H
#define IPLOCK_PROXY_SOCKS_H

struct session;

void socks_input(struct session *s);   /* SESS_SOCKS: read from the client, then negotiate */
void socks_read(struct session *s);    /* negotiate on what cin holds */

#endif
