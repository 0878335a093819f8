/* main.c: the iplock binary, a table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	/* one line per subcommand, in the order --help lists them */
	{ "proxy",  proxy_main,  "static-egress forward proxy: HTTP forwarding, CONNECT, egress pools" },
	{ "passwd", passwd_main, "make a proxy user's password: config block (hash) and proxy URL" },
	{ "scan", scan_main, "find leaked Stripe-format keys in files, stdin or git history" },
	{ "webhook", webhook_main, "sign or verify Stripe-Signature webhook headers" },
	{ "gate", gate_main, "API-key gate: IP-locked keys, reverse proxy or forward-auth" },
	{ "keys", keys_main, "manage API keys: create, restrict, rotate, revoke, audit" },
	{ "console", console_main, "web dashboard and management API for keys and their IP restrictions" },
	{ "echo", echo_main, "tiny HTTP(S) server answering GET /ip with the caller's address" },
	{ "verify", verify_main, "prove every egress address exits as expected and is accepted by an API" },
	{ "tunnel", tunnel_main, "local port forwards through the proxy (databases, SFTP, LDAP leave from its egress IPs)" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out, "iplock %s: static egress IPs and IP-locked API keys\n\n"
		"usage: iplock COMMAND [OPTIONS]   (iplock COMMAND --help for its options)\n\ncommands:\n",
		IPLOCK_VERSION);
	for (size_t i = 0; commands[i].name; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\n  --help     this text\n  --version  print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("iplock %s\n", IPLOCK_VERSION);
		return 0;
	}
	for (size_t i = 0; commands[i].name; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	cli_errorf("iplock: unknown command '%s' (see iplock --help)\n", argv[1]);
	return 2;
}
