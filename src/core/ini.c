/* ini.c: libinih over text in memory, one line per read so every line number is exact, plus
 * the duplicate bookkeeping, error form and value parsers the configs share. */
#include "core/ini.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ini_fail(struct ini *ini, int line, const char *fmt, ...)
{
	va_list ap;

	if (ini->errline)
		return;          /* the first error is the one to report */
	va_start(ap, fmt);
	vsnprintf(ini->err, sizeof(ini->err), fmt, ap);
	va_end(ap);
	ini->errline = line ? line : -1;
}

static void begin_section(struct ini *ini, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	size_t keep = len < sizeof(ini->section) ? len : sizeof(ini->section) - 1;
	memcpy(ini->section, s, keep);
	ini->section[keep] = '\0';
	ini->nseen = 0;
	ini->have_key = false;
	const char *err = ini->ops->section ? ini->ops->section(ini, ini->user, s, len) : NULL;
	if (err)
		ini_fail(ini, ini->lineno, "%s", err);
}

/* fgets for inih: the next line into str (num bytes); a line that does not fit is an error
 * here, where inih would split it and read the rest as a line of its own. */
static char *reader(char *str, int num, void *stream)
{
	struct ini *ini = stream;

	if (ini->errline || ini->pos >= ini->len)
		return NULL;
	const char *line = ini->text + ini->pos;
	const char *nl = memchr(line, '\n', ini->len - ini->pos);
	size_t n = nl ? (size_t)(nl - line) + 1 : ini->len - ini->pos;
	size_t content = nl ? n - 1 : n;
	ini->lineno++;
	if (num < 4 || content > (size_t)num - 3) {   /* inih needs room for "\r\n\0" */
		ini_fail(ini, ini->lineno, "line longer than %d characters (continue long lists on "
			 "indented lines)", num < 3 ? 0 : num - 3);
		return NULL;
	}
	memcpy(str, line, n);
	str[n] = '\0';
	ini->pos += n;

	size_t i = (ini->lineno == 1 && n >= 3 && !memcmp(str, "\xEF\xBB\xBF", 3)) ? 3 : 0;   /* BOM */
	/* inih's lskip: any isspace() byte (a stray '\r' too) makes the line a continuation */
	ini->indented = str[i] != '\n' && isspace((unsigned char)str[i]);
	ini->cont = ini->indented && ini->have_key;
	while (str[i] && isspace((unsigned char)str[i]))
		i++;
	/* inih reads an indented line after a key as a continuation, whatever it starts with; a
	 * '[' line without ']' is its syntax error */
	if (str[i] == '[' && !ini->cont) {
		const char *close = strchr(str + i, ']');
		if (close)
			begin_section(ini, str + i + 1, (size_t)(close - str - i - 1));
	}
	return str;
}

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool ini_err_names_key(const char *err, const char *name)
{
	size_t n = strlen(name);

	if (!n)
		return false;
	for (const char *p = strstr(err, name); p; p = strstr(p + 1, name))
		if ((p == err || !ident_char(p[-1])) && !ident_char(p[n]))
			return true;
	return false;
}

