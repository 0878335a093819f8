/* store.h: the API-key store, on SQLite (a file path: WAL, prepared statements) or on
 * PostgreSQL (a libpq connection URI "postgresql://..." or a "key=value ..." string; the
 * password comes from PGPASSFILE/PGPASSWORD or the string, and store_target_display() masks
 * it). Both have a versioned schema and refuse a database newer than the binary.
 *
 * A key is kept only as the SHA-256 hex of its full text plus a masked display form
 * (prefix + last 4); the full key exists once, in the caller's buffer at create/rotate.
 * Every change writes an audit record (time, actor, key id, action, before/after JSON).
 *
 * Key formats (prefixes, parsing a presented key, generation) are in store/keyfmt.h.
 *
 * Errors: functions return 0 or -errno; store_errmsg() then holds a one-line reason fit for a
 * user (-ENOENT unknown key, -EINVAL bad input, -EPERM operation not allowed for this key type,
 * -EALREADY already revoked, -EIO database error). A failed call changes nothing. */
#ifndef IPLOCK_STORE_H
#define IPLOCK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/secret.h"
#include "store/keyfmt.h"

#define STORE_NAME_MAX    200  /* bytes of a key's name, NUL excluded */
#define STORE_ENTRY_MAX   63   /* bytes of an allowlist entry text (an address or CIDR) */
#define STORE_EXPIRE_MAX_S (7 * 24 * 3600) /* longest grace period of a rotated-out key */

struct key_perm {
	char resource[STORE_RESOURCE_MAX + 1];
	enum perm_level level;
};

/* One key as stored. Arrays are heap-owned: release with store_key_clear(). */
struct key_info {
	char id[STORE_ID_MAX];
	char hash[SHA256_HEX_LEN + 1];
	char masked[SECRET_MASK_MAX];
	enum key_type type;
	enum key_mode mode;
	char name[STORE_NAME_MAX + 1];
	int64_t created;        /* unix seconds */
	int64_t expires_at;     /* unix seconds; 0 = never */
	int64_t revoked_at;     /* unix seconds; 0 = not revoked */
	char rotated_from[STORE_ID_MAX]; /* "" when not made by rotation */
	int64_t gen;            /* change counter: bumped by every change of this key */
	char *note;             /* free text, NULL when empty (heap-owned) */
	bool allow_report;      /* report-only: outside the allowlist is counted, not refused */
	char **allow;           /* allowlist entry texts, sorted */
	size_t n_allow;
	struct key_perm *perms; /* sorted by resource */
	size_t n_perms;
};

/* What to create. allow/perms may be empty. */
struct key_spec {
	enum key_type type;
	enum key_mode mode;
	const char *name;               /* NULL = "" */
	const char *const *allow;
	size_t n_allow;
	const struct key_perm *perms;
	size_t n_perms;
	const char *note;               /* NULL = none (at most STORE_NOTE_MAX bytes) */
	int64_t expires_at;             /* 0 = never; else in the future */
	bool allow_report;              /* the allowlist starts report-only */
};

struct audit_record {
	int64_t seq;
	int64_t time;
	const char *actor;
	const char *key_id;
	const char *action;
	const char *before;     /* JSON text or NULL */
	const char *after;      /* JSON text or NULL */
	const char *reason;     /* may be NULL */
};

struct store;

/* True when target names a PostgreSQL database rather than a SQLite file. */
bool store_is_remote(const char *target);
/* target fit for a log or an error: a password in it replaced by "***". */
void store_target_display(const char *target, char *out, size_t cap);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *st);

/* Opens (creating and migrating when needed) the database at path. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);
/* Last error; store_errmsg(NULL) is the reason the last store_open() failed. */
const char *store_errmsg(const struct store *st);

/* Schema version this build writes (PRAGMA user_version). */
int store_schema_version(void);

/* The OS user running us (getpwuid(geteuid())), or "uid:N". */
void store_actor_default(char *out, size_t cap);

/* Validates an allowlist entry (an IPv4/IPv6 address or CIDR range) and writes its canonical
 * text to out ("10.0.0.0/8", "2001:db8::1", "::ffff:1.2.3.4" -> "1.2.3.4"); NULL = ok, else
 * why not. Entries are stored and removed in canonical form. */
const char *store_entry_canon(const char *entry, char *out, size_t cap);

/* Creates a key. The full key text (NUL-terminated) goes to secret_out (cap >= STORE_KEY_MAX);
 * info_out (may be NULL) receives the stored record. */
int store_key_create(struct store *st, const struct key_spec *spec, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out);

int store_key_get(struct store *st, const char *id, struct key_info *out);
/* Looks a key up by the SHA-256 hex of its text (revoked keys included). */
int store_key_get_by_hash(struct store *st, const char *sha256_hex, struct key_info *out);
/* A key by its id or by its full text (found by the SHA-256 of the text; *by_key then says
 * so). Errors never quote more of a key than its masked form. */
