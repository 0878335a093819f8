/* egress.h: pools of source addresses for outbound connections, and how one is picked.
 * Worker threads share a pool: picking and marking down are lock-free atomics. */
#ifndef IPLOCK_PROXY_EGRESS_H
#define IPLOCK_PROXY_EGRESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define EGRESS_MAX 32          /* addresses per pool: tried_mask has one bit each */

enum egress_policy {
	EGRESS_ROUND_ROBIN = 0,  /* next up address for every connection (default) */
	EGRESS_STICKY,           /* a destination host always leaves from the same up address */
	EGRESS_PRIMARY,          /* the first up address in configured order */
};

struct egress_pool {
	size_t n;
	struct ipaddr *addrs;
	enum egress_policy policy;
	_Atomic uint32_t rr;                /* round-robin cursor */
	_Atomic uint64_t *down_until_ms;    /* per address: down while now < this */
};

/* Copies addrs (1 to EGRESS_MAX). Returns 0, -EINVAL (n == 0 or too many) or -ENOMEM. */
int egress_pool_init(struct egress_pool *pool, const struct ipaddr *addrs, size_t n,
		     enum egress_policy policy);
void egress_pool_free(struct egress_pool *pool);

/* "round-robin", "sticky" or "primary". */
const char *egress_policy_parse(const char *s, enum egress_policy *out);
const char *egress_policy_name(enum egress_policy policy);

/* Picks an address index into *out_idx, skipping down ones and those whose bit is set in
 * tried_mask (bit i = index i, for retries after a local failure). pin (1-based, -1 = none)
 * selects exactly that address and never falls back (fail closed). Returns 0, or -ENOENT when
 * nothing is left (all down or tried, pin out of range, down or tried). */
int egress_pick(struct egress_pool *pool, const char *dest_host, int pin, uint64_t now_ms,
		uint32_t tried_mask, size_t *out_idx);

/* The value of an X-Iplock-Egress header (or any pin text): a 1-based index ("2") or one of the
 * pool's addresses ("127.0.0.3", "::1"); *pin = the 1-based index. Errors: not a number or
 * address, index out of range, address not in the pool. */
const char *egress_pin_parse(const struct egress_pool *pool, const char *s, size_t len, int *pin);

/* After a local failure (EADDRNOTAVAIL, ENETUNREACH, bind error): skip idx until now + for_ms. */
void egress_mark_down(struct egress_pool *pool, size_t idx, uint64_t now_ms, uint64_t for_ms);

#endif
