/* test_ini.c: the one INI layer: exact line numbers, sections seen in full, duplicates,
 * long lines refused, first error wins, the FILE:LINE form, and the value parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ini.h"

struct rec {
	char log[2048];      /* "L:[section]" and "L:name=value" entries, one per line */
	bool once;           /* every key takes one value */
	const char *refuse;  /* a key name whose value is refused */
};

static void logf_(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(r->log);

	va_start(ap, fmt);
	vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
	va_end(ap);
}

static const char *on_section(struct ini *ini, void *user, const char *name, size_t len)
{
	logf_(user, "%d:[%.*s]\n", ini_line(ini), (int)len, name);
	return len == 3 && !memcmp(name, "bad", 3) ? "bad section" : NULL;
}

static const char *on_key(struct ini *ini, void *user, const char *name, const char *value)
{
	struct rec *r = user;
	const char *e;

	if (r->once && (e = ini_once(ini, name)))
		return e;
	logf_(r, "%d:%s=%s(%d)\n", ini_line(ini), name, value, ini_prev(ini));
	return r->refuse && !strcmp(r->refuse, name) ? "not this one" : NULL;
}

static const struct ini_ops ops = { .section = on_section, .key = on_key };
static const struct ini_ops ops_sec = { .section = on_section, .key = on_key, .section_in_errors = true };

static const char *run(const char *text, struct rec *r, const struct ini_ops *o, char *err, size_t cap)
{
	struct ini ini;

	ini_run(&ini, text, strlen(text), o, r);
	return ini_error(&ini, "t.ini", err, cap);
}

static void test_lines_and_sections(void **state)
{
	struct rec r = { .once = false };
	char err[300];
	(void)state;

	/* comments, blank lines and a continuation keep the numbering; a long section name whole */
	const char *text = "; c\n\n[ proxy ]\nlisten = a\n  b\n# x\n[user "
			   "a-name-longer-than-fifty-bytes-which-inih-would-cut-0123456789]\nk : v ; note\n";
	assert_null(run(text, &r, &ops, err, sizeof(err)));
	assert_string_equal(r.log, "3:[proxy]\n4:listen=a(0)\n5:listen=b(4)\n"
			    "7:[user a-name-longer-than-fifty-bytes-which-inih-would-cut-0123456789]\n8:k=v(0)\n");
	/* an indented '[' line after a key is a continuation (as inih reads it), not a header */
	memset(&r, 0, sizeof(r));
	assert_null(run("[s]\nk = 1\n  [x]\n", &r, &ops, err, sizeof(err)));
	assert_string_equal(r.log, "1:[s]\n2:k=1(0)\n3:k=[x](2)\n");
	/* a continuation keeps its key's whole name (inih cuts it to 49 bytes) and, like a first
	 * line, loses its inline comment */
	memset(&r, 0, sizeof(r));
	assert_null(run("[s]\nkey_with_a_name_longer_than_forty_nine_bytes_0123456789 = a ; one\n  b ; two\n",
			&r, &ops, err, sizeof(err)));
	assert_string_equal(r.log, "1:[s]\n2:key_with_a_name_longer_than_forty_nine_bytes_0123456789=a(0)\n"
			    "3:key_with_a_name_longer_than_forty_nine_bytes_0123456789=b(2)\n");
	/* a key is counted per section: the same name in the next one is a first again */
	memset(&r, 0, sizeof(r));
	assert_null(run("[a]\nk = 1\n[b]\nk = 2\n", &r, &ops, err, sizeof(err)));
	assert_string_equal(r.log, "1:[a]\n2:k=1(0)\n3:[b]\n4:k=2(0)\n");
}

