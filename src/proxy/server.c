/* server.c: workers (one epoll loop per core, SO_REUSEPORT listeners), config snapshots,
 * SIGHUP reload without dropping tunnels, SIGTERM/SIGINT graceful stop (drain), sd_notify. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "net/dns.h"
#include "net/sock.h"
#include "proxy/admin.h"
#include "proxy/auth.h"
#include "proxy/inbound.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "net/tls.h"

#define TICK_MS 1000
#define DRAIN_TICK_MS 50

struct cfg_ref *cfg_ref_get(struct cfg_ref *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

void cfg_ref_put(struct cfg_ref *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		proxy_config_free(r->cfg);
		SSL_CTX_free(r->tls_ctx);
		free(r->user_conns);
		free(r);
	}
}

/* Takes cfg (freed on failure too). */
struct cfg_ref *cfg_ref_new(struct proxy_config *cfg, char *err, size_t errcap)
{
	struct cfg_ref *r = calloc(1, sizeof(*r));

	if (!r || !(r->user_conns = calloc(cfg->nusers ? cfg->nusers : 1, sizeof(*r->user_conns)))) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}
	if (cfg->ntls_listen && !(r->tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, errcap)))
		goto fail;
	r->cfg = cfg;
	atomic_init(&r->refs, 1);
	return r;
fail:
	if (r)
		free(r->user_conns);
	free(r);
	proxy_config_free(cfg);
	return NULL;
}

void listen_addr_format(const struct listen_addr *a, char *out, size_t cap)
{
	char ip[IPADDR_STRLEN];

	ipaddr_format(&a->ip, ip, sizeof(ip));
	snprintf(out, cap, a->ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
}

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
		snprintf(out, cap, "%s on %s", sp->kind == LK_SOCKS ? "SOCKS5 proxy (socks_listen)"
			 : sp->kind == LK_TLS ? "TLS proxy (tls_listen)" : "HTTP proxy (listen)", a);
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

/* A new address must be free: a socket of another process listening there (even with
 * SO_REUSEPORT, which would let our workers join it and split its clients) is refused. */
static int spec_probe(const struct listen_spec *sp, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&sp->addr.ip, sp->addr.port, &ss);
	int rc = sock_probe_free((struct sockaddr *)&ss, len);
	char what[160];

	if (rc) {
		spec_describe(sp, what, sizeof(what));
		snprintf(err, errcap, "cannot listen for the %s: %s%s", what, strerror(-rc),
			 rc == -EADDRINUSE ? " (another process listens there)" : "");
	}
	return rc;
}

static int spec_open(const struct listen_spec *sp, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&sp->addr.ip, sp->addr.port, &ss);
	int fd = sock_listen((struct sockaddr *)&ss, len, true, 4096);
	char what[160];

	if (fd < 0) {
		spec_describe(sp, what, sizeof(what));
		snprintf(err, errcap, "cannot listen for the %s: %s", what, strerror(-fd));
	}
	return fd;
}

static void listener_accept(struct acceptor *a, int fd, const struct sockaddr_storage *peer)
{
	struct listener *l = container_of(a, struct listener, acc);

	if (l->spec.kind == LK_INBOUND) {
		inbound_accept(l->w, fd, peer);   /* counts itself in px->conns */
		return;
	}
	atomic_fetch_add(&l->w->px->conns, 1);
	session_accept(l->w, fd, peer, l->spec.kind == LK_SOCKS, l->spec.kind == LK_TLS);
}

/* Takes fd. */
static int listener_add(struct worker *w, const struct listen_spec *sp, int fd)
{
	struct listener *l = NULL;

	for (size_t i = 0; i < w->nlisteners && !l; i++)
		if (!w->listeners[i].open)
			l = &w->listeners[i];
	if (!l && w->nlisteners < PROXY_MAX_LISTENERS)
		l = &w->listeners[w->nlisteners++];
	if (!l) {
		close(fd);
		return -ENOSPC;
	}
	l->w = w;
	l->spec = *sp;
	l->open = true;
	int rc = acceptor_start(w->loop, &l->acc, fd, kind_what[sp->kind], listener_accept);
	if (rc) {
		acceptor_close(w->loop, &l->acc);
		l->open = false;
	}
	return rc;
}

static void listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].open)
			acceptor_close(w->loop, &w->listeners[i].acc);
		w->listeners[i].open = false;
	}
}

/* The reloader's plan: take its snapshot, close the listeners it drops (sessions accepted
 * there carry on), start the new descriptors, relabel addresses that stay. In one wakeup, so
 * no client is accepted with the old listeners and the new config or the reverse. */
