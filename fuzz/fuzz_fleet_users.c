/* fuzz_fleet_users.c: the proxy fleet's text parsers and the [user] block rendering, on
 * arbitrary bytes. Lines: month, duration, user name, allow rules, egress addresses.
 * Properties: a month that parses is one calendar month starting at midnight UTC and prints
 * back as the input; a duration that parses is within 0..7 days; a user that the store and
 * fleet_user_check() accept renders into a [user] block that the proxy's config parser loads
 * with the same name, hash, rule count and egress count (so one store row can never make the
 * merged config fail). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/config.h"
#include "proxy/fleet.h"
#include "store/users.h"

#define HASH "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=="

static size_t words(const char *s)
{
	size_t n = 0;

	for (const char *p = s; *p;) {
		size_t l = strcspn(p, " ");
		n += l > 0;
		p += l;
		p += strspn(p, " ");
	}
	return n;
}

static void line(const char **p, const char *end, char *out, size_t cap)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t l = nl ? (size_t)(nl - *p) : (size_t)(end - *p);

	snprintf(out, cap, "%.*s", (int)(l < cap ? l : cap - 1), *p);
	*p += l + (nl != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char month[64], dur[64], text[2 * STORE_USER_LIST_MAX + 512], err[512];
	struct store_user u;
	int64_t a, b, secs;

	if (memchr(data, '\0', size))
		return 0;
	memset(&u, 0, sizeof(u));
	line(&p, end, month, sizeof(month));
	line(&p, end, dur, sizeof(dur));
	line(&p, end, u.name, sizeof(u.name));
	line(&p, end, u.allow, sizeof(u.allow));
	line(&p, end, u.egress, sizeof(u.egress));
	snprintf(u.hash, sizeof(u.hash), "%s", HASH);

	if (!store_month_parse(month, &a, &b)) {
		char back[16];
		time_t t = (time_t)a;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(back, sizeof(back), "%Y-%m", &tm);
		if (a >= b || b - a < 28 * 86400 || b - a > 31 * 86400 || a % 86400 || tm.tm_mday != 1 ||
		    strcmp(back, month))
			abort();
	}
	if (!store_duration_parse(dur, &secs) && (secs < 0 || secs > STORE_KEEP_OLD_MAX_S))
		abort();

	if (!store_user_valid(&u) && !fleet_user_check(&u)) {
		struct proxy_config *cfg = NULL;
		int n = snprintf(text, sizeof(text), "[proxy]\nlisten = 127.0.0.1:3128\negress = 127.0.0.2\n");
		long r = fleet_render_user(&u, text + n, sizeof(text) - (size_t)n);
		if (r < 0)
			abort();
		if (proxy_config_load_string(text, "f.ini", &cfg, err, sizeof(err))) {
			fprintf(stderr, "rendered user refused: %s\n%s\n", err, text);
			abort();
		}
		int k = proxy_config_find_user(cfg, u.name, strlen(u.name));
		if (k < 0 || strcmp(cfg->users[k].password_hash, HASH) ||
		    cfg->users[k].nallow != words(u.allow) ||
		    (cfg->users[k].egress ? cfg->users[k].egress->n : 0) != words(u.egress))
			abort();
		proxy_config_free(cfg);
	}
	return 0;
}
