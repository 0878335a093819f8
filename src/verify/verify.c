/* verify.c: the engine of `iplock verify` (verify.h): the pool, one pinned request per egress
 * address through the proxy, the verdicts and their sum. Blocking client code with poll()
 * deadlines (http/link, shared with `iplock scan --verify`).
 * verify/ owns that engine; it may include core/, net/, http/ and store/, never another product. */
#include "verify/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/loop.h"
#include "core/version.h"
#include "http/basic.h"
#include "http/link.h"

#define IP_MESSAGE        "does not allow requests from your IP address"

const char *verify_verdict_name(enum verify_verdict v)
{
	switch (v) {
	case VERIFY_OK:         return "ok";
	case VERIFY_MISMATCH:   return "mismatch";
	case VERIFY_ACCEPTED:   return "accepted";
	case VERIFY_PERMISSION: return "accepted_no_permission";
	case VERIFY_IP_DENIED:  return "ip_not_allowed";
	case VERIFY_REJECTED:   return "rejected";
	default:           return "error";
	}
}

bool verify_verdict_passes(enum verify_verdict v)
{
	return v == VERIFY_OK || v == VERIFY_ACCEPTED || v == VERIFY_PERMISSION;
}

/* Replace every occurrence of the key by its masked form and control bytes by spaces:
 * an API's message goes to a terminal and must never carry the key. */
static void detail_clean(const struct verify *v, const char *in, char *out, size_t cap)
{
	size_t klen = strlen(v->key), o = 0;

	for (size_t i = 0; in[i] && o + 1 < cap; i++) {
		if (klen && !strncmp(in + i, v->key, klen)) {
			size_t mlen = strlen(v->key_masked);
			if (o + mlen + 1 >= cap)
				break;
			memcpy(out + o, v->key_masked, mlen);
			o += mlen;
			i += klen - 1;
			continue;
		}
		unsigned char c = (unsigned char)in[i];
		out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[o] = '\0';
}

/* The "message" of a JSON error body ({"error": {"message": ...}}), or NULL. */
static const char *error_message(json_t *root, const char **type)
{
	json_t *e = json_object_get(root, "error");
	*type = NULL;
	if (!json_is_object(e))
		return NULL;
	*type = json_string_value(json_object_get(e, "type"));
	return json_string_value(json_object_get(e, "message"));
}

static bool in_list(const char list[][IPADDR_STRLEN], size_t n, const char *ip)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], ip))
			return true;
	return false;
}

/* Connect to the proxy (TLS too for https://); on failure say what failed in err. */
static int proxy_open(struct verify *v, struct vlink *l, char *err, size_t cap)
{
	char a[VURL_HOST_MAX + 16];

	vurl_authority(&v->proxy, a, sizeof(a));
	vlink_init(l, loop_clock_ms() + v->timeout_ms);
	if (vlink_connect(l, v->proxy.host, v->proxy.port)) {
		snprintf(err, cap, "cannot reach the proxy %.80s: %.200s", a, l->err);
		return -1;
	}
	if (v->proxy.tls && vlink_tls(l, v->proxy_ctx, v->proxy.host, v->proxy.host_is_ip)) {
		/* an untrusted certificate is fixed by naming its CA: say how, as iplock tunnel does */
		bool untrusted = !strncmp(l->err, "certificate verify failed", 25);
		snprintf(err, cap, "TLS to the proxy %.80s failed: %.200s%s%.100s%s", a, l->err,
			 !untrusted ? "" : v->proxy_cacert ? " (the proxy's CA is not in --proxy-cacert " :
			 " (give the proxy's CA with --proxy-cacert FILE)",
			 untrusted && v->proxy_cacert ? v->proxy_cacert : "",
			 untrusted && v->proxy_cacert ? ")" : "");
		return -1;
	}
	return 0;
}

/* Host header value: the port only when it is not the scheme's default. */
static void host_header(const struct vurl *u, char *buf, size_t cap)
{
	if (u->port == (u->tls ? 443 : 80))
		snprintf(buf, cap, u->host_is_v6 ? "[%s]" : "%s", u->host);
	else
		vurl_authority(u, buf, cap);
}

