/* scan.h: the leak-scanner engine: finds Stripe-format keys in bytes.
 *
 * A key is a known prefix followed by 10..247 letters/digits (whsec_: 32..247), with GitHub's
 * boundaries: the byte before is start of input or not [0-9A-Za-z], the byte after is end of
 * input or not [0-9A-Za-z] (so `task_live_...` is no key and `sk_live_<body>Extra` is one longer
 * token). Placeholders (one repeated character, a short repeated pattern, runs of x, YOUR...,
 * EXAMPLE..., ...) are not keys.
 *
 * The engine is a single pass: a SIMD loop (AVX2 when the CPU has it) flags the rare spots where
 * '_' follows "sk"/"rk"/"pk"/"ec", and only those are checked byte by byte. Line numbers are
 * counted lazily, only up to each key found. */
#ifndef IPLOCK_SCAN_H
#define IPLOCK_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SCAN_BODY_MIN   10
#define SCAN_BODY_MAX   247
#define SCAN_WHSEC_MIN  32
#define SCAN_PREFIX_MAX 12                      /* "sk_org_live_" */
#define SCAN_KEY_MAX    1024  /* longest token of any kind (Unit's PASETO tokens are the longest) */
#define SCAN_CONTEXT    4096  /* an allow marker counts within this many bytes of its key, same line */
/* Encoded secrets (base64, percent, JSON/shell escapes) are decoded from a run of at most
 * SCAN_DECODE_MAX bytes that starts at most SCAN_DECODE_BACK bytes before its trigger. */
#define SCAN_DECODE_MAX   (64 * 1024)
#define SCAN_DECODE_BACK  4096
#define SCAN_DECODE_DEPTH_MAX 4
#define SCAN_DECODE_DEPTH_DEFAULT 2
#define SCAN_CHUNK_MIN  (4 * (SCAN_CONTEXT + SCAN_KEY_MAX + 2 + SCAN_DECODE_MAX))
#define SCAN_CHUNK_DEFAULT (1u << 20)

enum scan_kind {
	SCAN_SK_LIVE = 0,       /* sk_live_: secret key, moves money */
	SCAN_SK_TEST,           /* sk_test_: sandbox secret key */
	SCAN_RK_LIVE,           /* rk_live_: restricted key */
	SCAN_RK_TEST,           /* rk_test_: sandbox restricted key */
	SCAN_SK_ORG,            /* sk_org_ / sk_org_live_: organization key */
	SCAN_SK_ORG_TEST,       /* sk_org_test_: sandbox organization key */
	SCAN_WHSEC,             /* whsec_: webhook signing secret */
	SCAN_PK_LIVE,           /* pk_live_: publishable, reported only when asked */
	SCAN_PK_TEST,           /* pk_test_: publishable sandbox key, only when asked */
	/* other providers: formats and sources in docs/scan.md and check_other() in scan.c */
	SCAN_AWS_KEY_ID,        /* AKIA/ASIA/ABIA/ACCA + 16: AWS access key id */
	SCAN_AWS_SECRET,        /* the 40-character secret next to an access key id */
	SCAN_GITHUB_PAT,        /* ghp_: GitHub personal access token (classic) */
	SCAN_GITHUB_FINE,       /* github_pat_: fine-grained personal access token */
	SCAN_GITHUB_OAUTH,      /* gho_: OAuth access token */
	SCAN_GITHUB_APP,        /* ghu_/ghs_: GitHub App user-to-server / server-to-server token */
	SCAN_GITHUB_REFRESH,    /* ghr_: GitHub App refresh token */
	SCAN_MERCURY,           /* secret-token:mercury_production_...: Mercury API token */
	SCAN_MERCURY_SANDBOX,   /* secret-token:mercury_sandbox_... */
	SCAN_UNIT,              /* v2.public.eyJyb2xlIjoi...: Unit org/customer API token */
	SCAN_ADYEN,             /* AQE...: Adyen API key */
	SCAN_KIND_COUNT,
};

