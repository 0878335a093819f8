/* metrics.h: the proxy's Prometheus metrics. Each worker owns its counters and is their only
 * writer: an increment is a relaxed load and a relaxed store (plain moves, no locked
 * instruction on the hot path). The admin thread sums every worker's counters when /metrics
 * is scraped; a slot (a user name, an egress address) once published never changes. */
#ifndef IPLOCK_PROXY_METRICS_H
#define IPLOCK_PROXY_METRICS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "proxy/config.h"

#define METRICS_USERS_MAX  1024   /* per worker; beyond that users are counted as "(other)" */
#define METRICS_EGRESS_MAX 256    /* per worker; beyond that addresses are not counted */
#define METRICS_CODES_MAX  64     /* distinct error codes per worker */
#define METRICS_USER_OTHER "(other)"   /* not a valid user name, so it never collides */
#define HIST_NBUCKETS 15          /* 14 finite upper bounds and +Inf */

/* Latency histogram in microseconds; buckets are not cumulative here (rendering sums them). */
struct hist {
	_Atomic uint64_t bucket[HIST_NBUCKETS];
	_Atomic uint64_t count, sum_us;
};

struct hist_sum {
	uint64_t bucket[HIST_NBUCKETS];
	uint64_t count, sum_us;
};

enum mu_counter {
	MU_CONNS_ACTIVE = 0,   /* client connections whose last request authenticated as this user */
	MU_CONNS_TOTAL,        /* client connections that authenticated as this user */
	MU_TUNNELS_ACTIVE,     /* CONNECT tunnels established and open */
	MU_TUNNELS_TOTAL,      /* CONNECT tunnels established */
	MU_REQ_CONNECT,        /* CONNECT requests finished (any status) */
	MU_REQ_FORWARD,        /* forwarded http:// requests finished (any status) */
	MU_REQ_SOCKS,          /* SOCKS5 CONNECT requests finished (any status) */
	MU_BYTES_UP,           /* payload client -> destination (open tunnels: added each second) */
	MU_BYTES_DOWN,         /* payload destination -> client */
	MU_COUNT
};

enum me_counter {
	ME_CONNS_ACTIVE = 0,   /* upstream connections open from this address */
	ME_CONNS_TOTAL,        /* upstream connections established from this address */
	ME_TUNNELS_ACTIVE,     /* CONNECT tunnels open from this address */
	ME_TUNNELS_TOTAL,      /* CONNECT tunnels established from this address */
	ME_CONNECT_FAILURES,   /* upstream connects from this address that failed */
	ME_BYTES_UP,
	ME_BYTES_DOWN,
	ME_COUNT
};

struct metrics_user {
	char name[PROXY_USER_NAME_MAX + 1];   /* "" = no user (auth none, or not authenticated) */
	_Atomic uint64_t c[MU_COUNT];
};

struct metrics_egress {
	struct ipaddr ip;
	_Atomic uint64_t c[ME_COUNT];
};

struct metrics_code {
	const char *code;          /* a string literal of session.c / respond.c */
	_Atomic uint64_t n;
};

/* One per worker. */
struct metrics {
	_Atomic uint64_t accepted, active, auth_failures;
	struct hist dns, connect;
	struct metrics_code codes[METRICS_CODES_MAX];
	atomic_uint ncodes;
	struct metrics_user users[METRICS_USERS_MAX];
	atomic_uint nusers;        /* published with release after the slot's name is written */
	struct metrics_egress egress[METRICS_EGRESS_MAX];
	atomic_uint negress;
	int16_t user_hash[2 * METRICS_USERS_MAX];   /* worker-private: name -> slot + 1 */
};

/* What a session remembers for its metrics (embedded in struct session, zeroed at accept). */
struct metrics_sess {
	int16_t user;              /* slot + 1 counted in MU_CONNS_ACTIVE, 0 none */
	int16_t egress;            /* slot + 1 of the upstream connection counted active, 0 none */
	bool tunnel;               /* counted in the tunnel gauges */
	bool done;                 /* this request was counted (access_log may run twice) */
	uint64_t t0_us;            /* start of the DNS lookup or connect being timed, 0 none */
	uint64_t up_counted, down_counted;   /* this request's bytes already in the counters */
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Single-writer counter bump: the owner's load and store, readers see whole values. */
static inline void mc_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void mc_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n, memory_order_relaxed);
}

