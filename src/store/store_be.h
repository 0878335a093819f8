/* store_be.h: what a store backend provides to store.c (internal to src/store), and the helpers
 * store.c gives the backends (their functions are defined in store.c).
 *
 * store.c holds every rule (validation, error texts, audit records, transactions); a backend
 * only runs the primitive reads and writes below on its database. Every primitive returns 0
 * or -errno with st->err set through store_fail(); key_row()'s -ENOENT sets nothing. */
#ifndef IPLOCK_STORE_BE_H
#define IPLOCK_STORE_BE_H

#include <stdio.h>

#include "store/store.h"

/* Both backends write this schema version (their migration lists have this many entries). */
#define STORE_SCHEMA_VERSION 4

enum store_time_col {
	STORE_COL_EXPIRES = 0,  /* keys.expires_at */
	STORE_COL_REVOKED,      /* keys.revoked_at */
};

/* Rows of a generic statement as text: cell (i, j) is v[i * ncol + j], NULL for SQL NULL. */
struct store_rows {
	size_t n, ncol;
	char **v;
};
void store_rows_free(struct store_rows *r);
static inline const char *store_cell(const struct store_rows *r, size_t i, size_t j)
{
	return r->v[i * r->ncol + j];
}

/* A text cell (NULL = SQL NULL, copied as "") into a capped buffer. */
static inline void store_text_copy(char *dst, size_t cap, const char *v)
{
	snprintf(dst, cap, "%s", v ? v : "");
}

struct store_ops {
	const char *name;                       /* "sqlite", "postgresql" */
	int (*open)(struct store *st, const char *target);
	void (*close)(struct store *st);
	/* a write transaction; writers are serialised from here to commit/rollback */
	int (*begin)(struct store *st);
	int (*commit)(struct store *st);
	void (*rollback)(struct store *st);
	/* a read snapshot over several statements */
	int (*read_begin)(struct store *st);
	void (*read_end)(struct store *st);
	/* one key row (no children); by_hash selects the column; -ENOENT when absent */
	int (*key_row)(struct store *st, bool by_hash, const char *arg, struct key_info *out);
	/* key rows, no children: all (oldest first) when after < 0, else gen > after by gen */
	int (*key_rows)(struct store *st, int64_t after, struct key_info **out, size_t *n);
	/* optional: key_rows() with children, in one statement (one snapshot, one round trip) */
	int (*key_rows_full)(struct store *st, int64_t after, struct key_info **out, size_t *n);
	/* allowlist and permissions of k->id appended to k */
	int (*children)(struct store *st, struct key_info *k);
	/* a new key row (id, hash, masked, type, mode, name, created, rotated_from) */
	int (*key_insert)(struct store *st, const struct key_info *k);
	int (*allow_add)(struct store *st, const char *id, const char *entry);
	/* optional: n canonical entries in one statement */
	int (*allow_add_many)(struct store *st, const char *id, const char *const *entries,
			      size_t n);
	/* *removed says whether a row went */
	int (*allow_del)(struct store *st, const char *id, const char *entry, bool *removed);
	int (*allow_clear)(struct store *st, const char *id);
	/* PERM_NONE deletes the row */
	int (*perm_set)(struct store *st, const char *id, const char *resource,
			enum perm_level level);
	/* moves key id to a fresh store version (gen), higher than every earlier one */
	int (*bump)(struct store *st, const char *id);
	int (*set_time)(struct store *st, const char *id, enum store_time_col col, int64_t t);
	int (*audit_add)(struct store *st, int64_t time, const char *actor, const char *id,
			 const char *action, const char *before, const char *after,
			 const char *reason);
	int (*audit_each)(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
			  void *arg);
	int (*data_version)(struct store *st, int64_t *out);
	/* usage: one transaction for the batch, the prune included */
	int (*usage_write)(struct store *st, const struct usage_rec *r, size_t n,
			   int64_t prune_before);
	int (*usage_get)(struct store *st, const char *key_id, int64_t *last_used,
			 char *last_client, size_t cap, struct usage_rec **hours, size_t *n);
	/* one statement with text parameters $1..$np (NULL = SQL NULL), the same SQL on both
	 * backends; rows (may be NULL for a command) receives every row as text */
	int (*sql)(struct store *st, const char *sql, const char *const *p, size_t np,
		   struct store_rows *rows);
	/* change feed (NULL: the backend has none) */
	int (*listen)(struct store *st);
	int (*wait_change)(struct store *st, int timeout_ms, int64_t *version);
	int (*reconnect)(struct store *st);
	/* proxy fleet: a fresh store version inside a write transaction, announced at commit
	 * (NULL: the backend has no shared version; users.c counts its own) */
	int (*version_next)(struct store *st, int64_t *v);
};

struct store {
	const struct store_ops *ops;
	void *be;                               /* the backend's connection state */
	char err[256];
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

int store_fail(struct store *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Runs rollback (the backend's own or ops->rollback) keeping the error that caused it. */
void store_rollback_keep(struct store *st, void (*rollback)(struct store *st));
/* The migration loop of both backends, inside the caller's transaction: from version, each
 * step of steps then set_version(version + 1), up to STORE_SCHEMA_VERSION; a newer database
 * is refused. */
int store_migrate_steps(struct store *st, int version, const char *const *steps,
			int (*run)(struct store *st, const char *sql),
			int (*set_version)(struct store *st, int version));

/* store.c's transaction and change helpers, for store_console.c and users.c: tx_end rolls back when rc
 * is non-zero (keeping the error) and returns rc or the commit's error. */
int store_tx_begin(struct store *st);
int store_tx_end(struct store *st, int rc);
/* One change of a live (not revoked) key: inside one transaction loads it, runs apply() on
 * it, then bumps its version and writes the audit record (action, reason); any error rolls
 * everything back. */
typedef int (*store_key_apply_fn)(struct store *st, const struct key_info *before,
				  const void *arg);
int store_key_change(struct store *st, const char *id, const char *action, const char *actor,
		     const char *reason, store_key_apply_fn apply, const void *arg);
/* Publishable keys are made to be public: adding an allowlist to one is refused. */
int store_allow_permitted(struct store *st, const struct key_info *k, bool adds);
/* An audit record with JSON texts given as they are (users, tokens). */
int store_audit_text(struct store *st, const char *actor, const char *key_id, const char *action,
		     const char *before, const char *after, const char *reason);

#endif
