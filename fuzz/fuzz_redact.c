/* fuzz_redact.c: secret_redact() over arbitrary text, with a known key planted in it.
 * Properties: the text never grows; redacting twice changes nothing more; text without any
 * key prefix is untouched; no 8-character run of the planted key's body survives. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"

#define FUZZ_MAX 4096

static const char planted[] = " sk_live_Q7xR2mK9pL4vN8wT3yZ6bC1dF5gH";
#define BODY_AT 9   /* planted + BODY_AT is the body */

static int has_prefix(const char *s, size_t n)
{
	static const char *const p[] = { "sk_", "rk_", "pk_", "whsec_" };

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < 4; k++)
			if (n - i >= strlen(p[k]) && !memcmp(s + i, p[k], strlen(p[k])))
				return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[FUZZ_MAX + sizeof(planted)], out[sizeof(in)], again[sizeof(in)];

	if (size < 1 || size > FUZZ_MAX)
		return 0;
	/* the first byte says where the key goes (or 255: no key) */
	size_t n = size - 1, at = data[0] == 255 ? SIZE_MAX : data[0] % (n + 1);
	size_t len = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == at) {
			memcpy(in + len, planted, sizeof(planted) - 1);
			len += sizeof(planted) - 1;
		}
		if (i < n)
			in[len++] = (char)data[1 + i];
	}
	memcpy(out, in, len);
	size_t m = secret_redact(out, len);
	if (m > len)
		abort();
	if (!has_prefix(in, len) && (m != len || memcmp(in, out, len)))
		abort();   /* nothing that looks like a key: nothing changes */
	memcpy(again, out, m);
	if (secret_redact(again, m) != m || memcmp(again, out, m))
		abort();   /* the masked form is never masked again */
	if (at != SIZE_MAX) {
		const char *body = planted + BODY_AT;
		size_t blen = strlen(body);
		for (size_t i = 0; i + 8 <= blen; i++) {
			/* a run the fuzzer itself wrote elsewhere may legitimately stay */
			if (memmem(data + 1, n, body + i, 8))
				continue;
			if (memmem(out, m, body + i, 8))
				abort();
		}
	}
	return 0;
}
