/* pwhash.h: PBKDF2-SHA256 password hashes, "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>"
 * (a random 16-byte salt, a 32-byte key): the proxy's users and the console's users. */
#ifndef IPLOCK_CORE_PWHASH_H
#define IPLOCK_CORE_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

/* A new hash of pw with the given iteration count. 0, -ENOSPC or -EIO. */
int pwhash_make(const char *pw, size_t len, unsigned iterations, char *out, size_t cap);
/* NULL if hash is well formed (iterations 1000-10000000), else why not. */
const char *pwhash_check(const char *hash);
/* Constant-time comparison of the derived key; false for a malformed hash. */
bool pwhash_verify(const char *hash, const char *pw, size_t len);

#endif
