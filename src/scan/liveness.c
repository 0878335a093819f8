/* liveness.c: the key store's and the API's answer to "is this key live?". */
#include "scan/liveness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/loop.h"
#include "core/version.h"
#include "http/basic.h"
#include "http/link.h"
#include "http/url.h"
#include "scan/revoke.h"
#include "store/store.h"

#define CACHE_MAX 100000        /* keys remembered; beyond, a repeated key is probed again */

struct cached {
	char fp[SHA256_HEX_LEN + 1];
	struct scan_verdict v;
	char key_id[32];
};

struct scan_liveness {
	struct store *st;
	bool has_api, has_proxy;
	struct vurl api, proxy;
	SSL_CTX *api_ctx, *proxy_ctx;
	char proxy_auth[HTTP_BASIC_LINE_MAX];   /* "Proxy-Authorization: Basic ...\r\n" or "" */
	uint64_t interval_ms, next_ms;
	int timeout_ms;
	struct vresp *resp;
	struct cached *cache;
	size_t n_cache, cap_cache;
};

const char *scan_liveness_open(const struct scan_liveness_opts *o, struct scan_liveness **out,
			       char *err, size_t cap)
{
	struct scan_liveness *lv = calloc(1, sizeof(*lv));
	const char *e;

	*out = NULL;
	if (!lv || !(lv->resp = malloc(sizeof(*lv->resp)))) {
		free(lv);
		snprintf(err, cap, "out of memory");
		return err;
	}
	double rate = o->rate > 0 ? o->rate : SCAN_VERIFY_RATE_DEFAULT;
	lv->interval_ms = (uint64_t)(1000.0 / rate);
	lv->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : SCAN_VERIFY_TIMEOUT_DEFAULT;
	if (o->db && scan_store_open(o->db, &lv->st, err, cap))
		goto fail;
	if (o->api) {
		if ((e = vurl_parse(o->api, &lv->api))) {
			snprintf(err, cap, "--verify-api %s", e);
			goto fail;
		}
		if (lv->api.has_user) {
			snprintf(err, cap, "--verify-api: no credentials in the URL (the key is the credential)");
			goto fail;
		}
		lv->has_api = true;
		if (lv->api.tls && !(lv->api_ctx = vlink_tls_ctx(o->cacert, err, cap)))
			goto fail;
	}
	if (o->proxy) {
		if ((e = vurl_parse(o->proxy, &lv->proxy))) {
			snprintf(err, cap, "--proxy %s", e);
			goto fail;
		}
		lv->has_proxy = true;
		if (lv->proxy.tls && !(lv->proxy_ctx = vlink_tls_ctx(o->cacert, err, cap)))
			goto fail;
		if (lv->proxy.has_user) {
			/* user and password are at most VURL_CRED_MAX - 1 bytes each: always fits */
			http_basic_line("Proxy-Authorization", lv->proxy.user, lv->proxy.password,
					lv->proxy_auth, sizeof(lv->proxy_auth));
		}
	}
	*out = lv;
	return NULL;
fail:
	scan_liveness_close(lv);
	return err;
}

void scan_liveness_close(struct scan_liveness *lv)
{
	if (!lv)
		return;
	if (lv->st)
		store_close(lv->st);
	SSL_CTX_free(lv->api_ctx);
	SSL_CTX_free(lv->proxy_ctx);
	OPENSSL_cleanse(lv->proxy_auth, sizeof(lv->proxy_auth));
	free(lv->resp);
	free(lv->cache);
	free(lv);
}

/* At most `rate` probes per second, so a scan with many findings does not trip the API's
 * rate limit (or look like an attack). */
static void rate_wait(struct scan_liveness *lv)
{
	uint64_t now = loop_clock_ms();
	if (now < lv->next_ms) {
		uint64_t ms = lv->next_ms - now;
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		now = lv->next_ms;
	}
	lv->next_ms = now + lv->interval_ms;
}