int store_key_find(struct store *st, const char *id_or_key, struct key_info *out, bool *by_key);
void store_key_clear(struct key_info *k);

/* Every key (revoked ones included), oldest first. Free with store_key_list_free(). */
int store_key_list(struct store *st, struct key_info **out, size_t *n);
void store_key_list_free(struct key_info *keys, size_t n);

/* Keys whose gen is above `after`, for caches; *max_gen receives the highest gen seen. */
int store_key_changed(struct store *st, int64_t after, struct key_info **out, size_t *n,
		      int64_t *max_gen);

/* Changes the allowlist: clear it first when `clear`, then remove then add entries.
 * Removing an entry that is not there, adding a malformed one, or any allowlist on a
 * publishable key is -EINVAL. */
int store_key_restrict(struct store *st, const char *id, bool clear,
		       const char *const *add, size_t n_add,
		       const char *const *remove, size_t n_remove, const char *actor);

/* Sets one permission of a restricted key (PERM_NONE removes the row). */
int store_key_perm(struct store *st, const char *id, const char *resource,
		   enum perm_level level, const char *actor);
/* Sets n permissions of a restricted key in one transaction with one audit record; any bad
 * one changes nothing. */
int store_key_perms(struct store *st, const char *id, const struct key_perm *perms, size_t n,
		    const char *actor);

/* Rotates: creates a replacement with the same type, mode, name, permissions and allowlist,
 * and sets the old key to expire in expire_in_s seconds (0 = now, at most STORE_EXPIRE_MAX_S;
 * an earlier existing expiry is kept). New key text to secret_out, new record to info_out. */
int store_key_rotate(struct store *st, const char *id, int64_t expire_in_s, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out);

/* Expires a key now (publishable keys cannot be expired: -EPERM). */
int store_key_expire(struct store *st, const char *id, const char *actor);

/* Revokes a key now. Already revoked: -EALREADY. */
int store_key_revoke(struct store *st, const char *id, const char *actor, const char *reason);

/* For the leak scanner: revokes the key whose SHA-256 hex is given. Returns 0 revoked,
 * -ENOENT no such key in the store, -EALREADY it was already revoked (nothing written); the
 * key id is copied to key_id_out (cap >= STORE_ID_MAX) whenever the key exists. */
int store_revoke_by_hash(struct store *st, const char *sha256_hex, const char *actor,
			 const char *reason, char *key_id_out, size_t cap);

/* Audit records, oldest first; cb returns non-zero to stop. */
int store_audit_each(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
		     void *arg);

/* Changes when another connection committed: SQLite's PRAGMA data_version (cheap); on
 * PostgreSQL the store version (the highest gen; a round trip). */
int store_data_version(struct store *st, int64_t *out);

/* Change feed (PostgreSQL; SQLite returns -ENOTSUP). Every change commits a new store version
 * (the key's gen) and a notification carrying only that number. store_listen() subscribes
 * this connection; store_wait_change() waits up to timeout_ms: 1 a change was committed
 * (*version = the highest announced), 0 none, -EIO the connection is lost (then
 * store_reconnect(), store_listen() again, and read what changed by version: nothing sent
 * while away is delivered). */
int store_listen(struct store *st);
int store_wait_change(struct store *st, int timeout_ms, int64_t *version);
int store_reconnect(struct store *st);

/* Grows *arr (elements of size sz) so index n fits; 0 or -ENOMEM. */
int store_grow(void *arr, size_t *cap, size_t n, size_t sz);

/* Key usage, for the console: per key the last request's time and client address, and per
 * key and client address the allowed and denied requests of each hour, kept
 * STORE_USAGE_DAYS days. Written in batches (the gate: one per worker every few seconds). */
#define STORE_USAGE_DAYS   30
#define STORE_CLIENT_MAX   64   /* bytes of a client address text, NUL included */

struct usage_rec {
	char key_id[STORE_ID_MAX];
	char client[STORE_CLIENT_MAX];
	int64_t hour;           /* unix seconds at the start of the hour */
	int64_t last_used;      /* unix seconds of the latest request counted here */
	int64_t allowed, denied;
	int64_t reported;       /* allowed but outside a report-only allowlist ("would refuse") */
};

/* Adds n records in one transaction (counts add up, the latest last_used wins) and drops
 * hours older than STORE_USAGE_DAYS before now. Not a key change: no version, no audit. */
int store_usage_write(struct store *st, const struct usage_rec *recs, size_t n, int64_t now);
/* Last use of key_id (*last_used = 0 when never) and its hourly rows, oldest first (free()). */
int store_usage_get(struct store *st, const char *key_id, int64_t *last_used, char *last_client,
		    size_t cap, struct usage_rec **hours, size_t *n);

