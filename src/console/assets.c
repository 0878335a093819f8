/* assets.c (console): lookup of the embedded UI files (assets.h). */
#include "console/assets.h"

#include <string.h>
#include <strings.h>

/* the table tools/gen-assets.sh writes, ending in a zero row */
extern const struct console_asset console_assets[];

const struct console_asset *console_asset_find(const char *path, size_t len)
{
	if (len == 0) {
		path = "index.html";
		len = strlen(path);
	}
	for (const struct console_asset *a = console_assets; a->name; a++)
		if (strlen(a->name) == len && !memcmp(a->name, path, len))
			return a;
	return NULL;
}

const char *console_asset_type(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".jpg", "image/jpeg" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".map", "application/json" },
	};
	const char *dot = strrchr(name, '.');

	if (dot)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}
