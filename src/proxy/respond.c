/* respond.c: error responses as {"error": {"type": "proxy_error", "code", "message"}}, built
 * for the session to send (it knows whether the client speaks HTTP or SOCKS5). */
#include "proxy/respond.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"

const char *respond_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Error";
	}
}

struct buf *respond_error_build(int status, const char *code, const char *message)
{
	struct buf *b = buf_get();
	char body[512], esc[400];

	if (!b)
		return NULL;
	size_t n = json_escape(esc, sizeof(esc) - 1, message, strlen(message));
	esc[n] = '\0';
	int blen = snprintf(body, sizeof(body),
			    "{\"error\": {\"type\": \"proxy_error\", \"code\": \"%s\", \"message\": \"%s\"}}\n",
			    code, esc);
	int hlen = snprintf(b->data, b->cap,
			    "HTTP/1.1 %d %s\r\n%s"
			    "Content-Type: application/json\r\n"
			    "Content-Length: %d\r\n"
			    "Connection: close\r\n\r\n%s",
			    status, respond_status_text(status),
			    status == 407 ? "Proxy-Authenticate: Basic realm=\"iplock\"\r\n" : "",
			    blen, body);
	b->len = (size_t)hlen < b->cap ? (size_t)hlen : b->cap;
	return b;
}

struct buf *respond_json_build(int status, const char *json, size_t len)
{
	struct buf *b = buf_get();

	if (b) {
		int n = snprintf(b->data, b->cap,
				 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
				 "Cache-Control: no-store\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
				 status, respond_status_text(status), len);
		b->len = (size_t)n;
		if (buf_append(b, json, len)) {
			buf_put(b);
			b = NULL;
		}
	}
	return b;
}
