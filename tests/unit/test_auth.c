/* test_auth.c: password hashes and the cached Basic credential check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/pwhash.h"
#include "proxy/auth.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* "Basic " + base64(userpass) */
static void basic(const char *userpass, char *out, size_t cap)
{
	char b64[1500];
	int n = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)userpass, (int)strlen(userpass));
	assert_true(n >= 0 && (size_t)n + 7 <= cap);
	memcpy(out, "Basic ", 6);
	memcpy(out + 6, b64, (size_t)n + 1);
}

static int check(const struct proxy_user *users, size_t n, uint64_t gen, struct auth_cache *c,
		 const char *header, struct auth_result *r)
{
	return auth_check_basic(users, n, gen, c, header, strlen(header), r);
}

static void test_hash_verify(void **state)
{
	(void)state;
	char h[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
	double t0 = now_ms();
	assert_int_equal(auth_hash_password("s3cret", 6, h, sizeof(h)), 0);
	print_message("pbkdf2-sha256 %d iterations: %.1f ms\n", AUTH_PBKDF2_ITERATIONS, now_ms() - t0);
	assert_true(strncmp(h, "pbkdf2-sha256$100000$", 21) == 0);
	assert_null(strstr(h, "s3cret"));
	assert_null(pwhash_check(h));
	assert_true(pwhash_verify(h, "s3cret", 6));
	assert_false(pwhash_verify(h, "s3creT", 6));
	assert_false(pwhash_verify(h, "s3cret", 5));
	assert_false(pwhash_verify(h, "", 0));
	/* salted: the same password hashes differently */
	assert_int_equal(auth_hash_password_iter("s3cret", 6, 1000, h2, sizeof(h2)), 0);
	assert_string_not_equal(h, h2);
	assert_true(pwhash_verify(h2, "s3cret", 6));
	assert_int_equal(auth_hash_password("x", 1, h2, 20), -ENOSPC);

	static const char *bad[] = {
		"", "plain", "pbkdf2-sha256$", "pbkdf2-sha256$1000$", "pbkdf2-sha256$999$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
		"pbkdf2-sha256$10000001$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
		"pbkdf2-sha256$01000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
		"pbkdf2-sha256$1000$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",          /* salt too short */
		"pbkdf2-sha256$1000$c2FsdHNhbHQ=$aGFzaA==",                      /* hash too short */
		"pbkdf2-sha256$1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA==",       /* unpadded */
		"pbkdf2-sha256$1000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==$x",
		"pbkdf2-sha1$1000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
		"pbkdf2-sha256$1x00$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!pwhash_check(bad[i]))
			fail_msg("accepted %s", bad[i]);
		assert_false(pwhash_verify(bad[i], "x", 1));
	}
	assert_null(pwhash_check("pbkdf2-sha256$1000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=="));
}

static struct proxy_user users[3];

static int setup_users(void **state)
{
	(void)state;
	memset(users, 0, sizeof(users));
	snprintf(users[0].name, sizeof(users[0].name), "bob");
	snprintf(users[1].name, sizeof(users[1].name), "alice");
	snprintf(users[2].name, sizeof(users[2].name), "al");
	/* alice has the real cost, to show what the cache saves */
	assert_int_equal(auth_hash_password_iter("pw-bob", 6, 1000, users[0].password_hash, AUTH_HASH_MAX), 0);
	assert_int_equal(auth_hash_password("correct horse", 13, users[1].password_hash, AUTH_HASH_MAX), 0);
	assert_int_equal(auth_hash_password_iter("x:y", 3, 1000, users[2].password_hash, AUTH_HASH_MAX), 0);
	return 0;
}

static void test_check_ok_and_cache(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new();
	struct auth_result r;
	struct auth_cache_stats st;
	char hdr[256];
	assert_non_null(c);

	basic("alice:correct horse", hdr, sizeof(hdr));
	double t0 = now_ms();
	assert_int_equal(check(users, 3, 7, c, hdr, &r), 0);
	double first = now_ms() - t0;
	assert_int_equal(r.user, 1);
	assert_int_equal(r.egress_pin, -1);

	t0 = now_ms();
	for (int i = 0; i < 10000; i++) {
		if (check(users, 3, 7, c, hdr, &r) != 0 || r.user != 1)
			fail_msg("cached check %d failed", i);
	}
	double cached = now_ms() - t0;
	auth_cache_stats(c, &st);
	print_message("first check %.1f ms (PBKDF2), 10k cached checks %.2f ms\n", first, cached);
	assert_int_equal(st.pbkdf2, 1);
	assert_int_equal(st.hits, 10000);
	assert_true(cached < 50.0);

	/* a new config generation re-verifies once */
	assert_int_equal(check(users, 3, 8, c, hdr, &r), 0);
	auth_cache_stats(c, &st);
	assert_int_equal(st.pbkdf2, 2);

	/* scheme case-insensitive, extra spaces */
	char b64[128];
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)"bob:pw-bob", 10);
	snprintf(hdr, sizeof(hdr), "  bAsIc   %s  ", b64);
	assert_int_equal(check(users, 3, 8, c, hdr, &r), 0);
	assert_int_equal(r.user, 0);
	/* password with ':' in it: split at the first colon */
	basic("al:x:y", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 8, c, hdr, &r), 0);
	assert_int_equal(r.user, 2);
	auth_cache_free(c);
	auth_cache_free(NULL);
}

