/* tunnel.c: `iplock tunnel`, local port forwards through the static-egress proxy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "core/log.h"
#include "tunnel/tunnel.h"

static void tunnel_usage(FILE *out)
{
	fprintf(out,
		"usage: iplock tunnel [--proxy URL] [-c FILE] [--check] [-v] [LOCAL_ADDR:]PORT=REMOTE_HOST:PORT ...\n\n"
		"Listens locally and carries each accepted connection through a CONNECT (or SOCKS5) tunnel\n"
		"of the proxy, so programs that cannot use a proxy (database clients, SFTP, LDAP) leave\n"
		"from its static egress addresses. See docs/tunnel.md.\n\n"
		"  --proxy URL          http://USER:PASS@HOST:PORT, https://... (TLS to the proxy: credentials\n"
		"                       and targets never cross the network in cleartext) or socks5h://...\n"
		"                       (default: $IPLOCK_PROXY_URL, which keeps the password out of ps)\n"
		"  --proxy-cacert FILE  CA certificates that sign an https:// proxy's certificate\n"
		"                       (default: the system's)\n"
		"  -c, --config FILE    INI file: [proxy] url = ..., [tunnel NAME] listen = ..., remote = ...\n"
		"      --check          validate the settings, print the mappings, exit\n"
		"  -v, --verbose        debug logging (one line per connection)\n"
		"  -h, --help           this text\n\n"
		"Mappings: 127.0.0.1:5432=db.example.com:5432 (a bare local port listens on 127.0.0.1).\n"
		"Each new local connection dials the proxy afresh: when the proxy is down the local\n"
		"connection is closed and the listener stays. SIGHUP reads the file again and checks it\n"
		"(changes need a restart); SIGTERM/SIGINT close the listeners and let open connections\n"
		"finish (at most 30 s; a second signal ends them).\n\n"
		"Exit status: 0 stopped by SIGTERM/SIGINT, or --check found the settings valid; 1 a bad\n"
		"configuration file, a port that cannot be listened on; 2 bad usage (options, mappings,\n"
		"proxy URL).\n");
}

int tunnel_main(int argc, char **argv)
{
	struct tunnel_config *cfg = malloc(sizeof(*cfg));
	const char *path = NULL, *url = NULL, *cacert = NULL, *err;
	bool check = false;
	char ebuf[512];
	int rc = 2;

	if (!cfg) {
		cli_errorf("iplock tunnel: out of memory\n");
		return 1;
	}
	tunnel_config_init(cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			tunnel_usage(stdout);
			rc = 0;
			goto out;
		} else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(a, "--proxy") && i + 1 < argc) {
			url = argv[++i];
		} else if (!strcmp(a, "--proxy-cacert") && i + 1 < argc) {
			cacert = argv[++i];
		} else if (!strcmp(a, "--check")) {
			check = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			log_verbosity = LOG_DEBUG;
		} else if (a[0] == '-') {
			cli_errorf("iplock tunnel: unknown or incomplete option '%s' (see --help)\n", a);
			goto out;
		}
	}
	if (path && tunnel_config_load(path, cfg, ebuf, sizeof(ebuf))) {
		cli_errorf("iplock tunnel: %s\n", ebuf);
		rc = 1;   /* bad input; 2 is for bad usage */
		goto out;
	}
	cfg->path = path;
	if (cacert) {
		if (strlen(cacert) >= sizeof(cfg->cacert)) {
			cli_errorf("iplock tunnel: --proxy-cacert: path too long\n");
			goto out;
		}
		memcpy(cfg->cacert, cacert, strlen(cacert) + 1);
	}
	if (!url && !cfg->has_proxy)
		url = getenv("IPLOCK_PROXY_URL");
	if (url) {
		/* the command line wins over the file */
		if ((err = tunnel_proxy_parse(url, &cfg->proxy))) {
			cli_errorf("iplock tunnel: --proxy: %s\n", err);
			goto out;
		}
		cfg->has_proxy = true;
	}
	for (int i = 1; i < argc; i++) {
		struct tunnel_map m;
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config") || !strcmp(argv[i], "--proxy") ||
		    !strcmp(argv[i], "--proxy-cacert")) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		if ((err = tunnel_map_parse(argv[i], &m)) || (err = tunnel_config_add(cfg, &m))) {
			cli_errorf("iplock tunnel: mapping '%s': %s\n", argv[i], err);
			goto out;
		}
	}
	if (!cfg->has_proxy) {
		cli_errorf("iplock tunnel: a proxy URL is required (--proxy URL, $IPLOCK_PROXY_URL or [proxy] url)\n");
		goto out;
	}
	if (!cfg->nmaps) {
		cli_errorf("iplock tunnel: no mapping (LOCAL_ADDR:PORT=REMOTE_HOST:PORT or [tunnel NAME])\n");
		goto out;
	}
	if (check) {
		for (size_t i = 0; i < cfg->nmaps; i++) {
			const struct tunnel_map *m = &cfg->maps[i];
			char ip[IPADDR_STRLEN];
			ipaddr_format(&m->listen_ip, ip, sizeof(ip));
			printf(m->listen_ip.family == AF_INET6 ? "tunnel %s: [%s]:%u -> %s\n" : "tunnel %s: %s:%u -> %s\n",
			       m->name, ip, m->listen_port, m->authority);
		}
		printf("proxy %s: ok (%zu tunnel%s)\n", cfg->proxy.display, cfg->nmaps, cfg->nmaps == 1 ? "" : "s");
		rc = 0;
		goto out;
	}
	rc = tunnel_run(cfg);
out:
	explicit_bzero(cfg, sizeof(*cfg));   /* the proxy password lives in it */
	free(cfg);
	return rc;
}
