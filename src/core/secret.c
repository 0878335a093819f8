/* secret.c: masking, constant-time comparison, random tokens and hashing (OpenSSL). */
#include "core/secret.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

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
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}
