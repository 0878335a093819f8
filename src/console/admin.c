/* admin.c (console): `iplock console users ...` and `tokens ...` on the store (console.h).
 * Output on stdout; a token's text is printed once, at creation, and never again.
 * console/ owns `iplock console`: its config, server, API, sessions, request parsers, embedded
 * UI (ui/ holds its JS and CSS) and these commands. It may include core/, net/, http/ and
 * store/, never another product. */
#include "console/console.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/pwhash.h"
#include "store/store.h"

#define PW_ITERATIONS 100000
#define PW_MIN        10

static int open_db(const char *db, struct store **st, char *err, size_t cap)
{
	if (store_open(db, st)) {
		snprintf(err, cap, "%s", store_errmsg(NULL));
		return 1;
	}
	return 0;
}

static int done(struct store *st, int rc, char *err, size_t cap)
{
	if (rc)
		snprintf(err, cap, "%s", store_errmsg(st));
	store_close(st);
	return rc ? 1 : 0;
}

int console_user_add(const char *db, const char *name, const char *password, size_t pwlen,
		     const char *role, const char *actor, char *err, size_t cap)
{
	char hash[STORE_HASH_MAX];
	struct store *st;

	if (!store_console_user_name_valid(name)) {
		snprintf(err, cap, "bad user name (1-%d of A-Z a-z 0-9 _ . @ -)", STORE_USER_MAX);
		return 2;
	}
	if (strcmp(role, "admin") && strcmp(role, "viewer")) {
		snprintf(err, cap, "role must be admin or viewer");
		return 2;
	}
	if (pwlen < PW_MIN || pwlen > 1024 || memchr(password, '\0', pwlen)) {
		snprintf(err, cap, "the password must be %d-1024 characters", PW_MIN);
		return 2;
	}
	if (pwhash_make(password, pwlen, PW_ITERATIONS, hash, sizeof(hash))) {
		snprintf(err, cap, "cannot hash the password");
		return 1;
	}
	if (open_db(db, &st, err, cap))
		return 1;
	int rc = store_console_user_add(st, name, hash, role, actor);
	if (!rc)
		printf("added console user %s (%s)\n", name, role);
	return done(st, rc, err, cap);
}

int console_user_list(const char *db, bool json, char *err, size_t cap)
{
	struct console_user *u = NULL;
	struct store *st;
	size_t n = 0;

	if (open_db(db, &st, err, cap))
		return 1;
	int rc = store_console_user_list(st, &u, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		if (json)
			printf("{\"name\": \"%s\", \"role\": \"%s\", \"created\": %" PRId64 "}\n",
			       u[i].name, u[i].role, u[i].created);
		else
			printf("%-24s %s\n", u[i].name, u[i].role);
	}
	free(u);
	return done(st, rc, err, cap);
}

/* Removes or revokes one named thing with fn, then says "DONE NAME". */
static int end_one(const char *db, int (*fn)(struct store *, const char *, const char *),
		   const char *done_what, const char *name, const char *actor, char *err, size_t cap)
{
	struct store *st;

	if (open_db(db, &st, err, cap))
		return 1;
	int rc = fn(st, name, actor);
	if (!rc)
		printf("%s %s\n", done_what, name);
	return done(st, rc, err, cap);
}

int console_user_remove(const char *db, const char *name, const char *actor, char *err,
			size_t cap)
{
	return end_one(db, store_console_user_remove, "removed console user", name, actor, err, cap);
}

int console_token_create(const char *db, const char *name, const char *scope,
			 const char *actor, char *err, size_t cap)
{
	char secret[STORE_TOKEN_MAX];
	struct console_token t;
	struct store *st;

	if (open_db(db, &st, err, cap))
		return 1;
	int rc = store_token_create(st, name, scope, actor, secret, sizeof(secret), &t);
	if (!rc) {
		printf("%s\n", secret);
		fprintf(stderr, "token %s (%s, %s scope): shown once, keep it now "
			"(Authorization: Bearer ...)\n", t.id, t.name, t.scope);
		memset(secret, 0, sizeof(secret));
	}
	return done(st, rc, err, cap);
}

int console_token_list(const char *db, bool json, char *err, size_t cap)
{
	struct console_token *t = NULL;
	struct store *st;
	size_t n = 0;

	if (open_db(db, &st, err, cap))
		return 1;
	int rc = store_token_list(st, &t, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		if (json)
			printf("{\"id\": \"%s\", \"name\": \"%s\", \"scope\": \"%s\", \"masked\": \"%s\", "
			       "\"created\": %" PRId64 "}\n", t[i].id, t[i].name, t[i].scope, t[i].masked,
			       t[i].created);
		else
			printf("%-22s %-24s %-6s %s\n", t[i].id, t[i].name, t[i].scope, t[i].masked);
	}
	free(t);
	return done(st, rc, err, cap);
}

int console_token_revoke(const char *db, const char *id, const char *actor, char *err,
			 size_t cap)
{
	return end_one(db, store_token_revoke, "revoked token", id, actor, err, cap);
}
