/* test_scan.c: the scanner engine: true positives in many syntaxes, negatives, boundaries,
 * placeholders, positions, inline allows, and stream windows agreeing with whole buffers.
 * Keys are assembled at run time so this file holds nothing that looks like a live key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

#define MAXHITS 64

struct found {
	size_t n;
	struct {
		enum scan_kind kind;
		uint64_t offset, line, column;
		char key[SCAN_KEY_MAX + 1];
		bool allowed;
	} h[MAXHITS];
};

static int collect(void *arg, const struct scan_hit *hit)
{
	struct found *f = arg;
	if (f->n < MAXHITS) {
		f->h[f->n].kind = hit->kind;
		f->h[f->n].offset = hit->offset;
		f->h[f->n].line = hit->line;
		f->h[f->n].column = hit->column;
		memcpy(f->h[f->n].key, hit->key, hit->len);
		f->h[f->n].key[hit->len] = '\0';
		f->h[f->n].allowed = hit->allowed;
	}
	f->n++;
	return 0;
}

static struct found scan_str(const char *s, unsigned flags)
{
	struct found f = { 0 };
	assert_int_equal(scan_buffer(s, strlen(s), flags, collect, &f), 0);
	return f;
}

/* Deterministic pseudo-random key body of n letters/digits. */
static void body(char *out, size_t n, unsigned seed)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint32_t x = seed * 2654435761u + 12345;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[i] = a[x % 62];
	}
	out[n] = '\0';
}

/* "sk" + "_live_" + body: never a literal key in the source. */
static const char *mkkey(char *out, size_t cap, const char *a, const char *b, size_t n,
			 unsigned seed)
{
	char bd[SCAN_BODY_MAX + 2];
	body(bd, n, seed);
	snprintf(out, cap, "%s%s%s", a, b, bd);
	return out;
}

static void test_syntaxes(void **state)
{
	(void)state;
	char k[300], doc[1024];
	static const char *const fmts[] = {
		"STRIPE_SECRET_KEY=%s\n",
		"export STRIPE_KEY=\"%s\"\n",
		"{\"api_key\": \"%s\", \"x\": 1}",
		"stripe:\n  secret: %s\n",
		"<config><key>%s</key></config>",
		"Stripe.api_key = '%s';",
		"curl https://api.example.com/v1?key=%s&x=1",
		"2024-01-01T00:00:00Z INFO auth Bearer %s)",
		"[%s]", "{%s}", "%s/path", "a|%s|b", "%s.", "%s,", "\t%s\r\n", "_%s_",
		"%s", /* the whole input: key at start and at end of file */
	};
	mkkey(k, sizeof(k), "sk_", "live_", 99, 1);
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		snprintf(doc, sizeof(doc), fmts[i], k);
		struct found f = scan_str(doc, 0);
		if (f.n != 1)
			fail_msg("format %zu: %zu hits", i, f.n);
		assert_string_equal(f.h[0].key, k);
		assert_int_equal(f.h[0].kind, SCAN_SK_LIVE);
	}
}

static void test_kinds(void **state)
{
	(void)state;
	char k[300];
	struct {
		const char *a, *b;
		size_t n;
		enum scan_kind kind;
	} cases[] = {
		{ "sk_", "live_", 24, SCAN_SK_LIVE }, { "sk_", "test_", 99, SCAN_SK_TEST },
		{ "rk_", "live_", 99, SCAN_RK_LIVE }, { "rk_", "test_", 10, SCAN_RK_TEST },
		{ "sk_", "org_", 40, SCAN_SK_ORG },   { "sk_org_", "live_", 99, SCAN_SK_ORG },
		{ "sk_org_", "test_", 99, SCAN_SK_ORG_TEST }, { "wh", "sec_", 32, SCAN_WHSEC },
		{ "sk_", "live_", 247, SCAN_SK_LIVE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mkkey(k, sizeof(k), cases[i].a, cases[i].b, cases[i].n, (unsigned)i + 7);
		struct found f = scan_str(k, 0);
		if (f.n != 1)
			fail_msg("case %zu: %zu hits", i, f.n);
		assert_int_equal(f.h[0].kind, cases[i].kind);
		assert_string_equal(f.h[0].key, k);
	}
	/* publishable keys only on request */
	mkkey(k, sizeof(k), "pk_", "live_", 99, 3);
	assert_int_equal(scan_str(k, 0).n, 0);
	struct found f = scan_str(k, SCAN_F_PUBLISHABLE);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.h[0].kind, SCAN_PK_LIVE);
	assert_int_equal(scan_kind_severity(SCAN_PK_LIVE), SCAN_SEV_INFO);
	assert_int_equal(scan_kind_severity(SCAN_SK_LIVE), SCAN_SEV_CRITICAL);
	assert_int_equal(scan_kind_severity(SCAN_WHSEC), SCAN_SEV_HIGH);
	assert_int_equal(scan_kind_severity(SCAN_SK_TEST), SCAN_SEV_LOW);
}

