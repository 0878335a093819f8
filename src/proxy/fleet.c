/* fleet.c: users from the store, usage counting and flushing, quotas, node heartbeat. */
#include "proxy/fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pwhash.h"
#include "core/thread.h"
#include "proxy/auth.h"
#include "proxy/egress.h"
#include "proxy/health.h"
#include "proxy/policy.h"
#include "proxy/session.h"
#include "store/feed.h"

#define QUOTA_BUCKETS 4096
#define TEXT_MAX      (16u << 20)
#define FLEET_WORD_MAX 180      /* a rendered key line stays under the INI reader's limit */

struct fleet {
	struct proxy *px;
	fleet_reload_fn *reload;        /* the runtime's reload with the store's users */
	char path[512];                 /* the config file */
	char *text;                     /* its text at the last successful build */
	char node[PROXY_USER_NAME_MAX + 1];
	char shown[512];                /* users_db, password masked */
	char target[512];
	int64_t started;

	pthread_mutex_t users_mu;       /* guards users, nusers (feed thread writes) */
	struct store_user *users;       /* every user read, removed ones included */
	size_t nusers, capusers;
	int64_t version;                /* feed thread: highest user version read */
	_Atomic int64_t next_expiry;    /* the earliest old password's end, 0 = none */
	struct store *st_feed;          /* until the feed thread takes it */
	struct store_feed *feed;

	pthread_mutex_t q_mu;           /* guards the quota table's chains */
	struct quota_ent *qb[QUOTA_BUCKETS];

	struct usage_tab *tabs;         /* one per worker */
	unsigned ntabs;
	pthread_t flusher;
	bool flusher_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stop;
	struct store *st_flush;
	bool flush_failing;
};

/* ---------------------------------------------------------------- helpers */

static struct quota_ent *quota_get(struct fleet *f, const char *name)
{
	uint32_t h = usage_hash(name, strlen(name), 2166136261u) % QUOTA_BUCKETS;
	struct quota_ent *e;

	pthread_mutex_lock(&f->q_mu);
	for (e = f->qb[h]; e; e = e->next)
		if (!strcmp(e->name, name))
			break;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->next = f->qb[h];
		f->qb[h] = e;
	}
	pthread_mutex_unlock(&f->q_mu);
	return e;
}

const char *fleet_lists_check(const char *allow, const char *egress)
{
	struct ipaddr seen[EGRESS_MAX];
	size_t n = 0;

	for (const char *p = allow; *p;) {
		size_t l = strcspn(p, " ");
		struct dest_rule r;
		const char *err;
		if (l > FLEET_WORD_MAX)
			return "destination rule longer than 180 characters";
		if (l && (err = dest_rule_parse(p, l, &r)))
			return err;
		p += l;
		p += strspn(p, " ");
	}
	for (const char *p = egress + strspn(egress, " "); *p;) {
		size_t l = strcspn(p, " ");
		struct ipaddr ip;
		const char *err;
		/* as the [user] egress key reads it: brackets allowed, no duplicates, at most 32 */
		const char *w = p;
		size_t wl = l;
		if (wl > 2 && w[0] == '[' && w[wl - 1] == ']')
			w++, wl -= 2;
		if ((err = ipaddr_parse(w, wl, &ip)))
			return err;
		for (size_t i = 0; i < n; i++)
			if (ipaddr_equal(&seen[i], &ip))
				return "duplicate egress address";
		if (n >= EGRESS_MAX)
			return "at most 32 egress addresses";
		seen[n++] = ip;
		p += l;
		p += strspn(p, " ");
	}
	return NULL;
}

const char *fleet_user_check(const struct store_user *u)
{
	const char *err;

	if (!proxy_user_name_valid(u->name, strlen(u->name)))
		return "bad user name";
	if ((err = pwhash_check(u->hash)))
		return err;
	if (u->max_conns < 0 || u->max_conns > 10000000)
		return "max_conns must be 0-10000000";
	return fleet_lists_check(u->allow, u->egress);
}

