/* target.h: the canonical form of an origin-form request target ("/path?query"), so that a
 * gate and the API behind it cannot read one request two ways (Envoy CVE-2019-9901).
 *
 * Canonical path: starts with '/', no "." or ".." segment (RFC 3986 5.2.4), no empty segment
 * (no "//"), no percent-encoded unreserved character (RFC 3986 6.2.2.2), every remaining
 * %XX in upper case, only RFC 3986 pchar bytes. What can be normalised is reported with a
 * reason and normalised; what stays ambiguous whichever way it is read (encoded '/' or '\',
 * raw '\', ';' path parameters, '%25', NUL and control bytes, non-ASCII, bad escapes, a path
 * over HTTP_PATH_MAX) is reported as refused. The query string is kept apart, byte for byte
 * (not normalised: routes ignore it), but control bytes (raw or encoded) and '#' there are
 * refused too. */
#ifndef IPLOCK_HTTP_TARGET_H
#define IPLOCK_HTTP_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_PATH_MAX 2048      /* longest path accepted (the query is not counted) */

enum http_target_result {
	HTTP_TARGET_REFUSED = -1,   /* ambiguous: refuse in every mode (reason says why) */
	HTTP_TARGET_CANONICAL = 0,  /* the input was canonical: path is its path, unchanged */
	HTTP_TARGET_REWRITTEN = 1,  /* not canonical (reason says why); path is the canonical form */
};

struct http_target {
	char path[HTTP_PATH_MAX + 1];   /* canonical path, NUL-terminated ("" when refused) */
	size_t path_len;
	const char *query;              /* into the input: '?' and what follows, or NULL */
	size_t query_len;
	const char *reason;             /* NULL when canonical; else a short token (dot_segment) */
};

/* Canonicalises in[0..len). Never reads past len; the input need not be NUL-terminated. */
enum http_target_result http_target_canon(const char *in, size_t len, struct http_target *t);

/* One line for a client, about a reason token from http_target_canon(). */
const char *http_target_reason_text(const char *reason);

#endif
