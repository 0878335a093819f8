/* test_keyfmt.c: key generation in store/keyfmt: every type and mode gives a key that parses
 * back as itself, with its hash and masked form, fresh each time; a short buffer is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "store/keyfmt.h"

static void test_generate(void **state)
{
	char secret[STORE_KEY_MAX], id[STORE_ID_MAX], hash[SHA256_HEX_LEN + 1], masked[SECRET_MASK_MAX];
	char prev_id[STORE_ID_MAX] = "", prev_secret[STORE_KEY_MAX] = "", want[SHA256_HEX_LEN + 1];
	(void)state;

	for (int t = KEY_SECRET; t <= KEY_ORG; t++)
		for (int m = KEY_LIVE; m <= KEY_TEST; m++) {
			enum key_type pt;
			enum key_mode pm;
			const char *prefix = key_prefix((enum key_type)t, (enum key_mode)m);
			assert_int_equal(keyfmt_generate((enum key_type)t, (enum key_mode)m, secret, sizeof(secret),
							 id, hash, masked), 0);
			assert_int_equal(strlen(secret), strlen(prefix) + STORE_KEY_BODY);
			assert_memory_equal(secret, prefix, strlen(prefix));
			assert_true(key_parse(secret, strlen(secret), &pt, &pm));
			assert_int_equal(pt, t);
			assert_int_equal(pm, m);
			assert_int_equal(strlen(id), STORE_ID_LEN);
			assert_memory_equal(id, "key_", 4);
			secret_sha256_hex(secret, strlen(secret), want);
			assert_string_equal(hash, want);
			/* the masked form keeps the prefix and the last 4, never the body */
			assert_memory_equal(masked, prefix, strlen(prefix));
			assert_string_equal(masked + strlen(masked) - 4, secret + strlen(secret) - 4);
			assert_null(strstr(masked, secret + strlen(prefix) + 10));
			assert_string_not_equal(id, prev_id);
			assert_string_not_equal(secret, prev_secret);
			memcpy(prev_id, id, sizeof(id));
			memcpy(prev_secret, secret, sizeof(secret));
		}
	assert_int_equal(keyfmt_generate(KEY_SECRET, KEY_LIVE, secret, 8 + STORE_KEY_BODY, id, hash, masked),
			 -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
