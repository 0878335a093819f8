/* verdict.c: liveness classes and the parser of a Stripe-compatible API's answers. */
#include "scan/verdict.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define IP_PHRASE   "does not allow requests from your IP address"
#define PERM_BEFORE "Having the '"
#define PERM_AFTER  "' permission"

static const char *const probe_paths[SCAN_PROBE_COUNT] = {
	"/v1/charges?limit=1", "/v1/customers?limit=1", "/v1/balance",
	"/v1/payment_intents?limit=1", "/v1/refunds?limit=1", "/v1/invoices?limit=1",
};
static const char *const probe_res[SCAN_PROBE_COUNT] = {
	"charges", "customers", "balance", "payment_intents", "refunds", "invoices",
};

const char *scan_probe_path(unsigned i)
{
	return i < SCAN_PROBE_COUNT ? probe_paths[i] : "";
}

const char *scan_probe_resource(unsigned i)
{
	return i < SCAN_PROBE_COUNT ? probe_res[i] : "";
}

const char *scan_live_name(enum scan_live c)
{
	static const char *const n[] = { "", "dead", "unknown", "locked", "live" };
	return (unsigned)c < 5 ? n[c] : "";
}

const char *scan_store_state_name(enum scan_store_state s)
{
	static const char *const n[] = { "", "active", "expired", "revoked", "not-in-store" };
	return (unsigned)s < 5 ? n[s] : "";
}

const char *scan_api_state_name(enum scan_api_state s)
{
	static const char *const n[] = { "", "live", "locked", "invalid", "restricted", "unknown" };
	return (unsigned)s < SCAN_API_STATE_COUNT ? n[s] : "";
}

bool scan_fail_on_parse(const char *s, int *out)
{
	static const struct { const char *name; int v; } t[] = {
		{ "live", SCAN_LIVE_LIVE }, { "locked", SCAN_LIVE_LOCKED },
		{ "unknown", SCAN_LIVE_UNKNOWN }, { "any", SCAN_LIVE_NONE }, { "none", -1 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name)) {
			*out = t[i].v;
			return true;
		}
	return false;
}

static bool ipchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

/* The first IPv4/IPv6 literal in msg (a maximal run of address characters, trailing dots
 * dropped, that inet_pton accepts). */
static void find_ip(const char *msg, size_t n, char ip[SCAN_IP_MAX])
{
	ip[0] = '\0';
	for (size_t i = 0; i < n;) {
		if (!ipchar(msg[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && ipchar(msg[j]))
			j++;
		size_t e = j;
		while (e > i && msg[e - 1] == '.')
			e--;
		size_t k = e - i;
		if (k >= 2 && k < SCAN_IP_MAX && (memchr(msg + i, '.', k) || memchr(msg + i, ':', k))) {
			char tmp[SCAN_IP_MAX];
			unsigned char bin[16];
			memcpy(tmp, msg + i, k);
			tmp[k] = '\0';
			if (inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1) {
				memcpy(ip, tmp, k + 1);
				return;
			}
		}
		i = j;
	}
}

/* The slug in "Having the 'rak_charge_read' permission": [a-z0-9_], 1..63 bytes. */
static void find_perm(const char *msg, size_t n, char perm[SCAN_PERM_MAX])
{
	perm[0] = '\0';
	const char *p = memmem(msg, n, PERM_BEFORE, strlen(PERM_BEFORE));
	if (!p)
		return;
	p += strlen(PERM_BEFORE);
	size_t left = n - (size_t)(p - msg), k = 0;
	while (k < left && k < SCAN_PERM_MAX - 1 &&
	       ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= '0' && p[k] <= '9') || p[k] == '_'))
		k++;
	if (k == 0 || left - k < strlen(PERM_AFTER) || memcmp(p + k, PERM_AFTER, strlen(PERM_AFTER)))
		return;
	memcpy(perm, p, k);
	perm[k] = '\0';
}

