/* proxy.c: `iplock proxy`, the static-egress forward proxy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "proxy/config.h"
#include "proxy/fleet.h"
#include "proxy/proxy.h"
#include "net/tls.h"

static void proxy_usage(FILE *out)
{
	fprintf(out,
		"usage: iplock proxy -c FILE [--check] [--dns-servers LIST] [-v]\n\n"
		"Static-egress forward proxy: HTTP forwarding and CONNECT tunnels leave from the\n"
		"fixed egress addresses of each user's pool. See docs/config.md.\n\n"
		"  -c, --config FILE     INI configuration ([proxy], [user NAME] sections)\n"
		"      --check           validate the configuration, print FILE:LINE: reason, exit\n"
		"      --dns-servers L   resolvers as \"127.0.0.1:5353,[::1]:53\" (default: resolv.conf)\n"
		"  -v, --verbose         debug logging\n"
		"  -h, --help            this text\n\n"
		"Signals: SIGHUP reloads the configuration (a bad one is refused and the running one\n"
		"stays; established tunnels are kept). SIGTERM/SIGINT stop gracefully: listeners close,\n"
		"requests and tunnels in flight get drain_timeout to finish (a second signal ends them).\n"
		"Metrics and health: admin_listen (GET /metrics, /healthz), see docs/metrics.md.\n\n"
		"Exit status: 0 stopped by SIGTERM/SIGINT, or --check found the file valid; 1 a\n"
		"configuration that is missing or invalid, an address in use, a failure at run time;\n"
		"2 bad usage.\n");
}

int proxy_main(int argc, char **argv)
{
	const char *path = NULL, *dns_servers = NULL;
	bool check = false;
	char err[512];
	struct proxy_config *cfg;
	struct proxy px;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			proxy_usage(stdout);
			return 0;
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "--dns-servers") && i + 1 < argc) {
			dns_servers = argv[++i];
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			log_verbosity = LOG_DEBUG;
		} else {
			cli_errorf("iplock proxy: unknown or incomplete option '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		return cli_fail("proxy", 2, "a configuration file is required (-c FILE)", NULL);
	}
	if (proxy_config_load(path, &cfg, err, sizeof(err))) {
		/* bad input; 2 is for bad usage (docs/config.md, exit status) */
		return cli_fail("proxy", 1, err, NULL);
	}
	memset(&px, 0, sizeof(px));
	pthread_mutex_init(&px.reload_mu, NULL);
	if (cfg->users_db[0]) {
		/* the same file again, with the store's users merged in */
		proxy_config_free(cfg);
		if (fleet_open(&px, path, &cfg, err, sizeof(err))) {
			fleet_free(px.fleet);
			return cli_fail("proxy", 1, err, NULL);
		}
	}
	if (check && cfg->ntls_listen) {
		SSL_CTX *ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
		if (!ctx) {
			cli_errorf("iplock proxy: %s: %s\n", path, err);
			proxy_config_free(cfg);
			fleet_free(px.fleet);
			return 1;
		}
		SSL_CTX_free(ctx);
	}
	if (check) {
		printf("%s: ok (%zu user%s, %zu egress address%s)\n", path, cfg->nusers, cfg->nusers == 1 ? "" : "s",
		       cfg->egress.n, cfg->egress.n == 1 ? "" : "es");
		proxy_config_free(cfg);
		fleet_free(px.fleet);
		return 0;
	}
	if (!cfg->auth_required)
		log_warn("auth is off: this is an open proxy for anyone who can reach it");
	px.config_path = path;
	px.dns_servers = dns_servers;
	struct cfg_ref *r = cfg_ref_new(cfg, err, sizeof(err));
	if (!r || cfg_ref_open_log(r, NULL, err, sizeof(err))) {
		if (r)
			cfg_ref_put(r);
		fleet_free(px.fleet);
		return cli_fail("proxy", 1, err, NULL);
	}
	px.cfg = r;
	return proxy_run(&px);
}
