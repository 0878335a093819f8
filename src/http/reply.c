/* reply.c: status text, local response heads and the JSON error envelope (reply.h). */
#include "http/reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

const char *http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Error";
	}
}

long http_reply_head(char *out, size_t cap, int status, const char *ctype, size_t body_len,
		     const char *extra, unsigned flags)
{
	int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%sContent-Length: %zu\r\n%s\r\n",
			 status, http_status_text(status), ctype,
			 flags & HTTP_REPLY_NO_STORE ? "Cache-Control: no-store\r\n" : "",
			 extra ? extra : "", body_len,
			 flags & HTTP_REPLY_CLOSE ? "Connection: close\r\n" : "");

	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return -ENOSPC;
	}
	return n;
}

long http_error_json(char *out, size_t cap, const char *type, const char *code,
		     const char *message)
{
	char esc[HTTP_ERROR_MESSAGE_MAX + 1];
	size_t el = json_escape(esc, HTTP_ERROR_MESSAGE_MAX, message, strlen(message));
	int n;

	esc[el] = '\0';
	if (code)
		n = snprintf(out, cap, "{\"error\": {\"type\": \"%s\", \"code\": \"%s\", \"message\": \"%s\"}}\n",
			     type, code, esc);
	else
		n = snprintf(out, cap, "{\"error\": {\"type\": \"%s\", \"message\": \"%s\"}}\n", type, esc);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return -ENOSPC;
	}
	return n;
}
