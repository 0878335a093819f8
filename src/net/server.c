/* server.c (net): workers, listeners, signals, snapshots and drain for every iplock server
 * (the proxy, the gate, echo; the proxy's admin listener embedded, without signals). Owns the
 * threads and the loops; may include core/ and net/ only. */
#include "net/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/acceptor.h"
#include "net/sock.h"

#define DRAIN_TICK_MS 50

struct srv_listener {
	struct acceptor acc;
	struct srv_worker *w;
	struct server_listen spec;
	bool open;
};

/* One worker's part of a reload: the snapshot, the new listener set, a fresh descriptor for
 * each new address (-1: keep the open one). */
struct srv_wplan {
	void *snap;
	size_t n;
	struct server_listen spec[SERVER_MAX_LISTENERS];
	int fd[SERVER_MAX_LISTENERS];
};

struct srv_worker {
	struct server *s;
	unsigned id;
	struct loop *loop;
	void *wstate;
	bool inited;
	pthread_t thread;
	bool started;
	struct srv_listener ls[SERVER_MAX_LISTENERS];
	size_t nls;                  /* slots in use at some point (a closed one is reused) */
	struct srv_wplan plan;       /* written by the main thread while plan_ready is false */
	atomic_bool plan_ready;      /* set by the main thread, cleared once applied */
	atomic_bool stopping;
	atomic_bool force_stop;
	atomic_bool done;            /* its loop has ended: it takes no plan any more */
	unsigned drain_ms;           /* written before stopping is published */
	bool draining;
	struct timer drain_tick, drain_deadline;
};

struct server {
	struct server_config cfg;
	struct srv_worker *workers;
	sigset_t sigs;
	struct server_listen specs[SERVER_MAX_LISTENERS];   /* what every worker listens on now */
	size_t nspecs;
	atomic_uint done;
};

struct server_plan {
	size_t n;
	struct server_listen spec[SERVER_MAX_LISTENERS];
	int *fd;                     /* nworkers x SERVER_MAX_LISTENERS */
	size_t nfd;
};

static bool addr_same(const struct server_listen *a, const struct server_listen *b)
{
	return a->len == b->len && !memcmp(&a->addr, &b->addr, a->len);
}

static const struct server_listen *specs_find(const struct server_listen *v, size_t n, const struct server_listen *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_same(&v[i], a))
			return &v[i];
	return NULL;
}

static int listen_open(const struct server *s, const struct server_listen *sp)
{
	return sock_listen((const struct sockaddr *)&sp->addr, sp->len, s->cfg.reuseport, sp->backlog);
}

static void listener_accept(struct acceptor *a, int fd, const struct sockaddr_storage *peer)
{
	struct srv_listener *l = container_of(a, struct srv_listener, acc);

	l->w->s->cfg.ops->accept(l->w->wstate, l->spec.tag, fd, peer);
}

/* Takes fd. */
static int listener_add(struct srv_worker *w, const struct server_listen *sp, int fd)
{
	struct srv_listener *l = NULL;

	for (size_t i = 0; i < w->nls && !l; i++)
		if (!w->ls[i].open)
			l = &w->ls[i];
	if (!l && w->nls < SERVER_MAX_LISTENERS)
		l = &w->ls[w->nls++];
	if (!l) {
		close(fd);
		return -ENOSPC;
	}
	l->w = w;
	l->spec = *sp;
	l->open = true;
	int rc = acceptor_start(w->loop, &l->acc, fd, sp->what, listener_accept);
	if (rc) {
		acceptor_close(w->loop, &l->acc);
		l->open = false;
	}
	return rc;
}

static void listeners_close(struct srv_worker *w)
{
	for (size_t i = 0; i < w->nls; i++) {
		if (w->ls[i].open)
			acceptor_close(w->loop, &w->ls[i].acc);
		w->ls[i].open = false;
	}
}

/* The reload's plan, in one wakeup: the snapshot, then the listeners it drops close (their
 * connections carry on), new ones start, addresses that stay are relabelled. So no client
 * is accepted with the old listeners and the new snapshot or the reverse. */
