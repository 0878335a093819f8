/* test_stream.c: net/stream over a socketpair, plain and TLS (a self-signed P-256 certificate
 * made in memory): handshake, read, write, EAGAIN, pending bytes, close_notify and a clean
 * end, a failed handshake on bytes that are not TLS; a client-side stream against a server
 * one; a TCP reset under TLS read as -ECONNRESET (the proxy logs "connection reset" by it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/stream.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void test_plain(void **state)
{
	struct stream st;
	int sv[2];
	char b[16];

	(void)state;
	pair(sv);
	assert_int_equal(stream_init(&st, sv[0], NULL), 0);
	assert_false(stream_is_tls(&st));
	assert_int_equal(stream_handshake(&st), 1);
	assert_int_equal(stream_read(&st, b, sizeof(b)), -EAGAIN);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	assert_int_equal(stream_read(&st, b, 3), 3);
	assert_int_equal(stream_pending(&st), 0);     /* the rest is in the kernel, not here */
	assert_int_equal(stream_read(&st, b, sizeof(b)), 2);
	assert_int_equal(stream_write(&st, "abc", 3), 3);
	assert_int_equal(read(sv[1], b, sizeof(b)), 3);
	stream_shutdown(&st);
	assert_int_equal(read(sv[1], b, sizeof(b)), 0);   /* FIN */
	close(sv[1]);
	assert_int_equal(stream_read(&st, b, sizeof(b)), 0);
	stream_free(&st);
	close(sv[0]);
}

static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(pk);
	assert_non_null(x);
	assert_non_null(ctx);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pk), 1);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ctx;
}

/* Both handshakes driven in turns on one thread. */
static void handshake(struct stream *st, SSL *cli)
{
	int s_done = 0, c_done = 0;

	for (int i = 0; i < 100 && (!s_done || !c_done); i++) {
		if (!c_done) {
			int r = SSL_connect(cli);
			if (r == 1)
				c_done = 1;
			else
				assert_true(SSL_get_error(cli, r) == SSL_ERROR_WANT_READ);
		}
		if (!s_done) {
			int r = stream_handshake(st);
			assert_true(r >= 0);
			s_done = r == 1;
		}
	}
	assert_true(s_done && c_done);
}

static void test_tls(void **state)
{
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct stream st;
	int sv[2];
	char b[64];

	(void)state;
	pair(sv);
	assert_int_equal(stream_init(&st, sv[0], sctx), 0);
	assert_true(stream_is_tls(&st));
	SSL *cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	assert_int_equal(stream_handshake(&st), 0);   /* nothing from the client yet */
	assert_false(st.want_write);
	handshake(&st, cli);

	assert_int_equal(stream_read(&st, b, sizeof(b)), -EAGAIN);
	assert_int_equal(SSL_write(cli, "0123456789", 10), 10);
	assert_int_equal(stream_read(&st, b, 4), 4);
	assert_memory_equal(b, "0123", 4);
	assert_int_equal(stream_pending(&st), 6);     /* decrypted, held by TLS: epoll cannot see it */
	assert_int_equal(stream_read(&st, b, sizeof(b)), 6);
	assert_int_equal(stream_pending(&st), 0);

	assert_int_equal(stream_write(&st, "pong", 4), 4);
	int n = 0;
	for (int i = 0; i < 10 && n <= 0; i++)
		n = SSL_read(cli, b, sizeof(b));
	assert_int_equal(n, 4);
	assert_memory_equal(b, "pong", 4);

	stream_shutdown(&st);                         /* close_notify: a clean end for the client */
	n = SSL_read(cli, b, sizeof(b));
	assert_int_equal(n, 0);
	assert_int_equal(SSL_get_error(cli, n), SSL_ERROR_ZERO_RETURN);
	SSL_shutdown(cli);
	assert_int_equal(stream_read(&st, b, sizeof(b)), 0);   /* the client's close_notify */
	SSL_free(cli);
	stream_free(&st);
	assert_null(st.ssl);
	close(sv[0]);
	close(sv[1]);

	/* plain HTTP on a TLS stream: the handshake fails, no reads follow */
	pair(sv);
	assert_int_equal(stream_init(&st, sv[0], sctx), 0);
	const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(write(sv[1], req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	assert_int_equal(stream_handshake(&st), -EPROTO);
	stream_shutdown(&st);                         /* no close_notify before a handshake */
	stream_free(&st);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* Both ends are streams: the handshake driven by stream_handshake on each side. */
static void streams_handshake(struct stream *a, struct stream *b)
{
	int a_done = 0, b_done = 0;

	for (int i = 0; i < 100 && (!a_done || !b_done); i++) {
		if (!b_done) {
			int r = stream_handshake(b);
			assert_true(r >= 0);
			b_done = r == 1;
		}
		if (!a_done) {
			int r = stream_handshake(a);
			assert_true(r >= 0);
			a_done = r == 1;
		}
	}
	assert_true(a_done && b_done);
}

/* A connected, non-blocking TCP pair over loopback (a reset needs TCP). */
static void tcp_pair(int sv[2])
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	sv[1] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(sv[1], (struct sockaddr *)&sa, sizeof(sa)), 0);
	sv[0] = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(sv[0] >= 0);
	close(l);
	assert_int_equal(fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK), 0);
}

static void test_tls_client_side_and_reset(void **state)
{
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct stream srv, cli;
	int sv[2];
	char b[64];

	(void)state;
	tcp_pair(sv);
	assert_int_equal(stream_init(&srv, sv[0], sctx), 0);
	assert_int_equal(stream_init_client(&cli, sv[1], cctx), 0);
	assert_true(stream_is_tls(&cli));
	assert_int_equal(stream_read(&cli, b, sizeof(b)), -EAGAIN);   /* handshake under way */
	streams_handshake(&srv, &cli);
	assert_int_equal(stream_write(&cli, "hello", 5), 5);
	long n;
	for (int i = 0; i < 100 && (n = stream_read(&srv, b, sizeof(b))) == -EAGAIN; i++)
		usleep(1000);
	assert_int_equal(n, 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(stream_write(&srv, "world", 5), 5);
	for (int i = 0; i < 100 && (n = stream_read(&cli, b, sizeof(b))) == -EAGAIN; i++)
		usleep(1000);
	assert_int_equal(n, 5);
	assert_memory_equal(b, "world", 5);

	/* the client end goes away with a reset: the server's TLS read says so, not "TLS error" */
	struct linger lg = { 1, 0 };
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	stream_free(&cli);
	close(sv[1]);
	for (int i = 0; i < 100 && (n = stream_read(&srv, b, sizeof(b))) == -EAGAIN; i++)
		usleep(1000);
	assert_int_equal(n, -ECONNRESET);
	stream_free(&srv);
	close(sv[0]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_client_side_and_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
