/* store.c (~950 lines: every rule of the key store in one place, so both backends obey the
 * same code; the key formats are in keyfmt.c, the schema in store_schema.h): the key store's
 * interface. Every rule lives here (validation, error texts, audit records, one transaction
 * per change, the migration loop); the backends (store_sqlite.c, store_pg.c) only run
 * primitive reads and writes, so both behave alike by construction. */
#include "store/store_be.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/addr.h"

int store_fail(struct store *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	/* reasons quote the caller's input (an id, an entry): a key given by mistake is masked */
	secret_redact(st->err, strlen(st->err));
	return rc;
}
#define fail store_fail

void store_rows_free(struct store_rows *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n * r->ncol; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

int store_grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	void **p = arr;

	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *np = realloc(*p, ncap * sz);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static char open_err[256];

const char *store_errmsg(const struct store *st)
{
	return st ? st->err : open_err;
}

bool store_is_remote(const char *target)
{
	const char *p = target, *k;

	if (!strncmp(p, "postgresql://", 13) || !strncmp(p, "postgres://", 11))
		return true;
	/* a libpq key=value string starts with a keyword and '=' ("host=... dbname=...") */
	while (*p == ' ')
		p++;
	for (k = p; islower((unsigned char)*p) || *p == '_'; p++)
		;
	while (*p == ' ')
		p++;
	return p > k && *p == '=';
}

void store_target_display(const char *t, char *out, size_t cap)
{
	size_t o = 0, n = strlen(t);
	const char *auth_end = NULL, *at = NULL, *colon = NULL;

	if (!cap)
		return;
	if (!store_is_remote(t)) {
		snprintf(out, cap, "%s", t);
		return;
	}
	/* a password in the text never reaches a log: user:secret@host and password=secret */
	const char *sch = strstr(t, "://");
	if (sch) {
		const char *a = sch + 3;
		auth_end = a + strcspn(a, "/?#");
		for (const char *q = a; q < auth_end; q++)
			if (*q == '@')
				at = q;
		if (at)
			colon = memchr(a, ':', (size_t)(at - a));
	}
	for (size_t i = 0; i < n && o + 1 < cap;) {
		const char *p = t + i, *v = NULL;
		if (colon && p == colon)
			v = at, out[o++] = ':';
		else if ((i == 0 || strchr(" ?&", t[i - 1])) && !strncasecmp(p, "password", 8)) {
			const char *e = p + 8;
			while (*e == ' ')
				e++;
			if (*e == '=') {
				for (size_t m = 0; m < 9 && o + 1 < cap; m++)
					out[o++] = "password="[m];
				v = e + 1;
				while (*v == ' ')
					v++;
				if (*v == '\'') {
					for (v++; *v && *v != '\''; v += (*v == '\\' && v[1]) ? 2 : 1)
						;
					if (*v)
						v++;
				} else {
					v += strcspn(v, " &#");
				}
			}
		}
		if (!v) {
			out[o++] = t[i++];
			continue;
		}
		for (size_t m = 0; m < 3 && o + 1 < cap; m++)
			out[o++] = '*';
		i = (size_t)(v - t);
	}
	out[o] = '\0';
}

const char *store_backend(const struct store *st)
{
	return st->ops->name;
}

int store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

/* "10.0.0.5/24": says what to write instead, the range or the one address (per thread). */
static const char *host_bits_hint(const char *entry, size_t n)
{
	static _Thread_local char msg[200];
	const char *slash = memchr(entry, '/', n);
	struct ipaddr ip;
	struct cidr c;
	char net[IPADDR_STRLEN], one[IPADDR_STRLEN];
	unsigned prefix;

	if (!slash || ipaddr_parse(entry, (size_t)(slash - entry), &ip) ||
	    ipaddr_format(&ip, one, sizeof(one)))
		return "host bits set";
	prefix = (unsigned)atoi(slash + 1);
	/* ::ffff:a.b.c.d/120 was parsed as IPv4: its prefix counts the 96 mapped bits */
	if (ip.family == AF_INET && prefix > 32) {
		if (prefix < 96)
			return "host bits set";
		prefix -= 96;
	}
	c.net = ip;
	unsigned max = ip.family == AF_INET ? 32 : 128;
	for (unsigned bit = prefix; bit < max && bit < 128; bit++)
		c.net.a[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	c.prefix = (uint8_t)prefix;
	if (cidr_format(&c, net, sizeof(net)))
		return "host bits set";
	snprintf(msg, sizeof(msg), "host bits set: write %s for the whole range, or %s for the one "
		 "address", net, one);
	return msg;
}

const char *store_entry_canon(const char *entry, char *out, size_t cap)
{
	struct cidr c;
	size_t n = strlen(entry);
	const char *err;
	int rc;

	if (n == 0)
		return "empty allowlist entry";
	if (n > STORE_ENTRY_MAX)
		return "allowlist entry too long";
	if ((err = cidr_parse(entry, n, &c))) {
		if (strcmp(err, "host bits set"))
			return err;
		return host_bits_hint(entry, n);
	}
	/* a single address reads best without its /32 or /128 */
	if (c.prefix == (c.net.family == AF_INET ? 32 : 128))
		rc = ipaddr_format(&c.net, out, cap);
	else
		rc = cidr_format(&c, out, cap);
	return rc ? "allowlist entry too long" : NULL;
}

void store_actor_default(char *out, size_t cap)
{
	uid_t uid = geteuid();
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(out, cap, "%s", pw->pw_name);
	else
		snprintf(out, cap, "uid:%u", (unsigned)uid);
}

/* ---- open / close ---- */

int store_open(const char *path, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	if (!st)
		return -ENOMEM;
	st->ops = store_is_remote(path) ? &store_pg_ops : &store_sqlite_ops;
	if ((rc = st->ops->open(st, path))) {
		/* the caller has no store: store_errmsg(NULL) gives the reason */
		memcpy(open_err, st->err, sizeof(open_err));
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	st->ops->close(st);
	free(st);
}

/* ---- reading ---- */

void store_key_clear(struct key_info *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n_allow; i++)
		free(k->allow[i]);
	free(k->allow);
	free(k->perms);
	free(k->note);
	k->allow = NULL;
	k->perms = NULL;
	k->note = NULL;
	k->n_allow = k->n_perms = 0;
}

static int get_one(struct store *st, bool by_hash, const char *arg, struct key_info *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = st->ops->key_row(st, by_hash, arg, out);
	if (rc == -ENOENT)
		return fail(st, -ENOENT, "no such key: %.64s", arg);
	if (rc)
		return rc;
	if ((rc = st->ops->children(st, out))) {
		store_key_clear(out);
		return rc;
	}
	return 0;
}

int store_key_get(struct store *st, const char *id, struct key_info *out)
{
	return get_one(st, false, id, out);
}

int store_key_get_by_hash(struct store *st, const char *sha256_hex, struct key_info *out)
{
	return get_one(st, true, sha256_hex, out);
}

int store_key_find(struct store *st, const char *id_or_key, struct key_info *out, bool *by_key)
{
	size_t len = strlen(id_or_key);
	char hex[SHA256_HEX_LEN + 1], masked[SECRET_MASK_MAX];
	int rc;

	*by_key = false;
	if (!key_parse(id_or_key, len, NULL, NULL))
		return store_key_get(st, id_or_key, out);
	/* the store holds only hashes: a key's text is found by its SHA-256, as the gate does */
	*by_key = true;
	secret_sha256_hex(id_or_key, len, hex);
	rc = store_key_get_by_hash(st, hex, out);
	if (rc == -ENOENT) {
		secret_mask(id_or_key, len, masked);
		return fail(st, -ENOENT, "no key %s in this store (looked up by the SHA-256 of its "
			    "text)", masked);
	}
	return rc;
}

void store_key_list_free(struct key_info *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_key_clear(&keys[i]);
	free(keys);
}

static int list_rows(struct store *st, int64_t after, struct key_info **out, size_t *n)
{
	struct key_info *keys = NULL;
	size_t cnt = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = st->ops->key_rows(st, after, &keys, &cnt)))
		return rc;
	for (size_t i = 0; i < cnt; i++)
		if ((rc = st->ops->children(st, &keys[i]))) {
			store_key_list_free(keys, cnt);
			return rc;
		}
	*out = keys;
	*n = cnt;
	return 0;
}

