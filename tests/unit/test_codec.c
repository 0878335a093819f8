/* test_codec.c: core/codec: RFC 4648 test vectors (base64, base64url, base16), strict decoding
 * and its errors, the gate's lax Basic decoding, percent-encoding both ways. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/codec.h"

/* RFC 4648 section 10 */
static const char *const vec_in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const vec_b64[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
static const char *const vec_hex[] = { "", "66", "666F", "666F6F", "666F6F62", "666F6F6261",
				       "666F6F626172" };

static void test_b64_rfc4648(void **state)
{
	char enc[32], dec[32];

	(void)state;
	for (size_t i = 0; i < sizeof(vec_in) / sizeof(vec_in[0]); i++) {
		size_t n = strlen(vec_in[i]);
		assert_int_equal(codec_b64_encode(vec_in[i], n, enc, sizeof(enc), 0), strlen(vec_b64[i]));
		assert_string_equal(enc, vec_b64[i]);
		assert_int_equal(codec_b64_decode(vec_b64[i], strlen(vec_b64[i]), dec, sizeof(dec), 0), n);
		assert_memory_equal(dec, vec_in[i], n);
		/* unpadded: the same text without '=', and it decodes back */
		long m = codec_b64_encode(vec_in[i], n, enc, sizeof(enc), CODEC_B64_NOPAD);
		assert_int_equal(m, strcspn(vec_b64[i], "="));
		assert_memory_equal(enc, vec_b64[i], (size_t)m);
		assert_int_equal(codec_b64_decode(enc, (size_t)m, dec, sizeof(dec), CODEC_B64_NOPAD), n);
		assert_memory_equal(dec, vec_in[i], n);
		/* NOPAD decoding takes the padded form too */
		assert_int_equal(codec_b64_decode(vec_b64[i], strlen(vec_b64[i]), dec, sizeof(dec),
						  CODEC_B64_NOPAD), n);
	}
}

static void test_b64_url_alphabet(void **state)
{
	static const unsigned char raw[] = { 0xfb, 0xff, 0xbf };
	char enc[16];
	unsigned char dec[8];

	(void)state;
	assert_int_equal(codec_b64_encode(raw, 3, enc, sizeof(enc), 0), 4);
	assert_string_equal(enc, "+/+/");
	assert_int_equal(codec_b64_encode(raw, 3, enc, sizeof(enc), CODEC_B64_URL), 4);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(codec_b64_encode(raw, 2, enc, sizeof(enc), CODEC_B64_URL | CODEC_B64_NOPAD), 3);
	assert_string_equal(enc, "-_8");
	assert_int_equal(codec_b64_decode("-_-_", 4, dec, sizeof(dec), CODEC_B64_URL), 3);
	assert_memory_equal(dec, raw, 3);
	/* each alphabet refuses the other's two characters */
	assert_int_equal(codec_b64_decode("-_-_", 4, dec, sizeof(dec), 0), CODEC_E_CHAR);
	assert_int_equal(codec_b64_decode("+/+/", 4, dec, sizeof(dec), CODEC_B64_URL), CODEC_E_CHAR);
}

static void test_b64_strict_errors(void **state)
{
	unsigned char dec[16];

	(void)state;
	struct { const char *in; long want; } bad[] = {
		{ "Zm9", CODEC_E_LENGTH },       /* unpadded where padding is required */
		{ "Zm9vY", CODEC_E_LENGTH },
		{ "Z===", CODEC_E_PAD },         /* one data character cannot make a byte */
		{ "====", CODEC_E_PAD },
		{ "Zm=v", CODEC_E_PAD },         /* '=' inside */
		{ "=Zm9", CODEC_E_PAD },
		{ "Zm9vYg==Zm9v", CODEC_E_PAD },
		{ "Zh==", CODEC_E_BITS },        /* "f" is Zg==: unused bits set */
		{ "Zm9=", CODEC_E_BITS },        /* "fo" is Zm8= */
		{ "Zm 9", CODEC_E_CHAR },
		{ "Zm9\n", CODEC_E_CHAR },
		{ "Zm!v", CODEC_E_CHAR },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(codec_b64_decode(bad[i].in, strlen(bad[i].in), dec, sizeof(dec), 0),
				 bad[i].want);
	/* a NUL inside is a character outside the alphabet, not an end */
	assert_int_equal(codec_b64_decode("Zm\0v", 4, dec, sizeof(dec), 0), CODEC_E_CHAR);
	/* NOPAD: a length of 1 mod 4 is impossible; a lone '=' is misplaced */
	assert_int_equal(codec_b64_decode("Zm9vY", 5, dec, sizeof(dec), CODEC_B64_NOPAD), CODEC_E_LENGTH);
	assert_int_equal(codec_b64_decode("Zg=", 3, dec, sizeof(dec), CODEC_B64_NOPAD), CODEC_E_PAD);
	/* capacity: exact fit works, one byte less does not */
	assert_int_equal(codec_b64_decode("Zm9vYmE=", 8, dec, 5, 0), 5);
	assert_int_equal(codec_b64_decode("Zm9vYmE=", 8, dec, 4, 0), CODEC_E_SPACE);
	assert_string_equal(codec_strerror(CODEC_E_BITS), "non-canonical base64 (unused bits set)");
}

static void test_b64_encode_space(void **state)
{
	char enc[9];

	(void)state;
	assert_int_equal(codec_b64_encode("foobar", 6, enc, 9, 0), 8);   /* 8 + NUL */
	assert_int_equal(codec_b64_encode("foobar", 6, enc, 8, 0), CODEC_E_SPACE);
	assert_int_equal(codec_b64_encode("", 0, enc, 0, 0), CODEC_E_SPACE);
}

/* The gate's reading of Basic credentials, kept as it was: trailing '=' of any count, no
 * length or canonical checks, characters still checked. */
static void test_b64_lax(void **state)
{
	char dec[16];

	(void)state;
	assert_int_equal(codec_b64_decode("Zm9v", 4, dec, sizeof(dec), CODEC_B64_LAX), 3);
	assert_int_equal(codec_b64_decode("Zm9vYg", 6, dec, sizeof(dec), CODEC_B64_LAX), 4);
	assert_int_equal(codec_b64_decode("Zm9vYg=====", 11, dec, sizeof(dec), CODEC_B64_LAX), 4);
	assert_memory_equal(dec, "foob", 4);
	assert_int_equal(codec_b64_decode("Zh", 2, dec, sizeof(dec), CODEC_B64_LAX), 1);
	assert_int_equal(codec_b64_decode("Z", 1, dec, sizeof(dec), CODEC_B64_LAX), 0);
	assert_int_equal(codec_b64_decode("Zm=v", 4, dec, sizeof(dec), CODEC_B64_LAX), CODEC_E_PAD);
	assert_int_equal(codec_b64_decode("!!!", 3, dec, sizeof(dec), CODEC_B64_LAX), CODEC_E_CHAR);
	assert_int_equal(codec_b64_decode("Zm9vYmFy", 8, dec, 5, CODEC_B64_LAX), CODEC_E_SPACE);
}

static void test_hex(void **state)
{
	char enc[32], dec[16];

	(void)state;
	for (size_t i = 0; i < sizeof(vec_in) / sizeof(vec_in[0]); i++) {
		size_t n = strlen(vec_in[i]);
		assert_int_equal(codec_hex_encode(vec_in[i], n, enc, sizeof(enc), true), 2 * n);
		assert_string_equal(enc, vec_hex[i]);
		assert_int_equal(codec_hex_decode(vec_hex[i], 2 * n, dec, sizeof(dec)), n);
		assert_memory_equal(dec, vec_in[i], n);
	}
	assert_int_equal(codec_hex_encode("\xab\x01", 2, enc, sizeof(enc), false), 4);
	assert_string_equal(enc, "ab01");
	assert_int_equal(codec_hex_encode("\xab\x01", 2, enc, 4, false), CODEC_E_SPACE);
	assert_int_equal(codec_hex_encode("\xab\x01", 2, enc, 5, false), 4);
	assert_int_equal(codec_hex_decode("aB01", 4, dec, sizeof(dec)), 2);
	assert_memory_equal(dec, "\xab\x01", 2);
	assert_int_equal(codec_hex_decode("abc", 3, dec, sizeof(dec)), CODEC_E_LENGTH);
	assert_int_equal(codec_hex_decode("0g", 2, dec, sizeof(dec)), CODEC_E_CHAR);
	assert_int_equal(codec_hex_decode("abcd", 4, dec, 1), CODEC_E_SPACE);
	assert_int_equal(codec_hex_value('F'), 15);
	assert_int_equal(codec_hex_value('g'), -1);
}

static void test_pct_decode(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(codec_pct_decode("a%40b%2fc+d", 11, out, sizeof(out), 0), 7);
	assert_string_equal(out, "a@b/c+d");
	assert_int_equal(codec_pct_decode("%41", 3, out, sizeof(out), 0), 1);
	assert_string_equal(out, "A");
	assert_int_equal(codec_pct_decode("%4", 2, out, sizeof(out), 0), CODEC_E_ESCAPE);
	assert_int_equal(codec_pct_decode("x%", 2, out, sizeof(out), 0), CODEC_E_ESCAPE);
	assert_int_equal(codec_pct_decode("%zz", 3, out, sizeof(out), 0), CODEC_E_ESCAPE);
	assert_int_equal(codec_pct_decode("%00", 3, out, sizeof(out), 0), 1);
	assert_int_equal(codec_pct_decode("%00", 3, out, sizeof(out), CODEC_PCT_NO_CTL), CODEC_E_CONTROL);
	assert_int_equal(codec_pct_decode("a%0Db", 5, out, sizeof(out), CODEC_PCT_NO_CTL), CODEC_E_CONTROL);
	assert_int_equal(codec_pct_decode("a\tb", 3, out, sizeof(out), CODEC_PCT_NO_CTL), CODEC_E_CONTROL);
	assert_int_equal(codec_pct_decode("%7F", 3, out, sizeof(out), CODEC_PCT_NO_CTL), CODEC_E_CONTROL);
	/* the first faulty byte decides: a control before a bad escape is a control */
	assert_int_equal(codec_pct_decode("%0A%zz", 6, out, sizeof(out), CODEC_PCT_NO_CTL), CODEC_E_CONTROL);
	/* room for the text and its NUL */
	assert_int_equal(codec_pct_decode("abcd", 4, out, 5, 0), 4);
	assert_int_equal(codec_pct_decode("abcd", 4, out, 4, 0), CODEC_E_SPACE);
	assert_int_equal(codec_pct_decode("", 0, out, 1, 0), 0);
	assert_int_equal(codec_pct_decode("", 0, out, 0, 0), CODEC_E_SPACE);
}

static void test_pct_encode(void **state)
{
	char out[64], back[64];

	(void)state;
	assert_int_equal(codec_pct_encode("a b/c~d@\xff", 9, NULL, out, sizeof(out)), 17);
	assert_string_equal(out, "a%20b%2Fc~d%40%FF");
	assert_int_equal(codec_pct_encode("src/a b.c", 9, "/", out, sizeof(out)), 11);
	assert_string_equal(out, "src/a%20b.c");
	assert_int_equal(codec_pct_decode(out, 11, back, sizeof(back), 0), 9);
	assert_string_equal(back, "src/a b.c");
	/* a NUL in the input is encoded, never taken from keep */
	assert_int_equal(codec_pct_encode("a\0b", 3, "/", out, sizeof(out)), 5);
	assert_string_equal(out, "a%00b");
	assert_int_equal(codec_pct_encode("@", 1, NULL, out, 4), 3);
	assert_int_equal(codec_pct_encode("@", 1, NULL, out, 3), CODEC_E_SPACE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_rfc4648),
		cmocka_unit_test(test_b64_url_alphabet),
		cmocka_unit_test(test_b64_strict_errors),
		cmocka_unit_test(test_b64_encode_space),
		cmocka_unit_test(test_b64_lax),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_pct_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
