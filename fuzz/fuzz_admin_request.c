/* fuzz_admin_request.c: libFuzzer target for the admin listener's request-line router. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool head;
	enum admin_route r = admin_route_parse((const char *)data, size, &head);

	/* only the two paths are ever served, and only to GET or HEAD */
	if (r == ADMIN_METRICS || r == ADMIN_HEALTHZ) {
		const char *p = memchr(data, ' ', size);
		if (!p || (size_t)(p - (const char *)data) + 9 > size ||
		    (memcmp(p + 1, "/metrics", 8) && memcmp(p + 1, "/healthz", 8)))
			abort();
		if (!head && memcmp(data, "GET ", 4))
			abort();
	}
	return 0;
}