/* Ask the proxy (one node of a fleet behind a balancer) for this user's egress pool; addresses
 * not seen yet are added to v->pool and counted in *added. Returns 0, or -1 with a one-line err. */
static int pool_ask(struct verify *v, size_t *added, char *err, size_t cap)
{
	struct vlink l;
	char auth[HTTP_BASIC_LINE_MAX] = "", req[1300], host[VURL_HOST_MAX + 16];
	int rc = -1;
	json_t *root = NULL;

	if (proxy_open(v, &l, err, cap))
		goto out;
	if (v->proxy.has_user) {
		if (http_basic_line("Proxy-Authorization", v->base_user, v->proxy.password, auth,
				    sizeof(auth)) < 0) {
			snprintf(err, cap, "proxy credentials too long");
			goto out;
		}
	}
	vurl_authority(&v->proxy, host, sizeof(host));
	int n = snprintf(req, sizeof(req), "GET /iplock/pool HTTP/1.1\r\nHost: %s\r\n%s"
			 "User-Agent: iplock-verify/%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
			 host, auth, IPLOCK_VERSION);
	OPENSSL_cleanse(auth, sizeof(auth));
	if (vlink_exchange(&l, req, (size_t)n, false, v->resp)) {
		snprintf(err, cap, "the proxy %.80s did not answer GET /iplock/pool: %.200s", host, l.err);
		OPENSSL_cleanse(req, sizeof(req));
		goto out;
	}
	OPENSSL_cleanse(req, sizeof(req));
	if (v->resp->status == 407) {
		if (v->proxy.has_user)
			snprintf(err, cap, "the proxy refused the credentials of user '%.64s' "
				 "(407 Proxy Authentication Required)", v->base_user);
		else
			snprintf(err, cap, "the proxy needs credentials (407): put them in the URL, "
				 "http://USER:PASSWORD@host:port");
		goto out;
	}
	if (v->resp->status != 200) {
		snprintf(err, cap, "the proxy answered %d to GET /iplock/pool: is it iplock proxy?",
			 v->resp->status);
		goto out;
	}
	json_error_t jerr;
	root = json_loadb(v->resp->body, v->resp->body_len, 0, &jerr);
	json_t *eg = json_object_get(root, "egress");
	if (!json_is_array(eg) || json_array_size(eg) == 0) {
		snprintf(err, cap, "the proxy's pool answer has no egress addresses");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(eg); i++) {
		const char *s = json_string_value(json_array_get(eg, i));
		struct ipaddr ip;
		char text[IPADDR_STRLEN];
		if (!s || ipaddr_parse(s, strlen(s), &ip)) {
			snprintf(err, cap, "the proxy's pool answer has a bad address");
			goto out;
		}
		ipaddr_format(&ip, text, sizeof(text));
		if (in_list(v->pool, v->npool, text))
			continue;
		if (v->npool >= VERIFY_POOL_MAX) {
			snprintf(err, cap, "the pool has more than %d addresses", VERIFY_POOL_MAX);
			goto out;
		}
		memcpy(v->pool[v->npool++], text, IPADDR_STRLEN);
		(*added)++;
	}
	v->nasks++;
	if (!v->policy[0]) {
		const char *pol = json_string_value(json_object_get(root, "policy"));
		snprintf(v->policy, sizeof(v->policy), "%s", pol ? pol : "unknown");
	}
	rc = 0;
out:
	json_decref(root);
	vlink_close(&l);
	return rc;
}

/* Behind a balancer every connection may reach another node, each with its own addresses:
 * ask on new connections until VERIFY_POOL_QUIET answers in a row bring no new address (a
 * single proxy costs that many more cheap asks), at most VERIFY_POOL_ASKS. */
static int pool_discover(struct verify *v, char *err, size_t cap)
{
	unsigned quiet = 0;

	while (v->nasks < VERIFY_POOL_ASKS && quiet < VERIFY_POOL_QUIET) {
		size_t added = 0;
		if (pool_ask(v, &added, err, cap))
			return -1;
		quiet = added ? 0 : quiet + 1;
	}
	return 0;
}

