/* egress.h (console): the proxy fleet's egress addresses, for the allowlist check. One
 * function so every source answers through it: today the static [console] egress list; the
 * fleet's store table of node egress addresses plugs in here. */
#ifndef IPLOCK_CONSOLE_EGRESS_H
#define IPLOCK_CONSOLE_EGRESS_H

#include <stddef.h>

#include "console/config.h"
#include "store/store.h"

#define EGRESS_TEXT_MAX 64

/* Every known egress address (canonical text, no duplicates) into a malloc'd array (*out,
 * free()). 0 or -errno. */
int console_egress_list(const struct console_config *cfg, struct store *st,
			char (**out)[EGRESS_TEXT_MAX], size_t *n);

#endif