enum scan_severity {
	SCAN_SEV_CRITICAL = 0,  /* live secret, restricted or organization key */
	SCAN_SEV_HIGH,          /* webhook signing secret */
	SCAN_SEV_LOW,           /* test-mode secret */
	SCAN_SEV_INFO,          /* publishable key: safe to expose */
};

/* flags */
#define SCAN_F_PUBLISHABLE 0x1u /* also report pk_live_/pk_test_ */
#define SCAN_F_DECODE(depth) ((unsigned)(depth) << 8) /* decode encoded runs, nested depth deep */
#define SCAN_F_DECODE_MASK 0xf00u

const char *scan_kind_name(enum scan_kind k);          /* "sk_live", ... */
const char *scan_kind_title(enum scan_kind k);         /* "Stripe live secret key", ... */
enum scan_severity scan_kind_severity(enum scan_kind k);
const char *scan_severity_name(enum scan_severity s);  /* "critical", ... */
bool scan_kind_parse(const char *s, enum scan_kind *out);

/* A key located in one buffer: start offset and length within it. A key found by decoding has
 * start/len of the encoded text in buf and its decoded bytes in key/key_len (else key is NULL). */
struct scan_token {
	enum scan_kind kind;
	size_t start;
	size_t len;
	const unsigned char *key;
	size_t key_len;
	unsigned decoded;       /* layers of encoding removed (0 = plain) */
};

/* Calls fn for every key that starts in [from, to) of buf[0..len), in order. Keys must be
 * decidable from buf: pass to <= len - SCAN_KEY_MAX - 1 unless buf ends where the input ends.
 * fn returns 0 to go on or a negative errno to stop; scan_tokens returns that (or 0). */
int scan_tokens(const unsigned char *buf, size_t len, size_t from, size_t to, unsigned flags,
		int (*fn)(void *arg, const struct scan_token *tok), void *arg);

/* Whether a key body (the part after the prefix) is a placeholder, not a secret. */
bool scan_is_placeholder(const char *body, size_t n);

/* A key with its place in the input. */
struct scan_hit {
	enum scan_kind kind;
	uint64_t offset;        /* byte offset from the start of the input */
	uint64_t line;          /* 1-based */
	uint64_t column;        /* 1-based, counted in bytes */
	const char *key;        /* the key's bytes (not NUL-terminated), valid during the call */
	size_t len;
	bool allowed;           /* iplock:allow, gitleaks:allow or trufflehog:ignore on its line */
	unsigned decoded;       /* layers of encoding removed; offset/line/column are the encoded text's */
};

typedef int (*scan_hit_fn)(void *arg, const struct scan_hit *hit);

/* Scans a whole buffer (for example a memory-mapped file). Returns 0 or fn's negative value. */
int scan_buffer(const void *buf, size_t len, unsigned flags, scan_hit_fn fn, void *arg);

/* Reader for scan_stream: up to n bytes into buf; 0 at end of input, -errno on error. */
typedef ssize_t (*scan_read_fn)(void *arg, void *buf, size_t n);

/* Scans a stream in windows of `chunk` bytes (>= SCAN_CHUNK_MIN) that overlap by more than the
 * longest key plus the allow-marker context, so results equal scan_buffer's on the same bytes.
 * Returns 0, the reader's -errno, -ENOMEM, or fn's negative value. */
int scan_stream(scan_read_fn rd, void *rarg, size_t chunk, unsigned flags, scan_hit_fn fn,
		void *arg);

/* Caps the SIMD level used (0 scalar, 1 AVX2, 2 AVX-512BW; -1 = best the CPU has) and returns
 * the level now in use. For tests and benchmarks; not thread-safe. */
int scan_simd_cap(int level);

/* Newlines in buf[0..n) (SIMD when available). */
uint64_t scan_count_newlines(const unsigned char *buf, size_t n);

/* Whether the first bytes look binary (a NUL in the first 8000, as git decides). */
bool scan_looks_binary(const void *buf, size_t n);

#endif
