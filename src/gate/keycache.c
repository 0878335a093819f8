/* keycache.c: hash table of keys by SHA-256, refreshed from the store by change counter. */
#include "gate/keycache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/codec.h"
#include "core/secret.h"

struct keycache {
	struct store *st;           /* NULL for a detached cache */
	struct gate_key **buckets;
	size_t nbuckets;            /* power of two */
	size_t count;
	int64_t data_version;
	int64_t max_gen;
	uint64_t last_check_ms;
	bool checked_once;
	/* SHA-256 fetched once and one reused context: EVP_Digest() with the implicit
	 * EVP_sha256() looks the algorithm up under a lock and allocates a context per call,
	 * which was most of the gate's libcrypto time per request. NULL: secret_sha256_hex() */
	EVP_MD *sha256;
	EVP_MD_CTX *md_ctx;
};

static uint64_t hex64(const char *hex)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		char c = hex[i];
		v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
	}
	return v;
}

static void key_free(struct gate_key *k)
{
	if (!k)
		return;
	cidr_set_free(k->allow);
	free(k->perms);
	free(k);
}

struct keycache *keycache_new(void)
{
	struct keycache *kc = calloc(1, sizeof(*kc));

	if (!kc)
		return NULL;
	kc->nbuckets = 1024;
	kc->buckets = calloc(kc->nbuckets, sizeof(*kc->buckets));
	if (!kc->buckets) {
		free(kc);
		return NULL;
	}
	kc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	kc->md_ctx = kc->sha256 ? EVP_MD_CTX_new() : NULL;
	return kc;
}

void keycache_free(struct keycache *kc)
{
	if (!kc)
		return;
	for (size_t i = 0; i < kc->nbuckets; i++) {
		struct gate_key *k = kc->buckets[i];
		while (k) {
			struct gate_key *next = k->next;
			key_free(k);
			k = next;
		}
	}
	free(kc->buckets);
	store_close(kc->st);
	EVP_MD_CTX_free(kc->md_ctx);
	EVP_MD_free(kc->sha256);
	free(kc);
}

static int grow(struct keycache *kc)
{
	size_t n = kc->nbuckets * 2;
	struct gate_key **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < kc->nbuckets; i++) {
		struct gate_key *k = kc->buckets[i];
		while (k) {
			struct gate_key *next = k->next;
			k->next = b[k->h & (n - 1)];
			b[k->h & (n - 1)] = k;
			k = next;
		}
	}
	free(kc->buckets);
	kc->buckets = b;
	kc->nbuckets = n;
	return 0;
}

static struct gate_key *build(const struct key_info *ki)
{
	struct gate_key *k = calloc(1, sizeof(*k));

	if (!k || strlen(ki->hash) != SHA256_HEX_LEN)
		goto fail;
	memcpy(k->hash, ki->hash, sizeof(k->hash));
	k->h = hex64(ki->hash);
	memcpy(k->id, ki->id, sizeof(k->id));
	memcpy(k->masked, ki->masked, sizeof(k->masked));
	k->type = ki->type;
	k->mode = ki->mode;
	k->expires_at = ki->expires_at;
	k->revoked = ki->revoked_at != 0;
	if (ki->n_allow) {
		if (!(k->allow = cidr_set_new()))
			goto fail;
		for (size_t i = 0; i < ki->n_allow; i++) {
			struct cidr c;
			/* stored entries were validated on write; a bad one must not widen access */
			if (cidr_parse(ki->allow[i], strlen(ki->allow[i]), &c))
				continue;
			if (cidr_set_add(k->allow, &c))
				goto fail;
		}
	}
	if (ki->n_perms) {
		if (!(k->perms = malloc(ki->n_perms * sizeof(*k->perms))))
			goto fail;
		memcpy(k->perms, ki->perms, ki->n_perms * sizeof(*k->perms));
		k->n_perms = ki->n_perms;
	}
	return k;
fail:
	key_free(k);
	return NULL;
}

int keycache_put(struct keycache *kc, const struct key_info *ki)
{
	struct gate_key *k = build(ki), **pp;

	if (!k)
		return -ENOMEM;
	for (pp = &kc->buckets[k->h & (kc->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->hash, k->hash)) {
			struct gate_key *old = *pp;
			k->next = old->next;
			*pp = k;
			key_free(old);
			return 0;
		}
	}
	k->next = kc->buckets[k->h & (kc->nbuckets - 1)];
	kc->buckets[k->h & (kc->nbuckets - 1)] = k;
	kc->count++;
	if (kc->count > kc->nbuckets)
		(void)grow(kc); /* a failed grow only makes chains longer */
	return 0;
}

static int reload(struct keycache *kc)
{
	struct key_info *keys;
	size_t n;
	int64_t max_gen = kc->max_gen;
	int rc = store_key_changed(kc->st, kc->max_gen, &keys, &n, &max_gen);

	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = keycache_put(kc, &keys[i]);
	store_key_list_free(keys, n);
	if (rc)
		return rc;
	kc->max_gen = max_gen;
	return (int)n;
}

int keycache_open(const char *path, struct keycache **out)
{
	struct keycache *kc = keycache_new();
	int rc;

	*out = NULL;
	if (!kc)
		return -ENOMEM;
	if ((rc = store_open(path, &kc->st)))
		goto fail;
	if ((rc = store_data_version(kc->st, &kc->data_version)) < 0)
		goto fail;
	if ((rc = reload(kc)) < 0)
		goto fail;
	*out = kc;
	return 0;
fail:
	keycache_free(kc);
	return rc;
}

int keycache_refresh(struct keycache *kc, uint64_t now_ms, uint64_t min_interval_ms)
{
	int64_t v;
	int rc;

	if (!kc->st)
		return 0;
	if (kc->checked_once && now_ms - kc->last_check_ms < min_interval_ms)
		return 0;
	kc->checked_once = true;
	kc->last_check_ms = now_ms;
	if ((rc = store_data_version(kc->st, &v)))
		return rc;
	if (v == kc->data_version)
		return 0;
	kc->data_version = v;
	return reload(kc);
}

const struct gate_key *keycache_find_hash(const struct keycache *kc, const char *hex)
{
	uint64_t h = hex64(hex);

	for (const struct gate_key *k = kc->buckets[h & (kc->nbuckets - 1)]; k; k = k->next)
		if (k->h == h && !memcmp(k->hash, hex, SHA256_HEX_LEN))
			return k;
	return NULL;
}

const struct gate_key *keycache_find(const struct keycache *kc, const char *key, size_t len)
{
	char hex[SHA256_HEX_LEN + 1];
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (kc->md_ctx && EVP_DigestInit_ex2(kc->md_ctx, kc->sha256, NULL) == 1 &&
	    EVP_DigestUpdate(kc->md_ctx, key, len) == 1 &&
	    EVP_DigestFinal_ex(kc->md_ctx, md, &mdlen) == 1 && mdlen == sizeof(md)) {
		codec_hex_encode(md, sizeof(md), hex, sizeof(hex), false);
	} else {
		secret_sha256_hex(key, len, hex);
	}
	return keycache_find_hash(kc, hex);
}

size_t keycache_count(const struct keycache *kc)
{
	return kc->count;
}

enum perm_level gate_key_perm(const struct gate_key *k, const char *resource)
{
	for (size_t i = 0; i < k->n_perms; i++)
		if (!strcmp(k->perms[i].resource, resource))
			return k->perms[i].level;
	return PERM_NONE;
}
