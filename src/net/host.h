/* host.h: destination hosts and ports as a proxy receives them: IP literals (strict) or DNS
 * names (LDH), "host:port" authorities, and port sets ("443 80 8000-9000"). */
#ifndef IPLOCK_NET_HOST_H
#define IPLOCK_NET_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

enum host_kind {
	HOST_NAME = 1,         /* a DNS name to resolve */
	HOST_IP,               /* an IP literal, never resolved */
};

/* name: for HOST_NAME the lowercased name without trailing dot; for HOST_IP the canonical
 * text of ip without brackets ("127.0.0.1", "2001:db8::1"), handy for rules and logs. */
struct host {
	enum host_kind kind;
	char name[256];
	struct ipaddr ip;
};

/* An IP literal (strict, see ipaddr_parse; IPv6 bare or in [brackets]) or a DNS name:
 * labels of letters, digits, '-' and '_' (1-63 chars, no '-' at either end), total <= 253,
 * one trailing dot allowed. A name whose last label is numeric (all digits, or 0x and hex
 * digits) is refused with "ambiguous numeric host": resolvers may read "0x7f000001",
 * "0177.0.0.1", "127.1" or "2130706433" as 127.0.0.1, so it is never resolved. */
const char *host_parse(const char *s, size_t len, struct host *out);

/* "host:port", "[v6]:port" or "host" (default_port; 0 = port required). Ports 1-65535,
 * decimal, no sign or leading zero. A bare IPv6 address without brackets is refused. */
const char *authority_parse(const char *s, size_t len, struct host *out, uint16_t *port,
			    uint16_t default_port);

/* A listener's address: "IP:port" or "[v6]:port", never a name, into *ss and *len. NULL, or
 * authority_parse's reason, "the address must be an IP literal and a port (127.0.0.1:8090,
 * [::1]:8090)" or "unusable address". */
const char *host_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* A port: decimal 1-65535, no sign, no leading zero. */
const char *port_parse(const char *s, size_t len, uint16_t *port);

/* Name patterns, the same in [user] allow and [inbound] sni: "*.example.com" matches exactly
 * one more label (a.example.com, not a.b.example.com), as a TLS certificate's wildcard does
 * (RFC 6125); "**.example.com" matches one or more labels at any depth. Neither matches
 * example.com itself. */
enum host_wild {
	HOST_WILD_NONE = 0,    /* an exact name */
	HOST_WILD_ONE,         /* "*." */
	HOST_WILD_ANY,         /* "**." */
};

/* The wildcard prefix of pattern s (len bytes): HOST_WILD_ONE for "*.", HOST_WILD_ANY for
 * "**.", else HOST_WILD_NONE; *skip = the prefix's length. */
enum host_wild host_wild_prefix(const char *s, size_t len, size_t *skip);

/* Whether name (len bytes, any case, no trailing dot) is below suffix (lowercased, without
 * the wildcard prefix) as wild says; with HOST_WILD_NONE, whether the two are equal. */
bool host_wild_match(enum host_wild wild, const char *suffix, const char *name, size_t len);

/* A set of TCP ports, one bit each. */
struct portset {
	uint8_t bits[8192];
};

/* "443 80 8000-9000": ports and inclusive ranges separated by spaces, tabs or commas; at
 * least one. Port 0 is refused. */
const char *portset_parse(const char *s, struct portset *out);
bool portset_has(const struct portset *set, uint16_t port);
void portset_add(struct portset *set, uint16_t lo, uint16_t hi);

#endif
