/* gen_corpus.c: writes N MiB of realistic text (logs, code, env and config lines) with a
 * sprinkle of Stripe-format keys, for bench/scan.sh. Deterministic (fixed seed).
 * usage: gen_corpus MIB [PLANTED] > file; prints the number of planted keys on stderr and, with
 * PLANTED, writes "offset length" of every planted key there (bench/scan.sh checks findings). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 11);
}

static void alnum(char *out, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < n; i++)
		out[i] = a[rnd() % 62];
	out[n] = '\0';
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	uint64_t target = (uint64_t)mib << 20, written = 0, keys = 0;
	/* prefixes assembled here so the source holds no key-looking literal */
	static const char *const pre[][2] = {
		{ "sk_", "live_" }, { "rk_", "live_" }, { "sk_", "test_" }, { "rk_", "test_" },
		{ "wh", "sec_" }, { "sk_org_", "live_" },
	};
	static char buf[1 << 20];
	size_t used = 0;
	char line[1024], tok[128], key[160];
	FILE *planted = argc > 2 ? fopen(argv[2], "w") : NULL;

	if (argc > 2 && !planted) {
		perror(argv[2]);
		return 2;
	}

	while (written + used < target) {
		uint32_t r = rnd(), t = r % 16;
		int n;
		alnum(tok, 12 + r % 10);
		if (rnd() % 4000 == 0) {
			const char *const *p = pre[rnd() % 6];
			char body[128];
			alnum(body, p[0][0] == 'w' ? 32 : (rnd() % 3 ? 99 : 24));
			snprintf(key, sizeof(key), "%s%s%s", p[0], p[1], body);
			static const char *const kf[] = {
				"STRIPE_SECRET_KEY=%s\n", "  api_key: \"%s\"\n",
				"%s INFO http: Authorization: Bearer %s sent\n",
				"stripe.api_key = '%s'  # TODO move to vault\n",
				"{\"webhook_secret\": \"%s\", \"retries\": 3}\n",
			};
			unsigned f = rnd() % 5;
			if (f == 2)
				n = snprintf(line, sizeof(line), kf[f], "2024-05-01T10:00:00Z", key);
			else
				n = snprintf(line, sizeof(line), kf[f], key);
			keys++;
			/* where the key lands in the output: this line starts at written + used */
			if (planted && n > 0 && (size_t)n < sizeof(line))
				fprintf(planted, "%llu %zu\n",
					(unsigned long long)(written + used + (size_t)(strstr(line, key) - line)),
					strlen(key));
		} else if (t < 5) {
			n = snprintf(line, sizeof(line),
				     "2024-05-%02u %02u:%02u:%02u.%03u INFO  [worker-%u] request_id=%08x "
				     "user_id=%u path=/v1/charges/ch_%s status=%u duration_ms=%u\n",
				     r % 28 + 1, r % 24, r % 60, (r >> 8) % 60, r % 1000, r % 16, rnd(),
				     rnd() % 100000, tok, 200 + r % 3 * 100, r % 900);
		} else if (t < 7) {
			n = snprintf(line, sizeof(line),
				     "    def process_task_%u(self, task_id, payload, mask_bits=0x%x):\n"
				     "        disk_usage = self.risk_model.exec_check(task_id, \"%s\")\n",
				     r % 500, r & 0xffff, tok);
		} else if (t < 9) {
			n = snprintf(line, sizeof(line),
				     "export DATABASE_URL=postgres://app:%s@db-%u.internal:5432/app_%u\n"
				     "REDIS_HOST=cache-%u.local\nFEATURE_FLAG_ASK_USER=%s\n",
				     tok, r % 9, r % 4, r % 7, r % 2 ? "true" : "false");
		} else if (t < 11) {
			n = snprintf(line, sizeof(line),
				     "{\"event\":\"charge.succeeded\",\"id\":\"evt_%s\",\"amount\":%u,"
				     "\"currency\":\"usd\",\"livemode\":false,\"spec_version\":\"%u.%u\"}\n",
				     tok, r % 100000, r % 3, r % 10);
		} else if (t < 13) {
			n = snprintf(line, sizeof(line),
				     "  <property name=\"desk_timeout_%u\" value=\"%u\"/> <!-- sec_level: %s -->\n",
				     r % 100, r % 3600, tok);
		} else if (t < 14) {
			/* near misses: no key, but the scanner must look */
			n = snprintf(line, sizeof(line),
				     "task_live_%s sk_live_%.9s pk_test_sample sk-live_%s whsec-%s\n", tok,
				     tok, tok, tok);
		} else {
			n = snprintf(line, sizeof(line),
				     "const total = items.reduce((acc, it) => acc + it.price * %u, 0); // %s\n",
				     r % 50, tok);
		}
		if (n <= 0)
			continue;
		if ((size_t)n >= sizeof(line))
			n = sizeof(line) - 1;
		if (used + (size_t)n > sizeof(buf)) {
			fwrite(buf, 1, used, stdout);
			written += used;
			used = 0;
		}
		memcpy(buf + used, line, (size_t)n);
		used += (size_t)n;
	}
	fwrite(buf, 1, used, stdout);
	fprintf(stderr, "%llu\n", (unsigned long long)keys);
	if (planted && fclose(planted) != 0)
		return 1;
	return fflush(stdout) ? 1 : 0;
}