static void plan_apply(struct srv_worker *w)
{
	struct srv_wplan *p = &w->plan;
	const struct server_ops *ops = w->s->cfg.ops;

	if (p->snap && ops->snapshot)
		ops->snapshot(w->wstate, p->snap);   /* the reference the main thread took for us */
	p->snap = NULL;
	for (size_t i = 0; i < w->nls; i++) {
		struct srv_listener *l = &w->ls[i];
		if (!l->open)
			continue;
		const struct server_listen *keep = specs_find(p->spec, p->n, &l->spec);
		if (!keep) {
			acceptor_close(w->loop, &l->acc);
			l->open = false;
		} else {
			l->spec = *keep;
			l->acc.what = keep->what;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		int rc;
		if (p->fd[i] >= 0 && (rc = listener_add(w, &p->spec[i], p->fd[i])) != 0)
			log_error("worker %u: cannot start the %s: %s", w->id, p->spec[i].what, strerror(-rc));
		p->fd[i] = -1;
	}
	atomic_store(&w->plan_ready, false);
}

static bool worker_busy(struct srv_worker *w)
{
	const struct server_ops *ops = w->s->cfg.ops;

	return ops->busy && ops->busy(w->wstate);
}

static void drain_tick(struct loop *loop, struct timer *t)
{
	struct srv_worker *w = container_of(t, struct srv_worker, drain_tick);

	if (!worker_busy(w)) {
		loop_stop(loop);
		return;
	}
	timer_start(loop, t, DRAIN_TICK_MS);
}

static void drain_deadline(struct loop *loop, struct timer *t)
{
	struct srv_worker *w = container_of(t, struct srv_worker, drain_deadline);

	if (w->s->cfg.ops->drain_expired)
		w->s->cfg.ops->drain_expired(w->wstate);
	loop_stop(loop);
}

/* Stop: accept no more, let the product close what is idle, and stop when nothing is left
 * or at the deadline. */
static void drain_begin(struct srv_worker *w)
{
	const struct server_ops *ops = w->s->cfg.ops;

	w->draining = true;
	listeners_close(w);
	if (ops->drain)
		ops->drain(w->wstate);
	if (!worker_busy(w) || w->drain_ms == 0) {
		loop_stop(w->loop);
		return;
	}
	timer_start(w->loop, &w->drain_deadline, w->drain_ms);
	timer_start(w->loop, &w->drain_tick, DRAIN_TICK_MS);
}

static void worker_wakeup(struct loop *loop, void *arg)
{
	struct srv_worker *w = arg;

	if (atomic_load(&w->plan_ready))
		plan_apply(w);
	if (atomic_load(&w->force_stop)) {
		loop_stop(loop);
		return;
	}
	if (atomic_load(&w->stopping) && !w->draining)
		drain_begin(w);
}

/* Everything the worker owns but its loop, freed after the join (the main thread may still
 * wake it). */
static void worker_teardown(struct srv_worker *w)
{
	const struct server_ops *ops = w->s->cfg.ops;

	listeners_close(w);
	timer_stop(w->loop, &w->drain_tick);
	timer_stop(w->loop, &w->drain_deadline);
	if (w->inited && ops->teardown)
		ops->teardown(w->wstate);
	w->inited = false;
}

/* After the join: a plan the worker never took (its loop had failed). */
static void plan_drop(struct srv_worker *w)
{
	const struct server_ops *ops = w->s->cfg.ops;

	for (size_t i = 0; i < w->plan.n; i++)
		if (w->plan.fd[i] >= 0)
			close(w->plan.fd[i]);
	w->plan.n = 0;
	if (w->plan.snap && ops->snap_put)
		ops->snap_put(w->plan.snap);
	w->plan.snap = NULL;
}

static void *worker_main(void *arg)
{
	struct srv_worker *w = arg;
	int rc = loop_run(w->loop);

	if (rc)
		log_error("worker %u: event loop: %s", w->id, strerror(-rc));
	atomic_store(&w->done, true);
	worker_teardown(w);
	atomic_fetch_add(&w->s->done, 1);
	return NULL;
}

int server_new(const struct server_config *cfg, struct server **out)
{
	struct server *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !cfg->nworkers || !(s->workers = calloc(cfg->nworkers, sizeof(*s->workers)))) {
		free(s);
		return -ENOMEM;
	}
	s->cfg = *cfg;
	for (unsigned i = 0; i < cfg->nworkers; i++) {
		s->workers[i].s = s;
		s->workers[i].id = i;
		timer_init(&s->workers[i].drain_tick, drain_tick);
		timer_init(&s->workers[i].drain_deadline, drain_deadline);
	}
	/* workers never see these signals: the main thread waits for them in server_run */
	sigemptyset(&s->sigs);
	sigaddset(&s->sigs, SIGHUP);
	sigaddset(&s->sigs, SIGTERM);
	sigaddset(&s->sigs, SIGINT);
	if (!cfg->embedded) {
		pthread_sigmask(SIG_BLOCK, &s->sigs, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	*out = s;
	return 0;
}

static int probe_all(const struct server *s, const struct server_listen *v, size_t n,
		     const struct server_listen *skip, size_t nskip, size_t *bad)
{
	for (size_t i = 0; s->cfg.reuseport && i < n; i++) {
		if (specs_find(skip, nskip, &v[i]))
			continue;
		int rc = sock_probe_free((const struct sockaddr *)&v[i].addr, v[i].len);
		if (rc) {
			*bad = i;
			return rc;
		}
	}
	return 0;
}

int server_start(struct server *s, const struct server_listen *v, size_t n, void *snap, size_t *bad)
{
	const struct server_ops *ops = s->cfg.ops;
	int rc;

	*bad = SIZE_MAX;
	if (n > SERVER_MAX_LISTENERS)
		return -ENOSPC;
	if ((rc = probe_all(s, v, n, NULL, 0, bad)) != 0)
		return rc;
	for (unsigned k = 0; k < s->cfg.nworkers; k++) {
		struct srv_worker *w = &s->workers[k];
		if ((rc = loop_new(&w->loop)) != 0 || (rc = loop_set_wakeup(w->loop, worker_wakeup, w)) != 0)
			return rc;
		if ((rc = ops->worker_init(s->cfg.arg, k, w->loop, &w->wstate)) != 0)
			return rc;
		w->inited = true;
		if (snap && ops->snapshot) {
			if (ops->snap_get)
				ops->snap_get(snap);
			ops->snapshot(w->wstate, snap);
		}
		for (size_t i = 0; i < n; i++) {
			int fd = listen_open(s, &v[i]);
			if (fd < 0) {
				*bad = i;
				return fd;
			}
			if ((rc = listener_add(w, &v[i], fd)) != 0)
				return rc;
		}
	}
	memcpy(s->specs, v, n * sizeof(*v));
	s->nspecs = n;
	return 0;
}

int server_open_one(const struct server_config *cfg, const struct sockaddr *sa, socklen_t len,
		    int backlog, const char *what, const char *text, struct server **out, char *err,
		    size_t cap)
{
	struct server_listen l = { .len = len, .backlog = backlog, .what = what };
	size_t bad;
	int rc;

	if ((rc = server_new(cfg, out))) {
		snprintf(err, cap, "out of memory");
		return rc;
	}
	memcpy(&l.addr, sa, len);
	if ((rc = server_start(*out, &l, 1, NULL, &bad))) {
		if (bad == 0)
			snprintf(err, cap, "cannot listen on %s: %s%s", text, strerror(-rc),
				 rc == -EADDRINUSE && cfg->nworkers > 1 ? " (another process listens there)" : "");
		else
			snprintf(err, cap, "cannot create the event loop: %s", strerror(-rc));
	}
	return rc;
}

void server_plan_free(struct server_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->fd && i < p->nfd; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	free(p->fd);
	free(p);
}

int server_plan_new(struct server *s, const struct server_listen *v, size_t n, struct server_plan **out,
		    size_t *bad)
{
	size_t nfd = (size_t)SERVER_MAX_LISTENERS * s->cfg.nworkers;
	struct server_plan *p = calloc(1, sizeof(*p));
	int rc = -ENOMEM;

	*out = NULL;
	*bad = SIZE_MAX;
	if (n > SERVER_MAX_LISTENERS) {
		free(p);
		return -ENOSPC;
	}
	if (!p || !(p->fd = malloc(nfd * sizeof(*p->fd))))
		goto fail;
	for (size_t i = 0; i < nfd; i++)
		p->fd[i] = -1;
	p->nfd = nfd;
	p->n = n;
	memcpy(p->spec, v, n * sizeof(*v));
	if ((rc = probe_all(s, v, n, s->specs, s->nspecs, bad)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (specs_find(s->specs, s->nspecs, &v[i]))
			continue;
		for (unsigned k = 0; k < s->cfg.nworkers; k++) {
			if ((p->fd[k * SERVER_MAX_LISTENERS + i] = listen_open(s, &v[i])) < 0) {
				rc = p->fd[k * SERVER_MAX_LISTENERS + i];
				*bad = i;
				goto fail;
			}
		}
	}
	*out = p;
	return 0;
fail:
	server_plan_free(p);
	return rc;
}

/* The main thread waits for every worker to take its plan: a second reload never overwrites
 * one still being applied, and the log lines after it are true. A worker whose loop failed
 * never takes it (server_free closes what it holds). */
static void plans_wait(struct server *s)
{
	struct timespec ms = { 0, 1000000L };

	for (unsigned i = 0; i < s->cfg.nworkers; i++)
		while (atomic_load(&s->workers[i].plan_ready) && !atomic_load(&s->workers[i].done))
			nanosleep(&ms, NULL);
}

void server_plan_commit(struct server *s, struct server_plan *p, void *snap)
{
	const struct server_ops *ops = s->cfg.ops;

	for (unsigned k = 0; k < s->cfg.nworkers; k++) {
		struct srv_worker *w = &s->workers[k];
		w->plan.n = p->n;
		memcpy(w->plan.spec, p->spec, p->n * sizeof(*p->spec));
		memcpy(w->plan.fd, &p->fd[k * SERVER_MAX_LISTENERS], p->n * sizeof(*p->fd));
		for (size_t i = 0; i < p->n; i++)
			p->fd[k * SERVER_MAX_LISTENERS + i] = -1;   /* the worker's now */
		w->plan.snap = NULL;
		if (snap && ops->snap_get) {
			ops->snap_get(snap);
			w->plan.snap = snap;
		}
		atomic_store(&w->plan_ready, true);   /* publishes the plan (seq_cst) */
		loop_wakeup(w->loop);
	}
	plans_wait(s);
	memcpy(s->specs, p->spec, p->n * sizeof(*p->spec));
	s->nspecs = p->n;
	free(p->fd);
	free(p);
}

static void notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

/* After SIGTERM/SIGINT: wait for the workers to drain; a second signal closes everything. */
static void wait_drained(struct server *s)
{
	struct timespec step = { 0, 100 * 1000000L };
	bool forced = false;

	while (atomic_load(&s->done) < s->cfg.nworkers) {
		int sig = sigtimedwait(&s->sigs, NULL, &step);
		if (sig == SIGHUP) {
			log_warn("SIGHUP while stopping: not reloaded");
		} else if ((sig == SIGTERM || sig == SIGINT) && !forced) {
			log_warn("signal %d again: closing every connection now", sig);
			forced = true;
			for (unsigned i = 0; i < s->cfg.nworkers; i++) {
				atomic_store(&s->workers[i].force_stop, true);
				loop_wakeup(s->workers[i].loop);
			}
		}
	}
}

/* Every worker's thread, or none: the threads that started stop at once when one cannot. */
static int threads_start(struct server *s)
{
	int rc = 0;
	unsigned started = 0;

	for (unsigned i = 0; i < s->cfg.nworkers; i++) {
		struct srv_worker *w = &s->workers[i];
		if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			log_error("worker %u: %s", i, strerror(rc));
			rc = -rc;
			break;
		}
		w->started = true;
		started++;
	}
	if (started == s->cfg.nworkers)
		return 0;
	for (unsigned i = 0; i < s->cfg.nworkers; i++) {
		struct srv_worker *w = &s->workers[i];
		if (w->started) {
			atomic_store(&w->force_stop, true);
			loop_wakeup(w->loop);
			pthread_join(w->thread, NULL);
			w->started = false;
		} else {
			worker_teardown(w);
		}
	}
	return rc;
}

static void workers_stop(struct server *s, unsigned ms)
{
	for (unsigned i = 0; i < s->cfg.nworkers; i++) {
		s->workers[i].drain_ms = ms;
		atomic_store(&s->workers[i].stopping, true);   /* publishes drain_ms */
		loop_wakeup(s->workers[i].loop);
	}
}

static void threads_join(struct server *s)
{
	for (unsigned i = 0; i < s->cfg.nworkers; i++) {
		if (s->workers[i].started)
			pthread_join(s->workers[i].thread, NULL);
		s->workers[i].started = false;
	}
}

int server_run(struct server *s)
{
	const struct server_ops *ops = s->cfg.ops;
	int sig, rc;

	if ((rc = threads_start(s)) != 0)
		return rc;
	sd_notify(0, "READY=1");
	for (;;) {
		if (sigwait(&s->sigs, &sig))
			continue;
		if (sig != SIGHUP)
			break;
		notify_reloading();
		if (ops->reload)
			ops->reload(s->cfg.arg);
		sd_notify(0, "READY=1");
	}
	sd_notify(0, "STOPPING=1");
	workers_stop(s, ops->stop ? ops->stop(s->cfg.arg, sig) : s->cfg.stop_ms);
	wait_drained(s);
	threads_join(s);
	return 0;
}

int server_spawn(struct server *s)
{
	return threads_start(s);
}

void server_stop(struct server *s, unsigned drain_ms)
{
	workers_stop(s, drain_ms);
	threads_join(s);
}

void server_free(struct server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->cfg.nworkers; i++) {
		struct srv_worker *w = &s->workers[i];
		if (!w->loop)
			continue;
		worker_teardown(w);   /* a failed start: what server_run never ran */
		plan_drop(w);
		loop_run_deferred(w->loop);
		loop_free(w->loop);
	}
	free(s->workers);
	free(s);
}
