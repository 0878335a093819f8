/* test_scan_verdict.c: scan --verify's parser of API answers (class, the IP a locked answer
 * names, the permission a 403 names) and how store and API combine into one class. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "scan/verdict.h"

static enum scan_api_state parse(int status, const char *body, char ip[SCAN_IP_MAX],
				 char perm[SCAN_PERM_MAX])
{
	return scan_verdict_parse(status, body, strlen(body), ip, perm);
}

static void test_parse_classes(void **state)
{
	(void)state;
	char ip[SCAN_IP_MAX], perm[SCAN_PERM_MAX];

	assert_int_equal(parse(200, "{\"object\":\"list\"}", ip, perm), SCAN_API_LIVE);
	assert_int_equal(parse(204, "", ip, perm), SCAN_API_LIVE);
	/* the gate's (and Stripe's) IP message, without and with the address appended */
	assert_int_equal(parse(401, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":"
			       "\"The API key provided does not allow requests from your IP address.\"}}",
			       ip, perm), SCAN_API_LOCKED);
	assert_string_equal(ip, "");
	assert_int_equal(parse(401, "{\"error\":{\"message\":\"The API key provided does not allow "
			       "requests from your IP address. (203.0.113.7)\"}}", ip, perm),
			 SCAN_API_LOCKED);
	assert_string_equal(ip, "203.0.113.7");
	assert_int_equal(parse(401, "{\"error\":{\"message\":\"The API key provided does not allow "
			       "requests from your IP address 2001:db8::5.\"}}", ip, perm), SCAN_API_LOCKED);
	assert_string_equal(ip, "2001:db8::5");
	/* a JSON escape is decoded before searching */
	assert_int_equal(parse(401, "{\"error\":{\"message\":\"does not allow requests from your IP "
			       "address (\\u0031.2.3.4)\"}}", ip, perm), SCAN_API_LOCKED);
	assert_string_equal(ip, "1.2.3.4");
	/* no address-like token is invented: "add", "ace", "999.1.1.1" are not addresses */
	assert_int_equal(parse(401, "{\"error\":{\"message\":\"does not allow requests from your IP "
			       "address; ace 999.1.1.1 dead:beef:\"}}", ip, perm), SCAN_API_LOCKED);
	assert_string_equal(ip, "");
	/* an IP named in another 401 is not taken */
	assert_int_equal(parse(401, "{\"error\":{\"message\":\"Invalid API Key provided: 10.0.0.1\"}}",
			       ip, perm), SCAN_API_INVALID);
	assert_string_equal(ip, "");
	assert_int_equal(parse(401, "{\"error\":{\"code\":\"api_key_expired\",\"message\":"
			       "\"Expired API Key provided: rk_test_***123\"}}", ip, perm), SCAN_API_INVALID);
	assert_int_equal(parse(401, "not json", ip, perm), SCAN_API_INVALID);
	assert_int_equal(parse(403, "{\"error\":{\"message\":\"The provided key 'rk_live_****ab12' "
			       "does not have the required permissions for this endpoint on account "
			       "'acct_1'. Having the 'rak_charge_read' permission would allow this request "
			       "to continue.\"}}", ip, perm), SCAN_API_RESTRICTED);
	assert_string_equal(perm, "rak_charge_read");
	/* a slug not closed by "' permission" is not taken */
	assert_int_equal(parse(403, "Having the 'rak_charge_read", ip, perm), SCAN_API_RESTRICTED);
	assert_string_equal(perm, "");
	assert_int_equal(parse(403, "Having the 'RAK x' permission", ip, perm), SCAN_API_RESTRICTED);
	assert_string_equal(perm, "");
	assert_int_equal(parse(429, "{}", ip, perm), SCAN_API_UNKNOWN);
	assert_int_equal(parse(500, "", ip, perm), SCAN_API_UNKNOWN);
	assert_int_equal(parse(404, "", ip, perm), SCAN_API_UNKNOWN);
}

static void test_finish(void **state)
{
	(void)state;
	struct scan_verdict v;

	memset(&v, 0, sizeof(v));
	v.store = SCAN_STORE_ACTIVE;
	v.n_allow = 2;
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_LOCKED);
	assert_string_equal(v.detail, "store: active, locked to 2 addresses");

	v.n_allow = 0;
	v.api = SCAN_API_UNKNOWN;
	snprintf(v.api_error, sizeof(v.api_error), "cannot reach x");
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_LIVE);
	assert_string_equal(v.detail, "store: active, any address; api: unknown (cannot reach x)");

	/* the API, when it can tell, decides */
	v.api = SCAN_API_INVALID;
	v.http_status = 401;
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_DEAD);

	memset(&v, 0, sizeof(v));
	v.api = SCAN_API_LOCKED;
	snprintf(v.ip, sizeof(v.ip), "1.2.3.4");
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_LOCKED);
	assert_string_equal(v.detail, "api: live but IP-locked (1.2.3.4 not allowed)");

	memset(&v, 0, sizeof(v));
	v.api = SCAN_API_RESTRICTED;
	v.probes[0] = SCAN_PROBE_DENIED;
	v.probes[1] = SCAN_PROBE_READ;
	v.probes[2] = SCAN_PROBE_READ;
	snprintf(v.perm, sizeof(v.perm), "rak_charge_read");
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_LIVE);
	assert_string_equal(v.detail, "api: restricted key; reads customers, balance; denied charges "
			    "(needs rak_charge_read)");

	memset(&v, 0, sizeof(v));
	v.store = SCAN_STORE_UNKNOWN;
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_UNKNOWN);
	assert_string_equal(v.detail, "store: not-in-store");
	v.store = SCAN_STORE_REVOKED;
	scan_verdict_finish(&v);
	assert_int_equal(v.live, SCAN_LIVE_DEAD);
}

static void test_fail_on(void **state)
{
	(void)state;
	int v;
	assert_true(scan_fail_on_parse("live", &v));
	assert_int_equal(v, SCAN_LIVE_LIVE);
	assert_true(scan_fail_on_parse("locked", &v));
	assert_int_equal(v, SCAN_LIVE_LOCKED);
	assert_true(scan_fail_on_parse("unknown", &v));
	assert_int_equal(v, SCAN_LIVE_UNKNOWN);
	assert_true(scan_fail_on_parse("any", &v));
	assert_int_equal(v, SCAN_LIVE_NONE);
	assert_true(scan_fail_on_parse("none", &v));
	assert_int_equal(v, -1);
	assert_false(scan_fail_on_parse("dead", &v));
	/* the order --fail-on relies on */
	assert_true(SCAN_LIVE_LIVE > SCAN_LIVE_LOCKED && SCAN_LIVE_LOCKED > SCAN_LIVE_UNKNOWN &&
		    SCAN_LIVE_UNKNOWN > SCAN_LIVE_DEAD && SCAN_LIVE_DEAD > SCAN_LIVE_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_classes),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_fail_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