int store_key_list(struct store *st, struct key_info **out, size_t *n)
{
	int rc;

	if (st->ops->key_rows_full) {
		*out = NULL;
		*n = 0;
		return st->ops->key_rows_full(st, -1, out, n);
	}
	if ((rc = st->ops->read_begin(st)))
		return rc;
	rc = list_rows(st, -1, out, n);
	st->ops->read_end(st);
	return rc;
}

int store_key_changed(struct store *st, int64_t after, struct key_info **out, size_t *n,
		      int64_t *max_gen)
{
	int rc;

	if (st->ops->key_rows_full) {
		*out = NULL;
		*n = 0;
		rc = st->ops->key_rows_full(st, after < 0 ? 0 : after, out, n);
	} else {
		/* one read transaction so rows and their children are one consistent snapshot */
		if ((rc = st->ops->read_begin(st)))
			return rc;
		rc = list_rows(st, after < 0 ? 0 : after, out, n);
		st->ops->read_end(st);
	}
	if (rc)
		return rc;
	*max_gen = after;
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].gen > *max_gen)
			*max_gen = (*out)[i].gen;
	return 0;
}

int store_data_version(struct store *st, int64_t *out)
{
	return st->ops->data_version(st, out);
}

int store_usage_write(struct store *st, const struct usage_rec *recs, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (!recs[i].key_id[0] || recs[i].allowed < 0 || recs[i].denied < 0 ||
		    recs[i].reported < 0)
			return fail(st, -EINVAL, "bad usage record");
	return st->ops->usage_write(st, recs, n, now - (int64_t)STORE_USAGE_DAYS * 86400);
}

