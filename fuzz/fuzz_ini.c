/* fuzz_ini.c: the INI layer (core/ini) on arbitrary bytes, with three properties:
 *  1. every line it reports (a header, a key, the error) lies within the text's lines;
 *  2. a line longer than inih's buffer is always refused, at or before its own number;
 *  3. what it accepts, written back as "[section]" and "name=value" lines, reads back the same
 *     (sections, names and values in order): nothing is cut, merged or invented.
 * The value parsers run on each value too: what they accept is in range. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ini.h"

#define LINE_MAX_CHARS 197      /* Debian's inih: a 200-byte buffer less "\r\n\0" */

struct item {
	bool section;
	int line;
	char *text;              /* section name, or "name\nvalue" */
};

struct recs {
	struct item *v;
	size_t n, cap;
	int maxline;
	bool oom;
};

static void add(struct recs *r, bool section, int line, const char *a, size_t alen, const char *b)
{
	if (line < 1 || line > r->maxline)
		abort();                                        /* property 1 */
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct item *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->oom = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	size_t blen = b ? strlen(b) : 0;
	char *t = malloc(alen + blen + 2);
	if (!t) {
		r->oom = true;
		return;
	}
	memcpy(t, a, alen);
	t[alen] = '\0';
	if (b) {
		t[alen] = '\n';
		memcpy(t + alen + 1, b, blen + 1);
	}
	r->v[r->n++] = (struct item){ section, line, t };
}

static const char *on_section(struct ini *ini, void *user, const char *name, size_t len)
{
	add(user, true, ini_line(ini), name, len, NULL);
	return NULL;
}

static const char *on_key(struct ini *ini, void *user, const char *name, const char *value)
{
	unsigned u;
	bool b;

	if (ini_prev(ini) < 0 || ini_prev(ini) >= ini_line(ini))
		abort();                      /* an earlier occurrence is on an earlier line */
	if (!ini_parse_uint(value, 5, 500, &u) && (u < 5 || u > 500))
		abort();
	if (!ini_parse_duration(value, 100, 86400000, &u) && (u < 100 || u > 86400000))
		abort();
	if (!ini_parse_size(value, 1024, 1u << 30, &u) && (u < 1024 || u > 1u << 30))
		abort();
	ini_parse_bool(value, &b);
	add(user, false, ini_line(ini), name, strlen(name), value);
	return NULL;
}

static const struct ini_ops ops = { .section = on_section, .key = on_key };

static void recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].text);
	free(r->v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recs a = { 0 }, b = { 0 };
	struct ini ini;
	char err[INI_ERR_MAX + 64];
	int lines = 0, longline = 0, cur = 0;

	if (size > 65536)
		return 0;
	for (size_t i = 0; i < size; i++) {
		if (cur == 0 && i < size)
			lines++;
		if (data[i] == '\n') {
			cur = 0;
			continue;
		}
		if (++cur > LINE_MAX_CHARS && !longline)
			longline = lines;
	}
	a.maxline = lines;
	bool ok = ini_run(&ini, (const char *)data, size, &ops, &a);
	if (ini.errline > lines || ini.errline < -1 || (!ok && ini.errline == 0))
		abort();                                        /* property 1 */
	if (!ok && !ini_error(&ini, "f.ini", err, sizeof(err)))
		abort();
	if (longline && !memchr(data, '\0', size) && (ok || ini.errline > longline))
		abort();                                        /* property 2 */
	if (!ok || a.oom)
		goto out;

	/* property 3: write it back and read it again */
	size_t cap = 16;
	for (size_t i = 0; i < a.n; i++)
		cap += strlen(a.v[i].text) + 8;
	char *text = malloc(cap), *p = text;
	if (!text)
		goto out;
	p += sprintf(p, ";\n");       /* line 1 is never a key: a BOM-like name stays a name */
	bool fits = true;
	for (size_t i = 0; i < a.n; i++) {
		char *start = p;
		if (a.v[i].section)
			p += sprintf(p, "[%s]\n", a.v[i].text);
		else {
			char *nl = strchr(a.v[i].text, '\n');
			p += sprintf(p, "%.*s=%s\n", (int)(nl - a.v[i].text), a.v[i].text, nl + 1);
		}
		fits &= p - start - 1 <= LINE_MAX_CHARS;   /* a continuation joined may be longer */
	}
	if (fits) {
		b.maxline = (int)a.n + 1;
		if (!ini_run(&ini, text, (size_t)(p - text), &ops, &b) || b.n != a.n)
			abort();
		for (size_t i = 0; i < a.n; i++)
			if (a.v[i].section != b.v[i].section || strcmp(a.v[i].text, b.v[i].text))
				abort();
	}
	free(text);
out:
	recs_free(&a);
	recs_free(&b);
	return 0;
}
