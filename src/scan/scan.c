/* scan.c (~1,200 lines: the scalar, AVX2 and AVX-512 searches must agree byte for byte, so they
 * live together with the checks and the one driver they share): the scanner engine: candidate
 * search (scalar, AVX2 or AVX-512BW), key checks, decoding of encoded runs, line tracking,
 * whole-buffer and windowed-stream drivers. */
#include "scan/scan.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/decode.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCAN_X86 1
#endif

static const struct {
	const char *name, *title;
	enum scan_severity sev;
} kinds[SCAN_KIND_COUNT] = {
	[SCAN_SK_LIVE] = { "sk_live", "Stripe live secret key", SCAN_SEV_CRITICAL },
	[SCAN_SK_TEST] = { "sk_test", "Stripe test secret key", SCAN_SEV_LOW },
	[SCAN_RK_LIVE] = { "rk_live", "Stripe live restricted key", SCAN_SEV_CRITICAL },
	[SCAN_RK_TEST] = { "rk_test", "Stripe test restricted key", SCAN_SEV_LOW },
	[SCAN_SK_ORG] = { "sk_org", "Stripe organization key", SCAN_SEV_CRITICAL },
	[SCAN_SK_ORG_TEST] = { "sk_org_test", "Stripe test organization key", SCAN_SEV_LOW },
	[SCAN_WHSEC] = { "whsec", "Stripe webhook signing secret", SCAN_SEV_HIGH },
	[SCAN_PK_LIVE] = { "pk_live", "Stripe live publishable key", SCAN_SEV_INFO },
	[SCAN_PK_TEST] = { "pk_test", "Stripe test publishable key", SCAN_SEV_INFO },
	[SCAN_AWS_KEY_ID] = { "aws_access_key_id", "AWS access key ID", SCAN_SEV_HIGH },
	[SCAN_AWS_SECRET] = { "aws_secret_access_key", "AWS secret access key", SCAN_SEV_CRITICAL },
	[SCAN_GITHUB_PAT] = { "github_pat", "GitHub personal access token", SCAN_SEV_CRITICAL },
	[SCAN_GITHUB_FINE] = { "github_fine_grained_pat", "GitHub fine-grained personal access token",
			       SCAN_SEV_CRITICAL },
	[SCAN_GITHUB_OAUTH] = { "github_oauth", "GitHub OAuth access token", SCAN_SEV_CRITICAL },
	[SCAN_GITHUB_APP] = { "github_app_token", "GitHub App installation/user token", SCAN_SEV_CRITICAL },
	[SCAN_GITHUB_REFRESH] = { "github_refresh_token", "GitHub App refresh token", SCAN_SEV_CRITICAL },
	[SCAN_MERCURY] = { "mercury", "Mercury API token", SCAN_SEV_CRITICAL },
	[SCAN_MERCURY_SANDBOX] = { "mercury_sandbox", "Mercury sandbox API token", SCAN_SEV_LOW },
	[SCAN_UNIT] = { "unit", "Unit API token", SCAN_SEV_CRITICAL },
	[SCAN_ADYEN] = { "adyen", "Adyen API key", SCAN_SEV_CRITICAL },
};

const char *scan_kind_name(enum scan_kind k)
{
	return (unsigned)k < SCAN_KIND_COUNT ? kinds[k].name : "unknown";
}

const char *scan_kind_title(enum scan_kind k)
{
	return (unsigned)k < SCAN_KIND_COUNT ? kinds[k].title : "unknown";
}

enum scan_severity scan_kind_severity(enum scan_kind k)
{
	return (unsigned)k < SCAN_KIND_COUNT ? kinds[k].sev : SCAN_SEV_INFO;
}

const char *scan_severity_name(enum scan_severity s)
{
	static const char *const names[] = { "critical", "high", "low", "info" };
	return (unsigned)s < 4 ? names[s] : "info";
}

bool scan_kind_parse(const char *s, enum scan_kind *out)
{
	for (unsigned k = 0; k < SCAN_KIND_COUNT; k++)
		if (!strcmp(s, kinds[k].name)) {
			*out = (enum scan_kind)k;
			return true;
		}
	return false;
}

/* [0-9A-Za-z] */
static const unsigned char alnum[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

bool scan_is_placeholder(const char *body, size_t n)
{
	static const char *const words[] = {
		"your", "xxxx", "example", "placeholder", "insert", "replace", "redacted",
		"dummy", "fake", "changeme", "sample",
	};
	const unsigned char *b = (const unsigned char *)body;

	if (n == 0)
		return true;
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);
		if (n >= wl && !strncasecmp(body, words[w], wl))
			return true;
	}
	/* a short unit repeated over the whole body: aaaa..., abab..., 12341234... */
	for (size_t p = 1; p <= 4 && p < n; p++) {
		size_t i = p;
		while (i < n && b[i] == b[i - p])
			i++;
		if (i == n)
			return true;
	}
	/* counting up: 0123456789..., abcdefgh... */
	size_t i = 1;
	while (i < n && (b[i] == b[i - 1] + 1 ||
			 (b[i - 1] == '9' && (b[i] == '0' || b[i] == 'a' || b[i] == 'A'))))
		i++;
	if (i == n)
		return true;
	/* a run of x marks a redacted stretch, as in docs: 51Hxxxxxxxx... */
	size_t run = 0;
	for (i = 0; i < n; i++) {
		run = (b[i] | 0x20) == 'x' ? run + 1 : 0;
		if (run >= 6)
			return true;
	}
	return false;
}

/* Letters/digits from p on, counting at most SCAN_BODY_MAX + 1 of them. */
static size_t body_len(const unsigned char *p, const unsigned char *end)
{
	size_t lim = (size_t)(end - p);
	if (lim > SCAN_BODY_MAX + 1)
		lim = SCAN_BODY_MAX + 1;
	size_t n = 0;
	while (n < lim && alnum[p[n]])
		n++;
	return n;
}

/* Bytes of class tab from p on, at most lim. */
static size_t span(const unsigned char *tab, const unsigned char *p, const unsigned char *end,
		   size_t lim)
{
	size_t n = 0;
	if ((size_t)(end - p) < lim)
		lim = (size_t)(end - p);
	while (n < lim && tab[p[n]])
		n++;
	return n;
}

/* [A-Za-z0-9+/] (base64 standard), [A-Za-z0-9_-] (base64url), [A-Za-z0-9_] (\w), [A-Z2-7] */
static unsigned char b64std[256], b64url[256], word[256], aws32[256], b64any[256], pctc[256];

