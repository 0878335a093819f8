/* store_console.c: what the console needs of the store (store.h, "console"): console users,
 * API tokens, key note and report-only flag, whole-allowlist replacement, key pages by keyset
 * pagination and audit queries. Written once over the backends' generic statement (the same
 * SQL text on SQLite and PostgreSQL: $N parameters, CAST, row values), so both behave alike. */
#include "store/store_be.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define fail store_fail

static int64_t cell_i64(const struct store_rows *r, size_t i, size_t j)
{
	const char *c = store_cell(r, i, j);

	return c ? strtoll(c, NULL, 10) : 0;
}

static void cell_copy(char *dst, size_t cap, const struct store_rows *r, size_t i, size_t j)
{
	store_text_copy(dst, cap, store_cell(r, i, j));
}

bool store_console_user_name_valid(const char *s)
{
	return store_name_chars_valid(s, STORE_USER_MAX, true, "_.@-");
}

static bool role_valid(const char *r)
{
	return r && (!strcmp(r, "admin") || !strcmp(r, "viewer"));
}

static char *user_json(const char *name, const char *role)
{
	json_t *j = json_pack("{s:s, s:s}", "name", name, "role", role);
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return t;
}

/* Writes the audit record of a user or token change with json (owned, freed here) as its
 * before text or, with is_after, its after text; NULL json is a failed allocation. */
static int audit_json(struct store *st, const char *actor, const char *action, bool is_after,
		      char *json)
{
	int rc;

	if (!json)
		return -ENOMEM;
	rc = store_audit_text(st, actor, NULL, action, is_after ? NULL : json,
			      is_after ? json : NULL, NULL);
	free(json);
	return rc;
}

/* A statement that must answer a row: -ENOENT with the reason missing when it has none. */
static int sql_row(struct store *st, const char *sql, const char *const *p, size_t np,
		   struct store_rows *r, const char *missing)
{
	int rc = st->ops->sql(st, sql, p, np, r);

	if (!rc && !r->n)
		return fail(st, -ENOENT, "%s", missing);
	return rc;
}

/* A statement whose rows become a zeroed array of size-byte elements, one a row (*out NULL
 * when there is none); the caller fills it from *r and frees *r. */
static int sql_list(struct store *st, const char *sql, struct store_rows *r, size_t size,
		    void **out)
{
	int rc = st->ops->sql(st, sql, NULL, 0, r);

	*out = NULL;
	if (rc || !r->n)
		return rc;
	if (!(*out = calloc(r->n, size))) {
		store_rows_free(r);
		return -ENOMEM;
	}
	return 0;
}

/* Deletes the row named key with sql (RETURNING into *r) inside the caller's transaction;
 * -ENOENT "no such <what>: <key>" when there is none. */
static int sql_remove(struct store *st, const char *sql, const char *what, const char *key,
		      struct store_rows *r)
{
	const char *p[1] = { key };
	char missing[96];

	snprintf(missing, sizeof(missing), "no such %s: %.64s", what, key);
	return sql_row(st, sql, p, 1, r, missing);
}

/* -EEXIST with the reason what (naming name) when the statement answers a row. */
static int sql_none(struct store *st, const char *sql, const char *const *p, const char *what,
		    const char *name)
{
	struct store_rows r = { 0 };
	int rc = st->ops->sql(st, sql, p, 1, &r);

	if (!rc && r.n)
		rc = fail(st, -EEXIST, what, name);
	store_rows_free(&r);
	return rc;
}

/* ---- users ---- */

int store_console_user_add(struct store *st, const char *name, const char *hash, const char *role,
		   const char *actor)
{
	char created[24];
	int rc;

	if (!store_console_user_name_valid(name))
		return fail(st, -EINVAL, "bad user name (1-%d of A-Z a-z 0-9 _ . @ -)", STORE_USER_MAX);
	if (!role_valid(role))
		return fail(st, -EINVAL, "role must be admin or viewer");
	if (!hash || strlen(hash) >= STORE_HASH_MAX)
		return fail(st, -EINVAL, "bad password hash");
	snprintf(created, sizeof(created), "%" PRId64, (int64_t)time(NULL));
	if ((rc = store_tx_begin(st)))
		return rc;
	const char *p[4] = { name, hash, role, created };
	if (!(rc = sql_none(st, "SELECT name FROM console_users WHERE name = $1", p,
			    "user %s already exists", name)) &&
	    !(rc = st->ops->sql(st, "INSERT INTO console_users (name, hash, role, created) VALUES "
				"($1, $2, $3, CAST($4 AS BIGINT))", p, 4, NULL)))
		rc = audit_json(st, actor, "user.add", true, user_json(name, role));
	return store_tx_end(st, rc);
}

