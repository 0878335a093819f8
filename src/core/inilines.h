/* inilines.h: feeding libinih one line at a time from text in memory (ini_parse_stream), so
 * line numbers are exact, long lines are refused rather than silently truncated (Debian's
 * inih keeps 200 bytes), and section headers are seen in full (inih cuts them at 50 bytes). */
#ifndef IPLOCK_INILINES_H
#define IPLOCK_INILINES_H

#include <stdbool.h>
#include <stddef.h>

enum ini_line {
	INI_LINE_END = 0,       /* no more text */
	INI_LINE_OK = 1,        /* str holds the next line, NUL-terminated */
	INI_LINE_TOO_LONG = -1, /* longer than num - 3 characters (inih needs room for "\r\n\0") */
};

/* Next line of text[*pos..len) into str (num bytes, as inih's reader gets); advances *pos and
 * *lineno. *section and *section_len point into str when the line is a "[...]" header (else NULL);
 * *indented tells whether the line starts with blanks (a continuation in inih). */
enum ini_line ini_next_line(const char *text, size_t len, size_t *pos, int *lineno, char *str,
			    int num, const char **section, size_t *section_len, bool *indented);

/* Whether a value's error already names its key as a word ("relay must be ...", "password_hash:
 * bad salt", "duplicate sni host"): the caller then does not put "KEY: " in front, so the key
 * appears once. */
bool ini_err_names_key(const char *err, const char *name);

#endif