__attribute__((constructor)) static void tables_init(void)
{
	for (int c = 0; c < 256; c++) {
		bool a = alnum[c];
		b64std[c] = a || c == '+' || c == '/';
		b64url[c] = a || c == '-' || c == '_';
		word[c] = a || c == '_';
		aws32[c] = (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
		b64any[c] = a || c == '+' || c == '/' || c == '-' || c == '_';
		pctc[c] = a || c == '%' || c == '_' || c == '-' || c == '.' || c == '~' || c == '+';
	}
}

/* Stripe: sk_/rk_/pk_ (trigger '_' after "?k") and whsec_ (after "ec"). */
static bool check_stripe(const unsigned char *buf, size_t len, size_t t, unsigned flags,
			 struct scan_token *tok)
{
	const unsigned char *end = buf + len;
	size_t s, b;
	size_t min = SCAN_BODY_MIN;
	enum scan_kind kind;

	if (buf[t - 1] == 'k') {
		s = t - 2;
		if (s > 0 && alnum[buf[s - 1]])
			return false; /* task_, disk_, mask_: the common non-keys */
		unsigned char c = buf[s];
		const unsigned char *p = buf + t + 1;
		size_t room = (size_t)(end - p);
		bool live = room >= 5 && !memcmp(p, "live_", 5);
		bool test = !live && room >= 5 && !memcmp(p, "test_", 5);
		if (c == 's') {
			if (live || test) {
				kind = live ? SCAN_SK_LIVE : SCAN_SK_TEST;
				b = t + 6;
			} else if (room >= 4 && !memcmp(p, "org_", 4)) {
				kind = SCAN_SK_ORG;
				b = t + 5;
				room -= 4;
				if (room >= 5 && !memcmp(p + 4, "live_", 5)) {
					b += 5;
				} else if (room >= 5 && !memcmp(p + 4, "test_", 5)) {
					kind = SCAN_SK_ORG_TEST;
					b += 5;
				}
			} else {
				return false;
			}
		} else if (c == 'r' && (live || test)) {
			kind = live ? SCAN_RK_LIVE : SCAN_RK_TEST;
			b = t + 6;
		} else if (c == 'p' && (live || test) && (flags & SCAN_F_PUBLISHABLE)) {
			kind = live ? SCAN_PK_LIVE : SCAN_PK_TEST;
			b = t + 6;
		} else {
			return false;
		}
	} else {
		if (t < 5 || memcmp(buf + t - 5, "whsec", 5))
			return false;
		s = t - 5;
		kind = SCAN_WHSEC;
		b = t + 1;
		min = SCAN_WHSEC_MIN;
	}
	if (s > 0 && alnum[buf[s - 1]])
		return false;
	size_t n = body_len(buf + b, end);
	if (n < min || n > SCAN_BODY_MAX)
		return false;
	if (scan_is_placeholder((const char *)buf + b, n))
		return false;
	tok->kind = kind;
	tok->start = s;
	tok->len = b + n - s;
	return true;
}

static bool has_example(const unsigned char *p, size_t n)
{
	return memmem(p, n, "EXAMPLE", 7) != NULL;
}

/* Other providers. Formats (sources in docs/scan.md, "Other providers"):
 * - GitHub (gitleaks rules github-pat, github-oauth, github-app-token, github-refresh-token,
 *   github-fine-grained-pat): gh[pousr]_ + 36 [A-Za-z0-9]; github_pat_ + 82 [A-Za-z0-9_].
 * - AWS (gitleaks aws-access-token): (AKIA|ASIA|ABIA|ACCA) + 16 [A-Z2-7]; the secret access key
 *   is 40 [A-Za-z0-9/+] (AWS IAM docs), taken only within 256 bytes after an access key id.
 * - Mercury (docs.mercury.com OpenAPI securitySchemes example):
 *   secret-token:mercury_(production|sandbox)_[a-z]{3}_<letters/digits>_yrucrem.
 * - Unit (unit.co/docs/api/using-the-api: "Bearer v2.public.eyJyb2xlIjoib3JnIiwidX..."): a
 *   PASETO v2.public token whose payload starts {"role":" : v2.public.eyJyb2xlIjoi + base64url.
 * - Adyen: no published format; keys in public code using Adyen's libraries are
 *   AQE<base64>-<base64, 43 + '='>-<16 printable>, which is what we match (not the third part
 *   when it is missing).
 * Each is bounded like Stripe keys: the byte before and after is not part of the alphabet. */
static bool check_other(const unsigned char *buf, size_t len, size_t t, struct scan_token *tok)
{
	const unsigned char *end = buf + len;
	unsigned char u = buf[t], k = buf[t - 1], a = buf[t - 2];
	size_t s, n;

	if (u == '_' && a == 'h' && t >= 3 && buf[t - 3] == 'g') {
		/* ghp_ gho_ ghu_ ghs_ ghr_ + 36 */
		s = t - 3;
		if ((s > 0 && word[buf[s - 1]]) || !strchr("pousr", k) || !k)
			return false;
		n = span(alnum, buf + t + 1, end, 37);
		if (n != 36 || (t + 37 < len && buf[t + 37] == '_'))
			return false;
		tok->kind = k == 'p' ? SCAN_GITHUB_PAT : k == 'o' ? SCAN_GITHUB_OAUTH :
			    k == 'r' ? SCAN_GITHUB_REFRESH : SCAN_GITHUB_APP;
		tok->start = s;
		tok->len = 40;
		return !scan_is_placeholder((const char *)buf + t + 1, n);
	}
	if (u == '_' && k == 't' && a == 'a' && t >= 10 && !memcmp(buf + t - 10, "github_pat", 10)) {
		s = t - 10;
		if (s > 0 && word[buf[s - 1]])
			return false;
		n = span(word, buf + t + 1, end, 83);
		if (n != 82 || scan_is_placeholder((const char *)buf + t + 1, n))
			return false;
		tok->kind = SCAN_GITHUB_FINE;
		tok->start = s;
		tok->len = 93;
		return true;
	}
	if (u == '_' && k == 'y' && a == 'r' && t >= 7 && !memcmp(buf + t - 7, "mercury", 7)) {
		const unsigned char *p = buf + t + 1;
		size_t room = (size_t)(end - p);
		bool prod = room >= 11 && !memcmp(p, "production_", 11);
		bool sand = !prod && room >= 8 && !memcmp(p, "sandbox_", 8);
		if (!prod && !sand)
			return false;
		p += prod ? 11 : 8;
		if ((size_t)(end - p) < 4 || !islower(p[0]) || !islower(p[1]) || !islower(p[2]) ||
		    p[3] != '_')
			return false;
		p += 4;
		n = span(alnum, p, end, 200);
		if (n < 20 || n >= 200 || (size_t)(end - p) < n + 8 || memcmp(p + n, "_yrucrem", 8) ||
		    (p + n + 8 < end && word[p[n + 8]]) || scan_is_placeholder((const char *)p, n))
			return false;
		s = t - 7;
		if (s >= 13 && !memcmp(buf + s - 13, "secret-token:", 13))
			s -= 13;
		else if (s > 0 && word[buf[s - 1]])
			return false;
		tok->kind = prod ? SCAN_MERCURY : SCAN_MERCURY_SANDBOX;
		tok->start = s;
		tok->len = (size_t)(p + n + 8 - buf) - s;
		return true;
	}
	if (u == '.' && k == 'c' && a == 'i' && t >= 9 && !memcmp(buf + t - 9, "v2.public", 9)) {
		s = t - 9;
		if ((s > 0 && (alnum[buf[s - 1]] || buf[s - 1] == '.')) || (size_t)(end - buf) < t + 13 ||
		    memcmp(buf + t + 1, "eyJyb2xlIjoi", 12))
			return false;
		size_t lim = SCAN_KEY_MAX - 10 + 1;
		n = span(b64url, buf + t + 1, end, lim);
		if (n < 40 || n >= lim || (t + 1 + n < len && buf[t + 1 + n] == '.'))
			return false;
		tok->kind = SCAN_UNIT;
		tok->start = s;
		tok->len = 10 + n;
		return true;
	}
	if (u == 'E' && k == 'Q' && a == 'A') {
		s = t - 2;
		if (s > 0 && b64std[buf[s - 1]])
			return false;
		const unsigned char *p = buf + t + 1;
		n = span(b64std, p, end, 400);
		if (n < 20 || n >= 400)
			return false;
		p += n;
		while (p < end && *p == '=' && p - (buf + t + 1) < (ptrdiff_t)n + 2)
			p++;
		if (end - p < 46 || p[0] != '-' || span(b64std, p + 1, end, 44) != 43 || p[44] != '=')
			return false;
		p += 45;
		/* the third part: 16 printable characters, quotes and backslash excluded */
		if (end - p >= 17 && p[0] == '-') {
			size_t q = 1;
			while (q <= 16 && p[q] > 0x20 && p[q] < 0x7f && !strchr("\"'`\\", p[q]))
				q++;
			if (q == 17 && (p + 17 == end || p[17] <= 0x20 || strchr("\"'`\\,;", p[17])))
				p += 17;
		}
		tok->kind = SCAN_ADYEN;
		tok->start = s;
		tok->len = (size_t)(p - buf) - s;
		return tok->len <= SCAN_KEY_MAX;
	}
	if (u == 'A' && k == 'I' && t >= 3 && buf[t - 3] == 'A') {
		s = t - 3;
		if (!((a == 'K' || a == 'S' || a == 'B') || (a == 'C' && buf[t - 1] == 'C')))
			return false;
		if ((s > 0 && alnum[buf[s - 1]]))
			return false;
		n = span(aws32, buf + t + 1, end, 17);
		if (n != 16 || (t + 17 < len && alnum[buf[t + 17]]) || has_example(buf + t + 1, 16) ||
		    scan_is_placeholder((const char *)buf + t + 1, 16))
			return false;
		tok->kind = SCAN_AWS_KEY_ID;
		tok->start = s;
		tok->len = 20;
		return true;
	}
	if (u == 'A' && k == 'C' && a == 'C' && t >= 3 && buf[t - 3] == 'A') {
		/* ACCA: the trigger above needs "?I A"; this one is rare, checked here */
		s = t - 3;
		if (s > 0 && alnum[buf[s - 1]])
			return false;
		n = span(aws32, buf + t + 1, end, 17);
		if (n != 16 || (t + 17 < len && alnum[buf[t + 17]]) || has_example(buf + t + 1, 16))
			return false;
		tok->kind = SCAN_AWS_KEY_ID;
		tok->start = s;
		tok->len = 20;
		return true;
	}
	return false;
}

/* An AWS secret access key within 256 bytes after the key id ending at e: 40 [A-Za-z0-9/+]
 * with both cases (a 40-hex SHA-1 is not one), bounded by bytes outside that set and '='. */
static bool aws_secret(const unsigned char *buf, size_t len, size_t e, struct scan_token *tok)
{
	size_t lim = e + 256 < len ? e + 256 : len;
	for (size_t i = e; i < lim; i++) {
		if (!b64std[buf[i]] || (i > 0 && (b64std[buf[i - 1]] || buf[i - 1] == '=')))
			continue;
		size_t n = span(b64std, buf + i, buf + len, 41);
		if (n == 40 && !(i + 40 < len && buf[i + 40] == '=')) {
			bool up = false, lo = false;
			for (size_t j = i; j < i + 40; j++) {
				up |= buf[j] >= 'A' && buf[j] <= 'Z';
				lo |= buf[j] >= 'a' && buf[j] <= 'z';
			}
			if (up && lo && !has_example(buf + i, 40)) {
				tok->kind = SCAN_AWS_SECRET;
				tok->start = i;
				tok->len = 40;
				return true;
			}
		}
		i += n;
	}
	return false;
}

/* Checks a candidate whose trigger byte is at t (t >= 2); fills tok. */
static bool check_candidate(const unsigned char *buf, size_t len, size_t t, unsigned flags,
			    struct scan_token *tok)
{
	tok->key = NULL;
	tok->key_len = 0;
	tok->decoded = 0;
	unsigned char k = buf[t - 1], a = buf[t - 2];
	if (buf[t] == '_' && ((k == 'k' && (a == 's' || a == 'r' || a == 'p')) ||
			      (k == 'c' && a == 'e')))
		return check_stripe(buf, len, t, flags, tok);
	return check_other(buf, len, t, tok);
}

typedef int (*tok_fn)(void *, const struct scan_token *);

/* Examines trigger t; returns fn's value when a key starting in [from, to) is there. */
static inline int try_trigger(const unsigned char *buf, size_t len, size_t t, size_t from,
			      size_t to, unsigned flags, tok_fn fn, void *arg)
{
	struct scan_token tok;

	if (!check_candidate(buf, len, t, flags, &tok))
		return 0;
	if (tok.start < from || tok.start >= to)
		return 0;
	int rc = fn(arg, &tok);
	if (rc == 0 && tok.kind == SCAN_AWS_KEY_ID &&
	    aws_secret(buf, len, tok.start + tok.len, &tok))
		rc = fn(arg, &tok); /* owned by its key id, wherever it starts */
	return rc;
}

/* Trigger bytes: '_' (Stripe, GitHub, Mercury), '.' (Unit), 'E' (Adyen), 'A' (AWS). */
static const unsigned char trig_byte[256] = { ['_'] = 1, ['.'] = 1, ['E'] = 1, ['A'] = 1 };

/* Is t a trigger? The same test as the SIMD filters, byte by byte. */
static inline bool is_trigger(const unsigned char *buf, size_t t)
{
	unsigned char u = buf[t], a = buf[t - 2], k = buf[t - 1];
	if (!trig_byte[u])
		return false;
	unsigned char z = t >= 3 ? buf[t - 3] : 0;
	switch (u) {
	case '_':
		return (k == 'k' && (a == 's' || a == 'r' || a == 'p') && !alnum[z]) ||
		       (k == 'c' && a == 'e' && z == 's') || (a == 'h' && z == 'g') ||
		       (k == 't' && a == 'a' && z == 'p') || (k == 'y' && a == 'r');
	case '.':
		return k == 'c' && a == 'i';
	case 'E':
		return k == 'Q' && a == 'A';
	default:
		return z == 'A' && (k == 'I' || (k == 'C' && a == 'C'));
	}
}

/* bytes of w equal to c (a set high bit per match, none missed; an extra one only above a match) */
static inline uint64_t swar_eq(uint64_t w, uint64_t c)
{
	uint64_t v = w ^ c;
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

/* The scalar filter: 8 bytes at a time for the trigger bytes, then byte by byte. */
static int triggers_scalar(const unsigned char *buf, size_t len, size_t lo, size_t hi,
			   size_t from, size_t to, unsigned flags, tok_fn fn, void *arg)
{
	const uint64_t us = 0x5f5f5f5f5f5f5f5full, dot = 0x2e2e2e2e2e2e2e2eull,
		       E = 0x4545454545454545ull, A = 0x4141414141414141ull;
	size_t t = lo;
	int rc;
	for (; t + 8 <= hi; t += 8) {
		uint64_t w;
		memcpy(&w, buf + t, 8);
		w = le64toh(w); /* byte i in bits 8i..8i+7, whatever the CPU's order */
		uint64_t m = swar_eq(w, us) | swar_eq(w, dot) | swar_eq(w, E) | swar_eq(w, A);
		while (m) {
			size_t at = t + (size_t)(__builtin_ctzll(m) >> 3);
			if (trig_byte[buf[at]] && is_trigger(buf, at) &&
			    (rc = try_trigger(buf, len, at, from, to, flags, fn, arg)))
				return rc;
			m &= m - 1;
		}
	}
	for (; t < hi; t++)
		if (trig_byte[buf[t]] && is_trigger(buf, t) &&
		    (rc = try_trigger(buf, len, t, from, to, flags, fn, arg)))
			return rc;
	return 0;
}

/* ---- encoded secrets: candidates are rare spots; the decoded bytes are scanned again ---- */

struct dec_ctx {
	const unsigned char *dec;
	size_t start, elen;     /* the encoded text in the outer buffer */
	tok_fn fn;
	void *arg;
};

static int dec_emit(void *arg, const struct scan_token *t)
{
	struct dec_ctx *d = arg;
	struct scan_token o = {
		.kind = t->kind, .start = d->start, .len = d->elen,
		.key = t->key ? t->key : d->dec + t->start, .key_len = t->key ? t->key_len : t->len,
		.decoded = t->decoded + 1,
	};
	return d->fn(d->arg, &o);
}

static int dec_scan(const unsigned char *dec, size_t dn, size_t start, size_t elen, unsigned flags,
		    tok_fn fn, void *arg)
{
	unsigned depth = (flags & SCAN_F_DECODE_MASK) >> 8;
	struct dec_ctx d = { dec, start, elen, fn, arg };
	if (dn < SCAN_BODY_MIN + 3)
		return 0;
	flags = (flags & ~SCAN_F_DECODE_MASK) | SCAN_F_DECODE(depth - 1);
	return scan_tokens(dec, dn, 0, dn, flags, dec_emit, &d);
}

/* Where the run of tab bytes that reaches q starts, looking at most back bytes before q. */
static size_t run_start(const unsigned char *tab, const unsigned char *buf, size_t q, size_t back)
{
	size_t lim = q > back ? q - back : 0, s = q;
	while (s > lim && tab[buf[s - 1]])
		s--;
	return s;
}

/* Decodes buf[s, e) into a new buffer (decoding only shrinks) and scans that. */
static int dec_span(const unsigned char *buf, size_t s, size_t e,
		    size_t (*decode)(const unsigned char *in, size_t n, unsigned char *out),
		    unsigned flags, tok_fn fn, void *arg)
{
	unsigned char *out = malloc(e - s);
	if (!out)
		return -ENOMEM;
	size_t n = decode(buf + s, e - s, out);
	int rc = dec_scan(out, n, s, e - s, flags, fn, arg);
	free(out);
	return rc;
}

/* A base64 run whose first 24 letters/digits start at p. */
static int dec_b64(const unsigned char *buf, size_t len, size_t p, unsigned flags, tok_fn fn,
		   void *arg)
{
	size_t s = run_start(b64any, buf, p, SCAN_DECODE_BACK), run = 0;
	for (size_t i = s; i < p; i++) {
		run = alnum[buf[i]] ? run + 1 : 0;
		if (run >= 24)
			return 0; /* an earlier stretch of this run was the trigger */
	}
	size_t e = p + span(b64any, buf + p, buf + len, SCAN_DECODE_MAX - (p - s));
	unsigned char *out = malloc((e - s) / 4 * 3 + 3);
	int rc = 0;
	if (!out)
		return -ENOMEM;
	/* the run may start with a few bytes that are no part of the encoding (api_key_c2tf...) */
	for (size_t al = 0; al < 4 && rc == 0 && s + al + 16 <= e; al++) {
		size_t n = scan_b64_decode(buf + s + al, e - s - al, out);
		rc = dec_scan(out, n, s + al, e - s - al, flags, fn, arg);
	}
	free(out);
	return rc;
}

static bool is_pct5f(const unsigned char *buf, size_t len, size_t q)
{
	return q + 2 < len && buf[q] == '%' && buf[q + 1] == '5' && (buf[q + 2] | 0x20) == 'f';
}

/* "%5F" (an encoded '_', which every percent-encoded key has) at q. */
static int dec_pct(const unsigned char *buf, size_t len, size_t q, unsigned flags, tok_fn fn,
		   void *arg)
{
	if (!is_pct5f(buf, len, q))
		return 0;
	size_t s = run_start(pctc, buf, q, 2048);
	for (size_t i = s; i < q; i++)
		if (is_pct5f(buf, len, i))
			return 0; /* handled at the first %5F of the run */
	size_t e = q + span(pctc, buf + q, buf + len, 4096);
	return dec_span(buf, s, e, scan_pct_decode, flags, fn, arg);
}

/* An escape that yields a key character (letter, digit, '_') */
static size_t esc_key_char(const unsigned char *buf, size_t len, size_t q)
{
	unsigned char c;
	size_t k = scan_esc_one(buf + q, len - q, &c);
	return k && word[c] ? k : 0;
}

/* A backslash escape at q inside a token: the token is unescaped and scanned. */
static int dec_esc(const unsigned char *buf, size_t len, size_t q, unsigned flags, tok_fn fn,
		   void *arg)
{
	if (!esc_key_char(buf, len, q))
		return 0;
	size_t lim = q > 1024 ? q - 1024 : 0, s = run_start(word, buf, q, 1024);
	/* an escape that continues a token started by an earlier one was handled there */
	for (size_t b = s; b-- > lim && b + 6 >= s;)
		if (buf[b] == '\\' && b + esc_key_char(buf, len, b) == s && esc_key_char(buf, len, b))
			return 0;
	size_t e = s, emax = s + 8192 < len ? s + 8192 : len;
	while (e < emax) {
		size_t k;
		if (word[buf[e]])
			e++;
		else if (buf[e] == '\\' && (k = esc_key_char(buf, emax, e)))
			e += k;
		else
			break;
	}
	return dec_span(buf, s, e, scan_esc_decode, flags, fn, arg);
}

static int dec_at(const unsigned char *buf, size_t len, size_t q, unsigned flags, tok_fn fn,
		  void *arg)
{
	return buf[q] == '%' ? dec_pct(buf, len, q, flags, fn, arg) :
			       dec_esc(buf, len, q, flags, fn, arg);
}

/* Letters/digits just before position i (at most 64). */
static uint64_t alnum_run_before(const unsigned char *buf, size_t i)
{
	uint64_t n = 0;
	while (n < 64 && i > n && alnum[buf[i - n - 1]])
		n++;
	return n;
}

/* Decode candidates without SIMD: starts p of runs of 24+ letters/digits whose 24th letter is
 * in [b64_lo, hi), and '%' / '\\' in [esc_lo, hi); only those at positions in [from, to) count.
 * The run search looks at every 24th byte while it meets no letter or digit. */
static int dec_scalar(const unsigned char *buf, size_t len, size_t b64_lo, size_t esc_lo,
		      size_t hi, size_t from, size_t to, unsigned flags, tok_fn fn, void *arg)
{
	size_t i = b64_lo; /* a candidate 24th position */
	int rc;
	while (i < hi) {
		if (!alnum[buf[i]]) {
			i += 24; /* no 24-run has its 24th letter in [i, i + 24) */
			continue;
		}
		size_t k = i;
		while (k > 0 && i - k < 24 && alnum[buf[k - 1]])
			k--;
		size_t f = i;
		if (i - k < 24) {
			/* the run starts at k: does it reach k + 24? */
			while (f < k + 24 && f < len && alnum[buf[f]])
				f++;
			if (f < k + 24) {
				i = f + 24;
				continue;
			}
			if (k + 23 < hi && k >= from && k < to && (rc = dec_b64(buf, len, k, flags, fn, arg)))
				return rc;
		}
		/* past this run (its start is handled or lies before b64_lo) */
		while (f < hi && alnum[buf[f]])
			f++;
		i = f + 24;
	}
	size_t end = hi < to ? hi : to;
	for (size_t q = esc_lo < from ? from : esc_lo; q < end; q++) {
		const unsigned char *p = memchr(buf + q, '%', end - q), *b = memchr(buf + q, '\\', end - q);
		if (!p && !b)
			break;
		q = (size_t)((!b || (p && p < b) ? p : b) - buf);
		if ((rc = dec_at(buf, len, q, flags, fn, arg)))
			return rc;
	}
	return 0;
}

#ifdef SCAN_X86
/* Starts of runs of 24+ letters/digits, from block mask m (bit j: position j) and *runlen, the
 * run ending just before the block. Returns the starts of runs that reach 24 inside the block;
 * *cross is set to how far before the block a run starts that reaches 24 only now (else 0).
 * Updates *runlen. */
static inline uint64_t runs24(uint64_t m, uint64_t *runlen, uint64_t *cross)
{
	uint64_t r = *runlen;
	uint64_t y = m & (m >> 1);      /* y[j]: m[j..j+k-1] all set, k = 2, 4, 8, 16, 24 */
	y &= y >> 2;
	y &= y >> 4;
	y &= y >> 8;
	y &= y >> 8;
	uint64_t lead = m == ~0ull ? 64 : (uint64_t)__builtin_ctzll(~m); /* ones at the block start */
	*cross = r && r < 24 && r + lead >= 24 ? r : 0;
	*runlen = m == ~0ull ? (r < (1u << 30) ? r + 64 : r) : (uint64_t)__builtin_clzll(~m);
	/* a start is a set bit whose predecessor is clear (bit 0: the carried run) */
	return y & ~((m << 1) | (r ? 1 : 0));
}

/* Handles the decode candidates of one 64-byte block at t: base64 run starts are at positions
 * t-3+j (and t-3-cross), escapes at t+j. */
__attribute__((noinline)) static int dec_block(const unsigned char *buf, size_t len, size_t t,
					       uint64_t starts, uint64_t cross, uint64_t esc,
					       size_t from, size_t to, unsigned flags, tok_fn fn,
					       void *arg)
{
	int rc;
	if (cross) {
		size_t p = t - 3 - (size_t)cross;
		if (p >= from && p < to && (rc = dec_b64(buf, len, p, flags, fn, arg)))
			return rc;
	}
	while (starts) {
		size_t p = t - 3 + (size_t)__builtin_ctzll(starts);
		if (p >= from && p < to && (rc = dec_b64(buf, len, p, flags, fn, arg)))
			return rc;
		starts &= starts - 1;
	}
	while (esc) {
		size_t q = t + (size_t)__builtin_ctzll(esc);
		if (q >= from && q < to && (rc = dec_at(buf, len, q, flags, fn, arg)))
			return rc;
		esc &= esc - 1;
	}
	return 0;
}

/* Trigger shapes as 8 bit-patterns over the four bytes z a k u ending at the trigger u; each
 * byte is classified by two 16-entry nibble tables (class = LO[x & 15] & HI[x >> 4]), so one
 * shuffle pair per load tests all providers at once. "any" sets the bit for every byte. */
static const struct {
	const char *z, *a, *k, *u;      /* allowed bytes, NULL = any */
} shapes[8] = {
	{ NULL, "srp", "k", "_" },      /* sk_ rk_ pk_ (the boundary before is tested apart) */
	{ "s", "e", "c", "_" },         /* whsec_ */
	{ "g", "h", NULL, "_" },        /* ghp_ gho_ ghu_ ghs_ ghr_ */
	{ "p", "a", "t", "_" },         /* github_pat_ */
	{ NULL, "r", "y", "_" },        /* mercury_ */
	{ NULL, "i", "c", "." },        /* v2.public. */
	{ NULL, "A", "Q", "E" },        /* AQE (Adyen) */
	{ "A", NULL, "IC", "A" },       /* AKIA ASIA ABIA / ACCA */
};

static unsigned char nib_lo[4][16], nib_hi[4][16]; /* [z, a, k, u] */

__attribute__((constructor)) static void nib_init(void)
{
	for (int b = 0; b < 8; b++)
		for (int pos = 0; pos < 4; pos++) {
			const char *set = pos == 0 ? shapes[b].z : pos == 1 ? shapes[b].a :
					  pos == 2 ? shapes[b].k : shapes[b].u;
			for (int x = 0; x < 256; x++)
				if (!set || (x && strchr(set, x))) {
					nib_lo[pos][x & 15] |= (unsigned char)(1u << b);
					nib_hi[pos][x >> 4] |= (unsigned char)(1u << b);
				}
		}
}

/* Hit masks of one 64-byte block: trigger positions, base64 run starts (and a run start carried
 * from before the block), escape candidates. */
struct blk_hits {
	uint64_t bits, starts, cross, esc;
};

/* A SIMD search over [t, hi) in 64-byte blocks: a leaf (no calls), so its tables stay in
 * registers. It returns at the first block with a hit (filling *h), or at the first t with
 * t + 64 > hi. *runlen carries the letters/digits run across blocks (decoding only). */
typedef size_t (*find_fn)(const unsigned char *buf, size_t t, size_t hi, uint64_t *runlen,
			  struct blk_hits *h);

/* The constants and the nibble classifier, written once for both vector widths: W bits, vector
 * type V, intrinsic prefix P, broadcast of a 16-byte table B. kit##W() fills the constants
 * (kept in registers by the leaf searches); cls##W classifies the bytes of v as position pos
 * (0..3 = z a k u) of a trigger shape: class = LO[x & 15] & HI[x >> 4]. */
#define SIMD_KIT(W, V, P, TGT, B)                                                                 \
	struct kit##W {                                                                           \
		V d0, d9, lc, la, l25, f, pc, bs, lo[4], hi[4];                                   \
	};                                                                                        \
	__attribute__((target(TGT), always_inline)) static inline struct kit##W kit##W(void)      \
	{                                                                                         \
		struct kit##W k;                                                                  \
		k.d0 = P##_set1_epi8('0');                                                        \
		k.d9 = P##_set1_epi8(9);                                                          \
		k.lc = P##_set1_epi8(0x20);                                                       \
		k.la = P##_set1_epi8('a');                                                        \
		k.l25 = P##_set1_epi8(25);                                                        \
		k.f = P##_set1_epi8(0x0f);                                                        \
		k.pc = P##_set1_epi8('%');                                                        \
		k.bs = P##_set1_epi8('\\');                                                       \
		for (int i = 0; i < 4; i++) {                                                     \
			k.lo[i] = B(_mm_loadu_si128((const __m128i *)nib_lo[i]));                 \
			k.hi[i] = B(_mm_loadu_si128((const __m128i *)nib_hi[i]));                 \
		}                                                                                 \
		return k;                                                                         \
	}                                                                                         \
	__attribute__((target(TGT), always_inline)) static inline V cls##W(V v,                   \
									 const struct kit##W *k,  \
									 int pos)                 \
	{                                                                                         \
		V lo = P##_and_si##W(v, k->f);                                                    \
		V hi = P##_and_si##W(P##_srli_epi16(v, 4), k->f);                                 \
		return P##_and_si##W(P##_shuffle_epi8(k->lo[pos], lo),                            \
				     P##_shuffle_epi8(k->hi[pos], hi));                           \
	}
