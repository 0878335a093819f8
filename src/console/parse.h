/* parse.h (console): the console's parsers of untrusted request text, pure functions (each
 * has a libFuzzer target): the JSON body of a change (content type, size, one object of
 * bounded depth), the session cookie out of a Cookie header, and query-string parameters. */
#ifndef IPLOCK_CONSOLE_PARSE_H
#define IPLOCK_CONSOLE_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CONSOLE_BODY_MAX  65536   /* bytes of a request body */
#define CONSOLE_JSON_DEPTH 8      /* nesting of a request body's objects and arrays */

/* Why a body was refused: an HTTP status, an error code of the API and a one-line reason. */
struct body_err {
	int status;
	const char *code;
	char message[160];
};

/* Checks ctype (application/json, optionally "; charset=utf-8", any case), len (at most
 * CONSOLE_BODY_MAX) and parses body as one JSON object (no duplicate keys, no NUL in strings,
 * depth at most CONSOLE_JSON_DEPTH). ctype NULL = absent. Returns the object (caller owns it)
 * or NULL with *err filled. */
json_t *console_body_parse(const char *ctype, size_t ctype_len, const char *body, size_t len,
			   struct body_err *err);

/* The value of cookie `name` in a Cookie header value (RFC 6265 "a=b; c=d"): copied to out
 * with a NUL; returns its length, or -1 when absent, empty, malformed or longer than cap - 1.
 * Only cookie-octets are accepted in the value (quotes around it are removed). */
long console_cookie_get(const char *hdr, size_t len, const char *name, char *out, size_t cap);

/* The value of parameter `name` in a query string (without '?'): percent-decoded, '+' as a
 * space, control bytes refused. Returns its length, -1 absent, -2 malformed or too long. The
 * first occurrence counts. */
long console_query_get(const char *q, size_t len, const char *name, char *out, size_t cap);

#endif
