/* test_secret.c: secret_mask() and secret_redact(): no message carries more of a key than its
 * prefix and last 4 (issue 16 item 3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/secret.h"

static void redact_eq(const char *in, const char *want)
{
	char buf[512];
	size_t n = strlen(in);

	memcpy(buf, in, n + 1);
	size_t got = secret_redact(buf, n);
	assert_int_equal(got, strlen(want));
	buf[got] = '\0';
	assert_string_equal(buf, want);
}

static void test_redact_forms(void **state)
{
	(void)state;
	redact_eq("no such key: sk_test_01pKGESldzq1abcdEFGH", "no such key: sk_test_****EFGH");
	redact_eq("sk_live_0123456789", "sk_live_****6789");
	redact_eq("'rk_live_ABCDEFGHIJ' and pk_test_abcdefghij.",
		  "'rk_live_****GHIJ' and pk_test_****ghij.");
	redact_eq("sk_org_test_0123456789xyz", "sk_org_test_****9xyz");
	redact_eq("whsec_abcdefgh1234", "whsec_****1234");
	redact_eq("--bogus=sk_test_abcdefghij", "--bogus=sk_test_****ghij");
	redact_eq("/x/sk_test_abcdefghij.db", "/x/sk_test_****ghij.db");
	/* keys pasted back to back are one word: masked whole */
	redact_eq("whsec_abcdefghwhsec_ijklmnop", "whsec_****mnop");
	redact_eq("sk_abcdefgh1_xy", "sk_****1_xy");
}

static void test_redact_leaves_text_alone(void **state)
{
	(void)state;
	/* not a key: a short body, a prefix inside a word, the masked form itself */
	redact_eq("sk_live_/rk_live_/sk_org_ (critical)", "sk_live_/rk_live_/sk_org_ (critical)");
	redact_eq("network_namespace disk_abcdefghij", "network_namespace disk_abcdefghij");
	redact_eq("key sk_test_****abcd is key_0123456789abcdef", "key sk_test_****abcd is key_0123456789abcdef");
	redact_eq("sk_test_abc1234", "sk_test_abc1234");
	redact_eq("", "");
}

static void test_redact_never_grows_and_is_idempotent(void **state)
{
	static const char alphabet[] = "sk_rpwhec_tliveorg AZ09-=:'/";
	char buf[64], again[64];
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = (seed >> 3) % 60;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf[n] = '\0';
		size_t m = secret_redact(buf, n);
		assert_true(m <= n);
		buf[m] = '\0';
		memcpy(again, buf, m + 1);
		assert_int_equal(secret_redact(again, m), m);
		assert_memory_equal(again, buf, m);
	}
}

static void test_mask(void **state)
{
	char out[SECRET_MASK_MAX];

	(void)state;
	secret_mask("sk_live_abcdefghijklmnop", 24, out);
	assert_string_equal(out, "sk_live_****mnop");
	secret_mask("short", 5, out);
	assert_string_equal(out, "****");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact_forms),
		cmocka_unit_test(test_redact_leaves_text_alone),
		cmocka_unit_test(test_redact_never_grows_and_is_idempotent),
		cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
