/* fuzz_scan_decode.c: encoded secrets. Property: a key made from the input, written base64
 * (standard or URL-safe, padded or not), base64 twice, percent-encoded or JSON/shell-escaped on
 * line N of a document, is found by a scan with decoding, as the same key, at line N and the
 * column where its encoded text starts. The decoders also run over the raw input into buffers
 * of exactly the input's size (ASan catches any byte read or written out of bounds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/decode.h"
#include "scan/scan.h"

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static size_t b64(const unsigned char *in, size_t n, char *out, bool url, bool pad)
{
	const char *t = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" :
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = t[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (i + 2 < n)
			out[o++] = t[v & 63];
		else if (pad)
			out[o++] = '=';
	}
	return o;
}

struct want {
	const char *key;
	size_t len;
	uint64_t line, column;
	int found;
};

static int on_hit(void *arg, const struct scan_hit *h)
{
	struct want *w = arg;
	if (h->len == w->len && !memcmp(h->key, w->key, w->len) && h->line == w->line &&
	    h->column == w->column)
		w->found++;
	return 0;
}

static int count(void *arg, const struct scan_hit *h)
{
	(void)h;
	(*(int *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the decoders over raw bytes: never past in[size-1] nor out[size-1] */
	unsigned char *out = malloc(size ? size : 1);
	if (!out)
		return 0;
	if (size) {
		scan_b64_decode(data, size, out);
		scan_pct_decode(data, size, out);
		scan_esc_decode(data, size, out);
	}
	free(out);
	int junk = 0;
	scan_buffer(data, size, SCAN_F_DECODE(SCAN_DECODE_DEPTH_MAX), count, &junk);

	if (size < 12)
		return 0;
	unsigned mode = data[0] % 7, lines = data[1] % 8;
	size_t blen = 10 + (size - 2) % 90;
	char key[160];
	size_t klen = 0;
	memcpy(key, "sk_", 3);
	memcpy(key + 3, "live_", 5);
	klen = 8;
	for (size_t i = 0; i < blen; i++)
		key[klen++] = ALNUM[data[2 + i % (size - 2)] % 62];
	/* a placeholder-looking body is no key in plain text either: nothing to find */
	int plain = 0;
	scan_buffer(key, klen, 0, count, &plain);
	if (plain != 1)
		return 0;

	char enc[2048], mid[512], doc[4096];
	size_t e = 0;
	switch (mode) {
	case 0: e = b64((unsigned char *)key, klen, enc, false, true); break;
	case 1: e = b64((unsigned char *)key, klen, enc, true, false); break;
	case 2: {
		/* "Basic" auth: key + ':' */
		key[klen] = ':';
		e = b64((unsigned char *)key, klen + 1, enc, false, true);
		break;
	}
	case 3: {
		size_t m = b64((unsigned char *)key, klen, mid, false, true);
		e = b64((unsigned char *)mid, m, enc, false, true);
		break;
	}
	case 4:
		for (size_t i = 0; i < klen; i++)
			e += key[i] == '_' ? (size_t)snprintf(enc + e, 4, "%%5F") : (size_t)(enc[e] = key[i], 1);
		break;
	case 5:
		for (size_t i = 0; i < klen; i++)
			e += (size_t)snprintf(enc + e, 7, "\\u%04x", (unsigned char)key[i]);
		break;
	default:
		for (size_t i = 0; i < klen; i++)
			e += key[i] == '_' ? (size_t)snprintf(enc + e, 5, "\\x5f") : (size_t)(enc[e] = key[i], 1);
		break;
	}
	size_t d = 0;
	for (unsigned l = 0; l < lines; l++)
		d += (size_t)snprintf(doc + d, sizeof(doc) - d, "x%u: 1\n", l);
	d += (size_t)snprintf(doc + d, sizeof(doc) - d, "K: \"");
	memcpy(doc + d, enc, e);
	d += e;
	d += (size_t)snprintf(doc + d, sizeof(doc) - d, "\"\n");
	struct want w = { key, klen, lines + 1, 5, 0 };
	scan_buffer(doc, d, SCAN_F_DECODE(SCAN_DECODE_DEPTH_DEFAULT), on_hit, &w);
	if (w.found < 1) {
		fprintf(stderr, "not found: mode %u: %.*s\n", mode, (int)d, doc);
		abort();
	}
	return 0;
}
