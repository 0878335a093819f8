/* server.c: the proxy on net/server: per-worker state (resolver, credential cache, relay
 * scratch, metrics), config snapshots (cfgref.c) at load, listener sets and their reload with the admin
 * thread, and what a drain closes. Threads, signals, listeners and sd_notify are net/server's. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "net/dns.h"
#include "net/server.h"
#include "proxy/admin.h"
#include "proxy/dispatch.h"
#include "proxy/auth.h"
#include "proxy/fleet.h"
#include "proxy/inbound.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "net/tls.h"

#define TICK_MS 1000
_Static_assert(PROXY_MAX_LISTENERS <= SERVER_MAX_LISTENERS, "net/server holds every listener");

static const char *const kind_what[] = {
	[LK_HTTP] = "listener", [LK_SOCKS] = "socks listener", [LK_TLS] = "tls listener",
	[LK_INBOUND] = "inbound listener",
};

/* "HTTP proxy on 127.0.0.1:3128", "inbound web on 127.0.0.1:8443" (for log lines) */
static void spec_describe(const struct listen_spec *sp, char *out, size_t cap)
{
	char a[IPADDR_STRLEN + 8];

	listen_addr_format(&sp->addr, a, sizeof(a));
	if (sp->kind == LK_INBOUND)
		snprintf(out, cap, "inbound %s on %s", sp->name, a);
	else
		snprintf(out, cap, "%s%s on %s", sp->kind == LK_SOCKS ? "SOCKS5 proxy (socks_listen"
			 : sp->kind == LK_TLS ? "TLS proxy (tls_listen" : "HTTP proxy (listen",
			 sp->addr.pp == PP_V1 ? ", PROXY v1)" : sp->addr.pp == PP_V2 ? ", PROXY v2)" : ")", a);
}

/* Every address the config listens on, admin_listen apart (the admin thread owns that). */
static size_t specs_of(const struct proxy_config *c, struct listen_spec *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out) * PROXY_MAX_LISTENERS);
	for (size_t i = 0; i < c->nlisten; i++)
		out[n++] = (struct listen_spec){ .kind = LK_HTTP, .addr = c->listen[i] };
	for (size_t i = 0; i < c->nsocks_listen; i++)
		out[n++] = (struct listen_spec){ .kind = LK_SOCKS, .addr = c->socks_listen[i] };
	for (size_t i = 0; i < c->ntls_listen; i++)
		out[n++] = (struct listen_spec){ .kind = LK_TLS, .addr = c->tls_listen[i] };
	for (size_t i = 0; i < c->ninbound; i++) {
		out[n] = (struct listen_spec){ .kind = LK_INBOUND, .addr = c->inbound[i].listen };
		snprintf(out[n].name, sizeof(out[n].name), "%s", c->inbound[i].name);
		n++;
	}
	return n;
}

static bool addr_same(const struct listen_addr *a, const struct listen_addr *b)
{
	return a->port == b->port && ipaddr_equal(&a->ip, &b->ip);
}

static const struct listen_spec *specs_find(const struct listen_spec *v, size_t n, const struct listen_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_same(&v[i].addr, a))
			return &v[i];
	return NULL;
}

/* The net/server listener for a spec: the kind rides in the tag. */
static struct server_listen spec_listen(const struct listen_spec *sp)
{
	/* the tag carries the kind and the listener's proxy_protocol: a reload relabels both */
	uintptr_t tag = (uintptr_t)sp->kind | (uintptr_t)sp->addr.pp << 4;
	struct server_listen l = { .backlog = 4096, .what = kind_what[sp->kind], .tag = (void *)tag };

	l.len = ipaddr_to_sockaddr(&sp->addr.ip, sp->addr.port, &l.addr);
	return l;
}

