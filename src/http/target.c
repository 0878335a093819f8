/* target.c: canonical request targets (see target.h for the policy). */
#include "http/target.h"

#include "core/codec.h"

#include <string.h>

/* Rewritable reasons, most telling first: a route may change with the first two. */
enum rw { RW_NONE = 0, RW_PERCENT_CASE, RW_ENCODED_UNRESERVED, RW_EMPTY_SEGMENT, RW_DOT_SEGMENT };

static const char *const rw_names[] = {
	[RW_NONE] = NULL,
	[RW_PERCENT_CASE] = "percent_case",
	[RW_ENCODED_UNRESERVED] = "encoded_unreserved",
	[RW_EMPTY_SEGMENT] = "empty_segment",
	[RW_DOT_SEGMENT] = "dot_segment",
};

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* pchar minus unreserved and pct-encoded: sub-delims (';' excluded, see target.h), ':' '@' */
static bool plain_delim(unsigned char c)
{
	return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
	       c == '*' || c == '+' || c == ',' || c == '=' || c == ':' || c == '@';
}

/* Why a byte value (raw or decoded) can never be trusted in a path, or NULL. */
static const char *ambiguous_byte(unsigned char c, bool encoded)
{
	if (c < 0x20 || c == 0x7f)
		return "control_char";
	if (c >= 0x80)
		return "non_ascii";
	if (c == ';')
		return "path_parameter";
	if (c == '\\')
		return encoded ? "encoded_backslash" : "backslash";
	if (encoded && c == '/')
		return "encoded_slash";
	if (encoded && c == '%')
		return "encoded_percent";    /* a backend that decodes twice reads it differently */
	if (c == '#')
		return "fragment";
	return NULL;
}

static const char *check_query(const char *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)q[i];
		if (c < 0x20 || c == 0x7f)
			return "control_char";
		if (c == '#')
			return "fragment";
		if (c == '%' && i + 2 < n) {
			int h = codec_hex_value((unsigned char)q[i + 1]), l = codec_hex_value((unsigned char)q[i + 2]);
			if (h >= 0 && l >= 0 && (h * 16 + l < 0x20 || h * 16 + l == 0x7f))
				return "control_char";
		}
	}
	return NULL;
}

static enum http_target_result refuse(struct http_target *t, const char *why)
{
	t->path[0] = '\0';
	t->path_len = 0;
	t->reason = why;
	return HTTP_TARGET_REFUSED;
}

enum http_target_result http_target_canon(const char *in, size_t len, struct http_target *t)
{
	char norm[HTTP_PATH_MAX];
	size_t nl = 0, plen;
	enum rw rw = RW_NONE;
	const char *why;

	memset(t, 0, sizeof(*t));
	const char *q = memchr(in, '?', len);
	plen = q ? (size_t)(q - in) : len;
	if (q) {
		t->query = q;
		t->query_len = len - plen;
		if ((why = check_query(q, t->query_len)))
			return refuse(t, why);
	}
	if (plen == 0 || in[0] != '/')
		return refuse(t, "not_origin_form");
	if (plen > HTTP_PATH_MAX)
		return refuse(t, "path_too_long");

	/* pass 1: decode unreserved, upper-case the other escapes, refuse what is ambiguous */
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= plen)
				return refuse(t, "bad_percent");
			int h = codec_hex_value((unsigned char)in[i + 1]), l = codec_hex_value((unsigned char)in[i + 2]);
			if (h < 0 || l < 0)
				return refuse(t, "bad_percent");
			unsigned char v = (unsigned char)(h * 16 + l);
			if ((why = ambiguous_byte(v, true)))
				return refuse(t, why);
			if (unreserved(v)) {
				norm[nl++] = (char)v;
				if (rw < RW_ENCODED_UNRESERVED)
					rw = RW_ENCODED_UNRESERVED;
			} else {
				static const char hx[] = "0123456789ABCDEF";
				norm[nl++] = '%';
				norm[nl++] = hx[h];
				norm[nl++] = hx[l];
				if (norm[nl - 2] != in[i + 1] || norm[nl - 1] != in[i + 2])
					if (rw < RW_PERCENT_CASE)
						rw = RW_PERCENT_CASE;
			}
			i += 2;
			continue;
		}
		if ((why = ambiguous_byte(c, false)))
			return refuse(t, why);
		if (!unreserved(c) && !plain_delim(c) && c != '/')
			return refuse(t, "bad_char");
		norm[nl++] = (char)c;
	}

	/* pass 2: segments; "." and ".." resolved (RFC 3986 5.2.4), empty ones merged */
	size_t o = 0, s = 1;       /* norm[0] is '/' */
	bool trailing = false;
	while (s <= nl) {
		size_t e = s;
		while (e < nl && norm[e] != '/')
			e++;
		size_t sl = e - s;
		bool last = e >= nl;
		if ((sl == 1 && norm[s] == '.') || (sl == 2 && norm[s] == '.' && norm[s + 1] == '.')) {
			rw = RW_DOT_SEGMENT;
			if (sl == 2)
				while (o > 0 && t->path[--o] != '/')
					;
			trailing = last;
		} else if (sl == 0) {
			if (!last && rw < RW_EMPTY_SEGMENT)
				rw = RW_EMPTY_SEGMENT;
			trailing = last;
		} else {
			t->path[o++] = '/';
			memcpy(t->path + o, norm + s, sl);
			o += sl;
			trailing = false;
		}
		s = e + 1;
	}
	if (o == 0 || trailing)
		t->path[o++] = '/';
	t->path[o] = '\0';
	t->path_len = o;
	if (o == plen && !memcmp(t->path, in, plen))
		return HTTP_TARGET_CANONICAL;
	t->reason = rw_names[rw] ? rw_names[rw] : "not_canonical";
	return HTTP_TARGET_REWRITTEN;
}

const char *http_target_reason_text(const char *r)
{
	static const struct {
		const char *reason, *text;
	} tab[] = {
		{ "dot_segment", "a '.' or '..' path segment (plain or percent-encoded)" },
		{ "empty_segment", "an empty path segment ('//')" },
		{ "encoded_unreserved", "a percent-encoded letter, digit or '-._~'" },
		{ "percent_case", "a lower-case percent-encoding" },
		{ "encoded_slash", "a percent-encoded '/' (%2F)" },
		{ "encoded_backslash", "a percent-encoded '\\' (%5C)" },
		{ "backslash", "a '\\' in the path" },
		{ "path_parameter", "a ';' path parameter" },
		{ "encoded_percent", "a percent-encoded '%' (%25)" },
		{ "control_char", "a NUL or control character" },
		{ "non_ascii", "a non-ASCII byte" },
		{ "bad_percent", "a malformed percent-encoding" },
		{ "bad_char", "a character not allowed in a path" },
		{ "fragment", "a '#' fragment" },
		{ "not_origin_form", "a request target that is not a path starting with '/'" },
		{ "path_too_long", "a path longer than 2048 bytes" },
	};
	for (size_t i = 0; r && i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(tab[i].reason, r))
			return tab[i].text;
	return "a path that is not in canonical form";
}
