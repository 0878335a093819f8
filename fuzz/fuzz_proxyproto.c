/* fuzz_proxyproto.c: PROXY protocol v1 and v2 headers; the first byte picks the version. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info pi;
	const char *err;

	if (size < 1)
		return 0;
	enum pp_version v = data[0] & 1 ? PP_V2 : PP_V1;
	int r = proxyproto_parse(v, data + 1, size - 1, &pi, &err);
	if (r > 0 && (size_t)r > size - 1)
		__builtin_trap(); /* never consumes more than given */
	if (r > 0 && pi.kind == PP_KIND_PROXY) {
		uint8_t out[64];
		char line[128];
		int n = proxyproto_v2_build(&pi.src, pi.sport, &pi.dst, pi.dport, out, sizeof(out));
		if (n > 0) {
			struct pp_info back;
			if (proxyproto_parse(PP_V2, out, (size_t)n, &back, &err) != n)
				__builtin_trap();
		}
		proxyproto_v1_build(&pi.src, pi.sport, &pi.dst, pi.dport, line, sizeof(line));
	}
	return 0;
}
