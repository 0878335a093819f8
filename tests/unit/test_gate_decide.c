/* test_gate_decide.c: key extraction, routes, client address, ordered checks, error bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gate/decide.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;

	assert_null(ipaddr_parse(s, strlen(s), &a));
	return a;
}

static struct cidr_set *set_of(const char *const *e, size_t n)
{
	struct cidr_set *s = cidr_set_new();

	for (size_t i = 0; i < n; i++) {
		struct cidr c;
		assert_null(cidr_parse(e[i], strlen(e[i]), &c));
		assert_int_equal(cidr_set_add(s, &c), 0);
	}
	return s;
}

static void test_extract(void **state)
{
	char k[GATE_KEY_TEXT_MAX + 1];
	const char *b = "Bearer sk_test_abc123XYZ0";
	/* base64("sk_test_abc123XYZ0:") */
	const char *basic = "Basic c2tfdGVzdF9hYmMxMjNYWVowOg==";

	(void)state;
	assert_int_equal(gate_key_extract(b, strlen(b), k, sizeof(k)), 18);
	assert_string_equal(k, "sk_test_abc123XYZ0");
	assert_int_equal(gate_key_extract("bearer   x1 ", 12, k, sizeof(k)), 2);
	assert_string_equal(k, "x1");
	assert_int_equal(gate_key_extract(basic, strlen(basic), k, sizeof(k)), 18);
	assert_string_equal(k, "sk_test_abc123XYZ0");
	assert_int_equal(gate_key_extract("Basic !!!", 9, k, sizeof(k)), 0);
	assert_int_equal(gate_key_extract("Bearer ", 7, k, sizeof(k)), 0);
	assert_int_equal(gate_key_extract("Token abc", 9, k, sizeof(k)), 0);
	assert_int_equal(gate_key_extract(NULL, 0, k, sizeof(k)), 0);
}

static void test_glob_routes(void **state)
{
	struct gate_routes r = { 0 };
	const struct gate_route *m;

	(void)state;
	assert_true(gate_glob("/v1/charges*", "/v1/charges/ch_1", 16));
	assert_true(gate_glob("/v1/charges*", "/v1/charges", 11));
	assert_false(gate_glob("/v1/charges*", "/v1/charge", 10));
	assert_true(gate_glob("/v1/*/refunds", "/v1/ch_1/refunds", 16));
	assert_false(gate_glob("/v1/*/refunds", "/v1/ch_1/refunds/x", 18));
	assert_true(gate_glob("*", "", 0));
	assert_null(gate_routes_add(&r, "tokens", "POST", "/v1/tokens*", "token", true));
	assert_null(gate_routes_add(&r, "charges", "*", "/v1/charges*", "charge", false));
	assert_null(gate_routes_add(&r, "cust", "GET,HEAD", "/v1/customers*", "customer", false));
	assert_non_null(gate_routes_add(&r, "bad", "get", "/x", "x", false));
	assert_non_null(gate_routes_add(&r, "bad", "GET", "x", "x", false));
	assert_non_null(gate_routes_add(&r, "bad", "GET", "/x", "Bad!", false));
	m = gate_routes_match(&r, "POST", 4, "/v1/charges?limit=3", 19);
	assert_non_null(m);
	assert_string_equal(m->resource, "charge");
	m = gate_routes_match(&r, "POST", 4, "/v1/tokens", 10);
	assert_true(m && m->publishable);
	assert_null(gate_routes_match(&r, "GET", 3, "/v1/tokens", 10));
	assert_null(gate_routes_match(&r, "POST", 4, "/v1/customers", 13));
	assert_non_null(gate_routes_match(&r, "HEAD", 4, "/v1/customers/cus_1", 19));
	assert_null(gate_routes_match(&r, "GET", 3, "/v1/balance?x=/v1/charges", 25));
	gate_routes_free(&r);
}

static const char *route_res(const struct gate_routes *r, const char *m, const char *t)
{
	const struct gate_route *x = gate_routes_match(r, m, strlen(m), t, strlen(t));

	return x ? x->resource : NULL;
}

