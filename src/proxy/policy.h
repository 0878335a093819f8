/* policy.h: per-user destination allow rules ("api.stripe.com:443", "*.stripe.com:443",
 * "**.stripe.com:443"). */
#ifndef IPLOCK_PROXY_POLICY_H
#define IPLOCK_PROXY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/host.h"

/* host: lowercased name without trailing dot, or the canonical text of an IP literal.
 * wildcard with host "stripe.com": "*.stripe.com" (wild HOST_WILD_ONE) matches exactly one
 * more label, "**.stripe.com" (HOST_WILD_ANY) any depth; neither stripe.com itself (as in
 * [inbound] sni, see net/host.h). wildcard with host "" ("*") matches every host. */
struct dest_rule {
	char host[256];
	bool wildcard;
	enum host_wild wild;   /* with a host: HOST_WILD_ONE or HOST_WILD_ANY */
	uint16_t port;         /* 0 = any port ("host:*") */
};

/* "api.stripe.com:443", "*.stripe.com:443", "**.stripe.com:443", "host:*", "*:443", "[2001:db8::1]:443",
 * "192.0.2.7:443". The port (or '*') is required. Names follow host_parse (no numeric
 * tricks); a wildcard never applies to an IP literal. */
const char *dest_rule_parse(const char *s, size_t len, struct dest_rule *out);

/* Whether some rule admits host:port. host as the client sent it (case and one trailing dot
 * ignored, IPv6 with or without brackets). No rules (n == 0) means every destination. */
bool dest_rules_allow(const struct dest_rule *rules, size_t n, const char *host, uint16_t port);

#endif
