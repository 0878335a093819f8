/* verify.c: `iplock verify`: its arguments and its report. The check itself is the engine in
 * src/verify/ (verify.h): it proves, for every egress address of a proxy pool, that traffic
 * really leaves from it (--echo) and that an API accepts a key from it (--api); this file
 * says exactly what to fix. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/secret.h"
#include "verify/verify.h"

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
		"\nExit status: 0 every address passed; 1 some address failed (the report says which and\n"
		"what to fix); 2 bad usage; 3 the check could not run (proxy unreachable, 407, TLS, timeout).\n");
}

static json_t *str_array(const char list[][IPADDR_STRLEN], size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

/* The summary: prints the table (or JSON) and returns the exit status. */
static int report(const struct verify *v)
{
	char proxy_disp[600], target_disp[VURL_PATH_MAX + 400];
	char user_disp[VURL_CRED_MAX];
	struct verify_summary s;

	vurl_display(&v->proxy, false, proxy_disp, sizeof(proxy_disp));
	vurl_display(&v->target, true, target_disp, sizeof(target_disp));
	snprintf(user_disp, sizeof(user_disp), "%s", v->base_user);
	/* URLs and the user name come from the command line: a key pasted there stays masked */
	secret_redact(proxy_disp, strlen(proxy_disp));
	secret_redact(target_disp, strlen(target_disp));
	secret_redact(user_disp, strlen(user_disp));
	verify_summarize(v, &s);

	if (v->json) {
		json_t *o = json_object(), *rows = json_array();
		json_object_set_new(o, "ok", json_boolean(s.ok));
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
			json_object_set_new(o, "not_allowed", str_array(s.denied, s.ndenied));
			json_object_set_new(o, "fix", s.ndenied ? json_string(s.fix) : json_null());
		}
		if (v->have_expect) {
			json_object_set_new(o, "expect", str_array(v->expect, v->nexpect));
			json_object_set_new(o, "expected_not_in_pool", str_array(s.missing, s.nmissing));
			json_object_set_new(o, "in_pool_not_expected", str_array(s.extra, s.nextra));
		}
		for (size_t i = 0; i < v->npool; i++) {
			const struct verify_row *r = &v->rows[i];
			json_t *jr = json_object();
			json_object_set_new(jr, "egress", json_string(r->egress));
			if (!v->api)
				json_object_set_new(jr, "seen", r->seen[0] ? json_string(r->seen) : json_null());
			json_object_set_new(jr, "verdict", json_string(verify_verdict_name(r->verdict)));
			json_object_set_new(jr, "status", r->status ? json_integer(r->status) : json_null());
			json_object_set_new(jr, "detail", r->detail[0] ? json_string(r->detail) : json_null());
			json_array_append_new(rows, jr);
		}
		json_object_set_new(o, "results", rows);
		cli_json_print(o, JSON_INDENT(2));
		json_decref(o);
		return s.ok ? 0 : 1;
	}

	printf("proxy  %s (user %s, %zu egress address%s, %s)\n", proxy_disp, user_disp, v->npool,
	       v->npool == 1 ? "" : "es", v->policy);
	if (v->api)
		printf("api    %s  key %s  GET %s\n\n", target_disp, v->key_masked, v->path);
	else
		printf("echo   %s\n\n", target_disp);
	printf("%-16s %-16s %-22s %s\n", "EGRESS", v->api ? "STATUS" : "SEEN BY ECHO", "VERDICT", "DETAIL");
	for (size_t i = 0; i < v->npool; i++) {
		const struct verify_row *r = &v->rows[i];
		char st[16];
		snprintf(st, sizeof(st), "%d", r->status);
		printf("%-16s %-16s %-22s %s\n", r->egress,
		       v->api ? (r->status ? st : "-") : (r->seen[0] ? r->seen : "-"),
		       verify_verdict_name(r->verdict), r->detail);
	}
	printf("\n");
	if (s.ok) {
		if (v->api)
			printf("ok: the key is accepted from every egress address (%zu/%zu)\n", s.npass, v->npool);
		else
			printf("ok: every egress address exits as itself (%zu/%zu)%s\n", s.npass, v->npool,
			       v->have_expect ? " and the pool is exactly --expect" : "");
		return 0;
	}
	if (s.ndenied) {
		printf("FAIL: the key's IP allowlist is missing %zu of the %zu egress addresses:", s.ndenied, v->npool);
		for (size_t i = 0; i < s.ndenied; i++)
			printf(" %s", s.denied[i]);
		printf("\n%s", s.ndenied == v->npool ? "      no request through this proxy is accepted.\n"
			: "      requests that leave from them fail with 401 (about one in two).\n");
		printf("fix:  add them to the key's allowlist:\n      %s%s\n"
		       "      for a Stripe key: Dashboard > Developers > API keys > the key > "
		       "Manage IP restrictions, add:", s.fix, v->key_id[0] ? "" : "   (key ids: iplock keys list)");
		for (size_t i = 0; i < s.ndenied; i++)
			printf(" %s", s.denied[i]);
		printf("\n");
	}
	if (s.nerror) {
		printf("FAIL: %zu egress address%s did not pass:", s.nerror, s.nerror == 1 ? "" : "es");
		for (size_t i = 0; i < v->npool; i++)
			if (!verify_verdict_passes(v->rows[i].verdict) && v->rows[i].verdict != VERIFY_IP_DENIED)
				printf(" %s (%s)", v->rows[i].egress, verify_verdict_name(v->rows[i].verdict));
		printf("\n");
	}
	if (s.nmissing) {
		printf("FAIL: expected but not in the pool:");
		for (size_t i = 0; i < s.nmissing; i++)
			printf(" %s", s.missing[i]);
		printf("\n      add them to the proxy's egress (or drop them from --expect)\n");
	}
	if (s.nextra) {
		printf("FAIL: in the pool but not expected:");
		for (size_t i = 0; i < s.nextra; i++)
			printf(" %s", s.extra[i]);
		printf("\n      traffic may leave from %s: add %s to your allowlists, or remove %s from the pool\n",
		       s.nextra == 1 ? "it" : "them", s.nextra == 1 ? "it" : "them", s.nextra == 1 ? "it" : "them");
	}
	return 1;
}

