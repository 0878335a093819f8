/* webhook.c: `iplock webhook sign|verify`: Stripe-Signature headers from the command line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/fdio.h"
#include "webhook/webhook.h"

#define WH_MAX_SECRETS 8
#define WH_SECRET_MAX 512
#define WH_PAYLOAD_MAX (64u << 20)      /* Stripe events are far smaller */

struct wh_args {
	const char *secrets[WH_MAX_SECRETS];
	size_t n_secrets;
	char *owned[WH_MAX_SECRETS];    /* secrets read from files, wiped at exit */
	const char *header;
	const char *payload_file;
	int64_t timestamp;
	bool have_ts;
	int64_t tolerance;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iplock webhook sign   --secret whsec_... [--timestamp T] [--payload-file F] < payload\n"
		"       iplock webhook verify --secret whsec_... --header VALUE [--tolerance 300] [--payload-file F] < payload\n"
		"\n"
		"Signs a payload as Stripe does (Stripe-Signature: t=...,v1=...), or verifies a received\n"
		"header against the payload and the endpoint's signing secret(s).\n"
		"\n"
		"  --secret S        signing secret (repeat while rolling: sign emits one v1 per secret,\n"
		"                    verify accepts a match with any)\n"
		"  --secret-file F   read secrets from F, one per line (keeps them out of `ps`)\n"
		"                    (also: env IPLOCK_WEBHOOK_SECRET)\n"
		"  --timestamp T     unix seconds to sign with (default: now)\n"
		"  --header VALUE    the Stripe-Signature header to verify\n"
		"  --tolerance N     largest accepted age in seconds (default 300; 0 is refused: unsafe)\n"
		"  --payload-file F  read the payload from F instead of stdin (raw bytes, never re-encoded)\n"
		"  -h, --help        this text\n"
		"\nExit status: 0 signed, or valid (verify); 1 not valid (verify: Stripe's SDK message on\n"
		"stderr); 2 bad usage or an unreadable payload file.\n");
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static int add_secret(struct wh_args *a, const char *s, bool owned)
{
	if (a->n_secrets >= WH_MAX_SECRETS)
		return cli_fail("webhook", 2, "too many secrets", NULL);
	if (!*s || strlen(s) > WH_SECRET_MAX)
		return cli_fail("webhook", 2, "a secret must be 1 to 512 bytes", NULL);
	a->secrets[a->n_secrets] = s;
	a->owned[a->n_secrets] = owned ? (char *)s : NULL;
	a->n_secrets++;
	return 0;
}

static int read_secret_file(struct wh_args *a, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[WH_SECRET_MAX + 2];
	int rc = 0;

	if (!f)
		return cli_fail("webhook", 2, "cannot open secret file", path);
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		if (n == strlen(line) && !feof(f)) {
			rc = cli_fail("webhook", 2, "line too long in secret file", path);
			break;
		}
		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		char *dup = strdup(line);
		if (!dup) {
			rc = cli_fail("webhook", 2, "out of memory", NULL);
			break;
		}
		rc = add_secret(a, dup, true);
		if (rc)
			free(dup);
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return rc;
}

/* The payload as raw bytes, capped. Returns 0 or an exit code. */
static int read_payload(const char *path, char **out, size_t *len)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0)
		return cli_fail("webhook", 2, "cannot open payload file", path);
	int rc = fdio_read_all(fd, WH_PAYLOAD_MAX, out, len);
	if (path)
		close(fd);
	if (rc == -E2BIG)
		return cli_fail("webhook", 2, "payload larger than 64 MiB", NULL);
	if (rc == -ENOMEM)
		return cli_fail("webhook", 2, "out of memory", NULL);
	if (rc)
		return cli_fail("webhook", 2, "cannot read payload", strerror(-rc));
	return 0;
}

static int parse_args(int argc, char **argv, struct wh_args *a, bool *help)
{
	static const struct option opts[] = {
		{ "secret", required_argument, NULL, 's' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "timestamp", required_argument, NULL, 't' },
		{ "header", required_argument, NULL, 'H' },
		{ "tolerance", required_argument, NULL, 'T' },
		{ "payload-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if ((rc = add_secret(a, optarg, false)))
				return rc;
			break;
		case 'S':
			if ((rc = read_secret_file(a, optarg)))
				return rc;
			break;
		case 't':
			if (!parse_i64(optarg, &a->timestamp))
				return cli_fail("webhook", 2,
						"--timestamp wants unix seconds", optarg);
			a->have_ts = true;
			break;
		case 'H':
			a->header = optarg;
			break;
		case 'T':
			if (!parse_i64(optarg, &a->tolerance) || a->tolerance < 0)
				return cli_fail("webhook", 2, "--tolerance wants seconds", optarg);
			if (a->tolerance == 0)
				return cli_fail("webhook", 2,
						"--tolerance 0 disables replay protection; refused", NULL);
			break;
		case 'p':
			a->payload_file = optarg;
			break;
		case 'h':
			*help = true;
			return 0;
		default:
			return cli_fail("webhook", 2,
					"unknown or incomplete option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail("webhook", 2, "unexpected argument", argv[optind]);
	if (a->n_secrets == 0) {
		const char *env = getenv("IPLOCK_WEBHOOK_SECRET");
		if (env && *env && (rc = add_secret(a, env, false)))
			return rc;
	}
	if (a->n_secrets == 0)
		return cli_fail("webhook", 2, "--secret is required", NULL);
	return 0;
}

int webhook_main(int argc, char **argv)
{
	struct wh_args a = { .tolerance = WEBHOOK_DEFAULT_TOLERANCE };
	char *payload = NULL;
	size_t len = 0;
	bool help = false;
	int rc = 2;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	bool sign = !strcmp(argv[1], "sign");
	if (!sign && strcmp(argv[1], "verify")) {
		cli_errorf("iplock webhook: unknown action '%s' (sign or verify)\n", argv[1]);
		return 2;
	}
	if ((rc = parse_args(argc - 1, argv + 1, &a, &help)) || help) {
		if (help)
			usage(stdout);
		goto out;
	}
	if (sign && a.header) {
		rc = cli_fail("webhook", 2, "--header is for verify", NULL);
		goto out;
	}
	if (!sign && !a.header) {
		rc = cli_fail("webhook", 2, "--header is required", NULL);
		goto out;
	}
	if ((rc = read_payload(a.payload_file, &payload, &len)))
		goto out;
	if (sign) {
		char hdr[64 + WH_MAX_SECRETS * (WEBHOOK_SIG_HEX + 4)];
		int n = webhook_sign(a.secrets, a.n_secrets, a.have_ts ? a.timestamp : (int64_t)time(NULL),
				     payload, len, hdr, sizeof(hdr));
		if (n < 0) {
			rc = cli_fail("webhook", 2, "cannot sign", strerror(-n));
			goto out;
		}
		printf("%s\n", hdr);
		rc = 0;
	} else {
		int64_t t = 0;
		const char *err = webhook_verify(a.header, strlen(a.header), payload, len, a.secrets,
						 a.n_secrets, a.tolerance, (int64_t)time(NULL), &t);
		if (err && !strcmp(err, WEBHOOK_ERR_STALE))
			cli_errorf("%s (%" PRId64 ")\n", err, t); /* stripe-python's wording */
		else if (err)
			cli_errorf("%s\n", err);
		rc = err ? 1 : 0;
	}
out:
	free(payload);
	for (size_t i = 0; i < a.n_secrets; i++)
		if (a.owned[i]) {
			OPENSSL_cleanse(a.owned[i], strlen(a.owned[i]));
			free(a.owned[i]);
		}
	return rc;
}
