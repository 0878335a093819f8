/* proxy.h: the forward proxy's runtime (server.c): one worker per core, each with its own epoll
 * loop, listener (SO_REUSEPORT), resolver, credential cache and relay scratch space. Nothing on
 * the data path is shared between workers but the read-only config and a few atomics. What a
 * connection does is declared by its own headers (dispatch.h, session.h, inbound.h). */
#ifndef IPLOCK_PROXY_H
#define IPLOCK_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/relay.h"
#include "proxy/cfgref.h"
#include "proxy/config.h"

struct proxy;
struct server;
struct session;
struct inbound_conn;
struct usage_tab;

/* A worker's product state; its thread, loop, listeners and drain are net/server's. */
struct worker {
	int id;
	struct proxy *px;
	struct loop *loop;
	struct dns *dns;
	struct auth_cache *auth;
	struct cfg_ref *cfg;          /* the worker's current snapshot */
	char *scratch;                /* RELAY_SCRATCH bytes for copy relays */
	struct pipe_pool pipes;       /* idle splice pipes */
	unsigned long nsessions;
	struct session *sessions;     /* every open session, to close them all at stop */
	struct metrics *metrics;      /* written by this worker only, read by the admin thread */
	struct timer tick;            /* heartbeat for /healthz, metrics flush */
	_Atomic uint64_t beat_ms;     /* loop time of the last tick */
	bool draining;                /* SIGTERM: listeners closed, sessions finishing */
	uint64_t pp_log_ms;           /* next time an untrusted balancer may be logged */
	struct inbound_conn *inbound_conns;
};

#define PROXY_MAX_LISTENERS (3 * PROXY_MAX_LISTEN + PROXY_MAX_INBOUND)

enum listener_kind {
	LK_HTTP = 0,                  /* listen: HTTP (and SOCKS5 with socks_sniff) */
	LK_SOCKS,                     /* socks_listen: SOCKS5 only */
	LK_TLS,                       /* tls_listen: TLS first, then HTTP or SOCKS5 */
	LK_INBOUND,                   /* [inbound NAME] listen */
};

/* One address the proxy listens on; the address is the key (the config refuses duplicates). */
struct listen_spec {
	enum listener_kind kind;
	struct listen_addr addr;
	char name[PROXY_USER_NAME_MAX + 1];   /* the inbound endpoint's name */
};

struct proxy {
	struct cfg_ref *_Atomic cfg;
	struct server *srv;           /* net/server: threads, listeners, signals, drain */
	struct worker *workers;
	unsigned nworkers;
	atomic_uint conns;            /* open client connections, all workers */
	atomic_ulong next_id;
	const char *config_path;
	const char *dns_servers;
	struct admin *admin;          /* admin listener and health prober; NULL when neither is set */
	struct listen_spec specs[PROXY_MAX_LISTENERS];   /* what every worker listens on now */
	size_t nspecs;
	atomic_bool draining;
	struct fleet *fleet;          /* users_db: users, usage and quotas from the store; or NULL */
	struct usage_tab *usage;      /* users_db: the workers' usage tables by worker id (usage.h); or NULL */
	pthread_mutex_t reload_mu;    /* one reload at a time: SIGHUP's or a store change's */
};

int proxy_run(struct proxy *px);            /* blocks until SIGTERM/SIGINT; exit status */
int proxy_reload(struct proxy *px, char *err, size_t errcap);

#endif
