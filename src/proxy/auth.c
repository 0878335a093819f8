/* auth.c: PBKDF2 password hashes and the cached Basic credential check. */
#include "proxy/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/codec.h"
#include "core/pwhash.h"
#include "core/secret.h"

#define CACHE_SLOTS     1024
#define NEG_SLOTS       256

struct cache_entry {
	unsigned char key[32];
	uint64_t generation;
	int user, pin;
	bool valid;
};

struct neg_entry {
	unsigned char key[32];
	uint64_t generation;
	bool valid;
};

/* Failed password checks per client address, so a flood of guesses cannot spend a worker's
 * CPU on PBKDF2: past AUTH_FAIL_LIMIT failures in AUTH_FAIL_WINDOW_MS an address gets only
 * cached verdicts (a client whose credentials were already verified is not locked out). */
#define FAIL_SLOTS 512
struct fail_entry {
	struct ipaddr ip;
	uint64_t window_start_ms;
	unsigned failures;
};

struct auth_cache {
	struct fail_entry fails[FAIL_SLOTS];
	unsigned char salt[32];      /* keys the cache hash: a memory dump gives no plain SHA-256 of credentials */
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	struct auth_cache_stats stats;
	struct cache_entry pos[CACHE_SLOTS];
	struct neg_entry neg[NEG_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
	struct auth_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->md = EVP_MD_CTX_new();
	if (!c->sha256 || !c->md || RAND_bytes(c->salt, sizeof(c->salt)) != 1) {
		auth_cache_free(c);
		return NULL;
	}
	return c;
}

void auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

void auth_cache_stats(const struct auth_cache *c, struct auth_cache_stats *out)
{
	*out = c->stats;
}

int auth_hash_password_iter(const char *pw, size_t len, unsigned iterations, char *out, size_t cap)
{
	return pwhash_make(pw, len, iterations, out, cap);
}

int auth_hash_password(const char *pw, size_t len, char *out, size_t cap)
{
	return pwhash_make(pw, len, AUTH_PBKDF2_ITERATIONS, out, cap);
}

static int cache_key(struct auth_cache *c, const char *cred, size_t len, unsigned char key[32])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex(c->md, c->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(c->md, c->salt, sizeof(c->salt)) != 1 ||
	    EVP_DigestUpdate(c->md, cred, len) != 1 || EVP_DigestFinal_ex(c->md, key, &n) != 1)
		return -EIO;
	return 0;
}

/* "egress=2[+...]": fills *pin. */
static int parse_options(const char *s, size_t len, int *pin)
{
	size_t i = 0;

	while (i <= len) {
		const char *opt = s + i;
		const char *end = memchr(opt, '+', len - i);
		size_t olen = end ? (size_t)(end - opt) : len - i;
		static const char egress[] = "egress=";
		size_t elen = sizeof(egress) - 1;
		if (olen > elen && olen <= elen + 2 && memcmp(opt, egress, elen) == 0 && *pin == -1) {
			int v = 0;
			for (size_t k = elen; k < olen; k++) {
				if (opt[k] < '0' || opt[k] > '9')
					return -EINVAL;
				v = v * 10 + (opt[k] - '0');
			}
			if (opt[elen] == '0' || v < 1 || v > EGRESS_MAX)
				return -EINVAL;
			*pin = v;
		} else {
			return -EINVAL;    /* unknown, repeated or empty option */
		}
		i += olen + 1;
	}
	return 0;
}

static struct fail_entry *fail_slot(struct auth_cache *cache, const struct ipaddr *ip)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(ip->a); i++)
		h = (h ^ ip->a[i]) * 16777619u;
	return &cache->fails[(h ^ ip->family) % FAIL_SLOTS];
}

bool auth_client_throttled(struct auth_cache *cache, const struct ipaddr *ip, uint64_t now_ms)
{
	struct fail_entry *f = fail_slot(cache, ip);

	return ipaddr_equal(&f->ip, ip) && now_ms - f->window_start_ms < AUTH_FAIL_WINDOW_MS &&
	       f->failures >= AUTH_FAIL_LIMIT;
}

void auth_client_failed(struct auth_cache *cache, const struct ipaddr *ip, uint64_t now_ms)
{
	struct fail_entry *f = fail_slot(cache, ip);

	if (!ipaddr_equal(&f->ip, ip) || now_ms - f->window_start_ms >= AUTH_FAIL_WINDOW_MS) {
		f->ip = *ip;
		f->window_start_ms = now_ms;
		f->failures = 0;
	}
	f->failures++;
}

