/* fuzz_scan.c: the scanner over arbitrary bytes, with and without decoding of encoded runs;
 * whole-buffer and windowed-stream scans must agree, the scalar path must agree with the SIMD
 * one (as sets: decoded keys are reported at their encoded text, out of offset order), and every
 * hit must be a well-formed key whose place is inside the input. */
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
	if (h->offset >= g_size || h->len < SCAN_BODY_MIN + 3 || h->len > SCAN_KEY_MAX || h->line < 1 ||
	    h->column < 1 || h->column > h->offset + 1)
		abort();
	/* a plain key is the input's bytes at its offset */
	if (!h->decoded && (h->offset + h->len > g_size || memcmp(h->key, g_data + h->offset, h->len)))
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

static int cmp3(uint64_t o1, uint64_t l1, size_t n1, uint64_t o2, uint64_t l2, size_t n2)
{
	return o1 != o2 ? (o1 < o2 ? -1 : 1) : l1 != l2 ? (l1 < l2 ? -1 : 1) : n1 < n2 ? -1 : n1 > n2;
}

/* sorts the kept hits by (offset, line, len): insertion sort, MAXH is small */
static void sort_hits(struct hits *h)
{
	size_t n = h->n < MAXH ? h->n : MAXH;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && cmp3(h->off[j - 1], h->line[j - 1], h->len[j - 1], h->off[j],
						 h->line[j], h->len[j]) > 0; j--) {
			uint64_t o = h->off[j], l = h->line[j];
			size_t n2 = h->len[j];
			h->off[j] = h->off[j - 1];
			h->line[j] = h->line[j - 1];
			h->len[j] = h->len[j - 1];
			h->off[j - 1] = o;
			h->line[j - 1] = l;
			h->len[j - 1] = n2;
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hits a, b, c;
	unsigned flags = size && (data[0] & 1) ? SCAN_F_PUBLISHABLE : 0;
	if (size && (data[0] & 2))
		flags |= SCAN_F_DECODE(1 + (data[0] >> 6) % SCAN_DECODE_DEPTH_MAX);

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
	sort_hits(&a);
	sort_hits(&b);
	sort_hits(&c);
	for (size_t i = 0; i < a.n && i < MAXH; i++)
		if (a.off[i] != b.off[i] || a.line[i] != b.line[i] || a.len[i] != b.len[i] ||
		    a.off[i] != c.off[i] || a.line[i] != c.line[i])
			abort();
	return 0;
}
