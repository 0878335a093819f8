/* usage.c: the workers' side of users_db usage (usage.h): find a request's slot, bump its
 * counters. Runs on the data path, so no lock and no read-modify-write. */
#include "proxy/usage.h"

#include <string.h>

uint32_t usage_hash(const void *p, size_t n, uint32_t h)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static struct usage_slot *slot_find(struct usage_tab *t, struct quota_ent *q, const struct ipaddr *ip)
{
	uint32_t h = usage_hash(&q, sizeof(q), 2166136261u);

	if (ip)
		h = usage_hash(ip->a, sizeof(ip->a), h ^ ip->family);
	for (unsigned i = 0; i < 64; i++) {
		struct usage_slot *s = &t->slot[(h + i) % USAGE_SLOTS];
		struct quota_ent *cur = atomic_load_explicit(&s->q, memory_order_relaxed);
		if (cur == q && (ip ? ipaddr_equal(&s->egress, ip) : s->egress.family == 0))
			return s;
		if (!cur) {
			memset(&s->egress, 0, sizeof(s->egress));
			if (ip)
				s->egress = *ip;
			atomic_store_explicit(&s->q, q, memory_order_release);
			return s;
		}
	}
	return NULL;
}

/* the worker is the only writer of its slots: a relaxed store of the new total is enough */
static inline void bump(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

void usage_count_request(struct usage_tab *t, struct quota_ent *q, const struct ipaddr *egress,
			 struct usage_mark *m)
{
	if (!t || !q)
		return;
	m->slot = slot_find(t, q, egress);
	if (!m->slot) {
		atomic_fetch_add(&t->lost, 1);
		return;
	}
	bump(&m->slot->req, 1);
	m->up = m->down = 0;
}

void usage_count_bytes(struct usage_mark *m, uint64_t up, uint64_t down, bool at_end)
{
	struct usage_slot *u = m->slot;

	if (!u)
		return;
	if (up > m->up) {
		bump(&u->up, up - m->up);
		m->up = up;
	}
	if (down > m->down) {
		bump(&u->down, down - m->down);
		m->down = down;
	}
	if (at_end)
		m->slot = NULL;
}
