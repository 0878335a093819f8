/* api.c (console, ~1650 lines: the whole API surface in one place so every endpoint goes
 * through the same checks in the same order): routing, authentication, CSRF, roles and
 * scopes, body validation, the handlers over the store, and the UI files. Order of checks for
 * every request: route (404/405), authentication (401), CSRF on a change by session (403),
 * role or token scope (403), body (413/415/400), then the handler; a refused request reaches
 * no store write. */
#include "console/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "console/assets.h"
#include "console/egress.h"
#include "console/parse.h"
#include "console/session.h"
#include "core/pwhash.h"
#include "core/secret.h"
#include "net/addr.h"

#define COOKIE_NAME      "iplock_session"
#define ALLOW_MAX        100     /* entries of an allowlist (Klarna's limit) */
#define CHECK_DAYS       7       /* the check before saving looks at this much traffic */
#define PW_ITERATIONS    100000
#define PW_MIN           10
#define PW_MAX           1024
#define REASON_MAX       500

struct api {
	const struct console_config *cfg;
	struct store *st;
	struct sessions *sess;
	struct throttle *thr;
	char dummy_hash[STORE_HASH_MAX];   /* verified for unknown users: same time as a real one */
};

enum need {
	NEED_NONE = 0,          /* no authentication (login, health) */
	NEED_AUTH,              /* any user or token: reads, and checks that change nothing */
	NEED_CHANGE,            /* an admin session or a write token */
	NEED_ADMIN,             /* an admin session (users, tokens) */
};

struct ctx {
	struct api *a;
	const struct api_req *rq;
	struct api_resp *rs;
	int64_t now;
	struct session *sess;          /* NULL for a token */
	bool token;
	char actor[STORE_USER_MAX + 16];
	char user[STORE_USER_MAX + 1];
	char role[8];                  /* session: admin/viewer */
	char scope[8];                 /* token: read/write */
	json_t *body;                  /* the parsed body, or NULL */
};

/* ---- replies ---- */

static const char *error_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 429: return "rate_limit_error";
	default: return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

static void reply_json(struct ctx *c, int status, json_t *j)
{
	free(c->rs->body);
	c->rs->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!c->rs->body) {
		status = 500;
		c->rs->body = strdup("{\"error\":{\"type\":\"api_error\",\"code\":\"store_error\","
				     "\"message\":\"out of memory\"}}");
	}
	c->rs->status = status;
	c->rs->ctype = "application/json";
	c->rs->body_len = c->rs->body ? strlen(c->rs->body) : 0;
}

static void add_header(struct api_resp *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_header(struct api_resp *rs, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rs->extra + rs->extra_len, sizeof(rs->extra) - rs->extra_len, fmt, ap);
	va_end(ap);
	if (n > 0 && rs->extra_len + (size_t)n < sizeof(rs->extra))
		rs->extra_len += (size_t)n;
	else
		rs->extra[rs->extra_len] = '\0';
}

/* The error envelope; extra (may be NULL, stolen) is merged into "error". */
static void reply_err_x(struct ctx *c, int status, const char *code, const char *param,
			json_t *extra, const char *fmt, va_list ap)
{
	char msg[400];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one line, and never a key's text even when the input quoted one */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	secret_redact(msg, strlen(msg));
	json_t *e = json_pack("{s:s, s:s, s:s}", "type", error_type(status), "code", code,
			      "message", msg);
	if (e && param)
		json_object_set_new(e, "param", json_string(param));
	if (e && extra)
		json_object_update(e, extra);
	json_decref(extra);
	reply_json(c, status, e ? json_pack("{s:o}", "error", e) : NULL);
}

static void reply_err(struct ctx *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_err(struct ctx *c, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_err_x(c, status, code, NULL, NULL, fmt, ap);
	va_end(ap);
}

static void reply_extra(struct ctx *c, int status, const char *code, json_t *extra,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reply_extra(struct ctx *c, int status, const char *code, json_t *extra,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_err_x(c, status, code, NULL, extra, fmt, ap);
	va_end(ap);
}

static void reply_param(struct ctx *c, int status, const char *code, const char *param,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reply_param(struct ctx *c, int status, const char *code, const char *param,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_err_x(c, status, code, param, NULL, fmt, ap);
	va_end(ap);
}

/* A store error as an API error. */
static void reply_store(struct ctx *c, int rc)
{
	const char *m = store_errmsg(c->a->st);

	switch (rc) {
	case -ENOENT: reply_err(c, 404, "not_found", "%s", m); break;
	case -EINVAL:
		reply_err(c, 400, strstr(m, "allowlist entry") ? "invalid_entry" : "invalid_field",
			  "%s", m);
		break;
	case -EALREADY: reply_err(c, 409, "already_revoked", "%s", m); break;
	case -EEXIST: reply_err(c, 409, "conflict", "%s", m); break;
	case -EPERM: reply_err(c, 409, "not_allowed", "%s", m); break;
	case -ENOMEM: reply_err(c, 500, "store_error", "out of memory"); break;
	default: reply_err(c, 500, "store_error", "%s", m[0] ? m : "store error"); break;
	}
}

/* ---- body fields ---- */

/* Every member of the body is one of names (NULL-terminated), else a 400. */
static bool fields_only(struct ctx *c, const char *const *names)
{
	const char *k;
	json_t *v;

	json_object_foreach(c->body, k, v) {
		bool ok = false;
		for (size_t i = 0; names[i] && !ok; i++)
			ok = !strcmp(k, names[i]);
		if (!ok) {
			char list[200] = "";
			for (size_t i = 0, o = 0; names[i] && o < sizeof(list); i++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
						      names[i]);
			reply_param(c, 400, "unknown_field", k, "unknown field '%.64s' (this call takes: %s)",
				    k, list);
			return false;
		}
	}
	return true;
}

/* A string member: *out NULL when absent and optional. */
static bool field_str(struct ctx *c, const char *name, bool required, size_t max,
		      const char **out)
{
	json_t *v = c->body ? json_object_get(c->body, name) : NULL;

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required) {
			reply_param(c, 400, "missing_field", name, "missing field '%s'", name);
			return false;
		}
		return true;
	}
	if (!json_is_string(v)) {
		reply_param(c, 400, "invalid_field", name, "'%s' must be a string", name);
		return false;
	}
	if (json_string_length(v) > max) {
		reply_param(c, 400, "invalid_field", name, "'%s' is longer than %zu bytes", name, max);
		return false;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		reply_param(c, 400, "invalid_field", name, "'%s' holds a NUL byte", name);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool field_enum(struct ctx *c, const char *name, bool required, const char *const *allowed,
		       const char **out)
{
	if (!field_str(c, name, required, 64, out))
		return false;
	if (!*out)
		return true;
	for (size_t i = 0; allowed[i]; i++)
		if (!strcmp(*out, allowed[i]))
			return true;
	char list[160] = "";
	for (size_t i = 0, o = 0; allowed[i] && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", allowed[i]);
	reply_param(c, 400, "invalid_field", name, "'%s' must be one of: %s", name, list);
	return false;
}

/* ---- keys as JSON ---- */

static const char *key_status(const struct key_info *k, int64_t now)
{
	if (k->revoked_at)
		return "revoked";
	if (k->expires_at && k->expires_at <= now)
		return "expired";
	return "active";
}

static json_t *key_json(const struct key_info *k, int64_t last_used, const char *last_client,
			int64_t now)
{
	json_t *allow, *perms, *o = store_key_json_start(k, true, &allow, &perms);

	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "name", json_string(k->name));
	json_object_set_new(o, "note", json_string(k->note ? k->note : ""));
	json_object_set_new(o, "masked", json_string(k->masked));
	json_object_set_new(o, "type", json_string(key_type_name(k->type)));
	json_object_set_new(o, "mode", json_string(key_mode_name(k->mode)));
	json_object_set_new(o, "status", json_string(key_status(k, now)));
	store_key_json_times(o, k);
	json_object_set_new(o, "allowlist", allow);
	json_object_set_new(o, "allowlist_mode", json_string(k->allow_report ? "report" : "enforce"));
	json_object_set_new(o, "permissions", perms);
	json_object_set_new(o, "last_used", last_used ?
			    json_pack("{s:I, s:s}", "time", (json_int_t)last_used, "client",
				      last_client ? last_client : "") : json_null());
	return o;
}

/* ---- usage of the last days, per client address ---- */

struct client_use {
	char client[STORE_CLIENT_MAX];
	int64_t allowed, denied, reported, last_seen;
};

static int usage_recent(struct ctx *c, const char *key_id, struct client_use **out, size_t *n,
			int64_t *last_used, char *last_client, size_t cap)
{
	struct usage_rec *h = NULL;
	size_t nh = 0, cnt = 0;
	struct client_use *v = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_usage_get(c->a->st, key_id, last_used, last_client, cap, &h, &nh)))
		return rc;
	int64_t since = c->now - (int64_t)CHECK_DAYS * 86400 - 3600;
	for (size_t i = 0; i < nh; i++) {
		if (h[i].hour < since)
			continue;
		size_t j;
		for (j = 0; j < cnt && strcmp(v[j].client, h[i].client); j++)
			;
		if (j == cnt) {
			struct client_use *nv = realloc(v, (cnt + 1) * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				goto out;
			}
			v = nv;
			memset(&v[cnt], 0, sizeof(v[cnt]));
			snprintf(v[cnt].client, sizeof(v[cnt].client), "%s", h[i].client);
			cnt++;
		}
		v[j].allowed += h[i].allowed;
		v[j].denied += h[i].denied;
		v[j].reported += h[i].reported;
		/* hourly rows: the hour's start, or the exact time for the key's last client */
		if (h[i].hour > v[j].last_seen)
			v[j].last_seen = h[i].hour;
	}
	for (size_t j = 0; j < cnt; j++)
		if (*last_used && !strcmp(v[j].client, last_client) && *last_used > v[j].last_seen)
			v[j].last_seen = *last_used;
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	free(h);
	return rc;
}

static json_t *client_json(const struct client_use *u)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "client", u->client,
			 "allowed", (json_int_t)u->allowed, "denied", (json_int_t)u->denied,
			 "would_refuse", (json_int_t)u->reported,
			 "requests", (json_int_t)(u->allowed + u->denied),
			 "last_seen", (json_int_t)u->last_seen);
}

