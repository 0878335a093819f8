/* metrics.c: per-worker counters, the connection hooks that bump them, the sum over workers and
 * the Prometheus text rendering. */
#include "proxy/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* Upper bounds in microseconds, and the same as the le label in seconds. */
static const uint64_t hist_bounds_us[HIST_NBUCKETS - 1] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
static const char *const hist_le[HIST_NBUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "+Inf",
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	return m;   /* all-zero is the initial state of every atomic here */
}

void metrics_free(struct metrics *m)
{
	free(m);
}

uint64_t metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void hist_observe(struct hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < HIST_NBUCKETS - 1 && us > hist_bounds_us[i])
		i++;
	mc_add(&h->bucket[i], 1);
	mc_add(&h->count, 1);
	mc_add(&h->sum_us, us);
}

void hist_add_to(const struct hist *h, struct hist_sum *out)
{
	for (size_t i = 0; i < HIST_NBUCKETS; i++)
		out->bucket[i] += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
	out->count += atomic_load_explicit(&h->count, memory_order_relaxed);
	out->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

/* ---------------------------------------------------------------- slots */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int metrics_user_slot(struct metrics *m, const char *name)
{
	const size_t mask = sizeof(m->user_hash) / sizeof(m->user_hash[0]) - 1;
	unsigned n = atomic_load_explicit(&m->nusers, memory_order_relaxed);

	for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
		int v = m->user_hash[i];
		if (v == 0)
			break;
		if (!strcmp(m->users[v - 1].name, name))
			return v - 1;
	}
	if (n == METRICS_USERS_MAX - 1) {
		/* the last slot takes everyone beyond the cap */
		snprintf(m->users[n].name, sizeof(m->users[n].name), "%s", METRICS_USER_OTHER);
		atomic_store_explicit(&m->nusers, n + 1, memory_order_release);
	}
	if (n >= METRICS_USERS_MAX - 1)
		return METRICS_USERS_MAX - 1;
	snprintf(m->users[n].name, sizeof(m->users[n].name), "%s", name);
	atomic_store_explicit(&m->nusers, n + 1, memory_order_release);
	for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
		if (m->user_hash[i] == 0) {
			m->user_hash[i] = (int16_t)(n + 1);
			break;
		}
	}
	return (int)n;
}

int metrics_egress_slot(struct metrics *m, const struct ipaddr *ip)
{
	unsigned n = atomic_load_explicit(&m->negress, memory_order_relaxed);

	for (unsigned i = 0; i < n; i++)
		if (ipaddr_equal(&m->egress[i].ip, ip))
			return (int)i;
	if (n >= METRICS_EGRESS_MAX)
		return -1;
	m->egress[n].ip = *ip;
	atomic_store_explicit(&m->negress, n + 1, memory_order_release);
	return (int)n;
}

void metrics_code_count(struct metrics *m, const char *code)
{
	unsigned n = atomic_load_explicit(&m->ncodes, memory_order_relaxed);

	for (unsigned i = 0; i < n; i++) {
		if (m->codes[i].code == code || !strcmp(m->codes[i].code, code)) {
			mc_add(&m->codes[i].n, 1);
			return;
		}
	}
	if (n >= METRICS_CODES_MAX)
		return;
	m->codes[n].code = code;
	atomic_store_explicit(&m->codes[n].n, 1, memory_order_relaxed);
	atomic_store_explicit(&m->ncodes, n + 1, memory_order_release);
}

/* ---------------------------------------------------------------- connection hooks */

static struct metrics_egress *egress_of(struct metrics *m, const struct ipaddr *egress)
{
	if (!egress)
		return NULL;
	int slot = metrics_egress_slot(m, egress);
	return slot < 0 ? NULL : &m->egress[slot];
}

static struct metrics_user *user_of(struct metrics *m, const struct metrics_sess *ms)
{
	if (ms->user)
		return &m->users[ms->user - 1];
	return &m->users[metrics_user_slot(m, "")];
}

void metrics_conn_open(struct metrics *m)
{
	mc_add(&m->accepted, 1);
	mc_add(&m->active, 1);
}

void metrics_conn_close(struct metrics *m, struct metrics_sess *ms)
{
	metrics_upstream_close(m, ms);
	if (ms->user) {
		mc_sub(&m->users[ms->user - 1].c[MU_CONNS_ACTIVE], 1);
		ms->user = 0;
	}
	mc_sub(&m->active, 1);
}

