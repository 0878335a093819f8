/* codec.h: byte encodings for every layer: base64 (RFC 4648 section 4 standard and section 5
 * URL-safe alphabets), hex, and percent-encoding (RFC 3986 2.1). Owns only pure functions
 * over caller buffers: no allocation, no I/O, no OpenSSL. May include: libc only.
 *
 * Every function returns a length (>= 0) or a negative enum codec_err; codec_strerror() gives
 * a one-line reason. Outputs never pass cap; text outputs are NUL-terminated (cap counts it). */
#ifndef IPLOCK_CODEC_H
#define IPLOCK_CODEC_H

#include <stdbool.h>
#include <stddef.h>

enum codec_err {
	CODEC_E_SPACE = -1,    /* the output does not fit in cap */
	CODEC_E_LENGTH = -2,   /* base64: impossible length (or missing padding) */
	CODEC_E_CHAR = -3,     /* a character outside the alphabet (hex: not a hex digit) */
	CODEC_E_PAD = -4,      /* base64: '=' where it cannot stand */
	CODEC_E_BITS = -5,     /* base64: the unused bits of the last character are not zero */
	CODEC_E_ESCAPE = -6,   /* percent: '%' not followed by two hex digits */
	CODEC_E_CONTROL = -7,  /* percent with CODEC_PCT_NO_CTL: a decoded control byte */
};

/* One line for a negative codec result ("bad base64 padding"); "ok" for >= 0. */
const char *codec_strerror(long err);

/* base64 flags */
#define CODEC_B64_URL   0x1u  /* URL-safe alphabet: '-' and '_' stand for '+' and '/' */
#define CODEC_B64_NOPAD 0x2u  /* encode without '='; decode takes the padded or bare form */
#define CODEC_B64_LAX   0x4u  /* decode only, for Basic credentials as the gate has always
                               * read them: any run of trailing '=' dropped, length and the
                               * unused bits of the last character not checked */

/* Characters of the padded encoding of n bytes (NUL not counted). */
#define CODEC_B64_ENCLEN(n) (4 * (((n) + 2) / 3))

/* Encodes n bytes; out gets the text and a NUL. Returns its length or CODEC_E_SPACE. */
long codec_b64_encode(const void *in, size_t n, char *out, size_t cap, unsigned flags);

/* Decodes n characters (no whitespace, no NUL allowed). Without CODEC_B64_LAX the input must
 * be canonical: the only text that encodes its bytes, so one value has one spelling.
 * Returns the byte count (out is not NUL-terminated) or a negative codec_err. */
long codec_b64_decode(const char *in, size_t n, void *out, size_t cap, unsigned flags);

/* Strict (canonical, padded, standard alphabet) and non-empty, and all of n's whole groups
 * must fit in cap, as stored hashes and Basic credentials always had to: the length or -1. */
int codec_b64_decode_whole(const char *in, size_t n, unsigned char *out, size_t cap);

/* 0-15 for a hex digit of either case, else -1. */
int codec_hex_value(int c);

/* n bytes as 2n hex digits (lowercase unless upper) and a NUL. */
long codec_hex_encode(const void *in, size_t n, char *out, size_t cap, bool upper);

/* An even number of hex digits (either case) to bytes. */
long codec_hex_decode(const char *in, size_t n, void *out, size_t cap);

/* percent-decoding flags */
#define CODEC_PCT_NO_CTL 0x1u /* refuse a decoded byte below 0x20 or 0x7f (NUL, CR, LF...):
                               * for text that goes into a header */

/* Decodes %XX escapes of n characters into out with a NUL ('+' stays '+'). The result is never
 * longer than the input. Errors are reported for the first byte that has one, in the order
 * escape, control, space. */
long codec_pct_decode(const char *in, size_t n, char *out, size_t cap, unsigned flags);

/* Percent-encodes every byte but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~) and
 * those in keep (may be NULL), with uppercase hex digits; a NUL after. */
long codec_pct_encode(const char *in, size_t n, const char *keep, char *out, size_t cap);

#endif
