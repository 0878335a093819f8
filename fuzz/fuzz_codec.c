/* fuzz_codec.c: core/codec over arbitrary bytes. Properties: decode(encode(x)) == x for every
 * x in every base64 flavour, hex and percent-encoding; a strict base64 decode that succeeds
 * re-encodes to the very input (one spelling per value); hex decoding that succeeds re-encodes
 * to the input up to case; percent-decoding never grows and, with CODEC_PCT_NO_CTL, never
 * yields a control byte; invalid input fails with a codec_err and writes within cap. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

#define FUZZ_MAX 4096

static void b64_props(const uint8_t *data, size_t size, unsigned flags)
{
	static char enc[CODEC_B64_ENCLEN(FUZZ_MAX) + 1], enc2[CODEC_B64_ENCLEN(FUZZ_MAX) + 1];
	static uint8_t dec[FUZZ_MAX + 8];

	/* round trip */
	long e = codec_b64_encode(data, size, enc, sizeof(enc), flags);
	if (e < 0 || (size_t)e != strlen(enc))
		abort();
	if (!(flags & CODEC_B64_NOPAD) && (size_t)e != CODEC_B64_ENCLEN(size))
		abort();
	long d = codec_b64_decode(enc, (size_t)e, dec, size, flags);
	if (d != (long)size || memcmp(dec, data, size))
		abort();
	if (codec_b64_decode(enc, (size_t)e, dec, size, flags | CODEC_B64_LAX) != (long)size)
		abort();

	/* the input as text: a strict success is canonical, so it re-encodes to itself */
	const char *in = (const char *)data;
	d = codec_b64_decode(in, size, dec, sizeof(dec), flags);
	if (d >= 0) {
		if ((size_t)d > size * 3 / 4)
			abort();
		long e2 = codec_b64_encode(dec, (size_t)d, enc2, sizeof(enc2), flags);
		if (e2 < 0)
			abort();
		/* NOPAD decoding also takes the padded form: compare without the '=' */
		size_t bare = size;
		while ((flags & CODEC_B64_NOPAD) && bare && in[bare - 1] == '=')
			bare--;
		if ((size_t)e2 != bare || memcmp(enc2, in, bare))
			abort();
	} else if (d < CODEC_E_BITS || !*codec_strerror(d)) {
		abort();
	}
	/* capacity is a hard limit */
	size_t cap = size % 7;
	dec[cap] = 0xa5;
	d = codec_b64_decode(in, size, dec, cap, flags | CODEC_B64_LAX);
	if (dec[cap] != 0xa5 || d > (long)cap)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char enc[3 * FUZZ_MAX + 1], back[3 * FUZZ_MAX + 1];
	static uint8_t raw[FUZZ_MAX];

	if (size > FUZZ_MAX)
		return 0;
	b64_props(data, size, 0);
	b64_props(data, size, CODEC_B64_URL);
	b64_props(data, size, CODEC_B64_NOPAD);
	b64_props(data, size, CODEC_B64_URL | CODEC_B64_NOPAD);

	/* hex */
	bool upper = size && data[0] & 1;
	long e = codec_hex_encode(data, size, enc, sizeof(enc), upper);
	if (e != (long)(2 * size) || codec_hex_decode(enc, (size_t)e, raw, size) != (long)size ||
	    memcmp(raw, data, size))
		abort();
	long d = codec_hex_decode((const char *)data, size, raw, sizeof(raw));
	if (d >= 0) {
		if (codec_hex_encode(raw, (size_t)d, enc, sizeof(enc), false) != (long)size)
			abort();
		for (size_t i = 0; i < size; i++)
			if (enc[i] != tolower(data[i]))
				abort();
	}

	/* percent: round trip with and without kept characters, never growing, no controls */
	const char *keep = upper ? "/:@" : NULL;
	e = codec_pct_encode((const char *)data, size, keep, enc, sizeof(enc));
	if (e < 0 || (size_t)e < size || (size_t)e > 3 * size)
		abort();
	d = codec_pct_decode(enc, (size_t)e, back, sizeof(back), 0);
	if (d != (long)size || memcmp(back, data, size))
		abort();
	for (unsigned flags = 0; flags < 2; flags++) {
		d = codec_pct_decode((const char *)data, size, back, size + 1, flags);
		if (d >= 0) {
			if ((size_t)d > size || back[d] != '\0')
				abort();
			for (long i = 0; flags && i < d; i++)
				if ((unsigned char)back[i] < 0x20 || back[i] == 0x7f)
					abort();
		} else if (d != CODEC_E_ESCAPE && d != CODEC_E_CONTROL) {
			abort();   /* size + 1 always holds the result: never CODEC_E_SPACE */
		}
	}
	return 0;
}
