/* feed.h: a store's change feed on a thread of its own, for caches that must never wait on
 * the database (the gate's keys, the proxy's users).
 *
 * PostgreSQL: the thread owns the connection (already LISTENing and loaded by the caller): on
 * each notification and every resync_ms it calls catch_up(); after a lost connection it
 * reconnects with back-off (100 ms to 5 s), LISTENs again, then calls catch_up() (read by
 * version: nothing sent while away is delivered), logging the outage once.
 * SQLite: it asks PRAGMA data_version every poll_ms and calls catch_up() when another
 * connection committed (and every resync_ms). catch_up() runs on the feed thread only. */
#ifndef IPLOCK_STORE_FEED_H
#define IPLOCK_STORE_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct store_feed;

struct store_feed_opts {
	unsigned resync_ms;   /* read without a notification this often (0 = 5000) */
	unsigned poll_ms;     /* SQLite: data_version checked this often (0 = 20) */
	const char *who;      /* log prefix: "gate: key store" */
	/* reads what changed since its last call; 0, or -errno (-EIO: the connection is lost) */
	int (*catch_up)(struct store *st, void *arg);
	void *arg;
};

/* Starts the thread on st (taken: closed by store_feed_stop, also on failure). Signals are
 * blocked on the thread. 0 or -errno. */
int store_feed_start(struct store *st, const struct store_feed_opts *o, struct store_feed **out);
/* Stops and joins the thread, closes the store. NULL is fine. */
void store_feed_stop(struct store_feed *f);

struct store_feed_stats {
	bool connected;
	uint64_t reconnects;     /* successful reconnections after a lost connection */
	int64_t last_ok_ms;      /* store_mono_ms() of the database's last answer */
};
void store_feed_stats(const struct store_feed *f, struct store_feed_stats *out);

/* CLOCK_MONOTONIC in ms. */
int64_t store_mono_ms(void);

#endif