/* ---- allowlists ---- */

struct entries {
	char (*v)[STORE_ENTRY_MAX + 1];
	size_t n;
};

/* A JSON array of address/CIDR texts, each canonical, duplicates dropped; else a 400 naming
 * the entry (a CIDR with host bits set says what to write instead). */
static bool parse_entries(struct ctx *c, const char *name, json_t *arr, struct entries *out)
{
	size_t i;
	json_t *v;

	out->v = NULL;
	out->n = 0;
	if (!arr) {
		reply_param(c, 400, "missing_field", name, "missing field '%s'", name);
		return false;
	}
	if (!json_is_array(arr)) {
		reply_param(c, 400, "invalid_field", name, "'%s' must be an array of addresses and "
			    "CIDR ranges", name);
		return false;
	}
	if (json_array_size(arr) > ALLOW_MAX) {
		reply_param(c, 400, "too_many_entries", name, "'%s' holds more than %d entries", name,
			    ALLOW_MAX);
		return false;
	}
	if (json_array_size(arr) && !(out->v = calloc(json_array_size(arr), sizeof(*out->v)))) {
		reply_err(c, 500, "store_error", "out of memory");
		return false;
	}
	json_array_foreach(arr, i, v) {
		char param[64], canon[STORE_ENTRY_MAX + 1];
		snprintf(param, sizeof(param), "%s[%zu]", name, i);
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			reply_param(c, 400, "invalid_entry", param, "%s must be a string", param);
			goto fail;
		}
		const char *why = store_entry_canon(json_string_value(v), canon, sizeof(canon));
		if (why) {
			reply_param(c, 400, "invalid_entry", param, "%s '%.64s': %s", param,
				    json_string_value(v), why);
			goto fail;
		}
		size_t j;
		for (j = 0; j < out->n && strcmp(out->v[j], canon); j++)
			;
		if (j == out->n)
			memcpy(out->v[out->n++], canon, sizeof(canon));
	}
	return true;
fail:
	free(out->v);
	out->v = NULL;
	return false;
}

static int entries_set(const struct entries *e, struct cidr_set **out)
{
	struct cidr_set *s = cidr_set_new();

	*out = NULL;
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < e->n; i++) {
		struct cidr cr;
		if (cidr_parse(e->v[i], strlen(e->v[i]), &cr) || cidr_set_add(s, &cr)) {
			cidr_set_free(s);
			return -EINVAL;
		}
	}
	*out = s;
	return 0;
}

static bool addr_in(const struct cidr_set *s, const char *text)
{
	struct ipaddr ip;

	if (ipaddr_parse(text, strlen(text), &ip))
		return false;
	return cidr_set_contains(s, &ip);
}

