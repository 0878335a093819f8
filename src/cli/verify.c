/* verify.c: `iplock verify`: proves, for every egress address of a proxy pool, that traffic
 * really leaves from it (--echo) and that an API accepts a key from it (--api), and says
 * exactly what to fix. Blocking client code with poll() deadlines (src/http/link.c, shared with `iplock scan --verify`). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "cli/cli.h"
#include "core/loop.h"
#include "core/secret.h"
#include "core/version.h"
#include "net/addr.h"
#include "store/store.h"
#include "http/link.h"
#include "http/url.h"

#define VERIFY_POOL_MAX   32      /* the proxy caps a pool at 32 addresses too */
#define VERIFY_KEY_MAX    512
#define VERIFY_DETAIL_MAX 400
#define IP_MESSAGE        "does not allow requests from your IP address"

enum verdict {
	V_OK = 0,         /* echo: the echo saw the pinned address */
	V_MISMATCH,       /* echo: the echo saw another address */
	V_ACCEPTED,       /* api: 2xx */
	V_PERMISSION,     /* api: 403, the address passed but the key lacks this permission */
	V_IP_DENIED,      /* api: 401 with Stripe's IP message */
	V_REJECTED,       /* api: any other answer of the API */
	V_ERROR,          /* the request did not get through (proxy error, TLS, timeout, ...) */
};

static const char *verdict_name(enum verdict v)
{
	switch (v) {
	case V_OK:         return "ok";
	case V_MISMATCH:   return "mismatch";
	case V_ACCEPTED:   return "accepted";
	case V_PERMISSION: return "accepted_no_permission";
	case V_IP_DENIED:  return "ip_not_allowed";
	case V_REJECTED:   return "rejected";
	default:           return "error";
	}
}

static bool verdict_passes(enum verdict v)
{
	return v == V_OK || v == V_ACCEPTED || v == V_PERMISSION;
}

struct row {
	char egress[IPADDR_STRLEN];
	char seen[IPADDR_STRLEN];       /* echo: what the echo reported ("" when nothing) */
	enum verdict verdict;
	int status;                     /* HTTP status of the final answer, 0 when none */
	char detail[VERIFY_DETAIL_MAX]; /* one line, masked */
};

struct verify {
	struct vurl proxy;
	struct vurl target;
	bool api;
	char key[VERIFY_KEY_MAX];
	char key_masked[SECRET_MASK_MAX];
	char path[VURL_PATH_MAX];
	const char *db;                 /* --db: the iplock key store, to name the key's id */
	char key_id[STORE_ID_MAX];      /* "" when unknown */
	const char *cacert, *proxy_cacert;
	SSL_CTX *proxy_ctx, *target_ctx;
	bool json;
	unsigned timeout_ms;
	char base_user[VURL_CRED_MAX];
	char pool[VERIFY_POOL_MAX][IPADDR_STRLEN];
	size_t npool;
	char policy[32];
	char expect[VERIFY_POOL_MAX][IPADDR_STRLEN];
	size_t nexpect;
	bool have_expect;
	struct row rows[VERIFY_POOL_MAX];
	struct vresp *resp;             /* one response buffer, reused */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iplock verify --proxy URL --echo URL [--expect ADDR,ADDR...] [options]\n"
		"       iplock verify --proxy URL [--api URL] --key KEY [--path PATH] [options]\n"
		"\n"
		"Asks the proxy for the egress pool of these credentials (GET /iplock/pool), then pins\n"
		"each address in turn (user name option +egress=N) and sends one request through it.\n"
		"\n"
		"  --proxy URL          http://USER:PASSWORD@HOST:PORT or https://... (TLS to the proxy)\n"
		"  --echo URL           an IP echo (iplock echo, httpbin /ip): checks the address it saw\n"
		"  --expect A,B         the addresses the pool must be (as a set; e.g. your allowlist)\n"
		"  --api URL            API base for the key check (default https://api.stripe.com)\n"
		"  --key KEY            API key to check (or --key-file F, or env IPLOCK_VERIFY_KEY);\n"
		"                       never printed in full\n"
		"  --path PATH          read-only request to make (default GET /v1/balance)\n"
		"  --db FILE            the iplock keys store behind the gate: the fix names the key's id\n"
		"  --cacert FILE        CA certificates for the echo or API (default: the system store)\n"
		"  --proxy-cacert FILE  CA certificates for an https:// proxy\n"
		"  --timeout S          seconds for each request (default 10)\n"
		"  --json               machine-readable report on stdout\n"
		"\nexit status: 0 every address passed; 1 some address failed (the report says which and\n"
		"what to fix); 2 bad usage; 3 the check could not run (proxy unreachable, 407, TLS, timeout).\n");
}