static void host_header(const struct vurl *u, char *buf, size_t cap)
{
	if (u->port == (u->tls ? 443 : 80))
		snprintf(buf, cap, u->host_is_v6 ? "[%s]" : "%s", u->host);
	else
		vurl_authority(u, buf, cap);
}

/* One GET of path (after the API's base path) with the key. 0 and lv->resp filled, or -1 with
 * a one-line reason (never holding the key) in err. */
static int probe(struct scan_liveness *lv, const char *key, const char *path, char *err, size_t cap)
{
	struct vlink l;
	char req[1400], host[VURL_HOST_MAX + 16], authority[VURL_HOST_MAX + 16], base[VURL_PATH_MAX];
	int rc = -1, n;

	rate_wait(lv);
	vlink_init(&l, loop_clock_ms() + (uint64_t)lv->timeout_ms);
	host_header(&lv->api, host, sizeof(host));
	vurl_authority(&lv->api, authority, sizeof(authority));
	/* the base path without its query and trailing '/': "/v1/charges" is appended */
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(lv->api.path, "?"), lv->api.path);
	for (size_t b = strlen(base); b > 0 && base[b - 1] == '/';)
		base[--b] = '\0';
	const struct vurl *first = lv->has_proxy ? &lv->proxy : &lv->api;
	if (vlink_connect(&l, first->host, first->port)) {
		snprintf(err, cap, "cannot reach %.60s: %.100s", lv->has_proxy ? "the proxy" : authority, l.err);
		goto out;
	}
	if (first->tls && vlink_tls(&l, lv->has_proxy ? lv->proxy_ctx : lv->api_ctx, first->host,
				   first->host_is_ip)) {
		snprintf(err, cap, "TLS to %.60s failed: %.100s", lv->has_proxy ? "the proxy" : authority, l.err);
		goto out;
	}
	bool absolute = false;
	if (lv->has_proxy && lv->api.tls) {
		n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s"
			     "User-Agent: iplock-scan/%s\r\n\r\n", authority, authority, lv->proxy_auth,
			     IPLOCK_VERSION);
		if (n < 0 || (size_t)n >= sizeof(req) || vlink_exchange(&l, req, (size_t)n, true, lv->resp)) {
			snprintf(err, cap, "CONNECT through the proxy failed: %.100s", l.err);
			goto out;
		}
		if (lv->resp->status / 100 != 2) {
			snprintf(err, cap, "the proxy refused CONNECT to %.60s (%d)", authority,
				 lv->resp->status);
			goto out;
		}
		if (vlink_tls(&l, lv->api_ctx, lv->api.host, lv->api.host_is_ip)) {
			snprintf(err, cap, "TLS to %.60s failed: %.100s", authority, l.err);
			goto out;
		}
	} else if (lv->has_proxy) {
		absolute = true; /* plain http through a proxy: absolute-form request */
	}
	n = snprintf(req, sizeof(req), "GET %s%s%s%s HTTP/1.1\r\nHost: %s\r\n%s"
		     "Authorization: Bearer %s\r\nUser-Agent: iplock-scan/%s\r\n"
		     "Accept: application/json\r\nConnection: close\r\n\r\n",
		     absolute ? "http://" : "", absolute ? authority : "", base, path, host,
		     absolute ? lv->proxy_auth : "", key, IPLOCK_VERSION);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(err, cap, "request too long");
		goto out;
	}
	if (vlink_exchange(&l, req, (size_t)n, false, lv->resp)) {
		snprintf(err, cap, "no answer from %.60s: %.100s", authority, l.err);
		goto out;
	}
	if (absolute && lv->resp->status == 407) {
		snprintf(err, cap, "the proxy wants credentials (407)");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(req, sizeof(req));
	vlink_close(&l);
	return rc;
}

static uint8_t probe_result(int status)
{
	return status / 100 == 2 ? SCAN_PROBE_READ : status == 403 ? SCAN_PROBE_DENIED : SCAN_PROBE_OTHER;
}

