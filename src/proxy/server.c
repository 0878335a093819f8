/* server.c: workers (one epoll loop per core, SO_REUSEPORT listeners), config snapshots,
 * SIGHUP reload without dropping tunnels, SIGTERM/SIGINT stop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "net/dns.h"
#include "net/sock.h"
#include "proxy/auth.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "proxy/tls.h"

#define ACCEPT_BATCH 64
#define EMFILE_BACKOFF_MS 100

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

static void listener_backoff_done(struct loop *loop, struct timer *t)
{
	struct listener *l = container_of(t, struct listener, backoff);

	io_want(loop, &l->io, EPOLLIN);
}

static void listener_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct listener *l = container_of(io, struct listener, io);
	struct worker *w = l->w;

	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen;
		int fd = sock_accept(io->fd, &peer, &plen);
		if (fd == -EAGAIN || fd == -ECONNABORTED || fd == -EINTR)
			return;
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
			/* out of descriptors: pause this listener rather than spin on it */
			log_warn("accept: %s; pausing the listener for %d ms", strerror(-fd), EMFILE_BACKOFF_MS);
			io_want(loop, io, 0);
			timer_start(loop, &l->backoff, EMFILE_BACKOFF_MS);
			return;
		}
		if (fd < 0)
			return;
		atomic_fetch_add(&w->px->conns, 1);
		session_accept(w, fd, &peer, l->socks, l->tls);
	}
}

static void worker_wakeup(struct loop *loop, void *arg)
{
	struct worker *w = arg;
	struct cfg_ref *next = atomic_exchange(&w->next_cfg, NULL);

	if (next) {
		cfg_ref_put(w->cfg);
		w->cfg = next;   /* the reference the reloader took for us */
	}
	if (atomic_load(&w->stopping)) {
		for (size_t i = 0; i < w->nlisteners; i++)
			io_close(loop, &w->listeners[i].io);
		inbound_stop(w);
		loop_stop(loop);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	loop_run(w->loop);
	session_close_all(w);
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
	for (size_t i = 0; i < w->nlisteners; i++)
		timer_stop(w->loop, &w->listeners[i].backoff);
	loop_free(w->loop);
	buf_pool_trim();
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
		io_init(&l->io, fd, listener_cb);
		timer_init(&l->backoff, listener_backoff_done);
		if ((rc = io_want(w->loop, &l->io, EPOLLIN)) != 0)
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
	for (unsigned i = 0; i < px->nworkers; i++)
		pthread_create(&px->workers[i].thread, NULL, worker_main, &px->workers[i]);
	for (size_t i = 0; i < c->nlisten; i++) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&c->listen[i].ip, ip, sizeof(ip));
		log_info("listening on %s%s%s:%u (%u workers, relay %s)", c->listen[i].ip.family == AF_INET6 ? "[" : "",
			 ip, c->listen[i].ip.family == AF_INET6 ? "]" : "", c->listen[i].port, px->nworkers, c->relay);
	}
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			if (proxy_reload(px, err, sizeof(err)))
				log_error("reload refused, the running config stays: %s", err);
			else
				log_info("reloaded %s", px->config_path);
			continue;
		}
		log_info("signal %d: stopping", sig);
		break;
	}
	for (unsigned i = 0; i < px->nworkers; i++) {
		atomic_store(&px->workers[i].stopping, true);
		loop_wakeup(px->workers[i].loop);
	}
	for (unsigned i = 0; i < px->nworkers; i++)
		pthread_join(px->workers[i].thread, NULL);
	free(px->workers);
	cfg_ref_put(px->cfg);
	return 0;
}
