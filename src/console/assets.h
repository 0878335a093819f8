/* assets.h (console): the UI files, every file under src/console/ui/ embedded in the binary
 * at build time (tools/gen-assets.sh, picked up by wildcard), with their content types. */
#ifndef IPLOCK_CONSOLE_ASSETS_H
#define IPLOCK_CONSOLE_ASSETS_H

#include <stddef.h>
#include <stdint.h>

struct console_asset {
	const char *name;               /* path under ui/: "index.html", "js/app.js" */
	const unsigned char *data;
	uintptr_t len;
};

/* The file at path (without the leading '/'; "" is index.html), or NULL. */
const struct console_asset *console_asset_find(const char *path, size_t len);
/* Content type by extension (text types with charset=utf-8). */
const char *console_asset_type(const char *name);

#endif
