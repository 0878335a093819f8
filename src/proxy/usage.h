/* usage.h: users_db usage as the workers count it (docs/fleet.md): per-worker tables of
 * (user, egress address) slots the data path bumps without locks, the month's fleet totals the
 * quota check reads, and the mark a request keeps of what it counted. The flush thread
 * (fleet.c) reads the tables and writes the totals; nothing here waits on the store. */
#ifndef IPLOCK_PROXY_USAGE_H
#define IPLOCK_PROXY_USAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "proxy/config.h"

#define USAGE_SLOTS   4096      /* (user, egress) pairs per worker; more are counted as lost */

/* A user's usage this month across the fleet, as of the last read (never freed while the
 * proxy runs: snapshots point at it). */
struct quota_ent {
	char name[PROXY_USER_NAME_MAX + 1];
	_Atomic int64_t month_req, month_bytes;
	struct quota_ent *next;          /* hash chain */
	uint64_t mark;                   /* the totals read that saw it last (flush thread) */
};

/* One (user, egress address) of a worker: the worker writes the counters (relaxed stores of
 * running totals, no read-modify-write), the flush thread reads them and keeps its own copy
 * of what it flushed. q is published last. */
struct usage_slot {
	struct quota_ent *_Atomic q;
	struct ipaddr egress;
	_Atomic uint64_t req, up, down;
};

struct usage_seen {
	uint64_t req, up, down;
};

struct usage_tab {
	struct usage_slot slot[USAGE_SLOTS];
	struct usage_seen seen[USAGE_SLOTS];   /* flush thread only */
	_Atomic uint64_t lost;                 /* counts that found no free slot */
};

/* What one request counts in: its slot (NULL: not counted) and the payload already added. */
struct usage_mark {
	struct usage_slot *slot;
	uint64_t up, down;
};

/* FNV-1a of n bytes, continuing from h (2166136261u to start). */
uint32_t usage_hash(const void *p, size_t n, uint32_t h);

/* An upstream connection was made (or reused) for a request of q's user from egress (NULL:
 * none yet): one request in t; m remembers the slot. t or q NULL: nothing is counted. */
void usage_count_request(struct usage_tab *t, struct quota_ent *q, const struct ipaddr *egress,
			 struct usage_mark *m);
/* The request's payload so far (running totals) reaches its slot; at_end: the request is over. */
void usage_count_bytes(struct usage_mark *m, uint64_t up, uint64_t down, bool at_end);

#endif
