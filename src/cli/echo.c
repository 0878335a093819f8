/* echo.c: `iplock echo`: its arguments. The server is src/echo/ (echo.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "echo/echo.h"
#include "net/addr.h"
#include "net/host.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iplock echo --listen ADDR:PORT [--tls-cert FILE --tls-key FILE] [--workers N]\n"
		"\n"
		"Answers GET /ip and GET / with {\"origin\": \"<client address>\"} (like httpbin),\n"
		"so `iplock verify --echo URL` can see which address a request left from.\n"
		"\n"
		"  --listen ADDR:PORT  address to listen on (127.0.0.1:8088, [::1]:8088)\n"
		"  --tls-cert FILE     certificate chain (PEM): serve HTTPS\n"
		"  --tls-key FILE      private key (PEM) for --tls-cert\n"
		"  --workers N         worker threads, 1-64 (default 1)\n"
		"  -h, --help          this text\n"
		"\nOther paths get a 404, other methods a 405, malformed requests a 400; keep-alive.\n"
		"Stops on SIGTERM or SIGINT: answers in flight are sent first; a second signal stops at once.\n"
		"\nExit status: 0 stopped by SIGTERM/SIGINT; 1 cannot listen or load the certificate;\n"
		"2 bad usage.\n");
}

int echo_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "workers", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_arg = NULL, *cert = NULL, *key = NULL;
	unsigned workers = 1;
	char *end;
	unsigned long wv;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int opt;
	char err[256];

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_arg = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'w':
			errno = 0;
			wv = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || wv < 1 || wv > 64)
				return cli_fail("echo", 2,
						"--workers must be a number from 1 to 64", optarg);
			workers = (unsigned)wv;
			break;
		case 'h': usage(stdout); return 0;
		default:
			return cli_fail("echo", 2,
					"unknown option or missing value", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail("echo", 2, "unexpected argument", argv[optind]);
	if (!listen_arg)
		return cli_fail("echo", 2, "--listen ADDR:PORT is required", NULL);
	if (!cert != !key)
		return cli_fail("echo", 2, "--tls-cert and --tls-key go together", NULL);
	const char *perr = host_listen_parse(listen_arg, &ss, &sl);
	if (perr)
		return cli_fail("echo", 2, perr, listen_arg);

	struct echo_server *srv = echo_open((struct sockaddr *)&ss, sl, listen_arg, cert, key, workers,
					    err, sizeof(err));
	if (!srv) {
		cli_errorf("iplock echo: %s\n", err);
		return 1;
	}
	cli_errorf("iplock echo: listening on %s://%s\n", echo_is_tls(srv) ? "https" : "http", listen_arg);
	int rc = echo_run(srv) ? 1 : 0;
	echo_close(srv);
	return rc;
}