int store_usage_get(struct store *st, const char *key_id, int64_t *last_used, char *last_client,
		    size_t cap, struct usage_rec **hours, size_t *n)
{
	*last_used = 0;
	*hours = NULL;
	*n = 0;
	if (cap)
		last_client[0] = '\0';
	return st->ops->usage_get(st, key_id, last_used, last_client, cap, hours, n);
}

int store_listen(struct store *st)
{
	return st->ops->listen ? st->ops->listen(st) : -ENOTSUP;
}

int store_wait_change(struct store *st, int timeout_ms, int64_t *version)
{
	return st->ops->wait_change ? st->ops->wait_change(st, timeout_ms, version) : -ENOTSUP;
}

int store_reconnect(struct store *st)
{
	return st->ops->reconnect ? st->ops->reconnect(st) : -ENOTSUP;
}

/* ---- JSON ---- */

json_t *store_key_json_start(const struct key_info *k, bool skip_none, json_t **allow,
			     json_t **perms)
{
	json_t *o = json_object();

	*allow = json_array();
	*perms = json_object();
	if (!o || !*allow || !*perms) {
		json_decref(o);
		json_decref(*allow);
		json_decref(*perms);
		return NULL;
	}
	for (size_t i = 0; i < k->n_allow; i++)
		json_array_append_new(*allow, json_string(k->allow[i]));
	for (size_t i = 0; i < k->n_perms; i++)
		if (!skip_none || k->perms[i].level != PERM_NONE)
			json_object_set_new(*perms, k->perms[i].resource,
					    json_string(perm_level_name(k->perms[i].level)));
	return o;
}

void store_key_json_times(json_t *o, const struct key_info *k)
{
	json_object_set_new(o, "created", json_integer(k->created));
	json_object_set_new(o, "expires_at", k->expires_at ? json_integer(k->expires_at) : json_null());
	json_object_set_new(o, "revoked_at", k->revoked_at ? json_integer(k->revoked_at) : json_null());
	json_object_set_new(o, "rotated_from",
			    k->rotated_from[0] ? json_string(k->rotated_from) : json_null());
}

json_t *store_key_json(const struct key_info *k)
{
	json_t *allow, *perms, *o = store_key_json_start(k, false, &allow, &perms);

	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "masked", json_string(k->masked));
	json_object_set_new(o, "type", json_string(key_type_name(k->type)));
	json_object_set_new(o, "mode", json_string(key_mode_name(k->mode)));
	json_object_set_new(o, "name", json_string(k->name));
	store_key_json_times(o, k);
	json_object_set_new(o, "allow", allow);
	json_object_set_new(o, "allow_mode", json_string(k->allow_report ? "report" : "enforce"));
	json_object_set_new(o, "note", json_string(k->note ? k->note : ""));
	json_object_set_new(o, "permissions", perms);
	return o;
}

