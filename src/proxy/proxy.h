/* proxy.h: the forward proxy's runtime (server.c): one worker per core, each with its own epoll
 * loop, listener (SO_REUSEPORT), resolver, credential cache and relay scratch space. Nothing on
 * the data path is shared between workers but the read-only config and a few atomics. What a
 * connection does is declared by its own header (session.h, inbound.h). */
#ifndef IPLOCK_PROXY_H
#define IPLOCK_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/acceptor.h"
#include "net/relay.h"
#include "proxy/config.h"

/* A config snapshot shared by reference: every session keeps the one it started with, so a
 * reload never changes the rules under a request in flight. */
struct cfg_ref {
	struct proxy_config *cfg;
	atomic_int refs;
	atomic_uint *user_conns;      /* per user index: open connections (max_conns) */
	struct ssl_ctx_st *tls_ctx;   /* tls_listen: built from tls_cert/tls_key at load */
};

struct cfg_ref *cfg_ref_new(struct proxy_config *cfg, char *err, size_t errcap);

struct cfg_ref *cfg_ref_get(struct cfg_ref *r);
void cfg_ref_put(struct cfg_ref *r);

struct proxy;
struct session;
struct inbound_conn;

enum listener_kind {
	LK_HTTP = 0,                  /* listen: HTTP (and SOCKS5 with socks_sniff) */
	LK_SOCKS,                     /* socks_listen: SOCKS5 only */
	LK_TLS,                       /* tls_listen: TLS first, then HTTP or SOCKS5 */
	LK_INBOUND,                   /* [inbound NAME] listen */
};

#define PROXY_MAX_LISTENERS (3 * PROXY_MAX_LISTEN + PROXY_MAX_INBOUND)

/* One address the proxy listens on; the address is the key (the config refuses duplicates). */
struct listen_spec {
	enum listener_kind kind;
	struct listen_addr addr;
	char name[PROXY_USER_NAME_MAX + 1];   /* the inbound endpoint's name */
};

struct listener {
	struct acceptor acc;
	struct worker *w;
	struct listen_spec spec;
	bool open;
};

/* A reload for one worker, handed over by the main thread: the new snapshot and every address
 * the new config listens on, with a fresh descriptor for a new address (-1: keep the open
 * one). Addresses missing from it are closed; connections already accepted carry on. */
struct listen_plan {
	struct cfg_ref *cfg;          /* the new snapshot, one reference for the worker */
	size_t n;
	struct listen_spec spec[PROXY_MAX_LISTENERS];
	int fd[PROXY_MAX_LISTENERS];
};

struct worker {
	int id;
	struct proxy *px;
	pthread_t thread;
	struct loop *loop;
	struct dns *dns;
	struct auth_cache *auth;
	struct cfg_ref *cfg;          /* the worker's current snapshot */
	struct listener listeners[PROXY_MAX_LISTENERS];
	size_t nlisteners;            /* slots in use at some point (a closed one is reused) */
	struct listen_plan plan;      /* written by the reloader while plan_ready is false */
	atomic_bool plan_ready;       /* set by the reloader, cleared by the worker once applied */
	char *scratch;                /* RELAY_SCRATCH bytes for copy relays */
	struct pipe_pool pipes;       /* idle splice pipes */
	atomic_bool stopping;
	unsigned long nsessions;
	struct session *sessions;     /* every open session, to close them all at stop */
	struct metrics *metrics;      /* written by this worker only, read by the admin thread */
	struct timer tick;            /* heartbeat for /healthz; drain checks while stopping */
	_Atomic uint64_t beat_ms;     /* loop time of the last tick */
	uint64_t last_flush_ms;       /* tunnel bytes last added to the metrics */
	bool draining;                /* SIGTERM: listeners closed, sessions finishing */
	struct timer drain_deadline;
	atomic_bool force_stop;       /* a second signal: close everything now */
	struct inbound_conn *inbound_conns;
};

struct proxy {
	struct cfg_ref *_Atomic cfg;
	struct worker *workers;
	unsigned nworkers;
	int log_fd;                   /* access log; -1 = off */
	atomic_uint conns;            /* open client connections, all workers */
	atomic_ulong next_id;
	const char *config_path;
	const char *dns_servers;
	struct admin *admin;          /* admin listener and health prober; NULL when neither is set */
	struct listen_spec specs[PROXY_MAX_LISTENERS];   /* what every worker listens on now */
	size_t nspecs;
	atomic_bool draining;
	atomic_uint workers_done;
};

int proxy_run(struct proxy *px);            /* blocks until SIGTERM/SIGINT; exit status */
int proxy_reload(struct proxy *px, char *err, size_t errcap);

/* "127.0.0.1:3128", "[::1]:3128" */
void listen_addr_format(const struct listen_addr *a, char *out, size_t cap);

#endif
