/* keycache.h: the gate's in-memory copy of the key store, a hash table by SHA-256 of the key.
 * Every decision is made from memory; a key not in the table is unknown.
 *
 * SQLite: keycache_refresh() asks SQLite whether another process committed (PRAGMA
 * data_version, a few microseconds) and reloads only the keys whose change counter moved, so
 * `iplock keys` changes reach the very next request.
 * PostgreSQL: a feed thread per cache owns the connection: it LISTENs, reads the keys changed
 * since the last version it has on each notification and every resync_ms, and after a lost
 * connection reconnects with back-off, LISTENs again, then catches up by version. It builds
 * the keys (allowlist range sets included) and hands them over under a mutex;
 * keycache_refresh() links them in (one atomic load when none), so the request path never
 * waits on the database nor on building a long allowlist. Single-threaded otherwise: one cache per
 * loop. */
#ifndef IPLOCK_GATE_KEYCACHE_H
#define IPLOCK_GATE_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "store/store.h"

struct gate_key {
	struct gate_key *next;      /* hash chain */
	uint64_t h;                 /* first 64 bits of the SHA-256, the table index */
	char hash[SHA256_HEX_LEN + 1];
	char id[STORE_ID_MAX];
	char masked[SECRET_MASK_MAX];
	enum key_type type;
	enum key_mode mode;
	int64_t expires_at;         /* unix seconds, 0 = never */
	bool revoked;
	struct cidr_set *allow;     /* NULL = no allowlist (any address) */
	bool report;                /* report-only allowlist: outside it is counted, not refused */
	struct key_perm *perms;     /* restricted keys: sorted by resource */
	size_t n_perms;
};

struct keycache;

/* An empty cache with no store behind it (tests, benchmarks). */
struct keycache *keycache_new(void);
struct keycache_opts {
	unsigned resync_ms;         /* PostgreSQL: re-read without a notification (0 = 5000) */
	unsigned max_staleness_s;   /* keycache_stale() past this (0 = 300) */
};

/* A cache fed by the store at path, loaded in full now. 0 or -errno (store_errmsg(NULL)). */
int keycache_open(const char *path, struct keycache **out);
int keycache_open_opts(const char *path, const struct keycache_opts *o, struct keycache **out);

/* Freshness, for /metrics and on_stale. */
struct keycache_stats {
	int64_t version;            /* store version of the newest change applied */
	double staleness_s;         /* since the database last answered (0 for SQLite) */
	uint64_t reconnects;        /* successful reconnections after a lost connection */
	bool connected;
	const char *backend;        /* "sqlite", "postgresql", "none" */
};
void keycache_stats(const struct keycache *kc, struct keycache_stats *out);
/* True when the data is older than max_staleness (never for SQLite: the file is local). */
bool keycache_stale(const struct keycache *kc);
void keycache_free(struct keycache *kc);

/* Adds or replaces a key from its stored form. 0 or -errno. */
int keycache_put(struct keycache *kc, const struct key_info *k);

/* Reloads keys changed by other processes, at most once per min_interval_ms of now_ms.
 * Returns the number of keys reloaded, or -errno (the cache keeps its old contents). */
int keycache_refresh(struct keycache *kc, uint64_t now_ms, uint64_t min_interval_ms);

/* The key whose text is key[0..len), or NULL. Valid until the next put/refresh. Hashes with
 * the cache's own digest context, so even lookups stay on the cache's thread. */
const struct gate_key *keycache_find(const struct keycache *kc, const char *key, size_t len);
const struct gate_key *keycache_find_hash(const struct keycache *kc, const char *sha256_hex);
size_t keycache_count(const struct keycache *kc);

/* Level of permission `resource` on k (PERM_NONE when absent). */
enum perm_level gate_key_perm(const struct gate_key *k, const char *resource);

#endif
