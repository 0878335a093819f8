/* clierr.c: one way for the subcommands to print an error line (formatted, keys masked) and a
 * JSON document. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/secret.h"

void cli_errorf(const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* errors quote arguments and config values: a key typed in the wrong place is masked */
	size_t len = secret_redact(line, strnlen(line, sizeof(line)));
	fwrite(line, 1, len, stderr);
}

int cli_fail(const char *cmd, int status, const char *msg, const char *arg)
{
	cli_errorf("iplock %s: %s%s%s\n", cmd, msg, arg ? ": " : "", arg ? arg : "");
	return status;
}

void cli_json_print(const json_t *j, size_t flags)
{
	char *t = json_dumps(j, flags);

	if (t)
		printf("%s\n", t);
	free(t);
}
