/* fuzz_http_head.c: request and response heads, then body framing, on arbitrary bytes; and
 * the shared hop-by-hop rule on every parsed head: each field is copied on exactly when it
 * is not hop-by-hop, and Content-Length / Transfer-Encoding / Host always are. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "http/head.h"
#include "http/hop.h"

/* http_fields_copy() against http_field_is_hop(), field by field, in order. */
static void check_hop(const struct http_head *h, const char *msg)
{
	struct buf *b = buf_get();
	size_t at = 0;

	if (!b)
		return;
	if (http_fields_copy(h, msg, b, NULL, NULL) == 0) {
		for (size_t i = 0; i < h->nhdrs; i++) {
			const char *n = msg + h->hdrs[i].name_off;
			size_t nl = h->hdrs[i].name_len, vl = h->hdrs[i].val_len;
			bool hop = http_field_is_hop(h, msg, i);
			bool framing = (nl == 14 && !strncasecmp(n, "content-length", 14)) ||
				       (nl == 17 && !strncasecmp(n, "transfer-encoding", 17)) ||
				       (nl == 4 && !strncasecmp(n, "host", 4));
			if (framing && hop)
				abort();
			if (hop)
				continue;
			if (at + nl + vl + 4 > b->len || memcmp(b->data + at, n, nl) ||
			    memcmp(b->data + at + nl + 2, msg + h->hdrs[i].val_off, vl))
				abort();
			at += nl + vl + 4;
		}
		if (at != b->len)
			abort();
	}
	buf_put(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head *h = malloc(sizeof(*h));
	size_t consumed;

	if (!h || size == 0)
		goto out;
	/* first byte picks request or response, the rest is the message */
	http_head_init(h, (data[0] & 1) ? HTTP_RESPONSE : HTTP_REQUEST, 100);
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	if (http_head_parse(h, msg, len) == HTTP_DONE) {
		if (h->head_len > len || h->url_off + h->url_len > len)
			abort();
		for (size_t i = 0; i < h->nhdrs; i++)
			if (h->hdrs[i].name_off + h->hdrs[i].name_len > len ||
			    h->hdrs[i].val_off + h->hdrs[i].val_len > len)
				abort();
		check_hop(h, msg);
		http_body_begin(h, (data[0] & 2) != 0);
		size_t off = h->head_len;
		/* feed the body in two pieces to exercise resumption */
		size_t half = (len - off) / 2;
		if (http_body_feed(h, msg + off, half, &consumed) == HTTP_MORE && consumed == half)
			http_body_feed(h, msg + off + half, len - off - half, &consumed);
		if (consumed > len)
			abort();
		http_body_eof(h);
	}
out:
	free(h);
	return 0;
}