enum scan_api_state scan_verdict_parse(int status, const char *body, size_t len,
				       char ip[SCAN_IP_MAX], char perm[SCAN_PERM_MAX])
{
	enum scan_api_state st = SCAN_API_UNKNOWN;
	json_t *root = NULL;
	const char *msg = body;
	size_t mlen = len;

	ip[0] = perm[0] = '\0';
	if (status >= 200 && status <= 299)
		return SCAN_API_LIVE;
	if (status != 401 && status != 403)
		return SCAN_API_UNKNOWN;
	/* the message of Stripe's envelope; a body that is not one is searched as it is */
	root = json_loadb(body, len, 0, NULL);
	json_t *m = json_object_get(json_object_get(root, "error"), "message");
	if (json_is_string(m)) {
		msg = json_string_value(m);
		mlen = json_string_length(m);
	}
	if (status == 401) {
		if (memmem(msg, mlen, IP_PHRASE, strlen(IP_PHRASE))) {
			st = SCAN_API_LOCKED;
			find_ip(msg, mlen, ip);
		} else {
			st = SCAN_API_INVALID;
		}
	} else {
		st = SCAN_API_RESTRICTED;
		find_perm(msg, mlen, perm);
	}
	json_decref(root);
	return st;
}

static void api_part(const struct scan_verdict *v, char *out, size_t cap)
{
	char reads[128] = "", denied[128] = "";
	size_t rn = 0, dn = 0;

	switch (v->api) {
	case SCAN_API_NONE:
		out[0] = '\0';
		break;
	case SCAN_API_LIVE:
		snprintf(out, cap, "api: live");
		break;
	case SCAN_API_LOCKED:
		snprintf(out, cap, "api: live but IP-locked%s%s%s", v->ip[0] ? " (" : "", v->ip,
			 v->ip[0] ? " not allowed)" : "");
		break;
	case SCAN_API_INVALID:
		snprintf(out, cap, "api: invalid or revoked (%d)", v->http_status);
		break;
	case SCAN_API_RESTRICTED:
		for (unsigned i = 0; i < SCAN_PROBE_COUNT; i++) {
			if (v->probes[i] == SCAN_PROBE_READ && rn < sizeof(reads))
				rn += (size_t)snprintf(reads + rn, sizeof(reads) - rn, "%s%s",
						       rn ? ", " : "", probe_res[i]);
			else if (v->probes[i] == SCAN_PROBE_DENIED && dn < sizeof(denied))
				dn += (size_t)snprintf(denied + dn, sizeof(denied) - dn, "%s%s",
						       dn ? ", " : "", probe_res[i]);
		}
		snprintf(out, cap, "api: restricted key; reads %s; denied %s%s%s%s",
			 rn ? reads : "none of those probed", dn ? denied : "none",
			 v->perm[0] ? " (needs " : "", v->perm, v->perm[0] ? ")" : "");
		break;
	case SCAN_API_UNKNOWN:
	default:
		snprintf(out, cap, "api: unknown (%s)", v->api_error[0] ? v->api_error : "no answer");
		break;
	}
}

void scan_verdict_finish(struct scan_verdict *v)
{
	char store[96] = "", api[400];

	switch (v->api) {
	case SCAN_API_LIVE:
	case SCAN_API_RESTRICTED:
		v->live = SCAN_LIVE_LIVE;
		break;
	case SCAN_API_LOCKED:
		v->live = SCAN_LIVE_LOCKED;
		break;
	case SCAN_API_INVALID:
		v->live = SCAN_LIVE_DEAD;
		break;
	default:
		/* the API could not tell (or was not asked): the store decides */
		if (v->store == SCAN_STORE_ACTIVE)
			v->live = v->n_allow ? SCAN_LIVE_LOCKED : SCAN_LIVE_LIVE;
		else if (v->store == SCAN_STORE_EXPIRED || v->store == SCAN_STORE_REVOKED)
			v->live = SCAN_LIVE_DEAD;
		else
			v->live = SCAN_LIVE_UNKNOWN;
		break;
	}
	if (v->store == SCAN_STORE_ACTIVE && v->n_allow)
		snprintf(store, sizeof(store), "store: active, locked to %zu address%s", v->n_allow,
			 v->n_allow == 1 ? "" : "es");
	else if (v->store == SCAN_STORE_ACTIVE)
		snprintf(store, sizeof(store), "store: active, any address");
	else if (v->store != SCAN_STORE_NONE)
		snprintf(store, sizeof(store), "store: %s", scan_store_state_name(v->store));
	api_part(v, api, sizeof(api));
	snprintf(v->detail, sizeof(v->detail), "%s%s%s", store, store[0] && api[0] ? "; " : "", api);
}
