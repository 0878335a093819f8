/* stream.c (net): plain or TLS byte streams over a non-blocking socket; the one place that
 * turns OpenSSL's read and write results into socket semantics. May include core/ and net/
 * only. */
#include "net/stream.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "net/sock.h"

static int stream_open(struct stream *st, int fd, SSL_CTX *ctx, bool server)
{
	st->fd = fd;
	st->ssl = NULL;
	st->want_write = false;
	if (!ctx)
		return 0;
	if (!(st->ssl = SSL_new(ctx)))
		return -ENOMEM;
	if (SSL_set_fd(st->ssl, fd) != 1) {
		SSL_free(st->ssl);
		st->ssl = NULL;
		return -ENOMEM;
	}
	if (server)
		SSL_set_accept_state(st->ssl);
	else
		SSL_set_connect_state(st->ssl);
	return 0;
}

int stream_init(struct stream *st, int fd, SSL_CTX *ctx)
{
	return stream_open(st, fd, ctx, true);
}

int stream_init_client(struct stream *st, int fd, SSL_CTX *ctx)
{
	return stream_open(st, fd, ctx, false);
}

void stream_free(struct stream *st)
{
	if (st->ssl)
		SSL_free(st->ssl);
	st->ssl = NULL;
}

int stream_handshake(struct stream *st)
{
	if (!st->ssl)
		return 1;
	ERR_clear_error();
	int r = SSL_do_handshake(st->ssl);   /* accept or connect, as the stream was made */
	if (r == 1)
		return 1;
	int e = SSL_get_error(st->ssl, r);
	st->want_write = e == SSL_ERROR_WANT_WRITE;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	return -EPROTO;
}

static int tls_len(size_t len)
{
	return len > INT32_MAX ? INT32_MAX : (int)len;
}

/* OpenSSL's answer to a read or write of r, as a socket call would give it. */
static long tls_result(struct stream *st, int r, bool reading)
{
	if (r > 0)
		return r;
	switch (SSL_get_error(st->ssl, r)) {
	case SSL_ERROR_WANT_READ:       /* a write: rare (no renegotiation), input comes */
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:      /* a write: bytes still pending keep EPOLLOUT wanted */
		if (reading)
			st->want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:     /* the peer's close_notify */
		return reading ? 0 : -EPIPE;
	case SSL_ERROR_SYSCALL:         /* the socket's own error (a reset), kept for the caller */
		ERR_clear_error();
		return errno ? -errno : -ECONNRESET;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

long stream_read(struct stream *st, void *buf, size_t len)
{
	if (!st->ssl)
		return sock_read(st->fd, buf, len);
	ERR_clear_error();
	errno = 0;
	return tls_result(st, SSL_read(st->ssl, buf, tls_len(len)), true);
}

long stream_write(struct stream *st, const void *buf, size_t len)
{
	if (!st->ssl)
		return sock_write(st->fd, buf, len);
	ERR_clear_error();
	errno = 0;
	return tls_result(st, SSL_write(st->ssl, buf, tls_len(len)), false);
}

void stream_shutdown(struct stream *st)
{
	if (!st->ssl) {
		if (st->fd >= 0)
			shutdown(st->fd, SHUT_WR);
		return;
	}
	if (st->fd >= 0 && SSL_is_init_finished(st->ssl)) {
		ERR_clear_error();
		SSL_shutdown(st->ssl);
		ERR_clear_error();
	}
}

size_t stream_pending(const struct stream *st)
{
	return st->ssl ? (size_t)SSL_pending(st->ssl) : 0;
}

bool stream_has_input(const struct stream *st)
{
	return st->ssl && (SSL_pending(st->ssl) > 0 || SSL_has_pending(st->ssl));
}