SIMD_KIT(256, __m256i, _mm256, "avx2", _mm256_broadcastsi128_si256)
SIMD_KIT(512, __m512i, _mm512, "avx512f,avx512bw", _mm512_broadcast_i32x4)

/* AVX2: 64 positions per round as two halves; the four shifted loads are classified against
 * the trigger shapes; rounds without a hit (nearly all of them) cost one branch. With dec, the
 * letters/digits mask also finds base64 runs, and '%' / '\\' mark escape candidates. */
__attribute__((target("avx2,bmi,popcnt"), always_inline))
static inline size_t avx2_find(const unsigned char *buf, size_t t, size_t hi, uint64_t *runlen,
			       struct blk_hits *h, const bool dec)
{
	const struct kit256 kt = kit256();
	const __m256i one = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
	uint64_t rl = *runlen;
	for (; t + 64 <= hi; t += 64) {
		const unsigned char *p = buf + t;
		/* the hardware prefetcher stops at 4 KiB pages: ask for the bytes ahead */
		_mm_prefetch((const char *)p + 1024, _MM_HINT_T0);
		__m256i m[2];
		uint32_t zm[2] = { 0, 0 }, em[2] = { 0, 0 };
		for (int g = 0; g < 2; g++) {
			const unsigned char *q = p + 32 * g;
			__m256i z = _mm256_loadu_si256((const __m256i *)(q - 3));
			__m256i a = _mm256_loadu_si256((const __m256i *)(q - 2));
			__m256i k = _mm256_loadu_si256((const __m256i *)(q - 1));
			__m256i u = _mm256_loadu_si256((const __m256i *)q);
			/* z is [0-9A-Za-z]: x in [lo, lo+n] <=> min(x - lo, n) == x - lo, unsigned */
			__m256i zd = _mm256_sub_epi8(z, kt.d0);
			__m256i zl = _mm256_sub_epi8(_mm256_or_si256(z, kt.lc), kt.la);
			__m256i zal = _mm256_or_si256(
				_mm256_cmpeq_epi8(_mm256_min_epu8(zd, kt.d9), zd),
				_mm256_cmpeq_epi8(_mm256_min_epu8(zl, kt.l25), zl));
			__m256i c = _mm256_and_si256(
				_mm256_and_si256(cls256(z, &kt, 0), cls256(a, &kt, 1)),
				_mm256_and_si256(cls256(k, &kt, 2), cls256(u, &kt, 3)));
			/* shape 0 (sk_) needs a word boundary before: drop its bit after a letter/digit */
			c = _mm256_andnot_si256(_mm256_and_si256(zal, one), c);
			m[g] = _mm256_xor_si256(_mm256_cmpeq_epi8(c, zero), _mm256_set1_epi8(-1));
			if (dec) {
				zm[g] = (uint32_t)_mm256_movemask_epi8(zal);
				em[g] = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
					_mm256_cmpeq_epi8(u, kt.pc), _mm256_cmpeq_epi8(u, kt.bs)));
			}
		}
		uint64_t bits = 0, cross = 0, starts = 0, esc = 0;
		if (!_mm256_testz_si256(_mm256_or_si256(m[0], m[1]), _mm256_or_si256(m[0], m[1])))
			bits = (uint32_t)_mm256_movemask_epi8(m[0]) |
			       ((uint64_t)(uint32_t)_mm256_movemask_epi8(m[1]) << 32);
		if (dec) {
			starts = runs24(zm[0] | (uint64_t)zm[1] << 32, &rl, &cross);
			esc = em[0] | (uint64_t)em[1] << 32;
		}
		if (bits | starts | cross | esc) {
			*h = (struct blk_hits){ bits, starts, cross, esc };
			break;
		}
	}
	*runlen = rl;
	return t;
}

