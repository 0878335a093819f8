/* keyfmt.h: the text of API keys, apart from the store's rules: the type and mode names, the
 * prefixes, parsing a presented key, and generating a new one (id, secret, its hash and masked
 * form). sk_live_ sk_test_ (secret), rk_live_ rk_test_ (restricted), pk_live_ pk_test_
 * (publishable), sk_org_live_ sk_org_test_ (organization; we give org keys a mode too), each
 * followed by 99 letters/digits when generated; any [A-Za-z0-9]{10,247} body is accepted when
 * parsing a presented key. May include: core/ only. */
#ifndef IPLOCK_KEYFMT_H
#define IPLOCK_KEYFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/secret.h"

#define STORE_ID_LEN      20   /* "key_" + 16 letters/digits */
#define STORE_ID_MAX      (STORE_ID_LEN + 1)
#define STORE_RESOURCE_MAX 63  /* bytes of a resource name, [a-z0-9_.] */
#define STORE_KEY_BODY    99   /* random letters/digits in a generated key */
#define STORE_KEY_MAX     (16 + 247 + 1) /* longest accepted key text plus NUL */

enum key_type {
	KEY_SECRET = 0,     /* sk_: every API */
	KEY_RESTRICTED,     /* rk_: per-resource none/read/write */
	KEY_PUBLISHABLE,    /* pk_: only routes marked publishable; never IP-restricted */
	KEY_ORG,            /* sk_org_: needs Stripe-Context and Stripe-Version */
};

enum key_mode {
	KEY_LIVE = 0,       /* _live_ */
	KEY_TEST,           /* _test_ */
};

enum perm_level {
	PERM_NONE = 0,      /* no access to the resource */
	PERM_READ,          /* GET/HEAD */
	PERM_WRITE,         /* every method; implies read */
};

/* Key text helpers. */
const char *key_type_name(enum key_type t);          /* "secret", "restricted", ... */
const char *key_mode_name(enum key_mode m);          /* "live", "test" */
const char *perm_level_name(enum perm_level l);      /* "none", "read", "write" */
bool key_type_parse(const char *s, enum key_type *out);
bool key_mode_parse(const char *s, enum key_mode *out);
bool perm_level_parse(const char *s, enum perm_level *out);
bool store_resource_valid(const char *s);
/* 1-max bytes, each an ASCII letter (lower case only unless upper), a digit or one of extra:
 * the rule of every name the store keeps (resources, console users and tokens). */
bool store_name_chars_valid(const char *s, size_t max, bool upper, const char *extra);
/* Prefix of generated keys, e.g. "sk_org_test_". */
const char *key_prefix(enum key_type t, enum key_mode m);
/* Recognises a presented key's prefix and body ([A-Za-z0-9]{10,247}); false if not a key. */
bool key_parse(const char *key, size_t len, enum key_type *type, enum key_mode *mode);

/* A new key: id "key_" + 16 letters/digits, the secret (prefix + STORE_KEY_BODY letters/digits,
 * NUL-terminated, in secret_out of cap bytes), its SHA-256 hex and masked form.
 * 0, -ENOBUFS when cap is too small, -EIO when the random source failed. */
int keyfmt_generate(enum key_type t, enum key_mode m, char *secret_out, size_t cap,
		    char id_out[STORE_ID_MAX], char hash_out[SHA256_HEX_LEN + 1],
		    char masked_out[SECRET_MASK_MAX]);

#endif
