/* test_scan_decode.c: the decoders (base64 both alphabets, percent, JSON/shell escapes),
 * encoded keys found at the line of their encoded text, nesting depth, and the other
 * providers' rules (each with a negative), at every SIMD level. Keys are assembled at run time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/decode.h"
#include "scan/scan.h"

#define MAXHITS 16

struct found {
	size_t n;
	struct {
		enum scan_kind kind;
		uint64_t line, column;
		unsigned decoded;
		char key[SCAN_KEY_MAX + 1];
	} h[MAXHITS];
};

static int collect(void *arg, const struct scan_hit *hit)
{
	struct found *f = arg;
	if (f->n < MAXHITS) {
		f->h[f->n].kind = hit->kind;
		f->h[f->n].line = hit->line;
		f->h[f->n].column = hit->column;
		f->h[f->n].decoded = hit->decoded;
		memcpy(f->h[f->n].key, hit->key, hit->len);
		f->h[f->n].key[hit->len] = '\0';
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

static void b64(const char *in, char *out, bool url)
{
	const char *t = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" :
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? (unsigned char)in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static void test_b64_decoder(void **state)
{
	(void)state;
	unsigned char out[64];
	size_t n = scan_b64_decode((const unsigned char *)"aGVsbG8gd29ybGQ=", 16, out);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "hello world", 11);
	/* unpadded, URL-safe: 0xfb 0xff -> "-_8" */
	n = scan_b64_decode((const unsigned char *)"-_8", 3, out);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	/* stops at the first byte outside both alphabets */
	n = scan_b64_decode((const unsigned char *)"aGk*aGk", 7, out);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	assert_int_equal(scan_b64_decode((const unsigned char *)"a", 1, out), 0);
}

static void test_pct_and_esc_decoders(void **state)
{
	(void)state;
	unsigned char out[64], c;
	size_t n = scan_pct_decode((const unsigned char *)"a%5Fb%5fc%zz%4", 14, out);
	assert_int_equal(n, 10);
	assert_memory_equal(out, "a_b_c%zz%4", 10);
	const char *e = "\\u0073k\\x5f\\137\\_\\n\\u00e9\\q";
	n = scan_esc_decode((const unsigned char *)e, strlen(e), out);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "sk___\n\x80q", 8);
	/* incomplete escapes are copied, never read past the end */
	assert_int_equal(scan_esc_one((const unsigned char *)"\\u00", 4, &c), 0);
	assert_int_equal(scan_esc_one((const unsigned char *)"\\x5", 3, &c), 0);
	assert_int_equal(scan_esc_one((const unsigned char *)"\\", 1, &c), 0);
}

static const unsigned decode2 = SCAN_F_DECODE(2);

static void test_encoded_keys_at_their_line(void **state)
{
	(void)state;
	char b[128], key[160], enc[400], enc2[600], doc[2048];
	body(b, 99, 1);
	snprintf(key, sizeof(key), "sk_%s_%s", "live", b);
	for (int lvl = 0; lvl <= 2; lvl++) {
		scan_simd_cap(lvl);
		/* Kubernetes Secret: data value is base64 of the key */
		b64(key, enc, false);
		snprintf(doc, sizeof(doc), "kind: Secret\ndata:\n  KEY: %s\n", enc);
		struct found f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		assert_int_equal(f.h[0].line, 3);
		assert_int_equal(f.h[0].column, 8);
		assert_int_equal(f.h[0].decoded, 1);
		/* off: nothing */
		assert_int_equal(scan_str(doc, 0).n, 0);
		/* double base64 needs depth 2 */
		b64(enc, enc2, true);
		snprintf(doc, sizeof(doc), "# x\n\nSECRET=%s\n", enc2);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		assert_int_equal(f.h[0].line, 3);
		assert_int_equal(f.h[0].decoded, 2);
		assert_int_equal(scan_str(doc, SCAN_F_DECODE(1)).n, 0);
		/* Basic auth: base64("key:") after a prefix that is no part of it */
		snprintf(doc, sizeof(doc), "%s:", key);
		b64(doc, enc, false);
		snprintf(doc, sizeof(doc), "curl -H 'Authorization: Basic %s' x\n", enc);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		/* percent-encoded and escaped forms */
		snprintf(doc, sizeof(doc), "a\nurl=https://x/?k=sk%%5Flive%%5F%s&x=1\n", b);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		assert_int_equal(f.h[0].line, 2);
		snprintf(doc, sizeof(doc), "{\"k\": \"sk\\u005flive\\u005f%s\"}\n", b);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		assert_int_equal(f.h[0].column, 8);
		snprintf(doc, sizeof(doc), "export K=$'\\x73k\\x5flive\\x5f%s'\n", b);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.h[0].key, key);
		/* a plain key next to an encoded one: both, each at its own line */
		b64(key, enc, false);
		snprintf(doc, sizeof(doc), "P=%s\nE=%s\n", key, enc);
		f = scan_str(doc, decode2);
		assert_int_equal(f.n, 2);
		assert_int_equal(f.h[0].line + f.h[1].line, 3);
	}
	scan_simd_cap(-1);
}