int auth_check_basic(const struct proxy_user *users, size_t nusers, uint64_t generation,
		     struct auth_cache *cache, const char *header_value, size_t len,
		     struct auth_result *out)
{
	return auth_check_basic_ex(users, nusers, generation, cache, header_value, len, true, out);
}

int auth_check_basic_ex(const struct proxy_user *users, size_t nusers, uint64_t generation,
			struct auth_cache *cache, const char *header_value, size_t len,
			bool allow_slow, struct auth_result *out)
{
	unsigned char key[32], dec[AUTH_CREDENTIAL_MAX];
	int rc = -EACCES, declen = 0;
	size_t i = 0;

	out->user = -1;
	out->egress_pin = -1;
	if (!header_value)
		return -EACCES;
	while (i < len && (header_value[i] == ' ' || header_value[i] == '\t'))
		i++;
	if (len - i < 5 || strncasecmp(header_value + i, "basic", 5) != 0)
		return -EACCES;             /* missing or another scheme: ask for Basic */
	i += 5;
	if (i < len && header_value[i] != ' ' && header_value[i] != '\t')
		return -EACCES;             /* "Basicfoo" is another scheme */
	while (i < len && (header_value[i] == ' ' || header_value[i] == '\t'))
		i++;
	size_t end = len;
	while (end > i && (header_value[end - 1] == ' ' || header_value[end - 1] == '\t'))
		end--;
	const char *cred = header_value + i;
	size_t clen = end - i;
	if (clen == 0 || clen > AUTH_CREDENTIAL_MAX)
		return -EINVAL;
	if (cache_key(cache, cred, clen, key) < 0)
		return -EIO;

	struct cache_entry *e = &cache->pos[(key[0] | key[1] << 8) % CACHE_SLOTS];
	if (e->valid && e->generation == generation && (size_t)e->user < nusers &&
	    CRYPTO_memcmp(e->key, key, sizeof(key)) == 0) {
		cache->stats.hits++;
		out->user = e->user;
		out->egress_pin = e->pin;
		return 0;
	}
	struct neg_entry *ne = &cache->neg[key[2] % NEG_SLOTS];
	if (ne->valid && ne->generation == generation && CRYPTO_memcmp(ne->key, key, sizeof(key)) == 0) {
		cache->stats.neg_hits++;
		return -EACCES;
	}

	if (!allow_slow)
		return -EAGAIN;
	declen = codec_b64_decode_whole(cred, clen, dec, sizeof(dec));
	if (declen < 0 || memchr(dec, '\0', (size_t)declen)) {
		rc = -EINVAL;
		goto out;
	}
	const char *colon = memchr(dec, ':', (size_t)declen);
	if (!colon) {
		rc = -EINVAL;
		goto out;
	}
	size_t ulen = (size_t)(colon - (const char *)dec);
	const char *plus = memchr(dec, '+', ulen);
	size_t nlen = plus ? (size_t)(plus - (const char *)dec) : ulen;
	int pin = -1;
	if (plus && parse_options(plus + 1, ulen - nlen - 1, &pin) < 0) {
		rc = -EINVAL;
		goto out;
	}
	int user = -1;
	for (size_t u = 0; u < nusers; u++) {
		if (strlen(users[u].name) == nlen && memcmp(users[u].name, dec, nlen) == 0) {
			user = (int)u;
			break;
		}
	}
	rc = -EACCES;
	if (user >= 0) {
		cache->stats.pbkdf2++;
		const struct proxy_user *pu = &users[user];
		size_t pwlen = (size_t)declen - ulen - 1;
		if (pwhash_verify(pu->password_hash, colon + 1, pwlen))
			rc = 0;
		/* a rotated-out password during its overlap (users_db); the table is rebuilt, with
		 * a new generation, when the overlap ends, so no cache entry outlives it */
		else if (pu->old_hash[0] && (int64_t)time(NULL) < pu->old_expires &&
			 pwhash_verify(pu->old_hash, colon + 1, pwlen))
			rc = 0;
	}
	if (rc == 0) {
		*e = (struct cache_entry){ .generation = generation, .user = user, .pin = pin, .valid = true };
		memcpy(e->key, key, sizeof(key));
		out->user = user;
		out->egress_pin = pin;
	} else {
		*ne = (struct neg_entry){ .generation = generation, .valid = true };
		memcpy(ne->key, key, sizeof(key));
	}
out:
	OPENSSL_cleanse(dec, sizeof(dec));
	return rc;
}