static void listeners_apply(struct worker *w)
{
	struct listen_plan *p = &w->plan;

	cfg_ref_put(w->cfg);
	w->cfg = p->cfg;   /* the reference the reloader took for us */
	p->cfg = NULL;
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		if (!l->open)
			continue;
		const struct listen_spec *keep = specs_find(p->spec, p->n, &l->spec.addr);
		if (!keep) {
			acceptor_close(w->loop, &l->acc);
			l->open = false;
		} else {
			l->spec = *keep;
			l->acc.what = kind_what[keep->kind];
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		int rc;
		if (p->fd[i] >= 0 && (rc = listener_add(w, &p->spec[i], p->fd[i])) != 0)
			log_error("worker %d: cannot start the %s: %s", w->id, kind_what[p->spec[i].kind], strerror(-rc));
		p->fd[i] = -1;
	}
	atomic_store(&w->plan_ready, false);
}

static void drain_sweep(struct worker *w);

/* Heartbeat for /healthz; while draining, the check for the last session gone. */
static void worker_tick(struct loop *loop, struct timer *t)
{
	struct worker *w = container_of(t, struct worker, tick);

	atomic_store_explicit(&w->beat_ms, loop_now(loop), memory_order_relaxed);
	if (w->draining)
		drain_sweep(w);
	if (!w->draining || loop_now(loop) - w->last_flush_ms >= TICK_MS) {
		session_metrics_tick(w);
		w->last_flush_ms = loop_now(loop);
	}
	if (w->draining && w->nsessions == 0 && !w->inbound_conns) {
		loop_stop(loop);
		return;
	}
	timer_start(loop, t, w->draining ? DRAIN_TICK_MS : TICK_MS);
}