static void note_key(struct ini *ini, const char *name)
{
	ini->prev = 0;
	for (size_t i = 0; i < ini->nseen; i++)
		if (!strcmp(ini->seen[i].name, name)) {
			ini->prev = ini->seen[i].line;
			return;
		}
	if (ini->nseen < INI_SEEN_MAX && strlen(name) < INI_NAME_MAX) {
		memcpy(ini->seen[ini->nseen].name, name, strlen(name) + 1);
		ini->seen[ini->nseen++].line = ini->lineno;
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini *ini = user;
	(void)section;   /* ours comes from the reader: inih cuts long section names */

	if (ini->errline)
		return 1;
	size_t n = strlen(name);
	if (ini->cont && n < sizeof(ini->key) && !strncmp(ini->key, name, n))
		name = ini->key;                 /* the name in full, not inih's cut copy */
	else if (n < sizeof(ini->key))
		memcpy(ini->key, name, n + 1);
	else
		ini->key[0] = '\0';
	if (ini->cont && strlen(value) < sizeof(ini->val)) {
		/* inih keeps inline comments on continuation lines; a first line loses them */
		char *v = memcpy(ini->val, value, strlen(value) + 1);
		for (char *c = v; *c; c++)
			if (c > v && *c == ';' && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		for (size_t k = strlen(v); k && isspace((unsigned char)v[k - 1]); k--)
			v[k - 1] = '\0';
		value = v;
	}
	ini->have_key = true;
	note_key(ini, name);
	const char *err = ini->ops->key(ini, ini->user, name, value);
	if (!err)
		return 1;
	bool named = ini_err_names_key(err, name);
	if (ini->ops->section_in_errors)
		ini_fail(ini, ini->lineno, "[%s] %s%s%s", ini->section, named ? "" : name,
			 named ? "" : ": ", err);
	else
		ini_fail(ini, ini->lineno, "%s%s%s", named ? "" : name, named ? "" : ": ", err);
	return 1;
}

bool ini_run(struct ini *ini, const char *text, size_t len, const struct ini_ops *ops, void *user)
{
	memset(ini, 0, sizeof(*ini));
	ini->ops = ops;
	ini->user = user;
	ini->text = text;
	ini->len = len;
	if (memchr(text, '\0', len)) {
		ini_fail(ini, -1, "NUL byte in file");
		return false;
	}
	int rc = ini_parse_stream(reader, ini, handler, ini);
	if (rc > 0 && (!ini->errline || rc < ini->errline)) {
		ini->errline = 0;
		ini_fail(ini, rc, "syntax error (expected [section], key = value, or a ; comment)");
	} else if (rc < 0) {
		ini_fail(ini, -1, "out of memory");
	}
	return !ini->errline;
}

const char *ini_once(struct ini *ini, const char *name)
{
	if (!ini->prev)
		return NULL;
	if (ini->indented)
		snprintf(ini->msg, sizeof(ini->msg), "%s takes one value on one line", name);
	else
		snprintf(ini->msg, sizeof(ini->msg), "duplicate key %s (first at line %d)", name, ini->prev);
	return ini->msg;
}

const char *ini_error(const struct ini *ini, const char *file, char *err, size_t cap)
{
	if (!ini->errline)
		return NULL;
	if (ini->errline > 0)
		snprintf(err, cap, "%s:%d: %s", file, ini->errline, ini->err);
	else
		snprintf(err, cap, "%s: %s", file, ini->err);
	return err;
}

const char *ini_read_file(const char *path, size_t max, char **text, size_t *len, char *err, size_t cap)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	const char *result = err;

	*text = NULL;
	*len = 0;
	if (!f) {
		snprintf(err, cap, "%s: %s", path, strerror(errno));
		return err;
	}
	if (!(buf = malloc(max + 1))) {
		snprintf(err, cap, "%s: out of memory", path);
		goto out;
	}
	size_t n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		snprintf(err, cap, "%s: read error", path);
		goto out;
	}
	if (n > max) {
		snprintf(err, cap, "%s: file too large", path);
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
	result = NULL;
out:
	free(buf);
	fclose(f);
	return result;
}

void ini_dir_of(const char *path, char *dir, size_t cap)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);  /* dirname may write into its argument */
	snprintf(dir, cap, "%s", dirname(tmp));
}

void ini_path_rel(const char *dir, const char *v, bool dash, char *out, size_t cap)
{
	if (v[0] == '/' || (dash && !strcmp(v, "-")))
		snprintf(out, cap, "%s", v);
	else
		snprintf(out, cap, "%s/%s", dir, v);
}

static const char *choice(const struct ini_key *k, const char *v, void *f)
{
	for (int i = 0; k->words[i]; i++) {
		if (strcmp(v, k->words[i]))
			continue;
		if (k->size == sizeof(bool))
			*(bool *)f = i != 0;
		else
			memcpy(f, &i, sizeof(i));   /* an enum field the size of an int */
		return NULL;
	}
	return "not one of the values it takes";
}

bool ini_table_read(const struct ini_key *keys, size_t n, void *base, const char *dir,
		    const char *name, const char *v, const char **err)
{
	for (size_t i = 0; i < n; i++) {
		const struct ini_key *k = &keys[i];
		void *f = (char *)base + k->off;
		const char *e = NULL;

		if (strcmp(k->name, name))
			continue;
		switch (k->kind) {
		case INI_UINT: e = ini_parse_uint(v, k->min, k->max, f); break;
		case INI_DURATION: e = ini_parse_duration(v, k->min, k->max, f); break;
		case INI_BOOL: e = ini_parse_bool(v, f); break;
		case INI_PATH:
		case INI_PATH_DASH: ini_path_rel(dir, v, k->kind == INI_PATH_DASH, f, k->size); break;
		case INI_CHOICE: e = choice(k, v, f); break;
		}
		*err = e && k->err ? k->err : e;
		return true;
	}
	return false;
}

