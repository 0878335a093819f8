/* console.c: `iplock console`: its arguments. The server and the commands are src/console/. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "console/console.h"
#include "store/store.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iplock console -c console.ini [--check]\n"
		"       iplock console users add NAME --password-stdin --role admin|viewer [-c FILE | --db DB]\n"
		"       iplock console users list [--json] [-c FILE | --db DB]\n"
		"       iplock console users remove NAME [-c FILE | --db DB]\n"
		"       iplock console tokens create NAME --scope read|write [-c FILE | --db DB]\n"
		"       iplock console tokens list [--json] [-c FILE | --db DB]\n"
		"       iplock console tokens revoke ID [-c FILE | --db DB]\n"
		"\n"
		"The web dashboard and management API over the gate's key store (docs/console.md).\n"
		"\n"
		"  -c, --config FILE   console.ini ([console] listen, db, tls_cert/tls_key, routes, egress)\n"
		"  --check             validate the file and exit\n"
		"  --db DB             the store (a SQLite file or postgresql://...) instead of -c\n"
		"  --password-stdin    read the password from the first line of stdin\n"
		"  --role ROLE         admin (every change) or viewer (read only)\n"
		"  --scope SCOPE       an API token's scope: read or write\n"
		"  --json              one JSON object per line\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: SIGHUP is logged (restart to read the file again); SIGTERM/SIGINT stop.\n"
		"\n"
		"Exit status: 0 stopped by SIGTERM/SIGINT, --check found the file valid, or the users or\n"
		"tokens command succeeded; 1 a bad configuration, a store or listener that cannot be\n"
		"opened, or a refused change; 2 bad usage.\n");
}

/* The password: the first line of stdin, without its newline. */
static int read_password(char *out, size_t cap, size_t *len)
{
	size_t n = 0;
	int ch;

	while ((ch = getchar()) != EOF && ch != '\n') {
		if (n + 1 >= cap)
			return -1;
		out[n++] = (char)ch;
	}
	if (n && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	*len = n;
	return 0;
}

static int run_admin(int argc, char **argv, const char *db)
{
	const char *what = argv[0], *verb = argc > 1 ? argv[1] : NULL;
	bool json = false, pw_stdin = false;
	const char *role = NULL, *scope = NULL, *arg = NULL;
	char actor[128], err[512];
	int rc;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--password-stdin"))
			pw_stdin = true;
		else if (!strcmp(argv[i], "--role") && i + 1 < argc)
			role = argv[++i];
		else if (!strcmp(argv[i], "--scope") && i + 1 < argc)
			scope = argv[++i];
		else if (argv[i][0] != '-' && !arg)
			arg = argv[i];
		else
			return cli_fail("console", 2, "unknown option or missing value", argv[i]);
	}
	if (!verb)
		return cli_fail("console", 2,
				"missing command (add, list, remove / create, list, revoke)", NULL);
	store_actor_default(actor, sizeof(actor));
	bool users = !strcmp(what, "users");
	if (users && !strcmp(verb, "add")) {
		char pw[1100];
		size_t pl = 0;
		if (!arg)
			return cli_fail("console", 2, "users add needs a NAME", NULL);
		if (!pw_stdin)
			return cli_fail("console", 2,
					"users add needs --password-stdin (a password is never "
					"an argument)", NULL);
		if (!role)
			return cli_fail("console", 2, "users add needs --role admin|viewer", NULL);
		if (read_password(pw, sizeof(pw), &pl))
			return cli_fail("console", 2, "password longer than 1024 characters", NULL);
		rc = console_user_add(db, arg, pw, pl, role, actor, err, sizeof(err));
		memset(pw, 0, sizeof(pw));
	} else if (users && !strcmp(verb, "list")) {
		rc = console_user_list(db, json, err, sizeof(err));
	} else if (users && !strcmp(verb, "remove")) {
		if (!arg)
			return cli_fail("console", 2, "users remove needs a NAME", NULL);
		rc = console_user_remove(db, arg, actor, err, sizeof(err));
	} else if (!users && !strcmp(verb, "create")) {
		if (!arg || !scope)
			return cli_fail("console", 2,
					"tokens create needs a NAME and --scope read|write", NULL);
		rc = console_token_create(db, arg, scope, actor, err, sizeof(err));
	} else if (!users && !strcmp(verb, "list")) {
		rc = console_token_list(db, json, err, sizeof(err));
	} else if (!users && !strcmp(verb, "revoke")) {
		if (!arg)
			return cli_fail("console", 2, "tokens revoke needs a token ID", NULL);
		rc = console_token_revoke(db, arg, actor, err, sizeof(err));
	} else {
		return cli_fail("console", 2, "unknown command", verb);
	}
	if (rc)
		cli_errorf("iplock console %s %s: %s\n", what, verb, err);
	return rc;
}

int console_main(int argc, char **argv)
{
	const char *cfg_path = NULL, *db = NULL;
	bool check = false;
	int first_cmd = 0;
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0, rc;

	if (!rest)
		return 1;
	/* -c/--db/--check anywhere; the words users|tokens start a command */
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			cfg_path = argv[++i];
		} else if (!strcmp(argv[i], "--db") && i + 1 < argc) {
			db = argv[++i];
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config") ||
			   !strcmp(argv[i], "--db")) {
			rc = cli_fail("console", 2, "this option needs a value", argv[i]);
			goto out;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			free(rest);
			return 0;
		} else if (argv[i][0] == '-' && !nrest) {
			rc = cli_fail("console", 2, "unknown option", argv[i]);
			goto out;
		} else {
			if (!nrest)
				first_cmd = i;
			rest[nrest++] = argv[i];
		}
	}
	(void)first_cmd;
	struct console_config cfg;
	char err[600];
	if (nrest) {
		if (strcmp(rest[0], "users") && strcmp(rest[0], "tokens")) {
			rc = cli_fail("console", 2, "unknown argument", rest[0]);
			goto out;
		}
		if (!db && cfg_path) {
			if (console_config_load(cfg_path, &cfg, err, sizeof(err))) {
				cli_errorf("iplock console: %s\n", err);
				console_config_free(&cfg);
				rc = 1;
				goto out;
			}
			static char dbpath[4096];
			snprintf(dbpath, sizeof(dbpath), "%s", cfg.db);
			console_config_free(&cfg);
			db = dbpath;
		}
		if (!db) {
			rc = cli_fail("console", 2,
					"give the store: -c console.ini or --db DB", NULL);
			goto out;
		}
		rc = run_admin(nrest, rest, db);
		goto out;
	}
	if (!cfg_path) {
		rc = cli_fail("console", 2, "-c console.ini is required", NULL);
		goto out;
	}
	if (console_config_load(cfg_path, &cfg, err, sizeof(err))) {
		cli_errorf("iplock console: %s\n", err);
		console_config_free(&cfg);
		rc = 1;
		goto out;
	}
	if (check) {
		printf("%s: ok (%zu routes, %zu egress addresses)\n", cfg_path, cfg.routes.n, cfg.n_egress);
		console_config_free(&cfg);
		rc = 0;
		goto out;
	}
	char listen_text[80];
	snprintf(listen_text, sizeof(listen_text), "%s", cfg.listen_text);
	struct console *c = console_open(&cfg, err, sizeof(err));
	if (!c) {
		cli_errorf("iplock console: %s\n", err);
		rc = 1;
		goto out;
	}
	cli_errorf("iplock console: listening on %s://%s\n", console_is_tls(c) ? "https" : "http",
		   listen_text);
	rc = console_run(c) ? 1 : 0;
	console_close(c);
out:
	free(rest);
	return rc;
}
