/* revoke.c: revoking found keys in the local key store, each with an audit record saying
 * where the key was exposed. Keys are looked up by their fingerprint: the store files keys
 * under the same SHA-256 hex. */
#include "scan/revoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"

static const struct scan_report *sort_report; /* qsort has no context argument */

static int cmp_fp(const void *a, const void *b)
{
	const struct scan_finding *fa = &sort_report->v[*(const size_t *)a];
	const struct scan_finding *fb = &sort_report->v[*(const size_t *)b];
	int c = strcmp(fa->fingerprint, fb->fingerprint);
	/* the first place a key was found is the one the audit record names */
	return c ? c : (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
}

const char *scan_store_open(const char *db_path, struct store **out, char *err, size_t cap)
{
	struct stat sb;
	char shown[512];

	*out = NULL;
	store_target_display(db_path, shown, sizeof(shown));
	/* opening would create an empty store: a mistyped path must not look like "no keys" */
	if (!store_is_remote(db_path) && stat(db_path, &sb) != 0) {
		snprintf(err, cap, "no key store at %s: %s", db_path, strerror(errno));
		return err;
	}
	if (store_open(db_path, out) != 0) {
		snprintf(err, cap, "cannot open the key store %s: %s", shown,
			 *out ? store_errmsg(*out) : store_errmsg(NULL));
		if (*out)
			store_close(*out);
		*out = NULL;
		return err;
	}
	return NULL;
}

enum scan_revoke scan_revoke_one(struct store *st, struct scan_finding *f, size_t places,
				 const char *who)
{
	enum scan_revoke status = SCAN_REVOKE_NONE;
	char id[STORE_ID_MAX] = "";

	/* publishable keys are public by design: nothing to revoke */
	if (scan_kind_severity(f->kind) != SCAN_SEV_INFO) {
		char reason[1024];
		snprintf(reason, sizeof(reason),
			 "leaked: found by iplock scan in %s:%llu:%llu%s%.12s (%zu place%s)",
			 f->file, (unsigned long long)f->line, (unsigned long long)f->column,
			 f->n_commits ? " commit " : "", f->n_commits ? f->commits[0].id : "",
			 places, places == 1 ? "" : "s");
		int rc = store_revoke_by_hash(st, f->fingerprint, who, reason, id, sizeof(id));
		if (rc == 0) {
			status = SCAN_REVOKE_DONE;
			fprintf(stderr, "iplock scan: revoked %s (%s), found in %s:%llu\n", id,
				f->masked, f->file, (unsigned long long)f->line);
		} else if (rc == -EALREADY) {
			status = SCAN_REVOKE_ALREADY;
		} else if (rc == -ENOENT) {
			status = SCAN_REVOKE_UNKNOWN;
		} else {
			status = SCAN_REVOKE_FAILED;
			fprintf(stderr, "iplock scan: cannot revoke %s: %s\n", f->masked,
				store_errmsg(st));
		}
	}
	f->revoke = status;
	snprintf(f->key_id, sizeof(f->key_id), "%s", id);
	return status;
}

const char *scan_revoke_found(struct scan_report *r, const char *db_path, const char *actor,
			      char *err, size_t cap)
{
	struct store *st = NULL;
	size_t *idx = NULL;
	char who[128];
	const char *res = NULL;

	if ((res = scan_store_open(db_path, &st, err, cap)))
		goto out;
	if (actor)
		snprintf(who, sizeof(who), "%s", actor);
	else
		store_actor_default(who, sizeof(who));
	idx = malloc(r->n * sizeof(*idx));
	if (!idx) {
		snprintf(err, cap, "out of memory");
		res = err;
		goto out;
	}
	for (size_t i = 0; i < r->n; i++)
		idx[i] = i;
	sort_report = r;
	qsort(idx, r->n, sizeof(*idx), cmp_fp);
	for (size_t g = 0; g < r->n;) {
		struct scan_finding *f = &r->v[idx[g]];
		size_t e = g + 1;
		while (e < r->n && !strcmp(r->v[idx[e]].fingerprint, f->fingerprint))
			e++;
		enum scan_revoke status = scan_revoke_one(st, f, e - g, who);
		if (status == SCAN_REVOKE_FAILED)
			r->errors++;
		for (size_t k = g + 1; k < e; k++) {
			r->v[idx[k]].revoke = status;
			snprintf(r->v[idx[k]].key_id, sizeof(r->v[idx[k]].key_id), "%s", f->key_id);
		}
		g = e;
	}
out:
	free(idx);
	if (st)
		store_close(st);
	return res;
}
