/* test_socks_wire.c: SOCKS5 message parsing: partial input, each reply code, mapped IPv6; the
 * proxy's replies: an error code's REP, BND.ADDR/PORT of either family. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "proxy/socks_wire.h"

static void test_greeting(void **state)
{
	struct socks_greeting g;
	const uint8_t only_userpass[] = { 5, 1, 2 }, both[] = { 5, 2, 0, 2 }, bad[] = { 4, 1, 0 };

	(void)state;
	assert_int_equal(socks_parse_greeting(only_userpass, 2, &g), 0);   /* partial */
	assert_int_equal(socks_parse_greeting(only_userpass, 3, &g), 3);
	assert_true(g.offers_userpass);
	assert_false(g.offers_none);
	assert_int_equal(socks_parse_greeting(both, 4, &g), 4);
	assert_true(g.offers_none && g.offers_userpass);
	assert_int_equal(socks_parse_greeting(bad, 3, &g), -1);
}

static void test_userpass(void **state)
{
	struct socks_userpass up;
	const uint8_t msg[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'w' };
	const uint8_t empty_user[] = { 1, 0, 1, 'x' };

	(void)state;
	for (size_t n = 0; n < sizeof(msg); n++)
		assert_int_equal(socks_parse_userpass(msg, n, &up), 0);
	assert_int_equal(socks_parse_userpass(msg, sizeof(msg), &up), (long)sizeof(msg));
	assert_int_equal(up.ulen, 5);
	assert_memory_equal(up.user, "alice", 5);
	assert_int_equal(up.plen, 2);
	assert_int_equal(socks_parse_userpass(empty_user, sizeof(empty_user), &up), -1);
}

static void test_request(void **state)
{
	struct socks_request rq;
	uint8_t rep;
	const uint8_t dom[] = { 5, 1, 0, 3, 3, 'a', '.', 'b', 1, 187 };
	const uint8_t mapped[] = { 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 0, 80 };
	const uint8_t bind_cmd[] = { 5, 2, 0, 1, 1, 2, 3, 4, 0, 80 };
	const uint8_t bad_atyp[] = { 5, 1, 0, 9 };
	const uint8_t nul_name[] = { 5, 1, 0, 3, 2, 'a', 0, 0, 80 };

	(void)state;
	assert_int_equal(socks_parse_request(dom, sizeof(dom) - 1, &rq, &rep), 0);
	assert_int_equal(socks_parse_request(dom, sizeof(dom), &rq, &rep), (long)sizeof(dom));
	assert_string_equal(rq.name, "a.b");
	assert_int_equal(rq.port, 443);
	assert_int_equal(socks_parse_request(mapped, sizeof(mapped), &rq, &rep), (long)sizeof(mapped));
	assert_int_equal(rq.ip.family, AF_INET);
	assert_int_equal(rq.ip.a[0], 10);
	assert_int_equal(socks_parse_request(bind_cmd, sizeof(bind_cmd), &rq, &rep), -1);
	assert_int_equal(rep, SOCKS_CMD_UNSUPPORTED);
	assert_int_equal(socks_parse_request(bad_atyp, sizeof(bad_atyp), &rq, &rep), -1);
	assert_int_equal(rep, SOCKS_ATYP_UNSUPPORTED);
	assert_int_equal(socks_parse_request(nul_name, sizeof(nul_name), &rq, &rep), -1);
}

static void test_build_replies(void **state)
{
	unsigned char out[SOCKS_REPLY_MAX];
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	const unsigned char refused[10] = { 5, SOCKS_CONN_REFUSED, 0, 1 };
	const unsigned char ok4[10] = { 5, 0, 0, 1, 192, 0, 2, 7, 0x1f, 0x90 };

	(void)state;
	assert_int_equal(socks_build_error("connect_refused", out), 10);
	assert_memory_equal(out, refused, 10);
	assert_int_equal(socks_build_error("quota_exceeded", out), 10);
	assert_int_equal(out[1], SOCKS_NOT_ALLOWED);
	assert_int_equal(socks_build_error("no_such_code", out), 10);
	assert_int_equal(out[1], SOCKS_GENERAL_FAILURE);

	memset(&ss, 0, sizeof(ss));
	v4->sin_family = AF_INET;
	v4->sin_port = htons(8080);
	memcpy(&v4->sin_addr, ok4 + 4, 4);
	assert_int_equal(socks_build_success(&ss, out), 10);
	assert_memory_equal(out, ok4, 10);

	memset(&ss, 0, sizeof(ss));
	v6->sin6_family = AF_INET6;
	v6->sin6_port = htons(443);
	v6->sin6_addr.s6_addr[15] = 1;
	assert_int_equal(socks_build_success(&ss, out), 22);
	assert_int_equal(out[3], 4);
	assert_int_equal(out[19], 1);
	assert_int_equal(out[20] << 8 | out[21], 443);

	memset(&ss, 0, sizeof(ss));   /* getsockname failed: 0.0.0.0:0 */
	assert_int_equal(socks_build_success(&ss, out), 10);
	assert_int_equal(out[3], 1);
	assert_int_equal(out[4] | out[5] | out[6] | out[7] | out[8] | out[9], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_userpass),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_build_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
