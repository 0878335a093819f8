/* egress.c (console): the fleet's egress addresses (egress.h). */
#include "console/egress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/users.h"

/* a node silent for longer is taken as gone from the fleet */
#define EGRESS_NODE_KEEP_S (7 * 86400)

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

	struct store_egress *nodes = NULL;
	size_t nn = 0;
	int64_t since = (int64_t)time(NULL) - EGRESS_NODE_KEEP_S;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < cfg->n_egress && !rc; i++)
		rc = add_unique(out, n, cfg->egress[i]);
	/* and every address a proxy node of the fleet recorded in the store (users_db), healthy
	 * or not: a node that was up this week may carry traffic again at any moment */
	if (!rc && st && !(rc = store_egress_list(st, &nodes, &nn)))
		for (size_t i = 0; i < nn && !rc; i++)
			if (nodes[i].heartbeat >= since)
				rc = add_unique(out, n, nodes[i].addr);
	free(nodes);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
