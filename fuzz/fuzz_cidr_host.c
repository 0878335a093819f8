/* fuzz_cidr_host.c: libFuzzer target for the address, CIDR, host, authority, port set,
 * destination rule and Basic credential parsers, with round-trip and consistency checks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/addr.h"
#include "net/host.h"
#include "proxy/auth.h"
#include "proxy/policy.h"

static struct auth_cache *cache;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct ipaddr ip, ip2;
	struct cidr c;
	struct host h;
	uint16_t port;
	char buf[IPADDR_STRLEN], *z;

	if (!ipaddr_parse(s, size, &ip)) {
		/* canonical text parses back to the same address; no special range crashes */
		if (ipaddr_format(&ip, buf, sizeof(buf)) || ipaddr_parse(buf, strlen(buf), &ip2) ||
		    !ipaddr_equal(&ip, &ip2))
			abort();
		(void)ipaddr_special_range(&ip);
		(void)ipaddr_check_destination(&ip, NULL);
	}
	if (!cidr_parse(s, size, &c)) {
		if (!cidr_contains(&c, &c.net))
			abort();
		struct cidr_set *set = cidr_set_new();
		if (set && !cidr_set_add(set, &c) && !cidr_set_contains(set, &c.net))
			abort();
		cidr_set_free(set);
	}
	if (!host_parse(s, size, &h)) {
		if (h.kind == HOST_NAME && strlen(h.name) > 253)
			abort();
	}
	if (!authority_parse(s, size, &h, &port, 0) && port == 0)
		abort();
	(void)authority_parse(s, size, &h, &port, 443);

	struct dest_rule r;
	if (!dest_rule_parse(s, size, &r) && !r.wildcard && !dest_rules_allow(&r, 1, r.host, r.port ? r.port : 1))
		abort();
	/* wildcards: "*." (one label) admits a subset of "**." (any depth); neither the bare
	 * suffix; a name that "*." admits has exactly one label more than the suffix */
	if (!dest_rule_parse(s, size, &r) && r.wildcard && r.host[0]) {
		static const char *const pre[] = { "a.", "a.b.", "x-y.z.w." };
		for (size_t i = 0; i < 3; i++) {
			char name[300];
			snprintf(name, sizeof(name), "%s%s", pre[i], r.host);
			bool one = host_wild_match(HOST_WILD_ONE, r.host, name, strlen(name));
			bool any = host_wild_match(HOST_WILD_ANY, r.host, name, strlen(name));
			if ((one && !any) || one != (i == 0) || !any)
				abort();
		}
		if (host_wild_match(r.wild, r.host, r.host, strlen(r.host)))
			abort();
	}

	if (!cache)
		cache = auth_cache_new();
	struct auth_result ar;
	if (cache && auth_check_basic(NULL, 0, 1, cache, s, size, &ar) == 0)
		abort();   /* no users: nothing can pass */

	if ((z = malloc(size + 1))) {
		struct portset ps;
		memcpy(z, data, size);
		z[size] = '\0';
		(void)portset_parse(z, &ps);
		free(z);
	}
	return 0;
}
