/* dial.h: reaching one of a destination's addresses: resolve the name (cache, then c-ares), try
 * each address with a non-blocking connect (optionally bound to a source address the owner
 * picks per attempt), finish the connect when the socket turns writable, and time it out.
 * Used by the proxy's sessions and inbound endpoints and by `iplock tunnel`. Includes core/
 * and net/ only. */
#ifndef IPLOCK_NET_DIAL_H
#define IPLOCK_NET_DIAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "net/addr.h"
#include "net/dns.h"

struct dial;

/* After a failed attempt: the next address, or the same address again (another source). */
enum dial_next { DIAL_NEXT_ADDR = 0, DIAL_SAME_ADDR };

/* How a dial ended without a connection (the err of ops->failed says why). */
enum dial_end {
	DIAL_END_SYNC = 0,   /* every address refused at connect() itself, or none was left */
	DIAL_END_ASYNC,      /* the last address failed while connecting */
	DIAL_END_TIMEOUT,    /* the resolve or an attempt outlived timeout_ms */
	DIAL_END_DNS,        /* a lookup could not be started */
};

struct dial_ops {
	/* A real lookup starts (not a cache hit). Optional. */
	void (*resolving)(void *ctx, struct dial *d);
	/* The lookup's answer (addresses already in d when res->status is 0): true dials them,
	 * false stops here (the owner has answered or closed). */
	bool (*resolved)(void *ctx, struct dial *d, const struct dns_result *res);
	/* The bind hook, before each attempt at d->addrs[d->next]: fill *src (*srclen 0: no bind)
	 * and return 0; return -errno to skip this address (that error is kept as the last), or 1
	 * to stop the dial (the owner has answered or closed). Optional: no bind. */
	int (*source)(void *ctx, struct dial *d, struct sockaddr_storage *src, socklen_t *srclen);
	/* An attempt failed (err < 0; bind_failed: at bind(); async: after connect() had started).
	 * Optional: the next address. */
	enum dial_next (*failed)(void *ctx, struct dial *d, int err, bool bind_failed, bool async);
	/* The socket is connected (in *d->io, its callback the owner's). */
	void (*connected)(void *ctx, struct dial *d);
	/* No connection: err is the last error, end says at which point. */
	void (*gave_up)(void *ctx, struct dial *d, int err, enum dial_end end);
};

struct dial {
	struct loop *loop;
	struct dns *dns;
	const struct dial_ops *ops;
	void *ctx;
	struct io *io;                /* the owner's watcher: the socket is installed here */
	io_cb io_cb;                  /* ... with this callback; it calls dial_io() while connecting */
	unsigned timeout_ms;          /* the resolve and each attempt; 0: the owner times the dial */
	struct timer timer;
	uint16_t port;
	struct ipaddr addrs[DNS_MAX_ADDRS];
	unsigned naddrs, next;        /* next: the address being (or to be) tried */
	struct ipaddr dest;           /* the address of the last attempt (family 0: none yet) */
	struct dns_req *dns_req;
	bool connecting;              /* a connect() is in flight on *io */
};

void dial_init(struct dial *d, struct loop *loop, struct dns *dns, const struct dial_ops *ops, void *ctx,
	       struct io *io, io_cb cb, unsigned timeout_ms);

/* Forget the addresses of a previous destination (the owner's next request). */
void dial_reset(struct dial *d);

/* Set the one address of an IP literal (then dial_connect). */
void dial_set_addr(struct dial *d, const struct ipaddr *ip);

/* Resolve name, then dial port on its addresses. Every outcome comes through ops, possibly
 * from inside this call (a cached answer). */
void dial_resolve(struct dial *d, const char *name, uint16_t port);

/* Dial port on the addresses already in d, from d->next on. */
void dial_connect(struct dial *d, uint16_t port);

/* The owner's io callback while the connect is in flight: finish it, or try the next address. */
void dial_io(struct dial *d);
/* The same with the event's revents: EPOLLOUT alone means connected without asking SO_ERROR. */
void dial_io_events(struct dial *d, uint32_t revents);

/* Stop the lookup and the timer (the socket, if any, stays with the owner's io). */
void dial_cancel(struct dial *d);

#endif
