/* admin.c: the admin thread: a tiny HTTP/1.x server for /metrics and /healthz (one request per
 * connection, answered and closed) and the health prober, on one event loop.
 * proxy/ owns `iplock proxy` (sessions, SOCKS5, inbound endpoints, auth, policy, egress, metrics,
 * admin); it may include core/, net/, http/ and store/, never another product. */
#include "proxy/admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "http/reply.h"
#include "net/sock.h"
#include "proxy/health.h"
#include "proxy/metrics.h"

#define ADMIN_CONNS_MAX    64
#define ADMIN_TIMEOUT_MS   5000
#define ADMIN_HEAD_MAX     4096
#define ADMIN_BODY_MAX     (64u << 20)
#define HEARTBEAT_STALE_MS 5000   /* a worker that has not ticked for this long is stuck */
#define ADMIN_LFD_SAME     (-2)     /* next_lfd: no listener change pending */

struct admin {
	struct proxy *px;
	pthread_t thread;
	bool running;
	struct loop *loop;
	struct io lio;                     /* listener, fd -1 when admin_listen is unset */
	struct cfg_ref *cfg;
	struct cfg_ref *_Atomic next_cfg;
	atomic_int next_lfd;               /* a reload's new listener (-1 = close it); ADMIN_LFD_SAME */
	atomic_bool stopping;
	struct health *health;
	unsigned nconns;
	struct admin_conn *conns;          /* open connections, closed at stop */
};

struct admin_conn {
	struct admin *a;
	struct io io;
	struct timer timer;
	char in[ADMIN_HEAD_MAX];
	size_t inlen;
	struct mtext out;
	size_t off;
	bool answered;
	struct admin_conn *next, *prev;
	struct deferred dfr;
};

/* ---------------------------------------------------------------- health and metrics */

struct any_up {
	uint64_t now;
	bool up;
};

static void pool_any_up(struct egress_pool *pool, void *arg)
{
	struct any_up *u = arg;

	for (size_t i = 0; i < pool->n && !u->up; i++)
		u->up = egress_is_up(pool, i, u->now);
}

const char *admin_health(struct proxy *px, struct proxy_config *cfg)
{
	uint64_t now = loop_clock_ms();
	struct any_up u = { now, false };

	if (atomic_load(&px->draining))
		return "draining";
	for (unsigned i = 0; i < px->nworkers; i++) {
		uint64_t beat = atomic_load_explicit(&px->workers[i].beat_ms, memory_order_relaxed);
		if (beat + HEARTBEAT_STALE_MS < now)
			return "a worker is not responding";
	}
	health_each_pool(cfg, pool_any_up, &u);
	return u.up ? NULL : "no egress address is up";
}

struct up_ctx {
	struct metrics_snapshot *snap;
	uint64_t now;
	int rc;
};

static void pool_up(struct egress_pool *pool, void *arg)
{
	struct up_ctx *c = arg;

	for (size_t i = 0; i < pool->n; i++)
		if (metrics_snapshot_egress_up(c->snap, &pool->addrs[i], egress_is_up(pool, i, c->now)))
			c->rc = -ENOMEM;
}

