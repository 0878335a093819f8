/* acceptor.c: accept loop with back-off, shared by every server through net/server.
 * net/ owns sockets, addresses, DNS, PROXY protocol, TLS contexts and streams, the relay and
 * the server runtime; it may include core/ and net/ only (tools/check-layers.sh). */
#include "net/acceptor.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"

static void acceptor_resume(struct loop *loop, struct timer *t)
{
	struct acceptor *a = container_of(t, struct acceptor, backoff);

	io_want(loop, &a->io, EPOLLIN);
}

static void acceptor_ready(struct loop *loop, struct io *io, uint32_t revents)
{
	struct acceptor *a = container_of(io, struct acceptor, io);

	(void)revents;
	for (int i = 0; i < ACCEPTOR_BATCH && a->io.fd != -1; i++) {
		struct sockaddr_storage peer;
		socklen_t plen;
		int fd = sock_accept(io->fd, &peer, &plen);
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
			log_warn("%s: accept: %s; pausing the listener for %d ms", a->what, strerror(-fd),
				 ACCEPTOR_BACKOFF_MS);
			io_want(loop, io, 0);
			timer_start(loop, &a->backoff, ACCEPTOR_BACKOFF_MS);
			return;
		}
		if (fd < 0)
			return;   /* EAGAIN, or a connection that died in the queue */
		a->on_accept(a, fd, &peer);
	}
}

int acceptor_start(struct loop *loop, struct acceptor *a, int lfd, const char *what, acceptor_cb cb)
{
	a->on_accept = cb;
	a->what = what;
	io_init(&a->io, lfd, acceptor_ready);
	timer_init(&a->backoff, acceptor_resume);
	return io_want(loop, &a->io, EPOLLIN);
}

void acceptor_close(struct loop *loop, struct acceptor *a)
{
	timer_stop(loop, &a->backoff);
	if (a->io.fd != -1)
		io_close(loop, &a->io);
}