static void test_stripe_routes(void **state)
{
	struct gate_routes r = { 0 };
	const char *err;

	(void)state;
	/* a provider's own route comes first and wins */
	assert_null(gate_routes_add(&r, "mine", "*", "/v1/charges/special*", "special", false));
	size_t n = gate_routes_add_stripe(&r, &err);
	assert_null(err);
	assert_true(n >= 40);
	assert_string_equal(route_res(&r, "GET", "/v1/charges"), "charge");
	assert_string_equal(route_res(&r, "GET", "/v1/charges/ch_1/refunds?limit=1"), "charge");
	assert_string_equal(route_res(&r, "GET", "/v1/charges/special"), "special");
	assert_null(route_res(&r, "GET", "/v1/chargesX"));
	assert_string_equal(route_res(&r, "POST", "/v1/refunds"), "refund");
	assert_string_equal(route_res(&r, "GET", "/v1/balance"), "balance");
	assert_string_equal(route_res(&r, "GET", "/v1/balance_transactions/txn_1"), "balance");
	assert_string_equal(route_res(&r, "POST", "/v1/checkout/sessions"), "checkout_session");
	assert_string_equal(route_res(&r, "GET", "/v1/webhook_endpoints/we_1"), "webhook_endpoint");
	const struct gate_route *t = gate_routes_match(&r, "POST", 4, "/v1/tokens", 10);
	assert_non_null(t);
	assert_true(t->publishable);
	assert_null(route_res(&r, "GET", "/v1/tokens/tok_1"));
	t = gate_routes_match(&r, "POST", 4, "/v1/payment_methods", 19);
	assert_true(t && t->publishable);
	t = gate_routes_match(&r, "GET", 3, "/v1/payment_methods/pm_1", 24);
	assert_true(t && !t->publishable && !strcmp(t->resource, "payment_method"));
	assert_null(route_res(&r, "GET", "/v1/unknown_thing"));
	gate_routes_free(&r);
}

static void test_client_addr(void **state)
{
	const char *tp[] = { "10.0.0.0/8", "::1" };
	struct cidr_set *trusted = set_of(tp, 2);
	struct ipaddr peer_t = ip("10.1.1.1"), peer_u = ip("203.0.113.9"), c;
	const char *x;

	(void)state;
	/* untrusted peer: XFF ignored, spoofing impossible */
	x = "127.0.0.2";
	assert_int_equal(gate_client_addr(&peer_u, x, strlen(x), trusted, &c), GATE_CLIENT_PEER);
	assert_true(ipaddr_equal(&c, &peer_u));
	/* trusted peer: right to left, first untrusted */
	x = "1.1.1.1, 198.51.100.7, 10.2.2.2";
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_XFF);
	assert_true(ipaddr_equal(&c, &(struct ipaddr){ 0 }) == false);
	struct ipaddr want = ip("198.51.100.7");
	assert_true(ipaddr_equal(&c, &want));
	/* ports and brackets, mapped v6 */
	x = "[2001:db8::5]:443";
	want = ip("2001:db8::5");
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_XFF);
	assert_true(ipaddr_equal(&c, &want));
	x = "198.51.100.7:8080,::ffff:10.9.9.9";
	want = ip("198.51.100.7");
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_XFF);
	assert_true(ipaddr_equal(&c, &want));
	/* garbage to the right of the client: unknown, fail closed */
	x = "198.51.100.7, garbage";
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_UNKNOWN);
	x = "198.51.100.7,,10.0.0.1";
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_UNKNOWN);
	x = "unknown";
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_UNKNOWN);
	/* garbage left of the client does not matter: it is never read */
	x = "garbage, 198.51.100.7";
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_XFF);
	/* all trusted: leftmost */
	x = "10.3.3.3, 10.4.4.4";
	want = ip("10.3.3.3");
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), trusted, &c), GATE_CLIENT_XFF);
	assert_true(ipaddr_equal(&c, &want));
	/* no header: the peer */
	assert_int_equal(gate_client_addr(&peer_t, NULL, 0, trusted, &c), GATE_CLIENT_PEER);
	/* no trusted set: peer */
	assert_int_equal(gate_client_addr(&peer_t, x, strlen(x), NULL, &c), GATE_CLIENT_PEER);
	cidr_set_free(trusted);
}

