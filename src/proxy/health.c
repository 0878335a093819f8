/* health.c: egress health probes on the admin thread's loop; never a blocking call. */
#include "proxy/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/dns.h"
#include "net/sock.h"

struct probe {
	struct health *h;
	struct ipaddr ip;
	struct io io;
	struct timer timeout;
	bool probing;              /* a connect is in flight */
	bool known;                /* a verdict exists */
	bool up;                   /* the last verdict */
};

struct health {
	struct loop *loop;
	struct dns *dns;
	struct dns_req *dns_req;
	struct cfg_ref *cfg;
	struct timer tick;
	struct ipaddr target4, target6;   /* family 0: no target of that family */
	pthread_mutex_t mu;               /* probes[].ip, .known, .up and n: read by the reloader */
	size_t n;
	bool full_logged;
	struct probe probes[HEALTH_MAX];
};

static void round_start(struct health *h);

void health_each_pool(struct proxy_config *cfg, void (*fn)(struct egress_pool *pool, void *arg), void *arg)
{
	fn(&cfg->egress, arg);
	for (size_t i = 0; i < cfg->nusers; i++)
		if (cfg->users[i].egress)
			fn(cfg->users[i].egress, arg);
}

static void apply_pool(struct egress_pool *pool, void *arg)
{
	struct health *h = arg;

	for (size_t i = 0; i < h->n; i++)
		if (h->probes[i].known)
			egress_set_health(pool, &h->probes[i].ip, h->probes[i].up);
}

void health_apply(struct health *h, struct proxy_config *cfg)
{
	pthread_mutex_lock(&h->mu);
	health_each_pool(cfg, apply_pool, h);
	pthread_mutex_unlock(&h->mu);
}

static void tick_cb(struct loop *loop, struct timer *t)
{
	struct health *h = container_of(t, struct health, tick);

	(void)loop;
	round_start(h);
}

