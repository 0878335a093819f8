/* decode.c: base64, percent and backslash-escape decoders for encoded-secret scanning. */
#include "scan/decode.h"

#include <string.h>

/* 0..63 for both alphabets, 64 for anything else */
static unsigned char b64v[256];

__attribute__((constructor)) static void b64v_init(void)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	memset(b64v, 64, sizeof(b64v));
	for (unsigned i = 0; i < 64; i++)
		b64v[(unsigned char)std[i]] = (unsigned char)i;
	b64v['-'] = 62; /* base64url */
	b64v['_'] = 63;
}

size_t scan_b64_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0, i = 0;
	while (i + 4 <= n) {
		unsigned a = b64v[in[i]], b = b64v[in[i + 1]], c = b64v[in[i + 2]], d = b64v[in[i + 3]];
		if ((a | b | c | d) & 64)
			break;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)(b << 4 | c >> 2);
		out[o++] = (unsigned char)(c << 6 | d);
		i += 4;
	}
	/* a last group of 2 or 3 characters (unpadded, or cut by '=' or another byte) */
	unsigned v[3];
	size_t k = 0;
	while (k < 3 && i + k < n && !(b64v[in[i + k]] & 64)) {
		v[k] = b64v[in[i + k]];
		k++;
	}
	if (k >= 2)
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	if (k == 3)
		out[o++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
	return o;
}

static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t scan_pct_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (in[i] == '%' && i + 2 < n && (h = hexv(in[i + 1])) >= 0 &&
		    (l = hexv(in[i + 2])) >= 0) {
			out[o++] = (unsigned char)(h << 4 | l);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

size_t scan_esc_one(const unsigned char *in, size_t n, unsigned char *c)
{
	if (n < 2 || in[0] != '\\')
		return 0;
	unsigned char e = in[1];
	if (e == 'u') {
		int v = 0;
		if (n < 6)
			return 0;
		for (int k = 2; k < 6; k++) {
			int h = hexv(in[k]);
			if (h < 0)
				return 0;
			v = v << 4 | h;
		}
		*c = v < 0x80 ? (unsigned char)v : 0x80;
		return 6;
	}
	if (e == 'x') {
		int h, l;
		if (n < 4 || (h = hexv(in[2])) < 0 || (l = hexv(in[3])) < 0)
			return 0;
		*c = (unsigned char)(h << 4 | l);
		return 4;
	}
	if (e >= '0' && e <= '7') {
		unsigned v = 0;
		size_t k = 1;
		while (k < 4 && k < n && in[k] >= '0' && in[k] <= '7')
			v = v * 8 + (in[k++] - '0');
		*c = (unsigned char)(v & 0xff);
		return k;
	}
	switch (e) {
	case 'n': *c = '\n'; return 2;
	case 't': *c = '\t'; return 2;
	case 'r': *c = '\r'; return 2;
	case 'b': *c = '\b'; return 2;
	case 'f': *c = '\f'; return 2;
	case 'v': *c = '\v'; return 2;
	default:
		break;
	}
	if (e < 0x21 || e > 0x7e)
		return 0;
	*c = e; /* shell: \_ is _, \" is " */
	return 2;
}

size_t scan_esc_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c;
		size_t k = in[i] == '\\' ? scan_esc_one(in + i, n - i, &c) : 0;
		if (k) {
			out[o++] = c;
			i += k;
		} else {
			out[o++] = in[i++];
		}
	}
	return o;
}