static void test_check_wrong(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new();
	struct auth_result r;
	struct auth_cache_stats st;
	char hdr[256];

	basic("bob:pw-bob!", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	assert_int_equal(r.user, -1);
	/* the same wrong credential again: refused from the negative cache, no PBKDF2 */
	for (int i = 0; i < 100; i++)
		assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	auth_cache_stats(c, &st);
	assert_int_equal(st.pbkdf2, 1);
	assert_int_equal(st.neg_hits, 100);
	/* a failure never becomes a success, and the right password still works */
	basic("bob:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), 0);

	basic("mallory:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	basic("Bob:pw-bob", hdr, sizeof(hdr));                  /* names are case-sensitive */
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	basic("bo:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	basic("bob:", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);
	basic(":pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);

	/* missing or another scheme: -EACCES (answer 407 asking for Basic) */
	assert_int_equal(auth_check_basic(users, 3, 1, c, NULL, 0, &r), -EACCES);
	assert_int_equal(check(users, 3, 1, c, "", &r), -EACCES);
	assert_int_equal(check(users, 3, 1, c, "Bearer abc", &r), -EACCES);
	assert_int_equal(check(users, 3, 1, c, "Basicfoo", &r), -EACCES);
	assert_int_equal(check(users, 3, 1, c, "Digest username=\"bob\"", &r), -EACCES);
	auth_cache_free(c);
}

static void test_check_malformed(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new();
	struct auth_result r;
	char hdr[2048];
	static const char *bad[] = {
		"Basic", "Basic ", "Basic !!!!", "Basic Ym9iOnB3LWJvYg",     /* unpadded */
		"Basic Ym9iOnB3LWJvYg=", "Basic Ym9i OnB3LWJvYg==", "Basic Ym9iOnB3LWJvYh==", /* non-canonical */
		"Basic =Ym9iOnB3LWJvYg=", "Basic Ym9i", /* "bob", no colon */
		"Basic Ym9iAHg6eQ==",                 /* NUL inside */
		"Basic Ym9i=OnB3LWJvYg==",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = check(users, 3, 1, c, bad[i], &r);
		if (rc != -EINVAL)
			fail_msg("%s: got %d", bad[i], rc);
	}
	/* over-long credential */
	memcpy(hdr, "Basic ", 6);
	memset(hdr + 6, 'A', 1500);
	hdr[1506] = '\0';
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EINVAL);
	auth_cache_free(c);
}

static void test_check_options(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new();
	struct auth_result r;
	char hdr[256];

	basic("bob+egress=2:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), 0);
	assert_int_equal(r.user, 0);
	assert_int_equal(r.egress_pin, 2);
	/* cached with its pin */
	assert_int_equal(check(users, 3, 1, c, hdr, &r), 0);
	assert_int_equal(r.egress_pin, 2);
	basic("bob+egress=32:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), 0);
	assert_int_equal(r.egress_pin, 32);
	basic("bob:pw-bob", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), 0);
	assert_int_equal(r.egress_pin, -1);
	/* wrong password with a valid option is still wrong */
	basic("bob+egress=1:nope", hdr, sizeof(hdr));
	assert_int_equal(check(users, 3, 1, c, hdr, &r), -EACCES);

	static const char *bad[] = {
		"bob+:pw-bob", "bob+egress=0:pw-bob", "bob+egress=33:pw-bob", "bob+egress=02:pw-bob",
		"bob+egress=:pw-bob", "bob+egress=x:pw-bob", "bob+region=eu:pw-bob",
		"bob+egress=1+egress=2:pw-bob", "bob+egress=1+:pw-bob", "bob+egress=100:pw-bob",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		basic(bad[i], hdr, sizeof(hdr));
		int rc = check(users, 3, 1, c, hdr, &r);
		if (rc != -EINVAL)
			fail_msg("%s: got %d", bad[i], rc);
	}
	auth_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_check_ok_and_cache),
		cmocka_unit_test(test_check_wrong),
		cmocka_unit_test(test_check_malformed),
		cmocka_unit_test(test_check_options),
	};
	return cmocka_run_group_tests(tests, setup_users, NULL);
}