static void test_errors(void **state)
{
	struct rec r = { .once = true };
	char err[300], longline[400];
	(void)state;

	assert_string_equal(run("[s]\nk = 1\nk = 2\n", &r, &ops, err, sizeof(err)),
			    "t.ini:3: duplicate key k (first at line 2)");
	memset(&r, 0, sizeof(r));
	r.once = true;
	assert_string_equal(run("[s]\nk = 1\n  2\n", &r, &ops, err, sizeof(err)),
			    "t.ini:3: k takes one value on one line");
	memset(&r, 0, sizeof(r));
	assert_string_equal(run("[s]\nnonsense\n", &r, &ops, err, sizeof(err)),
			    "t.ini:2: syntax error (expected [section], key = value, or a ; comment)");
	/* the error names the key once; with sections, the section goes in front */
	memset(&r, 0, sizeof(r));
	r.refuse = "k";
	assert_string_equal(run("[s]\nk = 1\n", &r, &ops, err, sizeof(err)), "t.ini:2: k: not this one");
	memset(&r, 0, sizeof(r));
	r.refuse = "k";
	assert_string_equal(run("[s]\nk = 1\n", &r, &ops_sec, err, sizeof(err)), "t.ini:2: [s] k: not this one");
	memset(&r, 0, sizeof(r));
	assert_string_equal(run("[s]\n[bad]\nk = 1\n", &r, &ops, err, sizeof(err)), "t.ini:2: bad section");
	assert_null(strstr(r.log, "k=1"));      /* nothing is read after the first error */
	/* the first error wins, even a syntax error before a handler's */
	memset(&r, 0, sizeof(r));
	r.refuse = "k";
	assert_string_equal(run("[s]\nnonsense\nk = 1\n", &r, &ops, err, sizeof(err)),
			    "t.ini:2: syntax error (expected [section], key = value, or a ; comment)");
	/* a long line is refused at its own number, never cut; one that fits is read */
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "[s]\n;\nk = ", 10);
	longline[10 + 188] = '\n';
	longline[10 + 189] = '\0';                  /* line 3: "k = " + 188 = 192 characters */
	memset(&r, 0, sizeof(r));
	assert_null(run(longline, &r, &ops, err, sizeof(err)));
	memset(longline + 10, 'x', 194);
	longline[10 + 194] = '\0';                  /* 198 characters, no newline */
	memset(&r, 0, sizeof(r));
	assert_string_equal(run(longline, &r, &ops, err, sizeof(err)),
			    "t.ini:3: line longer than 197 characters (continue long lists on indented lines)");
	/* NUL is a whole-file error */
	struct ini ini;
	memset(&r, 0, sizeof(r));
	assert_false(ini_run(&ini, "[s]\0k = 1\n", 10, &ops, &r));
	assert_string_equal(ini_error(&ini, "t.ini", err, sizeof(err)), "t.ini: NUL byte in file");
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/iplock-ini-XXXXXX", err[300], *text;
	size_t len;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[s]\nk = 1\n", 10), 10);
	close(fd);
	assert_null(ini_read_file(path, 100, &text, &len, err, sizeof(err)));
	assert_int_equal(len, 10);
	assert_string_equal(text, "[s]\nk = 1\n");
	free(text);
	assert_non_null(ini_read_file(path, 9, &text, &len, err, sizeof(err)));
	assert_non_null(strstr(err, ": file too large"));
	assert_null(text);
	unlink(path);
	assert_non_null(ini_read_file(path, 100, &text, &len, err, sizeof(err)));
	assert_non_null(strstr(err, ": No such file or directory"));
}

static void test_values(void **state)
{
	unsigned u = 7;
	bool b = false;
	(void)state;

	assert_null(ini_parse_uint("42", 1, 100, &u));
	assert_int_equal(u, 42);
	assert_string_equal(ini_parse_uint("", 1, 100, &u), "empty value");
	assert_string_equal(ini_parse_uint("-1", 1, 100, &u), "not a number");
	assert_string_equal(ini_parse_uint("042", 1, 100, &u), "leading zero");
	assert_string_equal(ini_parse_uint("101", 1, 100, &u), "must be 1-100");
	assert_string_equal(ini_parse_uint("99999999999999999999999", 1, 100, &u), "must be 1-100");
	assert_int_equal(u, 42);      /* untouched on error */

	assert_null(ini_parse_duration("10", 0, 3600000, &u));
	assert_int_equal(u, 10000);
	assert_null(ini_parse_duration("500ms", 0, 3600000, &u));
	assert_int_equal(u, 500);
	assert_null(ini_parse_duration("1.5s", 0, 3600000, &u));
	assert_int_equal(u, 1500);
	assert_null(ini_parse_duration("0.05", 0, 3600000, &u));
	assert_int_equal(u, 50);
	assert_null(ini_parse_duration("2m", 0, 3600000, &u));
	assert_int_equal(u, 120000);
	assert_null(ini_parse_duration("1h", 0, 3600000, &u));
	assert_int_equal(u, 3600000);
	assert_string_equal(ini_parse_duration("2h", 0, 3600000, &u), "must be 0ms-3600s");
	assert_string_equal(ini_parse_duration("50ms", 100, 3600000, &u), "must be 100ms-3600s");
	assert_string_equal(ini_parse_duration("05", 0, 3600000, &u), "leading zero");
	assert_string_equal(ini_parse_duration("0.0005", 0, 3600000, &u), "duration finer than 1ms");
	assert_string_equal(ini_parse_duration("99999999999", 0, 3600000, &u), "duration too long");
	for (const char *const *v = (const char *const[]){ "", "s", "1.", "1.5ms", "1x", "1 s", "-1", NULL }; *v; v++)
		assert_string_equal(ini_parse_duration(*v, 0, 3600000, &u),
				    "duration must be a number with an optional unit ms, s, m or h");

	assert_null(ini_parse_bool("Yes", &b));
	assert_true(b);
	assert_null(ini_parse_bool("off", &b));
	assert_false(b);
	assert_null(ini_parse_bool("1", &b));
	assert_true(b);
	assert_string_equal(ini_parse_bool("maybe", &b), "must be yes or no");

	assert_null(ini_parse_size("16k", 1024, 1048576, &u));
	assert_int_equal(u, 16384);
	assert_null(ini_parse_size("1M", 1024, 1048576, &u));
	assert_int_equal(u, 1048576);
	assert_null(ini_parse_size("2048", 1024, 1048576, &u));
	assert_int_equal(u, 2048);
	assert_string_equal(ini_parse_size("2m", 1024, 1048576, &u), "must be 1024-1048576");
	assert_string_equal(ini_parse_size("99999999999g", 1024, 1048576, &u), "must be 1024-1048576");
	assert_string_equal(ini_parse_size("1q", 1024, 1048576, &u), "not a number");
	assert_string_equal(ini_parse_size("k", 1024, 1048576, &u), "empty value");
}

