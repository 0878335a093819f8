/* revoke.h: revoking found keys in the local key store (src/store). */
#ifndef IPLOCK_SCAN_REVOKE_H
#define IPLOCK_SCAN_REVOKE_H

#include <stddef.h>

#include "scan/report.h"

/* For every finding whose fingerprint (SHA-256 hex of the key) is a key in the store at
 * db_path: revoke it, with an audit record naming where it was exposed, and record the outcome
 * in the finding. actor NULL = the OS user. NULL = ok, else a message in err. */
const char *scan_revoke_found(struct scan_report *r, const char *db_path, const char *actor,
			      char *err, size_t cap);

#endif
