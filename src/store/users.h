/* users.h: the proxy fleet's tables in the store (the same database as the keys): proxy users
 * with their plan, usage per user and egress address by hour, and the proxy nodes with their
 * egress addresses, health verdicts and heartbeat.
 *
 * A user row is never deleted: removal sets removed_at and moves the row to a new store
 * version, so a proxy's change feed (store_user_changed) sees it go. Every change is one
 * transaction with one audit record (key id "user:NAME", action "user.add", ...), like keys.
 * The password is stored only as the proxy's hash text ("pbkdf2-sha256$..."); a rotation keeps
 * the old hash with an expiry so both passwords work during the overlap.
 *
 * Usage is not a change: no version, no audit. Errors as in store.h (0 or -errno, the reason
 * in store_errmsg()): -ENOENT no such user, -EEXIST already exists, -EINVAL bad input. */
#ifndef IPLOCK_STORE_USERS_H
#define IPLOCK_STORE_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define STORE_USER_NAME_MAX  64     /* [A-Za-z0-9._-]{1,64}, as the proxy's [user NAME] */
#define STORE_USER_HASH_MAX  160    /* bytes of a password hash text, NUL included */
#define STORE_USER_LIST_MAX  2048   /* bytes of the allow / egress text, NUL included */
#define STORE_KEEP_OLD_MAX_S (7 * 24 * 3600)   /* longest rotation overlap */
#define STORE_ADDR_MAX       64     /* bytes of an address text, NUL included */
#define STORE_VERDICT_MAX    32

struct store_user {
	char name[STORE_USER_NAME_MAX + 1];
	char hash[STORE_USER_HASH_MAX];
	char old_hash[STORE_USER_HASH_MAX];   /* "" = none */
	int64_t old_expires;                  /* unix seconds the old hash stops; 0 = none */
	char allow[STORE_USER_LIST_MAX];      /* destination rules, space-separated; "" = any */
	char egress[STORE_USER_LIST_MAX];     /* egress addresses, space-separated; "" = global */
	int64_t req_month, bytes_month;       /* plan per calendar month (UTC); 0 = unlimited */
	int64_t max_conns;                    /* 0 = the proxy's max_conns_per_user */
	int64_t created, removed_at;          /* unix seconds; removed_at 0 = present */
	int64_t gen;                          /* store version of the last change */
};

/* Name rule shared with the proxy's [user NAME]. */
bool store_user_name_valid(const char *name);

/* NULL when the store takes u (name, hash form, list characters, plan ranges), else why not. */
const char *store_user_valid(const struct store_user *u);
/* Adds a user (name, hash, allow, egress and plan from u). A removed name may be added again. */
int store_user_add(struct store *st, const struct store_user *u, const char *actor);
/* A present user (-ENOENT for removed ones). */
int store_user_get(struct store *st, const char *name, struct store_user *out);
/* Present users by name (free()). */
int store_user_list(struct store *st, struct store_user **out, size_t *n);
/* Users (removed ones included) whose gen is above after; *max_gen = the highest seen. */
int store_user_changed(struct store *st, int64_t after, struct store_user **out, size_t *n,
		       int64_t *max_gen);
int store_user_remove(struct store *st, const char *name, const char *actor);
/* Replace the destination rules / egress pool (text as in struct store_user; "" clears). */
int store_user_set_allow(struct store *st, const char *name, const char *allow, const char *actor);
int store_user_set_egress(struct store *st, const char *name, const char *egress,
			  const char *actor);
/* New password hash; the current one keeps working keep_old_s more seconds (0 = stops now,
 * at most STORE_KEEP_OLD_MAX_S). */
int store_user_rotate(struct store *st, const char *name, const char *new_hash, int64_t keep_old_s,
		      const char *actor);
/* Plan limits; a negative value leaves that limit as it is. */
int store_user_plan(struct store *st, const char *name, int64_t req_month, int64_t bytes_month,
		    int64_t max_conns, const char *actor);
/* JSON of a user (never a hash: "old_password_expires" says whether an old one still works). */
json_t *store_user_json(const struct store_user *u);

/* ---- usage ---- */
struct store_usage {
	char user[STORE_USER_NAME_MAX + 1];
	char egress[STORE_ADDR_MAX];          /* "" when the request left from no address */
	int64_t hour;                         /* unix seconds at the start of the hour */
	int64_t requests, bytes_up, bytes_down;
};

/* Adds n records in one transaction (counts add up). */
int store_proxy_usage_add(struct store *st, const struct store_usage *recs, size_t n);
/* Per user, the sums over hours in [from, to): cb(user, requests, bytes up + down). */
int store_proxy_usage_totals(struct store *st, int64_t from, int64_t to,
			     void (*cb)(void *arg, const char *user, int64_t requests,
					int64_t bytes),
			     void *arg);
/* One user's rows in [from, to), by hour then egress (free()). */
int store_proxy_usage_get(struct store *st, const char *user, int64_t from, int64_t to,
			  struct store_usage **out, size_t *n);
/* [start, end) of the calendar month (UTC) "YYYY-MM"; NULL = ok, else why not. */
const char *store_month_parse(const char *s, int64_t *start, int64_t *end);
/* The month holding t: [start, end). */
void store_month_of(int64_t t, int64_t *start, int64_t *end);

/* "now", "0", "90s", "30m", "24h", "7d" or plain seconds -> seconds (at most
 * STORE_KEEP_OLD_MAX_S); NULL = ok, else why not. */
const char *store_duration_parse(const char *s, int64_t *secs);

/* ---- nodes ---- */
struct store_egress {
	char node[STORE_USER_NAME_MAX + 1];
	char addr[STORE_ADDR_MAX];
	bool healthy;
	char verdict[STORE_VERDICT_MAX];      /* "up", "probe failed", "unprobed", ... */
	int64_t checked;                      /* unix seconds of the verdict */
	int64_t heartbeat;                    /* the node's last heartbeat */
};

/* A node's heartbeat: its row and its egress addresses (replacing the ones it had). */
int store_node_beat(struct store *st, const char *node, int64_t started, int64_t now,
		    const struct store_egress *e, size_t n);
/* Every node's egress addresses with health and heartbeat, by node then address (free()). */
int store_egress_list(struct store *st, struct store_egress **out, size_t *n);

#endif
