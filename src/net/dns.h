/* dns.h: asynchronous name resolution with c-ares on a worker's event loop, and a per-worker
 * cache that keeps each answer for its TTL. Never a blocking call on the loop. */
#ifndef IPLOCK_DNS_H
#define IPLOCK_DNS_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"

struct loop;
struct dns;
struct dns_req;

#define DNS_MAX_ADDRS 8

struct dns_result {
	int status;                 /* 0, or -ENOENT (no such name / no address), -ETIMEDOUT, -EIO */
	unsigned naddrs;
	struct ipaddr addrs[DNS_MAX_ADDRS];
	uint32_t ttl_s;
};

typedef void (*dns_cb)(void *arg, const struct dns_result *res);

/* servers: "127.0.0.1:5353,[::1]:53" or NULL for the system's resolv.conf. */
int dns_new(struct loop *loop, const char *servers, unsigned timeout_ms, struct dns **out);
void dns_free(struct dns *dns);

/* A fresh cached answer (positive or negative) for name, if any. */
bool dns_cached(struct dns *dns, const char *name, struct dns_result *out);

/* Start a lookup (A and AAAA). cb runs later on the loop, never from inside this call, unless
 * dns_cancel() came first. Returns 0 or -errno. */
int dns_resolve(struct dns *dns, const char *name, dns_cb cb, void *arg, struct dns_req **req);
void dns_cancel(struct dns_req *req);

/* Counters for metrics and tests. */
struct dns_stats { uint64_t queries, cache_hits, failures; };
void dns_get_stats(const struct dns *dns, struct dns_stats *out);

#endif
