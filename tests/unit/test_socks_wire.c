/* test_socks_wire.c: SOCKS5 message parsing: partial input, each reply code, mapped IPv6. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_userpass),
		cmocka_unit_test(test_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