static int metrics_text(struct admin *a, struct mtext *body)
{
	struct proxy *px = a->px;
	struct metrics_snapshot snap;
	struct up_ctx uc = { &snap, loop_clock_ms(), 0 };
	int rc = 0;

	memset(&snap, 0, sizeof(snap));
	snap.workers = px->nworkers;
	snap.draining = atomic_load(&px->draining);
	for (unsigned i = 0; i < px->nworkers && !rc; i++)
		rc = metrics_snapshot_add(&snap, px->workers[i].metrics);
	if (!rc) {
		health_each_pool(a->cfg->cfg, pool_up, &uc);
		rc = uc.rc;
	}
	if (!rc)
		metrics_render(&snap, body);
	metrics_snapshot_free(&snap);
	return rc ? rc : body->overflow ? -ENOSPC : 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_free(struct deferred *d)
{
	struct admin_conn *c = container_of(d, struct admin_conn, dfr);

	mtext_free(&c->out);
	free(c);
}

static void conn_close(struct admin_conn *c)
{
	if (c->io.fd == -1)
		return;
	timer_stop(c->a->loop, &c->timer);
	io_close(c->a->loop, &c->io);
	c->a->nconns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	loop_defer(c->a->loop, &c->dfr, conn_free);
}

static void conn_flush(struct admin_conn *c)
{
	while (c->off < c->out.len) {
		long n = sock_write(c->io.fd, c->out.buf + c->off, c->out.len - c->off);
		if (n == -EAGAIN) {
			io_want(c->a->loop, &c->io, EPOLLOUT);
			return;
		}
		if (n < 0)
			break;
		c->off += (size_t)n;
	}
	conn_close(c);
}

static void respond(struct admin_conn *c, int status, const char *ctype, const char *body, size_t len,
		    bool head_only)
{
	const char *text = http_status_text(status);

	mtext_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, text, ctype, len);
	if (!head_only)
		mtext_printf(&c->out, "%.*s", (int)len, body);
	c->answered = true;
	if (c->out.overflow) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

enum admin_route admin_route_parse(const char *req, size_t len, bool *head_only)
{
	const char *eol = memchr(req, '\n', len);
	size_t line = eol ? (size_t)(eol - req) : len;
	const char *sp = memchr(req, ' ', line);

	*head_only = false;
	if (!sp || sp == req)
		return ADMIN_BAD;
	size_t mlen = (size_t)(sp - req);
	bool get = mlen == 3 && !memcmp(req, "GET", 3);
	*head_only = mlen == 4 && !memcmp(req, "HEAD", 4);
	const char *path = sp + 1, *end = path;
	while (end < req + line && *end != ' ' && *end != '?' && *end != '\r')
		end++;
	size_t plen = (size_t)(end - path);
	bool is_metrics = plen == 8 && !memcmp(path, "/metrics", 8);
	bool is_health = plen == 8 && !memcmp(path, "/healthz", 8);
	if (!is_metrics && !is_health)
		return ADMIN_NOT_FOUND;
	if (!get && !*head_only)
		return ADMIN_BAD_METHOD;
	return is_metrics ? ADMIN_METRICS : ADMIN_HEALTHZ;
}

static void handle(struct admin_conn *c)
{
	struct admin *a = c->a;
	bool head;
	enum admin_route route = admin_route_parse(c->in, c->inlen, &head);

	switch (route) {
	case ADMIN_BAD:
		respond(c, 400, "text/plain", "bad request\n", 12, false);
		return;
	case ADMIN_NOT_FOUND:
		respond(c, 404, "text/plain", "not found: try /metrics or /healthz\n", 36, head);
		return;
	case ADMIN_BAD_METHOD:
		respond(c, 405, "text/plain", "GET or HEAD only\n", 17, false);
		return;
	case ADMIN_METRICS:
	case ADMIN_HEALTHZ:
		break;
	}
	if (route == ADMIN_HEALTHZ) {
		const char *why = admin_health(a->px, a->cfg->cfg);
		char msg[128];
		int n = snprintf(msg, sizeof(msg), "%s\n", why ? why : "ok");
		respond(c, why ? 503 : 200, "text/plain", msg, (size_t)n, head);
		return;
	}
	struct mtext body;
	mtext_init(&body, ADMIN_BODY_MAX);
	int rc = metrics_text(a, &body);
	if (rc) {
		log_warn("admin: cannot render metrics: %s", strerror(-rc));
		respond(c, 500, "text/plain", "metrics unavailable\n", 20, head);
	} else {
		respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body.buf, body.len, head);
	}
	mtext_free(&body);
}

static void conn_io(struct loop *loop, struct io *io, uint32_t revents)
{
	struct admin_conn *c = container_of(io, struct admin_conn, io);

	(void)loop;
	(void)revents;
	if (c->answered) {
		conn_flush(c);
		return;
	}
	long n = sock_read(io->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
		io_want(c->a->loop, &c->io, 0);
		handle(c);
		return;
	}
	if (c->inlen >= sizeof(c->in) - 1)
		respond(c, 400, "text/plain", "request head too large\n", 23, false);
}

static void conn_timeout(struct loop *loop, struct timer *t)
{
	struct admin_conn *c = container_of(t, struct admin_conn, timer);

	(void)loop;
	conn_close(c);
}

static void listener_io(struct loop *loop, struct io *io, uint32_t revents)
{
	struct admin *a = container_of(io, struct admin, lio);

	(void)revents;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage peer;
		socklen_t plen;
		int fd = sock_accept(io->fd, &peer, &plen);
		if (fd < 0)
			return;
		struct admin_conn *c = a->nconns < ADMIN_CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->a = a;
		a->nconns++;
		c->next = a->conns;
		if (a->conns)
			a->conns->prev = c;
		a->conns = c;
		mtext_init(&c->out, ADMIN_BODY_MAX + 1024);
		io_init(&c->io, fd, conn_io);
		timer_init(&c->timer, conn_timeout);
		timer_start(loop, &c->timer, ADMIN_TIMEOUT_MS);
		io_want(loop, &c->io, EPOLLIN);
	}
}