static void check_api(struct scan_liveness *lv, const struct scan_finding *f,
		      struct scan_verdict *v)
{
	char err[sizeof(v->api_error)];

	/* publishable keys are public and webhook secrets are no API credentials */
	if (f->kind == SCAN_PK_LIVE || f->kind == SCAN_PK_TEST || f->kind == SCAN_WHSEC)
		return;
	/* another provider's token is never sent to the Stripe-compatible API: that would leak it */
	if (f->kind > SCAN_SK_ORG_TEST) {
		v->api = SCAN_API_UNKNOWN;
		snprintf(v->api_error, sizeof(v->api_error), "not probed: not a Stripe key");
		return;
	}
	if (probe(lv, f->secret, scan_probe_path(0), err, sizeof(err))) {
		v->api = SCAN_API_UNKNOWN;
		snprintf(v->api_error, sizeof(v->api_error), "%s", err);
		return;
	}
	v->http_status = lv->resp->status;
	v->api = scan_verdict_parse(lv->resp->status, lv->resp->body, lv->resp->body_len, v->ip,
				    v->perm);
	v->probes[0] = probe_result(lv->resp->status);
	if (v->api == SCAN_API_UNKNOWN) {
		snprintf(v->api_error, sizeof(v->api_error), "%s (%d)",
			 v->http_status == 429 ? "rate limited" :
			 v->http_status >= 500 ? "server error" : "unexpected status", v->http_status);
		return;
	}
	if (v->api != SCAN_API_RESTRICTED)
		return;
	/* a restricted key: which of the other read-only endpoints may it use? */
	for (unsigned i = 1; i < SCAN_PROBE_COUNT; i++) {
		if (probe(lv, f->secret, scan_probe_path(i), err, sizeof(err)))
			continue; /* not run: the detail simply does not list it */
		v->probes[i] = probe_result(lv->resp->status);
	}
}

void scan_liveness_check(struct scan_liveness *lv, struct scan_finding *f)
{
	struct scan_verdict v;

	for (size_t i = 0; i < lv->n_cache; i++)
		if (!strcmp(lv->cache[i].fp, f->fingerprint)) {
			f->verdict = lv->cache[i].v;
			if (!f->key_id[0])
				snprintf(f->key_id, sizeof(f->key_id), "%s", lv->cache[i].key_id);
			return;
		}
	memset(&v, 0, sizeof(v));
	if (lv->st) {
		struct key_info k;
		int rc = store_key_get_by_hash(lv->st, f->fingerprint, &k);
		if (rc == 0) {
			if (k.revoked_at)
				v.store = SCAN_STORE_REVOKED;
			else if (k.expires_at && k.expires_at <= (int64_t)time(NULL))
				v.store = SCAN_STORE_EXPIRED;
			else
				v.store = SCAN_STORE_ACTIVE;
			v.n_allow = k.n_allow;
			if (!f->key_id[0])
				snprintf(f->key_id, sizeof(f->key_id), "%s", k.id);
			store_key_clear(&k);
		} else {
			v.store = SCAN_STORE_UNKNOWN;
		}
	}
	if (lv->has_api)
		check_api(lv, f, &v);
	scan_verdict_finish(&v);
	f->verdict = v;
	if (lv->n_cache == lv->cap_cache && lv->cap_cache < CACHE_MAX) {
		size_t nc = lv->cap_cache ? lv->cap_cache * 2 : 64;
		struct cached *c = realloc(lv->cache, nc * sizeof(*c));
		if (c) {
			lv->cache = c;
			lv->cap_cache = nc;
		}
	}
	if (lv->n_cache < lv->cap_cache) {
		struct cached *c = &lv->cache[lv->n_cache++];
		memcpy(c->fp, f->fingerprint, sizeof(c->fp));
		c->v = v;
		snprintf(c->key_id, sizeof(c->key_id), "%s", f->key_id);
	}
}