void metrics_user_set(struct metrics *m, struct metrics_sess *ms, const char *name)
{
	if (ms->user && !strcmp(m->users[ms->user - 1].name, name))
		return;
	int slot = metrics_user_slot(m, name);
	if (ms->user == slot + 1)
		return;   /* both in the overflow slot */
	if (ms->user)
		mc_sub(&m->users[ms->user - 1].c[MU_CONNS_ACTIVE], 1);
	ms->user = (int16_t)(slot + 1);
	mc_add(&m->users[slot].c[MU_CONNS_ACTIVE], 1);
	mc_add(&m->users[slot].c[MU_CONNS_TOTAL], 1);
}

void metrics_dns_start(struct metrics_sess *ms)
{
	ms->t0_us = metrics_now_us();
}

void metrics_dns_done(struct metrics *m, struct metrics_sess *ms)
{
	if (!ms->t0_us)
		return;   /* answered from the cache */
	hist_observe(&m->dns, metrics_now_us() - ms->t0_us);
	ms->t0_us = 0;
}

void metrics_connect_start(struct metrics_sess *ms)
{
	ms->t0_us = metrics_now_us();
}

void metrics_connected(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress, bool tunnel)
{
	struct metrics_egress *e = egress_of(m, egress);

	if (ms->t0_us) {
		hist_observe(&m->connect, metrics_now_us() - ms->t0_us);
		ms->t0_us = 0;
	}
	metrics_upstream_close(m, ms);   /* a previous upstream of this connection, if still counted */
	if (!e)
		return;
	ms->egress = (int16_t)(e - m->egress + 1);
	mc_add(&e->c[ME_CONNS_ACTIVE], 1);
	mc_add(&e->c[ME_CONNS_TOTAL], 1);
	if (tunnel) {
		struct metrics_user *u = user_of(m, ms);
		ms->tunnel = true;
		mc_add(&e->c[ME_TUNNELS_ACTIVE], 1);
		mc_add(&e->c[ME_TUNNELS_TOTAL], 1);
		mc_add(&u->c[MU_TUNNELS_ACTIVE], 1);
		mc_add(&u->c[MU_TUNNELS_TOTAL], 1);
	}
}

void metrics_connect_failed(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress)
{
	struct metrics_egress *e = egress_of(m, egress);

	ms->t0_us = 0;
	if (e)
		mc_add(&e->c[ME_CONNECT_FAILURES], 1);
}

void metrics_upstream_close(struct metrics *m, struct metrics_sess *ms)
{
	if (!ms->egress)
		return;
	struct metrics_egress *e = &m->egress[ms->egress - 1];
	mc_sub(&e->c[ME_CONNS_ACTIVE], 1);
	if (ms->tunnel) {
		mc_sub(&e->c[ME_TUNNELS_ACTIVE], 1);
		mc_sub(&user_of(m, ms)->c[MU_TUNNELS_ACTIVE], 1);
		ms->tunnel = false;
	}
	ms->egress = 0;
}

void metrics_bytes(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress, uint64_t up,
		   uint64_t down)
{
	if (up < ms->up_counted || down < ms->down_counted)
		return;   /* never count backwards */
	uint64_t du = up - ms->up_counted, dd = down - ms->down_counted;
	if (!du && !dd)
		return;
	struct metrics_user *u = user_of(m, ms);
	mc_add(&u->c[MU_BYTES_UP], du);
	mc_add(&u->c[MU_BYTES_DOWN], dd);
	struct metrics_egress *e = ms->egress ? &m->egress[ms->egress - 1] : egress_of(m, egress);
	if (e) {
		mc_add(&e->c[ME_BYTES_UP], du);
		mc_add(&e->c[ME_BYTES_DOWN], dd);
	}
	ms->up_counted = up;
	ms->down_counted = down;
}

void metrics_request_reset(struct metrics_sess *ms)
{
	ms->done = false;
	ms->up_counted = ms->down_counted = 0;
}