static int str_sort(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The check before saving: clients of the last days the new list would refuse, the fleet's
 * egress addresses it leaves out, and the list observed traffic suggests. An empty list
 * restricts nothing, so it refuses no one. */
static json_t *check_json(struct ctx *c, const struct key_info *k, const struct entries *e,
			  size_t *warnings, char *summary, size_t sumcap)
{
	struct client_use *use = NULL;
	size_t nuse = 0, negress = 0, so = 0;
	char (*egress)[EGRESS_TEXT_MAX] = NULL;
	char last_client[STORE_CLIENT_MAX];
	int64_t last_used = 0;
	struct cidr_set *set = NULL;
	json_t *res = NULL, *refused = json_array(), *missing = json_array(), *sugg = json_array();
	json_t *list = json_array();

	*warnings = 0;
	summary[0] = '\0';
	if (!refused || !missing || !sugg || !list)
		goto out;
	if (usage_recent(c, k->id, &use, &nuse, &last_used, last_client, sizeof(last_client)) ||
	    console_egress_list(c->a->cfg, c->a->st, &egress, &negress) || entries_set(e, &set))
		goto out;
	for (size_t i = 0; i < e->n; i++)
		json_array_append_new(list, json_string(e->v[i]));
	for (size_t i = 0; i < nuse; i++) {
		if (!use[i].allowed)
			continue;   /* refused already: the new list changes nothing for it */
		bool ok = !e->n || addr_in(set, use[i].client);
		if (!ok) {
			json_array_append_new(refused, client_json(&use[i]));
			if (so < sumcap)
				so += (size_t)snprintf(summary + so, sumcap - so, "%sclient %s (%" PRId64
						       " requests)", so ? ", " : "", use[i].client,
						       use[i].allowed);
		}
		struct ipaddr ip;
		if (!ipaddr_parse(use[i].client, strlen(use[i].client), &ip))
			json_array_append_new(sugg, json_string(use[i].client));
	}
	for (size_t i = 0; i < negress; i++) {
		if (e->n && !addr_in(set, egress[i])) {
			json_array_append_new(missing, json_string(egress[i]));
			if (so < sumcap)
				so += (size_t)snprintf(summary + so, sumcap - so, "%segress %s",
						       so ? ", " : "", egress[i]);
		}
		size_t j;
		for (j = 0; j < json_array_size(sugg) &&
			    strcmp(json_string_value(json_array_get(sugg, j)), egress[i]); j++)
			;
		if (j == json_array_size(sugg))
			json_array_append_new(sugg, json_string(egress[i]));
	}
	/* suggestions in a stable order (jansson arrays sort through their item pointers) */
	size_t ns = json_array_size(sugg);
	json_t **items = ns ? calloc(ns, sizeof(*items)) : NULL;
	if (ns && items) {
		for (size_t i = 0; i < ns; i++)
			items[i] = json_incref(json_array_get(sugg, i));
		qsort(items, ns, sizeof(*items), str_sort);
		json_array_clear(sugg);
		for (size_t i = 0; i < ns; i++)
			json_array_append_new(sugg, items[i]);
	}
	free(items);
	*warnings = json_array_size(refused) + json_array_size(missing);
	res = json_pack("{s:O, s:O, s:O, s:O, s:I, s:b}", "allowlist", list, "refused_clients",
			refused, "missing_egress", missing, "suggested", sugg,
			"warnings", (json_int_t)*warnings, "needs_confirm", *warnings > 0);
out:
	json_decref(refused);
	json_decref(missing);
	json_decref(sugg);
	json_decref(list);
	cidr_set_free(set);
	free(use);
	free(egress);
	return res;
}

/* ---- handlers ---- */

static json_t *me_json(struct ctx *c)
{
	json_t *j = json_pack("{s:{s:s, s:s}, s:s}", "user", "name", c->token ? c->actor : c->user,
			      "role", c->token ? (strcmp(c->scope, "write") ? "viewer" : "admin") :
			      c->role, "auth", c->token ? "token" : "session");

	if (!j)
		return NULL;
	if (c->token) {
		json_object_set_new(j, "scope", json_string(c->scope));
	} else if (c->sess) {
		json_object_set_new(j, "csrf_token", json_string(c->sess->csrf));
		json_object_set_new(j, "session_expires_at",
				    json_integer(c->sess->created + c->a->sess->absolute_s));
		json_object_set_new(j, "session_idle_timeout", json_integer(c->a->sess->idle_s));
	}
	return j;
}

static void h_login(struct ctx *c, const char *arg)
{
	static const char *const f[] = { "username", "password", NULL };
	const char *name, *pw;
	char ukey[96], ikey[96], tok[SESSION_TOKEN_LEN + 1];
	struct console_user u;
	int64_t wait;

	(void)arg;
	if (!fields_only(c, f) || !field_str(c, "username", true, STORE_USER_MAX, &name) ||
	    !field_str(c, "password", true, PW_MAX, &pw))
		return;
	snprintf(ukey, sizeof(ukey), "u:%s", name);
	snprintf(ikey, sizeof(ikey), "ip:%s", c->rq->peer);
	if ((wait = throttle_wait(c->a->thr, ukey, c->now)) ||
	    (wait = throttle_wait(c->a->thr, ikey, c->now))) {
		add_header(c->rs, "Retry-After: %" PRId64 "\r\n", wait);
		reply_err(c, 429, "throttled", "too many failed logins: try again in %" PRId64 " seconds",
			  wait);
		return;
	}
	int rc = store_console_user_get(c->a->st, name, &u);
	if (rc && rc != -ENOENT) {
		reply_store(c, rc);
		return;
	}
	/* an unknown user costs the same PBKDF2 as a wrong password */
	bool ok = pwhash_verify(rc ? c->a->dummy_hash : u.hash, pw, strlen(pw)) && !rc;
	if (!ok) {
		throttle_fail(c->a->thr, ukey, c->now);
		throttle_fail(c->a->thr, ikey, c->now);
		reply_err(c, 401, "bad_credentials", "wrong user name or password");
		return;
	}
	throttle_clear(c->a->thr, ukey);
	/* the session starts now, after the PBKDF2 (slow on purpose), not when the request came */
	c->now = (int64_t)time(NULL);
	if (!(c->sess = session_create(c->a->sess, u.name, u.role, c->now, tok))) {
		reply_err(c, 500, "store_error", "random source failed");
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", u.name);
	snprintf(c->role, sizeof(c->role), "%s", u.role);
	snprintf(c->actor, sizeof(c->actor), "%s", u.name);
	add_header(c->rs, "Set-Cookie: " COOKIE_NAME "=%s; Path=/; Max-Age=%u; HttpOnly; "
		   "SameSite=Strict%s\r\n", tok, c->a->sess->absolute_s, c->rq->tls ? "; Secure" : "");
	memset(tok, 0, sizeof(tok));
	reply_json(c, 200, me_json(c));
}

static void h_logout(struct ctx *c, const char *arg)
{
	(void)arg;
	if (!c->sess) {
		reply_err(c, 400, "invalid_field", "API tokens have no session to end");
		return;
	}
	session_end(c->sess);
	c->sess = NULL;
	add_header(c->rs, "Set-Cookie: " COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; "
		   "SameSite=Strict%s\r\n", c->rq->tls ? "; Secure" : "");
	c->rs->status = 204;
	c->rs->ctype = "application/json";
}

static void h_me(struct ctx *c, const char *arg)
{
	(void)arg;
	reply_json(c, 200, me_json(c));
}

static void h_health(struct ctx *c, const char *arg)
{
	(void)arg;
	reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

/* Resources of the route table, each once, in table order, with their routes. */
static json_t *resources_json(const struct gate_routes *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < r->n; i++) {
		json_t *res = NULL;
		for (size_t j = 0; j < json_array_size(arr) && !res; j++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(arr, j), "name")),
				    r->v[i].resource))
				res = json_array_get(arr, j);
		if (!res) {
			res = json_pack("{s:s, s:[]}", "name", r->v[i].resource, "routes");
			json_array_append_new(arr, res);
		}
		json_array_append_new(json_object_get(res, "routes"),
				      json_pack("{s:s, s:s}", "method", r->v[i].methods, "path",
						r->v[i].pattern));
	}
	return arr;
}

static bool resource_known(const struct gate_routes *r, const char *name)
{
	if (!r->n)
		return store_resource_valid(name);   /* no table: any valid name */
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].resource, name))
			return true;
	return false;
}

