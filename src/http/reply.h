/* reply.h: the answers iplock's servers make themselves (errors, health, pool, echo): status
 * text, the head of a local response, the JSON error envelope. Pure formatting into the
 * caller's buffer; no I/O. Every server's status line takes its text from http_status_text(). */
#ifndef IPLOCK_HTTP_REPLY_H
#define IPLOCK_HTTP_REPLY_H

#include <stddef.h>

#define HTTP_ERROR_MESSAGE_MAX 399   /* escaped bytes of a message kept in an error body */

/* RFC 9110 reason phrase of the statuses iplock sends; "Error" for any other. */
const char *http_status_text(int status);

#define HTTP_REPLY_NO_STORE 0x1u     /* Cache-Control: no-store */
#define HTTP_REPLY_CLOSE    0x2u     /* Connection: close */

/* "HTTP/1.1 <status> <text>", Content-Type, [Cache-Control: no-store,] extra (whole header
 * lines, each ending in CRLF, or NULL), Content-Length, [Connection: close,] and the blank
 * line, NUL-terminated. Returns the length, or -ENOSPC (out then holds "" if cap > 0). */
long http_reply_head(char *out, size_t cap, int status, const char *ctype, size_t body_len,
		     const char *extra, unsigned flags);

/* {"error": {"type": "<type>", "code": "<code>", "message": "<message>"}} and a newline,
 * the "code" member left out when code is NULL. type and code are identifiers (not escaped);
 * message is JSON-escaped and cut to HTTP_ERROR_MESSAGE_MAX escaped bytes. Returns the
 * length, or -ENOSPC. */
long http_error_json(char *out, size_t cap, const char *type, const char *code,
		     const char *message);

#endif