static int usage_err(const char *msg, const char *arg)
{
	cli_errorf("iplock verify: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	return 2;
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

static int base64_basic(const char *user, const char *password, char *out, size_t cap)
{
	char plain[2 * VURL_CRED_MAX + 2];
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, password);

	if (n < 0 || (size_t)n >= sizeof(plain) || cap < 4 * (((size_t)n + 2) / 3) + 1)
		return -ENOSPC;
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)plain, n);
	OPENSSL_cleanse(plain, sizeof(plain));
	return 0;
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

/* Ask the proxy for this user's egress pool. Returns 0, or -1 with a one-line err. */
static int pool_discover(struct verify *v, char *err, size_t cap)
{
	struct vlink l;
	char auth[760] = "", req[1300], host[VURL_HOST_MAX + 16];
	int rc = -1;
	json_t *root = NULL;

	if (proxy_open(v, &l, err, cap))
		goto out;
	if (v->proxy.has_user) {
		char b64[700];
		if (base64_basic(v->base_user, v->proxy.password, b64, sizeof(b64))) {
			snprintf(err, cap, "proxy credentials too long");
			goto out;
		}
		snprintf(auth, sizeof(auth), "Proxy-Authorization: Basic %s\r\n", b64);
		OPENSSL_cleanse(b64, sizeof(b64));
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
	if (json_array_size(eg) > VERIFY_POOL_MAX) {
		snprintf(err, cap, "the pool has more than %d addresses", VERIFY_POOL_MAX);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(eg); i++) {
		const char *s = json_string_value(json_array_get(eg, i));
		struct ipaddr ip;
		if (!s || ipaddr_parse(s, strlen(s), &ip)) {
			snprintf(err, cap, "the proxy's pool answer has a bad address");
			goto out;
		}
		ipaddr_format(&ip, v->pool[i], sizeof(v->pool[i]));
	}
	v->npool = json_array_size(eg);
	const char *pol = json_string_value(json_object_get(root, "policy"));
	snprintf(v->policy, sizeof(v->policy), "%s", pol ? pol : "unknown");
	rc = 0;
out:
	json_decref(root);
	vlink_close(&l);
	return rc;
}

/* One request pinned to pool address idx (0-based), through the proxy, to the target.
 * Fills the row's status and, on a failure to get an answer from the target, V_ERROR. */
static int fetch_pinned(struct verify *v, size_t idx, struct row *r)
{
	struct vlink l;
	char user[VURL_CRED_MAX + 16], b64[700], auth[760], req[4096];
	char host[VURL_HOST_MAX + 16], authority[VURL_HOST_MAX + 16], err[VERIFY_DETAIL_MAX];
	char extra[VERIFY_KEY_MAX + 40] = "";
	int rc = -1, n;

	r->verdict = V_ERROR;
	if (proxy_open(v, &l, err, sizeof(err))) {
		snprintf(r->detail, sizeof(r->detail), "%s", err);
		goto out;
	}
	snprintf(user, sizeof(user), "%s+egress=%zu", v->base_user, idx + 1);
	if (base64_basic(user, v->proxy.password, b64, sizeof(b64))) {
		snprintf(r->detail, sizeof(r->detail), "proxy credentials too long");
		goto out;
	}
	snprintf(auth, sizeof(auth), "Proxy-Authorization: Basic %s\r\n", b64);
	OPENSSL_cleanse(b64, sizeof(b64));
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
		detail_clean(v, msg ? msg : "", m, sizeof(m));
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
			r->verdict = V_OK;
		} else {
			r->verdict = V_MISMATCH;
			snprintf(r->detail, sizeof(r->detail), "pinned to %s but left from %s", r->egress, r->seen);
		}
	} else {
		char m[VERIFY_DETAIL_MAX - 16];
		detail_clean(v, msg ? msg : "", m, sizeof(m));
		int st = v->resp->status;
		if (st / 100 == 2) {
			r->verdict = V_ACCEPTED;
		} else if (st == 401 && msg && strstr(msg, IP_MESSAGE)) {
			r->verdict = V_IP_DENIED;
			snprintf(r->detail, sizeof(r->detail), "%s", m);
		} else if (st == 403) {
			/* the address check comes before the permission check */
			r->verdict = V_PERMISSION;
			snprintf(r->detail, sizeof(r->detail), "address accepted; the key may not GET %.60s: %.290s",
				 v->path, m);
		} else {
			r->verdict = V_REJECTED;
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

static bool in_list(char list[][IPADDR_STRLEN], size_t n, const char *ip)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], ip))
			return true;
	return false;
}