/* The same filter 64 bytes at a time with AVX-512BW. */
__attribute__((target("avx512f,avx512bw,bmi,popcnt"), always_inline))
static inline size_t avx512_find(const unsigned char *buf, size_t t, size_t hi, uint64_t *runlen,
				 struct blk_hits *h, const bool dec)
{
	const struct kit512 kt = kit512();
	uint64_t rl = *runlen;
	for (; t + 64 <= hi; t += 64) {
		const unsigned char *q = buf + t;
		/* the hardware prefetcher stops at 4 KiB pages: ask for the bytes ahead */
		_mm_prefetch((const char *)q + 1024, _MM_HINT_T0);
		__m512i z = _mm512_loadu_si512((const void *)(q - 3));
		__m512i a = _mm512_loadu_si512((const void *)(q - 2));
		__m512i k = _mm512_loadu_si512((const void *)(q - 1));
		__m512i u = _mm512_loadu_si512((const void *)q);
		__mmask64 zal = _mm512_cmple_epu8_mask(_mm512_sub_epi8(z, kt.d0), kt.d9) |
				_mm512_cmple_epu8_mask(
					_mm512_sub_epi8(_mm512_or_si512(z, kt.lc), kt.la), kt.l25);
		__m512i c = _mm512_and_si512(
			_mm512_and_si512(cls512(z, &kt, 0), cls512(a, &kt, 1)),
			_mm512_and_si512(cls512(k, &kt, 2), cls512(u, &kt, 3)));
		/* shape 0 (sk_) needs a word boundary before; the others do not */
		uint64_t bits = _mm512_test_epi8_mask(c, _mm512_set1_epi8((char)0xfe)) |
				(_mm512_test_epi8_mask(c, _mm512_set1_epi8(1)) & ~zal);
		uint64_t cross = 0, starts = 0, esc = 0;
		if (dec) {
			starts = runs24(zal, &rl, &cross);
			esc = _mm512_cmpeq_epi8_mask(u, kt.pc) | _mm512_cmpeq_epi8_mask(u, kt.bs);
		}
		if (bits | starts | cross | esc) {
			*h = (struct blk_hits){ bits, starts, cross, esc };
			break;
		}
	}
	*runlen = rl;
	return t;
}

