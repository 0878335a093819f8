/* usage.c: per-worker usage counting, handed to a writer thread in batches. */
#include "gate/usage.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"
#include "store/store.h"

#define USAGE_MAX 16384         /* (key, client, hour) rows per batch; beyond: dropped */

struct batch {
	struct usage_rec *r;
	size_t n;
	uint32_t *idx;          /* open addressing over r: index + 1, 0 = empty */
};

struct gate_usage {
	struct store *st;       /* the writer thread's */
	unsigned flush_ms;
	uint64_t last_handover_ms;
	struct batch local;     /* the worker's */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch queued;    /* handed over, not yet taken (guarded by mu) */
	bool have_queued, stop;
	pthread_t thread;
	bool started;
	atomic_uint_least64_t dropped;
};

#define IDX_SLOTS (USAGE_MAX * 2)

static int batch_init(struct batch *b)
{
	b->r = calloc(USAGE_MAX, sizeof(*b->r));
	b->idx = calloc(IDX_SLOTS, sizeof(*b->idx));
	b->n = 0;
	return b->r && b->idx ? 0 : -ENOMEM;
}

static void batch_clear(struct batch *b)
{
	if (b->n)
		memset(b->idx, 0, IDX_SLOTS * sizeof(*b->idx));
	b->n = 0;
}

static uint32_t hash(const char *a, const char *b, int64_t h)
{
	uint32_t x = 2166136261u;

	for (; *a; a++)
		x = (x ^ (uint8_t)*a) * 16777619u;
	for (; *b; b++)
		x = (x ^ (uint8_t)*b) * 16777619u;
	return (x ^ (uint32_t)(h / 3600)) * 16777619u;
}

static void *writer_main(void *arg)
{
	struct gate_usage *u = arg;
	struct batch mine;
	bool failing = false;

	if (batch_init(&mine))
		return NULL;
	pthread_mutex_lock(&u->mu);
	for (;;) {
		while (!u->have_queued && !u->stop)
			pthread_cond_wait(&u->cv, &u->mu);
		if (!u->have_queued)
			break;
		struct batch t = mine;
		mine = u->queued;
		u->queued = t;
		u->have_queued = false;
		pthread_mutex_unlock(&u->mu);
		int rc = store_usage_write(u->st, mine.r, mine.n, (int64_t)time(NULL));
		if (rc) {
			atomic_fetch_add(&u->dropped, mine.n);
			if (!failing)
				log_warn("gate: key usage not written (%s); dropping batches until "
					 "it can be", store_errmsg(u->st));
		} else if (failing) {
			log_info("gate: key usage written again");
		}
		failing = rc != 0;
		batch_clear(&mine);
		pthread_mutex_lock(&u->mu);
	}
	pthread_mutex_unlock(&u->mu);
	free(mine.r);
	free(mine.idx);
	return NULL;
}

int gate_usage_new(const char *db, unsigned flush_ms, struct gate_usage **out)
{
	struct gate_usage *u = calloc(1, sizeof(*u));
	int rc;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->flush_ms = flush_ms ? flush_ms : 5000;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	if ((rc = batch_init(&u->local)) || (rc = batch_init(&u->queued)))
		goto fail;
	if ((rc = store_open(db, &u->st)))
		goto fail;
	if ((rc = thread_start(&u->thread, writer_main, u)))
		goto fail;
	u->started = true;
	*out = u;
	return 0;
fail:
	gate_usage_free(u);
	return rc;
}

/* Hands the local batch over unless the writer still has the previous one. */
static void handover(struct gate_usage *u, bool wait)
{
	if (!u->local.n)
		return;
	if (wait)
		pthread_mutex_lock(&u->mu);
	else if (pthread_mutex_trylock(&u->mu))
		return;
	if (!u->have_queued) {
		struct batch t = u->queued;
		u->queued = u->local;
		u->local = t;
		batch_clear(&u->local);
		u->have_queued = true;
		pthread_cond_signal(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
}

void gate_usage_note(struct gate_usage *u, const char *key_id, const char *client,
		     bool allowed, bool would_refuse, int64_t now_s, uint64_t now_ms)
{
	struct batch *b = &u->local;
	int64_t hour = now_s / 3600 * 3600;
	uint32_t slot = hash(key_id, client, hour) % IDX_SLOTS;
	struct usage_rec *r = NULL;

	for (;; slot = (slot + 1) % IDX_SLOTS) {
		uint32_t i = b->idx[slot];
		if (!i)
			break;
		struct usage_rec *c = &b->r[i - 1];
		if (c->hour == hour && !strcmp(c->key_id, key_id) && !strcmp(c->client, client)) {
			r = c;
			break;
		}
	}
	if (!r) {
		if (b->n == USAGE_MAX) {
			atomic_fetch_add(&u->dropped, 1);
		} else {
			r = &b->r[b->n++];
			memset(r, 0, sizeof(*r));
			snprintf(r->key_id, sizeof(r->key_id), "%s", key_id);
			snprintf(r->client, sizeof(r->client), "%s", client);
			r->hour = hour;
			b->idx[slot] = (uint32_t)b->n;
		}
	}
	if (r) {
		r->last_used = now_s;
		if (allowed)
			r->allowed++;
		else
			r->denied++;
		if (would_refuse)
			r->reported++;
	}
	if (now_ms - u->last_handover_ms >= u->flush_ms) {
		u->last_handover_ms = now_ms;
		handover(u, false);
	}
}

void gate_usage_free(struct gate_usage *u)
{
	if (!u)
		return;
	if (u->started) {
		handover(u, true);
		pthread_mutex_lock(&u->mu);
		u->stop = true;
		pthread_cond_signal(&u->cv);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thread, NULL);
		/* what the writer still had queued when the local batch came is written here */
		if (u->local.n && store_usage_write(u->st, u->local.r, u->local.n, (int64_t)time(NULL)))
			log_warn("gate: key usage not written at exit (%s)", store_errmsg(u->st));
	}
	store_close(u->st);
	free(u->local.r);
	free(u->local.idx);
	free(u->queued.r);
	free(u->queued.idx);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}
