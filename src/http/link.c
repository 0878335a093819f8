/* link.c: blocking client connections with deadlines, nested TLS and one HTTP exchange. */
#include "http/link.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/loop.h"
#include "net/sock.h"

static BIO_METHOD *bio_method;

static int link_fail(struct vlink *l, enum vlink_fail f, const char *fmt, const char *arg)
{
	if (l->fail == VLINK_OK) {    /* the first, lowest-level reason is the one to show */
		l->fail = f;
		snprintf(l->err, sizeof(l->err), fmt, arg ? arg : "");
	}
	return -1;
}

void vlink_init(struct vlink *l, uint64_t deadline_ms)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->deadline_ms = deadline_ms;
}

/* Wait for events on the socket until the deadline: 0, or -1 with the timeout recorded. */
static int link_wait(struct vlink *l, short events)
{
	for (;;) {
		uint64_t now = loop_clock_ms();
		if (now >= l->deadline_ms)
			return link_fail(l, VLINK_TIMEOUT, "timed out%s", NULL);
		struct pollfd p = { .fd = l->fd, .events = events };
		int n = poll(&p, 1, (int)(l->deadline_ms - now));
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return link_fail(l, VLINK_IO, "poll: %s", strerror(errno));
	}
}

static long raw_read(struct vlink *l, void *buf, size_t len)
{
	for (;;) {
		long n = sock_read(l->fd, buf, len);
		if (n >= 0)
			return n;
		if (n != -EAGAIN)
			return link_fail(l, VLINK_IO, "read: %s", strerror((int)-n));
		if (link_wait(l, POLLIN))
			return -1;
	}
}