bool ini_section_named(const char *s, size_t len, const char *kind, const char **name, size_t *nlen)
{
	size_t k = strlen(kind);

	if (len <= k + 1 || memcmp(s, kind, k) || (s[k] != ' ' && s[k] != '\t'))
		return false;
	*name = s + k + 1;
	*nlen = len - k - 1;
	while (*nlen && (**name == ' ' || **name == '\t'))
		(*name)++, (*nlen)--;
	return true;
}

bool ini_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > INI_SECTION_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------- values */

const char *ini_parse_uint(const char *v, unsigned long min, unsigned long max, unsigned *out)
{
	static _Thread_local char msg[96];
	unsigned long x = 0;

	if (!*v)
		return "empty value";
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return "not a number";
		if (x > 100000000000UL)
			break;   /* already out of any range; the rest is still checked for digits */
		x = x * 10 + (unsigned long)(*p - '0');
	}
	if (v[0] == '0' && v[1])
		return "leading zero";
	if (x < min || x > max) {
		snprintf(msg, sizeof(msg), "must be %lu-%lu", min, max);
		return msg;
	}
	*out = (unsigned)x;
	return NULL;
}

const char *ini_parse_duration(const char *v, unsigned long min_ms, unsigned long max_ms, unsigned *out)
{
	static const char bad[] = "duration must be a number with an optional unit ms, s, m or h";
	static _Thread_local char msg[96];
	unsigned long x = 0, frac = 0, mult;
	const char *p = v;

	if (*p < '0' || *p > '9')
		return bad;
	while (*p >= '0' && *p <= '9') {
		if (x > 100000000UL)
			return "duration too long";
		x = x * 10 + (unsigned long)(*p++ - '0');
	}
	if (v[0] == '0' && p - v > 1)
		return "leading zero";
	bool has_frac = *p == '.';
	if (has_frac) {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (unsigned long)(*p - '0');
		if (!digits)
			return bad;
		if (digits > 3)
			return "duration finer than 1ms";
		for (; digits < 3; digits++)
			frac *= 10;          /* thousandths of the unit */
	}
	if (!strcmp(p, "ms") && !has_frac)
		mult = 1;
	else if (!strcmp(p, "s") || !*p)
		mult = 1000;
	else if (!strcmp(p, "m"))
		mult = 60000;
	else if (!strcmp(p, "h"))
		mult = 3600000;
	else
		return bad;
	x = x * mult + frac * mult / 1000;
	if (x < min_ms || x > max_ms) {
		snprintf(msg, sizeof(msg), "must be %lums-%lus", min_ms, max_ms / 1000);
		return msg;
	}
	*out = (unsigned)x;
	return NULL;
}

const char *ini_parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return "must be yes or no";
	return NULL;
}

const char *ini_parse_size(const char *v, unsigned long min, unsigned long max, unsigned *out)
{
	char num[24];
	size_t n = strlen(v);
	unsigned long shift = 0;

	if (n && strchr("kKmMgG", v[n - 1])) {
		char u = v[n - 1];
		shift = u == 'k' || u == 'K' ? 10 : u == 'm' || u == 'M' ? 20 : 30;
		n--;
	}
	if (n >= sizeof(num))
		return "not a number";
	memcpy(num, v, n);
	num[n] = '\0';
	unsigned x;
	/* the number itself, unbounded here: the range applies to the bytes */
	const char *err = ini_parse_uint(num, 0, 4294967295UL, &x);
	bool over = err && !strncmp(err, "must be", 7);
	if (err && !over)
		return err;
	unsigned long bytes = over ? 0 : (unsigned long)x << shift;
	if (over || bytes < min || bytes > max) {
		static _Thread_local char msg[96];
		snprintf(msg, sizeof(msg), "must be %lu-%lu", min, max);
		return msg;
	}
	*out = (unsigned)bytes;
	return NULL;
}
