/* feed.c: the change-feed thread shared by the gate's key cache and the proxy's users.
 * store/ owns the database below the products: API keys and their rules (store.c), key
 * formats (keyfmt.c), the console's users and tokens, the proxy fleet's tables (users.c), the
 * gate's routes, the change feed and the SQLite and PostgreSQL backends. It may include core/,
 * net/ (net/addr.h for allowlist entries) and http/, never a product. */
#include "store/feed.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"

#define FEED_SLICE_MS   100     /* the thread looks at its stop flag this often */
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000

struct store_feed {
	struct store *st;
	struct store_feed_opts o;
	bool remote;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool connected;
	atomic_int_least64_t last_ok_ms;
	atomic_uint_least64_t reconnects;
	char who[96];
};

int64_t store_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void feed_sleep(struct store_feed *f, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(&f->stop);) {
		unsigned slice = ms - t < FEED_SLICE_MS ? ms - t : FEED_SLICE_MS;
		struct timespec ts = { 0, (long)slice * 1000000L };
		nanosleep(&ts, NULL);
		t += slice;
	}
}

static int catch_up(struct store_feed *f)
{
	int rc = f->o.catch_up(f->st, f->o.arg);

	if (!rc)
		atomic_store(&f->last_ok_ms, store_mono_ms());
	return rc;
}

/* SQLite: the file is local, so "reconnecting" is only trying again at the next poll. */
static void poll_main(struct store_feed *f)
{
	int64_t dv = -1, next_resync = store_mono_ms() + f->o.resync_ms;
	bool warned = false;

	(void)store_data_version(f->st, &dv);
	while (!atomic_load(&f->stop)) {
		int64_t v = dv;
		feed_sleep(f, f->o.poll_ms);
		int rc = store_data_version(f->st, &v);
		if (!rc && (v != dv || store_mono_ms() >= next_resync)) {
			rc = catch_up(f);
			if (!rc)
				dv = v;
			next_resync = store_mono_ms() + f->o.resync_ms;
		}
		if (rc && rc != -ENOMEM && !warned)
			log_warn("%s: cannot read (%s): serving from memory, retrying", f->who,
				 store_errmsg(f->st));
		warned = rc != 0;
	}
}

static void listen_main(struct store_feed *f)
{
	unsigned backoff = BACKOFF_MIN_MS;
	int64_t down_since = 0, next_resync = store_mono_ms() + f->o.resync_ms;

	while (!atomic_load(&f->stop)) {
		int rc;
		if (!atomic_load(&f->connected)) {
			/* LISTEN first, then read by version: a change committed in between is read
			 * now or announced later, never lost */
			if (store_reconnect(f->st) || store_listen(f->st) || catch_up(f)) {
				feed_sleep(f, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			atomic_store(&f->connected, true);
			atomic_fetch_add(&f->reconnects, 1);
			log_info("%s reachable again after %.1f s", f->who,
				 (double)(store_mono_ms() - down_since) / 1000.0);
			backoff = BACKOFF_MIN_MS;
			next_resync = store_mono_ms() + f->o.resync_ms;
			continue;
		}
		int64_t v = 0, now = store_mono_ms();
		int wait = next_resync - now < FEED_SLICE_MS ? (int)(next_resync > now ?
							 next_resync - now : 0) : FEED_SLICE_MS;
		rc = store_wait_change(f->st, wait, &v);
		if (rc == 1 || (rc == 0 && store_mono_ms() >= next_resync)) {
			rc = catch_up(f);
			next_resync = store_mono_ms() + f->o.resync_ms;
		}
		if (rc < 0 && rc != -ENOMEM) {
			/* logged once per outage; requests go on being answered from memory */
			log_warn("%s unreachable (%s): serving from memory, reconnecting", f->who,
				 store_errmsg(f->st));
			atomic_store(&f->connected, false);
			down_since = store_mono_ms();
		}
	}
}

static void *feed_main(void *arg)
{
	struct store_feed *f = arg;

	if (f->remote)
		listen_main(f);
	else
		poll_main(f);
	return NULL;
}

int store_feed_start(struct store *st, const struct store_feed_opts *o, struct store_feed **out)
{
	struct store_feed *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f) {
		store_close(st);
		return -ENOMEM;
	}
	f->st = st;
	f->o = *o;
	if (!f->o.resync_ms)
		f->o.resync_ms = 5000;
	if (!f->o.poll_ms)
		f->o.poll_ms = 20;
	snprintf(f->who, sizeof(f->who), "%s", o->who ? o->who : "store");
	f->remote = strcmp(store_backend(st), "sqlite") != 0;
	atomic_store(&f->connected, true);
	atomic_store(&f->last_ok_ms, store_mono_ms());
	if ((rc = thread_start(&f->thread, feed_main, f))) {
		store_feed_stop(f);
		return rc;
	}
	f->started = true;
	*out = f;
	return 0;
}

void store_feed_stop(struct store_feed *f)
{
	if (!f)
		return;
	atomic_store(&f->stop, true);
	if (f->started)
		pthread_join(f->thread, NULL);
	store_close(f->st);
	free(f);
}

void store_feed_stats(const struct store_feed *f, struct store_feed_stats *out)
{
	out->connected = atomic_load(&f->connected);
	out->reconnects = atomic_load(&f->reconnects);
	out->last_ok_ms = atomic_load(&f->last_ok_ms);
}