static char *key_json_text(const struct key_info *k)
{
	json_t *j = store_key_json(k);
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return t;
}

/* ---- writing ---- */

static int tx_begin(struct store *st)
{
	return st->ops->begin(st);
}

int store_tx_begin(struct store *st)
{
	return tx_begin(st);
}

void store_rollback_keep(struct store *st, void (*rollback)(struct store *st))
{
	char keep[sizeof(st->err)];

	memcpy(keep, st->err, sizeof(keep));
	rollback(st);
	memcpy(st->err, keep, sizeof(keep));
}

int store_migrate_steps(struct store *st, int version, const char *const *steps,
			int (*run)(struct store *st, const char *sql),
			int (*set_version)(struct store *st, int version))
{
	int rc;

	if (version > STORE_SCHEMA_VERSION)
		return fail(st, -EPROTO, "database schema version %d is newer than this iplock "
			    "(%d)", version, STORE_SCHEMA_VERSION);
	for (; version < STORE_SCHEMA_VERSION; version++)
		if ((rc = run(st, steps[version])) || (rc = set_version(st, version + 1)))
			return rc;
	return 0;
}

static int tx_end(struct store *st, int rc)
{
	if (!rc && !(rc = st->ops->commit(st)))
		return 0;
	store_rollback_keep(st, st->ops->rollback);
	return rc;
}

int store_tx_end(struct store *st, int rc)
{
	return tx_end(st, rc);
}

static int audit(struct store *st, const char *actor, const char *id, const char *action,
		 const struct key_info *before, const struct key_info *after, const char *reason)
{
	char *b = before ? key_json_text(before) : NULL;
	char *a = after ? key_json_text(after) : NULL;
	char *why = reason ? strdup(reason) : NULL;
	int rc;

	if ((before && !b) || (after && !a) || (reason && !why)) {
		rc = -ENOMEM;
		goto out;
	}
	/* a reason is shown by every audit listing: a key quoted in it is kept masked */
	if (why)
		secret_redact(why, strlen(why));
	rc = st->ops->audit_add(st, (int64_t)time(NULL), actor && actor[0] ? actor : "unknown", id,
				action, b, a, why);
out:
	free(b);
	free(a);
	free(why);
	return rc;
}

int store_audit_text(struct store *st, const char *actor, const char *key_id, const char *action,
		     const char *before, const char *after, const char *reason)
{
	return st->ops->audit_add(st, (int64_t)time(NULL), actor && actor[0] ? actor : "unknown",
				  key_id, action, before, after, reason);
}

/* Finishes a change of key `id`: bumps its gen, reloads it and writes the audit record. */
static int finish_change(struct store *st, const char *id, const char *action,
			 const struct key_info *before, const char *actor, const char *reason,
			 struct key_info *after_out)
{
	struct key_info after;
	int rc;

	if ((rc = st->ops->bump(st, id)))
		return rc;
	if ((rc = store_key_get(st, id, &after)))
		return rc;
	rc = audit(st, actor, id, action, before, &after, reason);
	if (!rc && after_out)
		*after_out = after;
	else
		store_key_clear(&after);
	return rc;
}

static int add_entries(struct store *st, const char *id, const char *const *e, size_t n)
{
	if (st->ops->allow_add_many && n > 1) {
		/* all checked first (the same first error), then one round trip for a long list */
		char (*canon)[STORE_ENTRY_MAX + 1] = malloc(n * sizeof(*canon));
		const char **pv = malloc(n * sizeof(*pv));
		int rc = 0;
		if (!canon || !pv) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && !rc; i++) {
			const char *why = store_entry_canon(e[i], canon[i], sizeof(canon[i]));
			if (why)
				rc = fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", e[i], why);
			pv[i] = canon[i];
		}
		if (!rc)
			rc = st->ops->allow_add_many(st, id, pv, n);
out:
		free(canon);
		free(pv);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		char canon[STORE_ENTRY_MAX + 1];
		const char *why = store_entry_canon(e[i], canon, sizeof(canon));
		if (why)
			return fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", e[i], why);
		int rc = st->ops->allow_add(st, id, canon);
		if (rc)
			return rc;
	}
	return 0;
}