int health_new(struct loop *loop, const char *dns_servers, struct health **out)
{
	struct health *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	pthread_mutex_init(&h->mu, NULL);
	timer_init(&h->tick, tick_cb);
	if ((rc = dns_new(loop, dns_servers, 5000, &h->dns)) != 0) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

static void probe_end(struct probe *p)
{
	timer_stop(p->h->loop, &p->timeout);
	if (p->io.fd != -1)
		io_close(p->h->loop, &p->io);
	p->probing = false;
}

void health_free(struct health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		probe_end(&h->probes[i]);
	if (h->dns_req)
		dns_cancel(h->dns_req);
	timer_stop(h->loop, &h->tick);
	dns_free(h->dns);
	if (h->cfg)
		cfg_ref_put(h->cfg);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

struct verdict {
	const struct ipaddr *ip;
	bool up;
};

static void verdict_pool(struct egress_pool *pool, void *arg)
{
	struct verdict *v = arg;

	egress_set_health(pool, v->ip, v->up);
}

static void verdict(struct probe *p, bool up, int err)
{
	struct health *h = p->h;
	const struct proxy_config *c = h->cfg->cfg;
	char ip[IPADDR_STRLEN], target[IPADDR_STRLEN];

	probe_end(p);
	ipaddr_format(&p->ip, ip, sizeof(ip));
	ipaddr_format(p->ip.family == AF_INET6 ? &h->target6 : &h->target4, target, sizeof(target));
	if (!up && (!p->known || p->up))
		log_warn("egress %s failed its health probe to %s port %u (%s): out of rotation", ip, target,
			 c->health_probe_port, strerror(-err));
	else if (up && p->known && !p->up)
		log_info("egress %s passed its health probe to %s port %u: back in rotation", ip, target,
			 c->health_probe_port);
	pthread_mutex_lock(&h->mu);
	p->known = true;
	p->up = up;
	struct verdict v = { &p->ip, up };
	health_each_pool(h->cfg->cfg, verdict_pool, &v);
	pthread_mutex_unlock(&h->mu);
}

static void probe_io(struct loop *loop, struct io *io, uint32_t revents)
{
	struct probe *p = container_of(io, struct probe, io);
	int err = sock_error(io->fd);

	(void)loop;
	(void)revents;
	verdict(p, err == 0, err);
}

static void probe_timeout(struct loop *loop, struct timer *t)
{
	struct probe *p = container_of(t, struct probe, timeout);

	(void)loop;
	verdict(p, false, -ETIMEDOUT);
}

static void probe_start(struct health *h, struct probe *p)
{
	const struct proxy_config *c = h->cfg->cfg;
	const struct ipaddr *target = p->ip.family == AF_INET6 ? &h->target6 : &h->target4;
	struct sockaddr_storage dst, src;
	bool bind_failed;

	if (p->probing || !target->family)
		return;   /* still waiting for the last one, or nothing of this family to probe */
	socklen_t dlen = ipaddr_to_sockaddr(target, c->health_probe_port, &dst);
	socklen_t slen = ipaddr_to_sockaddr(&p->ip, 0, &src);
	int fd = sock_connect_from((struct sockaddr *)&dst, dlen, (struct sockaddr *)&src, slen, &bind_failed);
	if (fd < 0) {
		verdict(p, false, fd);
		return;
	}
	io_init(&p->io, fd, probe_io);
	p->probing = true;
	io_want(h->loop, &p->io, EPOLLOUT);
	timer_start(h->loop, &p->timeout, c->health_timeout_ms);
}

static struct probe *probe_find(struct health *h, const struct ipaddr *ip)
{
	for (size_t i = 0; i < h->n; i++)
		if (ipaddr_equal(&h->probes[i].ip, ip))
			return &h->probes[i];
	if (h->n >= HEALTH_MAX) {
		if (!h->full_logged)
			log_warn("health: more than %d egress addresses; the rest are not probed", HEALTH_MAX);
		h->full_logged = true;
		return NULL;
	}
	pthread_mutex_lock(&h->mu);
	struct probe *p = &h->probes[h->n];
	memset(p, 0, sizeof(*p));
	p->h = h;
	p->ip = *ip;
	io_init(&p->io, -1, probe_io);
	timer_init(&p->timeout, probe_timeout);
	h->n++;
	pthread_mutex_unlock(&h->mu);
	return p;
}

static void probe_pool(struct egress_pool *pool, void *arg)
{
	struct health *h = arg;

	for (size_t i = 0; i < pool->n; i++) {
		struct probe *p = probe_find(h, &pool->addrs[i]);
		if (p)
			probe_start(h, p);
	}
}

static void probe_all(struct health *h)
{
	health_each_pool(h->cfg->cfg, probe_pool, h);
}

static void set_targets(struct health *h, const struct ipaddr *addrs, unsigned n)
{
	memset(&h->target4, 0, sizeof(h->target4));
	memset(&h->target6, 0, sizeof(h->target6));
	for (unsigned i = 0; i < n; i++) {
		if (addrs[i].family == AF_INET && !h->target4.family)
			h->target4 = addrs[i];
		else if (addrs[i].family == AF_INET6 && !h->target6.family)
			h->target6 = addrs[i];
	}
}

static void dns_done(void *arg, const struct dns_result *res)
{
	struct health *h = arg;

	h->dns_req = NULL;
	if (res->status) {
		/* the target is unknown this round: verdicts stay as they are, nothing is blamed */
		log_warn("health: cannot resolve %s: %s", h->cfg->cfg->health_probe.name, strerror(-res->status));
		return;
	}
	set_targets(h, res->addrs, res->naddrs);
	probe_all(h);
}

static void round_start(struct health *h)
{
	const struct proxy_config *c = h->cfg ? h->cfg->cfg : NULL;
	struct dns_result res;

	if (!c || !c->health_probe.kind)
		return;
	timer_start(h->loop, &h->tick, c->health_interval_ms);
	if (c->health_probe.kind == HOST_IP) {
		set_targets(h, &c->health_probe.ip, 1);
		probe_all(h);
		return;
	}
	if (dns_cached(h->dns, c->health_probe.name, &res)) {
		dns_done(h, &res);
		return;
	}
	if (!h->dns_req && dns_resolve(h->dns, c->health_probe.name, dns_done, h, &h->dns_req))
		log_warn("health: cannot start a DNS lookup for %s", c->health_probe.name);
}

void health_set_config(struct health *h, struct cfg_ref *r)
{
	struct cfg_ref *old = h->cfg;

	h->cfg = cfg_ref_get(r);
	if (old)
		cfg_ref_put(old);
	health_apply(h, r->cfg);
	timer_stop(h->loop, &h->tick);
	if (!r->cfg->health_probe.kind) {
		/* probing turned off: nothing keeps an address out any more */
		pthread_mutex_lock(&h->mu);
		for (size_t i = 0; i < h->n; i++) {
			probe_end(&h->probes[i]);
			h->probes[i].known = false;
			struct verdict v = { &h->probes[i].ip, true };
			health_each_pool(r->cfg, verdict_pool, &v);
		}
		pthread_mutex_unlock(&h->mu);
		return;
	}
	round_start(h);
}