int store_console_user_get(struct store *st, const char *name, struct console_user *out)
{
	struct store_rows r = { 0 };
	const char *p[1] = { name };
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = sql_row(st, "SELECT name, hash, role, created FROM console_users WHERE name = $1",
			  p, 1, &r, "no such user"))) {
		store_rows_free(&r);
		return rc;
	}
	cell_copy(out->name, sizeof(out->name), &r, 0, 0);
	cell_copy(out->hash, sizeof(out->hash), &r, 0, 1);
	cell_copy(out->role, sizeof(out->role), &r, 0, 2);
	out->created = cell_i64(&r, 0, 3);
	store_rows_free(&r);
	return 0;
}

int store_console_user_list(struct store *st, struct console_user **out, size_t *n)
{
	struct store_rows r = { 0 };
	int rc;

	*n = 0;
	if ((rc = sql_list(st, "SELECT name, role, created FROM console_users ORDER BY name", &r,
			   sizeof(**out), (void **)out)))
		return rc;
	for (size_t i = 0; i < r.n; i++) {
		cell_copy((*out)[i].name, sizeof((*out)[i].name), &r, i, 0);
		cell_copy((*out)[i].role, sizeof((*out)[i].role), &r, i, 1);
		(*out)[i].created = cell_i64(&r, i, 2);
	}
	*n = r.n;
	store_rows_free(&r);
	return 0;
}

int store_console_user_remove(struct store *st, const char *name, const char *actor)
{
	struct store_rows r = { 0 };
	int rc;

	if ((rc = store_tx_begin(st)))
		return rc;
	if (!(rc = sql_remove(st, "DELETE FROM console_users WHERE name = $1 RETURNING role", "user",
			      name, &r)))
		rc = audit_json(st, actor, "user.remove", false,
				user_json(name, store_cell(&r, 0, 0) ? store_cell(&r, 0, 0) : ""));
	store_rows_free(&r);
	return store_tx_end(st, rc);
}

/* ---- API tokens ---- */

static char *token_json(const struct console_token *t)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "id", t->id, "name", t->name, "scope",
			      t->scope, "masked", t->masked);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

int store_token_create(struct store *st, const char *name, const char *scope, const char *actor,
		       char *secret_out, size_t cap, struct console_token *out)
{
	struct console_token t = { 0 };
	char created[24];
	int rc;

	if (!store_console_user_name_valid(name))
		return fail(st, -EINVAL, "bad token name (1-%d of A-Z a-z 0-9 _ . @ -)", STORE_USER_MAX);
	if (!scope || (strcmp(scope, "read") && strcmp(scope, "write")))
		return fail(st, -EINVAL, "scope must be read or write");
	if (cap < STORE_TOKEN_MAX)
		return fail(st, -ENOBUFS, "token buffer too small");
	memcpy(t.id, "tok_", 4);
	memcpy(secret_out, "ilc_", 4);
	if (secret_random_alnum(t.id + 4, STORE_TOKEN_ID_LEN - 4) ||
	    secret_random_alnum(secret_out + 4, STORE_TOKEN_BODY))
		return fail(st, -EIO, "random source failed");
	secret_out[4 + STORE_TOKEN_BODY] = '\0';
	secret_sha256_hex(secret_out, 4 + STORE_TOKEN_BODY, t.hash);
	secret_mask(secret_out, 4 + STORE_TOKEN_BODY, t.masked);
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.scope, sizeof(t.scope), "%s", scope);
	snprintf(t.created_by, sizeof(t.created_by), "%s", actor ? actor : "unknown");
	t.created = (int64_t)time(NULL);
	snprintf(created, sizeof(created), "%" PRId64, t.created);
	if ((rc = store_tx_begin(st)))
		goto wipe;
	const char *p[7] = { t.id, t.name, t.hash, t.masked, t.scope, created, t.created_by };
	if (!(rc = sql_none(st, "SELECT id FROM console_tokens WHERE name = $1", p + 1,
			    "a token named %s already exists", name)) &&
	    !(rc = st->ops->sql(st, "INSERT INTO console_tokens (id, name, hash, masked, scope, "
				"created, created_by) VALUES ($1, $2, $3, $4, $5, "
				"CAST($6 AS BIGINT), $7)", p, 7, NULL)))
		rc = audit_json(st, actor, "token.create", true, token_json(&t));
	rc = store_tx_end(st, rc);
