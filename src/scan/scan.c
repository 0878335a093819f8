/* scan.c: the scanner engine: candidate search (AVX2 or memchr), key checks, line tracking,
 * whole-buffer and windowed-stream drivers. */
#include "scan/scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Checks a candidate whose '_' trigger is at t (buf[t-1] is 'k' or 'c'); fills tok. */
static bool check_candidate(const unsigned char *buf, size_t len, size_t t, unsigned flags,
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

/* Examines trigger t; returns fn's value when a key starting in [from, to) is there. */
static inline int try_trigger(const unsigned char *buf, size_t len, size_t t, size_t from,
			      size_t to, unsigned flags,
			      int (*fn)(void *, const struct scan_token *), void *arg)
{
	struct scan_token tok;

	if (!check_candidate(buf, len, t, flags, &tok))
		return 0;
	if (tok.start < from || tok.start >= to)
		return 0;
	return fn(arg, &tok);
}

/* Is t a trigger: '_' after "sk"/"rk"/"pk" or after "ec" (whsec_)? */
static inline bool is_trigger(const unsigned char *buf, size_t t)
{
	unsigned char a = buf[t - 2], k = buf[t - 1];
	return buf[t] == '_' &&
	       ((k == 'k' && (a == 's' || a == 'r' || a == 'p')) || (k == 'c' && a == 'e'));
}

static int triggers_scalar(const unsigned char *buf, size_t len, size_t lo, size_t hi,
			   size_t from, size_t to, unsigned flags,
			   int (*fn)(void *, const struct scan_token *), void *arg)
{
	size_t t = lo;
	while (t < hi) {
		const unsigned char *u = memchr(buf + t, '_', hi - t);
		if (!u)
			break;
		t = (size_t)(u - buf);
		if (is_trigger(buf, t)) {
			int rc = try_trigger(buf, len, t, from, to, flags, fn, arg);
			if (rc)
				return rc;
		}
		t++;
	}
	return 0;
}

#ifdef SCAN_X86
/* 64 positions per round: four shifted loads find "?k_" after a word boundary and "sec_"
 * with a handful of compares; rounds without a hit (nearly all of them) cost one branch. */
__attribute__((target("avx2,bmi,popcnt")))
static int triggers_avx2(const unsigned char *buf, size_t len, size_t lo, size_t hi,
			 size_t from, size_t to, unsigned flags,
			 int (*fn)(void *, const struct scan_token *), void *arg)
{
	const __m256i us = _mm256_set1_epi8('_'), kk = _mm256_set1_epi8('k'),
		      cc = _mm256_set1_epi8('c'), ss = _mm256_set1_epi8('s'),
		      rr = _mm256_set1_epi8('r'), pp = _mm256_set1_epi8('p'),
		      ee = _mm256_set1_epi8('e'), d0 = _mm256_set1_epi8('0'),
		      d9 = _mm256_set1_epi8(9), lc = _mm256_set1_epi8(0x20),
		      la = _mm256_set1_epi8('a'), l25 = _mm256_set1_epi8(25);
	size_t t = lo < 3 ? 3 : lo;
	int rc;

	/* the vector loop looks 3 bytes back: the first positions go the scalar way */
	if (lo < t && (rc = triggers_scalar(buf, len, lo, t < hi ? t : hi, from, to, flags, fn, arg)))
		return rc;
	while (t + 64 <= hi) {
		const unsigned char *p = buf + t;
		__m256i m[2];
		for (int h = 0; h < 2; h++) {
			const unsigned char *q = p + 32 * h;
			__m256i z = _mm256_loadu_si256((const __m256i *)(q - 3));
			__m256i a = _mm256_loadu_si256((const __m256i *)(q - 2));
			__m256i k = _mm256_loadu_si256((const __m256i *)(q - 1));
			__m256i u = _mm256_loadu_si256((const __m256i *)q);
			/* z is [0-9A-Za-z]: x in [lo, lo+n] <=> min(x - lo, n) == x - lo, unsigned */
			__m256i zd = _mm256_sub_epi8(z, d0);
			__m256i zl = _mm256_sub_epi8(_mm256_or_si256(z, lc), la);
			__m256i zal = _mm256_or_si256(
				_mm256_cmpeq_epi8(_mm256_min_epu8(zd, d9), zd),
				_mm256_cmpeq_epi8(_mm256_min_epu8(zl, l25), zl));
			__m256i srp = _mm256_or_si256(
				_mm256_or_si256(_mm256_cmpeq_epi8(a, ss), _mm256_cmpeq_epi8(a, rr)),
				_mm256_cmpeq_epi8(a, pp));
			/* "?k_" after a boundary, or "sec_" (whsec_ is confirmed byte by byte) */
			__m256i ks = _mm256_andnot_si256(zal, _mm256_and_si256(_mm256_cmpeq_epi8(k, kk), srp));
			__m256i ec = _mm256_and_si256(_mm256_and_si256(_mm256_cmpeq_epi8(k, cc),
								       _mm256_cmpeq_epi8(a, ee)),
						      _mm256_cmpeq_epi8(z, ss));
			m[h] = _mm256_and_si256(_mm256_cmpeq_epi8(u, us), _mm256_or_si256(ks, ec));
		}
		if (!_mm256_testz_si256(_mm256_or_si256(m[0], m[1]), _mm256_or_si256(m[0], m[1]))) {
			uint64_t bits = (uint32_t)_mm256_movemask_epi8(m[0]) |
					((uint64_t)(uint32_t)_mm256_movemask_epi8(m[1]) << 32);
			while (bits) {
				size_t at = t + (size_t)__builtin_ctzll(bits);
				if ((rc = try_trigger(buf, len, at, from, to, flags, fn, arg)))
					return rc;
				bits &= bits - 1;
			}
		}
		t += 64;
	}
	return triggers_scalar(buf, len, t, hi, from, to, flags, fn, arg);
}

/* The same filter 64 bytes at a time with AVX-512BW compare masks: a third of the work. */
__attribute__((target("avx512f,avx512bw,bmi,popcnt")))
static int triggers_avx512(const unsigned char *buf, size_t len, size_t lo, size_t hi,
			   size_t from, size_t to, unsigned flags,
			   int (*fn)(void *, const struct scan_token *), void *arg)
{
	const __m512i us = _mm512_set1_epi8('_'), kk = _mm512_set1_epi8('k'),
		      cc = _mm512_set1_epi8('c'), ss = _mm512_set1_epi8('s'),
		      rr = _mm512_set1_epi8('r'), pp = _mm512_set1_epi8('p'),
		      ee = _mm512_set1_epi8('e'), d0 = _mm512_set1_epi8('0'),
		      d9 = _mm512_set1_epi8(9), lc = _mm512_set1_epi8(0x20),
		      la = _mm512_set1_epi8('a'), l25 = _mm512_set1_epi8(25);
	size_t t = lo < 3 ? 3 : lo;
	int rc;

	if (lo < t && (rc = triggers_scalar(buf, len, lo, t < hi ? t : hi, from, to, flags, fn, arg)))
		return rc;
	while (t + 64 <= hi) {
		const unsigned char *q = buf + t;
		__m512i z = _mm512_loadu_si512((const void *)(q - 3));
		__m512i a = _mm512_loadu_si512((const void *)(q - 2));
		__m512i k = _mm512_loadu_si512((const void *)(q - 1));
		__m512i u = _mm512_loadu_si512((const void *)q);
		__mmask64 zal = _mm512_cmple_epu8_mask(_mm512_sub_epi8(z, d0), d9) |
				_mm512_cmple_epu8_mask(_mm512_sub_epi8(_mm512_or_si512(z, lc), la), l25);
		__mmask64 srp = _mm512_cmpeq_epi8_mask(a, ss) | _mm512_cmpeq_epi8_mask(a, rr) |
				_mm512_cmpeq_epi8_mask(a, pp);
		__mmask64 ks = _mm512_cmpeq_epi8_mask(k, kk) & srp & ~zal;
		__mmask64 ec = _mm512_cmpeq_epi8_mask(k, cc) & _mm512_cmpeq_epi8_mask(a, ee) &
			       _mm512_cmpeq_epi8_mask(z, ss);
		uint64_t bits = _mm512_cmpeq_epi8_mask(u, us) & (ks | ec);
		while (bits) {
			size_t at = t + (size_t)__builtin_ctzll(bits);
			if ((rc = try_trigger(buf, len, at, from, to, flags, fn, arg)))
				return rc;
			bits &= bits - 1;
		}
		t += 64;
	}
	return triggers_scalar(buf, len, t, hi, from, to, flags, fn, arg);
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
	/* a key starting at s has its trigger at s+2 (sk_) or s+5 (whsec_) */
	size_t lo = from + 2;
	size_t hi = to + 5 < len ? to + 5 : len;
	if (lo >= hi)
		return 0;
#ifdef SCAN_X86
	int lvl = simd_level();
	if (lvl == 2)
		return triggers_avx512(buf, len, lo, hi, from, to, flags, fn, arg);
	if (lvl == 1)
		return triggers_avx2(buf, len, lo, hi, from, to, flags, fn, arg);
#endif
	return triggers_scalar(buf, len, lo, hi, from, to, flags, fn, arg);
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

	lines_advance(&c->lines, c->buf, c->base, off);
	size_t ls = c->lines.line_start > c->base ? (size_t)(c->lines.line_start - c->base) : 0;
	h.kind = tok->kind;
	h.offset = off;
	h.line = c->lines.line;
	h.column = off - c->lines.line_start + 1;
	h.key = (const char *)c->buf + tok->start;
	h.len = tok->len;
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
	const size_t reserve = SCAN_KEY_MAX + 2 + SCAN_CONTEXT;
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
