/* server.h (net): the runtime every iplock server shares. N worker threads, each with its own
 * loop (core/loop) and SO_REUSEPORT listeners over net/acceptor (EMFILE back-off); a probe
 * without SO_REUSEPORT first, so a second process cannot join the port; signals taken by the
 * main thread only (SIGHUP reload, SIGTERM/SIGINT drain, a second one forces); reference-
 * counted config snapshots and listener changes handed to every worker through its wakeup;
 * drain with a deadline; sd_notify READY/RELOADING/STOPPING. The product supplies callbacks. */
#ifndef IPLOCK_NET_SERVER_H
#define IPLOCK_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/loop.h"

#define SERVER_MAX_LISTENERS 64

/* One address; the address is the key: a reload keeps the descriptors of the addresses
 * that stay and only relabels them (what, tag). */
struct server_listen {
	struct sockaddr_storage addr;
	socklen_t len;
	int backlog;
	const char *what;          /* static: names the listener in the acceptor's log lines */
	void *tag;                 /* the product's: handed to accept(); valid while listed */
};

struct server_ops {
	/* On the main thread, before the threads start: the product's per-worker state. */
	int (*worker_init)(void *arg, unsigned id, struct loop *loop, void **wstate);
	/* Worker thread: owns fd from then on. */
	void (*accept)(void *wstate, void *tag, int fd, const struct sockaddr_storage *peer);
	/* Worker thread: a new snapshot with one reference for the worker (before the listener
	 * changes of the same reload take effect, in the same wakeup). Optional. */
	void (*snapshot)(void *wstate, void *snap);
	void (*snap_get)(void *snap);            /* any thread: one more reference. Optional. */
	void (*snap_put)(void *snap);
	/* Worker thread, at stop (listeners closed already): close idle connections. Optional. */
	void (*drain)(void *wstate);
	bool (*busy)(void *wstate);              /* while draining: connections left? Optional. */
	void (*drain_expired)(void *wstate);     /* the deadline came with connections left. Optional. */
	void (*teardown)(void *wstate);          /* worker thread after its loop (or main, failed start) */
	/* Main thread: SIGHUP (sd_notify RELOADING before, READY after). Optional. */
	void (*reload)(void *arg);
	/* Main thread: SIGTERM/SIGINT; returns the drain deadline in ms (0: stop now). Optional:
	 * without it the deadline is the config's stop_ms. */
	unsigned (*stop)(void *arg, int sig);
};

struct server_config {
	const struct server_ops *ops;
	void *arg;
	unsigned nworkers;
	bool reuseport;            /* SO_REUSEPORT (and the probe before it); needed with >1 worker */
	/* a server inside another (the proxy's admin listener): it leaves signals, SIGPIPE and
	 * sd_notify to its owner, which runs it with server_spawn and ends it with server_stop */
	bool embedded;
	unsigned stop_ms;          /* the drain deadline of a server whose ops have no stop */
};

struct server;
struct server_plan;

/* Blocks SIGHUP/SIGTERM/SIGINT for every thread started from here on and ignores SIGPIPE. */
int server_new(const struct server_config *cfg, struct server **out);   /* 0 or -errno */

/* Probes every address, makes each worker (worker_init) with its listeners and snap (one
 * reference per worker, snap_get). 0, or -errno with *bad the failing listener's index
 * (SIZE_MAX when it was not a listener). Threads are not started yet. */
int server_start(struct server *s, const struct server_listen *v, size_t n, void *snap, size_t *bad);

/* server_new then server_start on one listener (sa, what, backlog; no snapshot), for a server
 * with no reload of its listeners (echo, console): 0, or -errno with a one-line reason in err
 * ("cannot listen on TEXT: ...", saying so when another process holds the port). *out is set
 * once the server exists, so the caller's cleanup frees it (server_free) on either outcome. */
int server_open_one(const struct server_config *cfg, const struct sockaddr *sa, socklen_t len,
		    int backlog, const char *what, const char *text, struct server **out, char *err,
		    size_t cap);

/* Starts the threads, says READY=1 and takes signals on this thread until the workers are
 * done after a stop. 0 or -errno. */
int server_run(struct server *s);

/* An embedded server: starts the threads and returns (0 or -errno; none runs on failure). */
int server_spawn(struct server *s);

/* An embedded server: drain (the ops' drain, busy, drain_expired) with a deadline of drain_ms
 * (0: close now), then join the threads. */
void server_stop(struct server *s, unsigned drain_ms);

/* Frees every worker's loop (after server_run, or after a failed server_start). */
void server_free(struct server *s);

/* A reload from the reload callback, in two steps so the product can do work that may fail
 * in between. server_plan_new probes and opens every new address for every worker (nothing
 * changes yet): 0, or -errno with *bad the failing index. server_plan_commit hands each worker
 * its listeners and snap (a reference each) and returns once all have taken it. */
int server_plan_new(struct server *s, const struct server_listen *v, size_t n, struct server_plan **out,
		    size_t *bad);
void server_plan_commit(struct server *s, struct server_plan *p, void *snap);   /* frees p */
void server_plan_free(struct server_plan *p);   /* drop a plan not committed; NULL is fine */

#endif
