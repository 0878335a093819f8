/* sock.c: listen, accept, connect from a chosen source address. */
#include "net/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int sock_set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ? -errno : 0;
}

int sock_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog)
{
	int one = 1, err;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	/* accepted sockets inherit TCP_NODELAY from the listener: one setsockopt, not one per client */
	if (sa->sa_family != AF_UNIX && sock_set_nodelay(fd) < 0)
		goto fail;
	if (bind(fd, sa, salen) == -1 || listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int sock_probe_free(const struct sockaddr *sa, socklen_t salen)
{
	int one = 1, rc = 0;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	/* SO_REUSEADDR: connections of ours in TIME_WAIT are no conflict; a listener is */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, sa, salen) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
	*peerlen = sizeof(*peer);
	int fd = accept4(lfd, (struct sockaddr *)peer, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1)
		return -errno;
	return fd;
}

int sock_connect_from(const struct sockaddr *dst, socklen_t dstlen, const struct sockaddr *src,
		      socklen_t srclen, bool *bind_failed)
{
	int one = 1, err;
	int fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*bind_failed = false;
	if (fd == -1)
		return -errno;
	if (src) {
		if (src->sa_family != dst->sa_family) {
			err = -EAFNOSUPPORT;
			*bind_failed = true;
			goto out;
		}
		/* the port is chosen at connect() (4-tuple unique, TIME-WAIT reuse by the kernel's
		 * rules): bind() takes no port, so SO_REUSEADDR would change nothing; one system
		 * call less per connection */
		if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) == -1 ||
		    bind(fd, src, srclen) == -1) {
			err = -errno;
			*bind_failed = true;
			goto out;
		}
	}
	sock_set_nodelay(fd);
	if (connect(fd, dst, dstlen) == -1 && errno != EINPROGRESS) {
		err = -errno;
		/* the kernel reports a source it cannot route from at connect time; EADDRNOTAVAIL
		 * here is no free port for this source and destination (bind succeeded), not a
		 * missing address: the caller tries another source without blaming this one */
		if (err == -ENETUNREACH || err == -EINVAL)
			*bind_failed = true;
		goto out;
	}
	return fd;
out:
	close(fd);
	return err;
}

int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -errno;
	return -err;
}

long sock_read(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

long sock_write(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(fd, buf, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}