struct env {
	struct keycache *kc;
	struct gate_routes routes;
	char sk[128], rk[128], pk[128], ok[128], ek[128], vk[128];
};

static void add_key(struct env *e, char *text, const char *prefix, enum key_type t,
		    const char *const *allow, size_t n_allow, struct key_perm *perms,
		    size_t n_perms, int64_t expires, bool revoked)
{
	struct key_info k = { 0 };

	snprintf(text, 128, "%s%s", prefix, "0123456789abcdefghijklmnopqrstuvwxyzABCD");
	text[strlen(prefix) + 10] = (char)('A' + (int)keycache_count(e->kc));
	secret_sha256_hex(text, strlen(text), k.hash);
	secret_mask(text, strlen(text), k.masked);
	snprintf(k.id, sizeof(k.id), "key_%016zu", keycache_count(e->kc));
	k.type = t;
	k.expires_at = expires;
	k.revoked_at = revoked ? 1 : 0;
	k.allow = (char **)allow;
	k.n_allow = n_allow;
	k.perms = perms;
	k.n_perms = n_perms;
	assert_int_equal(keycache_put(e->kc, &k), 0);
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	static const char *allow[] = { "127.0.0.2", "2001:db8::/32" };
	static struct key_perm perms[] = { { "charge", PERM_READ }, { "customer", PERM_WRITE } };

	e->kc = keycache_new();
	add_key(e, e->sk, "sk_test_", KEY_SECRET, allow, 2, NULL, 0, 0, false);
	add_key(e, e->rk, "rk_test_", KEY_RESTRICTED, NULL, 0, perms, 2, 0, false);
	add_key(e, e->pk, "pk_test_", KEY_PUBLISHABLE, NULL, 0, NULL, 0, 0, false);
	add_key(e, e->ok, "sk_org_test_", KEY_ORG, NULL, 0, NULL, 0, 0, false);
	add_key(e, e->ek, "sk_live_", KEY_SECRET, NULL, 0, NULL, 0, 1000, false);
	add_key(e, e->vk, "sk_live_", KEY_SECRET, NULL, 0, NULL, 0, 0, true);
	assert_int_equal(keycache_count(e->kc), 6);
	gate_routes_add(&e->routes, "tokens", "POST", "/v1/tokens", "token", true);
	gate_routes_add(&e->routes, "charges", "*", "/v1/charges*", "charge", false);
	gate_routes_add(&e->routes, "customers", "*", "/v1/customers*", "customer", false);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	keycache_free(e->kc);
	gate_routes_free(&e->routes);
	free(e);
	return 0;
}

static enum gate_outcome decide(struct env *e, const char *method, const char *path,
				const char *key, const char *client, struct gate_decision *d)
{
	char auth[200];
	struct gate_input in = { .method = method, .method_len = strlen(method), .target = path,
				 .target_len = strlen(path), .now = 2000 };

	if (key) {
		snprintf(auth, sizeof(auth), "Bearer %s", key);
		in.auth = auth;
		in.auth_len = strlen(auth);
	}
	if (client)
		in.client = ip(client);
	else
		in.client_kind = GATE_CLIENT_UNKNOWN;
	gate_decide(e->kc, &e->routes, &in, d);
	return d->outcome;
}

