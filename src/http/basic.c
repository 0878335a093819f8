/* basic.c: the Basic credential header (basic.h).
 * http/ owns HTTP/1: heads and body framing on llhttp (head.c: the one head parser, requests
 * and responses), local replies and status texts, the hop-by-hop rule, request targets, URLs
 * and the blocking client (link.c, resp.c). It may include core/ and net/ only. */
#include "http/basic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/codec.h"

long http_basic_line(const char *header, const char *user, const char *password, char *out,
		     size_t cap)
{
	char plain[HTTP_BASIC_PLAIN_MAX + 1], b64[CODEC_B64_ENCLEN(HTTP_BASIC_PLAIN_MAX) + 1];
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, password);
	long rc = -ENOSPC;

	if (cap)
		out[0] = '\0';
	if (n < 0 || (size_t)n >= sizeof(plain))
		goto out;
	long len = codec_b64_encode(plain, (size_t)n, b64, sizeof(b64), 0);
	if (len < 0)
		goto out;
	int m = snprintf(out, cap, "%s: Basic %s\r\n", header, b64);
	if (m < 0 || (size_t)m >= cap) {
		OPENSSL_cleanse(out, cap);
		if (cap)
			out[0] = '\0';
		goto out;
	}
	rc = m;
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(b64, sizeof(b64));
	return rc;
}
