/* acceptor.h: a listening socket on an event loop. Accepts in batches and, when the process
 * is out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), stops accepting for a
 * moment instead of spinning on a listener that stays readable. */
#ifndef IPLOCK_NET_ACCEPTOR_H
#define IPLOCK_NET_ACCEPTOR_H

#include <sys/socket.h>

#include "core/loop.h"

#define ACCEPTOR_BATCH 64           /* connections taken per readiness event */
#define ACCEPTOR_BACKOFF_MS 100     /* pause after running out of descriptors */

struct acceptor;
typedef void (*acceptor_cb)(struct acceptor *a, int fd, const struct sockaddr_storage *peer);

struct acceptor {
	struct io io;
	struct timer backoff;
	acceptor_cb on_accept;     /* owns fd from then on */
	const char *what;          /* names the listener in the log line */
};

/* Takes lfd (non-blocking, listening) and starts polling it. Returns 0 or -errno. */
int acceptor_start(struct loop *loop, struct acceptor *a, int lfd, const char *what, acceptor_cb cb);
void acceptor_close(struct loop *loop, struct acceptor *a);   /* fine on a closed one */

#endif