uint64_t metrics_now_us(void);
void hist_observe(struct hist *h, uint64_t us);
void hist_add_to(const struct hist *h, struct hist_sum *out);

/* Slots, found or made (worker thread only). user: -1 when full is impossible: an overflow
 * slot takes every user beyond the cap. egress: -1 when the table is full. */
int metrics_user_slot(struct metrics *m, const char *name);
int metrics_egress_slot(struct metrics *m, const struct ipaddr *ip);
void metrics_code_count(struct metrics *m, const char *code);

/* ---- hooks for one client connection (worker thread): m is the worker's counters, ms what the
 * connection remembers, egress the address its upstream leaves from (NULL: none yet) */
void metrics_conn_open(struct metrics *m);                                    /* accepted */
void metrics_conn_close(struct metrics *m, struct metrics_sess *ms);
void metrics_user_set(struct metrics *m, struct metrics_sess *ms, const char *user);  /* "": auth = none */
void metrics_dns_start(struct metrics_sess *ms);     /* a real lookup starts (not a cache hit) */
void metrics_dns_done(struct metrics *m, struct metrics_sess *ms);
void metrics_connect_start(struct metrics_sess *ms);
void metrics_connected(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress, bool tunnel);
void metrics_connect_failed(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress);
void metrics_upstream_close(struct metrics *m, struct metrics_sess *ms);
/* This request's payload so far (totals): what was not counted yet reaches the counters. */
void metrics_bytes(struct metrics *m, struct metrics_sess *ms, const struct ipaddr *egress, uint64_t up,
		   uint64_t down);

/* A finished request, once (the access log may run twice). */
struct metrics_req {
	const char *code;          /* the proxy's refusal code, or NULL */
	int status;
	enum mu_counter kind;      /* MU_REQ_FORWARD, MU_REQ_CONNECT or MU_REQ_SOCKS */
	const struct ipaddr *egress;
	uint64_t up, down;         /* payload bytes */
};
void metrics_request_done(struct metrics *m, struct metrics_sess *ms, const struct metrics_req *r);
void metrics_request_reset(struct metrics_sess *ms);   /* the next request on the connection starts */

/* ---- scraping: a sum over workers, then text */

struct metrics_user_sum {
	char name[PROXY_USER_NAME_MAX + 1];
	uint64_t c[MU_COUNT];
};

struct metrics_egress_sum {
	struct ipaddr ip;
	uint64_t c[ME_COUNT];
	int up;                    /* 1 up, 0 down, -1 not in the current config */
};

struct metrics_code_sum {
	const char *code;
	uint64_t n;
};

struct metrics_snapshot {
	uint64_t accepted, active, auth_failures;
	unsigned workers;
	bool draining;
	struct hist_sum dns, connect;
	struct metrics_code_sum *codes;
	size_t ncodes;
	struct metrics_user_sum *users;
	size_t nusers;
	struct metrics_egress_sum *egress;
	size_t negress;
};

/* Adds worker m into snap (grows the arrays; entries merge by name / address). 0 or -ENOMEM. */
int metrics_snapshot_add(struct metrics_snapshot *snap, const struct metrics *m);
/* Sets the health of ip (adding it with zero counters if no worker used it yet). */
int metrics_snapshot_egress_up(struct metrics_snapshot *snap, const struct ipaddr *ip, bool up);
void metrics_snapshot_free(struct metrics_snapshot *snap);

/* A growing text buffer capped at max bytes; past the cap it stays truncated and says so. */
struct mtext {
	char *buf;
	size_t len, cap, max;
	bool overflow;
};

void mtext_init(struct mtext *t, size_t max);
void mtext_printf(struct mtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mtext_free(struct mtext *t);

/* Prometheus text exposition format 0.0.4, sorted by user and address. */
void metrics_render(struct metrics_snapshot *snap, struct mtext *out);
void hist_render(struct mtext *out, const char *name, const char *help, const struct hist_sum *h);

/* A label value escaped for the exposition format (\\, \", \n). */
void metrics_label_escape(char *out, size_t cap, const char *s);

#endif
