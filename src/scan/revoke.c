/* revoke.c: placeholder until the key store (src/store) lands on main. */
#include "scan/revoke.h"

#include <stdio.h>

const char *scan_revoke_found(struct scan_report *r, const char *db_path, const char *actor,
			      char *err, size_t cap)
{
	(void)r;
	(void)db_path;
	(void)actor;
	snprintf(err, cap, "--revoke: this build has no key store yet");
	return err;
}
