/* pwhash.c: PBKDF2-SHA256 password hashes (pwhash.h). */
#include "core/pwhash.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/codec.h"
#include "core/secret.h"

#define HASH_PREFIX     "pbkdf2-sha256$"
#define SALT_LEN        16
#define KEY_LEN         32
#define ITER_MIN        1000
#define ITER_MAX        10000000

int pwhash_make(const char *pw, size_t len, unsigned iterations, char *out, size_t cap)
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char salt64[32], key64[48];
	int rc = 0;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(pw, (int)len, salt, sizeof(salt), (int)iterations, EVP_sha256(),
			      sizeof(key), key) != 1) {
		rc = -EIO;
		goto out;
	}
	codec_b64_encode(salt, sizeof(salt), salt64, sizeof(salt64), 0);
	codec_b64_encode(key, sizeof(key), key64, sizeof(key64), 0);
	int n = snprintf(out, cap, HASH_PREFIX "%u$%s$%s", iterations, salt64, key64);
	if (n < 0 || (size_t)n >= cap)
		rc = -ENOSPC;
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

struct parsed_hash {
	unsigned iterations;
	unsigned char salt[64], key[64];
	int salt_len, key_len;
};

static const char *hash_parse(const char *hash, struct parsed_hash *ph)
{
	size_t plen = sizeof(HASH_PREFIX) - 1;

	if (strncmp(hash, HASH_PREFIX, plen) != 0)
		return "password_hash must start with pbkdf2-sha256$ (make one with iplock passwd)";
	const char *p = hash + plen;
	const char *d1 = strchr(p, '$');
	if (!d1)
		return "password_hash: missing salt";
	const char *d2 = strchr(d1 + 1, '$');
	if (!d2 || strchr(d2 + 1, '$'))
		return "password_hash: expected pbkdf2-sha256$ITERATIONS$SALT$HASH";
	unsigned long it = 0;
	if (d1 == p || d1 - p > 8 || *p == '0')
		return "password_hash: bad iteration count";
	for (const char *q = p; q < d1; q++) {
		if (*q < '0' || *q > '9')
			return "password_hash: bad iteration count";
		it = it * 10 + (unsigned long)(*q - '0');
	}
	if (it < ITER_MIN || it > ITER_MAX)
		return "password_hash: iterations must be 1000-10000000";
	ph->iterations = (unsigned)it;
	ph->salt_len = codec_b64_decode_whole(d1 + 1, (size_t)(d2 - d1 - 1), ph->salt, sizeof(ph->salt));
	if (ph->salt_len < 8)
		return "password_hash: bad salt";
	ph->key_len = codec_b64_decode_whole(d2 + 1, strlen(d2 + 1), ph->key, sizeof(ph->key));
	if (ph->key_len < 16)
		return "password_hash: bad hash";
	return NULL;
}

const char *pwhash_check(const char *hash)
{
	struct parsed_hash ph;
	return hash_parse(hash, &ph);
}

bool pwhash_verify(const char *hash, const char *pw, size_t len)
{
	struct parsed_hash ph;
	unsigned char key[64];
	bool ok = false;

	if (hash_parse(hash, &ph) || len > INT32_MAX)
		return false;
	if (PKCS5_PBKDF2_HMAC(pw, (int)len, ph.salt, ph.salt_len, (int)ph.iterations, EVP_sha256(),
			      ph.key_len, key) == 1)
		ok = secret_equal(key, (size_t)ph.key_len, ph.key, (size_t)ph.key_len);
	OPENSSL_cleanse(key, sizeof(key));
	return ok;
}

