/* liveness.h: `iplock scan --verify`: is a found key live? Asks the key store (active with
 * which allowlist, expired, revoked, unknown) and a Stripe-compatible API (read-only GETs with
 * the key, rate-limited, optionally through an HTTP CONNECT proxy such as iplock proxy). The key
 * is sent only to the API; nothing logs it. Each key is verified once per run. */
#ifndef IPLOCK_SCAN_LIVENESS_H
#define IPLOCK_SCAN_LIVENESS_H

#include <stddef.h>

#include "scan/report.h"

#define SCAN_VERIFY_RATE_DEFAULT    5.0     /* probes per second */
#define SCAN_VERIFY_TIMEOUT_DEFAULT 10000   /* ms per probe */

struct scan_liveness_opts {
	const char *db;         /* key store to ask; NULL = none */
	const char *api;        /* base URL of the API (http:// or https://); NULL = none */
	const char *proxy;      /* http:// or https:// proxy for the probes (CONNECT); NULL = direct */
	const char *cacert;     /* CA file for https (NULL = the system store) */
	double rate;            /* probes per second; 0 = the default */
	int timeout_ms;         /* per probe; 0 = the default */
};

struct scan_liveness;

/* NULL = ok, else a one-line reason in err (bad URL, no store, TLS setup). */
const char *scan_liveness_open(const struct scan_liveness_opts *o, struct scan_liveness **out,
			       char *err, size_t cap);
/* Fills f->verdict (and f->key_id when the store knows the key). */
void scan_liveness_check(struct scan_liveness *lv, struct scan_finding *f);
void scan_liveness_close(struct scan_liveness *lv);

#endif