/* One request pinned to pool address idx (0-based), through the proxy, to the target.
 * Fills the row's status and, on a failure to get an answer from the target, VERIFY_ERROR. */
static int fetch_pinned(struct verify *v, size_t idx, struct verify_row *r)
{
	struct vlink l;
	char user[VURL_CRED_MAX + 16], auth[HTTP_BASIC_LINE_MAX], req[4096];
	char host[VURL_HOST_MAX + 16], authority[VURL_HOST_MAX + 16], err[VERIFY_DETAIL_MAX];
	char extra[VERIFY_KEY_MAX + 40] = "";
	int rc = -1, n;

	r->verdict = VERIFY_ERROR;
	if (proxy_open(v, &l, err, sizeof(err))) {
		snprintf(r->detail, sizeof(r->detail), "%s", err);
		goto out;
	}
	/* pinned by address (X-Iplock-Egress), not by index: behind a balancer the node that
	 * answers may order its pool differently, or not have the address (then: try again) */
	snprintf(user, sizeof(user), "%s", v->base_user);
	int an = http_basic_line("Proxy-Authorization", user, v->proxy.password, auth, sizeof(auth) - 80);
	if (an < 0) {
		snprintf(r->detail, sizeof(r->detail), "proxy credentials too long");
		goto out;
	}
	snprintf(auth + an, sizeof(auth) - (size_t)an, "X-Iplock-Egress: %s\r\n", v->pool[idx]);
	if (v->api)
		snprintf(extra, sizeof(extra), "Authorization: Bearer %s\r\n", v->key);
	host_header(&v->target, host, sizeof(host));
	vurl_authority(&v->target, authority, sizeof(authority));
	bool via_proxy = true;   /* false once the tunnel to the target is up */
	if (v->target.tls) {
		n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s"
			     "User-Agent: iplock-verify/%s\r\n\r\n", authority, authority, auth, IPLOCK_VERSION);
		if (vlink_exchange(&l, req, (size_t)n, true, v->resp)) {
			snprintf(r->detail, sizeof(r->detail), "CONNECT through the proxy failed: %.200s", l.err);
			goto out;
		}
		if (v->resp->status / 100 != 2)
			goto answered;
		if (vlink_tls(&l, v->target_ctx, v->target.host, v->target.host_is_ip)) {
			snprintf(r->detail, sizeof(r->detail), "TLS to %.80s failed: %.200s", authority, l.err);
			goto out;
		}
		via_proxy = false;
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s"
			     "User-Agent: iplock-verify/%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
			     v->target.path, host, extra, IPLOCK_VERSION);
	} else {
		n = snprintf(req, sizeof(req), "GET http://%s%s HTTP/1.1\r\nHost: %s\r\n%s%s"
			     "User-Agent: iplock-verify/%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
			     authority, v->target.path, host, auth, extra, IPLOCK_VERSION);
	}
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(r->detail, sizeof(r->detail), "request too long");
		goto out;
	}
	if (vlink_exchange(&l, req, (size_t)n, false, v->resp)) {
		snprintf(r->detail, sizeof(r->detail), "no answer from %.80s: %.200s", authority, l.err);
		goto out;
	}
