/* test_proxyproto.c: PROXY protocol v1/v2 parsing, partial input, round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/proxyproto.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;

	assert_null(ipaddr_parse(s, strlen(s), &a));
	return a;
}

static void test_v1(void **state)
{
	struct pp_info pi;
	const char *err;
	const char *l = "PROXY TCP4 127.0.0.2 127.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n";
	struct ipaddr want = ip("127.0.0.2");

	(void)state;
	assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)l, strlen(l), &pi, &err), 42);
	assert_int_equal(pi.kind, PP_KIND_PROXY);
	assert_true(ipaddr_equal(&pi.src, &want));
	assert_int_equal(pi.sport, 51000);
	assert_int_equal(pi.dport, 443);
	/* every prefix is "need more" */
	for (size_t i = 0; i < 42; i++)
		assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)l, i, &pi, &err), 0);
	l = "PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
	assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)l, strlen(l), &pi, &err),
			 (int)strlen(l));
	want = ip("2001:db8::1");
	assert_true(ipaddr_equal(&pi.src, &want));
	l = "PROXY UNKNOWN\r\n";
	assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)l, strlen(l), &pi, &err), 15);
	assert_int_equal(pi.kind, PP_KIND_UNKNOWN);
	static const char *bad[] = {
		"GET / HTTP/1.1\r\n",
		"PROXY TCP4 127.0.0.2 127.0.0.1 51000\r\n",
		"PROXY TCP4 127.0.0.2  127.0.0.1 1 2\r\n",
		"PROXY TCP4 127.0.0.02 127.0.0.1 1 2\r\n",
		"PROXY TCP4 ::1 127.0.0.1 1 2\r\n",
		"PROXY TCP6 127.0.0.1 ::1 1 2\r\n",
		"PROXY TCP4 127.0.0.2 127.0.0.1 65536 2\r\n",
		"PROXY TCP4 127.0.0.2 127.0.0.1 01 2\r\n",
		"PROXY TCP4 127.0.0.2 127.0.0.1 1 2 3\r\n",
		"PROXY TCP4 127.0.0.2 127.0.0.1 1 2\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)bad[i], strlen(bad[i]), &pi,
						  &err), -EPROTO);
	char longl[200];
	memset(longl, 'A', sizeof(longl));
	memcpy(longl, "PROXY ", 6);
	assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)longl, sizeof(longl), &pi, &err),
			 -EPROTO);
}

static void test_v2_roundtrip(void **state)
{
	uint8_t b[128];
	struct pp_info pi;
	const char *err;
	struct ipaddr s4 = ip("127.0.0.5"), d4 = ip("127.0.0.1");
	struct ipaddr s6 = ip("2001:db8::7"), d6 = ip("::1");
	int n;

	(void)state;
	n = proxyproto_v2_build(&s4, 1234, &d4, 80, b, sizeof(b));
	assert_int_equal(n, 28);
	for (int i = 0; i < n; i++)
		assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)i, &pi, &err), 0);
	assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)n, &pi, &err), n);
	assert_int_equal(pi.kind, PP_KIND_PROXY);
	assert_true(ipaddr_equal(&pi.src, &s4));
	assert_int_equal(pi.sport, 1234);
	assert_int_equal(pi.dport, 80);
	n = proxyproto_v2_build(&s6, 1, &d6, 2, b, sizeof(b));
	assert_int_equal(n, 52);
	assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)n, &pi, &err), n);
	assert_true(ipaddr_equal(&pi.src, &s6));
	/* mapped v6 source becomes v4 */
	memset(b + 16, 0, 16);
	b[26] = b[27] = 0xff;
	b[28] = 127; b[29] = 0; b[30] = 0; b[31] = 9;
	assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)n, &pi, &err), n);
	struct ipaddr m = ip("127.0.0.9");
	assert_true(ipaddr_equal(&pi.src, &m));
	/* mixed families (a mapped client, an IPv6 listener): sent as TCP6, neither address lost */
	n = proxyproto_v2_build(&s4, 1, &d6, 2, b, sizeof(b));
	assert_int_equal(n, 52);
	assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)n, &pi, &err), n);
	assert_int_equal(pi.kind, PP_KIND_PROXY);
	assert_true(ipaddr_equal(&pi.src, &s4));
	assert_true(ipaddr_equal(&pi.dst, &d6));
	char mixed[128];
	n = proxyproto_v1_build(&s4, 1, &d6, 2, mixed, sizeof(mixed));
	assert_string_equal(mixed, "PROXY TCP6 ::ffff:127.0.0.5 ::1 1 2\r\n");
	assert_int_equal(proxyproto_parse(PP_V1, (const uint8_t *)mixed, (size_t)n, &pi, &err), n);
	assert_true(ipaddr_equal(&pi.src, &s4) && ipaddr_equal(&pi.dst, &d6));
	/* LOCAL: no addresses to send */
	struct ipaddr none = { 0 };
	n = proxyproto_v2_build(&none, 1, &d6, 2, b, sizeof(b));
	assert_int_equal(n, 16);
	assert_int_equal(proxyproto_parse(PP_V2, b, 16, &pi, &err), 16);
	assert_int_equal(pi.kind, PP_KIND_LOCAL);
	/* bad signature, bad version, short address block, too long */
	assert_int_equal(proxyproto_parse(PP_V2, (const uint8_t *)"GET /", 5, &pi, &err), -EPROTO);
	n = proxyproto_v2_build(&s4, 1, &d4, 2, b, sizeof(b));
	b[12] = 0x31;
	assert_int_equal(proxyproto_parse(PP_V2, b, (size_t)n, &pi, &err), -EPROTO);
	b[12] = 0x21;
	b[15] = 4;
	assert_int_equal(proxyproto_parse(PP_V2, b, 20, &pi, &err), -EPROTO);
	b[14] = 0xff;
	assert_int_equal(proxyproto_parse(PP_V2, b, 20, &pi, &err), -EPROTO);
	/* v1 text on a v2 listener */
	const char *l = "PROXY TCP4 127.0.0.2 127.0.0.1 1 2\r\n";
	assert_int_equal(proxyproto_parse(PP_V2, (const uint8_t *)l, strlen(l), &pi, &err), -EPROTO);
	char line[128];
	n = proxyproto_v1_build(&s4, 5, &d4, 6, line, sizeof(line));
	assert_string_equal(line, "PROXY TCP4 127.0.0.5 127.0.0.1 5 6\r\n");
}

