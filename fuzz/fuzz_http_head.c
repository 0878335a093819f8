/* fuzz_http_head.c: request and response heads, then body framing, on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/head.h"

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
