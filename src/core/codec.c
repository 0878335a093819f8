/* codec.c: base64, hex and percent-encoding (codec.h). Owns the byte encodings every layer
 * shares; includes libc only. */
#include "core/codec.h"

#include <stdint.h>
#include <string.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

const char *codec_strerror(long err)
{
	switch (err) {
	case CODEC_E_SPACE: return "encoded value too long";
	case CODEC_E_LENGTH: return "bad base64 length";
	case CODEC_E_CHAR: return "character outside the alphabet";
	case CODEC_E_PAD: return "bad base64 padding";
	case CODEC_E_BITS: return "non-canonical base64 (unused bits set)";
	case CODEC_E_ESCAPE: return "bad percent escape";
	case CODEC_E_CONTROL: return "control character";
	default: return err >= 0 ? "ok" : "bad encoding";
	}
}

long codec_b64_encode(const void *in, size_t n, char *out, size_t cap, unsigned flags)
{
	const unsigned char *p = in;
	const char *a = flags & CODEC_B64_URL ? b64_url : b64_std;
	bool pad = !(flags & CODEC_B64_NOPAD);
	size_t rem = n % 3;
	size_t len = n / 3 * 4 + (rem ? (pad ? 4 : rem + 1) : 0);
	size_t o = 0;

	if (n > (SIZE_MAX - 8) / 4 * 3 || len >= cap)
		return CODEC_E_SPACE;
	for (size_t i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (rem) {
		uint32_t v = (uint32_t)p[n - rem] << 16 | (rem == 2 ? (uint32_t)p[n - 1] << 8 : 0);
		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		if (rem == 2)
			out[o++] = a[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

static int b64_value(unsigned char c, bool url)
{
	const char *a = url ? b64_url : b64_std;
	const char *at = memchr(a, c, 64);   /* the alphabet holds no NUL */

	return at ? (int)(at - a) : -1;
}

long codec_b64_decode(const char *in, size_t n, void *out, size_t cap, unsigned flags)
{
	unsigned char *o = out;
	bool url = flags & CODEC_B64_URL, lax = flags & CODEC_B64_LAX;
	size_t data = n, w = 0;
	uint32_t acc = 0;
	int bits = 0, last = 0;

	if (lax) {
		while (data && in[data - 1] == '=')
			data--;
	} else {
		if (n % 4 == 0) {
			if (n && in[n - 1] == '=')
				data = n - (in[n - 2] == '=' ? 2 : 1);
		} else if (!(flags & CODEC_B64_NOPAD)) {
			return CODEC_E_LENGTH;
		}
		if (data % 4 == 1)
			return CODEC_E_LENGTH;
	}
	size_t need = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
	if (need > cap)
		return CODEC_E_SPACE;
	for (size_t i = 0; i < data; i++) {
		int v = b64_value((unsigned char)in[i], url);
		if (v < 0)
			return in[i] == '=' ? CODEC_E_PAD : CODEC_E_CHAR;
		last = v;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[w++] = (unsigned char)(acc >> bits);
		}
	}
	/* the bits after the last full byte must be zero, so each value has one encoding */
	if (!lax && ((data % 4 == 2 && (last & 0x0f)) || (data % 4 == 3 && (last & 0x03))))
		return CODEC_E_BITS;
	return (long)w;
}

int codec_b64_decode_whole(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if (n == 0 || n / 4 * 3 > cap || n > INT32_MAX)
		return -1;
	long r = codec_b64_decode(in, n, out, cap, 0);
	return r < 0 ? -1 : (int)r;
}

int codec_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long codec_hex_encode(const void *in, size_t n, char *out, size_t cap, bool upper)
{
	const unsigned char *p = in;
	const char *d = upper ? hex_upper : hex_lower;

	if (cap == 0 || n > (cap - 1) / 2)
		return CODEC_E_SPACE;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
	return (long)(2 * n);
}

long codec_hex_decode(const char *in, size_t n, void *out, size_t cap)
{
	unsigned char *o = out;

	if (n % 2)
		return CODEC_E_LENGTH;
	if (n / 2 > cap)
		return CODEC_E_SPACE;
	for (size_t i = 0; i < n; i += 2) {
		int hi = codec_hex_value((unsigned char)in[i]), lo = codec_hex_value((unsigned char)in[i + 1]);
		if (hi < 0 || lo < 0)
			return CODEC_E_CHAR;
		o[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

long codec_pct_decode(const char *in, size_t n, char *out, size_t cap, unsigned flags)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];
		if (c == '%') {
			int hi = i + 2 < n ? codec_hex_value((unsigned char)in[i + 1]) : -1;
			int lo = i + 2 < n ? codec_hex_value((unsigned char)in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return CODEC_E_ESCAPE;
			c = hi * 16 + lo;
			i += 2;
		}
		if ((flags & CODEC_PCT_NO_CTL) && (c < 0x20 || c == 0x7f))
			return CODEC_E_CONTROL;
		if (o + 1 >= cap)
			return CODEC_E_SPACE;
		out[o++] = (char)c;
	}
	if (cap == 0)
		return CODEC_E_SPACE;
	out[o] = '\0';
	return (long)o;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

long codec_pct_encode(const char *in, size_t n, const char *keep, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (unreserved(c) || (c && keep && strchr(keep, c))) {
			if (o + 1 >= cap)
				return CODEC_E_SPACE;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return CODEC_E_SPACE;
			out[o++] = '%';
			out[o++] = hex_upper[c >> 4];
			out[o++] = hex_upper[c & 15];
		}
	}
	if (cap == 0)
		return CODEC_E_SPACE;
	out[o] = '\0';
	return (long)o;
}