static void test_decide_order(void **state)
{
	struct env *e = *state;
	struct gate_decision d;
	char msg[512];

	assert_int_equal(decide(e, "GET", "/v1/charges", NULL, "127.0.0.2", &d), GATE_NO_KEY);
	assert_int_equal(d.status, 401);
	assert_int_equal(decide(e, "GET", "/v1/charges", "sk_test_nope0123456789", "127.0.0.2", &d),
			 GATE_INVALID_KEY);
	gate_error_message(&d, NULL, msg, sizeof(msg));
	assert_string_equal(msg, "Invalid API Key provided: sk_test_****6789");
	assert_int_equal(decide(e, "GET", "/v1/charges", e->vk, "127.0.0.2", &d), GATE_INVALID_KEY);
	assert_string_equal(d.reason, "revoked");
	assert_int_equal(decide(e, "GET", "/v1/charges", e->ek, "127.0.0.2", &d), GATE_EXPIRED);
	/* allowlist: v4 exact, v6 range, mapped v4, unknown client */
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, "127.0.0.2", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, "::ffff:127.0.0.2", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, "2001:db8:1::7", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, "127.0.0.5", &d), GATE_IP_DENIED);
	assert_string_equal(d.reason, "ip_not_allowed");
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, NULL, &d), GATE_IP_DENIED);
	assert_string_equal(d.reason, "client_unknown");
	/* restricted */
	assert_int_equal(decide(e, "GET", "/v1/charges/ch_1", e->rk, "1.2.3.4", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "POST", "/v1/charges", e->rk, "1.2.3.4", &d), GATE_NO_PERMISSION);
	assert_int_equal(d.status, 403);
	assert_string_equal(d.perm, "rak_charge_write");
	assert_int_equal(decide(e, "DELETE", "/v1/customers/c", e->rk, "1.2.3.4", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "GET", "/v1/balance", e->rk, "1.2.3.4", &d), GATE_NO_PERMISSION);
	assert_int_equal(decide(e, "POST", "/v1/tokens", e->rk, "1.2.3.4", &d), GATE_NO_PERMISSION);
	assert_string_equal(d.perm, "rak_token_write");
	/* publishable */
	assert_int_equal(decide(e, "POST", "/v1/tokens", e->pk, "1.2.3.4", &d), GATE_ALLOW);
	assert_int_equal(decide(e, "GET", "/v1/charges", e->pk, "1.2.3.4", &d), GATE_PUBLISHABLE);
	assert_int_equal(decide(e, "GET", "/v1/other", e->pk, "1.2.3.4", &d), GATE_PUBLISHABLE);
	/* org */
	assert_int_equal(decide(e, "GET", "/v1/charges", e->ok, "1.2.3.4", &d), GATE_ORG_HEADERS);
	assert_int_equal(d.status, 400);
	/* secret: every route */
	assert_int_equal(decide(e, "POST", "/v1/tokens", e->sk, "127.0.0.2", &d), GATE_ALLOW);
}

/* A report-only allowlist: outside it the request is allowed and flagged; the other checks
 * still decide (a restricted key without the permission is still a 403). */
static void test_report_only(void **state)
{
	static const char *allow[] = { "127.0.0.2" };
	static struct key_perm perms[] = { { "charge", PERM_READ } };
	struct env *e = *state;
	struct key_info k = { 0 };
	struct gate_decision d;
	char rk[128];

	snprintf(rk, sizeof(rk), "rk_test_reportonly0123456789");
	secret_sha256_hex(rk, strlen(rk), k.hash);
	secret_mask(rk, strlen(rk), k.masked);
	snprintf(k.id, sizeof(k.id), "key_reportonly00001");
	k.type = KEY_RESTRICTED;
	k.allow = (char **)allow;
	k.n_allow = 1;
	k.perms = perms;
	k.n_perms = 1;
	k.allow_report = true;
	assert_int_equal(keycache_put(e->kc, &k), 0);
	assert_int_equal(decide(e, "GET", "/v1/charges", rk, "127.0.0.5", &d), GATE_ALLOW);
	assert_true(d.would_refuse);
	assert_int_equal(decide(e, "GET", "/v1/charges", rk, NULL, &d), GATE_ALLOW);
	assert_true(d.would_refuse);
	assert_int_equal(decide(e, "GET", "/v1/charges", rk, "127.0.0.2", &d), GATE_ALLOW);
	assert_false(d.would_refuse);
	assert_int_equal(decide(e, "POST", "/v1/charges", rk, "127.0.0.5", &d), GATE_NO_PERMISSION);
	/* enforced again: refused, not flagged */
	k.allow_report = false;
	assert_int_equal(keycache_put(e->kc, &k), 0);
	assert_int_equal(decide(e, "GET", "/v1/charges", rk, "127.0.0.5", &d), GATE_IP_DENIED);
	assert_false(d.would_refuse);
	/* an enforcing key is never flagged */
	assert_int_equal(decide(e, "GET", "/v1/x", e->sk, "127.0.0.5", &d), GATE_IP_DENIED);
	assert_false(d.would_refuse);
}

