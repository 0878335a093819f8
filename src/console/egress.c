/* egress.c (console): the fleet's egress addresses (egress.h). */
#include "console/egress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_unique(char (**v)[EGRESS_TEXT_MAX], size_t *n, const char *addr)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], addr))
			return 0;
	char (*nv)[EGRESS_TEXT_MAX] = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	snprintf(nv[(*n)++], EGRESS_TEXT_MAX, "%s", addr);
	return 0;
}

int console_egress_list(const struct console_config *cfg, struct store *st,
			char (**out)[EGRESS_TEXT_MAX], size_t *n)
{
	int rc = 0;

	(void)st;   /* the fleet's node table will be read from here */
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < cfg->n_egress && !rc; i++)
		rc = add_unique(out, n, cfg->egress[i]);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