/* base64 runs at every alignment to the 64-byte SIMD blocks, preceded by letters or not */
static void test_block_boundaries(void **state)
{
	(void)state;
	char b[128], key[160], enc[400], doc[1024];
	body(b, 40, 3);
	snprintf(key, sizeof(key), "rk_%s_%s", "live", b);
	b64(key, enc, false);
	for (int lvl = 0; lvl <= 2; lvl++) {
		scan_simd_cap(lvl);
		for (int off = 0; off < 140; off++) {
			memset(doc, ' ', (size_t)off);
			snprintf(doc + off, sizeof(doc) - (size_t)off, "K=%s x\n", enc);
			struct found f = scan_str(doc, decode2);
			assert_int_equal(f.n, 1);
			assert_string_equal(f.h[0].key, key);
			assert_int_equal(f.h[0].column, (uint64_t)off + 3);
		}
	}
	scan_simd_cap(-1);
}

struct offs {
	size_t n;
	uint64_t v[8192];
};

static int collect_off(void *arg, const struct scan_hit *hit)
{
	struct offs *o = arg;
	if (o->n < 8192)
		o->v[o->n] = hit->offset * 4096 + hit->len * 4 + hit->decoded;
	o->n++;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* a mixed 256 KiB text (letter runs of every length, punctuation, encoded and plain keys):
 * the scalar, AVX2 and AVX-512 paths find the same set, with decoding on and off */
static void test_levels_agree_with_decoding(void **state)
{
	(void)state;
	size_t n = 256 * 1024, o = 0;
	char *buf = malloc(n + 1), key[160], enc[400], b[128];
	uint32_t x = 7;
	assert_non_null(buf);
	while (o + 600 < n) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		switch (x % 11) {
		case 0:
			body(b, 20 + x % 80, x);
			snprintf(key, sizeof(key), "sk_%s_%s", "live", b);
			b64(key, enc, x & 1);
			o += (size_t)snprintf(buf + o, n - o, "%s%s", x & 2 ? "=" : "", enc);
			break;
		case 1:
			body(b, 30, x);
			o += (size_t)snprintf(buf + o, n - o, "sk%%5Flive%%5F%s", b);
			break;
		case 2:
			body(b, 30, x);
			o += (size_t)snprintf(buf + o, n - o, "sk\\u005ftest\\x5f%s", b);
			break;
		case 3:
			body(b, 40, x);
			o += (size_t)snprintf(buf + o, n - o, "rk_%s_%s", "live", b);
			break;
		default: {
			size_t r = x % 70;
			body(buf + o, r, x);
			o += r;
			buf[o++] = " \n._-/+%=\\\"'"[x % 13];
		}
		}
	}
	buf[o] = '\0';
	for (unsigned fl = 0; fl <= SCAN_F_DECODE(3); fl += SCAN_F_DECODE(1)) {
		static struct offs r[3];
		for (int lvl = 0; lvl <= 2; lvl++) {
			scan_simd_cap(lvl);
			r[lvl].n = 0;
			assert_int_equal(scan_buffer(buf, o, fl, collect_off, &r[lvl]), 0);
			qsort(r[lvl].v, r[lvl].n, sizeof(uint64_t), cmp_u64);
		}
		assert_true(r[0].n > 20 && r[0].n < 8192);
		assert_int_equal(r[0].n, r[1].n);
		assert_int_equal(r[0].n, r[2].n);
		assert_memory_equal(r[0].v, r[1].v, r[0].n * sizeof(uint64_t));
		assert_memory_equal(r[0].v, r[2].v, r[0].n * sizeof(uint64_t));
	}
	scan_simd_cap(-1);
	free(buf);
}

