/* dial.c: resolve, try each address, finish the connect, time out (see dial.h). */
#include "net/dial.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "net/sock.h"

static void dial_timeout(struct loop *loop, struct timer *t)
{
	struct dial *d = container_of(t, struct dial, timer);

	(void)loop;
	dial_cancel(d);
	d->ops->gave_up(d->ctx, d, -ETIMEDOUT, DIAL_END_TIMEOUT);
}

void dial_init(struct dial *d, struct loop *loop, struct dns *dns, const struct dial_ops *ops, void *ctx,
	       struct io *io, io_cb cb, unsigned timeout_ms)
{
	*d = (struct dial){ .loop = loop, .dns = dns, .ops = ops, .ctx = ctx, .io = io, .io_cb = cb,
			    .timeout_ms = timeout_ms };
	timer_init(&d->timer, dial_timeout);
}

void dial_reset(struct dial *d)
{
	d->naddrs = d->next = 0;
	d->dest.family = 0;
	d->connecting = false;
}

void dial_set_addr(struct dial *d, const struct ipaddr *ip)
{
	d->addrs[0] = *ip;
	d->naddrs = 1;
	d->next = 0;
}

void dial_cancel(struct dial *d)
{
	if (d->dns_req)
		dns_cancel(d->dns_req);
	d->dns_req = NULL;
	d->connecting = false;
	timer_stop(d->loop, &d->timer);
}

static void dial_dns_done(void *arg, const struct dns_result *res)
{
	struct dial *d = arg;

	d->dns_req = NULL;
	if (!res->status) {
		d->naddrs = res->naddrs;
		d->next = 0;
		memcpy(d->addrs, res->addrs, res->naddrs * sizeof(res->addrs[0]));
	}
	if (d->ops->resolved(d->ctx, d, res))
		dial_connect(d, d->port);
}

void dial_resolve(struct dial *d, const char *name, uint16_t port)
{
	struct dns_result res;

	d->port = port;
	if (dns_cached(d->dns, name, &res)) {
		dial_dns_done(d, &res);
		return;
	}
	if (d->timeout_ms)
		timer_start(d->loop, &d->timer, d->timeout_ms);
	if (d->ops->resolving)
		d->ops->resolving(d->ctx, d);
	if (dns_resolve(d->dns, name, dial_dns_done, d, &d->dns_req)) {
		dial_cancel(d);
		d->ops->gave_up(d->ctx, d, -EIO, DIAL_END_DNS);
	}
}

void dial_connect(struct dial *d, uint16_t port)
{
	int last_err = -EHOSTUNREACH;

	d->port = port;
	while (d->next < d->naddrs) {
		struct sockaddr_storage dst, src;
		socklen_t slen = 0;
		bool bind_failed = false;
		d->dest = d->addrs[d->next];
		if (d->ops->source) {
			int rc = d->ops->source(d->ctx, d, &src, &slen);
			if (rc > 0)
				return;   /* the owner stopped the dial */
			if (rc < 0) {
				last_err = rc;
				d->next++;
				continue;
			}
		}
		socklen_t dlen = ipaddr_to_sockaddr(&d->dest, d->port, &dst);
		int fd = sock_connect_from((struct sockaddr *)&dst, dlen, slen ? (struct sockaddr *)&src : NULL,
					   slen, &bind_failed);
		if (fd >= 0) {
			io_init(d->io, fd, d->io_cb);
			io_want(d->loop, d->io, EPOLLOUT);
			d->connecting = true;
			if (d->timeout_ms)
				timer_start(d->loop, &d->timer, d->timeout_ms);
			return;
		}
		last_err = fd;
		if (!d->ops->failed || d->ops->failed(d->ctx, d, fd, bind_failed, false) == DIAL_NEXT_ADDR)
			d->next++;
	}
	timer_stop(d->loop, &d->timer);
	d->ops->gave_up(d->ctx, d, last_err, DIAL_END_SYNC);
}

void dial_io(struct dial *d)
{
	dial_io_events(d, 0);
}

void dial_io_events(struct dial *d, uint32_t revents)
{
	/* writable and nothing else: connected (a failed connect reports EPOLLERR), so the
	 * SO_ERROR query, one system call per connection, is only made when in doubt */
	int err = revents == EPOLLOUT ? 0 : sock_error(d->io->fd);

	d->connecting = false;
	if (!err) {
		timer_stop(d->loop, &d->timer);
		d->ops->connected(d->ctx, d);
		return;
	}
	io_close(d->loop, d->io);
	if (!d->ops->failed || d->ops->failed(d->ctx, d, err, false, true) == DIAL_NEXT_ADDR)
		d->next++;
	if (d->next >= d->naddrs) {
		timer_stop(d->loop, &d->timer);
		d->ops->gave_up(d->ctx, d, err, DIAL_END_ASYNC);
		return;
	}
	dial_connect(d, d->port);
}