static void test_negatives(void **state)
{
	(void)state;
	char k[400], doc[600], bd[300];
	body(bd, 99, 5);
	const char *bad[] = { "ta" "sk_live_%s", "sk-live_%s", "sk_live-%s", "sk_Live_%s",
			      "whsec-%s", "xsk_" "live_%s", "9rk_" "live_%s", "sk_prod_%s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(doc, sizeof(doc), bad[i], bd);
		if (scan_str(doc, 0).n != 0)
			fail_msg("negative %zu matched", i);
	}
	/* too short, too long, bad characters */
	assert_int_equal(scan_str(mkkey(k, sizeof(k), "sk_", "live_", 9, 1), 0).n, 0);
	assert_int_equal(scan_str(mkkey(k, sizeof(k), "sk_", "live_", 248, 1), 0).n, 0);
	assert_int_equal(scan_str(mkkey(k, sizeof(k), "wh", "sec_", 31, 1), 0).n, 0);
	assert_int_equal(scan_str("sk_live_!!!!!!!!!!!!!!!!!!!!!!!!!", 0).n, 0);
	assert_int_equal(scan_str("sk_live_", 0).n, 0);
	assert_int_equal(scan_str("", 0).n, 0);
	/* a key running into more letters is one longer token: Extra belongs to it */
	mkkey(k, sizeof(k), "sk_", "live_", 240, 2);
	memcpy(k + strlen(k), "Extra123", sizeof("Extra123"));
	assert_int_equal(scan_str(k, 0).n, 0);
}

static void test_placeholders(void **state)
{
	(void)state;
	const char *ph[] = {
		"sk_" "live_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_" "live_XXXXXXXXXXXXXXXXXXXXXXXXXXX",
		"sk_" "live_aaaaaaaaaaaaaaaaaaaaaaaa", "sk_" "test_000000000000000000000000",
		"sk_" "live_YOURSECRETKEYHERE1234", "sk_" "live_<your key>", "sk_" "live_...",
		"sk_" "live_YOUR_KEY", "sk_" "test_1234567890123456", "rk_" "live_abababababababab",
		"sk_" "live_51HabcXXXXXXXXXXXXXXXXXXX", "sk_" "test_EXAMPLEKEY0123456789",
		"wh" "sec_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"sk_" "live_0123456789abcdefghijk", "sk_" "live_abcdefghijklmnop",
	};
	for (size_t i = 0; i < sizeof(ph) / sizeof(ph[0]); i++)
		if (scan_str(ph[i], 0).n != 0)
			fail_msg("placeholder %zu matched", i);
	/* the public docs sample is a (test) key, not a placeholder */
	char docs[64];
	snprintf(docs, sizeof(docs), "%s%s", "sk_test_", "BQokikJOvBiI2HlWgH4olfQ2");
	struct found f = scan_str(docs, 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.h[0].kind, SCAN_SK_TEST);
}

static void test_back_to_back(void **state)
{
	(void)state;
	char a[300], b[300], doc[700];
	mkkey(a, sizeof(a), "sk_", "live_", 99, 11);
	mkkey(b, sizeof(b), "rk_", "live_", 99, 12);
	static const char *const seps[] = { ",", " ", "\n", "\"\"", ";", "&" };
	for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++) {
		snprintf(doc, sizeof(doc), "%s%s%s", a, seps[i], b);
		struct found f = scan_str(doc, 0);
		if (f.n != 2)
			fail_msg("sep %zu: %zu hits", i, f.n);
		assert_string_equal(f.h[0].key, a);
		assert_string_equal(f.h[1].key, b);
	}
}

static void test_positions(void **state)
{
	(void)state;
	char k[300], doc[1024];
	mkkey(k, sizeof(k), "sk_", "test_", 30, 4);
	snprintf(doc, sizeof(doc), "line one\nline two\n  key = %s # iplock:allow\n\nx=%s\n", k, k);
	struct found f = scan_str(doc, 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.h[0].line, 3);
	assert_int_equal(f.h[0].column, 9);
	assert_int_equal(f.h[0].offset, 18 + 8);
	assert_true(f.h[0].allowed);
	assert_int_equal(f.h[1].line, 5);
	assert_int_equal(f.h[1].column, 3);
	assert_false(f.h[1].allowed);
	snprintf(doc, sizeof(doc), "k=%s // gitleaks:allow", k);
	assert_true(scan_str(doc, 0).h[0].allowed);
	/* a marker on the next line does not count */
	snprintf(doc, sizeof(doc), "k=%s\n# iplock:allow\n", k);
	assert_false(scan_str(doc, 0).h[0].allowed);
}

struct mem_reader {
	const unsigned char *p;
	size_t len, pos, step;
};

