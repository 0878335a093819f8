/* fuzz_verify.c: libFuzzer target for what `iplock verify` parses from others: URLs given on
 * the command line and HTTP responses from proxies, echoes and APIs (fed whole, then byte by
 * byte, which must agree). The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/resp.h"
#include "http/url.h"

static struct vresp ra, rb;

static enum vresp_result parse(const char *s, size_t n, bool connect, size_t step, struct vresp *r)
{
	struct vresp_parser p;
	const char *err = NULL;
	size_t used;

	vresp_parser_init(&p, r, connect);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		enum vresp_result res = vresp_parser_feed(&p, s + off, k, &used, &err);
		if (res == VRESP_ERROR && !err)
			abort();
		if (res != VRESP_MORE)
			return res;
	}
	return vresp_parser_eof(&p, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const char *s = (const char *)data + 1;
	size_t n = size - 1;

	if (sel & 1) {
		char *z = malloc(n + 1);
		struct vurl u;
		char buf[VURL_HOST_MAX + VURL_CRED_MAX + VURL_PATH_MAX + 64];
		if (!z)
			return 0;
		memcpy(z, s, n);
		z[n] = '\0';
		if (!vurl_parse(z, &u)) {
			vurl_display(&u, true, buf, sizeof(buf));
			vurl_authority(&u, buf, sizeof(buf));
			if (strlen(u.path) == 0 || u.path[0] != '/' || u.port == 0)
				abort();
		}
		free(z);
		return 0;
	}
	bool connect = sel & 2;
	enum vresp_result a = parse(s, n, connect, n ? n : 1, &ra);
	enum vresp_result b = parse(s, n, connect, 1, &rb);
	if (ra.body_len > VRESP_BODY_CAP || ra.body[ra.body_len] != '\0')
		abort();
	/* whole or byte by byte: the same verdict, status and body */
	if (a != b || (a == VRESP_DONE && (ra.status != rb.status || ra.body_len != rb.body_len ||
					    memcmp(ra.body, rb.body, ra.body_len))))
		abort();
	return 0;
}
