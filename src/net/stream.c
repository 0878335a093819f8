/* stream.c (net): plain or TLS byte streams over a non-blocking socket. May include core/
 * and net/ only. */
#include "net/stream.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "net/sock.h"

int stream_init(struct stream *st, int fd, SSL_CTX *ctx)
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
	SSL_set_accept_state(st->ssl);
	return 0;
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
	int r = SSL_accept(st->ssl);
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

long stream_read(struct stream *st, void *buf, size_t len)
{
	if (!st->ssl)
		return sock_read(st->fd, buf, len);
	ERR_clear_error();
	int r = SSL_read(st->ssl, buf, tls_len(len));
	if (r > 0)
		return r;
	switch (SSL_get_error(st->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		st->want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

long stream_write(struct stream *st, const void *buf, size_t len)
{
	if (!st->ssl)
		return sock_write(st->fd, buf, len);
	ERR_clear_error();
	int r = SSL_write(st->ssl, buf, tls_len(len));
	if (r > 0)
		return r;
	switch (SSL_get_error(st->ssl, r)) {
	case SSL_ERROR_WANT_WRITE:      /* bytes still pending keep EPOLLOUT wanted */
	case SSL_ERROR_WANT_READ:       /* rare (no renegotiation): input comes */
		return -EAGAIN;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
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