/* JSON form of a key (never the secret; hash omitted). Caller owns the reference. */
json_t *store_key_json(const struct key_info *k);
/* The start of a key's JSON forms: a new object returned, and its allowlist array and
 * permissions object filled (skip_none leaves out PERM_NONE) for the caller to place in it;
 * NULL when out of memory (nothing to free then). */
json_t *store_key_json_start(const struct key_info *k, bool skip_none, json_t **allow,
			     json_t **perms);
/* Sets a key's lifetime fields on o: created, expires_at, revoked_at, rotated_from (null
 * when unset), the same in every JSON form of a key. */
void store_key_json_times(json_t *o, const struct key_info *k);

/* ---- console (store_console.c): users, API tokens, key pages, audit queries ---- */

#define STORE_NOTE_MAX     1000  /* bytes of a key's note */
#define STORE_USER_MAX     64    /* bytes of a console user or token name: [A-Za-z0-9_.@-] */
#define STORE_HASH_MAX     160   /* a password hash's text */
#define STORE_TOKEN_ID_LEN 20    /* "tok_" + 16 letters/digits */
#define STORE_TOKEN_BODY   40    /* random letters/digits after "ilc_" */
#define STORE_TOKEN_MAX    (4 + STORE_TOKEN_BODY + 1)

struct console_user {
	char name[STORE_USER_MAX + 1];
	char hash[STORE_HASH_MAX];
	char role[8];                   /* "admin" or "viewer" */
	int64_t created;
};

struct console_token {
	char id[STORE_TOKEN_ID_LEN + 1];
	char name[STORE_USER_MAX + 1];
	char hash[SHA256_HEX_LEN + 1];  /* SHA-256 hex of the token text: the text is never kept */
	char masked[SECRET_MASK_MAX];
	char scope[8];                  /* "read" or "write" */
	int64_t created;
	char created_by[STORE_USER_MAX + 16];
};

/* True when s is a valid user or token name. */
bool store_console_user_name_valid(const char *s);

/* Users: add (-EEXIST when taken), get (-ENOENT), list (by name; free()), remove (-ENOENT).
 * hash is a pwhash (core/pwhash.h); role "admin" or "viewer". Changes are audited. */
int store_console_user_add(struct store *st, const char *name, const char *hash, const char *role,
		   const char *actor);
int store_console_user_get(struct store *st, const char *name, struct console_user *out);
int store_console_user_list(struct store *st, struct console_user **out, size_t *n);
int store_console_user_remove(struct store *st, const char *name, const char *actor);

/* API tokens: the text ("ilc_" + 40 letters/digits) goes to secret_out (cap >=
 * STORE_TOKEN_MAX) once; only its SHA-256 is stored. scope "read" or "write". */
int store_token_create(struct store *st, const char *name, const char *scope, const char *actor,
		       char *secret_out, size_t cap, struct console_token *out);
int store_token_get_by_hash(struct store *st, const char *sha256_hex, struct console_token *out);
int store_token_list(struct store *st, struct console_token **out, size_t *n);
int store_token_revoke(struct store *st, const char *id, const char *actor);

/* Key changes for the console, each one transaction and one audit record. name/note NULL =
 * keep. The allowlist replacement validates every entry first; reason goes to the audit. */
int store_key_set_note(struct store *st, const char *id, const char *name, const char *note,
		       const char *actor);
int store_key_set_report(struct store *st, const char *id, bool report, const char *actor);
int store_key_allow_replace(struct store *st, const char *id, const char *const *entries,
			    size_t n, const char *actor, const char *reason);

/* One page of keys, newest first (created, then id, descending), with their children and last
 * use. Filters may be NULL: type "secret" "restricted" "publishable" "org" or "standard"
 * (secret + publishable); mode "live" "test"; status "active" "revoked" "all"; search (part
 * of name or note, case-insensitive; a key id; or a key's last 4). after_id "" = first page. */
struct key_query {
	const char *type, *mode, *status, *search;
	size_t limit;                   /* 1-100 */
	int64_t after_created;
	char after_id[STORE_ID_MAX];
	int64_t now;
};
struct key_listed {
	struct key_info k;
	int64_t last_used;              /* 0 = never */
	char last_client[STORE_CLIENT_MAX];
};
int store_key_page(struct store *st, const struct key_query *q, struct key_listed **out,
		   size_t *n, bool *has_more);
void store_key_page_free(struct key_listed *v, size_t n);

/* Audit records newest first, filtered by key id and/or actor (NULL = any), seq below
 * before_seq (0 = from the newest); at most limit; *has_more when more match. */
int store_audit_query(struct store *st, const char *key_id, const char *actor,
		      int64_t before_seq, size_t limit,
		      int (*cb)(const struct audit_record *r, void *arg), void *arg,
		      bool *has_more);

#endif
