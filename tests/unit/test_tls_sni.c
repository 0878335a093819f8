/* test_tls_sni.c: the ClientHello server-name reader: a real OpenSSL ClientHello whole, in
 * every prefix and split across records; synthetic hellos for every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "net/tls_sni.h"
#include "tls_hello_seed.h"

static int parse(const uint8_t *b, size_t n, char *name)
{
	const char *err;
	int rc = tls_sni_parse(b, n, name, &err);

	if (rc == -EPROTO)
		assert_non_null(err);
	return rc;
}

static void test_real_hello(void **state)
{
	char name[TLS_SNI_NAME_MAX + 1];

	(void)state;
	assert_int_equal(parse(hello_sni, hello_sni_len, name), 1);
	assert_string_equal(name, "db.example.org");
	for (size_t i = 0; i < hello_sni_len; i++)
		assert_int_equal(parse(hello_sni, i, name), 0);
	/* application bytes behind the hello do not matter */
	uint8_t more[400];
	memcpy(more, hello_sni, hello_sni_len);
	memset(more + hello_sni_len, 0x17, sizeof(more) - hello_sni_len);
	assert_int_equal(parse(more, sizeof(more), name), 1);
}

/* The handshake bytes of hello_sni re-cut into records of `step` bytes. */
static size_t recut(size_t step, uint8_t *out)
{
	const uint8_t *hs = hello_sni + 5;
	size_t hlen = hello_sni_len - 5, o = 0;

	for (size_t i = 0; i < hlen; i += step) {
		size_t n = hlen - i < step ? hlen - i : step;
		out[o++] = 22; out[o++] = 3; out[o++] = 1;
		out[o++] = (uint8_t)(n >> 8); out[o++] = (uint8_t)n;
		memcpy(out + o, hs + i, n);
		o += n;
	}
	return o;
}

static void test_fragmented(void **state)
{
	static uint8_t buf[8192];
	char name[TLS_SNI_NAME_MAX + 1];

	(void)state;
	size_t steps[] = { 1, 3, 7, 100, 314 };
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		size_t n = recut(steps[s], buf);
		assert_int_equal(parse(buf, n, name), 1);
		assert_string_equal(name, "db.example.org");
		for (size_t i = 0; i < n; i += 5)
			assert_int_equal(parse(buf, i, name), 0);
	}
	/* another record type in the middle of the hello */
	size_t n = recut(100, buf);
	buf[105] = 23;
	assert_int_equal(parse(buf, n, name), -EPROTO);
}

/* A minimal TLS 1.2-style ClientHello carrying exts. */
static size_t make_hello(const uint8_t *exts, size_t elen, bool with_ext_block, uint8_t *out)
{
	uint8_t body[2048];
	size_t b = 0;

	body[b++] = 3; body[b++] = 3;
	memset(body + b, 0xAB, 32); b += 32;
	body[b++] = 0;                               /* session id */
	body[b++] = 0; body[b++] = 2; body[b++] = 0x13; body[b++] = 0x01;
	body[b++] = 1; body[b++] = 0;                /* null compression */
	if (with_ext_block) {
		body[b++] = (uint8_t)(elen >> 8); body[b++] = (uint8_t)elen;
		memcpy(body + b, exts, elen); b += elen;
	}
	size_t o = 0, hl = b + 4;
	out[o++] = 22; out[o++] = 3; out[o++] = 1; out[o++] = (uint8_t)(hl >> 8); out[o++] = (uint8_t)hl;
	out[o++] = 1; out[o++] = 0; out[o++] = (uint8_t)(b >> 8); out[o++] = (uint8_t)b;
	memcpy(out + o, body, b);
	return o + b;
}

static size_t sni_ext(const char *host, uint8_t *out)
{
	size_t n = strlen(host), o = 0;

	out[o++] = 0; out[o++] = 0;
	out[o++] = (uint8_t)((n + 5) >> 8); out[o++] = (uint8_t)(n + 5);
	out[o++] = (uint8_t)((n + 3) >> 8); out[o++] = (uint8_t)(n + 3);
	out[o++] = 0; out[o++] = (uint8_t)(n >> 8); out[o++] = (uint8_t)n;
	memcpy(out + o, host, n);
	return o + n;
}

static int with_sni(const char *host, char *name)
{
	uint8_t ext[600], hello[3000];
	size_t e = sni_ext(host, ext);

	return parse(hello, make_hello(ext, e, true, hello), name);
}