void metrics_request_done(struct metrics *m, struct metrics_sess *ms, const struct metrics_req *r)
{
	if (ms->done)
		return;
	ms->done = true;
	if (r->code) {
		metrics_code_count(m, r->code);
		if (r->status == 407)
			mc_add(&m->auth_failures, 1);
	}
	mc_add(&user_of(m, ms)->c[r->kind], 1);
	metrics_bytes(m, ms, r->egress, r->up, r->down);
}

/* ---------------------------------------------------------------- snapshot */

static int grow(void **arr, size_t n, size_t size)
{
	/* arrays grow by doubling: when n is a power of two (or 0) the array is full */
	if (n & (n - 1))
		return 0;
	void *a = realloc(*arr, (n ? n * 2 : 8) * size);
	if (!a)
		return -ENOMEM;
	*arr = a;
	return 0;
}

static struct metrics_user_sum *user_sum(struct metrics_snapshot *snap, const char *name)
{
	for (size_t i = 0; i < snap->nusers; i++)
		if (!strcmp(snap->users[i].name, name))
			return &snap->users[i];
	if (grow((void **)&snap->users, snap->nusers, sizeof(*snap->users)))
		return NULL;
	struct metrics_user_sum *u = &snap->users[snap->nusers++];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	return u;
}

static struct metrics_egress_sum *egress_sum(struct metrics_snapshot *snap, const struct ipaddr *ip)
{
	for (size_t i = 0; i < snap->negress; i++)
		if (ipaddr_equal(&snap->egress[i].ip, ip))
			return &snap->egress[i];
	if (grow((void **)&snap->egress, snap->negress, sizeof(*snap->egress)))
		return NULL;
	struct metrics_egress_sum *e = &snap->egress[snap->negress++];
	memset(e, 0, sizeof(*e));
	e->ip = *ip;
	e->up = -1;
	return e;
}

int metrics_snapshot_add(struct metrics_snapshot *snap, const struct metrics *m)
{
	unsigned n;

	snap->accepted += atomic_load_explicit(&m->accepted, memory_order_relaxed);
	snap->active += atomic_load_explicit(&m->active, memory_order_relaxed);
	snap->auth_failures += atomic_load_explicit(&m->auth_failures, memory_order_relaxed);
	hist_add_to(&m->dns, &snap->dns);
	hist_add_to(&m->connect, &snap->connect);
	n = atomic_load_explicit(&m->ncodes, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < snap->ncodes; k++)
			if (!strcmp(snap->codes[k].code, m->codes[i].code))
				break;
		if (k == snap->ncodes) {
			if (grow((void **)&snap->codes, snap->ncodes, sizeof(*snap->codes)))
				return -ENOMEM;
			snap->codes[k].code = m->codes[i].code;
			snap->codes[k].n = 0;
			snap->ncodes++;
		}
		snap->codes[k].n += atomic_load_explicit(&m->codes[i].n, memory_order_relaxed);
	}
	n = atomic_load_explicit(&m->nusers, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct metrics_user_sum *u = user_sum(snap, m->users[i].name);
		if (!u)
			return -ENOMEM;
		for (size_t c = 0; c < MU_COUNT; c++)
			u->c[c] += atomic_load_explicit(&m->users[i].c[c], memory_order_relaxed);
	}
	n = atomic_load_explicit(&m->negress, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct metrics_egress_sum *e = egress_sum(snap, &m->egress[i].ip);
		if (!e)
			return -ENOMEM;
		for (size_t c = 0; c < ME_COUNT; c++)
			e->c[c] += atomic_load_explicit(&m->egress[i].c[c], memory_order_relaxed);
	}
	return 0;
}

int metrics_snapshot_egress_up(struct metrics_snapshot *snap, const struct ipaddr *ip, bool up)
{
	struct metrics_egress_sum *e = egress_sum(snap, ip);

	if (!e)
		return -ENOMEM;
	/* an address in several pools is up if any pool may use it */
	e->up = e->up == 1 || up;
	return 0;
}

void metrics_snapshot_free(struct metrics_snapshot *snap)
{
	free(snap->codes);
	free(snap->users);
	free(snap->egress);
	memset(snap, 0, sizeof(*snap));
}

/* ---------------------------------------------------------------- text */