static int set_perm(struct store *st, const char *id, const char *resource,
		    enum perm_level level)
{
	if (!store_resource_valid(resource))
		return fail(st, -EINVAL, "bad resource name '%.64s' (use a-z, 0-9, '_', '.')",
			    resource);
	return st->ops->perm_set(st, id, resource, level);
}

static int set_time(struct store *st, enum store_time_col col, const char *id, int64_t t)
{
	return st->ops->set_time(st, id, col, t);
}

/* Inserts a new key row with fresh id and secret; children are added by the caller. */
static int insert_key(struct store *st, enum key_type type, enum key_mode mode,
		      const char *name, const char *rotated_from, char *secret_out, size_t cap,
		      char id_out[STORE_ID_MAX])
{
	struct key_info k = { .type = type, .mode = mode };
	int rc = keyfmt_generate(type, mode, secret_out, cap, id_out, k.hash, k.masked);

	if (rc)
		return fail(st, rc, rc == -ENOBUFS ? "key buffer too small" : "random source failed");
	memcpy(k.id, id_out, STORE_ID_MAX);
	/* the name is listed everywhere: a key pasted into it is stored masked */
	snprintf(k.name, sizeof(k.name), "%s", name ? name : "");
	secret_redact(k.name, strlen(k.name));
	k.created = (int64_t)time(NULL);
	if (rotated_from)
		snprintf(k.rotated_from, sizeof(k.rotated_from), "%s", rotated_from);
	return st->ops->key_insert(st, &k);
}
static int check_spec(struct store *st, const struct key_spec *spec)
{
	if ((unsigned)spec->type > KEY_ORG || (unsigned)spec->mode > KEY_TEST)
		return fail(st, -EINVAL, "bad key type or mode");
	if (spec->name && strlen(spec->name) > STORE_NAME_MAX)
		return fail(st, -EINVAL, "name longer than %d bytes", STORE_NAME_MAX);
	if (spec->type == KEY_PUBLISHABLE && spec->n_allow)
		return fail(st, -EINVAL, "publishable keys cannot have an IP allowlist "
			    "(they are made to be public)");
	if (spec->type != KEY_RESTRICTED && spec->n_perms)
		return fail(st, -EINVAL, "permissions apply to restricted keys only");
	if (spec->note && strlen(spec->note) > STORE_NOTE_MAX)
		return fail(st, -EINVAL, "note longer than %d bytes", STORE_NOTE_MAX);
	if (spec->expires_at && spec->expires_at <= (int64_t)time(NULL))
		return fail(st, -EINVAL, "expires_at must be in the future");
	if (spec->expires_at < 0)
		return fail(st, -EINVAL, "expires_at must be in the future");
	if (spec->type == KEY_PUBLISHABLE && spec->allow_report)
		return fail(st, -EINVAL, "publishable keys cannot have an IP allowlist "
			    "(they are made to be public)");
	return 0;
}

int store_key_create(struct store *st, const struct key_spec *spec, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out)
{
	char id[STORE_ID_MAX];
	int rc;

	if ((rc = check_spec(st, spec)))
		return rc;
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = insert_key(st, spec->type, spec->mode, spec->name, NULL, secret_out, cap, id)))
		goto out;
	if ((rc = add_entries(st, id, spec->allow, spec->n_allow)))
		goto out;
	for (size_t i = 0; i < spec->n_perms && !rc; i++)
		rc = set_perm(st, id, spec->perms[i].resource, spec->perms[i].level);
	if (rc)
		goto out;
	if (spec->expires_at && (rc = set_time(st, STORE_COL_EXPIRES, id, spec->expires_at)))
		goto out;
	if ((spec->note && spec->note[0]) || spec->allow_report) {
		char *note = spec->note && spec->note[0] ? strdup(spec->note) : NULL;
		if (spec->note && spec->note[0] && !note) {
			rc = -ENOMEM;
			goto out;
		}
		if (note)
			secret_redact(note, strlen(note));
		const char *p[3] = { id, note, spec->allow_report ? "1" : "0" };
		rc = st->ops->sql(st, "UPDATE keys SET note = $2, allow_report = CAST($3 AS INTEGER) "
				  "WHERE id = $1", p, 3, NULL);
		free(note);
		if (rc)
			goto out;
	}
	rc = finish_change(st, id, "create", NULL, actor, NULL, info_out);
