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

static void listener_accept(struct acceptor *a, int fd, const struct sockaddr_storage *peer)
{
	struct listener *l = container_of(a, struct listener, acc);

	atomic_fetch_add(&l->w->px->conns, 1);
	session_accept(l->w, fd, peer, l->socks, l->tls);
}

static void listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		acceptor_close(w->loop, &w->listeners[i].acc);
	}
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
		metrics_tick(w);
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
	listeners_close(w);
	inbound_stop(w);   /* inbound relays in progress drain like tunnels */
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
	struct cfg_ref *next = atomic_exchange(&w->next_cfg, NULL);

	if (next) {
		cfg_ref_put(w->cfg);
		w->cfg = next;   /* the reference the reloader took for us */
	}
	if (atomic_load(&w->force_stop)) {
		loop_stop(loop);
		return;
	}
	if (atomic_load(&w->stopping) && !w->draining)
		drain_begin(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	loop_run(w->loop);
	listeners_close(w);
	session_close_all(w);
	timer_stop(w->loop, &w->tick);
	timer_stop(w->loop, &w->drain_deadline);
	inbound_close_all(w);
	inbound_stop(w);
	loop_run_deferred(w->loop);
	dns_free(w->dns);
	auth_cache_free(w->auth);
	free(w->scratch);
	pipe_pool_drain(&w->pipes);
	cfg_ref_put(w->cfg);
	struct cfg_ref *next = atomic_exchange(&w->next_cfg, NULL);
	if (next)
		cfg_ref_put(next);
	/* the loop itself is freed after the join: the main thread may still wake it */
	buf_pool_trim();
	atomic_fetch_add(&w->px->workers_done, 1);
	return NULL;
}

static int worker_init(struct proxy *px, struct worker *w, int id)
{
	const struct proxy_config *c = px->cfg->cfg;
	int rc;

	w->id = id;
	w->px = px;
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
	timer_init(&w->tick, worker_tick);
	timer_init(&w->drain_deadline, drain_deadline);
	atomic_store(&w->beat_ms, loop_clock_ms());
	if ((rc = timer_start(w->loop, &w->tick, TICK_MS)) != 0)
		return rc;
	w->cfg = cfg_ref_get(px->cfg);
	for (size_t i = 0; i < c->nlisten + c->nsocks_listen + c->ntls_listen; i++) {
		bool socks = i >= c->nlisten && i < c->nlisten + c->nsocks_listen;
		bool tls = i >= c->nlisten + c->nsocks_listen;
		const struct listen_addr *la = socks ? &c->socks_listen[i - c->nlisten]
					   : tls ? &c->tls_listen[i - c->nlisten - c->nsocks_listen]
						 : &c->listen[i];
		struct sockaddr_storage ss;
		socklen_t len = ipaddr_to_sockaddr(&la->ip, la->port, &ss);
		int fd = sock_listen((struct sockaddr *)&ss, len, true, 4096);
		if (fd < 0)
			return fd;
		struct listener *l = &w->listeners[w->nlisteners++];
		l->w = w;
		l->socks = socks;
		l->tls = tls;
		if ((rc = acceptor_start(w->loop, &l->acc, fd, socks ? "socks listener" : tls ? "tls listener" : "listener",
					 listener_accept)) != 0)
			return rc;
	}
	return inbound_listen(w);
}

int proxy_reload(struct proxy *px, char *err, size_t errcap)
{
	struct proxy_config *cfg;

	if (proxy_config_load(px->config_path, &cfg, err, errcap))
		return -EINVAL;
	struct cfg_ref *r = cfg_ref_new(cfg, err, errcap);
	if (!r)
		return -EINVAL;
	const struct proxy_config *old = px->cfg->cfg;
	if (cfg->nlisten != old->nlisten || memcmp(cfg->listen, old->listen, sizeof(cfg->listen[0]) * cfg->nlisten))
		log_warn("reload: listen addresses changed; they take effect at the next restart");
	if (memcmp(&cfg->admin, &old->admin, sizeof(cfg->admin)) ||
	    (!px->admin && cfg->health_probe.kind))
		log_warn("reload: admin_listen changed (or health probing newly set); that takes effect at the next restart");
	if (px->admin)
		admin_set_config(px->admin, r);   /* health verdicts reach the pools before any worker */
	if (cfg->ninbound != old->ninbound)
		log_warn("reload: inbound sections added or removed; listeners change at the next restart");
	for (unsigned i = 0; i < px->nworkers; i++) {
		struct worker *w = &px->workers[i];
		struct cfg_ref *prev = atomic_exchange(&w->next_cfg, cfg_ref_get(r));
		if (prev)
			cfg_ref_put(prev);
		loop_wakeup(w->loop);
	}
	struct cfg_ref *oldref = px->cfg;
	px->cfg = r;
	cfg_ref_put(oldref);
	return 0;
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
	for (unsigned i = 0; i < px->nworkers; i++) {
		if ((rc = worker_init(px, &px->workers[i], (int)i)) != 0) {
			log_error("cannot start: %s", strerror(-rc));
			return 1;
		}
	}
	if ((rc = admin_start(px, &px->admin)) != 0) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&c->admin.ip, ip, sizeof(ip));
		log_error("cannot start the admin listener on %s port %u: %s", ip, c->admin.port, strerror(-rc));
		return 1;
	}
	for (unsigned i = 0; i < px->nworkers; i++)
		pthread_create(&px->workers[i].thread, NULL, worker_main, &px->workers[i]);
	for (size_t i = 0; i < c->nlisten; i++) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&c->listen[i].ip, ip, sizeof(ip));
		log_info("listening on %s%s%s:%u (%u workers, relay %s)", c->listen[i].ip.family == AF_INET6 ? "[" : "",
			 ip, c->listen[i].ip.family == AF_INET6 ? "]" : "", c->listen[i].port, px->nworkers, c->relay);
	}
	if (c->admin.port) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&c->admin.ip, ip, sizeof(ip));
		log_info("admin (/metrics, /healthz) on %s%s%s:%u", c->admin.ip.family == AF_INET6 ? "[" : "", ip,
			 c->admin.ip.family == AF_INET6 ? "]" : "", c->admin.port);
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
}
