/* gate.c: `iplock gate -c FILE`: the API-key gate (reverse proxy and/or forward-auth). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "gate/config.h"
#include "gate/server.h"

static const char usage_text[] =
	"usage: iplock gate -c FILE [--check]\n"
	"\n"
	"Checks every API request's key (Authorization: Bearer or Basic), client address and\n"
	"permissions against the key store, then forwards it to upstream (reverse proxy) or\n"
	"answers a forward-auth check (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz).\n"
	"\n"
	"  -c FILE    INI config: [gate] listen, db, upstream, upstream_ca, mode, auth_path,\n"
	"             tls_cert, tls_key, trusted_proxies, access_log, account, idle_timeout,\n"
	"             header_timeout, workers, path_normalize, routes = stripe;\n"
	"             [route NAME] method, path, resource, publishable (see docs/gate.md)\n"
	"  --check    validate the config and exit\n"
	"  -h, --help this text\n"
	"\n"
	"Signals: SIGHUP reopens the access log and checks the file again; SIGTERM/SIGINT stop.\n"
	"\n"
	"Exit status: 0 stopped by SIGTERM/SIGINT, or --check found the file valid; 1 a bad\n"
	"configuration, a store or listener that cannot be opened; 2 bad usage.\n";

int gate_main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false;
	struct gate_config cfg;
	struct gate_server *s = NULL;
	char err[512];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else {
			cli_errorf("iplock gate: unexpected argument '%s' (see iplock gate --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (!path) {
		return cli_fail("gate", 2, "-c FILE is required (see iplock gate --help)", NULL);
	}
	if (gate_config_load(path, &cfg, err, sizeof(err))) {
		gate_config_free(&cfg);
		return cli_fail("gate", 1, err, NULL);   /* bad input; 2 is for bad usage */
	}
	if (check) {
		printf("%s: ok (%d listener%s, %zu route%s)\n", path, cfg.n_listen, cfg.n_listen == 1 ? "" : "s",
		       cfg.routes.n, cfg.routes.n == 1 ? "" : "s");
		gate_config_free(&cfg);
		return 0;
	}
	if ((rc = gate_server_new(&cfg, &s, err, sizeof(err)))) {
		gate_config_free(&cfg);
		return cli_fail("gate", 1, err, NULL);
	}
	rc = gate_server_run(s);
	gate_server_free(s);
	gate_config_free(&cfg);
	return rc ? 1 : 0;
}
