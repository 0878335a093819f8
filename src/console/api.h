/* api.h (console): the management API as a function of one parsed request: routing,
 * authentication (session cookie + CSRF header, or a Bearer API token), roles and scopes,
 * body validation, the handlers over the store, and the UI files. No I/O but the store's. */
#ifndef IPLOCK_CONSOLE_API_H
#define IPLOCK_CONSOLE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console/config.h"
#include "store/store.h"

struct api_req {
	const char *method;
	size_t method_len;
	const char *path;               /* without the query */
	size_t path_len;
	const char *query;              /* after '?', or NULL */
	size_t query_len;
	const char *cookie, *csrf, *auth, *ctype;   /* header values, NULL when absent */
	size_t cookie_len, csrf_len, auth_len, ctype_len;
	const char *body;
	size_t body_len;
	bool has_body;
	const char *peer;               /* client address text */
	bool tls;
};

#define API_EXTRA_MAX 1024

struct api_resp {
	int status;
	const char *ctype;
	char *body;                     /* malloc'd, or NULL */
	const unsigned char *static_body; /* an embedded file (not freed) */
	size_t body_len;
	char extra[API_EXTRA_MAX];      /* extra header lines, CRLF-terminated */
	size_t extra_len;
	char actor[STORE_USER_MAX + 16];/* who, for the access log ("" = nobody) */
};

struct api;

struct api *api_new(const struct console_config *cfg, struct store *st);
void api_free(struct api *a);
/* Answers req into resp (status, headers, body); free resp->body afterwards. */
void api_handle(struct api *a, const struct api_req *req, struct api_resp *resp);

#endif
