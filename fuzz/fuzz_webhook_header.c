/* fuzz_webhook_header.c: the Stripe-Signature parser and verifier over arbitrary headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_header h;
	const char *hdr = (const char *)data;
	const char *err = webhook_parse_header(hdr, size, &h);

	if (!err) {
		if (h.ts[0] == '\0' || strlen(h.ts) >= WEBHOOK_TS_MAX)
			abort();
		for (size_t i = 0; i < h.n_sig && i < WEBHOOK_MAX_SIGS; i++)
			if (h.sig[i] < hdr || h.sig[i] + h.sig_len[i] > hdr + size)
				abort();
	}
	const char *secrets[2] = { "whsec_fuzz", "whsec_other" };
	const char *v = webhook_verify(hdr, size, "{}", 2, secrets, 2, 300, 1700000000, NULL);
	if ((err == NULL) != (v == NULL || strcmp(v, WEBHOOK_ERR_HEADER) != 0))
		abort(); /* verify fails on the header exactly when the parser does */
	return 0;
}
