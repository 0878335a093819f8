/* keyfmt.c: names, prefixes, parsing and generation of API keys (see keyfmt.h).
 * store/ owns the API-key store: its rules (store.c), the key formats (keyfmt.c) and the two
 * backends (store_sqlite.c, store_pg.c). It may include core/, net/ (addresses of allowlist
 * entries) and http/, never a product. */
#include "store/keyfmt.h"

#include <errno.h>
#include <string.h>

static const char *const type_names[] = { "secret", "restricted", "publishable", "org" };
static const char *const mode_names[] = { "live", "test" };
static const char *const level_names[] = { "none", "read", "write" };

const char *key_type_name(enum key_type t)
{
	return (unsigned)t < 4 ? type_names[t] : "?";
}

const char *key_mode_name(enum key_mode m)
{
	return (unsigned)m < 2 ? mode_names[m] : "?";
}

const char *perm_level_name(enum perm_level l)
{
	return (unsigned)l < 3 ? level_names[l] : "?";
}

bool key_type_parse(const char *s, enum key_type *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, type_names[i])) {
			*out = (enum key_type)i;
			return true;
		}
	return false;
}

bool key_mode_parse(const char *s, enum key_mode *out)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum key_mode)i;
			return true;
		}
	return false;
}

bool perm_level_parse(const char *s, enum perm_level *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, level_names[i])) {
			*out = (enum perm_level)i;
			return true;
		}
	return false;
}

bool store_name_chars_valid(const char *s, size_t max, bool upper, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (upper && c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c)))
			return false;
	}
	return true;
}

bool store_resource_valid(const char *s)
{
	return store_name_chars_valid(s, STORE_RESOURCE_MAX, false, "_.");
}

static const char *const prefixes[4][2] = {
	[KEY_SECRET] = { "sk_live_", "sk_test_" },
	[KEY_RESTRICTED] = { "rk_live_", "rk_test_" },
	[KEY_PUBLISHABLE] = { "pk_live_", "pk_test_" },
	[KEY_ORG] = { "sk_org_live_", "sk_org_test_" },
};

const char *key_prefix(enum key_type t, enum key_mode m)
{
	if ((unsigned)t >= 4 || (unsigned)m >= 2)
		return "";
	return prefixes[t][m];
}

bool key_parse(const char *key, size_t len, enum key_type *type, enum key_mode *mode)
{
	/* org first: "sk_org_" would otherwise never match since "sk_" has no "org_" mode */
	static const enum key_type order[] = { KEY_ORG, KEY_SECRET, KEY_RESTRICTED, KEY_PUBLISHABLE };

	for (size_t i = 0; i < 4; i++) {
		for (int m = 0; m < 2; m++) {
			const char *p = prefixes[order[i]][m];
			size_t pl = strlen(p);
			if (len < pl || memcmp(key, p, pl))
				continue;
			size_t body = len - pl;
			if (body < 10 || body > 247)
				return false;
			for (size_t j = pl; j < len; j++) {
				char c = key[j];
				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9')))
					return false;
			}
			if (type)
				*type = order[i];
			if (mode)
				*mode = (enum key_mode)m;
			return true;
		}
	}
	return false;
}

int keyfmt_generate(enum key_type t, enum key_mode m, char *secret_out, size_t cap,
		    char id_out[STORE_ID_MAX], char hash_out[SHA256_HEX_LEN + 1],
		    char masked_out[SECRET_MASK_MAX])
{
	const char *prefix = key_prefix(t, m);
	size_t pl = strlen(prefix);

	if (cap < pl + STORE_KEY_BODY + 1)
		return -ENOBUFS;
	memcpy(id_out, "key_", 4);
	memcpy(secret_out, prefix, pl);
	if (secret_random_alnum(id_out + 4, STORE_ID_LEN - 4) ||
	    secret_random_alnum(secret_out + pl, STORE_KEY_BODY))
		return -EIO;
	secret_sha256_hex(secret_out, pl + STORE_KEY_BODY, hash_out);
	secret_mask(secret_out, pl + STORE_KEY_BODY, masked_out);
	return 0;
}
