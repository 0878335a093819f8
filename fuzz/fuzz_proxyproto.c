/* fuzz_proxyproto.c: PROXY protocol v1 and v2 headers; the first byte picks the version.
 * Properties: a parse never consumes more than it was given, and a header that parses as PROXY
 * round-trips: built again as v2 and as v1, it parses back to the same addresses and ports. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/proxyproto.h"

static void expect_same(const struct pp_info *a, const struct pp_info *b)
{
	if (b->kind != PP_KIND_PROXY || !ipaddr_equal(&a->src, &b->src) || !ipaddr_equal(&a->dst, &b->dst) ||
	    a->sport != b->sport || a->dport != b->dport)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info pi, back;
	const char *err;

	if (size < 1)
		return 0;
	enum pp_version v = data[0] & 1 ? PP_V2 : PP_V1;
	int r = proxyproto_parse(v, data + 1, size - 1, &pi, &err);
	if (r > 0 && (size_t)r > size - 1)
		__builtin_trap(); /* never consumes more than given */
	if (r > 0 && pi.kind == PP_KIND_PROXY) {
		uint8_t out[64];
		char line[PP_V1_MAX + 1];
		int n = proxyproto_v2_build(&pi.src, pi.sport, &pi.dst, pi.dport, out, sizeof(out));
		if (n <= 0 || proxyproto_parse(PP_V2, out, (size_t)n, &back, &err) != n)
			__builtin_trap();
		expect_same(&pi, &back);
		n = proxyproto_v1_build(&pi.src, pi.sport, &pi.dst, pi.dport, line, sizeof(line));
		if (n <= 0 || proxyproto_parse(PP_V1, (const uint8_t *)line, (size_t)n, &back, &err) != n)
			__builtin_trap();
		expect_same(&pi, &back);
	}
	return 0;
}