static void test_error_bodies(void **state)
{
	struct env *e = *state;
	struct gate_decision d;
	char body[2048];
	json_t *j;

	decide(e, "POST", "/v1/charges", e->rk, "1.2.3.4", &d);
	assert_true(gate_error_body(&d, "acct_123", body, sizeof(body)) > 0);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	json_t *err = json_object_get(j, "error");
	assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
	const char *m = json_string_value(json_object_get(err, "message"));
	assert_non_null(strstr(m, "on account 'acct_123'"));
	assert_non_null(strstr(m, "Having the 'rak_charge_write' permission would allow this "
			       "request to continue."));
	assert_null(strstr(m, e->rk + 12)); /* never more than the mask */
	json_decref(j);

	decide(e, "GET", "/v1/charges", e->ek, "1.2.3.4", &d);
	assert_true(gate_error_body(&d, NULL, body, sizeof(body)) > 0);
	j = json_loads(body, 0, NULL);
	err = json_object_get(j, "error");
	assert_string_equal(json_string_value(json_object_get(err, "code")), "api_key_expired");
	assert_non_null(strstr(json_string_value(json_object_get(err, "message")),
			       "Expired API Key provided: sk_live_****"));
	json_decref(j);

	decide(e, "GET", "/v1/x", e->sk, "127.0.0.9", &d);
	gate_error_body(&d, NULL, body, sizeof(body));
	j = json_loads(body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
							      "message")),
			    "The API key provided does not allow requests from your IP address.");
	json_decref(j);
	/* a hostile presented key cannot break the JSON */
	struct gate_input in = { .method = "GET", .method_len = 3, .target = "/", .target_len = 1,
				 .auth = "Bearer a\"\\\x01\xff" "bcdefghijklmn", .auth_len = 23 };
	gate_decide(e->kc, &e->routes, &in, &d);
	assert_true(gate_error_body(&d, NULL, body, sizeof(body)) > 0);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	json_decref(j);
}

static void test_many_keys_and_entries(void **state)
{
	struct keycache *kc = keycache_new();
	char **entries = calloc(5000, sizeof(char *));
	struct key_info k = { 0 };
	char text[64];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		entries[i] = malloc(32);
		snprintf(entries[i], 32, "10.%d.%d.0/24", i / 256, i % 256);
	}
	for (int i = 0; i < 10000; i++) {
		snprintf(text, sizeof(text), "sk_live_key%08dabcdefghij", i);
		secret_sha256_hex(text, strlen(text), k.hash);
		snprintf(k.id, sizeof(k.id), "key_%016d", i);
		k.allow = i == 777 ? entries : NULL;
		k.n_allow = i == 777 ? 5000 : 0;
		assert_int_equal(keycache_put(kc, &k), 0);
	}
	assert_int_equal(keycache_count(kc), 10000);
	snprintf(text, sizeof(text), "sk_live_key%08dabcdefghij", 777);
	const struct gate_key *g = keycache_find(kc, text, strlen(text));
	assert_non_null(g);
	struct ipaddr in = ip("10.19.135.77"), out = ip("10.20.0.1");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100000; i++) {
		assert_true(cidr_set_contains(g->allow, &in));
		assert_false(cidr_set_contains(g->allow, &out));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / 200000;
	print_message("allowlist of 5000 entries: %.3f us per lookup\n", us);
	assert_true(us < 50);
	for (int i = 0; i < 5000; i++)
		free(entries[i]);
	free(entries);
	keycache_free(kc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_glob_routes),
		cmocka_unit_test(test_stripe_routes),
		cmocka_unit_test(test_client_addr),
		cmocka_unit_test_setup_teardown(test_decide_order, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_report_only, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_error_bodies, env_setup, env_teardown),
		cmocka_unit_test(test_many_keys_and_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
