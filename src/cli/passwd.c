/* passwd.c: `iplock passwd NAME`: makes (or reads) a proxy user's password and prints the
 * [user NAME] config block with its hash on stdout, and the proxy URL with the password once
 * on stderr, so `iplock passwd alice >> proxy.ini` stores only the hash. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/codec.h"
#include "core/secret.h"
#include "net/host.h"
#include "proxy/auth.h"
#include "proxy/config.h"

#define PASSWORD_LEN 24
#define PASSWORD_MAX 512

static void passwd_usage(FILE *out)
{
	fprintf(out,
		"usage: iplock passwd NAME [--password-stdin] [--host HOST] [--port PORT]\n\n"
		"Makes a random %d-character password for proxy user NAME ([A-Za-z0-9._-], 1-64).\n"
		"stdout: the config block ([user NAME] and password_hash) to add to the proxy config.\n"
		"stderr: the proxy URL with the password, shown this once and never stored.\n\n"
		"  --password-stdin  read the password from the first line of stdin instead\n"
		"  --host HOST       proxy host in the URL (default 127.0.0.1)\n"
		"  --port PORT       proxy port in the URL (default 3128)\n"
		"  --help            this text\n\n"
		"Exit status: 0 done; 1 no randomness or hashing failed; 2 bad usage (a bad NAME, host,\n"
		"port or password).\n", PASSWORD_LEN);
}

static int usage_error(const char *msg, const char *arg)
{
	cli_errorf("iplock passwd: %s%s%s (see iplock passwd --help)\n", msg,
		arg ? ": " : "", arg ? arg : "");
	return 2;
}

int passwd_main(int argc, char **argv)
{
	const char *name = NULL, *host_arg = "127.0.0.1";
	uint16_t port = 3128;
	bool from_stdin = false;
	char password[PASSWORD_MAX + 2], hash[AUTH_HASH_MAX], enc[3 * PASSWORD_MAX + 4];
	struct host host;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			passwd_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--password-stdin")) {
			from_stdin = true;
		} else if (!strcmp(a, "--host") || !strcmp(a, "--port")) {
			if (i + 1 >= argc)
				return usage_error("missing value for", a);
			const char *v = argv[++i];
			if (a[2] == 'h') {
				host_arg = v;
			} else if (port_parse(v, strlen(v), &port)) {
				return usage_error("bad port", v);
			}
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option", a);
		} else if (name) {
			return usage_error("one user NAME only", a);
		} else {
			name = a;
		}
	}
	if (!name)
		return usage_error("missing user NAME", NULL);
	if (!proxy_user_name_valid(name, strlen(name)))
		return usage_error("NAME must be 1-64 of A-Z a-z 0-9 . _ - (no '+')", name);
	if (host_parse(host_arg, strlen(host_arg), &host))
		return usage_error("bad host", host_arg);

	if (from_stdin) {
		if (!fgets(password, sizeof(password), stdin)) {
			rc = usage_error("no password on stdin", NULL);
			goto out;
		}
		size_t n = strlen(password);
		if (n > 0 && password[n - 1] == '\n')
			password[--n] = '\0';
		else if (n > PASSWORD_MAX) {
			rc = usage_error("password longer than 512 characters", NULL);
			goto out;
		}
		if (n > 0 && password[n - 1] == '\r')
			password[--n] = '\0';
		if (n == 0) {
			rc = usage_error("empty password", NULL);
			goto out;
		}
	} else if (secret_random_alnum(password, PASSWORD_LEN) < 0) {
		cli_errorf("iplock passwd: no randomness available\n");
		goto out;
	}
	if (auth_hash_password(password, strlen(password), hash, sizeof(hash)) < 0) {
		cli_errorf("iplock passwd: hashing failed\n");
		goto out;
	}
	printf("[user %s]\npassword_hash = %s\n", name, hash);
	fflush(stdout);
	/* userinfo needs percent-encoding of everything but unreserved characters; enc holds
	 * 3 * PASSWORD_MAX + 1, so it always fits */
	codec_pct_encode(password, strlen(password), NULL, enc, sizeof(enc));
	bool v6 = host.kind == HOST_IP && host.ip.family == AF_INET6;
	fprintf(stderr, "proxy URL (shown once, not stored): http://%s:%s@%s%s%s:%u\n", name, enc,
		v6 ? "[" : "", host.name, v6 ? "]" : "", port);
	rc = 0;
out:
	OPENSSL_cleanse(password, sizeof(password));
	OPENSSL_cleanse(enc, sizeof(enc));
	return rc;
}
