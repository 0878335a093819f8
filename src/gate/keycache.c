/* keycache.c: hash table of keys by SHA-256, refreshed from the store by change counter. */
#include "gate/keycache.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/codec.h"
#include "core/log.h"
#include "core/secret.h"

#define FEED_SLICE_MS   100     /* the feed thread looks at its stop flag this often */
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000

/* The PostgreSQL feed: a thread that owns the connection and hands changed rows over. */
struct feed {
	struct store *st;
	pthread_t thread;
	bool started;
	unsigned resync_ms;
	pthread_mutex_t mu;         /* guards pending, n_pending, cap, pending_version */
	struct gate_key **pending;  /* built by the thread: the worker only links them in */
	size_t n_pending, cap;
	int64_t pending_version;
	atomic_bool has_pending;
	atomic_bool stop;
	atomic_bool connected;
	atomic_int_least64_t last_ok_ms;    /* monotonic ms of the last answer from the database */
	atomic_uint_least64_t reconnects;
	int64_t version;            /* thread-only: highest version read */
	char shown[512];            /* the target, password masked, for logs */
};

struct keycache {
	struct store *st;           /* NULL for a detached cache or when fed by a thread */
	struct feed *feed;          /* PostgreSQL only */
	unsigned max_staleness_s;
	struct gate_key **buckets;
	size_t nbuckets;            /* power of two */
	size_t count;
	int64_t data_version;
	int64_t max_gen;
	uint64_t last_check_ms;
	bool checked_once;
	/* SHA-256 fetched once and one reused context: EVP_Digest() with the implicit
	 * EVP_sha256() looks the algorithm up under a lock and allocates a context per call,
	 * which was most of the gate's libcrypto time per request. NULL: secret_sha256_hex() */
	EVP_MD *sha256;
	EVP_MD_CTX *md_ctx;
};

static uint64_t hex64(const char *hex)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		char c = hex[i];
		v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
	}
	return v;
}

static void key_free(struct gate_key *k)
{
	if (!k)
		return;
	cidr_set_free(k->allow);
	free(k->perms);
	free(k);
}

struct keycache *keycache_new(void)
{
	struct keycache *kc = calloc(1, sizeof(*kc));

	if (!kc)
		return NULL;
	kc->nbuckets = 1024;
	kc->buckets = calloc(kc->nbuckets, sizeof(*kc->buckets));
	if (!kc->buckets) {
		free(kc);
		return NULL;
	}
	kc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	kc->md_ctx = kc->sha256 ? EVP_MD_CTX_new() : NULL;
	return kc;
}

void keycache_free(struct keycache *kc)
{
	if (!kc)
		return;
	for (size_t i = 0; i < kc->nbuckets; i++) {
		struct gate_key *k = kc->buckets[i];
		while (k) {
			struct gate_key *next = k->next;
			key_free(k);
			k = next;
		}
	}
	free(kc->buckets);
	if (kc->feed) {
		struct feed *f = kc->feed;
		atomic_store(&f->stop, true);
		if (f->started)
			pthread_join(f->thread, NULL);
		store_close(f->st);
		for (size_t i = 0; i < f->n_pending; i++)
			key_free(f->pending[i]);
		free(f->pending);
		pthread_mutex_destroy(&f->mu);
		free(f);
	}
	store_close(kc->st);
	EVP_MD_CTX_free(kc->md_ctx);
	EVP_MD_free(kc->sha256);
	free(kc);
}

static int grow(struct keycache *kc)
{
	size_t n = kc->nbuckets * 2;
	struct gate_key **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < kc->nbuckets; i++) {
		struct gate_key *k = kc->buckets[i];
		while (k) {
			struct gate_key *next = k->next;
			k->next = b[k->h & (n - 1)];
			b[k->h & (n - 1)] = k;
			k = next;
		}
	}
	free(kc->buckets);
	kc->buckets = b;
	kc->nbuckets = n;
	return 0;
}