wipe:
	if (rc)
		memset(secret_out, 0, cap);
	else if (out)
		*out = t;
	return rc;
}

#define TOKEN_COLS "id, name, hash, masked, scope, created, created_by"

static void row_to_token(const struct store_rows *r, size_t i, struct console_token *t)
{
	memset(t, 0, sizeof(*t));
	cell_copy(t->id, sizeof(t->id), r, i, 0);
	cell_copy(t->name, sizeof(t->name), r, i, 1);
	cell_copy(t->hash, sizeof(t->hash), r, i, 2);
	cell_copy(t->masked, sizeof(t->masked), r, i, 3);
	cell_copy(t->scope, sizeof(t->scope), r, i, 4);
	t->created = cell_i64(r, i, 5);
	cell_copy(t->created_by, sizeof(t->created_by), r, i, 6);
}

int store_token_get_by_hash(struct store *st, const char *sha256_hex, struct console_token *out)
{
	struct store_rows r = { 0 };
	const char *p[1] = { sha256_hex };
	int rc;

	if ((rc = sql_row(st, "SELECT " TOKEN_COLS " FROM console_tokens WHERE hash = $1", p, 1, &r,
			  "no such token"))) {
		store_rows_free(&r);
		return rc;
	}
	row_to_token(&r, 0, out);
	store_rows_free(&r);
	return 0;
}

int store_token_list(struct store *st, struct console_token **out, size_t *n)
{
	struct store_rows r = { 0 };
	int rc;

	*n = 0;
	if ((rc = sql_list(st, "SELECT " TOKEN_COLS " FROM console_tokens ORDER BY created, id", &r,
			   sizeof(**out), (void **)out)))
		return rc;
	for (size_t i = 0; i < r.n; i++)
		row_to_token(&r, i, &(*out)[i]);
	*n = r.n;
	store_rows_free(&r);
	return 0;
}

int store_token_revoke(struct store *st, const char *id, const char *actor)
{
	struct store_rows r = { 0 };
	struct console_token t;
	int rc;

	if ((rc = store_tx_begin(st)))
		return rc;
	if (!(rc = sql_remove(st, "DELETE FROM console_tokens WHERE id = $1 RETURNING " TOKEN_COLS,
			      "token", id, &r))) {
		row_to_token(&r, 0, &t);
		rc = audit_json(st, actor, "token.revoke", false, token_json(&t));
	}
	store_rows_free(&r);
	return store_tx_end(st, rc);
}

/* ---- key changes ---- */

struct note_arg {
	const char *name, *note;
};

static int do_note(struct store *st, const struct key_info *before, const void *arg)
{
	const struct note_arg *a = arg;
	char nbuf[STORE_NAME_MAX + 1], *nt;
	int rc;

	/* names and notes are listed everywhere: a key pasted into them is stored masked */
	snprintf(nbuf, sizeof(nbuf), "%s", a->name ? a->name : before->name);
	secret_redact(nbuf, strlen(nbuf));
	if (!(nt = strdup(a->note ? a->note : (before->note ? before->note : ""))))
		return -ENOMEM;
	secret_redact(nt, strlen(nt));
	const char *p[3] = { before->id, nbuf, nt[0] ? nt : NULL };
	rc = st->ops->sql(st, "UPDATE keys SET name = $2, note = $3 WHERE id = $1", p, 3, NULL);
	free(nt);
	return rc;
}

int store_key_set_note(struct store *st, const char *id, const char *name, const char *note,
		       const char *actor)
{
	const struct note_arg a = { name, note };

	if (name && strlen(name) > STORE_NAME_MAX)
		return fail(st, -EINVAL, "name longer than %d bytes", STORE_NAME_MAX);
	if (note && strlen(note) > STORE_NOTE_MAX)
		return fail(st, -EINVAL, "note longer than %d bytes", STORE_NOTE_MAX);
	if (!name && !note)
		return fail(st, -EINVAL, "nothing to change (name, note)");
	return store_key_change(st, id, "edit", actor, NULL, do_note, &a);
}