/* "cannot listen for the HTTP proxy (listen) on 127.0.0.1:3128: Address already in use (...)" */
static void spec_error(const struct listen_spec *sp, int rc, char *err, size_t errcap)
{
	char what[160];

	spec_describe(sp, what, sizeof(what));
	snprintf(err, errcap, "cannot listen for the %s: %s%s", what, strerror(-rc),
		 rc == -EADDRINUSE ? " (another process listens there)" : "");
}

static void px_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *peer)
{
	struct worker *w = wstate;
	enum listener_kind kind = (enum listener_kind)((uintptr_t)tag & 0xf);
	enum pp_version pp = (enum pp_version)((uintptr_t)tag >> 4);

	if (kind == LK_INBOUND) {
		inbound_accept(w, fd, peer);   /* counts itself in px->conns */
		return;
	}
	atomic_fetch_add(&w->px->conns, 1);
	session_accept(w, fd, peer, kind == LK_SOCKS, kind == LK_TLS, pp);
}

static void px_snap_get(void *snap)
{
	cfg_ref_get(snap);
}

static void px_snap_put(void *snap)
{
	cfg_ref_put(snap);
}

/* A reload's snapshot, taken in the same wakeup as its listener changes. */
static void px_snapshot(void *wstate, void *snap)
{
	struct worker *w = wstate;

	if (w->px->fleet)
		fleet_snapshot(w, ((struct cfg_ref *)snap)->cfg);   /* removed users' sessions end */
	cfg_ref_put(w->cfg);
	w->cfg = snap;   /* the reference net/server took for us */
}

/* Heartbeat for /healthz and the metrics flush. */
static void worker_tick(struct loop *loop, struct timer *t)
{
	struct worker *w = container_of(t, struct worker, tick);

	atomic_store_explicit(&w->beat_ms, loop_now(loop), memory_order_relaxed);
	session_metrics_tick(w);
	timer_start(loop, t, TICK_MS);
}

/* While draining: a tunnel whose client is gone for good (reset, or both directions shut)
 * can deliver nothing more, so it does not hold the drain open. */
static void drain_sweep(struct worker *w)
{
	for (struct session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		if (s->state != SESS_TUNNEL || s->cio.fd == -1)
			continue;
		struct pollfd p = { .fd = s->cio.fd, .events = 0 };
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
			s->reason = "client gone while draining";
			session_close(s);
		}
	}
}

static bool px_busy(void *wstate)
{
	struct worker *w = wstate;

	drain_sweep(w);
	return w->nsessions || w->inbound_conns;
}

static void px_drain_expired(void *wstate)
{
	struct worker *w = wstate;

	log_warn("worker %d: drain_timeout reached, closing %lu connections", w->id, w->nsessions);
}