static json_t *str_array(char list[][IPADDR_STRLEN], size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
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

/* The summary: prints the table (or JSON) and returns the exit status. */
static int report(struct verify *v)
{
	char proxy_disp[600], target_disp[VURL_PATH_MAX + 400];
	char missing[VERIFY_POOL_MAX][IPADDR_STRLEN], extra[VERIFY_POOL_MAX][IPADDR_STRLEN];
	char denied[VERIFY_POOL_MAX][IPADDR_STRLEN];
	size_t nmissing = 0, nextra = 0, ndenied = 0, npass = 0, nerror = 0;

	char user_disp[VURL_CRED_MAX];

	vurl_display(&v->proxy, false, proxy_disp, sizeof(proxy_disp));
	vurl_display(&v->target, true, target_disp, sizeof(target_disp));
	snprintf(user_disp, sizeof(user_disp), "%s", v->base_user);
	/* URLs and the user name come from the command line: a key pasted there stays masked */
	secret_redact(proxy_disp, strlen(proxy_disp));
	secret_redact(target_disp, strlen(target_disp));
	secret_redact(user_disp, strlen(user_disp));
	for (size_t i = 0; i < v->npool; i++) {
		if (verdict_passes(v->rows[i].verdict))
			npass++;
		else if (v->rows[i].verdict == V_IP_DENIED)
			memcpy(denied[ndenied++], v->rows[i].egress, IPADDR_STRLEN);
		else
			nerror++;
	}
	for (size_t i = 0; v->have_expect && i < v->nexpect; i++)
		if (!in_list(v->pool, v->npool, v->expect[i]))
			memcpy(missing[nmissing++], v->expect[i], IPADDR_STRLEN);
	for (size_t i = 0; v->have_expect && i < v->npool; i++)
		if (!in_list(v->expect, v->nexpect, v->pool[i]))
			memcpy(extra[nextra++], v->pool[i], IPADDR_STRLEN);
	bool ok = npass == v->npool && nmissing == 0 && nextra == 0;

	char fix[1024] = "";
	if (ndenied) {
		size_t o;
		char shown[512];
		store_target_display(v->db ? v->db : "", shown, sizeof(shown));
		if (v->key_id[0])
			o = (size_t)snprintf(fix, sizeof(fix), "iplock keys --db %.300s restrict %s", shown, v->key_id);
		else
			o = (size_t)snprintf(fix, sizeof(fix), "iplock keys restrict KEY_ID");
		for (size_t i = 0; i < ndenied && o < sizeof(fix); i++)
			o += (size_t)snprintf(fix + o, sizeof(fix) - o, " --allow %s", denied[i]);
	}

	if (v->json) {
		json_t *o = json_object(), *rows = json_array();
		json_object_set_new(o, "ok", json_boolean(ok));
		json_object_set_new(o, "mode", json_string(v->api ? "api" : "echo"));
		json_object_set_new(o, "proxy", json_string(proxy_disp));
		json_object_set_new(o, v->api ? "api" : "echo", json_string(target_disp));
		json_object_set_new(o, "user", json_string(user_disp));
		json_object_set_new(o, "policy", json_string(v->policy));
		json_object_set_new(o, "pool", str_array(v->pool, v->npool));
		if (v->api) {
			json_object_set_new(o, "key", json_string(v->key_masked));
			json_object_set_new(o, "key_id", v->key_id[0] ? json_string(v->key_id) : json_null());
			json_object_set_new(o, "path", json_string(v->path));
			json_object_set_new(o, "not_allowed", str_array(denied, ndenied));
			json_object_set_new(o, "fix", ndenied ? json_string(fix) : json_null());
		}
		if (v->have_expect) {
			json_object_set_new(o, "expect", str_array(v->expect, v->nexpect));
			json_object_set_new(o, "expected_not_in_pool", str_array(missing, nmissing));
			json_object_set_new(o, "in_pool_not_expected", str_array(extra, nextra));
		}
		for (size_t i = 0; i < v->npool; i++) {
			const struct row *r = &v->rows[i];
			json_t *jr = json_object();
			json_object_set_new(jr, "egress", json_string(r->egress));
			if (!v->api)
				json_object_set_new(jr, "seen", r->seen[0] ? json_string(r->seen) : json_null());
			json_object_set_new(jr, "verdict", json_string(verdict_name(r->verdict)));
			json_object_set_new(jr, "status", r->status ? json_integer(r->status) : json_null());
			json_object_set_new(jr, "detail", r->detail[0] ? json_string(r->detail) : json_null());
			json_array_append_new(rows, jr);
		}
		json_object_set_new(o, "results", rows);
		char *text = json_dumps(o, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(o);
		return ok ? 0 : 1;
	}

	printf("proxy  %s (user %s, %zu egress address%s, %s)\n", proxy_disp, user_disp, v->npool,
	       v->npool == 1 ? "" : "es", v->policy);
	if (v->api)
		printf("api    %s  key %s  GET %s\n\n", target_disp, v->key_masked, v->path);
	else
		printf("echo   %s\n\n", target_disp);
	printf("%-16s %-16s %-22s %s\n", "EGRESS", v->api ? "STATUS" : "SEEN BY ECHO", "VERDICT", "DETAIL");
	for (size_t i = 0; i < v->npool; i++) {
		const struct row *r = &v->rows[i];
		char st[16];
		snprintf(st, sizeof(st), "%d", r->status);
		printf("%-16s %-16s %-22s %s\n", r->egress,
		       v->api ? (r->status ? st : "-") : (r->seen[0] ? r->seen : "-"),
		       verdict_name(r->verdict), r->detail);
	}
	printf("\n");
	if (ok) {
		if (v->api)
			printf("ok: the key is accepted from every egress address (%zu/%zu)\n", npass, v->npool);
		else
			printf("ok: every egress address exits as itself (%zu/%zu)%s\n", npass, v->npool,
			       v->have_expect ? " and the pool is exactly --expect" : "");
		return 0;
	}
	if (ndenied) {
		printf("FAIL: the key's IP allowlist is missing %zu of the %zu egress addresses:", ndenied, v->npool);
		for (size_t i = 0; i < ndenied; i++)
			printf(" %s", denied[i]);
		printf("\n%s", ndenied == v->npool ? "      no request through this proxy is accepted.\n"
			: "      requests that leave from them fail with 401 (about one in two).\n");
		printf("fix:  add them to the key's allowlist:\n      %s%s\n"
		       "      for a Stripe key: Dashboard > Developers > API keys > the key > "
		       "Manage IP restrictions, add:", fix, v->key_id[0] ? "" : "   (key ids: iplock keys list)");
		for (size_t i = 0; i < ndenied; i++)
			printf(" %s", denied[i]);
		printf("\n");
	}
	if (nerror) {
		printf("FAIL: %zu egress address%s did not pass:", nerror, nerror == 1 ? "" : "es");
		for (size_t i = 0; i < v->npool; i++)
			if (!verdict_passes(v->rows[i].verdict) && v->rows[i].verdict != V_IP_DENIED)
				printf(" %s (%s)", v->rows[i].egress, verdict_name(v->rows[i].verdict));
		printf("\n");
	}
	if (nmissing) {
		printf("FAIL: expected but not in the pool:");
		for (size_t i = 0; i < nmissing; i++)
			printf(" %s", missing[i]);
		printf("\n      add them to the proxy's egress (or drop them from --expect)\n");
	}
	if (nextra) {
		printf("FAIL: in the pool but not expected:");
		for (size_t i = 0; i < nextra; i++)
			printf(" %s", extra[i]);
		printf("\n      traffic may leave from %s: add %s to your allowlists, or remove %s from the pool\n",
		       nextra == 1 ? "it" : "them", nextra == 1 ? "it" : "them", nextra == 1 ? "it" : "them");
	}
	return 1;
}

static const char *expect_parse(struct verify *v, const char *s)
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

static const char *key_load(struct verify *v, const char *key, const char *key_file)
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

/* Print a failure that stopped the whole check, in the chosen format; exit status 3. */
static int fatal(const struct verify *v, const char *why)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "%s", why);
	secret_redact(msg, strlen(msg));
	if (v->json) {
		json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
		char *text = json_dumps(o, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(o);
	}
	cli_errorf("iplock verify: %s\n", msg);
	return 3;
}

int verify_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "proxy", required_argument, NULL, 'p' },
		{ "echo", required_argument, NULL, 'e' },
		{ "expect", required_argument, NULL, 'x' },
		{ "api", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "path", required_argument, NULL, 'P' },
		{ "db", required_argument, NULL, 'D' },
		{ "cacert", required_argument, NULL, 'c' },
		{ "proxy-cacert", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *proxy = NULL, *echo = NULL, *api = NULL, *key = NULL, *key_file = NULL;
	const char *path = NULL, *expect = NULL, *err;
	char msg[600];
	int rc = 2, opt;
	struct verify *v = calloc(1, sizeof(*v));

	if (!v) {
		cli_errorf("iplock verify: out of memory\n");
		return 3;
	}
	v->timeout_ms = 10000;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': proxy = optarg; break;
		case 'e': echo = optarg; break;
		case 'x': expect = optarg; break;
		case 'a': api = optarg; break;
		case 'k': key = optarg; break;
		case 'K': key_file = optarg; break;
		case 'P': path = optarg; break;
		case 'D': v->db = optarg; break;
		case 'c': v->cacert = optarg; break;
		case 'C': v->proxy_cacert = optarg; break;
		case 'j': v->json = true; break;
		case 't': {
			char *end = NULL;
			errno = 0;
			double s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(s > 0 && s <= 600)) {
				rc = usage_err("--timeout takes seconds, more than 0 and at most 600", optarg);
				goto out;
			}
			v->timeout_ms = (unsigned)(s * 1000);
			if (!v->timeout_ms)
				v->timeout_ms = 1;
			break;
		}
		case 'h': usage(stdout); rc = 0; goto out;
		default:
			rc = usage_err("unknown option or missing value", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = usage_err("unexpected argument", argv[optind]);
		goto out;
	}
	if (!key && !key_file && getenv("IPLOCK_VERIFY_KEY"))
		key = getenv("IPLOCK_VERIFY_KEY");
	if (!proxy) {
		rc = usage_err("--proxy URL is required", NULL);
		goto out;
	}
	if (!echo == !(api || key || key_file)) {
		rc = usage_err("give either --echo URL or --key KEY (with --api URL)", NULL);
		goto out;
	}
	if ((err = vurl_parse(proxy, &v->proxy))) {
		rc = usage_err(err, "--proxy");
		goto out;
	}
	v->api = !echo;
	if (v->api) {
		if (!key && !key_file) {
			rc = usage_err("--api needs --key KEY, --key-file F or env IPLOCK_VERIFY_KEY", NULL);
			goto out;
		}
		if ((err = key_load(v, key, key_file))) {
			rc = usage_err(err, NULL);
			goto out;
		}
		if (expect) {
			rc = usage_err("--expect goes with --echo", NULL);
			goto out;
		}
		if (v->db && !store_is_remote(v->db) && access(v->db, R_OK)) {
			rc = usage_err("cannot read --db", v->db);
			goto out;
		}
	}
	if ((err = vurl_parse(echo ? echo : api ? api : "https://api.stripe.com", &v->target))) {
		rc = usage_err(err, echo ? "--echo" : "--api");
		goto out;
	}
	if (v->api) {
		/* --api is a base URL: the path comes from --path (default: Stripe's balance) */
		const char *base = strcmp(v->target.path, "/") ? v->target.path : "";
		const char *p = path ? path : "/v1/balance";
		size_t blen = strlen(base);
		if (blen && base[blen - 1] == '/')
			blen--;
		if (p[0] != '/' || blen + strlen(p) + 1 > sizeof(v->target.path)) {
			rc = usage_err("--path must start with / (and be short)", p);
			goto out;
		}
		snprintf(v->path, sizeof(v->path), "%.*s%s", (int)blen, base, p);
		memcpy(v->target.path, v->path, sizeof(v->path));
	} else if (path || v->db) {
		rc = usage_err("--path and --db go with --api", NULL);
		goto out;
	}
	if (expect && (err = expect_parse(v, expect))) {
		rc = usage_err(err, expect);
		goto out;
	}
	if (v->proxy_cacert && !v->proxy.tls) {
		rc = usage_err("--proxy-cacert needs an https:// proxy URL", NULL);
		goto out;
	}
	/* the pool is the user's: strip any option the URL carries, verify adds its own pins */
	snprintf(v->base_user, sizeof(v->base_user), "%.*s", (int)strcspn(v->proxy.user, "+"), v->proxy.user);

	signal(SIGPIPE, SIG_IGN);
	if (v->proxy.tls && !(v->proxy_ctx = vlink_tls_ctx(v->proxy_cacert, msg, sizeof(msg)))) {
		rc = fatal(v, msg);
		goto out;
	}
	if (v->target.tls && !(v->target_ctx = vlink_tls_ctx(v->cacert, msg, sizeof(msg)))) {
		rc = fatal(v, msg);
		goto out;
	}
	if (!(v->resp = malloc(sizeof(*v->resp)))) {
		rc = fatal(v, "out of memory");
		goto out;
	}
	if (pool_discover(v, msg, sizeof(msg))) {
		rc = fatal(v, msg);
		goto out;
	}
	size_t nerr = 0;
	for (size_t i = 0; i < v->npool; i++) {
		memcpy(v->rows[i].egress, v->pool[i], IPADDR_STRLEN);
		fetch_pinned(v, i, &v->rows[i]);
		if (v->rows[i].verdict == V_ERROR)
			nerr++;
	}
	if (v->api)
		key_lookup(v);
	rc = report(v);
	/* every address failed the same way before reaching the target: say it in one line */
	if (nerr == v->npool) {
		if (!v->json)
			cli_errorf("iplock verify: %s\n", v->rows[0].detail);
		rc = 3;
	}
out:
	if (v) {
		SSL_CTX_free(v->proxy_ctx);
		SSL_CTX_free(v->target_ctx);
		free(v->resp);
		OPENSSL_cleanse(v, sizeof(*v));
		free(v);
	}
	vlink_cleanup();
	return rc;
}
