/* inilines.c: one line per call for inih readers over text in memory. */
#include "core/inilines.h"

#include <string.h>

enum ini_line ini_next_line(const char *text, size_t len, size_t *pos, int *lineno, char *str,
			    int num, const char **section, size_t *section_len, bool *indented)
{
	*section = NULL;
	*section_len = 0;
	if (*pos >= len)
		return INI_LINE_END;
	const char *line = text + *pos;
	const char *nl = memchr(line, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - line) + 1 : len - *pos;
	size_t content = nl ? n - 1 : n;
	(*lineno)++;
	if (num < 4 || content > (size_t)num - 3)
		return INI_LINE_TOO_LONG;
	memcpy(str, line, n);
	str[n] = '\0';
	*pos += n;

	size_t i = (*lineno == 1 && n >= 3 && !memcmp(str, "\xEF\xBB\xBF", 3)) ? 3 : 0;   /* BOM */
	*indented = str[i] == ' ' || str[i] == '\t';
	while (str[i] == ' ' || str[i] == '\t')
		i++;
	if (str[i] == '[') {
		const char *close = strchr(str + i, ']');
		/* without ']' inih reports the syntax error on this line */
		if (close) {
			*section = str + i + 1;
			*section_len = (size_t)(close - str - i - 1);
		}
	}
	return INI_LINE_OK;
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
