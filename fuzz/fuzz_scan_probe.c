/* fuzz_scan_probe.c: the parser of a Stripe-compatible API's answers (scan --verify). Input: a
 * status byte pair then a body. Properties: the class is one of the enum and fits the status
 * (2xx live, 401 locked/invalid, 403 restricted, else unknown); an IP is reported only for a
 * locked answer, is a valid address and appears in the error message (or the body); a
 * permission only for 403, [a-z0-9_] and in the message; verdict_finish always yields a class. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "scan/verdict.h"

static bool appears(const char *needle, const uint8_t *data, size_t size)
{
	size_t n = strlen(needle);
	bool found = n <= size && memmem(data, size, needle, n) != NULL;
	json_t *root = json_loadb((const char *)data, size, 0, NULL);
	json_t *m = json_object_get(json_object_get(root, "error"), "message");
	if (json_is_string(m))
		found = memmem(json_string_value(m), json_string_length(m), needle, n) != NULL;
	json_decref(root);
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 201, 401, 403, 404, 429, 500, 302 };
	if (size < 1)
		return 0;
	int status = statuses[data[0] % 8];
	data++;
	size--;
	char ip[SCAN_IP_MAX], perm[SCAN_PERM_MAX];
	memset(ip, 'x', sizeof(ip));
	memset(perm, 'x', sizeof(perm));
	enum scan_api_state st = scan_verdict_parse(status, (const char *)data, size, ip, perm);
	if ((unsigned)st >= SCAN_API_STATE_COUNT || st == SCAN_API_NONE)
		abort();
	if (status / 100 == 2 && st != SCAN_API_LIVE)
		abort();
	if (status == 401 && st != SCAN_API_LOCKED && st != SCAN_API_INVALID)
		abort();
	if (status == 403 && st != SCAN_API_RESTRICTED)
		abort();
	if (status / 100 != 2 && status != 401 && status != 403 && st != SCAN_API_UNKNOWN)
		abort();
	if (!memchr(ip, '\0', sizeof(ip)) || !memchr(perm, '\0', sizeof(perm)))
		abort();
	if (ip[0]) {
		unsigned char bin[16];
		if (st != SCAN_API_LOCKED || !appears(ip, data, size) ||
		    (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1))
			abort();
	}
	if (perm[0]) {
		if (st != SCAN_API_RESTRICTED || strspn(perm, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
		    strlen(perm) || !appears(perm, data, size))
			abort();
	}
	struct scan_verdict v;
	memset(&v, 0, sizeof(v));
	v.api = st;
	v.store = (enum scan_store_state)(size % 5);
	v.n_allow = size % 3;
	v.http_status = status;
	memcpy(v.ip, ip, sizeof(ip));
	memcpy(v.perm, perm, sizeof(perm));
	for (unsigned i = 0; i < SCAN_PROBE_COUNT; i++)
		v.probes[i] = (uint8_t)(i < size ? data[i] % 4 : 0);
	scan_verdict_finish(&v);
	if (v.live < SCAN_LIVE_DEAD || v.live > SCAN_LIVE_LIVE ||
	    !memchr(v.detail, '\0', sizeof(v.detail)))
		abort();
	return 0;
}
