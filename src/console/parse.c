/* parse.c (console): request body, cookie and query parsing (parse.h). */
#include "console/parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/codec.h"
#include "http/head.h"

static size_t json_depth(const json_t *j)
{
	size_t d = 0, sub;
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			(void)k;
			if ((sub = json_depth(v)) > d)
				d = sub;
		}
		return d + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if ((sub = json_depth(v)) > d)
				d = sub;
		return d + 1;
	}
	return 0;
}

static bool ctype_is_json(const char *c, size_t n)
{
	static const char want[] = "application/json";
	size_t wl = sizeof(want) - 1;

	if (!c || n < wl || strncasecmp(c, want, wl))
		return false;
	c += wl;
	n -= wl;
	while (n && (*c == ' ' || *c == '\t'))
		c++, n--;
	if (!n)
		return true;
	if (*c != ';')
		return false;
	c++, n--;
	while (n && (*c == ' ' || *c == '\t'))
		c++, n--;
	/* the only parameter JSON has: a charset, which must be UTF-8 (RFC 8259) */
	static const char cs[] = "charset=";
	if (n < sizeof(cs) - 1 || strncasecmp(c, cs, sizeof(cs) - 1))
		return false;
	c += sizeof(cs) - 1;
	n -= sizeof(cs) - 1;
	if (n >= 2 && c[0] == '"' && c[n - 1] == '"')
		c++, n -= 2;
	while (n && (c[n - 1] == ' ' || c[n - 1] == '\t'))
		n--;
	return (n == 5 && !strncasecmp(c, "utf-8", 5)) || (n == 4 && !strncasecmp(c, "utf8", 4));
}

json_t *console_body_parse(const char *ctype, size_t ctype_len, const char *body, size_t len,
			   struct body_err *err)
{
	json_error_t je;
	json_t *j;

	if (len > CONSOLE_BODY_MAX) {
		err->status = 413;
		err->code = "body_too_large";
		snprintf(err->message, sizeof(err->message), "request body larger than %d bytes",
			 CONSOLE_BODY_MAX);
		return NULL;
	}
	if (!ctype_is_json(ctype, ctype_len)) {
		err->status = 415;
		err->code = "unsupported_media_type";
		snprintf(err->message, sizeof(err->message), "Content-Type must be application/json");
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		err->status = 400;
		err->code = "bad_json";
		/* jansson's text says where; it quotes no input beyond a token */
		snprintf(err->message, sizeof(err->message), "body is not valid JSON: %.80s (at byte %d)",
			 je.text, je.position);
		for (char *p = err->message; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		err->status = 400;
		err->code = "bad_json";
		snprintf(err->message, sizeof(err->message), "body must be a JSON object");
		return NULL;
	}
	if (json_depth(j) > CONSOLE_JSON_DEPTH) {
		json_decref(j);
		err->status = 400;
		err->code = "bad_json";
		snprintf(err->message, sizeof(err->message), "body nested deeper than %d levels",
			 CONSOLE_JSON_DEPTH);
		return NULL;
	}
	return j;
}

static bool cookie_octet(unsigned char c)
{
	/* RFC 6265 4.1.1: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
	       (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

long console_cookie_get(const char *hdr, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), i = 0, start, end;

	if (!hdr || !cap)
		return -1;
	while (http_list_next(hdr, len, ';', &i, &start, &end)) {
		/* one pair: hdr[start..end) */
		const char *p = hdr + start;
		size_t pl = end - start;
		const char *eq = memchr(p, '=', pl);
		if (!eq)
			continue;
		size_t kl = (size_t)(eq - p);
		while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
			kl--;
		if (kl != nl || memcmp(p, name, nl))
			continue;
		const char *v = eq + 1;
		size_t vl = pl - (size_t)(v - p);
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"')
			v++, vl -= 2;
		if (!vl || vl >= cap)
			return -1;
		for (size_t k = 0; k < vl; k++)
			if (!cookie_octet((unsigned char)v[k]))
				return -1;
		memcpy(out, v, vl);
		out[vl] = '\0';
		return (long)vl;
	}
	return -1;
}

long console_query_get(const char *q, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), i = 0;

	while (i <= len && q) {
		size_t start = i;
		while (i < len && q[i] != '&')
			i++;
		const char *p = q + start;
		size_t pl = i - start;
		i++;
		const char *eq = memchr(p, '=', pl);
		size_t kl = eq ? (size_t)(eq - p) : pl;
		if (kl != nl || memcmp(p, name, nl))
			continue;
		const char *v = eq ? eq + 1 : p + pl;
		size_t vl = pl - (size_t)(v - p);
		char tmp[1024];
		if (vl >= sizeof(tmp))
			return -2;
		/* '+' is a space in a form-encoded query; an escaped "%2B" stays '+' */
		for (size_t k = 0; k < vl; k++)
			tmp[k] = v[k] == '+' ? ' ' : v[k];
		long n = codec_pct_decode(tmp, vl, out, cap, CODEC_PCT_NO_CTL);
		return n < 0 ? -2 : n;
	}
	return -1;
}
