/* fuzz_exchange.c: http/exchange on an arbitrary upstream byte stream (interim heads, the
 * final head, the body, the close). Properties: (1) split invariance: the body fed in one
 * piece and in pieces of 1..16 bytes gives the same heads, statuses, body length, end and
 * reuse verdicts; (2) the client's head starts "HTTP/1.1 NNN ", ends with a blank line and
 * carries no hop-by-hop field but the "Connection: close" it was asked for. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/exchange.h"
#include "http/hop.h"

struct outcome {
	int heads;          /* interim heads seen */
	int xhead;          /* last http_exchange_head result */
	int status;
	int body_kind;
	size_t body;        /* body bytes taken */
	int end;            /* 0 more, 1 done, 2 error; 3/4 eof done/error */
	bool up_keep;
};

static void check_client_head(const struct http_exchange *x, const char *base, bool close)
{
	struct buf *b = buf_get();

	if (!b)
		return;
	if (http_exchange_client_head(x, base, b, close, NULL, NULL, NULL) == 0) {
		const char *d = b->data;
		size_t n = b->len;
		if (n < 17 || memcmp(d, "HTTP/1.1 ", 9) || d[12] != ' ' || memcmp(d + n - 4, "\r\n\r\n", 4))
			abort();
		for (int i = 9; i < 12; i++)
			if (d[i] < '0' || d[i] > '9')
				abort();
		const char *line = memchr(d, '\n', n) + 1;
		while (line < d + n - 2) {
			const char *eol = memchr(line, '\n', (size_t)(d + n - line));
			const char *colon = memchr(line, ':', (size_t)(eol - line));
			if (!colon)
				abort();
			bool ours = close && eol - line == 18 && !memcmp(line, "Connection: close\r", 18);
			if (!ours && http_hop_by_hop(line, (size_t)(colon - line)))
				abort();
			line = eol + 1;
		}
	}
	buf_put(b);
}

static void run(struct http_exchange *x, const char *msg, size_t len, bool head_req, size_t step,
		struct outcome *o, bool check)
{
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	http_exchange_begin(x, head_req, false, false);
	for (;;) {
		o->xhead = http_exchange_head(x, msg + off, len - off);
		if (o->xhead != HTTP_XHEAD_INTERIM)
			break;
		if (check)
			check_client_head(x, msg + off, false);
		if (x->resp.head_len == 0 || x->resp.head_len > len - off)
			abort();
		off += x->resp.head_len;
		o->heads++;
		http_exchange_next(x);
	}
	if (o->xhead != HTTP_XHEAD_FINAL)
		return;
	if (x->resp.head_len > len - off)
		abort();
	if (check)
		check_client_head(x, msg + off, x->body == HTTP_XBODY_UNTIL_CLOSE);
	off += x->resp.head_len;
	o->status = x->status;
	o->body_kind = (int)x->body;
	while (!x->body_done && off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		enum http_parse_result r = http_exchange_body(x, msg + off, n, &used);
		if (used > n)
			abort();
		o->body += used;
		off += used;
		if (r == HTTP_ERROR) {
			o->end = 2;
			break;
		}
		if (r == HTTP_DONE || used < n)
			break;
	}
	if (o->end != 2)
		o->end = x->body_done ? 1 : (http_exchange_eof(x) == HTTP_DONE ? 3 : 4);
	o->up_keep = x->up_keep;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_exchange *x = malloc(sizeof(*x));
	struct outcome a, b;

	if (!x || size < 1)
		goto out;
	bool head_req = data[0] & 1;
	size_t step = (size_t)(data[0] >> 1) % 16 + 1;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	run(x, msg, len, head_req, len ? len : 1, &a, true);
	run(x, msg, len, head_req, step, &b, false);
	if (a.heads != b.heads || a.xhead != b.xhead || a.status != b.status ||
	    a.body_kind != b.body_kind || a.up_keep != b.up_keep || a.body > len)
		abort();
	/* llhttp may find a framing error at a different byte when fed in pieces, never a
	 * different verdict on well-framed bytes */
	if ((a.end == 2) != (b.end == 2) || (a.end != 2 && (a.body != b.body || a.end != b.end)))
		abort();
out:
	free(x);
	return 0;
}
