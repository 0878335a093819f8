/* verdict.h: is a found key live? The classes `iplock scan --verify` gives a finding, from the
 * key store and from a Stripe-compatible API, and the pure parser of the API's answers (fuzzed:
 * fuzz/fuzz_scan_probe.c). No I/O here. */
#ifndef IPLOCK_SCAN_VERDICT_H
#define IPLOCK_SCAN_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCAN_IP_MAX      46     /* INET6_ADDRSTRLEN */
#define SCAN_PERM_MAX    64     /* one permission slug such as rak_charge_read, NUL included */
#define SCAN_PROBE_COUNT 6      /* read-only endpoints probed for a restricted key */

/* What the key store says (--db). */
enum scan_store_state {
	SCAN_STORE_NONE = 0,    /* not checked */
	SCAN_STORE_ACTIVE,      /* usable: from any address, or locked to n_allow entries */
	SCAN_STORE_EXPIRED,
	SCAN_STORE_REVOKED,
	SCAN_STORE_UNKNOWN,     /* not a key of this store (e.g. a real Stripe key) */
};

/* What the API says (--verify-api). */
enum scan_api_state {
	SCAN_API_NONE = 0,      /* not probed (no --verify-api, or a publishable key / webhook secret) */
	SCAN_API_LIVE,          /* 2xx: the key works from here */
	SCAN_API_LOCKED,        /* 401 "does not allow requests from your IP address": live, IP-locked */
	SCAN_API_INVALID,       /* 401 otherwise: invalid, revoked or expired */
	SCAN_API_RESTRICTED,    /* 403: a live restricted key without this permission */
	SCAN_API_UNKNOWN,       /* network error, 429, 5xx or an answer we cannot read */
	SCAN_API_STATE_COUNT,
};

/* The one class per finding that --fail-on compares; ordered from harmless to worst. */
enum scan_live {
	SCAN_LIVE_NONE = 0,     /* not verified */
	SCAN_LIVE_DEAD,         /* revoked, expired or invalid */
	SCAN_LIVE_UNKNOWN,      /* could not tell */
	SCAN_LIVE_LOCKED,       /* live but usable only from allowlisted addresses */
	SCAN_LIVE_LIVE,         /* usable from here (or, per the store, from anywhere) */
};

enum scan_probe_result {
	SCAN_PROBE_NOT_RUN = 0,
	SCAN_PROBE_READ,        /* 2xx: the key may read this resource */
	SCAN_PROBE_DENIED,      /* 403 */
	SCAN_PROBE_OTHER,       /* anything else */
};

struct scan_verdict {
	enum scan_live live;
	enum scan_store_state store;
	size_t n_allow;                 /* store: allowlist entries of an active key */
	enum scan_api_state api;
	int http_status;                /* of the first probe, 0 when none answered */
	char ip[SCAN_IP_MAX];           /* the address a LOCKED answer named ("" when none) */
	char perm[SCAN_PERM_MAX];       /* the permission a 403 named ("" when none) */
	uint8_t probes[SCAN_PROBE_COUNT]; /* enum scan_probe_result per scan_probe_path() */
	char api_error[200];             /* why the API class is UNKNOWN */
	char detail[512];               /* one line for people: "locked to 2 addresses", ... */
};

const char *scan_live_name(enum scan_live c);          /* "live", "locked", ... ("" for NONE) */
const char *scan_store_state_name(enum scan_store_state s);
const char *scan_api_state_name(enum scan_api_state s);
/* --fail-on values: live, locked, unknown, any (= SCAN_LIVE_NONE), none (-1). */
bool scan_fail_on_parse(const char *s, int *out);

/* The endpoints probed (GET, read-only) and the resource each reveals. */
const char *scan_probe_path(unsigned i);               /* "/v1/charges?limit=1", ... */
const char *scan_probe_resource(unsigned i);           /* "charges", ... */

/* Classifies one API answer to a GET with the key: status and body (need not be NUL-terminated,
 * need not be JSON). Writes the IP address the message names (LOCKED only, "" otherwise; always
 * a valid address that appears in the message) and the permission a 403 names. */
enum scan_api_state scan_verdict_parse(int status, const char *body, size_t len,
				       char ip[SCAN_IP_MAX], char perm[SCAN_PERM_MAX]);

/* Combines store and API into v->live and v->detail (the API decides when it could tell). */
void scan_verdict_finish(struct scan_verdict *v);

#endif
