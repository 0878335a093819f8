/* sock.h: socket helpers kept apart from protocol code (after Redis' anet.c).
 * Every function returns a file descriptor or 0 on success, and -errno on failure. */
#ifndef IPLOCK_SOCK_H
#define IPLOCK_SOCK_H

#include <stdbool.h>
#include <sys/socket.h>

/* Non-blocking listener; reuseport lets every worker thread own a listener on one port. */
int sock_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog);

/* Whether sa is free to listen on: a bind without SO_REUSEPORT, then close. A listening
 * socket of another process, SO_REUSEPORT or not, makes it fail with -EADDRINUSE, which a
 * SO_REUSEPORT bind by the same user would not: call it before the workers' sock_listen(...,
 * true, ...) so a second instance refuses to start instead of sharing the port. 0 or -errno. */
int sock_probe_free(const struct sockaddr *sa, socklen_t salen);

/* accept4() non-blocking and close-on-exec; TCP_NODELAY comes from the listener. */
int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

/* Non-blocking connect() leaving from src (never from another address): SO_REUSEADDR,
 * IP_BIND_ADDRESS_NO_PORT (the port is chosen at connect, so ports are not exhausted per
 * source address), bind(src, 0), connect(). Returns the fd (connect in progress or done) or
 * -errno; *bind_failed tells whether the failure was local to the source address. */
int sock_connect_from(const struct sockaddr *dst, socklen_t dstlen, const struct sockaddr *src,
		      socklen_t srclen, bool *bind_failed);

/* The pending error of a non-blocking connect (0 = connected). */
int sock_error(int fd);

int sock_set_nodelay(int fd);

/* Bytes readable without blocking are read; returns n, 0 on EOF, -EAGAIN, or -errno. */
long sock_read(int fd, void *buf, size_t len);
long sock_write(int fd, const void *buf, size_t len);

#endif