static void h_config(struct ctx *c, const char *arg)
{
	char (*egress)[EGRESS_TEXT_MAX] = NULL;
	size_t n = 0;
	json_t *eg = json_array();

	(void)arg;
	if (console_egress_list(c->a->cfg, c->a->st, &egress, &n)) {
		json_decref(eg);
		reply_err(c, 500, "store_error", "cannot read the egress addresses");
		return;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(eg, json_string(egress[i]));
	free(egress);
	reply_json(c, 200, json_pack("{s:o, s:o, s:[sssss], s:i, s:b}", "resources",
				     resources_json(&c->a->cfg->routes), "egress", eg, "roll_expiry",
				     "now", "1h", "24h", "3d", "7d", "max_allowlist", ALLOW_MAX,
				     "tls", c->rq->tls));
}

/* A query parameter into out: false (after a 400) when malformed; out "" when absent. */
static bool query_param(struct ctx *c, const char *name, char *out, size_t cap)
{
	long n = console_query_get(c->rq->query, c->rq->query ? c->rq->query_len : 0, name, out, cap);

	if (n == -2) {
		reply_param(c, 400, "invalid_field", name, "query parameter '%s' is malformed or too "
			    "long", name);
		return false;
	}
	if (n < 0)
		out[0] = '\0';
	return true;
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;

	if (!s[0] || (s[0] == '0' && s[1]) || s[0] == '-' || s[0] == '+')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool key_id_valid(const char *s)
{
	if (strlen(s) != STORE_ID_LEN || strncmp(s, "key_", 4))
		return false;
	for (size_t i = 4; i < STORE_ID_LEN; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static void h_keys_list(struct ctx *c, const char *arg)
{
	char type[32], mode[16], status[16], q[STORE_NAME_MAX + 1], limit[16], after[64];
	struct key_query kq = { .limit = 100, .now = c->now };
	struct key_listed *v = NULL;
	size_t n = 0;
	bool more = false;
	int64_t lim;
	int rc;

	(void)arg;
	if (!query_param(c, "type", type, sizeof(type)) || !query_param(c, "mode", mode, sizeof(mode)) ||
	    !query_param(c, "status", status, sizeof(status)) || !query_param(c, "q", q, sizeof(q)) ||
	    !query_param(c, "limit", limit, sizeof(limit)) ||
	    !query_param(c, "after", after, sizeof(after)))
		return;
	if (limit[0]) {
		if (!parse_int(limit, 1, 100, &lim)) {
			reply_param(c, 400, "invalid_field", "limit", "limit must be a number from 1 to 100");
			return;
		}
		kq.limit = (size_t)lim;
	}
	if (after[0]) {
		char *dot = strchr(after, '.');
		if (dot)
			*dot = '\0';
		if (!dot || !parse_int(after, 0, INT64_MAX, &kq.after_created) || !key_id_valid(dot + 1)) {
			reply_param(c, 400, "invalid_field", "after", "after must be a next_cursor "
				    "from a previous page");
			return;
		}
		snprintf(kq.after_id, sizeof(kq.after_id), "%s", dot + 1);
	}
	kq.type = type[0] ? type : NULL;
	kq.mode = mode[0] ? mode : NULL;
	kq.status = status[0] ? status : NULL;
	kq.search = q[0] ? q : NULL;
	if ((rc = store_key_page(c->a->st, &kq, &v, &n, &more))) {
		reply_store(c, rc);
		return;
	}
	json_t *data = json_array();
	for (size_t i = 0; data && i < n; i++)
		json_array_append_new(data, key_json(&v[i].k, v[i].last_used, v[i].last_client, c->now));
	json_t *cursor = json_null();
	if (more && n) {
		char cur[64];
		snprintf(cur, sizeof(cur), "%" PRId64 ".%s", v[n - 1].k.created, v[n - 1].k.id);
		cursor = json_string(cur);
	}
	store_key_page_free(v, n);
	reply_json(c, 200, json_pack("{s:o, s:b, s:o}", "data", data, "has_more", more,
				     "next_cursor", cursor));
}

/* Loads the key named in the path; false after a 404. */
static bool load_key(struct ctx *c, const char *id, struct key_info *k)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if (!key_id_valid(id)) {
		reply_err(c, 404, "not_found", "no such key: %.64s", id);
		return false;
	}
	if ((rc = store_key_get(c->a->st, id, k))) {
		reply_store(c, rc);
		return false;
	}
	return true;
}

/* The key as the API shows it after a change (with its last use). */
static json_t *key_now(struct ctx *c, const char *id)
{
	struct key_info k;
	struct usage_rec *h = NULL;
	size_t nh = 0;
	int64_t last = 0;
	char client[STORE_CLIENT_MAX] = "";
	json_t *j;

	if (store_key_get(c->a->st, id, &k))
		return NULL;
	/* the hours are not needed here: only the last use */
	store_usage_get(c->a->st, id, &last, client, sizeof(client), &h, &nh);
	free(h);
	j = key_json(&k, last, client, c->now);
	store_key_clear(&k);
	return j;
}

static void h_key_get(struct ctx *c, const char *id)
{
	struct key_info k;
	struct client_use *use = NULL;
	size_t n = 0;
	int64_t last = 0, allowed = 0, denied = 0, reported = 0;
	char client[STORE_CLIENT_MAX] = "";
	int rc;

	if (!load_key(c, id, &k))
		return;
	if ((rc = usage_recent(c, id, &use, &n, &last, client, sizeof(client)))) {
		store_key_clear(&k);
		reply_store(c, rc);
		return;
	}
	json_t *j = key_json(&k, last, client, c->now), *clients = json_array();
	for (size_t i = 0; i < n; i++) {
		allowed += use[i].allowed;
		denied += use[i].denied;
		reported += use[i].reported;
		json_array_append_new(clients, client_json(&use[i]));
	}
	if (j)
		json_object_set_new(j, "usage", json_pack("{s:i, s:I, s:I, s:I, s:o}", "days",
							  CHECK_DAYS, "allowed", (json_int_t)allowed,
							  "denied", (json_int_t)denied, "would_refuse",
							  (json_int_t)reported, "clients", clients));
	else
		json_decref(clients);
	free(use);
	store_key_clear(&k);
	reply_json(c, 200, j);
}

/* permissions object -> key_perm list (levels none/read/write, known resources). */
static bool parse_perms(struct ctx *c, json_t *obj, struct key_perm **out, size_t *n)
{
	const char *res;
	json_t *lv;

	*out = NULL;
	*n = 0;
	if (!json_is_object(obj)) {
		reply_param(c, 400, "invalid_field", "permissions", "'permissions' must be an object "
			    "of resource: none|read|write");
		return false;
	}
	if (json_object_size(obj) && !(*out = calloc(json_object_size(obj), sizeof(**out)))) {
		reply_err(c, 500, "store_error", "out of memory");
		return false;
	}
	json_object_foreach(obj, res, lv) {
		enum perm_level l;
		char param[STORE_RESOURCE_MAX + 16];
		snprintf(param, sizeof(param), "permissions.%.63s", res);
		if (!resource_known(&c->a->cfg->routes, res)) {
			reply_param(c, 400, "invalid_field", param, "unknown resource '%.64s' (not in the "
				    "gate's route table: see GET /api/v1/config)", res);
			goto fail;
		}
		if (!json_is_string(lv) || !perm_level_parse(json_string_value(lv), &l)) {
			reply_param(c, 400, "invalid_field", param, "permission of '%.64s' must be none, "
				    "read or write", res);
			goto fail;
		}
		snprintf((*out)[*n].resource, sizeof((*out)[*n].resource), "%s", res);
		(*out)[(*n)++].level = l;
	}
	return true;
fail:
	free(*out);
	*out = NULL;
	*n = 0;
	return false;
}

static void h_key_create(struct ctx *c, const char *arg)
{
	static const char *const f[] = { "type", "mode", "name", "note", "expires_at", "permissions",
					 "allowlist", NULL };
	static const char *const types[] = { "secret", "restricted", NULL };
	static const char *const modes[] = { "live", "test", NULL };
	const char *type, *mode, *name, *note;
	struct key_spec spec = { 0 };
	struct entries e = { 0 };
	struct key_perm *perms = NULL;
	size_t np = 0;
	const char **allow = NULL;
	char secret[STORE_KEY_MAX];
	struct key_info k = { 0 };
	int rc;

	(void)arg;
	if (!fields_only(c, f) || !field_enum(c, "type", true, types, &type) ||
	    !field_enum(c, "mode", false, modes, &mode) ||
	    !field_str(c, "name", false, STORE_NAME_MAX, &name) ||
	    !field_str(c, "note", false, STORE_NOTE_MAX, &note))
		return;
	key_type_parse(type, &spec.type);
	spec.mode = KEY_LIVE;
	if (mode)
		key_mode_parse(mode, &spec.mode);
	json_t *exp = json_object_get(c->body, "expires_at");
	if (exp && !json_is_null(exp)) {
		if (!json_is_integer(exp) || json_integer_value(exp) <= c->now) {
			reply_param(c, 400, "invalid_field", "expires_at", "expires_at must be a unix time "
				    "in the future");
			return;
		}
		spec.expires_at = json_integer_value(exp);
	}
	json_t *pj = json_object_get(c->body, "permissions");
	if (pj && !json_is_null(pj)) {
		if (spec.type != KEY_RESTRICTED) {
			reply_param(c, 400, "invalid_field", "permissions", "permissions apply to "
				    "restricted keys only");
			return;
		}
		if (!parse_perms(c, pj, &perms, &np))
			return;
	}
	json_t *aj = json_object_get(c->body, "allowlist");
	if (aj && !json_is_null(aj) && !parse_entries(c, "allowlist", aj, &e))
		goto out;
	if (e.n && !(allow = calloc(e.n, sizeof(*allow)))) {
		reply_err(c, 500, "store_error", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < e.n; i++)
		allow[i] = e.v[i];
	/* "none" rows are not written: a new key has no permission it was not given */
	size_t keep = 0;
	for (size_t i = 0; i < np; i++)
		if (perms[i].level != PERM_NONE)
			perms[keep++] = perms[i];
	spec.name = name;
	spec.note = note;
	spec.allow = allow;
	spec.n_allow = e.n;
	spec.perms = perms;
	spec.n_perms = keep;
	if ((rc = store_key_create(c->a->st, &spec, c->actor, secret, sizeof(secret), &k))) {
		reply_store(c, rc);
		goto out;
	}
	json_t *kj = key_json(&k, 0, NULL, c->now);
	reply_json(c, 201, json_pack("{s:o, s:s}", "key", kj, "secret", secret));
	memset(secret, 0, sizeof(secret));
	store_key_clear(&k);
out:
	free(allow);
	free(e.v);
	free(perms);
}

static void h_key_patch(struct ctx *c, const char *id)
{
	static const char *const f[] = { "name", "note", NULL };
	const char *name, *note;
	struct key_info k;
	int rc;

	if (!fields_only(c, f) || !field_str(c, "name", false, STORE_NAME_MAX, &name) ||
	    !field_str(c, "note", false, STORE_NOTE_MAX, &note))
		return;
	if (!name && !note) {
		reply_err(c, 400, "missing_field", "nothing to change: give name and/or note");
		return;
	}
	if (!load_key(c, id, &k))
		return;
	store_key_clear(&k);
	if ((rc = store_key_set_note(c->a->st, id, name, note, c->actor))) {
		reply_store(c, rc);
		return;
	}
	reply_json(c, 200, key_now(c, id));
}

static void h_check(struct ctx *c, const char *id)
{
	static const char *const f[] = { "allowlist", NULL };
	struct entries e;
	struct key_info k;
	size_t warn;
	char sum[16];

	if (!fields_only(c, f) || !parse_entries(c, "allowlist", json_object_get(c->body, "allowlist"), &e))
		return;
	if (load_key(c, id, &k)) {
		json_t *j = check_json(c, &k, &e, &warn, sum, sizeof(sum));
		if (j)
			reply_json(c, 200, j);
		else
			reply_err(c, 500, "store_error", "cannot read the key's usage: %s",
				  store_errmsg(c->a->st));
		store_key_clear(&k);
	}
	free(e.v);
}

static void h_allow_put(struct ctx *c, const char *id)
{
	static const char *const f[] = { "allowlist", "confirm", NULL };
	struct entries e;
	struct key_info k;
	size_t warn;
	char sum[REASON_MAX - 60], reason[REASON_MAX];
	const char **list = NULL;
	int rc;

	if (!fields_only(c, f) || !parse_entries(c, "allowlist", json_object_get(c->body, "allowlist"), &e))
		return;
	json_t *cj = json_object_get(c->body, "confirm");
	if (cj && !json_is_boolean(cj)) {
		reply_param(c, 400, "invalid_field", "confirm", "confirm must be true or false");
		goto out;
	}
	if (!load_key(c, id, &k))
		goto out;
	if (k.type == KEY_PUBLISHABLE && e.n) {
		store_key_clear(&k);
		reply_err(c, 409, "not_allowed", "publishable keys cannot have an IP allowlist (they are "
			  "made to be public)");
		goto out;
	}
	json_t *check = check_json(c, &k, &e, &warn, sum, sizeof(sum));
	store_key_clear(&k);
	if (!check) {
		reply_err(c, 500, "store_error", "cannot read the key's usage: %s", store_errmsg(c->a->st));
		goto out;
	}
	if (warn && !json_is_true(cj)) {
		reply_extra(c, 409, "confirmation_required", json_pack("{s:o}", "check", check),
			    "%s", "the new allowlist would refuse addresses that use this key or egress "
			    "addresses of the fleet: send confirm: true to save anyway");
		goto out;
	}
	if (warn)
		snprintf(reason, sizeof(reason), "saved despite %zu warning%s, confirmed: %s", warn,
			 warn == 1 ? "" : "s", sum);
	if (e.n && !(list = calloc(e.n, sizeof(*list)))) {
		json_decref(check);
		reply_err(c, 500, "store_error", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < e.n; i++)
		list[i] = e.v[i];
	if ((rc = store_key_allow_replace(c->a->st, id, list, e.n, c->actor, warn ? reason : NULL))) {
		json_decref(check);
		reply_store(c, rc);
		goto out;
	}
	reply_json(c, 200, json_pack("{s:o, s:o}", "key", key_now(c, id), "check", check));
out:
	free(list);
	free(e.v);
}

static void h_allow_mode(struct ctx *c, const char *id)
{
	static const char *const f[] = { "mode", NULL };
	static const char *const modes[] = { "report", "enforce", NULL };
	const char *mode;
	struct key_info k;
	int rc;

	if (!fields_only(c, f) || !field_enum(c, "mode", true, modes, &mode) || !load_key(c, id, &k))
		return;
	store_key_clear(&k);
	if ((rc = store_key_set_report(c->a->st, id, !strcmp(mode, "report"), c->actor))) {
		reply_store(c, rc);
		return;
	}
	reply_json(c, 200, key_now(c, id));
}

static void h_perms(struct ctx *c, const char *id)
{
	static const char *const f[] = { "permissions", NULL };
	struct key_perm *perms = NULL, *all = NULL;
	size_t np = 0, na = 0;
	struct key_info k;
	int rc;

	if (!fields_only(c, f))
		return;
	json_t *pj = json_object_get(c->body, "permissions");
	if (!pj) {
		reply_param(c, 400, "missing_field", "permissions", "missing field 'permissions'");
		return;
	}
	if (!parse_perms(c, pj, &perms, &np) || !load_key(c, id, &k)) {
		free(perms);
		return;
	}
	if (k.type != KEY_RESTRICTED) {
		reply_err(c, 409, "not_allowed", "permissions apply to restricted keys only (%s is %s)",
			  id, key_type_name(k.type));
		goto out;
	}
	/* the matrix replaces the old one: what it leaves out becomes none */
	if (!(all = calloc(np + k.n_perms + 1, sizeof(*all)))) {
		reply_err(c, 500, "store_error", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < np; i++)
		all[na++] = perms[i];
	for (size_t i = 0; i < k.n_perms; i++) {
		bool named = false;
		for (size_t j = 0; j < np && !named; j++)
			named = !strcmp(perms[j].resource, k.perms[i].resource);
		if (!named) {
			all[na] = k.perms[i];
			all[na++].level = PERM_NONE;
		}
	}
	if (na && (rc = store_key_perms(c->a->st, id, all, na, c->actor))) {
		reply_store(c, rc);
		goto out;
	}
	reply_json(c, 200, key_now(c, id));
out:
	store_key_clear(&k);
	free(all);
	free(perms);
}

static void h_roll(struct ctx *c, const char *id)
{
	static const char *const f[] = { "expire_in", NULL };
	static const char *const choices[] = { "now", "1h", "24h", "3d", "7d", NULL };
	static const int64_t secs[] = { 0, 3600, 86400, 3 * 86400, 7 * 86400 };
	const char *in;
	struct key_info k, nk = { 0 };
	char secret[STORE_KEY_MAX];
	int rc;

	if (!fields_only(c, f) || !field_enum(c, "expire_in", true, choices, &in) || !load_key(c, id, &k))
		return;
	store_key_clear(&k);
	size_t i;
	for (i = 0; strcmp(choices[i], in); i++)
		;
	if ((rc = store_key_rotate(c->a->st, id, secs[i], c->actor, secret, sizeof(secret), &nk))) {
		reply_store(c, rc);
		return;
	}
	json_t *nj = key_json(&nk, 0, NULL, c->now);
	store_key_clear(&nk);
	reply_json(c, 201, json_pack("{s:o, s:s, s:o}", "key", nj, "secret", secret, "old",
				     key_now(c, id)));
	memset(secret, 0, sizeof(secret));
}

static void h_revoke(struct ctx *c, const char *id)
{
	static const char *const f[] = { "reason", NULL };
	const char *reason = NULL;
	struct key_info k;
	int rc;

	if (c->body && (!fields_only(c, f) || !field_str(c, "reason", false, REASON_MAX, &reason)))
		return;
	if (!load_key(c, id, &k))
		return;
	store_key_clear(&k);
	if ((rc = store_key_revoke(c->a->st, id, c->actor, reason))) {
		reply_store(c, rc);
		return;
	}
	reply_json(c, 200, key_now(c, id));
}

static void h_validate(struct ctx *c, const char *arg)
{
	static const char *const f[] = { "entries", NULL };
	json_t *arr, *v, *out;
	size_t i;

	(void)arg;
	if (!fields_only(c, f))
		return;
	arr = json_object_get(c->body, "entries");
	if (!json_is_array(arr)) {
		reply_param(c, 400, arr ? "invalid_field" : "missing_field", "entries",
			    "'entries' must be an array of strings");
		return;
	}
	if (json_array_size(arr) > ALLOW_MAX) {
		reply_param(c, 400, "too_many_entries", "entries", "more than %d entries", ALLOW_MAX);
		return;
	}
	out = json_array();
	json_array_foreach(arr, i, v) {
		char canon[STORE_ENTRY_MAX + 1];
		const char *in = json_is_string(v) ? json_string_value(v) : NULL;
		const char *why = !in ? "must be a string" :
				  strlen(in) != json_string_length(v) ? "NUL in entry" :
				  store_entry_canon(in, canon, sizeof(canon));
		json_array_append_new(out, json_pack("{s:s?, s:b, s:s?, s:s?}", "input", in, "ok", !why,
						     "canonical", why ? NULL : canon, "error", why));
	}
	reply_json(c, 200, json_pack("{s:o}", "entries", out));
}

struct audit_acc {
	json_t *arr;
	int64_t last_seq;
};

static int audit_cb(const struct audit_record *r, void *arg)
{
	struct audit_acc *acc = arg;
	json_t *b = r->before ? json_loads(r->before, 0, NULL) : NULL;
	json_t *a = r->after ? json_loads(r->after, 0, NULL) : NULL;

	json_array_append_new(acc->arr, json_pack("{s:I, s:I, s:s?, s:s?, s:s?, s:o, s:o, s:s?}",
						  "seq", (json_int_t)r->seq, "time", (json_int_t)r->time,
						  "actor", r->actor, "key_id", r->key_id, "action",
						  r->action, "before", b ? b : json_null(), "after",
						  a ? a : json_null(), "reason", r->reason));
	acc->last_seq = r->seq;
	return 0;
}

static void h_audit(struct ctx *c, const char *arg)
{
	char key[64], actor[STORE_USER_MAX + 16], limit[16], before[24];
	int64_t lim = 50, bef = 0;
	struct audit_acc acc = { .arr = json_array() };
	bool more = false;
	int rc;

	(void)arg;
	if (!query_param(c, "key", key, sizeof(key)) || !query_param(c, "actor", actor, sizeof(actor)) ||
	    !query_param(c, "limit", limit, sizeof(limit)) ||
	    !query_param(c, "before", before, sizeof(before)))
		goto out;
	if (limit[0] && !parse_int(limit, 1, 200, &lim)) {
		reply_param(c, 400, "invalid_field", "limit", "limit must be a number from 1 to 200");
		goto out;
	}
	if (before[0] && !parse_int(before, 1, INT64_MAX, &bef)) {
		reply_param(c, 400, "invalid_field", "before", "before must be a next_cursor from a "
			    "previous page");
		goto out;
	}
	if ((rc = store_audit_query(c->a->st, key[0] ? key : NULL, actor[0] ? actor : NULL, bef,
				    (size_t)lim, audit_cb, &acc, &more))) {
		reply_store(c, rc);
		goto out;
	}
	reply_json(c, 200, json_pack("{s:O, s:b, s:o}", "data", acc.arr, "has_more", more,
				     "next_cursor", more ? json_integer(acc.last_seq) : json_null()));
out:
	json_decref(acc.arr);
}

static void h_users_list(struct ctx *c, const char *arg)
{
	struct console_user *u = NULL;
	size_t n = 0;
	int rc;

	(void)arg;
	if ((rc = store_console_user_list(c->a->st, &u, &n))) {
		reply_store(c, rc);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "name", u[i].name, "role",
						     u[i].role, "created", (json_int_t)u[i].created));
	free(u);
	reply_json(c, 200, json_pack("{s:o}", "data", arr));
}

static void h_user_add(struct ctx *c, const char *arg)
{
	static const char *const f[] = { "name", "password", "role", NULL };
	static const char *const roles[] = { "admin", "viewer", NULL };
	const char *name, *pw, *role;
	char hash[STORE_HASH_MAX];
	int rc;

	(void)arg;
	if (!fields_only(c, f) || !field_str(c, "name", true, STORE_USER_MAX, &name) ||
	    !field_str(c, "password", true, PW_MAX, &pw) || !field_enum(c, "role", true, roles, &role))
		return;
	if (!store_console_user_name_valid(name)) {
		reply_param(c, 400, "invalid_field", "name", "name must be 1-%d of A-Z a-z 0-9 _ . @ -",
			    STORE_USER_MAX);
		return;
	}
	if (strlen(pw) < PW_MIN) {
		reply_param(c, 400, "invalid_field", "password", "password must be at least %d characters",
			    PW_MIN);
		return;
	}
	if (pwhash_make(pw, strlen(pw), PW_ITERATIONS, hash, sizeof(hash))) {
		reply_err(c, 500, "store_error", "cannot hash the password");
		return;
	}
	if ((rc = store_console_user_add(c->a->st, name, hash, role, c->actor))) {
		reply_store(c, rc);
		return;
	}
	reply_json(c, 201, json_pack("{s:s, s:s, s:I}", "name", name, "role", role, "created",
				     (json_int_t)c->now));
}

static void h_user_remove(struct ctx *c, const char *name)
{
	int rc;

	if (!strcmp(name, c->user)) {
		reply_err(c, 400, "invalid_field", "you cannot remove yourself");
		return;
	}
	if ((rc = store_console_user_remove(c->a->st, name, c->actor))) {
		reply_store(c, rc);
		return;
	}
	session_end_user(c->a->sess, name);
	c->rs->status = 204;
	c->rs->ctype = "application/json";
}

static json_t *token_json(const struct console_token *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "id", t->id, "name", t->name, "scope",
			 t->scope, "masked", t->masked, "created", (json_int_t)t->created,
			 "created_by", t->created_by);
}

static void h_tokens_list(struct ctx *c, const char *arg)
{
	struct console_token *t = NULL;
	size_t n = 0;
	int rc;

	(void)arg;
	if ((rc = store_token_list(c->a->st, &t, &n))) {
		reply_store(c, rc);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, token_json(&t[i]));
	free(t);
	reply_json(c, 200, json_pack("{s:o}", "data", arr));
}

static void h_token_create(struct ctx *c, const char *arg)
{
	static const char *const f[] = { "name", "scope", NULL };
	static const char *const scopes[] = { "read", "write", NULL };
	const char *name, *scope;
	struct console_token t;
	char secret[STORE_TOKEN_MAX];
	int rc;

	(void)arg;
	if (!fields_only(c, f) || !field_str(c, "name", true, STORE_USER_MAX, &name) ||
	    !field_enum(c, "scope", true, scopes, &scope))
		return;
	if ((rc = store_token_create(c->a->st, name, scope, c->actor, secret, sizeof(secret), &t))) {
		reply_store(c, rc);
		return;
	}
	reply_json(c, 201, json_pack("{s:o, s:s}", "token", token_json(&t), "secret", secret));
	memset(secret, 0, sizeof(secret));
}

static void h_token_revoke(struct ctx *c, const char *id)
{
	int rc;

	if ((rc = store_token_revoke(c->a->st, id, c->actor))) {
		reply_store(c, rc);
		return;
	}
	c->rs->status = 204;
	c->rs->ctype = "application/json";
}

/* ---- routing ---- */

enum body_rule { BODY_NONE = 0, BODY_REQUIRED, BODY_OPTIONAL };

struct route {
	const char *method;
	const char *pattern;            /* '*' is one path segment, handed to fn */
	enum need need;
	enum body_rule body;
	void (*fn)(struct ctx *c, const char *arg);
};

static const struct route routes[] = {
	{ "GET", "/healthz", NEED_NONE, BODY_NONE, h_health },
	{ "POST", "/api/v1/login", NEED_NONE, BODY_REQUIRED, h_login },
	{ "POST", "/api/v1/logout", NEED_AUTH, BODY_OPTIONAL, h_logout },
	{ "GET", "/api/v1/me", NEED_AUTH, BODY_NONE, h_me },
	{ "GET", "/api/v1/config", NEED_AUTH, BODY_NONE, h_config },
	{ "GET", "/api/v1/keys", NEED_AUTH, BODY_NONE, h_keys_list },
	{ "POST", "/api/v1/keys", NEED_CHANGE, BODY_REQUIRED, h_key_create },
	{ "GET", "/api/v1/keys/*", NEED_AUTH, BODY_NONE, h_key_get },
	{ "PATCH", "/api/v1/keys/*", NEED_CHANGE, BODY_REQUIRED, h_key_patch },
	{ "POST", "/api/v1/keys/*/allowlist/check", NEED_AUTH, BODY_REQUIRED, h_check },
	{ "PUT", "/api/v1/keys/*/allowlist", NEED_CHANGE, BODY_REQUIRED, h_allow_put },
	{ "PUT", "/api/v1/keys/*/allowlist_mode", NEED_CHANGE, BODY_REQUIRED, h_allow_mode },
	{ "PUT", "/api/v1/keys/*/permissions", NEED_CHANGE, BODY_REQUIRED, h_perms },
	{ "POST", "/api/v1/keys/*/roll", NEED_CHANGE, BODY_REQUIRED, h_roll },
	{ "POST", "/api/v1/keys/*/revoke", NEED_CHANGE, BODY_OPTIONAL, h_revoke },
	{ "POST", "/api/v1/entries/validate", NEED_AUTH, BODY_REQUIRED, h_validate },
	{ "GET", "/api/v1/audit", NEED_AUTH, BODY_NONE, h_audit },
	{ "GET", "/api/v1/users", NEED_ADMIN, BODY_NONE, h_users_list },
	{ "POST", "/api/v1/users", NEED_ADMIN, BODY_REQUIRED, h_user_add },
	{ "DELETE", "/api/v1/users/*", NEED_ADMIN, BODY_NONE, h_user_remove },
	{ "GET", "/api/v1/tokens", NEED_ADMIN, BODY_NONE, h_tokens_list },
	{ "POST", "/api/v1/tokens", NEED_ADMIN, BODY_REQUIRED, h_token_create },
	{ "DELETE", "/api/v1/tokens/*", NEED_ADMIN, BODY_NONE, h_token_revoke },
};

/* path against pattern; the '*' segment goes to arg (cap bytes). */
static bool path_match(const char *pat, const char *path, size_t len, char *arg, size_t cap)
{
	size_t i = 0;

	arg[0] = '\0';
	for (; *pat; pat++) {
		if (*pat == '*') {
			size_t s = i;
			while (i < len && path[i] != '/')
				i++;
			if (i == s || i - s >= cap)
				return false;
			memcpy(arg, path + s, i - s);
			arg[i - s] = '\0';
			continue;
		}
		if (i >= len || path[i] != *pat)
			return false;
		i++;
	}
	return i == len;
}

static bool method_is(const struct api_req *rq, const char *m)
{
	return rq->method_len == strlen(m) && !memcmp(rq->method, m, rq->method_len);
}

/* Authentication: a Bearer API token, else the session cookie. False after a 401. */
static bool authenticate(struct ctx *c)
{
	const struct api_req *rq = c->rq;

	if (rq->auth) {
		char hex[SHA256_HEX_LEN + 1];
		struct console_token t;
		if (rq->auth_len < 8 || strncasecmp(rq->auth, "Bearer ", 7)) {
			reply_err(c, 401, "not_authenticated", "Authorization must be 'Bearer <API token>'");
			return false;
		}
		const char *tok = rq->auth + 7;
		size_t tl = rq->auth_len - 7;
		/* the store holds only the SHA-256 of a token: looked up by it */
		secret_sha256_hex(tok, tl, hex);
		int rc = store_token_get_by_hash(c->a->st, hex, &t);
		if (rc == -ENOENT || (!rc && !secret_equal(t.hash, strlen(t.hash), hex, strlen(hex)))) {
			reply_err(c, 401, "not_authenticated", "invalid API token");
			return false;
		}
		if (rc) {
			reply_store(c, rc);
			return false;
		}
		c->token = true;
		snprintf(c->scope, sizeof(c->scope), "%s", t.scope);
		snprintf(c->actor, sizeof(c->actor), "token:%s", t.name);
		return true;
	}
	char tok[SESSION_TOKEN_LEN + 8];
	long n = console_cookie_get(rq->cookie, rq->cookie ? rq->cookie_len : 0, COOKIE_NAME, tok,
				    sizeof(tok));
	if (n < 0) {
		reply_err(c, 401, "not_authenticated", "log in first (POST /api/v1/login) or send "
			  "Authorization: Bearer <API token>");
		return false;
	}
	enum session_state s = session_find(c->a->sess, tok, (size_t)n, c->now, &c->sess);
	memset(tok, 0, sizeof(tok));
	if (s == SESSION_EXPIRED) {
		add_header(c->rs, "Set-Cookie: " COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; "
			   "SameSite=Strict%s\r\n", rq->tls ? "; Secure" : "");
		reply_err(c, 401, "session_expired", "the session has expired: log in again");
		return false;
	}
	if (s != SESSION_OK) {
		reply_err(c, 401, "not_authenticated", "no such session: log in again");
		return false;
	}
	snprintf(c->user, sizeof(c->user), "%s", c->sess->user);
	snprintf(c->role, sizeof(c->role), "%s", c->sess->role);
	snprintf(c->actor, sizeof(c->actor), "%s", c->sess->user);
	return true;
}

static void serve_asset(struct ctx *c, bool head_only)
{
	const char *p = c->rq->path + 1;
	size_t n = c->rq->path_len - 1;
	const struct console_asset *a = console_asset_find(p, n);

	if (!a) {
		reply_err(c, 404, "not_found", "no such page");
		return;
	}
	c->rs->status = 200;
	c->rs->ctype = console_asset_type(a->name);
	c->rs->static_body = head_only ? NULL : a->data;
	c->rs->body_len = a->len;
}

void api_handle(struct api *a, const struct api_req *rq, struct api_resp *rs)
{
	struct ctx c = { .a = a, .rq = rq, .rs = rs, .now = (int64_t)time(NULL) };
	const struct route *rt = NULL;
	char arg[256], allow[128] = "";
	bool path_known = false;

	memset(rs, 0, sizeof(*rs));
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_match(routes[i].pattern, rq->path, rq->path_len, arg, sizeof(arg)))
			continue;
		path_known = true;
		size_t o = strlen(allow);
		snprintf(allow + o, sizeof(allow) - o, "%s%s", o ? ", " : "", routes[i].method);
		if (method_is(rq, routes[i].method)) {
			rt = &routes[i];
			break;
		}
	}
	if (!rt) {
		bool api = rq->path_len >= 5 && !memcmp(rq->path, "/api/", 5);
		if (path_known) {
			add_header(rs, "Allow: %s\r\n", allow);
			reply_err(&c, 405, "method_not_allowed", "method not allowed here (use %s)", allow);
		} else if (api) {
			reply_err(&c, 404, "not_found", "no such API endpoint (see docs/console-api.yaml)");
		} else if (method_is(rq, "GET") || method_is(rq, "HEAD")) {
			serve_asset(&c, method_is(rq, "HEAD"));
		} else {
			add_header(rs, "Allow: GET, HEAD\r\n");
			reply_err(&c, 405, "method_not_allowed", "method not allowed here (use GET)");
		}
		goto out;
	}
	if (rt->need != NEED_NONE && !authenticate(&c))
		goto out;
	/* a change by session carries the session's CSRF token (a token needs none: no cookie) */
	if (c.sess && !method_is(rq, "GET")) {
		if (!rq->csrf) {
			reply_err(&c, 403, "csrf_missing", "missing X-CSRF-Token header (GET /api/v1/me "
				  "gives the token)");
			goto out;
		}
		if (!session_csrf_ok(c.sess, rq->csrf, rq->csrf_len)) {
			reply_err(&c, 403, "csrf_invalid", "X-CSRF-Token does not belong to this session");
			goto out;
		}
	}
	if (rt->need == NEED_CHANGE && !c.token && strcmp(c.role, "admin")) {
		reply_err(&c, 403, "forbidden", "viewers cannot change anything (your role: %s)", c.role);
		goto out;
	}
	if (rt->need == NEED_CHANGE && c.token && strcmp(c.scope, "write")) {
		reply_err(&c, 403, "token_scope", "this API token has read scope: changes need a write token");
		goto out;
	}
	if (rt->need == NEED_ADMIN && (c.token || strcmp(c.role, "admin"))) {
		reply_err(&c, 403, "forbidden", "users and API tokens are managed by an admin session");
		goto out;
	}
	if (rt->body == BODY_REQUIRED || (rt->body == BODY_OPTIONAL && rq->body_len)) {
		struct body_err be;
		if (!(c.body = console_body_parse(rq->ctype, rq->ctype_len, rq->body, rq->body_len, &be))) {
			reply_err(&c, be.status, be.code, "%s", be.message);
			goto out;
		}
	} else if (rq->body_len) {
		reply_err(&c, 400, "invalid_field", "this call takes no body");
		goto out;
	}
	rt->fn(&c, arg);
out:
	snprintf(rs->actor, sizeof(rs->actor), "%s", c.actor);
	json_decref(c.body);
}

struct api *api_new(const struct console_config *cfg, struct store *st)
{
	struct api *a = calloc(1, sizeof(*a));

	if (!a || !(a->sess = calloc(1, sizeof(*a->sess))) || !(a->thr = calloc(1, sizeof(*a->thr)))) {
		api_free(a);
		return NULL;
	}
	a->cfg = cfg;
	a->st = st;
	a->sess->idle_s = cfg->session_idle_s;
	a->sess->absolute_s = cfg->session_absolute_s;
	char pw[24];
	if (secret_random_alnum(pw, sizeof(pw) - 1) ||
	    pwhash_make(pw, sizeof(pw) - 1, PW_ITERATIONS, a->dummy_hash, sizeof(a->dummy_hash))) {
		api_free(a);
		return NULL;
	}
	return a;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	free(a->sess);
	free(a->thr);
	free(a);
}
