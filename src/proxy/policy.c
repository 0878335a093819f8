/* policy.c: destination allow rules. */
#include "proxy/policy.h"

#include <string.h>
#include <strings.h>

const char *dest_rule_parse(const char *s, size_t len, struct dest_rule *out)
{
	const char *colon, *err;
	struct host h;

	memset(out, 0, sizeof(*out));
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return "missing ']' after IPv6 address";
		colon = close + 1 < s + len && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
			return "IPv6 address must be in brackets";
	}
	if (!colon)
		return "rule needs a port: host:PORT or host:*";
	size_t hlen = (size_t)(colon - s), plen = len - hlen - 1;
	if (plen == 1 && colon[1] == '*') {
		out->port = 0;
	} else if ((err = port_parse(colon + 1, plen, &out->port))) {
		return err;
	}
	if (hlen == 1 && s[0] == '*') {
		out->wildcard = true;
		return NULL;
	}
	size_t skip;
	enum host_wild wild = host_wild_prefix(s, hlen, &skip);
	if (wild != HOST_WILD_NONE) {
		if (memchr(s + skip, '*', hlen - skip)) {
			err = "'*' only as a whole host or as a leading \"*.\" or \"**.\"";
			goto fail;
		}
		if ((err = host_parse(s + skip, hlen - skip, &h)))
			goto fail;
		if (h.kind != HOST_NAME) {
			err = "a wildcard applies to names, not IP addresses";
			goto fail;
		}
		out->wildcard = true;
		out->wild = wild;
	} else if (memchr(s, '*', hlen)) {
		err = "'*' only as a whole host or as a leading \"*.\" or \"**.\"";
		goto fail;
	} else if ((err = host_parse(s, hlen, &h))) {
		goto fail;
	}
	memcpy(out->host, h.name, sizeof(out->host));
	return NULL;
fail:
	memset(out, 0, sizeof(*out));
	return err;
}

bool dest_rules_allow(const struct dest_rule *rules, size_t n, const char *host, uint16_t port)
{
	size_t hlen = strlen(host);

	if (n == 0)
		return true;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < n; i++) {
		const struct dest_rule *r = &rules[i];
		size_t rlen = strlen(r->host);
		if (r->port && r->port != port)
			continue;
		if (r->wildcard && rlen == 0)
			return true;
		if (r->wildcard) {
			/* "*.stripe.com": one label before ".stripe.com"; "**.stripe.com": any depth */
			if (host_wild_match(r->wild, r->host, host, hlen))
				return true;
		} else if (hlen == rlen && strncasecmp(host, r->host, rlen) == 0) {
			return true;
		}
	}
	return false;
}