answered:
	r->status = v->resp->status;
	json_error_t jerr;
	json_t *root = json_loadb(v->resp->body, v->resp->body_len, 0, &jerr);
	const char *type = NULL, *msg = error_message(root, &type);
	/* who answered: a refused CONNECT is always the proxy; through a forwarded request only a
	 * 407 or iplock's own error body says so (a 502 may be the target's) */
	if (via_proxy && (v->target.tls || v->resp->status == 407 || (type && !strcmp(type, "proxy_error")))) {
		/* the proxy answered, not the target: this address did not get out */
		char m[VERIFY_DETAIL_MAX];
		const char *code = json_string_value(json_object_get(json_object_get(root, "error"), "code"));
		detail_clean(v, msg ? msg : "", m, sizeof(m));
		if (v->resp->status == 400 && code && !strcmp(code, "bad_egress_pin"))
			rc = -2;   /* a node without this address answered: another may have it */
		if (v->resp->status == 407)
			snprintf(r->detail, sizeof(r->detail), "the proxy refused the credentials (407)");
		else
			snprintf(r->detail, sizeof(r->detail), "the proxy answered %d: %.300s%s", v->resp->status,
				 msg ? m : "(no message)", v->resp->status == 502 && strstr(m, "egress") ?
				 " (can this host send from that address?)" : "");
		json_decref(root);
		goto out;
	}
	if (!v->api) {
		const char *origin = json_string_value(json_object_get(root, "origin"));
		if (v->resp->status != 200 || !origin) {
			snprintf(r->detail, sizeof(r->detail), "the echo answered %d without an \"origin\"",
				 v->resp->status);
			json_decref(root);
			goto out;
		}
		/* httpbin lists forwarding proxies after a comma: the first is the client */
		size_t olen = strcspn(origin, ", ");
		struct ipaddr seen, want;
		if (ipaddr_parse(origin, olen, &seen)) {
			detail_clean(v, origin, err, sizeof(err) < 64 ? sizeof(err) : 64);
			snprintf(r->detail, sizeof(r->detail), "the echo reported a non-address: %.64s", err);
			json_decref(root);
			goto out;
		}
		ipaddr_format(&seen, r->seen, sizeof(r->seen));
		ipaddr_parse(r->egress, strlen(r->egress), &want);
		if (ipaddr_equal(&seen, &want)) {
			r->verdict = VERIFY_OK;
		} else {
			r->verdict = VERIFY_MISMATCH;
			snprintf(r->detail, sizeof(r->detail), "pinned to %s but left from %s", r->egress, r->seen);
		}
	} else {
		char m[VERIFY_DETAIL_MAX - 16];
		detail_clean(v, msg ? msg : "", m, sizeof(m));
		int st = v->resp->status;
		if (st / 100 == 2) {
			r->verdict = VERIFY_ACCEPTED;
		} else if (st == 401 && msg && strstr(msg, IP_MESSAGE)) {
			r->verdict = VERIFY_IP_DENIED;
			snprintf(r->detail, sizeof(r->detail), "%s", m);
		} else if (st == 403) {
			/* the address check comes before the permission check */
			r->verdict = VERIFY_PERMISSION;
			snprintf(r->detail, sizeof(r->detail), "address accepted; the key may not GET %.60s: %.290s",
				 v->path, m);
		} else {
			r->verdict = VERIFY_REJECTED;
			snprintf(r->detail, sizeof(r->detail), "%s", msg ? m : "(no error message)");
		}
	}
	json_decref(root);
	rc = 0;
out:
	/* answers and errors may quote the key (or another one): only its masked form is shown */
	secret_redact(r->detail, strlen(r->detail));
	OPENSSL_cleanse(auth, sizeof(auth));
	OPENSSL_cleanse(req, sizeof(req));
	OPENSSL_cleanse(extra, sizeof(extra));
	vlink_close(&l);
	return rc;
}

/* With --db, find the key's id by the hash of its text (the store never holds the key), so
 * the fix can be pasted as is. A key the store does not know (a real Stripe key) is fine. */
static void key_lookup(struct verify *v)
{
	struct store *st = NULL;
	struct key_info k;
	char hex[SHA256_HEX_LEN + 1];

	if (!v->db || (!store_is_remote(v->db) && access(v->db, R_OK | W_OK)) ||
	    store_open(v->db, &st))
		return;
	secret_sha256_hex(v->key, strlen(v->key), hex);
	memset(&k, 0, sizeof(k));
	if (!store_key_get_by_hash(st, hex, &k)) {
		snprintf(v->key_id, sizeof(v->key_id), "%s", k.id);
		store_key_clear(&k);
	}
	store_close(st);
}

const char *verify_expect_parse(struct verify *v, const char *s)
{
	v->have_expect = true;
	while (*s) {
		size_t len = strcspn(s, ", ");
		if (len) {
			struct ipaddr ip;
			if (v->nexpect >= VERIFY_POOL_MAX)
				return "too many --expect addresses";
			if (ipaddr_parse(s, len, &ip))
				return "--expect takes IP addresses separated by commas";
			char text[IPADDR_STRLEN];
			ipaddr_format(&ip, text, sizeof(text));
			if (!in_list(v->expect, v->nexpect, text))
				memcpy(v->expect[v->nexpect++], text, IPADDR_STRLEN);
		}
		s += len;
		s += strspn(s, ", ");
	}
	return v->nexpect ? NULL : "--expect needs at least one address";
}

