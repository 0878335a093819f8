/* egress.c: egress pools: round-robin, sticky and primary selection, down marking. */
#include "proxy/egress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int egress_pool_init(struct egress_pool *pool, const struct ipaddr *addrs, size_t n,
		     enum egress_policy policy)
{
	memset(pool, 0, sizeof(*pool));
	if (n == 0 || n > EGRESS_MAX)
		return -EINVAL;
	pool->addrs = calloc(n, sizeof(*pool->addrs));
	pool->down_until_ms = calloc(n, sizeof(*pool->down_until_ms));
	if (!pool->addrs || !pool->down_until_ms) {
		egress_pool_free(pool);
		return -ENOMEM;
	}
	memcpy(pool->addrs, addrs, n * sizeof(*addrs));
	for (size_t i = 0; i < n; i++)
		atomic_init(&pool->down_until_ms[i], 0);
	atomic_init(&pool->rr, 0);
	pool->n = n;
	pool->policy = policy;
	return 0;
}

void egress_pool_free(struct egress_pool *pool)
{
	free(pool->addrs);
	free((void *)pool->down_until_ms);
	pool->addrs = NULL;
	pool->down_until_ms = NULL;
	pool->n = 0;
}

const char *egress_policy_parse(const char *s, enum egress_policy *out)
{
	if (!strcmp(s, "round-robin"))
		*out = EGRESS_ROUND_ROBIN;
	else if (!strcmp(s, "sticky"))
		*out = EGRESS_STICKY;
	else if (!strcmp(s, "primary"))
		*out = EGRESS_PRIMARY;
	else
		return "egress_policy must be round-robin, sticky or primary";
	return NULL;
}

const char *egress_policy_name(enum egress_policy policy)
{
	switch (policy) {
	case EGRESS_ROUND_ROBIN: return "round-robin";
	case EGRESS_STICKY: return "sticky";
	case EGRESS_PRIMARY: return "primary";
	}
	return "?";
}

static bool usable(struct egress_pool *pool, size_t i, uint64_t now_ms, uint32_t tried_mask)
{
	if (tried_mask & (1u << i))
		return false;
	return now_ms >= atomic_load_explicit(&pool->down_until_ms[i], memory_order_relaxed);
}

/* FNV-1a over the lowercased name: stable across runs and processes, so a host keeps its IP
 * after a restart too. */
static uint32_t host_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 16777619u;
	}
	return h;
}

int egress_pick(struct egress_pool *pool, const char *dest_host, int pin, uint64_t now_ms,
		uint32_t tried_mask, size_t *out_idx)
{
	size_t start = 0;

	if (pool->n == 0)
		return -ENOENT;
	if (pin != -1) {
		if (pin < 1 || (size_t)pin > pool->n || !usable(pool, (size_t)pin - 1, now_ms, tried_mask))
			return -ENOENT;
		*out_idx = (size_t)pin - 1;
		return 0;
	}
	switch (pool->policy) {
	case EGRESS_ROUND_ROBIN:
		start = atomic_fetch_add_explicit(&pool->rr, 1, memory_order_relaxed) % pool->n;
		break;
	case EGRESS_STICKY:
		start = host_hash(dest_host) % pool->n;
		break;
	case EGRESS_PRIMARY:
		start = 0;
		break;
	}
	for (size_t k = 0; k < pool->n; k++) {
		size_t i = (start + k) % pool->n;
		if (usable(pool, i, now_ms, tried_mask)) {
			*out_idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

void egress_mark_down(struct egress_pool *pool, size_t idx, uint64_t now_ms, uint64_t for_ms)
{
	if (idx < pool->n)
		atomic_store_explicit(&pool->down_until_ms[idx], now_ms + for_ms, memory_order_relaxed);
}

const char *egress_pin_parse(const struct egress_pool *pool, const char *s, size_t len, int *pin)
{
	struct ipaddr ip;

	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len > 0 && len <= 2 && s[0] >= '1' && s[0] <= '9') {
		unsigned v = (unsigned)(s[0] - '0');
		if (len == 2) {
			if (s[1] < '0' || s[1] > '9')
				return "egress pin must be an index (1, 2, ...) or an address of the pool";
			v = v * 10 + (unsigned)(s[1] - '0');
		}
		if (v > pool->n)
			return "egress pin beyond the pool";
		*pin = (int)v;
		return NULL;
	}
	if (len > 2 && s[0] == '[' && s[len - 1] == ']')
		s++, len -= 2;
	if (ipaddr_parse(s, len, &ip))
		return "egress pin must be an index (1, 2, ...) or an address of the pool";
	for (size_t i = 0; i < pool->n; i++) {
		if (ipaddr_equal(&pool->addrs[i], &ip)) {
			*pin = (int)i + 1;
			return NULL;
		}
	}
	return "egress address not in the pool";
}