/* One noinline copy per instruction set and mode, so each leaf loop gets the registers to
 * itself and decoding costs nothing when it is off. */
#define FIND_VARIANTS(isa, tgt)                                                                   \
	__attribute__((target(tgt), noinline)) static size_t isa##_find_plain(                    \
		const unsigned char *buf, size_t t, size_t hi, uint64_t *runlen, struct blk_hits *h) \
	{                                                                                         \
		return isa##_find(buf, t, hi, runlen, h, false);                                  \
	}                                                                                         \
	__attribute__((target(tgt), noinline)) static size_t isa##_find_dec(                      \
		const unsigned char *buf, size_t t, size_t hi, uint64_t *runlen, struct blk_hits *h) \
	{                                                                                         \
		return isa##_find(buf, t, hi, runlen, h, true);                                   \
	}
FIND_VARIANTS(avx2, "avx2,bmi,popcnt")
FIND_VARIANTS(avx512, "avx512f,avx512bw,bmi,popcnt")

/* Drives a leaf search over [lo, hi) and handles each block with a hit out of line; the first
 * and last few positions go the scalar way (the vector loads look 3 bytes back). */
static int triggers_simd(const unsigned char *buf, size_t len, size_t lo, size_t hi, size_t from,
			 size_t to, unsigned flags, tok_fn fn, void *arg, int lvl)
{
	const bool dec = flags & SCAN_F_DECODE_MASK;
	const find_fn find = lvl == 2 ? (dec ? avx512_find_dec : avx512_find_plain) :
					(dec ? avx2_find_dec : avx2_find_plain);
	size_t t = lo < 3 ? 3 : lo;
	uint64_t runlen = 0;
	int rc;

	if (lo < t && (rc = triggers_scalar(buf, len, lo, t < hi ? t : hi, from, to, flags, fn, arg)))
		return rc;
	if (dec) {
		if (lo < t && (rc = dec_scalar(buf, len, t, lo, t < hi ? t : hi, from, to, flags, fn, arg)))
			return rc;
		runlen = alnum_run_before(buf, t - 3);
	}
	while (t + 64 <= hi) {
		struct blk_hits h;
		t = find(buf, t, hi, &runlen, &h);
		if (t + 64 > hi)
			break;
		for (uint64_t bits = h.bits; bits; bits &= bits - 1) {
			size_t at = t + (size_t)__builtin_ctzll(bits);
			if ((rc = try_trigger(buf, len, at, from, to, flags, fn, arg)))
				return rc;
		}
		if (dec && (h.starts | h.cross | h.esc) &&
		    (rc = dec_block(buf, len, t, h.starts, h.cross, h.esc, from, to, flags, fn, arg)))
			return rc;
		t += 64;
	}
	if ((rc = triggers_scalar(buf, len, t, hi, from, to, flags, fn, arg)))
		return rc;
	return dec ? dec_scalar(buf, len, t - 3, t, hi, from, to, flags, fn, arg) : 0;
}