static int do_report(struct store *st, const struct key_info *before, const void *arg)
{
	const char *p[2] = { before->id, *(const bool *)arg ? "1" : "0" };
	int rc;

	if ((rc = store_allow_permitted(st, before, true)))
		return rc;
	return st->ops->sql(st, "UPDATE keys SET allow_report = CAST($2 AS INTEGER) WHERE id = $1",
			    p, 2, NULL);
}

int store_key_set_report(struct store *st, const char *id, bool report, const char *actor)
{
	return store_key_change(st, id, report ? "report" : "enforce", actor, NULL, do_report,
				&report);
}

struct replace_arg {
	const char *const *entries;
	size_t n;
};

static int do_allow_replace(struct store *st, const struct key_info *before, const void *arg)
{
	const struct replace_arg *a = arg;
	char canon[STORE_ENTRY_MAX + 1];
	int rc;

	if ((rc = store_allow_permitted(st, before, a->n)) ||
	    (rc = st->ops->allow_clear(st, before->id)))
		return rc;
	for (size_t i = 0; i < a->n && !rc; i++) {
		store_entry_canon(a->entries[i], canon, sizeof(canon));
		rc = st->ops->allow_add(st, before->id, canon);
	}
	return rc;
}

int store_key_allow_replace(struct store *st, const char *id, const char *const *entries,
			    size_t n, const char *actor, const char *reason)
{
	const struct replace_arg a = { entries, n };
	char canon[STORE_ENTRY_MAX + 1];

	/* every entry is checked before anything is written: a bad one changes nothing */
	for (size_t i = 0; i < n; i++) {
		const char *why = store_entry_canon(entries[i], canon, sizeof(canon));
		if (why)
			return fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", entries[i], why);
	}
	return store_key_change(st, id, "restrict", actor, reason, do_allow_replace, &a);
}

/* ---- key pages ---- */

void store_key_page_free(struct key_listed *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_key_clear(&v[i].k);
	free(v);
}