static void test_synthetic(void **state)
{
	char name[TLS_SNI_NAME_MAX + 1], label64[80], long_name[300];
	uint8_t ext[1200], hello[3000];
	size_t e;

	(void)state;
	assert_int_equal(with_sni("API.Example.COM", name), 1);
	assert_string_equal(name, "api.example.com");
	assert_int_equal(with_sni("a", name), 1);
	assert_int_equal(with_sni("x_y.example", name), 1);
	assert_int_equal(with_sni("example.com.", name), -EPROTO);
	assert_int_equal(with_sni(".example.com", name), -EPROTO);
	assert_int_equal(with_sni("a..b", name), -EPROTO);
	assert_int_equal(with_sni("-a.b", name), -EPROTO);
	assert_int_equal(with_sni("a-.b", name), -EPROTO);
	assert_int_equal(with_sni("a b", name), -EPROTO);
	assert_int_equal(with_sni("a/b", name), -EPROTO);
	assert_int_equal(with_sni("127.0.0.1:443", name), -EPROTO);
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_int_equal(with_sni(label64, name), -EPROTO);
	label64[63] = '\0';
	assert_int_equal(with_sni(label64, name), 1);
	for (size_t i = 0; i < 254; i++)
		long_name[i] = (i % 50 == 49) ? '.' : 'b';
	long_name[254] = '\0';
	assert_int_equal(with_sni(long_name, name), -EPROTO);
	long_name[253] = '\0';
	assert_int_equal(with_sni(long_name, name), 1);

	/* no extensions at all, and extensions without server_name */
	assert_int_equal(parse(hello, make_hello(NULL, 0, false, hello), name), -ENOENT);
	uint8_t other[] = { 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04 };
	assert_int_equal(parse(hello, make_hello(other, sizeof(other), true, hello), name), -ENOENT);
	/* server_name beside others */
	memcpy(ext, other, sizeof(other));
	e = sizeof(other) + sni_ext("b.example", ext + sizeof(other));
	assert_int_equal(parse(hello, make_hello(ext, e, true, hello), name), 1);
	assert_string_equal(name, "b.example");
	/* duplicate extension */
	e = sni_ext("a.example", ext);
	e += sni_ext("b.example", ext + e);
	assert_int_equal(parse(hello, make_hello(ext, e, true, hello), name), -EPROTO);
	/* two host_names in one list */
	uint8_t two[] = { 0, 0, 0, 12, 0, 10, 0, 0, 1, 'a', 0, 0, 1, 'b', 0, 0 };
	two[3] = 10; two[5] = 8;
	assert_int_equal(parse(hello, make_hello(two, 14, true, hello), name), -EPROTO);
	/* an empty server_name extension (what servers send) */
	uint8_t empty[] = { 0, 0, 0, 0 };
	assert_int_equal(parse(hello, make_hello(empty, sizeof(empty), true, hello), name), -EPROTO);
	/* extension length running past its block */
	e = sni_ext("a.example", ext);
	ext[3] += 1;
	assert_int_equal(parse(hello, make_hello(ext, e, true, hello), name), -EPROTO);
	/* an unknown name type is skipped; a list with only that has no host_name */
	uint8_t typ1[] = { 0, 0, 0, 6, 0, 4, 1, 0, 1, 'x' };
	assert_int_equal(parse(hello, make_hello(typ1, sizeof(typ1), true, hello), name), -EPROTO);
}

static void test_not_tls(void **state)
{
	char name[TLS_SNI_NAME_MAX + 1];
	uint8_t buf[600];

	(void)state;
	assert_int_equal(parse((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, name), -EPROTO);
	assert_int_equal(parse((const uint8_t *)"G", 1, name), -EPROTO);    /* refused at once */
	assert_int_equal(parse((const uint8_t *)"\x16\x02", 2, name), -EPROTO);
	assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, name), -EPROTO);
	assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, name), -EPROTO);
	memcpy(buf, hello_sni, hello_sni_len);
	buf[5] = 2;                 /* a ServerHello */
	assert_int_equal(parse(buf, hello_sni_len, name), -EPROTO);
	memcpy(buf, hello_sni, hello_sni_len);
	buf[6] = 1;                 /* a handshake length larger than the accepted maximum */
	assert_int_equal(parse(buf, hello_sni_len, name), -EPROTO);
	memcpy(buf, hello_sni, hello_sni_len);
	buf[9] = 2;                 /* SSL 2 style version */
	assert_int_equal(parse(buf, hello_sni_len, name), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_hello),
		cmocka_unit_test(test_fragmented),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_not_tls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
