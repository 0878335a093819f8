/* fuzz_gate_parse.c: what the gate reads from a client before deciding: the Authorization
 * header (Bearer / Basic), the X-Forwarded-For chain, the request target against routes.
 * Input: three fields separated by '\n'. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gate/decide.h"

static struct gate_routes routes;
static struct cidr_set *trusted;
static struct keycache *kc;

static void init(void)
{
	struct cidr c;
	struct key_info k = { 0 };
	static const char *const allow[] = { "127.0.0.2", "2001:db8::/32" };

	gate_routes_add(&routes, "c", "*", "/v1/charges*", "charge", false);
	gate_routes_add(&routes, "t", "POST", "/v1/*/tokens*x", "token", true);
	trusted = cidr_set_new();
	cidr_parse("10.0.0.0/8", 10, &c);
	cidr_set_add(trusted, &c);
	kc = keycache_new();
	secret_sha256_hex("sk_test_0123456789", 18, k.hash);
	snprintf(k.id, sizeof(k.id), "key_0000000000000000");
	k.allow = (char **)allow;
	k.n_allow = 2;
	keycache_put(kc, &k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;
	const char *f[3] = { s, s, s };
	size_t fl[3] = { 0, 0, 0 };
	char key[GATE_KEY_TEXT_MAX + 1];

	if (!kc)
		init();
	for (int i = 0; i < 3; i++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		f[i] = s;
		fl[i] = nl ? (size_t)(nl - s) : (size_t)(end - s);
		s = nl ? nl + 1 : end;
	}
	size_t kl = gate_key_extract(f[0], fl[0], key, sizeof(key));
	if (kl >= sizeof(key) || strlen(key) > kl)
		__builtin_trap();
	struct ipaddr peer, client;
	ipaddr_parse("10.1.2.3", 8, &peer);
	enum gate_client ck = gate_client_addr(&peer, f[1], fl[1], trusted, &client);
	struct gate_input in = { .method = "GET", .method_len = 3, .target = f[2],
				 .target_len = fl[2], .auth = f[0], .auth_len = fl[0],
				 .client_kind = ck, .client = client, .now = 1 };
	struct gate_decision d;
	char body[2048];
	gate_decide(kc, &routes, &in, &d);
	if (d.outcome != GATE_ALLOW && gate_error_body(&d, "acct_1", body, sizeof(body)) < 0)
		__builtin_trap();
	return 0;
}
