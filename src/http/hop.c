/* hop.c: the hop-by-hop rule shared by the proxy and the gate (see hop.h). */
#include "http/hop.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

bool http_hop_by_hop(const char *name, size_t len)
{
	/* by length and first letter before any compare: this runs for every field of every
	 * forwarded message, and most names are none of these */
	if (len == 0)
		return false;
	switch (name[0] | 0x20) {
	case 'p':
		return len >= 6 && !strncasecmp(name, "proxy-", 6);
	case 'c':
		return len == 10 && !strncasecmp(name, "connection", 10);
	case 'k':
		return len == 10 && !strncasecmp(name, "keep-alive", 10);
	case 't':
		return (len == 2 && (name[1] | 0x20) == 'e') ||
		       (len == 7 && !strncasecmp(name, "trailer", 7));
	case 'u':
		return len == 7 && !strncasecmp(name, "upgrade", 7);
	default:
		return false;
	}
}

/* Fields a Connection header cannot take away: the body is relayed with its own framing, so
 * dropping Content-Length or Transfer-Encoding would let the next hop read the body as
 * another request (smuggling past every check made here); Host names the resource. */
static bool framing_field(const char *name, size_t len)
{
	return (len == 14 && !strncasecmp(name, "content-length", 14)) ||
	       (len == 17 && !strncasecmp(name, "transfer-encoding", 17)) ||
	       (len == 4 && !strncasecmp(name, "host", 4));
}

bool http_field_is_hop(const struct http_head *h, const char *base, size_t i)
{
	const char *name = base + h->hdrs[i].name_off;
	size_t nlen = h->hdrs[i].name_len;

	if (http_hop_by_hop(name, nlen))
		return true;
	if (framing_field(name, nlen))
		return false;
	/* every Connection field counts: a second one must not smuggle a field through */
	for (size_t c = 0; c < h->nhdrs; c++)
		if (http_hdr_name_is(h, base, c, "connection") &&
		    http_token_list_has(base + h->hdrs[c].val_off, h->hdrs[c].val_len, name, nlen))
			return true;
	return false;
}

int http_field_append(struct buf *b, const char *name, size_t nlen, const char *val, size_t vlen)
{
	if (buf_room(b) < nlen + vlen + 4)
		return -ENOSPC;
	char *p = b->data + b->len;
	memcpy(p, name, nlen);
	p[nlen] = ':';
	p[nlen + 1] = ' ';
	memcpy(p + nlen + 2, val, vlen);
	p[nlen + 2 + vlen] = '\r';
	p[nlen + 3 + vlen] = '\n';
	b->len += nlen + vlen + 4;
	return 0;
}

int http_fields_copy(const struct http_head *h, const char *base, struct buf *out,
		     http_field_skip_fn skip, void *arg)
{
	size_t conn[HTTP_HEADERS_CAP], nconn = 0;

	/* the Connection fields, found once (this runs for every message) */
	for (size_t i = 0; i < h->nhdrs && i < HTTP_HEADERS_CAP; i++)
		if (http_hdr_name_is(h, base, i, "connection"))
			conn[nconn++] = i;
	for (size_t i = 0; i < h->nhdrs; i++) {
		const char *name = base + h->hdrs[i].name_off;
		size_t nlen = h->hdrs[i].name_len, vlen = h->hdrs[i].val_len;
		bool named = false;
		for (size_t c = 0; c < nconn && !named && !framing_field(name, nlen); c++)
			named = http_token_list_has(base + h->hdrs[conn[c]].val_off,
						    h->hdrs[conn[c]].val_len, name, nlen);
		if (named || http_hop_by_hop(name, nlen) || (skip && skip(arg, name, nlen)))
			continue;
		if (http_field_append(out, name, nlen, base + h->hdrs[i].val_off, vlen))
			return -ENOSPC;
	}
	return 0;
}
