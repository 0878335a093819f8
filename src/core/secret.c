/* secret.c: masking, constant-time comparison, random tokens and hashing (OpenSSL). */
#include "core/secret.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/codec.h"

void secret_mask(const char *secret, size_t len, char out[SECRET_MASK_MAX])
{
	size_t prefix = 0;

	/* The prefix names the kind of secret (sk_live_, whsec_): safe and useful to show. */
	for (size_t i = 0; i < len && i < 16; i++)
		if (secret[i] == '_')
			prefix = i + 1;
	if (len < 12)
		prefix = prefix < len / 2 ? prefix : 0;
	memcpy(out, secret, prefix);
	memcpy(out + prefix, "****", 4);
	size_t n = prefix + 4;
	if (len >= 12) {
		memcpy(out + n, secret + len - 4, 4);
		n += 4;
	}
	out[n] = '\0';
}

#define REDACT_BODY_MIN 8

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Length of the key-like token at s (n bytes left), or 0: a known prefix, optional "word_"
 * parts, at least REDACT_BODY_MIN letters/digits, then the rest of the word ([A-Za-z0-9_]:
 * keys pasted back to back are one token). *prefix_len receives the length of the prefix. */
static size_t key_token_len(const char *s, size_t n, size_t *prefix_len)
{
	static const char *const prefixes[] = { "sk_", "rk_", "pk_", "whsec_" };

	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		size_t i = strlen(prefixes[p]);
		if (n < i || memcmp(s, prefixes[p], i))
			continue;
		/* live_, test_, org_live_: short lowercase words each ended by '_' */
		for (int seg = 0; seg < 3; seg++) {
			size_t j = i;
			while (j < n && s[j] >= 'a' && s[j] <= 'z' && j - i < 8)
				j++;
			if (j == i || j >= n || s[j] != '_')
				break;
			i = j + 1;
		}
		size_t body = i;
		while (i < n && is_alnum(s[i]))
			i++;
		if (i - body < REDACT_BODY_MIN)
			return 0;
		while (i < n && (is_alnum(s[i]) || s[i] == '_'))
			i++;
		*prefix_len = body;
		return i;
	}
	return 0;
}

size_t secret_redact(char *s, size_t len)
{
	size_t r = 0, w = 0, pl = 0;
	char prev = '\0';   /* the last input character, before any rewrite */

	while (r < len) {
		size_t n = !is_alnum(prev) ? key_token_len(s + r, len - r, &pl) : 0;
		if (!n) {
			prev = s[r];
			s[w++] = s[r++];
			continue;
		}
		prev = s[r + n - 1];
		/* prefix + "****" + last 4, as secret_mask() shows a key; never longer than the token
		 * (its body has at least 8 characters), so the rewrite stays in place */
		char tail[4];
		memcpy(tail, s + r + n - 4, 4);
		memmove(s + w, s + r, pl);
		memcpy(s + w + pl, "****", 4);
		memcpy(s + w + pl + 4, tail, 4);
		w += pl + 8;
		r += n;
	}
	if (w < len)
		s[w] = '\0';
	return w;
}

bool secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

int secret_random_alnum(char *out, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char pool[64];
	size_t have = 0, used = 0;

	while (have < n) {
		if (used == sizeof(pool) || used == 0) {
			if (RAND_bytes(pool, sizeof(pool)) != 1)
				return -EIO;
			used = 0;
		}
		unsigned char c = pool[used++];
		if (c < 248) /* 248 = 4 * 62: values above would bias the first letters */
			out[have++] = alphabet[c % 62];
		if (used == sizeof(pool))
			used = 0;
	}
	out[n] = '\0';
	OPENSSL_cleanse(pool, sizeof(pool));
	return 0;
}

void secret_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	codec_hex_encode(md, sizeof(md), out, SHA256_HEX_LEN + 1, false);
}