__attribute__((target("avx512f,avx512bw,popcnt")))
static uint64_t newlines_avx512(const unsigned char *buf, size_t n)
{
	const __m512i nl = _mm512_set1_epi8('\n');
	uint64_t c = 0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64)
		c += (uint64_t)__builtin_popcountll(
			_mm512_cmpeq_epi8_mask(_mm512_loadu_si512((const void *)(buf + i)), nl));
	for (; i < n; i++)
		c += buf[i] == '\n';
	return c;
}

__attribute__((target("avx2,popcnt")))
static uint64_t newlines_avx2(const unsigned char *buf, size_t n)
{
	const __m256i nl = _mm256_set1_epi8('\n');
	uint64_t c = 0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(buf + i));
		__m256i b = _mm256_loadu_si256((const __m256i *)(buf + i + 32));
		c += (uint64_t)__builtin_popcount((uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)));
		c += (uint64_t)__builtin_popcount((uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)));
	}
	for (; i < n; i++)
		c += buf[i] == '\n';
	return c;
}

static int simd_cached = -1;

/* 0 scalar, 1 AVX2, 2 AVX-512BW; IPLOCK_SCAN_SIMD=0|1|2 caps it (tests, benchmarks). */
static int simd_level(void)
{
	int cached = simd_cached;
	if (cached < 0) {
		__builtin_cpu_init();
		int lvl = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f") ? 2 :
			  __builtin_cpu_supports("avx2") ? 1 : 0;
		const char *cap = getenv("IPLOCK_SCAN_SIMD");
		if (cap && cap[0] >= '0' && cap[0] <= '2' && cap[0] - '0' < lvl)
			lvl = cap[0] - '0';
		simd_cached = cached = lvl;
	}
	return cached;
}
#endif