static struct gate_key *build(const struct key_info *ki)
{
	struct gate_key *k = calloc(1, sizeof(*k));

	if (!k || strlen(ki->hash) != SHA256_HEX_LEN)
		goto fail;
	memcpy(k->hash, ki->hash, sizeof(k->hash));
	k->h = hex64(ki->hash);
	memcpy(k->id, ki->id, sizeof(k->id));
	memcpy(k->masked, ki->masked, sizeof(k->masked));
	k->type = ki->type;
	k->mode = ki->mode;
	k->expires_at = ki->expires_at;
	k->revoked = ki->revoked_at != 0;
	k->report = ki->allow_report;
	if (ki->n_allow) {
		if (!(k->allow = cidr_set_new()))
			goto fail;
		struct cidr *cs = malloc(ki->n_allow * sizeof(*cs));
		size_t nc = 0;
		if (!cs)
			goto fail;
		for (size_t i = 0; i < ki->n_allow; i++) {
			/* stored entries were validated on write; a bad one must not widen access */
			if (!cidr_parse(ki->allow[i], strlen(ki->allow[i]), &cs[nc]))
				nc++;
		}
		int rc = cidr_set_add_many(k->allow, cs, nc);
		free(cs);
		if (rc)
			goto fail;
	}
	if (ki->n_perms) {
		if (!(k->perms = malloc(ki->n_perms * sizeof(*k->perms))))
			goto fail;
		memcpy(k->perms, ki->perms, ki->n_perms * sizeof(*k->perms));
		k->n_perms = ki->n_perms;
	}
	return k;
fail:
	key_free(k);
	return NULL;
}

/* Links a built key in, replacing the entry with the same hash. */
static void insert(struct keycache *kc, struct gate_key *k)
{
	struct gate_key **pp;

	for (pp = &kc->buckets[k->h & (kc->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->hash, k->hash)) {
			struct gate_key *old = *pp;
			k->next = old->next;
			*pp = k;
			key_free(old);
			return;
		}
	}
	k->next = kc->buckets[k->h & (kc->nbuckets - 1)];
	kc->buckets[k->h & (kc->nbuckets - 1)] = k;
	kc->count++;
	if (kc->count > kc->nbuckets)
		(void)grow(kc); /* a failed grow only makes chains longer */
}

int keycache_put(struct keycache *kc, const struct key_info *ki)
{
	struct gate_key *k = build(ki);

	if (!k)
		return -ENOMEM;
	insert(kc, k);
	return 0;
}

