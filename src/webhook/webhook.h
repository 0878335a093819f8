/* webhook.h: Stripe-compatible webhook signatures (`Stripe-Signature` header).
 *
 * Header: `t=<unix seconds>,v1=<64 hex>[,v1=...][,v0=...]`. The signature is the lowercase hex
 * HMAC-SHA256 of `<t>.<raw payload>` keyed with the whole secret string (`whsec_...` as bytes).
 * Parsing follows stripe-python exactly: split on ',', each item on '=' (the value ends at a
 * second '='), the first `t` wins, every `v1` is a candidate, `v0` and unknown schemes are
 * ignored. Errors are the SDK's messages, checked in the SDK's order: header, scheme, signature,
 * then timestamp age. */
#ifndef IPLOCK_WEBHOOK_H
#define IPLOCK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_DEFAULT_TOLERANCE 300   /* seconds, as in Stripe's SDKs */
#define WEBHOOK_SIG_HEX 64
#define WEBHOOK_MAX_SIGS 16             /* v1 candidates kept from one header */
#define WEBHOOK_HEADER_MAX 8192         /* longest header we parse */
#define WEBHOOK_TS_MAX 40               /* digits of a normalised timestamp, NUL included */

/* The SDK's error messages (stripe-python / stripe-node). */
#define WEBHOOK_ERR_HEADER "Unable to extract timestamp and signatures from header"
#define WEBHOOK_ERR_SCHEME "No signatures found with expected scheme v1"
#define WEBHOOK_ERR_MATCH  "No signatures found matching the expected signature for payload"
#define WEBHOOK_ERR_STALE  "Timestamp outside the tolerance zone"

struct webhook_header {
	char ts[WEBHOOK_TS_MAX];        /* timestamp as signed: decimal, normalised like int() */
	int64_t t;                      /* the same, saturated to int64 */
	const char *sig[WEBHOOK_MAX_SIGS]; /* v1 values, pointing into the header */
	size_t sig_len[WEBHOOK_MAX_SIGS];
	size_t n_sig;
};

/* Parses a Stripe-Signature value. NULL = ok (n_sig may be 0), else WEBHOOK_ERR_HEADER. */
const char *webhook_parse_header(const char *hdr, size_t len, struct webhook_header *out);

/* Writes `t=<ts>,v1=<sig>` (one v1 per secret, in order) to out, NUL-terminated.
 * Returns the length written or -EINVAL (no secret) / -ENOSPC (out too small). */
int webhook_sign(const char *const *secrets, size_t n_secrets, int64_t timestamp,
		 const void *payload, size_t len, char *out, size_t cap);

/* One signature: lowercase hex HMAC-SHA256 of "<ts>.<payload>" keyed with secret. */
void webhook_signature(const char *secret, size_t secret_len, const char *ts,
		       const void *payload, size_t len, char out[WEBHOOK_SIG_HEX + 1]);

/* Verifies hdr for payload against any of the secrets (several while a secret is rolled).
 * tolerance in seconds (0 disables the age check, as in the SDKs: unsafe); now is unix time.
 * Returns NULL when valid, else one of the WEBHOOK_ERR_* messages. *t_out (may be NULL)
 * receives the header's timestamp when it parsed. */
const char *webhook_verify(const char *hdr, size_t hdr_len, const void *payload, size_t len,
			   const char *const *secrets, size_t n_secrets, int64_t tolerance,
			   int64_t now, int64_t *t_out);

#endif