static ssize_t mem_read(void *arg, void *buf, size_t n)
{
	struct mem_reader *r = arg;
	size_t left = r->len - r->pos;
	if (n > left)
		n = left;
	if (n > r->step)
		n = r->step;
	memcpy(buf, r->p + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

/* Keys planted across window edges are found once, at the same places, as in one buffer. */
static void test_stream_equals_buffer(void **state)
{
	(void)state;
	size_t len = 5 * SCAN_CHUNK_MIN + 333;
	unsigned char *doc = malloc(len);
	char k[300];
	assert_non_null(doc);
	for (size_t i = 0; i < len; i++)
		doc[i] = (i % 71 == 70) ? '\n' : (unsigned char)("ab_ sk rk_ ec_=\"x"[i % 17]);
	for (size_t at = 100, n = 0; at + 300 < len; at += SCAN_CHUNK_MIN / 3 + 97, n++) {
		mkkey(k, sizeof(k), n % 2 ? "rk_" : "sk_", "live_", 99 + n % 50, (unsigned)n);
		doc[at - 1] = ' ';
		memcpy(doc + at, k, strlen(k));
		doc[at + strlen(k)] = ' ';
	}
	static struct found whole, streamed;
	memset(&whole, 0, sizeof(whole));
	memset(&streamed, 0, sizeof(streamed));
	assert_int_equal(scan_buffer(doc, len, 0, collect, &whole), 0);
	struct mem_reader r = { doc, len, 0, 4093 };
	assert_int_equal(scan_stream(mem_read, &r, SCAN_CHUNK_MIN, 0, collect, &streamed), 0);
	assert_true(whole.n > 10);
	assert_int_equal(whole.n, streamed.n);
	for (size_t i = 0; i < whole.n && i < MAXHITS; i++) {
		assert_int_equal(whole.h[i].offset, streamed.h[i].offset);
		assert_int_equal(whole.h[i].line, streamed.h[i].line);
		assert_int_equal(whole.h[i].column, streamed.h[i].column);
		assert_string_equal(whole.h[i].key, streamed.h[i].key);
	}
	free(doc);
}

/* Every SIMD level finds the same keys at the same places, near-misses everywhere. */
static void test_simd_levels_agree(void **state)
{
	(void)state;
	static const char *const noise[] = {
		"task_id ", "disk_", " sec_level ", "_sk_", " pk_test_x ", "exec_", "\n",
		" sk_live_short ", "ec_", "k_", " rk_", "whsec", "  ", "sk", "_",
	};
	size_t len = 200000, n = 0;
	char *doc = malloc(len + 400), k[300];
	uint32_t x = 7;
	assert_non_null(doc);
	while (n < len) {
		x = x * 1103515245u + 12345u;
		if ((x >> 16) % 97 == 0) {
			mkkey(k, sizeof(k), (x >> 8) % 2 ? "sk_" : "wh", (x >> 8) % 2 ? "live_" : "sec_",
			      32 + (x >> 20) % 60, x);
			n += (size_t)snprintf(doc + n, 300, "%s%s", (x >> 4) % 3 ? " " : "_", k);
		} else {
			const char *w = noise[(x >> 16) % (sizeof(noise) / sizeof(noise[0]))];
			memcpy(doc + n, w, strlen(w));
			n += strlen(w);
		}
	}
	static struct found ref, got;
	int best = scan_simd_cap(-1);
	memset(&ref, 0, sizeof(ref));
	scan_simd_cap(0);
	assert_int_equal(scan_buffer(doc, n, 0, collect, &ref), 0);
	assert_true(ref.n > 10);
	for (int lvl = 1; lvl <= best; lvl++) {
		memset(&got, 0, sizeof(got));
		assert_int_equal(scan_simd_cap(lvl), lvl);
		assert_int_equal(scan_buffer(doc, n, 0, collect, &got), 0);
		assert_int_equal(got.n, ref.n);
		for (size_t i = 0; i < ref.n && i < MAXHITS; i++) {
			assert_int_equal(got.h[i].offset, ref.h[i].offset);
			assert_int_equal(got.h[i].line, ref.h[i].line);
			assert_string_equal(got.h[i].key, ref.h[i].key);
		}
		uint64_t nl = scan_count_newlines((unsigned char *)doc, n);
		scan_simd_cap(0);
		assert_int_equal(nl, scan_count_newlines((unsigned char *)doc, n));
	}
	scan_simd_cap(-1);
	free(doc);
}

static void test_newlines_and_binary(void **state)
{
	(void)state;
	char buf[1000];
	memset(buf, 'a', sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i += 7)
		buf[i] = '\n';
	assert_int_equal(scan_count_newlines((unsigned char *)buf, sizeof(buf)), (sizeof(buf) + 6) / 7);
	assert_false(scan_looks_binary(buf, sizeof(buf)));
	buf[500] = '\0';
	assert_true(scan_looks_binary(buf, sizeof(buf)));
	enum scan_kind k;
	assert_true(scan_kind_parse("whsec", &k));
	assert_int_equal(k, SCAN_WHSEC);
	assert_false(scan_kind_parse("nope", &k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntaxes),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_negatives),
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_stream_equals_buffer),
		cmocka_unit_test(test_simd_levels_agree),
		cmocka_unit_test(test_newlines_and_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
