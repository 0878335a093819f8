/* revoke.h: revoking found keys in the local key store (src/store). */
#ifndef IPLOCK_SCAN_REVOKE_H
#define IPLOCK_SCAN_REVOKE_H

#include <stddef.h>

#include "scan/report.h"

struct store;

/* Opens an existing key store (never creates one: a mistyped path is an error). NULL = ok. */
const char *scan_store_open(const char *db_path, struct store **out, char *err, size_t cap);

/* Revokes the key of one finding in an open store (--follow revokes each key as it is found);
 * places is how many places it was found in, for the audit reason. Records the outcome in f. */
enum scan_revoke scan_revoke_one(struct store *st, struct scan_finding *f, size_t places,
				 const char *who);

/* For every finding whose fingerprint (SHA-256 hex of the key) is a key in the store at
 * db_path: revoke it, with an audit record naming where it was exposed, and record the outcome
 * in the finding. actor NULL = the OS user. NULL = ok, else a message in err. */
const char *scan_revoke_found(struct scan_report *r, const char *db_path, const char *actor,
			      char *err, size_t cap);

#endif