static int raw_write_all(struct vlink *l, const char *buf, size_t len)
{
	while (len) {
		long n = sock_write(l->fd, buf, len);
		if (n == -EAGAIN) {
			if (link_wait(l, POLLOUT))
				return -1;
			continue;
		}
		if (n <= 0)
			return link_fail(l, VLINK_IO, "write: %s", strerror(n ? (int)-n : EPIPE));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read from the layer `level` (0 = socket, k = ssl[k-1]): bytes, 0 at EOF, -1 on failure. */
static long layer_read(struct vlink *l, int level, void *buf, size_t len)
{
	if (level == 0)
		return raw_read(l, buf, len);
	SSL *ssl = l->ssl[level - 1];
	ERR_clear_error();
	int n = SSL_read(ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
	if (n > 0)
		return n;
	int e = SSL_get_error(ssl, n);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	unsigned long code = ERR_get_error();
	ERR_clear_error();
	return link_fail(l, VLINK_TLS, "TLS read: %s", code ? ERR_reason_error_string(code) : "connection lost");
}

static int layer_write_all(struct vlink *l, int level, const char *buf, size_t len)
{
	if (level == 0)
		return raw_write_all(l, buf, len);
	SSL *ssl = l->ssl[level - 1];
	while (len) {
		ERR_clear_error();
		int n = SSL_write(ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
		if (n <= 0) {
			unsigned long code = ERR_get_error();
			ERR_clear_error();
			return link_fail(l, VLINK_TLS, "TLS write: %s",
					 code ? ERR_reason_error_string(code) : "connection lost");
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int bio_write(BIO *b, const char *data, int len)
{
	struct vlink_bio *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	return layer_write_all(c->link, c->level, data, (size_t)len) ? -1 : len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct vlink_bio *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	long n = layer_read(c->link, c->level, buf, (size_t)len);
	return n < 0 ? -1 : (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;   /* writes are never buffered here */
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_get_method(void)
{
	if (!bio_method) {
		bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "iplock-vlink");
		if (!bio_method)
			return NULL;
		BIO_meth_set_write(bio_method, bio_write);
		BIO_meth_set_read(bio_method, bio_read);
		BIO_meth_set_ctrl(bio_method, bio_ctrl);
		BIO_meth_set_create(bio_method, bio_create);
	}
	return bio_method;
}

void vlink_cleanup(void)
{
	BIO_meth_free(bio_method);
	bio_method = NULL;
}

SSL_CTX *vlink_tls_ctx(const char *cafile, char *err, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, cap, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* many servers close without close_notify after Connection: close; framing still holds */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	int ok = cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
			: SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		unsigned long code = ERR_get_error();
		ERR_clear_error();
		snprintf(err, cap, "cannot load CA certificates%s%s: %s", cafile ? " from " : "",
			 cafile ? cafile : "", code ? ERR_reason_error_string(code) : "unknown error");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int vlink_connect(struct vlink *l, const char *host, uint16_t port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char portstr[8];
	int rc = -1;

	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g)
		return link_fail(l, VLINK_CONNECT, "cannot resolve the host: %s", gai_strerror(g));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		bool bind_failed;
		int fd = sock_connect_from(ai->ai_addr, ai->ai_addrlen, NULL, 0, &bind_failed);
		if (fd < 0) {
			link_fail(l, VLINK_CONNECT, "%s", strerror(-fd));
			continue;
		}
		l->fd = fd;
		if (link_wait(l, POLLOUT)) {
			close(fd);
			l->fd = -1;
			goto out;       /* the deadline is shared: no time left for another address */
		}
		int e = sock_error(fd);
		if (e) {
			link_fail(l, VLINK_CONNECT, "%s", strerror(e < 0 ? -e : e));
			close(fd);
			l->fd = -1;
			continue;
		}
		l->fail = VLINK_OK;   /* an earlier address failed, this one worked */
		l->err[0] = '\0';
		rc = 0;
		goto out;
	}
out:
	freeaddrinfo(res);
	return rc;
}

int vlink_tls(struct vlink *l, SSL_CTX *ctx, const char *host, bool host_is_ip)
{
	if (l->nssl >= 2)
		return link_fail(l, VLINK_TLS, "too many TLS layers%s", NULL);
	SSL *ssl = SSL_new(ctx);
	BIO *b = bio_get_method() ? BIO_new(bio_method) : NULL;
	if (!ssl || !b) {
		SSL_free(ssl);
		BIO_free(b);
		return link_fail(l, VLINK_TLS, "out of memory%s", NULL);
	}
	int k = l->nssl;
	l->bio[k].link = l;
	l->bio[k].level = k;
	BIO_set_data(b, &l->bio[k]);
	SSL_set_bio(ssl, b, b);
	l->ssl[k] = ssl;
	l->nssl++;
	if (host_is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	} else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
	}
	ERR_clear_error();
	if (SSL_connect(ssl) == 1)
		return 0;
	long vr = SSL_get_verify_result(ssl);
	unsigned long code = ERR_get_error();
	ERR_clear_error();
	if (vr != X509_V_OK) {
		l->fail = VLINK_OK;   /* the certificate is the reason, whatever the alert said */
		return link_fail(l, VLINK_TLS, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
	}
	if (l->fail != VLINK_OK)
		return -1;
	return link_fail(l, VLINK_TLS, "handshake failed: %s",
			 code ? ERR_reason_error_string(code) : "the peer closed the connection");
}

int vlink_write_all(struct vlink *l, const void *buf, size_t len)
{
	return layer_write_all(l, l->nssl, buf, len);
}

int vlink_exchange(struct vlink *l, const char *req, size_t len, bool connect, struct vresp *out)
{
	struct vresp_parser p;
	size_t total = 0, used;
	const char *err = NULL;
	char buf[4096];

	vresp_parser_init(&p, out, connect);
	if (vlink_write_all(l, req, len))
		return -1;
	/* a CONNECT answer is read one byte at a time: bytes after its head belong to the tunnel */
	size_t step = connect ? 1 : sizeof(buf);
	for (;;) {
		if (total >= VLINK_READ_CAP)
			return link_fail(l, VLINK_PROTOCOL, "response larger than %s", "1 MiB");
		long n = layer_read(l, l->nssl, buf, step);
		if (n < 0)
			return -1;
		enum vresp_result r = n == 0 ? vresp_parser_eof(&p, &err)
					     : vresp_parser_feed(&p, buf, (size_t)n, &used, &err);
		if (r == VRESP_DONE)
			return 0;
		if (r == VRESP_ERROR)
			return link_fail(l, n == 0 ? VLINK_IO : VLINK_PROTOCOL,
					 n == 0 ? "%s" : "not an HTTP response: %s", err);
		total += (size_t)n;
	}
}

void vlink_close(struct vlink *l)
{
	for (int k = l->nssl - 1; k >= 0; k--) {
		SSL_free(l->ssl[k]);   /* frees its BIO too */
		l->ssl[k] = NULL;
	}
	l->nssl = 0;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}
