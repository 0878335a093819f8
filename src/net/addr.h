/* addr.h: IP addresses and CIDR ranges: strict literal parsing (no octal, hex or short IPv4
 * forms), IPv4-mapped IPv6 normalised to IPv4, CIDR sets with fast membership, and the
 * special-purpose ranges a forward proxy must refuse by default. Pure code, no I/O. */
#ifndef IPLOCK_NET_ADDR_H
#define IPLOCK_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IPADDR_STRLEN 46       /* INET6_ADDRSTRLEN: longest ipaddr_format() output, NUL included */

/* An IPv4 or IPv6 address. IPv4 lives in a[0..3]; unused bytes are always zero, so two
 * addresses are equal when their bytes are. IPv4-mapped IPv6 (::ffff:a.b.c.d) is always
 * stored as AF_INET by the functions below. */
struct ipaddr {
	uint8_t family;        /* AF_INET or AF_INET6 (0 = unset) */
	uint8_t a[16];
};

/* Strict literal: IPv4 only as a dotted quad of 4 decimal parts 0-255 without leading zeros
 * ("01" is rejected, and so are 0x7f000001, 0177.0.0.1, 127.1, 2130706433); IPv6 as accepted
 * by inet_pton (at most 45 characters, no brackets, no zone). ::ffff:a.b.c.d becomes AF_INET. */
const char *ipaddr_parse(const char *s, size_t len, struct ipaddr *out);

/* Canonical text ("127.0.0.1", "2001:db8::1", no brackets). Returns 0 or -ENOSPC. */
int ipaddr_format(const struct ipaddr *ip, char *buf, size_t cap);

/* From a socket address; mapped IPv6 becomes AF_INET; other families give family 0. */
void ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out);

/* To a socket address with port (host order); returns its length, 0 for an unset family. */
socklen_t ipaddr_to_sockaddr(const struct ipaddr *ip, uint16_t port, struct sockaddr_storage *ss);

bool ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b);

/* If ip embeds an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16, or the
 * Teredo client address in 2001::/32), stores it in v4 and returns true. Teredo also embeds
 * its server address: which = 0 gives the client, which = 1 the server. */
bool ipaddr_embedded_v4(const struct ipaddr *ip, int which, struct ipaddr *v4);

/* A CIDR range: net has no host bits set; prefix 0-32 (v4) or 0-128 (v6). */
struct cidr {
	struct ipaddr net;
	uint8_t prefix;
};

/* "a.b.c.d/n", "v6/n", or a bare address (host route). Host bits set is an error ("host bits
 * set"), so are leading zeros in n. A v6 range inside ::ffff:0:0/96 (prefix >= 96) becomes
 * the equivalent IPv4 range. Address families never mix: a v6 range never contains v4. */
const char *cidr_parse(const char *s, size_t len, struct cidr *out);
bool cidr_contains(const struct cidr *c, const struct ipaddr *ip);
/* "10.0.0.0/8"; returns 0 or -ENOSPC. */
int cidr_format(const struct cidr *c, char *buf, size_t cap);

/* A growable set of CIDR ranges, v4 and v6, with O(log n) membership. Build it first (add),
 * then share it read-only: contains() never writes, so threads may call it concurrently. */
struct cidr_set;
struct cidr_set *cidr_set_new(void);
void cidr_set_free(struct cidr_set *set);
int cidr_set_add(struct cidr_set *set, const struct cidr *c);  /* 0, -ENOMEM, -EINVAL (no family) */
/* n at once, one merge (long lists); on an error the set may hold part of them */
int cidr_set_add_many(struct cidr_set *set, const struct cidr *c, size_t n);
bool cidr_set_contains(const struct cidr_set *set, const struct ipaddr *ip);
size_t cidr_set_count(const struct cidr_set *set);   /* successful adds, duplicates included */

/* NULL for an ordinary public unicast address, else the special-purpose range it falls in
 * ("127.0.0.0/8", "fe80::/10", ...): every range of the egress-proxy safety list plus a few
 * more IANA special ranges (see addr.c). For an address with an embedded IPv4 (NAT64, 6to4,
 * Teredo) whose IPv4 is special, the IPv4 range is returned, else the v6 range. */
const char *ipaddr_special_range(const struct ipaddr *ip);

/* The destination check of the proxy in one call: NULL if ip may be dialled, else the range
 * that refuses it. An address is refused when it is special and not covered by allow (may be
 * NULL); an address with an embedded IPv4 is also refused when that IPv4 is special and not
 * covered by allow (so allowing 64:ff9b::/96 for NAT64 does not open 64:ff9b::7f00:1). */
const char *ipaddr_check_destination(const struct ipaddr *ip, const struct cidr_set *allow);

#endif
