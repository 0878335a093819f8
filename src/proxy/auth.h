/* auth.h: proxy users' passwords (PBKDF2-SHA256 hashes) and Proxy-Authorization: Basic checks
 * with a per-worker cache, so a verified credential costs one SHA-256, not a PBKDF2. */
#ifndef IPLOCK_PROXY_AUTH_H
#define IPLOCK_PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "proxy/config.h"

#define AUTH_PBKDF2_ITERATIONS 100000
#define AUTH_HASH_MAX 160               /* room for any hash auth_hash_password() writes */
#define AUTH_CREDENTIAL_MAX 1024        /* base64 credential characters accepted */

/* A per-worker cache (no locks: one per thread). Positive entries: 1024 direct-mapped slots
 * keyed by SHA-256(per-cache random salt || base64 credential), valued user index, egress pin
 * and config generation; a hit skips PBKDF2. Negative entries: 256 slots of credentials that
 * failed, so a client retrying the same wrong password in a loop costs one SHA-256 per try;
 * distinct wrong passwords still cost a PBKDF2 each (throttle failures per client above). */
struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *cache);

struct auth_cache_stats {
	uint64_t hits;          /* verified from the positive cache */
	uint64_t neg_hits;      /* refused from the negative cache */
	uint64_t pbkdf2;        /* full password verifications */
};
void auth_cache_stats(const struct auth_cache *cache, struct auth_cache_stats *out);

struct auth_result {
	int user;               /* index in the user table */
	int egress_pin;         /* -1, or 1-based from "alice+egress=2" */
};

/* header_value: the Proxy-Authorization value, "Basic <base64(user:password)>" (scheme case-
 * insensitive). The user part may carry options after '+': "egress=N" (1-32), several joined
 * by '+'. Returns 0 (out filled), -EACCES (missing, other scheme, unknown user, wrong
 * password) or -EINVAL (malformed: bad base64, no ':', unknown option). generation must
 * change whenever users change (proxy_config.generation). */
int auth_check_basic(const struct proxy_user *users, size_t nusers, uint64_t generation,
		     struct auth_cache *cache, const char *header_value, size_t len,
		     struct auth_result *out);

/* "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>" with a random 16-byte salt and a 32-byte
 * key. Returns 0, -ENOSPC or -EIO. */
/* The same with a choice: allow_slow = false answers only from the caches and returns -EAGAIN
 * where a full password check would be needed. */
int auth_check_basic_ex(const struct proxy_user *users, size_t nusers, uint64_t generation,
			struct auth_cache *cache, const char *header_value, size_t len,
			bool allow_slow, struct auth_result *out);

/* Per client address failure accounting (per worker): throttled addresses get cached verdicts only. */
#define AUTH_FAIL_LIMIT 10
#define AUTH_FAIL_WINDOW_MS 60000
bool auth_client_throttled(struct auth_cache *cache, const struct ipaddr *ip, uint64_t now_ms);
void auth_client_failed(struct auth_cache *cache, const struct ipaddr *ip, uint64_t now_ms);

int auth_hash_password(const char *pw, size_t len, char *out, size_t cap);
int auth_hash_password_iter(const char *pw, size_t len, unsigned iterations, char *out, size_t cap);

/* Checking a hash's form and a password against it: core/pwhash (pwhash_check, pwhash_verify). */

#endif