static void drain_deadline(struct loop *loop, struct timer *t)
{
	struct worker *w = container_of(t, struct worker, drain_deadline);

	log_warn("worker %d: drain_timeout reached, closing %lu connections", w->id, w->nsessions);
	loop_stop(loop);
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

/* Bytes already in the socket: a request is on its way, so the connection is not idle. */
static bool has_unread(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* SIGTERM: accept no more, close connections idle between requests, let requests in flight
 * and tunnels finish (each forwarded exchange is the last of its connection) until the
 * deadline. */
static void drain_begin(struct worker *w)
{
	unsigned ms = w->cfg->cfg->drain_timeout_ms;

	w->draining = true;
	listeners_close(w);   /* inbound relays in progress drain like tunnels */
	for (struct session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		if (s->state == SESS_HEAD && !s->head_started && !buf_pending(s->cin) && !has_unread(s->cio.fd)) {
			s->reason = "proxy stopping";
			session_close(s);
		} else if (s->state == SESS_FORWARD || s->state == SESS_RESOLVE || s->state == SESS_CONNECT) {
			s->close_after = true;
		}
	}
	if ((w->nsessions == 0 && !w->inbound_conns) || ms == 0) {
		loop_stop(w->loop);
		return;
	}
	timer_start(w->loop, &w->drain_deadline, ms);
	timer_start(w->loop, &w->tick, DRAIN_TICK_MS);
}

static void worker_wakeup(struct loop *loop, void *arg)
{
	struct worker *w = arg;

	if (atomic_load(&w->plan_ready))
		listeners_apply(w);   /* the snapshot and the listeners switch together */
	if (atomic_load(&w->force_stop)) {
		loop_stop(loop);
		return;
	}
	if (atomic_load(&w->stopping) && !w->draining)
		drain_begin(w);
}

/* After the loop (or a failed start): everything the worker owns but its loop and metrics,
 * which are freed after the join (the main thread may still wake the loop). */
static void worker_teardown(struct worker *w)
{
	listeners_close(w);
	session_close_all(w);
	timer_stop(w->loop, &w->tick);
	timer_stop(w->loop, &w->drain_deadline);
	inbound_close_all(w);
	loop_run_deferred(w->loop);
	dns_free(w->dns);
	auth_cache_free(w->auth);
	free(w->scratch);
	pipe_pool_drain(&w->pipes);
	if (w->cfg)
		cfg_ref_put(w->cfg);
	buf_pool_trim();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	loop_run(w->loop);
	worker_teardown(w);
	atomic_fetch_add(&w->px->workers_done, 1);
	return NULL;
}

static int worker_init(struct proxy *px, struct worker *w, int id)
{
	const struct proxy_config *c = px->cfg->cfg;
	int rc;

	w->id = id;
	w->px = px;
	timer_init(&w->tick, worker_tick);   /* first: a failed start stops them in worker_teardown */
	timer_init(&w->drain_deadline, drain_deadline);
	if ((rc = loop_new(&w->loop)) != 0)
		return rc;
	if ((rc = loop_set_wakeup(w->loop, worker_wakeup, w)) != 0)
		return rc;
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
	for (size_t i = 0; i < px->nspecs; i++) {
		char err[256];
		int fd = spec_open(&px->specs[i], err, sizeof(err));
		if (fd < 0) {
			log_error("%s", err);
			return fd;
		}
		if ((rc = listener_add(w, &px->specs[i], fd)) != 0)
			return rc;
	}
	return 0;
}

/* The reloader waits for every worker to take its plan: a second reload never overwrites
 * one still being applied, and the log lines after it are true. */
static void plans_wait(struct proxy *px)
{
	struct timespec ms = { 0, 1000000L };

	for (unsigned i = 0; i < px->nworkers; i++)
		while (atomic_load(&px->workers[i].plan_ready))
			nanosleep(&ms, NULL);
}

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
 * probed and opened for every worker before anything changes, so a reload either takes
 * effect whole or is refused with the running config and listeners untouched. */
int proxy_reload(struct proxy *px, char *err, size_t errcap)
{
	struct proxy_config *cfg;
	struct listen_spec *specs = NULL;
	int *fds = NULL, admin_fd = -1, rc = -EINVAL;
	struct admin *new_admin = NULL;
	struct cfg_ref *r = NULL;
	size_t n;
	char a[IPADDR_STRLEN + 8];

	if (proxy_config_load(px->config_path, &cfg, err, errcap))
		return -EINVAL;
	if (!(r = cfg_ref_new(cfg, err, errcap)))
		return -EINVAL;
	specs = calloc(PROXY_MAX_LISTENERS, sizeof(*specs));
	fds = malloc(sizeof(*fds) * PROXY_MAX_LISTENERS * px->nworkers);
	if (!specs || !fds) {
		snprintf(err, errcap, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < PROXY_MAX_LISTENERS * px->nworkers; i++)
		fds[i] = -1;
	n = specs_of(cfg, specs);
	for (size_t i = 0; i < n; i++) {
		if (specs_find(px->specs, px->nspecs, &specs[i].addr))
			continue;
		if (spec_probe(&specs[i], err, errcap))
			goto out;
		for (unsigned k = 0; k < px->nworkers; k++)
			if ((fds[k * PROXY_MAX_LISTENERS + i] = spec_open(&specs[i], err, errcap)) < 0)
				goto out;
	}
	const struct proxy_config *old = px->cfg->cfg;
	bool admin_moved = !addr_same(&cfg->admin, &old->admin);
	if (px->admin && admin_moved && cfg->admin.port && (admin_fd = admin_listen_open(&cfg->admin)) < 0) {
		listen_addr_format(&cfg->admin, a, sizeof(a));
		snprintf(err, errcap, "cannot listen for admin_listen on %s: %s", a, strerror(-admin_fd));
		goto out;
	}
	if (!px->admin && cfg->admin.port && (admin_fd = admin_listen_open(&cfg->admin)) < 0) {
		listen_addr_format(&cfg->admin, a, sizeof(a));
		snprintf(err, errcap, "cannot listen for admin_listen on %s: %s", a, strerror(-admin_fd));
		goto out;
	}
	if (!px->admin && (cfg->admin.port || cfg->health_probe.kind)) {
		int arc = admin_start(px, r, admin_fd, &new_admin);
		admin_fd = -1;   /* taken */
		if (arc) {
			snprintf(err, errcap, "cannot start the admin thread: %s", strerror(-arc));
			goto out;
		}
	}
	/* nothing can fail from here on */
	if (px->admin) {
		admin_set_config(px->admin, r);   /* health verdicts reach the pools before any worker */
		if (admin_moved) {
			admin_set_listener(px->admin, admin_fd);
			admin_fd = -1;
		}
	} else {
		px->admin = new_admin;
	}
	for (unsigned k = 0; k < px->nworkers; k++) {
		struct worker *w = &px->workers[k];
		w->plan.n = n;
		memcpy(w->plan.spec, specs, n * sizeof(*specs));
		memcpy(w->plan.fd, &fds[k * PROXY_MAX_LISTENERS], n * sizeof(*fds));
		w->plan.cfg = cfg_ref_get(r);
		atomic_store(&w->plan_ready, true);   /* publishes the plan (seq_cst) */
		loop_wakeup(w->loop);
	}
	plans_wait(px);
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
	for (size_t i = 0; fds && i < PROXY_MAX_LISTENERS * px->nworkers; i++)
		if (rc && fds[i] >= 0)   /* on success the workers own them */
			close(fds[i]);
	if (admin_fd >= 0)
		close(admin_fd);
	if (r)
		cfg_ref_put(r);
	free(specs);
	free(fds);
	return rc;
}

static bool is_loopback(const struct ipaddr *ip)
{
	static const uint8_t v6[16] = { [15] = 1 };

	return ip->family == AF_INET ? ip->a[0] == 127 : !memcmp(ip->a, v6, 16);
}

/* sd_notify for Type=notify units; without NOTIFY_SOCKET it does nothing. */
static void notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

/* After SIGTERM/SIGINT: wait for the workers to drain; a second signal closes everything. */
static void wait_drained(struct proxy *px, const sigset_t *set)
{
	struct timespec step = { 0, 100 * 1000000L };
	bool forced = false;

	while (atomic_load(&px->workers_done) < px->nworkers) {
		int sig = sigtimedwait(set, NULL, &step);
		if (sig == SIGHUP) {
			log_warn("SIGHUP while stopping: not reloaded");
		} else if ((sig == SIGTERM || sig == SIGINT) && !forced) {
			log_warn("signal %d again: closing every connection now", sig);
			forced = true;
			for (unsigned i = 0; i < px->nworkers; i++) {
				atomic_store(&px->workers[i].force_stop, true);
				loop_wakeup(px->workers[i].loop);
			}
		}
	}
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
	sigset_t set;
	int rc = 0, sig;
	char err[512];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const struct proxy_config *c = px->cfg->cfg;

	px->nworkers = c->workers ? c->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	px->workers = calloc(px->nworkers, sizeof(*px->workers));
	if (!px->workers)
		return 1;
	/* workers never see signals: this thread waits for them */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	px->nspecs = specs_of(c, px->specs);
	for (size_t i = 0; i < px->nspecs; i++) {
		if (spec_probe(&px->specs[i], err, sizeof(err))) {
			log_error("cannot start: %s", err);
			goto fail;
		}
	}
	/* admin_listen first: when the proxy's port answers, the admin port does too */
	int admin_fd = c->admin.port ? admin_listen_open(&c->admin) : -1;
	if (admin_fd < 0 && c->admin.port) {
		char a[IPADDR_STRLEN + 8];
		listen_addr_format(&c->admin, a, sizeof(a));
		log_error("cannot start: cannot listen for admin_listen on %s: %s", a, strerror(-admin_fd));
		goto fail;
	}
	for (unsigned i = 0; i < px->nworkers; i++) {
		if ((rc = worker_init(px, &px->workers[i], (int)i)) != 0) {
			log_error("cannot start: %s", strerror(-rc));
			if (admin_fd >= 0)
				close(admin_fd);
			goto fail;
		}
	}
	if ((rc = admin_start(px, px->cfg, admin_fd, &px->admin)) != 0) {
		log_error("cannot start the admin thread: %s", strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < px->nworkers; i++)
		pthread_create(&px->workers[i].thread, NULL, worker_main, &px->workers[i]);
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
	sd_notify(0, "READY=1");
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			notify_reloading();
			if (proxy_reload(px, err, sizeof(err)))
				log_error("reload refused, the running config stays: %s", err);
			else
				log_info("reloaded %s", px->config_path);
			sd_notify(0, "READY=1");
			continue;
		}
		break;
	}
	sd_notify(0, "STOPPING=1");
	log_info("signal %d: stopping; draining connections for up to %u ms", sig, px->cfg->cfg->drain_timeout_ms);
	atomic_store(&px->draining, true);
	for (unsigned i = 0; i < px->nworkers; i++) {
		atomic_store(&px->workers[i].stopping, true);
		loop_wakeup(px->workers[i].loop);
	}
	wait_drained(px, &set);
	for (unsigned i = 0; i < px->nworkers; i++)
		pthread_join(px->workers[i].thread, NULL);
	admin_stop(px->admin);
	px->admin = NULL;
	for (unsigned i = 0; i < px->nworkers; i++) {
		loop_free(px->workers[i].loop);
		metrics_free(px->workers[i].metrics);
	}
	free(px->workers);
	cfg_ref_put(px->cfg);
	log_info("stopped");
	return 0;
fail:
	for (unsigned i = 0; i < px->nworkers; i++) {
		struct worker *w = &px->workers[i];
		if (w->loop) {
			worker_teardown(w);
			loop_free(w->loop);
		}
		metrics_free(w->metrics);
	}
	free(px->workers);
	cfg_ref_put(px->cfg);
	return 1;
}