/* One key line per word: the INI reader's line limit then bounds a word, never a list. */
static int render_words(char *out, size_t cap, size_t *o, const char *key, const char *list)
{
	for (const char *p = list + strspn(list, " "); *p;) {
		size_t l = strcspn(p, " ");
		int m = snprintf(out + *o, cap - *o, "%s = %.*s\n", key, (int)l, p);
		if (m < 0 || (size_t)m >= cap - *o)
			return -ENOSPC;
		*o += (size_t)m;
		p += l;
		p += strspn(p, " ");
	}
	return 0;
}

long fleet_render_user(const struct store_user *u, char *out, size_t cap)
{
	int n = snprintf(out, cap, "\n[user %s]\npassword_hash = %s\n", u->name, u->hash);
	size_t o;

	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	o = (size_t)n;
	if (render_words(out, cap, &o, "allow", u->allow) ||
	    render_words(out, cap, &o, "egress", u->egress))
		return -ENOSPC;
	if (u->max_conns) {
		int m = snprintf(out + o, cap - o, "max_conns = %" PRId64 "\n", u->max_conns);
		if (m < 0 || (size_t)m >= cap - o)
			return -ENOSPC;
		o += (size_t)m;
	}
	return (long)o;
}

static char *read_text(const char *path, char *err, size_t errcap)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!fp) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 1 >= cap) {
			cap = cap ? cap * 2 : 65536;
			char *b = cap > TEXT_MAX ? NULL : realloc(buf, cap);
			if (!b) {
				snprintf(err, errcap, "%s: file too large or out of memory", path);
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = b;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, fp);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	if (ferror(fp) || memchr(buf, '\0', len)) {
		snprintf(err, errcap, "%s: read error or NUL byte", path);
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

/* Replaces or adds a user read from the store (users_mu held). */
static int users_merge(struct fleet *f, const struct store_user *u)
{
	for (size_t i = 0; i < f->nusers; i++)
		if (!strcmp(f->users[i].name, u->name)) {
			f->users[i] = *u;
			return 0;
		}
	if (store_grow(&f->users, &f->capusers, f->nusers, sizeof(*f->users)))
		return -ENOMEM;
	f->users[f->nusers++] = *u;
	return 0;
}

size_t fleet_store_users(const struct fleet *f)
{
	size_t n = 0;

	pthread_mutex_lock((pthread_mutex_t *)&f->users_mu);
	for (size_t i = 0; i < f->nusers; i++)
		n += !f->users[i].removed_at;
	pthread_mutex_unlock((pthread_mutex_t *)&f->users_mu);
	return n;
}

/* ---------------------------------------------------------------- the merged config */

int fleet_build(struct fleet *f, bool reread, struct proxy_config **out, char *err, size_t errcap)
{
	struct proxy_config *base = NULL, *cfg = NULL;
	char *text = reread || !f->text ? read_text(f->path, err, errcap) : f->text;
	char *merged = NULL, block[2 * STORE_USER_LIST_MAX + 512];
	size_t len, cap;
	int64_t now = (int64_t)time(NULL), next_exp = 0;
	int rc = -EINVAL;

	*out = NULL;
	if (!text)
		return -EIO;
	if (proxy_config_load_string(text, f->path, &base, err, errcap))
		goto out;
	len = strlen(text);
	cap = len + 1;
	if (!(merged = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(merged, text, len + 1);
	pthread_mutex_lock(&f->users_mu);
	for (size_t i = 0; i < f->nusers && rc == -EINVAL; i++) {
		const struct store_user *u = &f->users[i];
		if (u->removed_at)
			continue;
		if (proxy_config_find_user(base, u->name, strlen(u->name)) >= 0) {
			if (!f->started) {
				snprintf(err, errcap, "user %s is defined in both %s and users_db "
					 "(a name may be in one place only)", u->name, f->path);
				rc = -EEXIST;
				break;
			}
			log_warn("users_db: user %s is also a [user] block of %s: the file's is used",
				 u->name, f->path);
			continue;
		}
		const char *why = fleet_user_check(u);
		long bl = why ? -EINVAL : fleet_render_user(u, block, sizeof(block));
		if (bl < 0) {
			log_warn("users_db: user %s left out: %s", u->name, why ? why : "too long");
			continue;
		}
		if (len + (size_t)bl + 1 > cap) {
			size_t ncap = (len + (size_t)bl + 1) * 2;
			char *m = ncap > TEXT_MAX * 2 ? NULL : realloc(merged, ncap);
			if (!m) {
				snprintf(err, errcap, "users_db: out of memory");
				rc = -ENOMEM;
				break;
			}
			merged = m;
			cap = ncap;
		}
		memcpy(merged + len, block, (size_t)bl + 1);
		len += (size_t)bl;
	}
	if (rc != -EINVAL) {
		pthread_mutex_unlock(&f->users_mu);
		goto out;
	}
	if (proxy_config_load_string(merged, f->path, &cfg, err, errcap)) {
		pthread_mutex_unlock(&f->users_mu);
		goto out;
	}
	/* what the [user] syntax has no key for: rotation overlap, plan, origin */
	for (size_t i = 0; i < f->nusers; i++) {
		const struct store_user *u = &f->users[i];
		int k;
		if (u->removed_at || proxy_config_find_user(base, u->name, strlen(u->name)) >= 0 ||
		    (k = proxy_config_find_user(cfg, u->name, strlen(u->name))) < 0)
			continue;
		struct proxy_user *pu = &cfg->users[k];
		pu->from_store = true;
		if (u->old_hash[0] && u->old_expires > now) {
			snprintf(pu->old_hash, sizeof(pu->old_hash), "%s", u->old_hash);
			pu->old_expires = u->old_expires;
			if (!next_exp || u->old_expires < next_exp)
				next_exp = u->old_expires;
		}
		pu->plan_requests = (uint64_t)u->req_month;
		pu->plan_bytes = (uint64_t)u->bytes_month;
	}
	pthread_mutex_unlock(&f->users_mu);
	for (size_t i = 0; i < cfg->nusers; i++)
		if (!(cfg->users[i].quota = quota_get(f, cfg->users[i].name))) {
			snprintf(err, errcap, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
	f->next_expiry = next_exp;
	if (text != f->text) {
		free(f->text);
		f->text = text;
	}
	text = NULL;
	*out = cfg;
	cfg = NULL;
	rc = 0;
out:
	if (text && text != f->text)
		free(text);
	free(merged);
	proxy_config_free(base);
	proxy_config_free(cfg);
	return rc;
}

/* ---------------------------------------------------------------- open / feed */

static void node_default(char *out, size_t cap)
{
	char h[256] = "";
	size_t o = 0;

	if (gethostname(h, sizeof(h) - 1))
		h[0] = '\0';
	for (size_t i = 0; h[i] && o + 1 < cap && o < PROXY_USER_NAME_MAX; i++) {
		char c = h[i];
		out[o++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '.' || c == '_' || c == '-') ? c : '-';
	}
	if (!o)
		out[o++] = 'n', out[o++] = 'o', out[o++] = 'd', out[o++] = 'e';
	out[o] = '\0';
}

struct totals_arg {
	struct fleet *f;
	uint64_t round;
};

static void totals_cb(void *arg, const char *user, int64_t req, int64_t bytes)
{
	struct totals_arg *t = arg;
	struct quota_ent *e = quota_get(t->f, user);

	if (e) {
		atomic_store(&e->month_req, req);
		atomic_store(&e->month_bytes, bytes);
		e->mark = t->round;
	}
}

/* The month's totals into the quota table; a user absent from the sums used nothing this
 * month (a new month starts at 0). */
static int read_totals(struct fleet *f, struct store *st)
{
	static uint64_t rounds;
	struct totals_arg t = { f, ++rounds };
	int64_t from, to;

	store_month_of((int64_t)time(NULL), &from, &to);
	if (store_proxy_usage_totals(st, from, to, totals_cb, &t))
		return -EIO;
	pthread_mutex_lock(&f->q_mu);
	for (size_t i = 0; i < QUOTA_BUCKETS; i++)
		for (struct quota_ent *e = f->qb[i]; e; e = e->next)
			if (e->mark != t.round) {
				atomic_store(&e->month_req, 0);
				atomic_store(&e->month_bytes, 0);
			}
	pthread_mutex_unlock(&f->q_mu);
	return 0;
}

static int feed_catch_up(struct store *st, void *arg)
{
	struct fleet *f = arg;
	struct store_user *v = NULL;
	size_t n = 0;
	int64_t max_gen = f->version, t0 = store_mono_ms();
	int rc = store_user_changed(st, f->version, &v, &n, &max_gen);

	if (rc)
		return rc;
	if (n) {
		pthread_mutex_lock(&f->users_mu);
		for (size_t i = 0; i < n && !rc; i++)
			rc = users_merge(f, &v[i]);
		pthread_mutex_unlock(&f->users_mu);
	}
	free(v);
	if (rc)
		return rc;
	f->version = max_gen;
	bool expired = f->next_expiry && (int64_t)time(NULL) >= f->next_expiry;
	if (n || expired) {
		char err[512];
		if (f->reload(f->px, err, sizeof(err)))
			log_error("users_db: %zu change(s) not applied, the running users stay: %s", n, err);
		else
			log_info("users_db: %zu user change(s) applied in %" PRId64 " ms (store version %"
				 PRId64 ")%s", n, store_mono_ms() - t0, max_gen,
				 expired ? ", an old password's overlap ended" : "");
	}
	return 0;
}

int fleet_open(struct proxy *px, const char *config_path, struct proxy_config **cfg, char *err,
	       size_t errcap)
{
	struct fleet *f = calloc(1, sizeof(*f));
	struct proxy_config *first = NULL;
	struct store_user *v = NULL;
	size_t n = 0;
	int rc;

	*cfg = NULL;
	if (!f) {
		snprintf(err, errcap, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&f->users_mu, NULL);
	pthread_mutex_init(&f->q_mu, NULL);
	pthread_mutex_init(&f->stop_mu, NULL);
	pthread_cond_init(&f->stop_cv, NULL);
	f->px = px;
	px->fleet = f;
	snprintf(f->path, sizeof(f->path), "%s", config_path);
	if (!(f->text = read_text(config_path, err, errcap)))
		return -EIO;
	if (proxy_config_load_string(f->text, f->path, &first, err, errcap))
		return -EINVAL;
	snprintf(f->target, sizeof(f->target), "%s", first->users_db);
	store_target_display(first->users_db, f->shown, sizeof(f->shown));
	if (first->node_name[0])
		snprintf(f->node, sizeof(f->node), "%s", first->node_name);
	else
		node_default(f->node, sizeof(f->node));
	proxy_config_free(first);
	if ((rc = store_open(f->target, &f->st_feed))) {
		snprintf(err, errcap, "users_db: %s", store_errmsg(NULL));
		return rc;
	}
	/* subscribe before the full load, so nothing committed after it goes unannounced */
	if (store_is_remote(f->target) && (rc = store_listen(f->st_feed))) {
		snprintf(err, errcap, "users_db %s: %s", f->shown, store_errmsg(f->st_feed));
		return rc;
	}
	if ((rc = store_user_changed(f->st_feed, 0, &v, &n, &f->version))) {
		snprintf(err, errcap, "users_db %s: %s", f->shown, store_errmsg(f->st_feed));
		return rc;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = users_merge(f, &v[i]);
	free(v);
	if (rc) {
		snprintf(err, errcap, "out of memory");
		return rc;
	}
	if ((rc = fleet_build(f, false, cfg, err, errcap)))
		return rc;
	/* quotas hold from the first request after a restart */
	if (read_totals(f, f->st_feed)) {
		snprintf(err, errcap, "users_db %s: %s", f->shown, store_errmsg(f->st_feed));
		proxy_config_free(*cfg);
		*cfg = NULL;
		return -EIO;
	}
	f->started = (int64_t)time(NULL);
	return 0;
}

void fleet_snapshot(struct worker *w, const struct proxy_config *neu)
{
	for (struct session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		if (s->user < 0 || s->state == SESS_DONE)
			continue;
		const struct proxy_user *old = &session_cfg(s)->users[s->user];
		if (!old->from_store)
			continue;
		int k = proxy_config_find_user(neu, old->name, strlen(old->name));
		if (k < 0) {
			s->reason = "user removed from users_db";
			session_close(s);
			continue;
		}
		const struct proxy_user *nu = &neu->users[k];
		if (!strcmp(nu->password_hash, old->password_hash) &&
		    (!old->old_hash[0] || !strcmp(nu->old_hash, old->old_hash)))
			continue;
		/* a changed password: the next request on an idle connection must show the new one */
		if (s->state == SESS_HEAD && !s->head_started && !buf_pending(s->cin)) {
			s->reason = "password changed in users_db";
			session_close(s);
		} else if (s->state == SESS_FORWARD) {
			s->close_after = true;
		}
	}
}

/* ---------------------------------------------------------------- flush thread */

struct egress_acc {
	struct store_egress v[256];
	size_t n;
	const struct proxy_config *cfg;
	uint64_t now_ms;
	int64_t now;
};

static void egress_collect(struct egress_pool *pool, void *arg)
{
	struct egress_acc *a = arg;

	for (size_t i = 0; i < pool->n && a->n < sizeof(a->v) / sizeof(a->v[0]); i++) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&pool->addrs[i], ip, sizeof(ip));
		bool dup = false;
		for (size_t j = 0; j < a->n && !dup; j++)
			dup = !strcmp(a->v[j].addr, ip);
		if (dup)
			continue;
		struct store_egress *e = &a->v[a->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->addr, sizeof(e->addr), "%s", ip);
		bool probe_down = atomic_load(&pool->probe_down[i]);
		e->healthy = egress_is_up(pool, i, a->now_ms);
		snprintf(e->verdict, sizeof(e->verdict), "%s", probe_down ? "probe failed" :
			 !e->healthy ? "local failure" : a->cfg->health_probe.kind ? "up" : "unprobed");
		e->checked = a->now;
	}
}

static void flush_once(struct fleet *f)
{
	struct store_usage *recs = NULL;
	struct usage_seen *pend = NULL;
	size_t nrec = 0, cap = 0, total = (size_t)f->ntabs * USAGE_SLOTS;
	int64_t now = (int64_t)time(NULL), hour = now - now % 3600;
	int rc = 0;

	if (!(pend = calloc(total, sizeof(*pend))))
		return;
	for (unsigned w = 0; w < f->ntabs; w++) {
		struct usage_tab *t = &f->tabs[w];
		for (size_t i = 0; i < USAGE_SLOTS; i++) {
			struct usage_slot *s = &t->slot[i];
			struct quota_ent *q = atomic_load_explicit(&s->q, memory_order_acquire);
			if (!q)
				continue;
			struct usage_seen *p = &pend[(size_t)w * USAGE_SLOTS + i];
			p->req = atomic_load_explicit(&s->req, memory_order_relaxed);
			p->up = atomic_load_explicit(&s->up, memory_order_relaxed);
			p->down = atomic_load_explicit(&s->down, memory_order_relaxed);
			const struct usage_seen *seen = &t->seen[i];
			if (p->req == seen->req && p->up == seen->up && p->down == seen->down)
				continue;
			if (store_grow(&recs, &cap, nrec, sizeof(*recs))) {
				rc = -ENOMEM;
				goto out;
			}
			struct store_usage *r = &recs[nrec++];
			memset(r, 0, sizeof(*r));
			snprintf(r->user, sizeof(r->user), "%s", q->name);
			if (s->egress.family)
				ipaddr_format(&s->egress, r->egress, sizeof(r->egress));
			r->hour = hour;
			r->requests = (int64_t)(p->req - seen->req);
			r->bytes_up = (int64_t)(p->up - seen->up);
			r->bytes_down = (int64_t)(p->down - seen->down);
		}
	}
	if (nrec && (rc = store_proxy_usage_add(f->st_flush, recs, nrec)))
		goto out;
	/* flushed: what was read becomes the base of the next deltas */
	for (unsigned w = 0; nrec && w < f->ntabs; w++)
		for (size_t i = 0; i < USAGE_SLOTS; i++)
			if (atomic_load_explicit(&f->tabs[w].slot[i].q, memory_order_acquire))
				f->tabs[w].seen[i] = pend[(size_t)w * USAGE_SLOTS + i];
	if ((rc = read_totals(f, f->st_flush)))
		goto out;
	/* the heartbeat: this node's egress addresses and their health */
	struct egress_acc *acc = calloc(1, sizeof(*acc));
	if (acc) {
		pthread_mutex_lock(&f->px->reload_mu);
		struct cfg_ref *r = cfg_ref_get(f->px->cfg);
		pthread_mutex_unlock(&f->px->reload_mu);
		acc->cfg = r->cfg;
		acc->now = now;
		acc->now_ms = loop_clock_ms();
		health_each_pool(r->cfg, egress_collect, acc);
		for (size_t i = 0; i < acc->n; i++)
			snprintf(acc->v[i].node, sizeof(acc->v[i].node), "%s", f->node);
		rc = store_node_beat(f->st_flush, f->node, f->started, now, acc->v, acc->n);
		cfg_ref_put(r);
		free(acc);
	}
out:
	if (rc && !f->flush_failing)
		log_warn("users_db %s: cannot write usage (%s): counts are kept and retried",
			 f->shown, rc == -ENOMEM ? "out of memory" : store_errmsg(f->st_flush));
	else if (!rc && f->flush_failing)
		log_info("users_db %s: usage written again", f->shown);
	f->flush_failing = rc != 0;
	free(recs);
	free(pend);
}

static void *flush_main(void *arg)
{
	struct fleet *f = arg;
	struct timespec ts;

	pthread_mutex_lock(&f->stop_mu);
	while (!f->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += FLEET_FLUSH_MS / 1000;
		ts.tv_nsec += (long)(FLEET_FLUSH_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->stop_cv, &f->stop_mu, &ts);
		pthread_mutex_unlock(&f->stop_mu);
		flush_once(f);
		pthread_mutex_lock(&f->stop_mu);
	}
	pthread_mutex_unlock(&f->stop_mu);
	return NULL;
}

int fleet_start(struct fleet *f, fleet_reload_fn *reload)
{
	struct store_feed_opts fo = { .resync_ms = 1000, .poll_ms = 20, .catch_up = feed_catch_up,
				      .arg = f };
	char who[600];
	int rc;

	f->reload = reload;
	f->ntabs = f->px->nworkers;
	if (!(f->tabs = calloc(f->ntabs, sizeof(*f->tabs))))
		return -ENOMEM;
	f->px->usage = f->tabs;   /* the workers count through px: they never see the fleet */
	if ((rc = store_open(f->target, &f->st_flush))) {
		log_error("users_db %s: %s", f->shown, store_errmsg(NULL));
		return rc;
	}
	snprintf(who, sizeof(who), "proxy: users_db %s", f->shown);
	fo.who = who;
	struct store *st = f->st_feed;
	f->st_feed = NULL;
	if ((rc = store_feed_start(st, &fo, &f->feed)))
		return rc;
	if ((rc = thread_start(&f->flusher, flush_main, f)))
		return rc;
	f->flusher_started = true;
	log_info("users_db %s: %zu users, node %s, usage flushed every %u ms", f->shown,
		 fleet_store_users(f), f->node, FLEET_FLUSH_MS);
	return 0;
}

void fleet_stop(struct fleet *f)
{
	if (!f)
		return;
	store_feed_stop(f->feed);
	f->feed = NULL;
	if (f->flusher_started) {
		pthread_mutex_lock(&f->stop_mu);
		f->stop = true;
		pthread_cond_signal(&f->stop_cv);
		pthread_mutex_unlock(&f->stop_mu);
		pthread_join(f->flusher, NULL);
		f->flusher_started = false;
		flush_once(f);      /* the last second's counts */
	}
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	fleet_stop(f);
	store_close(f->st_feed);
	store_close(f->st_flush);
	for (size_t i = 0; i < QUOTA_BUCKETS; i++)
		for (struct quota_ent *e = f->qb[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	f->px->usage = NULL;
	free(f->tabs);
	free(f->users);
	free(f->text);
	pthread_mutex_destroy(&f->users_mu);
	pthread_mutex_destroy(&f->q_mu);
	pthread_mutex_destroy(&f->stop_mu);
	pthread_cond_destroy(&f->stop_cv);
	free(f);
}