int scan_simd_cap(int level)
{
#ifdef SCAN_X86
	simd_cached = -1;
	int best = simd_level();
	simd_cached = level >= 0 && level < best ? level : best;
	return simd_cached;
#else
	(void)level;
	return 0;
#endif
}

uint64_t scan_count_newlines(const unsigned char *buf, size_t n)
{
#ifdef SCAN_X86
	int lvl = simd_level();
	if (lvl == 2)
		return newlines_avx512(buf, n);
	if (lvl == 1)
		return newlines_avx2(buf, n);
#endif
	uint64_t c = 0;
	const unsigned char *p = buf, *end = buf + n;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

int scan_tokens(const unsigned char *buf, size_t len, size_t from, size_t to, unsigned flags,
		int (*fn)(void *arg, const struct scan_token *tok), void *arg)
{
	if (to > len)
		to = len;
	if (from >= to)
		return 0;
	/* a key starting at s has its trigger at s+2 (sk_, AQE) up to s+20 (secret-token:mercury_);
	 * a base64 run starting at p is seen at its 24th letter/digit */
	size_t lo = from + 2;
	size_t hi = to + 24 < len ? to + 24 : len;
	if (lo >= hi)
		return 0;
#ifdef SCAN_X86
	int lvl = simd_level();
	if (lvl)
		return triggers_simd(buf, len, lo, hi, from, to, flags, fn, arg, lvl);
#endif
	int rc = triggers_scalar(buf, len, lo, hi, from, to, flags, fn, arg);
	if (rc == 0 && (flags & SCAN_F_DECODE_MASK))
		rc = dec_scalar(buf, len, lo, from, hi, from, to, flags, fn, arg);
	return rc;
}

bool scan_looks_binary(const void *buf, size_t n)
{
	return memchr(buf, '\0', n < 8000 ? n : 8000) != NULL;
}

/* Line tracking over an input seen through a window: newlines before `pos` are counted. */
struct lines {
	uint64_t pos;           /* input offset up to which newlines are counted */
	uint64_t line;          /* 1 + newlines in [0, pos) */
	uint64_t line_start;    /* offset just after the last newline before pos */
};

/* Counts up to input offset `upto`; the window buf starts at input offset base. */
static void lines_advance(struct lines *l, const unsigned char *buf, uint64_t base, uint64_t upto)
{
	if (upto <= l->pos)
		return;
	const unsigned char *p = buf + (l->pos - base);
	size_t n = (size_t)(upto - l->pos);
	uint64_t c = scan_count_newlines(p, n);
	if (c) {
		l->line += c;
		const unsigned char *last = memrchr(p, '\n', n);
		l->line_start = base + (uint64_t)(last - buf) + 1;
	}
	l->pos = upto;
}

static const char *const allow_markers[] = { "iplock:allow", "gitleaks:allow", "trufflehog:ignore" };

/* An allow marker on the key's line, within SCAN_CONTEXT bytes of it and inside the window. */
static bool allowed_inline(const unsigned char *buf, size_t len, size_t kstart, size_t kend,
			   size_t line_start)
{
	size_t lo = kstart > SCAN_CONTEXT ? kstart - SCAN_CONTEXT : 0;
	if (lo < line_start)
		lo = line_start;
	size_t hi = kend + SCAN_CONTEXT < len ? kend + SCAN_CONTEXT : len;
	const unsigned char *nl = memchr(buf + kend, '\n', hi - kend);
	if (nl)
		hi = (size_t)(nl - buf);
	for (size_t m = 0; m < sizeof(allow_markers) / sizeof(allow_markers[0]); m++)
		if (memmem(buf + lo, hi - lo, allow_markers[m], strlen(allow_markers[m])))
			return true;
	return false;
}

struct hit_ctx {
	const unsigned char *buf;
	size_t len;
	uint64_t base;          /* input offset of buf[0] */
	struct lines lines;
	scan_hit_fn fn;
	void *arg;
};

static int on_token(void *arg, const struct scan_token *tok)
{
	struct hit_ctx *c = arg;
	uint64_t off = c->base + tok->start;
	struct scan_hit h;

	uint64_t line, lstart;
	if (off >= c->lines.pos) {
		lines_advance(&c->lines, c->buf, c->base, off);
		line = c->lines.line;
		lstart = c->lines.line_start;
	} else {
		/* a decoded key reports its encoded text, which may start before the last hit */
		size_t rel = (size_t)(off - c->base);
		line = c->lines.line - scan_count_newlines(c->buf + rel, (size_t)(c->lines.pos - off));
		const unsigned char *nl = rel ? memrchr(c->buf, '\n', rel) : NULL;
		lstart = nl ? c->base + (uint64_t)(nl - c->buf) + 1 : c->base;
	}
	size_t ls = lstart > c->base ? (size_t)(lstart - c->base) : 0;
	h.kind = tok->kind;
	h.offset = off;
	h.line = line;
	h.column = off - lstart + 1;
	h.key = (const char *)(tok->key ? tok->key : c->buf + tok->start);
	h.len = tok->key ? tok->key_len : tok->len;
	h.decoded = tok->decoded;
	h.allowed = allowed_inline(c->buf, c->len, tok->start, tok->start + tok->len, ls);
	return c->fn(c->arg, &h);
}

int scan_buffer(const void *buf, size_t len, unsigned flags, scan_hit_fn fn, void *arg)
{
	struct hit_ctx c = {
		.buf = buf, .len = len, .base = 0, .lines = { 0, 1, 0 }, .fn = fn, .arg = arg,
	};
	return scan_tokens(buf, len, 0, len, flags, on_token, &c);
}

int scan_stream(scan_read_fn rd, void *rarg, size_t chunk, unsigned flags, scan_hit_fn fn,
		void *arg)
{
	/* keep SCAN_CONTEXT bytes before the next start for markers and the boundary byte;
	 * report only keys that end, with their marker context, inside the window */
	const size_t keep = SCAN_CONTEXT + 1;
	const size_t reserve = SCAN_KEY_MAX + 2 + SCAN_CONTEXT + SCAN_DECODE_MAX + 32;
	struct hit_ctx c = { .lines = { 0, 1, 0 }, .fn = fn, .arg = arg };
	size_t have = 0, from = 0;
	bool eof = false;
	int rc = 0;

	if (chunk < SCAN_CHUNK_MIN)
		chunk = SCAN_CHUNK_MIN;
	unsigned char *buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	c.buf = buf;
	while (!eof) {
		while (have < chunk) {
			ssize_t r = rd(rarg, buf + have, chunk - have);
			if (r < 0) {
				rc = (int)r;
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			have += (size_t)r;
		}
		size_t stop = eof ? have : have - reserve;
		c.len = have;
		rc = scan_tokens(buf, have, from, stop, flags, on_token, &c);
		if (rc || eof)
			break;
		/* slide: count the lines we are about to drop, keep the tail */
		size_t drop = stop - keep;
		lines_advance(&c.lines, buf, c.base, c.base + drop);
		memmove(buf, buf + drop, have - drop);
		have -= drop;
		c.base += drop;
		from = keep;
	}
out:
	free(buf);
	return rc;
}