/* ---------------------------------------------------------------- thread */

static void admin_wakeup(struct loop *loop, void *arg)
{
	struct admin *a = arg;
	struct cfg_ref *next = atomic_exchange(&a->next_cfg, NULL);

	if (next) {
		cfg_ref_put(a->cfg);
		a->cfg = next;
		health_set_config(a->health, next);
	}
	int lfd = atomic_exchange(&a->next_lfd, ADMIN_LFD_SAME);
	if (lfd != ADMIN_LFD_SAME) {
		/* admin connections already accepted are answered; the old address takes no more */
		if (a->lio.fd != -1)
			io_close(loop, &a->lio);
		io_init(&a->lio, lfd, listener_io);
		if (lfd >= 0 && io_want(loop, &a->lio, EPOLLIN))
			log_error("admin: cannot poll the new listener");
	}
	if (atomic_load(&a->stopping))
		loop_stop(loop);
}

static void *admin_main(void *arg)
{
	struct admin *a = arg;

	health_set_config(a->health, a->cfg);
	loop_run(a->loop);
	return NULL;
}

static void admin_free(struct admin *a)
{
	if (!a)
		return;
	while (a->conns)
		conn_close(a->conns);
	health_free(a->health);
	if (a->lio.fd != -1)
		io_close(a->loop, &a->lio);
	if (a->loop) {
		loop_run_deferred(a->loop);
		loop_free(a->loop);
	}
	if (a->cfg)
		cfg_ref_put(a->cfg);
	struct cfg_ref *next = atomic_exchange(&a->next_cfg, NULL);
	if (next)
		cfg_ref_put(next);
	int lfd = atomic_exchange(&a->next_lfd, ADMIN_LFD_SAME);
	if (lfd >= 0)
		close(lfd);
	free(a);
}

int admin_listen_open(const struct listen_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&addr->ip, addr->port, &ss);

	/* no SO_REUSEPORT: one admin listener per address, a second process's bind fails */
	return sock_listen((struct sockaddr *)&ss, len, false, 64);
}

int admin_start(struct proxy *px, struct cfg_ref *r, int lfd, struct admin **out)
{
	const struct proxy_config *c = r->cfg;
	struct admin *a;
	int rc;

	*out = NULL;
	if (!c->admin.port && !c->health_probe.kind)
		return 0;
	if (!(a = calloc(1, sizeof(*a)))) {
		if (lfd >= 0)
			close(lfd);
		return -ENOMEM;
	}
	a->px = px;
	atomic_init(&a->next_lfd, ADMIN_LFD_SAME);
	io_init(&a->lio, -1, listener_io);
	a->cfg = cfg_ref_get(r);
	if ((rc = loop_new(&a->loop)) != 0 || (rc = loop_set_wakeup(a->loop, admin_wakeup, a)) != 0 ||
	    (rc = health_new(a->loop, px->dns_servers, &a->health)) != 0)
		goto fail;
	if (lfd >= 0) {
		io_init(&a->lio, lfd, listener_io);
		lfd = -1;
		if ((rc = io_want(a->loop, &a->lio, EPOLLIN)) != 0)
			goto fail;
	}
	if ((rc = pthread_create(&a->thread, NULL, admin_main, a)) != 0) {
		rc = -rc;
		goto fail;
	}
	a->running = true;
	*out = a;
	return 0;
fail:
	if (lfd >= 0)
		close(lfd);
	admin_free(a);
	return rc;
}

void admin_set_listener(struct admin *a, int fd)
{
	int prev = atomic_exchange(&a->next_lfd, fd);

	if (prev >= 0)
		close(prev);   /* never taken by the admin thread */
	loop_wakeup(a->loop);
}

void admin_set_config(struct admin *a, struct cfg_ref *r)
{
	health_apply(a->health, r->cfg);
	struct cfg_ref *prev = atomic_exchange(&a->next_cfg, cfg_ref_get(r));
	if (prev)
		cfg_ref_put(prev);
	loop_wakeup(a->loop);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	if (a->running) {
		atomic_store(&a->stopping, true);
		loop_wakeup(a->loop);
		pthread_join(a->thread, NULL);
	}
	admin_free(a);
}