static void test_encoded_negatives(void **state)
{
	(void)state;
	char doc[4096], enc[512], near[256], b[64];
	body(b, 30, 7);
	/* near misses encoded stay near misses; hex hashes and random base64 find nothing */
	snprintf(near, sizeof(near), "task_live_%s sk_live_short sk-live_%s", b, b);
	b64(near, enc, false);
	snprintf(doc, sizeof(doc), "a: %s\nb: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		 "c: %%5Fnothing%%20here\nd: \\u005fx \\x41\n", enc);
	for (int lvl = 0; lvl <= 2; lvl++) {
		scan_simd_cap(lvl);
		assert_int_equal(scan_str(doc, SCAN_F_DECODE(4)).n, 0);
	}
	scan_simd_cap(-1);
}

struct prov {
	const char *text;
	enum scan_kind kind;
	const char *key;        /* expected key (NULL: the whole token in text after "=") */
};

static void test_providers(void **state)
{
	(void)state;
	char b36[64], b82[128], b16[32], b40[64], bm[64], bu[200], ba[128], bb[64], t[1024];
	body(b36, 36, 11);
	body(b82, 82, 12);
	body(bm, 43, 14);
	body(bu, 150, 15);
	body(ba, 90, 16);
	body(bb, 43, 17);
	/* AWS key id body: [A-Z2-7] */
	for (int i = 0; i < 16; i++)
		b16[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(i * 7 + 3) % 32];
	b16[16] = '\0';
	body(b40, 40, 13);
	b40[5] = '/';
	b40[0] = 'a';
	b40[1] = 'B';
	char gh[128], fine[256], mer[256], unit[512], ady[512], aws[64];
	snprintf(gh, sizeof(gh), "gh%c_%s", 'p', b36);
	snprintf(fine, sizeof(fine), "github%s%s", "_pat_", b82);
	snprintf(mer, sizeof(mer), "secret-token:mercury_%s_wma_%s_yrucrem", "production", bm);
	snprintf(unit, sizeof(unit), "v2.public.eyJyb2xlIjoi%s", bu);
	snprintf(ady, sizeof(ady), "AQE%s==-%s=-a1!b2@c3#d4$e5%%f", ba, bb);
	snprintf(aws, sizeof(aws), "AK%s%s", "IA", b16);
	struct {
		const char *fmt, *tok;
		enum scan_kind kind;
	} pos[] = {
		{ "GITHUB_TOKEN=%s\n", gh, SCAN_GITHUB_PAT },
		{ "token: \"%s\"\n", fine, SCAN_GITHUB_FINE },
		{ "Authorization: Bearer %s\n", mer, SCAN_MERCURY },
		{ "Authorization: Bearer %s\n", unit, SCAN_UNIT },
		{ "config.apiKey = '%s';\n", ady, SCAN_ADYEN },
		{ "aws_access_key_id = %s\n", aws, SCAN_AWS_KEY_ID },
	};
	for (int lvl = 0; lvl <= 2; lvl++) {
		scan_simd_cap(lvl);
		for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
			snprintf(t, sizeof(t), pos[i].fmt, pos[i].tok);
			struct found f = scan_str(t, 0);
			assert_int_equal(f.n, 1);
			assert_int_equal(f.h[0].kind, pos[i].kind);
			assert_string_equal(f.h[0].key, pos[i].tok);
		}
		/* AWS: the secret next to the key id is found with it */
		snprintf(t, sizeof(t), "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			 aws, b40);
		struct found f = scan_str(t, 0);
		assert_int_equal(f.n, 2);
		assert_int_equal(f.h[1].kind, SCAN_AWS_SECRET);
		assert_string_equal(f.h[1].key, b40);
		assert_int_equal(f.h[1].line, 3);
		/* negatives: wrong lengths, prefixes inside words, docs examples, a lone 40-char
		 * string (no key id before it), sandbox Mercury is its own (low) kind */
		const char *neg[] = { "ghp_short", "xghp_%s", "ghx_%s", "AKIAIOSFODNN7EXAMPLE",
				      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "%s", "MAKIA%s",
				      "github_pat_short", "mercury_production_wma_x_yrucrem",
				      "v2.public.eyJzdWIiOiJ4%s", "AQE%s" };
		for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
			snprintf(t, sizeof(t), neg[i], i == 5 ? b40 : i == 6 ? b16 : b36);
			f = scan_str(t, SCAN_F_DECODE(2));
			assert_int_equal(f.n, 0);
		}
		snprintf(t, sizeof(t), "secret-token:mercury_%s_abc_%s_yrucrem\n", "sandbox", bm);
		f = scan_str(t, 0);
		assert_int_equal(f.n, 1);
		assert_int_equal(f.h[0].kind, SCAN_MERCURY_SANDBOX);
		assert_int_equal(scan_kind_severity(SCAN_MERCURY_SANDBOX), SCAN_SEV_LOW);
	}
	scan_simd_cap(-1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_decoder),
		cmocka_unit_test(test_pct_and_esc_decoders),
		cmocka_unit_test(test_encoded_keys_at_their_line),
		cmocka_unit_test(test_block_boundaries),
		cmocka_unit_test(test_levels_agree_with_decoding),
		cmocka_unit_test(test_encoded_negatives),
		cmocka_unit_test(test_providers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