static int reload(struct keycache *kc)
{
	struct key_info *keys;
	size_t n;
	int64_t max_gen = kc->max_gen;
	int rc = store_key_changed(kc->st, kc->max_gen, &keys, &n, &max_gen);

	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = keycache_put(kc, &keys[i]);
	store_key_list_free(keys, n);
	if (rc)
		return rc;
	kc->max_gen = max_gen;
	return (int)n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what changed since f->version and queues it for the cache's thread. */
static int feed_catch_up(struct feed *f)
{
	struct key_info *keys;
	size_t n;
	int64_t max_gen = f->version;
	int rc = store_key_changed(f->st, f->version, &keys, &n, &max_gen);

	if (rc)
		return rc;
	atomic_store(&f->last_ok_ms, mono_ms());
	if (!n) {
		free(keys);
		return 0;
	}
	/* the allowlists' range sets are built here, off the worker's thread */
	struct gate_key **built = calloc(n, sizeof(*built));
	for (size_t i = 0; built && i < n; i++)
		if (!(built[i] = build(&keys[i]))) {
			for (size_t j = 0; j < i; j++)
				key_free(built[j]);
			free(built);
			built = NULL;
		}
	store_key_list_free(keys, n);
	if (!built)
		return -ENOMEM;     /* f->version unchanged: read again next time */
	pthread_mutex_lock(&f->mu);
	if (f->n_pending + n > f->cap) {
		size_t ncap = (f->n_pending + n) * 2;
		struct gate_key **np = realloc(f->pending, ncap * sizeof(*np));
		if (!np) {
			pthread_mutex_unlock(&f->mu);
			for (size_t i = 0; i < n; i++)
				key_free(built[i]);
			free(built);
			return -ENOMEM;
		}
		f->pending = np;
		f->cap = ncap;
	}
	memcpy(f->pending + f->n_pending, built, n * sizeof(*built));
	f->n_pending += n;
	f->pending_version = max_gen;
	atomic_store(&f->has_pending, true);
	pthread_mutex_unlock(&f->mu);
	free(built);
	f->version = max_gen;
	return 0;
}

static void feed_sleep(struct feed *f, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(&f->stop); t += FEED_SLICE_MS) {
		struct timespec ts = { 0, (long)FEED_SLICE_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	unsigned backoff = BACKOFF_MIN_MS;
	int64_t down_since = 0, next_resync = mono_ms() + f->resync_ms;

	while (!atomic_load(&f->stop)) {
		int rc;
		if (!atomic_load(&f->connected)) {
			/* LISTEN first, then read by version: a change committed in between is read
			 * now or announced later, never lost */
			if (store_reconnect(f->st) || store_listen(f->st) || feed_catch_up(f)) {
				feed_sleep(f, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			atomic_store(&f->connected, true);
			atomic_fetch_add(&f->reconnects, 1);
			log_info("gate: key store %s reachable again after %.1f s, at version %lld",
				 f->shown, (double)(mono_ms() - down_since) / 1000.0,
				 (long long)f->version);
			backoff = BACKOFF_MIN_MS;
			next_resync = mono_ms() + f->resync_ms;
			continue;
		}
		int64_t v = 0, now = mono_ms();
		int wait = next_resync - now < FEED_SLICE_MS ? (int)(next_resync > now ?
							 next_resync - now : 0) : FEED_SLICE_MS;
		rc = store_wait_change(f->st, wait, &v);
		if (rc == 1 && v <= f->version)
			rc = 0;     /* our own catch-up already read it */
		if (rc == 1 || (rc == 0 && mono_ms() >= next_resync)) {
			rc = feed_catch_up(f);
			next_resync = mono_ms() + f->resync_ms;
		}
		if (rc < 0 && rc != -ENOMEM) {
			/* logged once per outage; requests go on being answered from memory */
			log_warn("gate: key store %s unreachable (%s): serving from memory (version "
				 "%lld), reconnecting", f->shown, store_errmsg(f->st),
				 (long long)f->version);
			atomic_store(&f->connected, false);
			down_since = mono_ms();
		}
	}
	return NULL;
}

int keycache_open_opts(const char *path, const struct keycache_opts *o, struct keycache **out)
{
	struct keycache *kc = keycache_new();
	struct feed *f = NULL;
	int rc;

	*out = NULL;
	if (!kc)
		return -ENOMEM;
	kc->max_staleness_s = o && o->max_staleness_s ? o->max_staleness_s : 300;
	if ((rc = store_open(path, &kc->st)))
		goto fail;
	if (store_is_remote(path)) {
		if (!(f = calloc(1, sizeof(*f)))) {
			rc = -ENOMEM;
			goto fail;
		}
		pthread_mutex_init(&f->mu, NULL);
		kc->feed = f;
		f->resync_ms = o && o->resync_ms ? o->resync_ms : 5000;
		store_target_display(path, f->shown, sizeof(f->shown));
		/* subscribe before the full load, so nothing committed after it goes unannounced */
		if ((rc = store_listen(kc->st)))
			goto fail;
	} else if ((rc = store_data_version(kc->st, &kc->data_version)) < 0) {
		goto fail;
	}
	if ((rc = reload(kc)) < 0)
		goto fail;
	/* the load's result set and rows are gone: give that heap back (a million keys' worth) */
	malloc_trim(0);
	if (f) {
		f->st = kc->st;
		kc->st = NULL;
		f->version = kc->max_gen;
		atomic_store(&f->connected, true);
		atomic_store(&f->last_ok_ms, mono_ms());
		/* the thread takes no signal: they are the server loop's (signalfd) */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = -pthread_create(&f->thread, NULL, feed_main, f);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc)
			goto fail;
		f->started = true;
	}
	*out = kc;
	return 0;
fail:
	keycache_free(kc);
	return rc;
}

int keycache_open(const char *path, struct keycache **out)
{
	return keycache_open_opts(path, NULL, out);
}

/* Links in what the feed thread built; one atomic load when nothing is queued. */
static int feed_apply(struct keycache *kc)
{
	struct feed *f = kc->feed;
	struct gate_key **keys;
	size_t n;
	int64_t v;

	if (!atomic_load_explicit(&f->has_pending, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&f->mu);
	keys = f->pending;
	n = f->n_pending;
	v = f->pending_version;
	f->pending = NULL;
	f->n_pending = f->cap = 0;
	atomic_store(&f->has_pending, false);
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < n; i++)
		insert(kc, keys[i]);
	free(keys);
	if (v > kc->max_gen)
		kc->max_gen = v;
	return (int)n;
}

int keycache_refresh(struct keycache *kc, uint64_t now_ms, uint64_t min_interval_ms)
{
	int64_t v;
	int rc;

	if (kc->feed)
		return feed_apply(kc);
	if (!kc->st)
		return 0;
	if (kc->checked_once && now_ms - kc->last_check_ms < min_interval_ms)
		return 0;
	kc->checked_once = true;
	kc->last_check_ms = now_ms;
	if ((rc = store_data_version(kc->st, &v)))
		return rc;
	if (v == kc->data_version)
		return 0;
	kc->data_version = v;
	return reload(kc);
}

void keycache_stats(const struct keycache *kc, struct keycache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->version = kc->max_gen;
	out->connected = true;
	out->backend = kc->st ? store_backend(kc->st) : "none";
	if (kc->feed) {
		struct feed *f = kc->feed;
		out->backend = "postgresql";
		out->staleness_s = (double)(mono_ms() - atomic_load(&f->last_ok_ms)) / 1000.0;
		out->reconnects = atomic_load(&f->reconnects);
		out->connected = atomic_load(&f->connected);
	}
}

bool keycache_stale(const struct keycache *kc)
{
	if (!kc->feed)
		return false;
	return mono_ms() - atomic_load(&kc->feed->last_ok_ms) > (int64_t)kc->max_staleness_s * 1000;
}

const struct gate_key *keycache_find_hash(const struct keycache *kc, const char *hex)
{
	uint64_t h = hex64(hex);

	for (const struct gate_key *k = kc->buckets[h & (kc->nbuckets - 1)]; k; k = k->next)
		if (k->h == h && !memcmp(k->hash, hex, SHA256_HEX_LEN))
			return k;
	return NULL;
}

const struct gate_key *keycache_find(const struct keycache *kc, const char *key, size_t len)
{
	char hex[SHA256_HEX_LEN + 1];
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (kc->md_ctx && EVP_DigestInit_ex2(kc->md_ctx, kc->sha256, NULL) == 1 &&
	    EVP_DigestUpdate(kc->md_ctx, key, len) == 1 &&
	    EVP_DigestFinal_ex(kc->md_ctx, md, &mdlen) == 1 && mdlen == sizeof(md)) {
		codec_hex_encode(md, sizeof(md), hex, sizeof(hex), false);
	} else {
		secret_sha256_hex(key, len, hex);
	}
	return keycache_find_hash(kc, hex);
}

size_t keycache_count(const struct keycache *kc)
{
	return kc->count;
}

enum perm_level gate_key_perm(const struct gate_key *k, const char *resource)
{
	for (size_t i = 0; i < k->n_perms; i++)
		if (!strcmp(k->perms[i].resource, resource))
			return k->perms[i].level;
	return PERM_NONE;
}
