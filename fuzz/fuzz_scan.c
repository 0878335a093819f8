/* fuzz_scan.c: the scanner over arbitrary bytes; whole-buffer and windowed-stream scans must
 * agree, the scalar path must agree with the SIMD one, and every hit must be a well-formed key
 * inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

#define MAXH 4096

struct hits {
	size_t n;
	uint64_t off[MAXH], line[MAXH];
	size_t len[MAXH];
};

static const uint8_t *g_data;
static size_t g_size;

static int rec(void *arg, const struct scan_hit *h)
{
	struct hits *hs = arg;
	if (h->offset + h->len > g_size || h->len < SCAN_BODY_MIN + 3 || h->line < 1 ||
	    h->column < 1 || (const uint8_t *)h->key < (const uint8_t *)0)
		abort();
	if (hs->n < MAXH) {
		hs->off[hs->n] = h->offset;
		hs->line[hs->n] = h->line;
		hs->len[hs->n] = h->len;
	}
	hs->n++;
	return 0;
}

struct rd {
	size_t pos, step;
};

static ssize_t rd_fn(void *arg, void *buf, size_t n)
{
	struct rd *r = arg;
	size_t left = g_size - r->pos;
	if (n > left)
		n = left;
	if (n > r->step)
		n = r->step;
	memcpy(buf, g_data + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hits a, b, c;
	unsigned flags = size && (data[0] & 1) ? SCAN_F_PUBLISHABLE : 0;

	g_data = data;
	g_size = size;
	a.n = b.n = 0;
	scan_buffer(data, size, flags, rec, &a);
	struct rd r = { 0, 1 + (size % 977) };
	scan_stream(rd_fn, &r, SCAN_CHUNK_MIN, flags, rec, &b);
	c.n = 0;
	scan_simd_cap(0);
	scan_buffer(data, size, flags, rec, &c);
	scan_simd_cap(-1);
	if (a.n != b.n || a.n != c.n)
		abort();
	for (size_t i = 0; i < a.n && i < MAXH; i++)
		if (a.off[i] != b.off[i] || a.line[i] != b.line[i] || a.len[i] != b.len[i] ||
		    a.off[i] != c.off[i] || a.line[i] != c.line[i])
			abort();
	return 0;
}