/* Bytes already in the socket: a request is on its way, so the connection is not idle. */
static bool has_unread(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* SIGTERM (listeners closed by net/server; inbound relays in progress drain like tunnels):
 * close connections idle between requests, let requests in flight and tunnels finish (each
 * forwarded exchange is the last of its connection). */
static void px_drain(void *wstate)
{
	struct worker *w = wstate;

	w->draining = true;
	for (struct session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		if (s->state == SESS_HEAD && !s->head_started && !buf_pending(s->cin) && !has_unread(s->cio.fd)) {
			s->reason = "proxy stopping";
			session_close(s);
		} else if (s->state == SESS_FORWARD || s->state == SESS_RESOLVE || s->state == SESS_CONNECT) {
			s->close_after = true;
		}
	}
}

/* After the loop (or a failed start): everything the worker owns but its loop (net/server's)
 * and metrics, which are freed after the admin thread stops. */
static void px_teardown(void *wstate)
{
	struct worker *w = wstate;

	session_close_all(w);
	timer_stop(w->loop, &w->tick);
	inbound_close_all(w);
	loop_run_deferred(w->loop);
	dns_free(w->dns);
	w->dns = NULL;
	auth_cache_free(w->auth);
	w->auth = NULL;
	free(w->scratch);
	w->scratch = NULL;
	pipe_pool_drain(&w->pipes);
	if (w->cfg)
		cfg_ref_put(w->cfg);
	w->cfg = NULL;
	buf_pool_trim();
	session_pool_trim();
}

static int worker_setup(struct proxy *px, struct worker *w)
{
	const struct proxy_config *c = px->cfg->cfg;
	int rc;

	if ((rc = dns_new(w->loop, px->dns_servers, c->connect_timeout_ms / 2, &w->dns)) != 0)
		return rc;
	if (!(w->auth = auth_cache_new()))
		return -ENOMEM;
	if (!(w->scratch = malloc(RELAY_SCRATCH)))
		return -ENOMEM;
	if (!(w->metrics = metrics_new()))
		return -ENOMEM;
	atomic_store(&w->beat_ms, loop_clock_ms());
	if ((rc = timer_start(w->loop, &w->tick, TICK_MS)) != 0)
		return rc;
	w->cfg = cfg_ref_get(px->cfg);
	return 0;
}

static int px_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct proxy *px = arg;
	struct worker *w = &px->workers[id];
	int rc;

	w->id = (int)id;
	w->px = px;
	w->loop = loop;
	timer_init(&w->tick, worker_tick);
	if ((rc = worker_setup(px, w)) != 0) {
		px_teardown(w);
		return rc;
	}
	*wstate = w;
	return 0;
}

static void px_reload(void *arg)
{
	struct proxy *px = arg;
	char err[512];

	if (proxy_reload(px, err, sizeof(err)))
		log_error("reload refused, the running config stays: %s", err);
	else
		log_info("reloaded %s", px->config_path);
}

static unsigned px_stop(void *arg, int sig)
{
	struct proxy *px = arg;
	pthread_mutex_lock(&px->reload_mu);   /* a store change may swap the snapshot */
	unsigned ms = px->cfg->cfg->drain_timeout_ms;
	pthread_mutex_unlock(&px->reload_mu);

	log_info("signal %d: stopping; draining connections for up to %u ms", sig, ms);
	atomic_store(&px->draining, true);
	return ms;
}

static const struct server_ops px_ops = {
	.worker_init = px_worker_init, .accept = px_accept, .snapshot = px_snapshot,
	.snap_get = px_snap_get, .snap_put = px_snap_put, .drain = px_drain, .busy = px_busy,
	.drain_expired = px_drain_expired, .teardown = px_teardown, .reload = px_reload, .stop = px_stop,
};

static void reload_log_listeners(const struct listen_spec *old, size_t nold, const struct listen_spec *neu,
				 size_t nnew)
{
	char what[160], was[160];

	for (size_t i = 0; i < nold; i++) {
		const struct listen_spec *n = specs_find(neu, nnew, &old[i].addr);
		spec_describe(&old[i], was, sizeof(was));
		if (!n) {
			log_info("reload: stopped listening for the %s (connections accepted there carry on)", was);
			continue;
		}
		spec_describe(n, what, sizeof(what));
		if (strcmp(what, was))
			log_info("reload: the %s now serves the %s", was, what);
	}
	for (size_t i = 0; i < nnew; i++) {
		if (specs_find(old, nold, &neu[i].addr))
			continue;
		spec_describe(&neu[i], what, sizeof(what));
		log_info("reload: listening for the %s", what);
	}
}

/* New config, new listeners: every address the running process does not listen on yet is
 * probed and opened for every worker before anything changes (net/server's plan), so a reload
 * either takes effect whole or is refused with the running config and listeners untouched. */