out:
	rc = tx_end(st, rc);
	if (rc && cap)
		memset(secret_out, 0, cap);
	return rc;
}

/* Loads a key for a change inside the transaction; revoked keys cannot change. */
static int load_live(struct store *st, const char *id, struct key_info *k)
{
	int rc = store_key_get(st, id, k);

	if (rc)
		return rc;
	if (k->revoked_at) {
		store_key_clear(k);
		return fail(st, -EPERM, "key %s is revoked", id);
	}
	return 0;
}

int store_key_change(struct store *st, const char *id, const char *action, const char *actor,
		     const char *reason, store_key_apply_fn apply, const void *arg)
{
	struct key_info before = { 0 };
	int rc;

	if ((rc = tx_begin(st)))
		return rc;
	if (!(rc = load_live(st, id, &before)) && !(rc = apply(st, &before, arg)))
		rc = finish_change(st, id, action, &before, actor, reason, NULL);
	store_key_clear(&before);
	return tx_end(st, rc);
}

int store_allow_permitted(struct store *st, const struct key_info *k, bool adds)
{
	if (k->type == KEY_PUBLISHABLE && adds)
		return fail(st, -EINVAL, "publishable keys cannot have an IP allowlist "
			    "(they are made to be public)");
	return 0;
}

struct restrict_arg {
	bool clear;
	const char *const *add, *const *remove;
	size_t n_add, n_remove;
};

static int do_restrict(struct store *st, const struct key_info *before, const void *arg)
{
	const struct restrict_arg *a = arg;
	const char *id = before->id;
	int rc;

	if ((rc = store_allow_permitted(st, before, a->n_add)))
		return rc;
	if (a->clear && (rc = st->ops->allow_clear(st, id)))
		return rc;
	for (size_t i = 0; i < a->n_remove; i++) {
		char canon[STORE_ENTRY_MAX + 1];
		const char *why = store_entry_canon(a->remove[i], canon, sizeof(canon));
		if (why)
			return fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", a->remove[i], why);
		bool removed = false;
		if ((rc = st->ops->allow_del(st, id, canon, &removed)))
			return rc;
		if (!removed && !a->clear)
			return fail(st, -EINVAL, "'%.64s' is not in the allowlist of %s", a->remove[i],
				    id);
	}
	return add_entries(st, id, a->add, a->n_add);
}

int store_key_restrict(struct store *st, const char *id, bool clear,
		       const char *const *add, size_t n_add,
		       const char *const *remove, size_t n_remove, const char *actor)
{
	const struct restrict_arg a = { clear, add, remove, n_add, n_remove };

	return store_key_change(st, id, "restrict", actor, NULL, do_restrict, &a);
}

struct perms_arg {
	const struct key_perm *perms;
	size_t n;
};

static int do_perms(struct store *st, const struct key_info *before, const void *arg)
{
	const struct perms_arg *a = arg;
	int rc = 0;

	if (before->type != KEY_RESTRICTED)
		return fail(st, -EINVAL, "permissions apply to restricted keys only (%s is %s)",
			    before->id, key_type_name(before->type));
	for (size_t i = 0; i < a->n && !rc; i++)
		rc = set_perm(st, before->id, a->perms[i].resource, a->perms[i].level);
	return rc;
}

int store_key_perms(struct store *st, const char *id, const struct key_perm *perms, size_t n,
		    const char *actor)
{
	const struct perms_arg a = { perms, n };

	if (!n)
		return fail(st, -EINVAL, "no permission to change");
	/* one command, one change: a single audit record holds every permission it set */
	return store_key_change(st, id, "perm", actor, NULL, do_perms, &a);
}

int store_key_perm(struct store *st, const char *id, const char *resource,
		   enum perm_level level, const char *actor)
{
	struct key_perm p = { .level = level };

