/* fleet.h: the proxy's users from the store (`[proxy] users_db`), their usage and quotas, and
 * this node's status in the store (docs/fleet.md).
 *
 * Users: loaded at start and kept in memory; a change feed thread (store/feed.c: PostgreSQL
 * LISTEN/NOTIFY, SQLite data_version polling) reads changed users and rebuilds the config
 * snapshot (the file's text plus a [user] block per store user, parsed by the same rules), which
 * the workers take like a reload: tunnels keep the snapshot they started with, except a
 * removed user's, which are closed. The data path never waits on the store.
 *
 * Usage: workers count requests and bytes per (user, egress address) in per-worker slots of
 * atomics (usage.c); a flush thread adds the deltas to the store about once a second (at
 * most the last unflushed second is lost on a crash), then reads the fleet's totals of the
 * month, which the quota check (admit.c) compares with the plan. Overshoot is bounded by what
 * the fleet serves a user during about two flush intervals (docs/fleet.md). */
#ifndef IPLOCK_PROXY_FLEET_H
#define IPLOCK_PROXY_FLEET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"
#include "proxy/proxy.h"
#include "proxy/usage.h"
#include "store/users.h"

#define FLEET_FLUSH_MS 1000     /* usage flush and heartbeat interval */

struct fleet;
struct session;

/* Reads the config file, opens users_db, loads its users and builds the merged config into
 * *cfg (a user both in a [user] block and in the store is an error). px->fleet is set. 0, or
 * -errno with err filled. */
int fleet_open(struct proxy *px, const char *config_path, struct proxy_config **cfg, char *err,
	       size_t errcap);
/* The merged config again: from the file read anew (SIGHUP) or from the last text read (a
 * store change). Called with px->reload_mu held. 0 or -errno with err. */
int fleet_build(struct fleet *f, bool reread, struct proxy_config **out, char *err, size_t errcap);
/* A store change: rebuild the snapshot from the store's users now (the runtime's reload, given
 * by the caller so the fleet never calls up into it). 0 or -errno with err. */
typedef int fleet_reload_fn(struct proxy *px, char *err, size_t errcap);
/* Starts the feed and flush threads (px->nworkers known). 0 or -errno. */
int fleet_start(struct fleet *f, fleet_reload_fn *reload);
/* Stops both threads after a last flush. */
void fleet_stop(struct fleet *f);
void fleet_free(struct fleet *f);
/* Users the store holds now (present ones). */
size_t fleet_store_users(const struct fleet *f);

/* ---- worker hook (worker thread) ---- */
/* A new snapshot: sessions of store users it no longer has are closed; idle keep-alive
 * connections of users whose password changed are closed (tunnels carry on). */
void fleet_snapshot(struct worker *w, const struct proxy_config *neu);

/* ---- pure helpers (tests, fuzzing) ---- */
/* NULL when allow (destination rules) and egress (addresses) follow the proxy's [user] rules,
 * else why not. */
const char *fleet_lists_check(const char *allow, const char *egress);
/* The same for a whole store user (name, password hash, max_conns too): a user that passes
 * renders into a [user] block the config parser takes (a user that fails is left out, so one
 * bad row never holds back the others). */
const char *fleet_user_check(const struct store_user *u);
/* The [user NAME] block of a store user. Returns the length, or -ENOSPC. */
long fleet_render_user(const struct store_user *u, char *out, size_t cap);

#endif
