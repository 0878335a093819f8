/* socks_wire.h: SOCKS5 messages (RFC 1928, RFC 1929) parsed from bytes and the proxy's replies
 * built, no I/O: the session code (socks.c, session.c, route.c) acts on and sends them, the
 * fuzzer drives the parsers directly. Each parser
 * returns the bytes the message took (> 0), 0 when more bytes are needed, or -1 when the
 * message is malformed (*rep, where given, is the SOCKS5 reply code to send). */
#ifndef IPLOCK_PROXY_SOCKS_WIRE_H
#define IPLOCK_PROXY_SOCKS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/addr.h"

enum socks_rep {
	SOCKS_OK = 0x00,
	SOCKS_GENERAL_FAILURE = 0x01,
	SOCKS_NOT_ALLOWED = 0x02,          /* connection not allowed by ruleset */
	SOCKS_NET_UNREACHABLE = 0x03,
	SOCKS_HOST_UNREACHABLE = 0x04,
	SOCKS_CONN_REFUSED = 0x05,
	SOCKS_TTL_EXPIRED = 0x06,          /* used for connect timeouts */
	SOCKS_CMD_UNSUPPORTED = 0x07,
	SOCKS_ATYP_UNSUPPORTED = 0x08,
};

struct socks_greeting {
	bool offers_none;        /* method 0x00 */
	bool offers_userpass;    /* method 0x02 */
};

struct socks_userpass {
	const uint8_t *user, *pass;   /* point into the input */
	size_t ulen, plen;
};

struct socks_request {
	uint8_t cmd;             /* 1 = CONNECT */
	uint8_t atyp;            /* 1 IPv4, 3 domain name, 4 IPv6 */
	struct ipaddr ip;        /* atyp 1 or 4 (v4-mapped IPv6 becomes IPv4) */
	char name[256];          /* atyp 3, NUL-terminated (not yet validated as a host) */
	uint16_t port;
};

long socks_parse_greeting(const uint8_t *p, size_t n, struct socks_greeting *out);
long socks_parse_userpass(const uint8_t *p, size_t n, struct socks_userpass *out);
long socks_parse_request(const uint8_t *p, size_t n, struct socks_request *out, uint8_t *rep);

#define SOCKS_REPLY_MAX 22   /* VER REP RSV ATYP, an IPv6 address and a port */

/* A refusal for the proxy's error code (its JSON "code"; unknown ones: general failure).
 * Returns the length written to out (SOCKS_REPLY_MAX bytes of room). */
size_t socks_build_error(const char *code, unsigned char *out);
/* Success: BND.ADDR/PORT is bnd (the egress side of the upstream connection; an unknown
 * family gives 0.0.0.0:0). Returns the length written to out. */
size_t socks_build_success(const struct sockaddr_storage *bnd, unsigned char *out);

#endif
