/* decide.h: the gate's decision as pure code: key extraction (Bearer / Basic), route table,
 * client address (TCP peer, X-Forwarded-For through trusted proxies only), the ordered checks,
 * and Stripe's JSON error bodies. No I/O: the server feeds it parsed request fields. */
#ifndef IPLOCK_GATE_DECIDE_H
#define IPLOCK_GATE_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/keycache.h"
#include "store/routes.h"
#include "net/addr.h"

#define GATE_KEY_TEXT_MAX 300   /* longest presented key we look at (Stripe: up to 255) */

/* ---- key extraction ---- */

/* From an Authorization value: "Bearer KEY" or "Basic base64(KEY:)" (key as the user name).
 * The key is copied to out (NUL added). Returns its length, 0 when no key is presented. A key
 * longer than cap - 1 is cut there (it then matches no stored key). */
size_t gate_key_extract(const char *auth, size_t len, char *out, size_t cap);

/* ---- client address ---- */

enum gate_client {
	GATE_CLIENT_PEER = 0,   /* the TCP peer (or the PROXY-protocol source) */
	GATE_CLIENT_XFF,        /* from X-Forwarded-For through trusted proxies */
	GATE_CLIENT_UNKNOWN,    /* unparseable chain: keys with an allowlist fail closed */
};

/* peer: who connected (after the PROXY protocol, if any). xff: every X-Forwarded-For value
 * joined by ',' in arrival order (NULL/0 when absent). trusted may be NULL (trust nobody). */
enum gate_client gate_client_addr(const struct ipaddr *peer, const char *xff, size_t xff_len,
				  const struct cidr_set *trusted, struct ipaddr *client);

/* ---- decision ---- */

enum gate_outcome {
	GATE_ALLOW = 0,         /* forward / 200 */
	GATE_NO_KEY,            /* 401: nothing presented */
	GATE_INVALID_KEY,       /* 401: unknown or revoked */
	GATE_EXPIRED,           /* 401: api_key_expired */
	GATE_IP_DENIED,         /* 401: client not in the allowlist (or unknown) */
	GATE_NO_PERMISSION,     /* 403: restricted key lacks rak_<resource>_<level> */
	GATE_PUBLISHABLE,       /* 401: publishable key on a route not marked publishable */
	GATE_ORG_HEADERS,       /* 400: org key without Stripe-Context or Stripe-Version */
};

struct gate_input {
	const char *method;
	size_t method_len;
	const char *target;             /* request target, query allowed */
	size_t target_len;
	const char *auth;               /* Authorization value, NULL when absent */
	size_t auth_len;
	bool has_context;               /* Stripe-Context present and non-empty */
	bool has_version;               /* Stripe-Version present and non-empty */
	enum gate_client client_kind;
	struct ipaddr client;
	int64_t now;                    /* unix seconds */
};

struct gate_decision {
	enum gate_outcome outcome;
	int status;
	const char *reason;             /* short token for the access log */
	const struct gate_key *key;     /* the key found (borrowed), or NULL */
	char masked[SECRET_MASK_MAX];   /* presented key, masked and printable */
	char perm[STORE_RESOURCE_MAX + 16]; /* "rak_charge_write" for GATE_NO_PERMISSION */
	const struct gate_route *route;
	/* allowed only because the key's allowlist is report-only: the client is outside it (or
	 * unknown); counted as "would refuse", logged, and said in Iplock-Ip-Validation */
	bool would_refuse;
};

/* The response header of a request a report-only allowlist would refuse. */
#define GATE_WOULD_REFUSE_HEADER "Iplock-Ip-Validation: would-refuse\r\n"

void gate_decide(const struct keycache *kc, const struct gate_routes *routes,
		 const struct gate_input *in, struct gate_decision *out);

/* Stripe error envelope for a refusal: {"error":{"type":...,"message":...,"code"?}},
 * compact JSON on one line (so it also fits a header) plus '\n'.
 * account (may be NULL) names the account in the 403 message. Returns the body length
 * (< cap, NUL added) or -ENOSPC. */
int gate_error_body(const struct gate_decision *d, const char *account, char *buf, size_t cap);

/* The message of a refusal (the text inside the envelope) into buf. */
void gate_error_message(const struct gate_decision *d, const char *account, char *buf,
			size_t cap);

#endif
