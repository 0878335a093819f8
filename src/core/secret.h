/* secret.h: handling secrets safely: masking for display and logs, constant-time comparison,
 * CSPRNG tokens, SHA-256. Every secret that reaches a log or a terminal goes through
 * secret_mask() first. */
#ifndef IPLOCK_SECRET_H
#define IPLOCK_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_MASK_MAX 48     /* room for the longest masked form, NUL included */
#define SHA256_HEX_LEN  64

/* "sk_live_abc…wxyz" -> "sk_live_****wxyz": the prefix up to its last '_' (at most 16 bytes)
 * and the last 4 characters. Secrets shorter than 12 bytes show no tail. Always NUL-terminates. */
void secret_mask(const char *secret, size_t len, char out[SECRET_MASK_MAX]);

/* Masks, in place, every API key or webhook secret in the len bytes at s: a word starting
 * (not inside a word) with sk_, rk_, pk_ or whsec_, then up to three lowercase "word_" parts
 * (live_, test_, org_) and at least 8 letters/digits, becomes prefix + "****" + its last 4
 * (as secret_mask() shows a key); the rest of the word ([A-Za-z0-9_]) goes with it. The text
 * only shrinks; a NUL is written after it when it did. Returns the new length. For any
 * message, log line or error that may echo user input. */
size_t secret_redact(char *s, size_t len);

/* Constant-time equality of two byte strings of the same length (false when lengths differ). */
bool secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/* n random letters and digits from the CSPRNG (rejection-sampled, no modulo bias), NUL added.
 * Returns 0 or -EIO. */
int secret_random_alnum(char *out, size_t n);

/* SHA-256 of data as 64 lowercase hex digits plus NUL. */
void secret_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
