/* verify.h: the engine of `iplock verify` (the command line and the printing stay in
 * cli/verify.c). It asks an iplock proxy for the egress pool of some credentials
 * (GET /iplock/pool), pins each address in turn (X-Iplock-Egress: ADDRESS) and sends one request
 * through it, to an IP echo (did it leave from that address?) or to an API with a key (is the
 * key accepted from that address?), and sums up what to fix.
 *
 * Owns: the check and its verdicts. May include: core, net, http (the blocking client
 * http/link, URLs, responses), store (to name a key's id). Blocking code with poll() deadlines. */
#ifndef IPLOCK_VERIFY_VERIFY_H
#define IPLOCK_VERIFY_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/secret.h"
#include "http/url.h"
#include "net/addr.h"
#include "store/store.h"

struct vresp;

#define VERIFY_POOL_MAX   32      /* the proxy caps a pool at 32 addresses too */
#define VERIFY_KEY_MAX    512
#define VERIFY_DETAIL_MAX 400
#define VERIFY_POOL_QUIET 6       /* pool asks in a row without a new address before it is whole */
#define VERIFY_POOL_ASKS  64      /* at most this many pool asks (one per new connection) */
#define VERIFY_PIN_TRIES  16      /* connections per address until a node that has it answers */

enum verify_verdict {
	VERIFY_OK = 0,         /* echo: the echo saw the pinned address */
	VERIFY_MISMATCH,       /* echo: the echo saw another address */
	VERIFY_ACCEPTED,       /* api: 2xx */
	VERIFY_PERMISSION,     /* api: 403, the address passed but the key lacks this permission */
	VERIFY_IP_DENIED,      /* api: 401 with Stripe's IP message */
	VERIFY_REJECTED,       /* api: any other answer of the API */
	VERIFY_ERROR,          /* the request did not get through (proxy error, TLS, timeout, ...) */
};

struct verify_row {
	char egress[IPADDR_STRLEN];
	char seen[IPADDR_STRLEN];       /* echo: what the echo reported ("" when nothing) */
	enum verify_verdict verdict;
	int status;                     /* HTTP status of the final answer, 0 when none */
	char detail[VERIFY_DETAIL_MAX]; /* one line, masked */
};

/* Filled by the command line (proxy, target, api, key, path, db, cacerts, json, timeout,
 * base_user, expect), then by verify_run(). Behind a TCP balancer the pool is the union of
 * what every node answered (asked on new connections until no new address comes). */
struct verify {
	struct vurl proxy;
	struct vurl target;
	bool api;
	char key[VERIFY_KEY_MAX];
	char key_masked[SECRET_MASK_MAX];
	char path[VURL_PATH_MAX];
	const char *db;                 /* --db: the iplock key store, to name the key's id */
	char key_id[STORE_ID_MAX];      /* "" when unknown */
	const char *cacert, *proxy_cacert;
	SSL_CTX *proxy_ctx, *target_ctx;
	bool json;
	unsigned timeout_ms;
	char base_user[VURL_CRED_MAX];
	char pool[VERIFY_POOL_MAX][IPADDR_STRLEN];
	size_t npool;
	char policy[32];
	unsigned nasks;                 /* pool answers taken (one per connection) */
	char expect[VERIFY_POOL_MAX][IPADDR_STRLEN];
	size_t nexpect;
	bool have_expect;
	struct verify_row rows[VERIFY_POOL_MAX];
	size_t nunreached;              /* rows whose request did not get through (VERIFY_ERROR) */
	struct vresp *resp;             /* one response buffer, reused */
};

/* What the rows add up to, for the report. */
struct verify_summary {
	bool ok;                        /* every address passed and the pool is --expect */
	size_t npass, nerror, ndenied, nmissing, nextra;
	char denied[VERIFY_POOL_MAX][IPADDR_STRLEN];   /* refused for the address (401) */
	char missing[VERIFY_POOL_MAX][IPADDR_STRLEN];  /* expected but not in the pool */
	char extra[VERIFY_POOL_MAX][IPADDR_STRLEN];    /* in the pool but not expected */
	char fix[1024];                 /* the `iplock keys restrict` line, "" when none */
};

const char *verify_verdict_name(enum verify_verdict v);
bool verify_verdict_passes(enum verify_verdict v);

/* --expect A,B: IP addresses separated by commas or spaces, kept as a set. NULL or an error. */
const char *verify_expect_parse(struct verify *v, const char *s);
/* The key from --key or --key-file, and its masked form. NULL or an error. */
const char *verify_key_load(struct verify *v, const char *key, const char *key_file);

/* Runs the check: TLS contexts, the pool, one pinned request per address, the key's id (with
 * db). Returns 0 (the rows say how each address did), or -1 with a one-line err when the
 * check could not run at all. */
int verify_run(struct verify *v, char *err, size_t cap);

void verify_summarize(const struct verify *v, struct verify_summary *s);

/* Frees what verify_run() took and v itself, wiping the key. */
void verify_free(struct verify *v);

#endif
