/* fuzz_gate_path.c: the canonical request target the gate decides on (http/target.c) with the
 * gate's real route matcher. Input: a request target. Properties, on every input:
 *   - a refusal has a reason; an accepted target has a canonical path of at most
 *     HTTP_PATH_MAX bytes, the input's own path when it was reported canonical;
 *   - idempotent: canon(canon(x)) == canon(x), and canon(x) is reported canonical;
 *   - the canonical path has no dot-segment, no empty segment, no encoded '/' or '\',
 *     no encoded unreserved byte, no lower-case escape, no ';';
 *   - in both path_normalize modes, the route the gate chose (on the canonical path) is the
 *     route of what is forwarded, read literally and read by an aggressive backend that
 *     decodes every escape, takes '\' for '/', drops ';' parameters, merges slashes and
 *     resolves dot-segments. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gate/decide.h"
#include "http/target.h"

static struct gate_routes routes;
static bool ready;

static void init(void)
{
	gate_routes_add(&routes, "sources", "*", "/v1/customers/*/sources*", "source", false);
	gate_routes_add(&routes, "customers", "*", "/v1/customers*", "customer", false);
	gate_routes_add(&routes, "charges", "*", "/v1/charges*", "charge", false);
	gate_routes_add(&routes, "tokens", "*", "/v1/tokens", "token", true);
	gate_routes_add(&routes, "files", "*", "/files/*", "file", false);
	ready = true;
}

static int hexv(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* What a normalising backend routes on: the path before '?', every escape decoded. */
static size_t backend_path(const char *in, size_t len, char *out, size_t cap)
{
	char dec[HTTP_PATH_MAX + 16];
	size_t dl = 0, o = 0;
	const char *q = memchr(in, '?', len);
	size_t pl = q ? (size_t)(q - in) : len;

	for (size_t i = 0; i < pl && dl < sizeof(dec); i++) {
		int h, l;
		if (in[i] == '%' && i + 2 < pl && (h = hexv((unsigned char)in[i + 1])) >= 0 &&
		    (l = hexv((unsigned char)in[i + 2])) >= 0) {
			dec[dl++] = (char)(h * 16 + l);
			i += 2;
		} else {
			dec[dl++] = in[i];
		}
	}
	for (size_t i = 0; i < dl; i++)
		if (dec[i] == '\\')
			dec[i] = '/';
		else if (dec[i] == '?')
			dec[i] = '\x7f';        /* a decoded '?' is path, not query, for the matcher */
	/* segments: ';' parameters dropped, empty and '.' skipped, '..' pops */
	size_t s = 0;
	bool trailing = false;
	while (s < dl) {
		if (dec[s] == '/') {
			s++;
			trailing = s == dl;
			continue;
		}
		size_t e = s;
		while (e < dl && dec[e] != '/')
			e++;
		const char *semi = memchr(dec + s, ';', e - s);
		size_t sl = semi ? (size_t)(semi - (dec + s)) : e - s;
		if (sl == 1 && dec[s] == '.') {
			trailing = true;
		} else if (sl == 2 && dec[s] == '.' && dec[s + 1] == '.') {
			while (o > 0 && out[--o] != '/')
				;
			trailing = true;
		} else if (o + sl + 1 < cap) {
			out[o++] = '/';
			memcpy(out + o, dec + s, sl);
			o += sl;
			trailing = false;
		}
		s = e;
	}
	if (o == 0 || trailing)
		out[o++] = '/';
	out[o] = '\0';
	return o;
}

static const struct gate_route *route_of(const char *p, size_t n)
{
	return gate_routes_match(&routes, "GET", 3, p, n);
}

static void check_forwarded(const struct gate_route *decided, const char *fwd, size_t n)
{
	char back[HTTP_PATH_MAX + 16];
	size_t bl = backend_path(fwd, n, back, sizeof(back));

	if (route_of(fwd, n) != decided || route_of(back, bl) != decided)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_target t, t2;
	static char fwd[HTTP_PATH_MAX + 70000];
	const char *in = (const char *)data;

	if (!ready)
		init();
	enum http_target_result r = http_target_canon(in, size, &t);
	if (r == HTTP_TARGET_REFUSED) {
		if (!t.reason || t.path_len)
			__builtin_trap();
		return 0;
	}
	if ((r == HTTP_TARGET_CANONICAL) != (t.reason == NULL))
		__builtin_trap();
	const char *p = t.path;
	size_t n = t.path_len;
	if (!n || n > HTTP_PATH_MAX || strlen(p) != n || p[0] != '/')
		__builtin_trap();
	if (r == HTTP_TARGET_CANONICAL &&
	    (size != n + t.query_len || memcmp(p, in, n)))
		__builtin_trap();
	/* idempotent, and canonical by its own account */
	if (http_target_canon(p, n, &t2) != HTTP_TARGET_CANONICAL || t2.path_len != n ||
	    memcmp(t2.path, p, n))
		__builtin_trap();
	/* no dot or empty segment, no ambiguous or avoidable escape */
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '/') {
			size_t e = i + 1;
			while (e < n && p[e] != '/')
				e++;
			size_t sl = e - i - 1;
			if ((sl == 1 && p[i + 1] == '.') ||
			    (sl == 2 && p[i + 1] == '.' && p[i + 2] == '.') || (sl == 0 && e < n))
				__builtin_trap();
		}
		if (p[i] == ';' || p[i] == '\\' || (unsigned char)p[i] < 0x21 ||
		    (unsigned char)p[i] > 0x7e)
			__builtin_trap();
		if (p[i] == '%') {
			if (i + 2 >= n)
				__builtin_trap();
			int h = hexv((unsigned char)p[i + 1]), l = hexv((unsigned char)p[i + 2]);
			if (h < 0 || l < 0 || (p[i + 1] >= 'a') || (p[i + 2] >= 'a'))
				__builtin_trap();
			int v = h * 16 + l;
			if (v == '/' || v == '\\' || v == '.' || v == ';' || v == '%' ||
			    (v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') || (v >= '0' && v <= '9') ||
			    v == '-' || v == '_' || v == '~')
				__builtin_trap();
		}
	}
	const struct gate_route *decided = route_of(p, n);
	/* path_normalize = refuse: only a canonical target goes on, as it came */
	if (r == HTTP_TARGET_CANONICAL)
		check_forwarded(decided, in, size);
	/* path_normalize = rewrite: the canonical path, then the query as it came */
	if (n + t.query_len <= sizeof(fwd)) {
		memcpy(fwd, p, n);
		if (t.query_len)
			memcpy(fwd + n, t.query, t.query_len);
		check_forwarded(decided, fwd, n + t.query_len);
	}
	return 0;
}