static int reload_locked(struct proxy *px, bool reread, char *err, size_t errcap)
{
	struct proxy_config *cfg;
	struct listen_spec *specs = NULL;
	struct server_listen *sl = NULL;
	struct server_plan *plan = NULL;
	int rc = -EINVAL;
	struct admin *new_admin = NULL;
	struct server_plan *admin_plan_new = NULL;
	struct cfg_ref *r = NULL;
	size_t n, bad;
	char a[IPADDR_STRLEN + 8];

	if (px->fleet ? fleet_build(px->fleet, reread, &cfg, err, errcap) != 0 :
	    proxy_config_load(px->config_path, &cfg, err, errcap) != NULL)
		return -EINVAL;
	if (!(r = cfg_ref_new(cfg, err, errcap)))
		return -EINVAL;
	if (cfg_ref_open_log(r, px->cfg, err, errcap))
		goto out;
	specs = calloc(PROXY_MAX_LISTENERS, sizeof(*specs));
	sl = calloc(PROXY_MAX_LISTENERS, sizeof(*sl));
	if (!specs || !sl) {
		snprintf(err, errcap, "out of memory");
		goto out;
	}
	n = specs_of(cfg, specs);
	for (size_t i = 0; i < n; i++)
		sl[i] = spec_listen(&specs[i]);
	if ((rc = server_plan_new(px->srv, sl, n, &plan, &bad)) != 0) {
		if (bad < n)
			spec_error(&specs[bad], rc, err, errcap);
		else
			snprintf(err, errcap, "cannot open the listeners: %s", strerror(-rc));
		goto out;
	}
	rc = -EINVAL;
	const struct proxy_config *old = px->cfg->cfg;
	bool admin_moved = !addr_same(&cfg->admin, &old->admin);
	if (px->admin && admin_plan(px->admin, cfg, &admin_plan_new, err, errcap))
		goto out;
	if (!px->admin && admin_open(px, r, &new_admin, err, errcap))
		goto out;
	if (new_admin && admin_start(new_admin)) {
		snprintf(err, errcap, "cannot start the admin thread");
		goto out;
	}
	/* nothing can fail from here on */
	if (px->admin) {
		admin_commit(px->admin, admin_plan_new, r);   /* before any worker sees r */
		admin_plan_new = NULL;
	} else {
		px->admin = new_admin;
		new_admin = NULL;
	}
	server_plan_commit(px->srv, plan, r);   /* returns once every worker has taken it */
	plan = NULL;
	reload_log_listeners(px->specs, px->nspecs, specs, n);
	if (admin_moved) {
		char was[IPADDR_STRLEN + 8];
		listen_addr_format(&old->admin, was, sizeof(was));
		listen_addr_format(&cfg->admin, a, sizeof(a));
		if (!cfg->admin.port)
			log_info("reload: admin_listen %s closed", was);
		else
			log_info("reload: admin (/metrics, /healthz) now on %s%s%s", a, old->admin.port ? ", was " : "",
				 old->admin.port ? was : "");
	}
	memcpy(px->specs, specs, n * sizeof(*specs));
	px->nspecs = n;
	struct cfg_ref *oldref = px->cfg;
	px->cfg = r;
	r = NULL;
	cfg_ref_put(oldref);
	rc = 0;
out:
	server_plan_free(plan);
	server_plan_free(admin_plan_new);
	admin_stop(new_admin);
	if (r)
		cfg_ref_put(r);
	free(specs);
	free(sl);
	return rc;
}

int proxy_reload(struct proxy *px, char *err, size_t errcap)
{
	pthread_mutex_lock(&px->reload_mu);
	int rc = reload_locked(px, true, err, errcap);
	pthread_mutex_unlock(&px->reload_mu);
	return rc;
}

/* users_db changed: the same config text with the store's users now (the fleet's feed thread). */
static int proxy_reload_users(struct proxy *px, char *err, size_t errcap)
{
	pthread_mutex_lock(&px->reload_mu);
	int rc = reload_locked(px, false, err, errcap);
	pthread_mutex_unlock(&px->reload_mu);
	return rc;
}