/* proxyproto_recv: a header split across segments is taken whole, and only the header: the
 * request after it stays in the socket. */
static void test_recv_split(void **state)
{
	int sv[2];
	struct pp_reader r = { .want = PP_V2 };
	struct pp_info pi;
	const char *err;
	uint8_t h[64];
	char rest[32];
	struct ipaddr s4 = ip("198.51.100.7"), d4 = ip("127.0.0.1");
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	int n = proxyproto_v2_build(&s4, 40000, &d4, 3128, h, sizeof(h));
	assert_int_equal(proxyproto_recv(sv[0], &r, &pi, &err), 0);   /* nothing yet */
	assert_int_equal(write(sv[1], h, 10), 10);
	assert_int_equal(proxyproto_recv(sv[0], &r, &pi, &err), 0);
	assert_int_equal(r.len, 10);
	assert_int_equal(write(sv[1], h + 10, (size_t)n - 10), n - 10);
	assert_int_equal(write(sv[1], "GET / HTTP", 10), 10);
	assert_int_equal(proxyproto_recv(sv[0], &r, &pi, &err), 1);
	assert_int_equal(pi.kind, PP_KIND_PROXY);
	assert_true(ipaddr_equal(&pi.src, &s4));
	assert_int_equal(pi.sport, 40000);
	assert_int_equal(read(sv[0], rest, sizeof(rest)), 10);
	assert_memory_equal(rest, "GET / HTTP", 10);

	/* v1 line split, then garbage on a v1 listener, then a peer that closes first */
	struct pp_reader r1 = { .want = PP_V1 };
	assert_int_equal(write(sv[1], "PROXY TCP4 198.51.100.7 ", 24), 24);
	assert_int_equal(proxyproto_recv(sv[0], &r1, &pi, &err), 0);
	assert_int_equal(write(sv[1], "127.0.0.1 1 2\r\nX", 16), 16);
	assert_int_equal(proxyproto_recv(sv[0], &r1, &pi, &err), 1);
	assert_true(ipaddr_equal(&pi.src, &s4));
	assert_int_equal(read(sv[0], rest, sizeof(rest)), 1);
	struct pp_reader r2 = { .want = PP_V1 };
	assert_int_equal(write(sv[1], "GET / HTTP/1.1\r\n", 16), 16);
	assert_int_equal(proxyproto_recv(sv[0], &r2, &pi, &err), -EPROTO);
	assert_string_equal(err, "PROXY v1 header required");
	struct pp_reader r3 = { .want = PP_V2 };
	assert_int_equal(read(sv[0], rest, sizeof(rest)), 16);
	close(sv[1]);
	assert_int_equal(proxyproto_recv(sv[0], &r3, &pi, &err), -ECONNRESET);
	close(sv[0]);
}

/* The byte cap: a v1 line without CRLF ends at 107 bytes, a v2 length over the cap at once. */
static void test_recv_cap(void **state)
{
	int sv[2];
	struct pp_info pi;
	const char *err;
	char junk[200];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct pp_reader r = { .want = PP_V1 };
	memset(junk, 'A', sizeof(junk));
	memcpy(junk, "PROXY ", 6);
	assert_int_equal(write(sv[1], junk, 60), 60);
	assert_int_equal(proxyproto_recv(sv[0], &r, &pi, &err), 0);
	assert_int_equal(write(sv[1], junk + 60, 140), 140);
	assert_int_equal(proxyproto_recv(sv[0], &r, &pi, &err), -EPROTO);
	assert_string_equal(err, "PROXY v1 line too long");
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct pp_reader r2 = { .want = PP_V2 };
	uint8_t h[16] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0xff, 0xff };
	assert_int_equal(write(sv[1], h, 16), 16);
	assert_int_equal(proxyproto_recv(sv[0], &r2, &pi, &err), -EPROTO);
	assert_string_equal(err, "PROXY v2 header too long");
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2_roundtrip),
		cmocka_unit_test(test_recv_split),
		cmocka_unit_test(test_recv_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
