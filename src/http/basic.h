/* basic.h: the Basic credential header (RFC 7617) that verify, tunnel and the scanner's
 * liveness check send to a proxy. */
#ifndef IPLOCK_HTTP_BASIC_H
#define IPLOCK_HTTP_BASIC_H

#include <stddef.h>

#define HTTP_BASIC_PLAIN_MAX 513   /* bytes of "user:password" */
/* the longest line, NUL included: the longest header name used, ": Basic ", base64, CRLF */
#define HTTP_BASIC_LINE_MAX  (32 + 4 * ((HTTP_BASIC_PLAIN_MAX + 2) / 3) + 3)

/* "<header>: Basic base64(user:password)\r\n" into out, the clear text wiped after.
 * Returns the line's length, or -ENOSPC when user:password is longer than
 * HTTP_BASIC_PLAIN_MAX or the line does not fit in cap. */
long http_basic_line(const char *header, const char *user, const char *password, char *out,
		     size_t cap);

#endif