/* Print a failure that stopped the whole check, in the chosen format; exit status 3. */
static int fatal(const struct verify *v, const char *why)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "%s", why);
	secret_redact(msg, strlen(msg));
	if (v->json) {
		json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
		cli_json_print(o, JSON_INDENT(2));
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
				rc = cli_fail("verify", 2,
						"--timeout takes seconds, more than 0 and at most 600", optarg);
				goto out;
			}
			v->timeout_ms = (unsigned)(s * 1000);
			if (!v->timeout_ms)
				v->timeout_ms = 1;
			break;
		}
		case 'h': usage(stdout); rc = 0; goto out;
		default:
			rc = cli_fail("verify", 2,
					"unknown option or missing value", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_fail("verify", 2, "unexpected argument", argv[optind]);
		goto out;
	}
	if (!key && !key_file && getenv("IPLOCK_VERIFY_KEY"))
		key = getenv("IPLOCK_VERIFY_KEY");
	if (!proxy) {
		rc = cli_fail("verify", 2, "--proxy URL is required", NULL);
		goto out;
	}
	if (!echo == !(api || key || key_file)) {
		rc = cli_fail("verify", 2,
				"give either --echo URL or --key KEY (with --api URL)", NULL);
		goto out;
	}
	if ((err = vurl_parse(proxy, &v->proxy))) {
		rc = cli_fail("verify", 2, err, "--proxy");
		goto out;
	}
	v->api = !echo;
	if (v->api) {
		if (!key && !key_file) {
			rc = cli_fail("verify", 2,
					"--api needs --key KEY, --key-file F or env IPLOCK_VERIFY_KEY", NULL);
			goto out;
		}
		if ((err = verify_key_load(v, key, key_file))) {
			rc = cli_fail("verify", 2, err, NULL);
			goto out;
		}
		if (expect) {
			rc = cli_fail("verify", 2, "--expect goes with --echo", NULL);
			goto out;
		}
		if (v->db && !store_is_remote(v->db) && access(v->db, R_OK)) {
			rc = cli_fail("verify", 2, "cannot read --db", v->db);
			goto out;
		}
	}
	if ((err = vurl_parse(echo ? echo : api ? api : "https://api.stripe.com", &v->target))) {
		rc = cli_fail("verify", 2, err, echo ? "--echo" : "--api");
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
			rc = cli_fail("verify", 2, "--path must start with / (and be short)", p);
			goto out;
		}
		snprintf(v->path, sizeof(v->path), "%.*s%s", (int)blen, base, p);
		memcpy(v->target.path, v->path, sizeof(v->path));
	} else if (path || v->db) {
		rc = cli_fail("verify", 2, "--path and --db go with --api", NULL);
		goto out;
	}
	if (expect && (err = verify_expect_parse(v, expect))) {
		rc = cli_fail("verify", 2, err, expect);
		goto out;
	}
	if (v->proxy_cacert && !v->proxy.tls) {
		rc = cli_fail("verify", 2, "--proxy-cacert needs an https:// proxy URL", NULL);
		goto out;
	}
	/* the pool is the user's: strip any option the URL carries, verify adds its own pins */
	snprintf(v->base_user, sizeof(v->base_user), "%.*s", (int)strcspn(v->proxy.user, "+"), v->proxy.user);

	signal(SIGPIPE, SIG_IGN);
	if (verify_run(v, msg, sizeof(msg))) {
		rc = fatal(v, msg);
		goto out;
	}
	rc = report(v);
	/* every address failed the same way before reaching the target: say it in one line */
	if (v->nunreached == v->npool) {
		if (!v->json)
			cli_errorf("iplock verify: %s\n", v->rows[0].detail);
		rc = 3;
	}
out:
	verify_free(v);
	return rc;
}
