/* fuzz_console_body.c: libFuzzer target for the console's request parsers (console/parse.h):
 * the JSON body check, the session cookie and query parameters.
 * Input: byte 0 picks the parser, then the text (for the body: a Content-Type line, '\n',
 * then the body).
 * Properties: a body is accepted only with a JSON content type, as one object no deeper than
 * CONSOLE_JSON_DEPTH, and it survives a dump and reload unchanged; a refusal always carries a
 * status, a code and a one-line message. A cookie value is found only under exactly its name,
 * is made of cookie-octets, and occurs in the header. A query value never holds a control
 * byte and is never longer than its encoded text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console/parse.h"

static size_t depth(const json_t *j)
{
	size_t d = 0, s, i;
	const char *k;
	json_t *v;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v)
			if ((s = depth(v)) > d)
				d = s;
		return d + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if ((s = depth(v)) > d)
				d = s;
		return d + 1;
	}
	return 0;
}

static void check_body(const char *d, size_t n)
{
	const char *nl = memchr(d, '\n', n);
	size_t cl = nl ? (size_t)(nl - d) : n;
	const char *body = nl ? nl + 1 : d + n;
	size_t bl = nl ? n - cl - 1 : 0;
	struct body_err err = { 0 };
	json_t *j = console_body_parse(d, cl, body, bl, &err);

	if (!j) {
		if (!err.status || !err.code || !err.message[0] || strchr(err.message, '\n'))
			abort();
		return;
	}
	if (!json_is_object(j) || depth(j) > CONSOLE_JSON_DEPTH || bl > CONSOLE_BODY_MAX ||
	    cl < 16 || strncasecmp(d, "application/json", 16))
		abort();
	char *t = json_dumps(j, JSON_COMPACT);
	json_t *again = t ? json_loads(t, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (t && (!again || !json_equal(j, again)))
		abort();
	json_decref(again);
	free(t);
	json_decref(j);
}

static void check_cookie(const char *d, size_t n)
{
	static const char name[] = "iplock_session";
	char out[128];
	long l = console_cookie_get(d, n, name, out, sizeof(out));

	if (l < 0)
		return;
	if ((size_t)l >= sizeof(out) || out[l] != '\0' || l == 0)
		abort();
	for (long i = 0; i < l; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c <= 0x20 || c == '"' || c == ',' || c == ';' || c == '\\' || c >= 0x7f)
			abort();
	}
	/* the value stands in the header right after "iplock_session" and '=' (maybe spaced) */
	bool found = false;
	for (size_t i = 0; !found && i + sizeof(name) - 1 <= n; i++) {
		if (memcmp(d + i, name, sizeof(name) - 1) || (i && d[i - 1] != ' ' && d[i - 1] != ';' &&
							      d[i - 1] != '\t'))
			continue;
		const char *p = d + i + sizeof(name) - 1, *e = d + n;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (p < e && *p == '=') {
			p++;
			while (p < e && (*p == ' ' || *p == '\t' || *p == '"'))
				p++;
			found = (size_t)(e - p) >= (size_t)l && !memcmp(p, out, (size_t)l);
		}
	}
	if (!found)
		abort();
}

static void check_query(const char *d, size_t n)
{
	char out[256];
	long l = console_query_get(d, n, "q", out, sizeof(out));

	if (l < 0)
		return;
	if ((size_t)l >= sizeof(out) || (size_t)l > n)
		abort();
	for (long i = 0; i < l; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *d = (const char *)data + 1;
	size_t n = size - 1;

	switch (data[0] % 3) {
	case 0: check_body(d, n); break;
	case 1: check_cookie(d, n); break;
	default: check_query(d, n); break;
	}
	return 0;
}