/* The config helpers: paths relative to the file's folder, and a table of one-value keys. */
static void test_paths_and_table(void **state)
{
	struct t { unsigned n, ms; bool on, deny; int mode; char path[16]; } t = { 0 };
	static const char *const onoff[] = { "serve", "deny", NULL };
	static const char *const modes[] = { "a", "b", "c", NULL };
	static const struct ini_key keys[] = {
		{ .name = "n", .kind = INI_UINT, .off = offsetof(struct t, n), .min = 1, .max = 9,
		  .err = "n must be 1-9" },
		{ .name = "ms", .kind = INI_DURATION, .off = offsetof(struct t, ms), .max = 60000 },
		{ .name = "on", .kind = INI_BOOL, .off = offsetof(struct t, on) },
		{ .name = "deny", .kind = INI_CHOICE, .off = offsetof(struct t, deny),
		  .size = sizeof(bool), .words = onoff },
		{ .name = "mode", .kind = INI_CHOICE, .off = offsetof(struct t, mode),
		  .size = sizeof(int), .words = modes, .err = "mode must be a, b or c" },
		{ .name = "path", .kind = INI_PATH_DASH, .off = offsetof(struct t, path),
		  .size = sizeof(t.path) },
	};
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	const char *e = "unset";
	char out[32], dir[32];

	(void)state;
	ini_path_rel("/etc/x", "a.pem", false, out, sizeof(out));
	assert_string_equal(out, "/etc/x/a.pem");
	ini_path_rel("/etc/x", "/abs.pem", false, out, sizeof(out));
	assert_string_equal(out, "/abs.pem");
	ini_path_rel("/etc/x", "-", false, out, sizeof(out));
	assert_string_equal(out, "/etc/x/-");
	ini_path_rel("/etc/x", "-", true, out, sizeof(out));
	assert_string_equal(out, "-");
	ini_dir_of("/etc/x/gate.ini", dir, sizeof(dir));
	assert_string_equal(dir, "/etc/x");
	ini_dir_of("gate.ini", dir, sizeof(dir));
	assert_string_equal(dir, ".");

	assert_false(ini_table_read(keys, n, &t, "/d", "other", "1", &e));
	assert_string_equal(e, "unset");   /* not touched for a key not in the table */
	assert_true(ini_table_read(keys, n, &t, "/d", "n", "7", &e));
	assert_null(e);
	assert_int_equal(t.n, 7);
	assert_true(ini_table_read(keys, n, &t, "/d", "n", "10", &e));
	assert_string_equal(e, "n must be 1-9");
	assert_int_equal(t.n, 7);
	assert_true(ini_table_read(keys, n, &t, "/d", "ms", "1.5", &e));
	assert_null(e);
	assert_int_equal(t.ms, 1500);
	assert_true(ini_table_read(keys, n, &t, "/d", "ms", "2m", &e));
	assert_non_null(e);                /* the parser's own reason */
	assert_true(ini_table_read(keys, n, &t, "/d", "on", "yes", &e));
	assert_null(e);
	assert_true(t.on);
	assert_true(ini_table_read(keys, n, &t, "/d", "deny", "deny", &e));
	assert_null(e);
	assert_true(t.deny);
	assert_true(ini_table_read(keys, n, &t, "/d", "deny", "serve", &e));
	assert_false(t.deny);
	assert_true(ini_table_read(keys, n, &t, "/d", "mode", "c", &e));
	assert_null(e);
	assert_int_equal(t.mode, 2);
	assert_true(ini_table_read(keys, n, &t, "/d", "mode", "C", &e));
	assert_string_equal(e, "mode must be a, b or c");
	assert_int_equal(t.mode, 2);
	assert_true(ini_table_read(keys, n, &t, "/d", "path", "k.pem", &e));
	assert_null(e);
	assert_string_equal(t.path, "/d/k.pem");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_sections),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_paths_and_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