const char *verify_key_load(struct verify *v, const char *key, const char *key_file)
{
	if (key_file) {
		FILE *f = fopen(key_file, "r");
		if (!f)
			return "cannot read --key-file";
		size_t n = fread(v->key, 1, sizeof(v->key) - 1, f);
		fclose(f);
		v->key[n] = '\0';
		v->key[strcspn(v->key, "\r\n")] = '\0';
	} else if (key) {
		if (strlen(key) >= sizeof(v->key))
			return "the key is too long";
		memcpy(v->key, key, strlen(key) + 1);
	}
	size_t len = strlen(v->key);
	if (len == 0)
		return "the key is empty";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v->key[i] <= 0x20 || v->key[i] == 0x7f)
			return "the key has spaces or control characters";
	secret_mask(v->key, len, v->key_masked);
	return NULL;
}

int verify_run(struct verify *v, char *err, size_t cap)
{
	if (v->proxy.tls && !(v->proxy_ctx = vlink_tls_ctx(v->proxy_cacert, err, cap)))
		return -1;
	if (v->target.tls && !(v->target_ctx = vlink_tls_ctx(v->cacert, err, cap)))
		return -1;
	if (!(v->resp = malloc(sizeof(*v->resp)))) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	if (pool_discover(v, err, cap))
		return -1;
	v->nunreached = 0;
	for (size_t i = 0; i < v->npool; i++) {
		memcpy(v->rows[i].egress, v->pool[i], IPADDR_STRLEN);
		for (unsigned t = 0; t < VERIFY_PIN_TRIES; t++) {
			memset(v->rows[i].detail, 0, sizeof(v->rows[i].detail));
			v->rows[i].status = 0;
			if (fetch_pinned(v, i, &v->rows[i]) != -2)
				break;
		}
		if (v->rows[i].verdict == VERIFY_ERROR)
			v->nunreached++;
	}
	if (v->api)
		key_lookup(v);
	return 0;
}

void verify_summarize(const struct verify *v, struct verify_summary *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < v->npool; i++) {
		if (verify_verdict_passes(v->rows[i].verdict))
			s->npass++;
		else if (v->rows[i].verdict == VERIFY_IP_DENIED)
			memcpy(s->denied[s->ndenied++], v->rows[i].egress, IPADDR_STRLEN);
		else
			s->nerror++;
	}
	for (size_t i = 0; v->have_expect && i < v->nexpect; i++)
		if (!in_list(v->pool, v->npool, v->expect[i]))
			memcpy(s->missing[s->nmissing++], v->expect[i], IPADDR_STRLEN);
	for (size_t i = 0; v->have_expect && i < v->npool; i++)
		if (!in_list(v->expect, v->nexpect, v->pool[i]))
			memcpy(s->extra[s->nextra++], v->pool[i], IPADDR_STRLEN);
	s->ok = s->npass == v->npool && s->nmissing == 0 && s->nextra == 0;

	if (s->ndenied) {
		size_t o;
		char shown[512];
		/* a PostgreSQL connection string is shown without its password */
		store_target_display(v->db ? v->db : "", shown, sizeof(shown));
		if (v->key_id[0])
			o = (size_t)snprintf(s->fix, sizeof(s->fix), "iplock keys --db %.300s restrict %s", shown, v->key_id);
		else
			o = (size_t)snprintf(s->fix, sizeof(s->fix), "iplock keys restrict KEY_ID");
		for (size_t i = 0; i < s->ndenied && o < sizeof(s->fix); i++)
			o += (size_t)snprintf(s->fix + o, sizeof(s->fix) - o, " --allow %s", s->denied[i]);
	}
}

void verify_free(struct verify *v)
{
	if (v) {
		SSL_CTX_free(v->proxy_ctx);
		SSL_CTX_free(v->target_ctx);
		free(v->resp);
		OPENSSL_cleanse(v, sizeof(*v));
		free(v);
	}
	vlink_cleanup();
}