	if (strlen(resource) > STORE_RESOURCE_MAX)
		return fail(st, -EINVAL, "bad resource name '%.64s' (use a-z, 0-9, '_', '.')",
			    resource);
	memcpy(p.resource, resource, strlen(resource) + 1);
	return store_key_perms(st, id, &p, 1, actor);
}

int store_key_rotate(struct store *st, const char *id, int64_t expire_in_s, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out)
{
	struct key_info old = { 0 }, old_after = { 0 };
	char nid[STORE_ID_MAX];
	int64_t now = (int64_t)time(NULL), exp;
	int rc;

	if (expire_in_s < 0 || expire_in_s > STORE_EXPIRE_MAX_S)
		return fail(st, -EINVAL, "the old key may stay valid at most 7 days (10080 minutes)");
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = load_live(st, id, &old)))
		goto out;
	if ((rc = insert_key(st, old.type, old.mode, old.name, old.id, secret_out, cap, nid)))
		goto out;
	/* the replacement inherits everything that limits the key: allowlist and permissions */
	if ((rc = add_entries(st, nid, (const char *const *)old.allow, old.n_allow)))
		goto out;
	for (size_t i = 0; i < old.n_perms && !rc; i++)
		rc = set_perm(st, nid, old.perms[i].resource, old.perms[i].level);
	if (rc)
		goto out;
	if (old.note || old.allow_report) {
		const char *p[3] = { nid, old.note, old.allow_report ? "1" : "0" };
		if ((rc = st->ops->sql(st, "UPDATE keys SET note = $2, allow_report = "
				       "CAST($3 AS INTEGER) WHERE id = $1", p, 3, NULL)))
			goto out;
	}
	exp = now + expire_in_s;
	if (old.expires_at && old.expires_at < exp)
		exp = old.expires_at;
	if ((rc = set_time(st, STORE_COL_EXPIRES, id, exp)))
		goto out;
	if ((rc = finish_change(st, id, "rotate", &old, actor, "rotated out", &old_after)))
		goto out;
	rc = finish_change(st, nid, "create", NULL, actor, "rotation replacement", info_out);
out:
	store_key_clear(&old);
	store_key_clear(&old_after);
	rc = tx_end(st, rc);
	if (rc && cap)
		memset(secret_out, 0, cap);
	return rc;
}

static int do_expire(struct store *st, const struct key_info *before, const void *arg)
{
	(void)arg;
	if (before->type == KEY_PUBLISHABLE)
		return fail(st, -EPERM, "publishable keys cannot be expired");
	return set_time(st, STORE_COL_EXPIRES, before->id, (int64_t)time(NULL));
}

int store_key_expire(struct store *st, const char *id, const char *actor)
{
	return store_key_change(st, id, "expire", actor, NULL, do_expire, NULL);
}

static int revoke_loaded(struct store *st, struct key_info *k, const char *actor,
			 const char *reason)
{
	int rc;

	if (k->revoked_at)
		return fail(st, -EALREADY, "key %s is already revoked", k->id);
	if ((rc = set_time(st, STORE_COL_REVOKED, k->id, (int64_t)time(NULL))))
		return rc;
	return finish_change(st, k->id, "revoke", k, actor, reason, NULL);
}

int store_key_revoke(struct store *st, const char *id, const char *actor, const char *reason)
{
	struct key_info k = { 0 };
	int rc;

	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = store_key_get(st, id, &k)))
		goto out;
	rc = revoke_loaded(st, &k, actor, reason);
out:
	store_key_clear(&k);
	return tx_end(st, rc);
}

int store_revoke_by_hash(struct store *st, const char *sha256_hex, const char *actor,
			 const char *reason, char *key_id_out, size_t cap)
{
	struct key_info k = { 0 };
	int rc;

	if (cap)
		key_id_out[0] = '\0';
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = store_key_get_by_hash(st, sha256_hex, &k)))
		goto out;
	if (cap)
		snprintf(key_id_out, cap, "%s", k.id);
	rc = revoke_loaded(st, &k, actor, reason);
out:
	store_key_clear(&k);
	return tx_end(st, rc);
}

int store_audit_each(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
		     void *arg)
{
	return st->ops->audit_each(st, cb, arg);
}