void mtext_init(struct mtext *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

void mtext_printf(struct mtext *t, const char *fmt, ...)
{
	va_list ap;

	if (t->overflow)
		return;
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		int n = room ? vsnprintf(t->buf + t->len, room, fmt, ap) : -2;
		va_end(ap);
		if (n == -1) {
			t->overflow = true;
			return;
		}
		if (n >= 0 && (size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t need = t->len + (n > 0 ? (size_t)n : 0) + 1;
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < need)
			cap *= 2;
		char *nb = cap > t->max ? NULL : realloc(t->buf, cap);
		if (!nb) {
			t->overflow = true;
			if (t->buf)
				t->buf[t->len] = '\0';
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

void mtext_free(struct mtext *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

void metrics_label_escape(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	if (!cap)
		return;
	for (; *s && o + 1 < cap; s++) {
		const char *rep = NULL;
		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '"')
			rep = "\\\"";
		else if (*s == '\n')
			rep = "\\n";
		if (rep) {
			if (o + 3 > cap)
				break;
			out[o++] = rep[0];
			out[o++] = rep[1];
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

void hist_render(struct mtext *out, const char *name, const char *help, const struct hist_sum *h)
{
	uint64_t cum = 0;

	mtext_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < HIST_NBUCKETS; i++) {
		cum += h->bucket[i];
		mtext_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, hist_le[i], (unsigned long long)cum);
	}
	mtext_printf(out, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
		     (unsigned long long)(h->sum_us / 1000000), (unsigned long long)(h->sum_us % 1000000),
		     name, (unsigned long long)h->count);
}

static void family(struct mtext *out, const char *name, const char *type, const char *help)
{
	mtext_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int cmp_user(const void *a, const void *b)
{
	return strcmp(((const struct metrics_user_sum *)a)->name, ((const struct metrics_user_sum *)b)->name);
}

static int cmp_egress(const void *a, const void *b)
{
	const struct ipaddr *x = &((const struct metrics_egress_sum *)a)->ip;
	const struct ipaddr *y = &((const struct metrics_egress_sum *)b)->ip;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->a, y->a, sizeof(x->a));
}

static int cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct metrics_code_sum *)a)->code, ((const struct metrics_code_sum *)b)->code);
}

struct counter_def {
	int idx;
	const char *name, *type, *help, *extra;   /* extra: a second label, or NULL */
};

static const struct counter_def user_defs[] = {
	{ MU_CONNS_ACTIVE, "iplock_user_connections_active", "gauge",
	  "Client connections open whose last request authenticated as the user", NULL },
	{ MU_CONNS_TOTAL, "iplock_user_connections_total", "counter",
	  "Client connections that authenticated as the user", NULL },
	{ MU_TUNNELS_ACTIVE, "iplock_user_tunnels_active", "gauge", "CONNECT tunnels open", NULL },
	{ MU_TUNNELS_TOTAL, "iplock_user_tunnels_total", "counter", "CONNECT tunnels established", NULL },
	{ MU_REQ_CONNECT, "iplock_user_requests_total", "counter",
	  "Requests finished, refused ones included", "kind=\"connect\"" },
	{ MU_REQ_FORWARD, NULL, NULL, NULL, "kind=\"forward\"" },
	{ MU_REQ_SOCKS, NULL, NULL, NULL, "kind=\"socks\"" },
	{ MU_BYTES_UP, "iplock_user_bytes_total", "counter",
	  "Payload bytes (open tunnels: added every second)", "direction=\"up\"" },
	{ MU_BYTES_DOWN, NULL, NULL, NULL, "direction=\"down\"" },
};

static const struct counter_def egress_defs[] = {
	{ ME_CONNS_ACTIVE, "iplock_egress_connections_active", "gauge",
	  "Upstream connections open from the egress address", NULL },
	{ ME_CONNS_TOTAL, "iplock_egress_connections_total", "counter",
	  "Upstream connections established from the egress address", NULL },
	{ ME_TUNNELS_ACTIVE, "iplock_egress_tunnels_active", "gauge", "CONNECT tunnels open", NULL },
	{ ME_TUNNELS_TOTAL, "iplock_egress_tunnels_total", "counter", "CONNECT tunnels established", NULL },
	{ ME_CONNECT_FAILURES, "iplock_egress_connect_failures_total", "counter",
	  "Upstream connects from the egress address that failed", NULL },
	{ ME_BYTES_UP, "iplock_egress_bytes_total", "counter",
	  "Payload bytes (open tunnels: added every second)", "direction=\"up\"" },
	{ ME_BYTES_DOWN, NULL, NULL, NULL, "direction=\"down\"" },
};

void metrics_render(struct metrics_snapshot *snap, struct mtext *out)
{
	char label[2 * PROXY_USER_NAME_MAX + 8];
	const char *name = "";

	/* qsort(NULL, 0, ...) is undefined: empty arrays are NULL */
	if (snap->nusers)
		qsort(snap->users, snap->nusers, sizeof(*snap->users), cmp_user);
	if (snap->negress)
		qsort(snap->egress, snap->negress, sizeof(*snap->egress), cmp_egress);
	if (snap->ncodes)
		qsort(snap->codes, snap->ncodes, sizeof(*snap->codes), cmp_code);

	family(out, "iplock_workers", "gauge", "Worker threads");
	mtext_printf(out, "iplock_workers %u\n", snap->workers);
	family(out, "iplock_draining", "gauge", "1 while the proxy drains after SIGTERM");
	mtext_printf(out, "iplock_draining %d\n", snap->draining ? 1 : 0);
	family(out, "iplock_client_connections_active", "gauge", "Client connections open");
	mtext_printf(out, "iplock_client_connections_active %llu\n", (unsigned long long)snap->active);
	family(out, "iplock_client_connections_total", "counter", "Client connections accepted");
	mtext_printf(out, "iplock_client_connections_total %llu\n", (unsigned long long)snap->accepted);
	family(out, "iplock_auth_failures_total", "counter",
	       "Requests answered 407 (credentials missing or not valid)");
	mtext_printf(out, "iplock_auth_failures_total %llu\n", (unsigned long long)snap->auth_failures);
	family(out, "iplock_denials_total", "counter",
	       "Requests the proxy refused or failed, by the code of its JSON error");
	for (size_t i = 0; i < snap->ncodes; i++) {
		metrics_label_escape(label, sizeof(label), snap->codes[i].code);
		mtext_printf(out, "iplock_denials_total{code=\"%s\"} %llu\n", label,
			     (unsigned long long)snap->codes[i].n);
	}
	for (size_t d = 0; d < sizeof(user_defs) / sizeof(user_defs[0]); d++) {
		const struct counter_def *def = &user_defs[d];
		if (def->name) {
			name = def->name;   /* later rows without a name add samples to this family */
			family(out, def->name, def->type, def->help);
		}
		for (size_t i = 0; i < snap->nusers; i++) {
			metrics_label_escape(label, sizeof(label), snap->users[i].name);
			mtext_printf(out, "%s{user=\"%s\"%s%s} %llu\n", name, label, def->extra ? "," : "",
				     def->extra ? def->extra : "", (unsigned long long)snap->users[i].c[def->idx]);
		}
	}
	for (size_t d = 0; d < sizeof(egress_defs) / sizeof(egress_defs[0]); d++) {
		const struct counter_def *def = &egress_defs[d];
		if (def->name) {
			name = def->name;   /* later rows without a name add samples to this family */
			family(out, def->name, def->type, def->help);
		}
		for (size_t i = 0; i < snap->negress; i++) {
			ipaddr_format(&snap->egress[i].ip, label, sizeof(label));
			mtext_printf(out, "%s{egress=\"%s\"%s%s} %llu\n", name, label, def->extra ? "," : "",
				     def->extra ? def->extra : "", (unsigned long long)snap->egress[i].c[def->idx]);
		}
	}
	family(out, "iplock_egress_up", "gauge",
	       "1 if the egress address is in rotation (health probe passed, no local failure)");
	for (size_t i = 0; i < snap->negress; i++) {
		if (snap->egress[i].up < 0)
			continue;   /* no longer configured */
		ipaddr_format(&snap->egress[i].ip, label, sizeof(label));
		mtext_printf(out, "iplock_egress_up{egress=\"%s\"} %d\n", label, snap->egress[i].up);
	}
	hist_render(out, "iplock_dns_lookup_seconds", "DNS lookups (cache misses) until the answer",
		    &snap->dns);
	hist_render(out, "iplock_upstream_connect_seconds", "Upstream TCP connects until established",
		    &snap->connect);
}