/* A LIKE pattern matching s anywhere, lower case, with '\' escaping. */
static char *like_pattern(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(2 * n + 3), *o = p;

	if (!p)
		return NULL;
	*o++ = '%';
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' || c == '_' || c == '\\')
			*o++ = '\\';
		*o++ = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	*o++ = '%';
	*o = '\0';
	return p;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int perm_cmp(const void *a, const void *b)
{
	return strcmp(((const struct key_perm *)a)->resource, ((const struct key_perm *)b)->resource);
}

/* Allowlists and permissions of every key of the page: two statements whatever its size. */
static int page_children(struct store *st, struct key_listed *v, size_t n)
{
	static const char *const sqls[2] = {
		"SELECT key_id, entry FROM allow WHERE key_id IN (",
		"SELECT key_id, resource, level FROM perms WHERE key_id IN (",
	};
	const char **p = calloc(n, sizeof(*p));
	char *sql = malloc(80 + n * 8);
	int rc = 0;

	if (!p || !sql) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = v[i].k.id;
	for (int which = 0; which < 2 && !rc; which++) {
		struct store_rows r = { 0 };
		size_t o = (size_t)sprintf(sql, "%s", sqls[which]);
		for (size_t i = 0; i < n; i++)
			o += (size_t)sprintf(sql + o, "%s$%zu", i ? "," : "", i + 1);
		sprintf(sql + o, ")");
		if ((rc = st->ops->sql(st, sql, p, n, &r)))
			break;
		for (size_t i = 0; i < r.n && !rc; i++) {
			const char *kid = store_cell(&r, i, 0);
			struct key_info *k = NULL;
			for (size_t j = 0; j < n && !k; j++)
				if (kid && !strcmp(v[j].k.id, kid))
					k = &v[j].k;
			if (!k)
				continue;
			if (which == 0) {
				char **na = realloc(k->allow, (k->n_allow + 1) * sizeof(*na));
				if (!na || !(na[k->n_allow] = strdup(store_cell(&r, i, 1) ?
								      store_cell(&r, i, 1) : ""))) {
					if (na)
						k->allow = na;
					rc = -ENOMEM;
					break;
				}
				k->allow = na;
				k->n_allow++;
			} else {
				struct key_perm *np = realloc(k->perms, (k->n_perms + 1) * sizeof(*np));
				if (!np) {
					rc = -ENOMEM;
					break;
				}
				k->perms = np;
				struct key_perm *kp = &k->perms[k->n_perms++];
				cell_copy(kp->resource, sizeof(kp->resource), &r, i, 1);
				kp->level = PERM_NONE;
				perm_level_parse(store_cell(&r, i, 2) ? store_cell(&r, i, 2) : "", &kp->level);
			}
		}
		store_rows_free(&r);
	}
	/* the same byte order on both backends */
	for (size_t i = 0; i < n && !rc; i++) {
		if (v[i].k.n_allow > 1)
			qsort(v[i].k.allow, v[i].k.n_allow, sizeof(char *), str_cmp);
		if (v[i].k.n_perms > 1)
			qsort(v[i].k.perms, v[i].k.n_perms, sizeof(struct key_perm), perm_cmp);
	}
out:
	free(p);
	free(sql);
	return rc;
}

int store_key_page(struct store *st, const struct key_query *q, struct key_listed **out,
		   size_t *n, bool *has_more)
{
	char sql[1400], now[24], lim[24], after_c[24], *like = NULL;
	const char *p[10];
	size_t np = 0, o = 0;
	struct store_rows r = { 0 };
	struct key_listed *v = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	*has_more = false;
	if (q->limit < 1 || q->limit > 100)
		return fail(st, -EINVAL, "limit must be 1-100");
#define ADD(...) (o += (size_t)snprintf(sql + o, sizeof(sql) - o, __VA_ARGS__))
	ADD("SELECT k.id, k.hash, k.masked, k.type, k.mode, k.name, k.created, k.expires_at, "
	    "k.revoked_at, k.rotated_from, k.gen, k.note, k.allow_report, u.last_used, "
	    "u.last_client FROM keys k LEFT JOIN key_usage u ON u.key_id = k.id WHERE 1 = 1");
	if (q->type && !strcmp(q->type, "standard")) {
		ADD(" AND k.type IN ('secret', 'publishable')");
	} else if (q->type) {
		enum key_type t;
		if (!key_type_parse(q->type, &t))
			return fail(st, -EINVAL, "type must be secret, restricted, publishable, org or "
				    "standard");
		p[np++] = q->type;
		ADD(" AND k.type = $%zu", np);
	}
	if (q->mode) {
		enum key_mode m;
		if (!key_mode_parse(q->mode, &m))
			return fail(st, -EINVAL, "mode must be live or test");
		p[np++] = q->mode;
		ADD(" AND k.mode = $%zu", np);
	}
	snprintf(now, sizeof(now), "%" PRId64, q->now);
	if (q->status && !strcmp(q->status, "active")) {
		p[np++] = now;
		ADD(" AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > "
		    "CAST($%zu AS BIGINT))", np);
	} else if (q->status && !strcmp(q->status, "revoked")) {
		ADD(" AND k.revoked_at IS NOT NULL");
	} else if (q->status && strcmp(q->status, "all")) {
		return fail(st, -EINVAL, "status must be active, revoked or all");
	}
	if (q->search && q->search[0]) {
		if (strlen(q->search) > STORE_NAME_MAX)
			return fail(st, -EINVAL, "search text longer than %d bytes", STORE_NAME_MAX);
		if (!(like = like_pattern(q->search)))
			return -ENOMEM;
		p[np++] = like;
		p[np++] = q->search;
		ADD(" AND (lower(k.name) LIKE $%zu ESCAPE '\\' OR lower(COALESCE(k.note, '')) LIKE "
		    "$%zu ESCAPE '\\' OR k.id = $%zu", np - 1, np - 1, np);
		/* the last 4 of a key: the masked form ends in them */
		if (strlen(q->search) == 4)
			ADD(" OR substr(k.masked, length(k.masked) - 3) = $%zu", np);
		ADD(")");
	}
	if (q->after_id[0]) {
		snprintf(after_c, sizeof(after_c), "%" PRId64, q->after_created);
		p[np++] = after_c;
		p[np++] = q->after_id;
		/* a row value: both databases walk the (created, id) index from there */
		ADD(" AND (k.created, k.id) < (CAST($%zu AS BIGINT), $%zu)", np - 1, np);
	}
	snprintf(lim, sizeof(lim), "%zu", q->limit + 1);
	p[np++] = lim;
	ADD(" ORDER BY k.created DESC, k.id DESC LIMIT CAST($%zu AS BIGINT)", np);
#undef ADD
	if (o >= sizeof(sql)) {
		rc = fail(st, -EINVAL, "query too long");
		goto out;
	}
	if ((rc = st->ops->sql(st, sql, p, np, &r)))
		goto out;
	size_t cnt = r.n > q->limit ? q->limit : r.n;
	*has_more = r.n > q->limit;
	if (cnt && !(v = calloc(cnt, sizeof(*v)))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		struct key_info *k = &v[i].k;
		cell_copy(k->id, sizeof(k->id), &r, i, 0);
		cell_copy(k->hash, sizeof(k->hash), &r, i, 1);
		cell_copy(k->masked, sizeof(k->masked), &r, i, 2);
		key_type_parse(store_cell(&r, i, 3) ? store_cell(&r, i, 3) : "", &k->type);
		key_mode_parse(store_cell(&r, i, 4) ? store_cell(&r, i, 4) : "", &k->mode);
		cell_copy(k->name, sizeof(k->name), &r, i, 5);
		k->created = cell_i64(&r, i, 6);
		k->expires_at = cell_i64(&r, i, 7);
		k->revoked_at = cell_i64(&r, i, 8);
		cell_copy(k->rotated_from, sizeof(k->rotated_from), &r, i, 9);
		k->gen = cell_i64(&r, i, 10);
		const char *note = store_cell(&r, i, 11);
		k->note = note && note[0] ? strdup(note) : NULL;
		k->allow_report = cell_i64(&r, i, 12) != 0;
		v[i].last_used = cell_i64(&r, i, 13);
		cell_copy(v[i].last_client, sizeof(v[i].last_client), &r, i, 14);
	}
	if (cnt && (rc = page_children(st, v, cnt)))
		goto out;
	*out = v;
	*n = cnt;
	v = NULL;
out:
	if (v)
		store_key_page_free(v, cnt);
	store_rows_free(&r);
	free(like);
	return rc;
}

/* ---- audit ---- */

int store_audit_query(struct store *st, const char *key_id, const char *actor,
		      int64_t before_seq, size_t limit,
		      int (*cb)(const struct audit_record *r, void *arg), void *arg,
		      bool *has_more)
{
	char sql[400], lim[24], before[24];
	const char *p[4];
	size_t np = 0, o = 0;
	struct store_rows r = { 0 };
	int rc;

	*has_more = false;
	if (limit < 1 || limit > 1000)
		return fail(st, -EINVAL, "limit must be 1-1000");
	o += (size_t)snprintf(sql + o, sizeof(sql) - o, "SELECT seq, time, actor, key_id, action, "
			      "before, after, reason FROM audit WHERE 1 = 1");
	if (key_id) {
		p[np++] = key_id;
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, " AND key_id = $%zu", np);
	}
	if (actor) {
		p[np++] = actor;
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, " AND actor = $%zu", np);
	}
	if (before_seq > 0) {
		snprintf(before, sizeof(before), "%" PRId64, before_seq);
		p[np++] = before;
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, " AND seq < CAST($%zu AS BIGINT)", np);
	}
	snprintf(lim, sizeof(lim), "%zu", limit + 1);
	p[np++] = lim;
	snprintf(sql + o, sizeof(sql) - o, " ORDER BY seq DESC LIMIT CAST($%zu AS BIGINT)", np);
	if ((rc = st->ops->sql(st, sql, p, np, &r)))
		return rc;
	*has_more = r.n > limit;
	for (size_t i = 0; i < r.n && i < limit; i++) {
		struct audit_record a = {
			.seq = cell_i64(&r, i, 0),
			.time = cell_i64(&r, i, 1),
			.actor = store_cell(&r, i, 2),
			.key_id = store_cell(&r, i, 3),
			.action = store_cell(&r, i, 4),
			.before = store_cell(&r, i, 5),
			.after = store_cell(&r, i, 6),
			.reason = store_cell(&r, i, 7),
		};
		if (cb(&a, arg))
			break;
	}
	store_rows_free(&r);
	return 0;
}
