/* admin.c: the admin thread: a tiny HTTP/1.x server for /metrics and /healthz (one request per
 * connection, answered and closed) and the health prober, on one event loop: a one-worker
 * net/server embedded in the proxy's (its own thread, so a stuck or draining worker never keeps
 * /healthz from answering; no signals of its own).
 * proxy/ owns `iplock proxy` (sessions, SOCKS5, inbound endpoints, auth, policy, egress, metrics,
 * admin); it may include core/, net/, http/ and store/, never another product. */
#include "proxy/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "http/reply.h"
#include "net/server.h"
#include "net/sock.h"
#include "proxy/health.h"
#include "proxy/metrics.h"

#define ADMIN_CONNS_MAX    64
#define ADMIN_TIMEOUT_MS   5000
#define ADMIN_HEAD_MAX     4096
#define ADMIN_BODY_MAX     (64u << 20)
#define HEARTBEAT_STALE_MS 5000   /* a worker that has not ticked for this long is stuck */

struct admin {
	struct proxy *px;
	struct server *srv;                /* one worker, admin_listen its only listener (or none) */
	bool spawned;
	struct admin_w *w;                 /* the worker's state */
};

/* Everything the admin thread owns. */
struct admin_w {
	struct admin *a;
	struct loop *loop;
	struct cfg_ref *cfg;
	struct health *health;
	unsigned nconns;
	struct admin_conn *conns;          /* open connections, closed at stop */
};

struct admin_conn {
	struct admin_w *a;
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

static int metrics_text(struct admin_w *a, struct mtext *body)
{
	struct proxy *px = a->a->px;
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
	struct admin_w *a = c->a;
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
		const char *why = admin_health(a->a->px, a->cfg->cfg);
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

/* ---------------------------------------------------------------- net/server callbacks */

static void on_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *peer)
{
	struct admin_w *a = wstate;
	struct admin_conn *c = a->nconns < ADMIN_CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;

	(void)tag;
	(void)peer;
	if (!c) {
		close(fd);
		return;
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
	timer_start(a->loop, &c->timer, ADMIN_TIMEOUT_MS);
	io_want(a->loop, &c->io, EPOLLIN);
}

static int on_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct admin *adm = arg;
	struct admin_w *a = calloc(1, sizeof(*a));
	int rc;

	(void)id;
	*wstate = NULL;
	if (!a)
		return -ENOMEM;
	a->a = adm;
	a->loop = loop;
	if ((rc = health_new(loop, adm->px->dns_servers, &a->health)) != 0) {
		free(a);
		return rc;
	}
	adm->w = a;
	*wstate = a;
	return 0;
}

/* A config (at start, or a reload's): the prober follows its pools. */
static void on_snapshot(void *wstate, void *snap)
{
	struct admin_w *a = wstate;

	if (a->cfg)
		cfg_ref_put(a->cfg);
	a->cfg = snap;
	health_set_config(a->health, a->cfg);
}

static void on_snap_get(void *snap)
{
	cfg_ref_get(snap);
}

static void on_snap_put(void *snap)
{
	cfg_ref_put(snap);
}

static void on_drain(void *wstate)
{
	struct admin_w *a = wstate;

	while (a->conns)
		conn_close(a->conns);
}

static void on_teardown(void *wstate)
{
	struct admin_w *a = wstate;

	on_drain(a);
	health_free(a->health);
	a->health = NULL;
	if (a->cfg)
		cfg_ref_put(a->cfg);
	a->cfg = NULL;
	a->a->w = NULL;
	free(a);
}

static const struct server_ops admin_ops = {
	.worker_init = on_worker_init,
	.accept = on_accept,
	.snapshot = on_snapshot,
	.snap_get = on_snap_get,
	.snap_put = on_snap_put,
	.drain = on_drain,
	.teardown = on_teardown,
};

/* ---------------------------------------------------------------- life cycle */

/* admin_listen as net/server's listener: no SO_REUSEPORT (the server's reuseport is off), so
 * a second process's bind fails. */
static size_t admin_listens(const struct proxy_config *c, struct server_listen *sl)
{
	if (!c->admin.port)
		return 0;
	memset(sl, 0, sizeof(*sl));
	sl->len = ipaddr_to_sockaddr(&c->admin.ip, c->admin.port, &sl->addr);
	sl->backlog = 64;
	sl->what = "admin listener";
	return 1;
}

static void admin_listen_error(const struct proxy_config *c, int rc, char *err, size_t cap)
{
	char a[IPADDR_STRLEN + 8];

	listen_addr_format(&c->admin, a, sizeof(a));
	snprintf(err, cap, "cannot listen for admin_listen on %s: %s", a, strerror(-rc));
}

int admin_open(struct proxy *px, struct cfg_ref *r, struct admin **out, char *err, size_t cap)
{
	const struct proxy_config *c = r->cfg;
	struct server_config scfg = { .ops = &admin_ops, .nworkers = 1, .embedded = true };
	struct server_listen sl;
	struct admin *a;
	size_t bad;
	int rc;

	*out = NULL;
	if (!c->admin.port && !c->health_probe.kind)
		return 0;
	if (!(a = calloc(1, sizeof(*a)))) {
		snprintf(err, cap, "cannot start the admin thread: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	a->px = px;
	scfg.arg = a;
	if ((rc = server_new(&scfg, &a->srv)) != 0) {
		snprintf(err, cap, "cannot start the admin thread: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = server_start(a->srv, &sl, admin_listens(c, &sl), r, &bad)) != 0) {
		if (bad == 0)
			admin_listen_error(c, rc, err, cap);
		else
			snprintf(err, cap, "cannot start the admin thread: %s", strerror(-rc));
		goto fail;
	}
	*out = a;
	return 0;
fail:
	admin_stop(a);
	return rc;
}

int admin_start(struct admin *a)
{
	int rc = a ? server_spawn(a->srv) : 0;

	if (a && !rc)
		a->spawned = true;
	return rc;
}

int admin_plan(struct admin *a, const struct proxy_config *cfg, struct server_plan **plan, char *err,
	       size_t cap)
{
	struct server_listen sl;
	size_t bad;
	int rc = server_plan_new(a->srv, &sl, admin_listens(cfg, &sl), plan, &bad);

	if (rc)
		admin_listen_error(cfg, rc, err, cap);
	return rc;
}

void admin_commit(struct admin *a, struct server_plan *plan, struct cfg_ref *r)
{
	if (a->w)   /* the verdicts reach the pools before any worker sees them */
		health_apply(a->w->health, r->cfg);
	server_plan_commit(a->srv, plan, r);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	if (a->spawned)
		server_stop(a->srv, 0);
	server_free(a->srv);
	free(a);
}
