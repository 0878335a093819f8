/* tls_sni.c: a strict ClientHello reader: records reassembled, every length checked against
 * its container, the server_name extension validated as a DNS host name. */
#include "net/tls_sni.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define REC_HANDSHAKE 22
#define REC_MAX       16384          /* plaintext record payload (2^14) */
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0

struct rd {
	const uint8_t *p;
	size_t left;
};

static bool rd_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->left < n)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool rd_u8(struct rd *r, size_t *v)
{
	const uint8_t *b;

	if (!rd_take(r, 1, &b))
		return false;
	*v = b[0];
	return true;
}

static bool rd_u16(struct rd *r, size_t *v)
{
	const uint8_t *b;

	if (!rd_take(r, 2, &b))
		return false;
	*v = (size_t)b[0] << 8 | b[1];
	return true;
}

/* A DNS host name: labels of letters, digits, '-' and '_' (1-63, no '-' at either end),
 * no trailing dot (RFC 6066), at most 253 characters. Lowercased into name. */
static const char *host_name(const uint8_t *s, size_t len, char *name)
{
	size_t label = 0;

	if (len == 0 || len > TLS_SNI_NAME_MAX)
		return "server name length out of range";
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c == '.') {
			if (label == 0)
				return "empty label in server name";
			if (s[i - 1] == '-')
				return "label ends with '-' in server name";
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			   (c >= 'A' && c <= 'Z') || (c == '-' && label > 0)) {
			if (++label > 63)
				return "label longer than 63 in server name";
		} else {
			return c == '-' ? "label starts with '-' in server name" : "bad character in server name";
		}
		name[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	if (label == 0)
		return "server name ends with '.'";
	if (s[len - 1] == '-')
		return "label ends with '-' in server name";
	name[len] = '\0';
	return NULL;
}

static int fail(const char **err, const char *why)
{
	*err = why;
	return -EPROTO;
}

/* The ClientHello body (after the 4-byte handshake header). */
static int hello_parse(const uint8_t *body, size_t blen, char *name, const char **err)
{
	struct rd r = { body, blen };
	const uint8_t *b;
	size_t n, ext_total;
	bool have_sni = false;

	if (!rd_take(&r, 2, &b))
		return fail(err, "truncated ClientHello");
	if (b[0] != 3)
		return fail(err, "unsupported ClientHello version");
	if (!rd_take(&r, 32, &b))
		return fail(err, "truncated ClientHello random");
	if (!rd_u8(&r, &n) || n > 32 || !rd_take(&r, n, &b))
		return fail(err, "bad session id");
	if (!rd_u16(&r, &n) || n < 2 || n % 2 || !rd_take(&r, n, &b))
		return fail(err, "bad cipher suites");
	if (!rd_u8(&r, &n) || n < 1 || !rd_take(&r, n, &b))
		return fail(err, "bad compression methods");
	if (r.left == 0)
		return -ENOENT;           /* no extensions at all (TLS 1.0 style) */
	if (!rd_u16(&r, &ext_total) || ext_total != r.left)
		return fail(err, "extensions length does not match the ClientHello");
	while (r.left) {
		size_t type, elen;
		if (!rd_u16(&r, &type) || !rd_u16(&r, &elen) || !rd_take(&r, elen, &b))
			return fail(err, "truncated extension");
		if (type != EXT_SERVER_NAME)
			continue;
		if (have_sni)
			return fail(err, "duplicate server_name extension");
		have_sni = true;
		struct rd e = { b, elen };
		size_t list;
		bool have_host = false;
		if (!rd_u16(&e, &list) || list != e.left || list == 0)
			return fail(err, "bad server_name list");
		while (e.left) {
			size_t ntype, nlen;
			const uint8_t *nm;
			if (!rd_u8(&e, &ntype) || !rd_u16(&e, &nlen) || !rd_take(&e, nlen, &nm))
				return fail(err, "truncated server_name entry");
			if (ntype != 0)
				continue;         /* other name types are ignored (RFC 6066) */
			if (have_host)
				return fail(err, "more than one host_name in server_name");
			have_host = true;
			const char *why = host_name(nm, nlen, name);
			if (why)
				return fail(err, why);
		}
		if (!have_host)
			return fail(err, "server_name without a host_name");
	}
	return have_sni ? 1 : -ENOENT;
}

int tls_sni_parse(const uint8_t *buf, size_t len, char name[TLS_SNI_NAME_MAX + 1], const char **err)
{
	uint8_t hs[TLS_HELLO_MAX + 4];
	size_t have = 0, pos = 0, need = 0;

	*err = NULL;
	name[0] = '\0';
	for (;;) {
		if (len - pos < 5) {
			/* check what is there, so garbage is refused before five bytes come */
			if (len > pos && buf[pos] != REC_HANDSHAKE)
				return fail(err, "not a TLS handshake record");
			if (len > pos + 1 && buf[pos + 1] != 3)
				return fail(err, "not a TLS record version");
			return 0;
		}
		const uint8_t *h = buf + pos;
		size_t rlen = (size_t)h[3] << 8 | h[4];
		if (h[0] != REC_HANDSHAKE)
			return fail(err, pos ? "ClientHello interrupted by another record type"
					     : "not a TLS handshake record");
		if (h[1] != 3 || h[2] > 4)
			return fail(err, "not a TLS record version");
		if (rlen == 0 || rlen > REC_MAX)
			return fail(err, "bad TLS record length");
		size_t avail = len - pos - 5 < rlen ? len - pos - 5 : rlen;
		size_t take = avail;
		if (need && have + take > need)
			take = need - have;     /* the rest of the record is another handshake message */
		if (have + take > sizeof(hs))
			return fail(err, "ClientHello too large");
		memcpy(hs + have, h + 5, take);
		have += take;
		if (!need && have >= 4) {
			if (hs[0] != HS_CLIENT_HELLO)
				return fail(err, "first handshake message is not a ClientHello");
			need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
			if (need > sizeof(hs))
				return fail(err, "ClientHello too large");
			if (need < 4 + 2 + 32 + 1 + 4 + 2)
				return fail(err, "ClientHello too short");
			if (have > need)
				have = need;
		}
		if (need && have >= need)
			return hello_parse(hs + 4, need - 4, name, err);
		if (avail < rlen)
			return 0;               /* the record is still arriving */
		pos += 5 + rlen;
	}
}
