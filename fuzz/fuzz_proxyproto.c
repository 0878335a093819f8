/* fuzz_proxyproto.c: PROXY protocol v1 and v2 headers; the first byte picks the version (bit 0)
 * and the mode (bit 1).
 * Parse mode, properties: a parse never consumes more than it was given; every shorter prefix
 * of a header that parses asks for more bytes (0), never fails, which is what reading a header
 * split across segments (proxyproto_recv) relies on; and a header that parses as PROXY
 * round-trips: built again as v2 and as v1, it parses back to the same addresses and ports.
 * Build mode: the bytes are two addresses (v4 or v6 by a flag) and two ports; built as v2 and as
 * v1, each parses back to exactly those, consuming exactly the built length. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#include "net/proxyproto.h"

static void expect_same(const struct pp_info *a, const struct pp_info *b)
{
	if (b->kind != PP_KIND_PROXY || !ipaddr_equal(&a->src, &b->src) || !ipaddr_equal(&a->dst, &b->dst) ||
	    a->sport != b->sport || a->dport != b->dport)
		__builtin_trap();
}

static void roundtrip(const struct pp_info *pi)
{
	struct pp_info back;
	const char *err;
	uint8_t out[64];
	char line[PP_V1_MAX + 1];

	int n = proxyproto_v2_build(&pi->src, pi->sport, &pi->dst, pi->dport, out, sizeof(out));
	if (n <= 0 || proxyproto_parse(PP_V2, out, (size_t)n, &back, &err) != n)
		__builtin_trap();
	expect_same(pi, &back);
	n = proxyproto_v1_build(&pi->src, pi->sport, &pi->dst, pi->dport, line, sizeof(line));
	if (n <= 0 || proxyproto_parse(PP_V1, (const uint8_t *)line, (size_t)n, &back, &err) != n)
		__builtin_trap();
	expect_same(pi, &back);
}

/* An address from raw bytes, as the kernel would hand it over (a v4-mapped v6 reads as v4). */
static void addr_of(const uint8_t *p, bool v6, struct ipaddr *out)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, p, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p, 4);
	}
	ipaddr_from_sockaddr((const struct sockaddr *)&ss, out);
}

static void build_mode(const uint8_t *d, size_t size)
{
	struct pp_info pi;

	if (size < 1 + 32 + 4)
		return;
	memset(&pi, 0, sizeof(pi));
	bool v6 = d[0] & 1;
	addr_of(d + 1, v6, &pi.src);
	addr_of(d + 17, v6, &pi.dst);
	pi.sport = (uint16_t)(d[33] << 8 | d[34]);
	pi.dport = (uint16_t)(d[35] << 8 | d[36]);
	pi.kind = PP_KIND_PROXY;
	roundtrip(&pi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info pi, part;
	const char *err;

	if (size < 1)
		return 0;
	if (data[0] & 2) {
		build_mode(data + 1, size - 1);
		return 0;
	}
	enum pp_version v = data[0] & 1 ? PP_V2 : PP_V1;
	int r = proxyproto_parse(v, data + 1, size - 1, &pi, &err);
	if (r > 0 && (size_t)r > size - 1)
		__builtin_trap(); /* never consumes more than given */
	if (r > 0) {
		for (size_t k = 0; k < (size_t)r; k++)
			if (proxyproto_parse(v, data + 1, k, &part, &err) != 0)
				__builtin_trap();   /* a prefix of a good header needs more bytes */
	}
	if (r > 0 && pi.kind == PP_KIND_PROXY)
		roundtrip(&pi);
	return 0;
}