static bool is_loopback(const struct ipaddr *ip)
{
	static const uint8_t v6[16] = { [15] = 1 };

	return ip->family == AF_INET ? ip->a[0] == 127 : !memcmp(ip->a, v6, 16);
}

/* Two descriptors per tunnel (four with splice pipes in flight): take the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int proxy_run(struct proxy *px)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const struct proxy_config *c = px->cfg->cfg;
	struct server_listen sl[PROXY_MAX_LISTENERS];
	int rc;
	size_t bad;
	char err[512];

	px->nworkers = c->workers ? c->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	px->workers = calloc(px->nworkers, sizeof(*px->workers));
	struct server_config scfg = { .ops = &px_ops, .arg = px, .nworkers = px->nworkers, .reuseport = true };
	/* before any thread (the admin's too): signals are for net/server's main thread only */
	if (!px->workers || server_new(&scfg, &px->srv)) {
		log_error("cannot start: out of memory");
		goto fail;
	}
	raise_fd_limit();
	px->nspecs = specs_of(c, px->specs);
	for (size_t i = 0; i < px->nspecs; i++)
		sl[i] = spec_listen(&px->specs[i]);
	/* admin_listen first: when the proxy's port answers, the admin port does too */
	if (admin_open(px, px->cfg, &px->admin, err, sizeof(err))) {
		log_error("cannot start: %s", err);
		goto fail;
	}
	if ((rc = server_start(px->srv, sl, px->nspecs, NULL, &bad)) != 0) {
		if (bad < px->nspecs)
			spec_error(&px->specs[bad], rc, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s", strerror(-rc));
		log_error("cannot start: %s", err);
		goto fail;
	}
	if ((rc = admin_start(px->admin)) != 0) {
		log_error("cannot start the admin thread: %s", strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < px->nspecs; i++) {
		char what[160];
		spec_describe(&px->specs[i], what, sizeof(what));
		if (px->specs[i].kind == LK_INBOUND) {
			const struct proxy_inbound *ib = &c->inbound[i - (c->nlisten + c->nsocks_listen + c->ntls_listen)];
			log_info("listening for the %s (%zu sni routes%s%s)", what, ib->nroutes,
				 ib->has_forward ? ", default forward" : "", ib->proxy_protocol == PP_V2 ? ", PROXY v2" : "");
		} else {
			log_info("listening for the %s (%u workers, relay %s)", what, px->nworkers, c->relay);
		}
	}
	if (c->admin.port) {
		char a[IPADDR_STRLEN + 8];
		listen_addr_format(&c->admin, a, sizeof(a));
		log_info("admin (/metrics, /healthz) on %s", a);
		if (!is_loopback(&c->admin.ip))
			log_warn("admin_listen is not a loopback address: metrics show user names and traffic");
	}
	if (px->fleet && (rc = fleet_start(px->fleet, proxy_reload_users)) != 0) {
		log_error("cannot start: users_db threads: %s", strerror(-rc));
		goto fail;
	}
	rc = server_run(px->srv);   /* READY=1, signals, drain: returns once every worker is done */
	fleet_stop(px->fleet);      /* the last usage reaches the store */
	admin_stop(px->admin);
	px->admin = NULL;
	server_free(px->srv);
	for (unsigned i = 0; i < px->nworkers; i++)
		metrics_free(px->workers[i].metrics);
	free(px->workers);
	cfg_ref_put(px->cfg);
	fleet_free(px->fleet);
	px->fleet = NULL;
	if (rc) {
		log_error("cannot start: %s", strerror(-rc));
		return 1;
	}
	log_info("stopped");
	return 0;
fail:
	admin_stop(px->admin);
	px->admin = NULL;
	server_free(px->srv);
	for (unsigned i = 0; px->workers && i < px->nworkers; i++)
		metrics_free(px->workers[i].metrics);
	free(px->workers);
	cfg_ref_put(px->cfg);
	fleet_free(px->fleet);
	px->fleet = NULL;
	return 1;
}
