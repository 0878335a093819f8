/* ini.h: the one INI layer every config is read with (proxy, gate, tunnel; keys reads the
 * gate's through the gate's loader). It owns what all of them share: libinih fed one line at a
 * time from text in memory (ini_parse_stream) so line numbers are exact, long lines refused
 * rather than silently cut (Debian's inih keeps 197 characters), section headers seen in full
 * (inih cuts them at 50 bytes and reports none), duplicate-key detection per section,
 * "FILE:LINE: reason" errors where the first error wins, and the value parsers (unsigned
 * numbers, durations, yes/no, sizes) with one-line errors. The configs own their keys.
 * May include: libc and libinih only (core is the lowest layer). */
#ifndef IPLOCK_INI_H
#define IPLOCK_INI_H

#include <stdbool.h>
#include <stddef.h>

#define INI_ERR_MAX     256     /* one reason, before "FILE:LINE: " */
#define INI_SECTION_MAX 128     /* longer section names are kept cut (the configs refuse them) */
#define INI_SEEN_MAX    64      /* distinct keys tracked per section for duplicates */
#define INI_NAME_MAX    200     /* a name on one line is shorter */

struct ini;

struct ini_ops {
	/* "[NAME]" header, blanks around NAME trimmed: an error for its line, or NULL */
	const char *(*section)(struct ini *ini, void *user, const char *name, size_t len);
	/* "name = value" (or an indented continuation of it): an error for its line, or NULL.
	 * An error that does not name the key as a word gets "name: " in front. */
	const char *(*key)(struct ini *ini, void *user, const char *name, const char *value);
	/* errors of keys read "[SECTION] name: reason" (the gate's form) */
	bool section_in_errors;
};

struct ini {
	const struct ini_ops *ops;
	void *user;
	const char *text;
	size_t pos, len;
	int lineno;                         /* of the line being handled */
	bool indented;                      /* that line is a continuation */
	bool have_key;                      /* a key was seen since the last header (inih's prev_name) */
	bool cont;                          /* this line continues that key */
	char key[256];                      /* its whole name: inih gives continuations 49 bytes */
	char val[256];                      /* a continuation's value without its " ; comment" */
	int prev;                           /* earlier line of the key being handled, 0 if first */
	int errline;                        /* 0 none yet; -1 a whole-file error */
	char err[INI_ERR_MAX];
	char msg[INI_ERR_MAX];              /* room for ini_once's text */
	char section[INI_SECTION_MAX];      /* "" before the first header */
	struct { char name[INI_NAME_MAX]; int line; } seen[INI_SEEN_MAX];
	size_t nseen;
};

/* Reads text[0..len) through ops; cross-key checks may follow with ini_fail. False on error. */
bool ini_run(struct ini *ini, const char *text, size_t len, const struct ini_ops *ops, void *user);

/* Records the first error only; line -1 for an error of the whole file. */
void ini_fail(struct ini *ini, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline bool ini_failed(const struct ini *ini) { return ini->errline != 0; }
static inline int ini_line(const struct ini *ini) { return ini->lineno; }
/* The line where the key now handled first appeared in this section, 0 if this is the first. */
static inline int ini_prev(const struct ini *ini) { return ini->prev; }

/* For a key that takes one value: NULL the first time, else "duplicate key NAME (first at line
 * N)" or, on an indented continuation, "NAME takes one value on one line". */
const char *ini_once(struct ini *ini, const char *name);

/* "FILE:LINE: reason" (or "FILE: reason") into err and returns it; NULL when there was none. */
const char *ini_error(const struct ini *ini, const char *file, char *err, size_t cap);

/* Reads a whole config file (at most max bytes) into a malloc'd NUL-terminated *text.
 * Errors: "PATH: strerror", "PATH: file too large", "PATH: read error", "PATH: out of memory". */
const char *ini_read_file(const char *path, size_t max, char **text, size_t *len, char *err, size_t cap);

/* Whether an error already names its key as a word ("relay must be ...", "password_hash: bad
 * salt"): then no "KEY: " goes in front, so the key appears once. */
bool ini_err_names_key(const char *err, const char *name);

/* The folder of a config file (dirname of path) into dir, for the paths it names. */
void ini_dir_of(const char *path, char *dir, size_t cap);
/* A path a config names: absolute (or "-" when dash is true: stdin/stdout) as written, else
 * relative to dir, the config file's folder. */
void ini_path_rel(const char *dir, const char *v, bool dash, char *out, size_t cap);

/* A key whose whole handling is reading one value into a field of a config struct: the
 * configs list these in a table (ini_table_read) instead of spelling out each. */
enum ini_kind {
	INI_UINT,               /* ini_parse_uint(min, max) into an unsigned */
	INI_DURATION,           /* ini_parse_duration(min, max ms) into an unsigned */
	INI_BOOL,               /* ini_parse_bool into a bool */
	INI_PATH,               /* ini_path_rel into a char[size] */
	INI_PATH_DASH,          /* the same, "-" taken as written */
	INI_CHOICE,             /* one of words: its index into a bool (2 words) or an enum */
};
struct ini_key {
	const char *name;
	enum ini_kind kind;
	size_t off, size;       /* the field: offsetof and sizeof */
	unsigned long min, max;
	const char *err;        /* a bad value's error, naming the key; NULL: the parser's own */
	const char *const *words;       /* INI_CHOICE: the values, NULL-terminated */
};
/* When name is in keys[0..n): reads v into that field of base (dir: the config file's folder)
 * and returns true with *err NULL or the key's error. False when name is not in the table. */
bool ini_table_read(const struct ini_key *keys, size_t n, void *base, const char *dir,
		    const char *name, const char *v, const char **err);

/* "[KIND NAME]": true when the header s[0..len) (trimmed, as the section callback gets it) is
 * KIND, blanks, then a name; *name and *nlen point at the name. */
bool ini_section_named(const char *s, size_t len, const char *kind, const char **name, size_t *nlen);

/* A section's name: 1-INI_SECTION_NAME_MAX of A-Z a-z 0-9 . _ - (users, tunnels, inbounds). */
#define INI_SECTION_NAME_MAX 64
bool ini_name_valid(const char *name, size_t len);

/* ---- value parsers: NULL on success, else a one-line reason without the key's name */

/* Decimal, no sign, no leading zero: "empty value", "not a number", "leading zero", "must be MIN-MAX". */
const char *ini_parse_uint(const char *v, unsigned long min, unsigned long max, unsigned *out);
/* "10" or "10s" seconds, "1.5" or "1.5s" (at most 3 decimals), "500ms", "5m", "1h", to ms;
 * out of range: "must be MINms-MAXs". */
const char *ini_parse_duration(const char *v, unsigned long min_ms, unsigned long max_ms, unsigned *out);
/* yes/no, true/false, on/off, 1/0, any case: "must be yes or no". */
const char *ini_parse_bool(const char *v, bool *out);
/* bytes: "16384", "16k", "1m", "1g" (powers of 1024, any case); range as ini_parse_uint. */
const char *ini_parse_size(const char *v, unsigned long min, unsigned long max, unsigned *out);

#endif
