/* test_metrics.c: histograms, slots, the sum over workers, the Prometheus text, and the egress
 * health state that egress_pick respects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/admin.h"
#include "proxy/config.h"
#include "proxy/egress.h"
#include "proxy/metrics.h"

static bool has_line(const struct mtext *t, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = t->buf; p && (p = strstr(p, line)); p++)
		if ((p == t->buf || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void ip(const char *s, struct ipaddr *out)
{
	assert_null(ipaddr_parse(s, strlen(s), out));
}

static void test_hist_buckets(void **state)
{
	struct hist h;
	struct hist_sum sum;
	struct mtext t;
	(void)state;

	memset(&h, 0, sizeof(h));
	memset(&sum, 0, sizeof(sum));
	hist_observe(&h, 0);          /* <= 0.0005 */
	hist_observe(&h, 500);        /* the bound itself is in its bucket */
	hist_observe(&h, 501);        /* <= 0.001 */
	hist_observe(&h, 30000);      /* <= 0.05 */
	hist_observe(&h, 99000000);   /* +Inf */
	hist_add_to(&h, &sum);
	hist_add_to(&h, &sum);        /* two workers with the same values */
	assert_int_equal(sum.count, 10);
	assert_int_equal(sum.sum_us, 2 * (500 + 501 + 30000 + 99000000ULL));
	mtext_init(&t, 1 << 20);
	hist_render(&t, "x_seconds", "help text", &sum);
	assert_false(t.overflow);
	assert_true(has_line(&t, "# HELP x_seconds help text"));
	assert_true(has_line(&t, "# TYPE x_seconds histogram"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"0.0005\"} 4"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"0.001\"} 6"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"0.025\"} 6"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"0.05\"} 8"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"10\"} 8"));
	assert_true(has_line(&t, "x_seconds_bucket{le=\"+Inf\"} 10"));
	assert_true(has_line(&t, "x_seconds_sum 198.062002"));
	assert_true(has_line(&t, "x_seconds_count 10"));
	mtext_free(&t);
}

static void test_mtext_cap(void **state)
{
	struct mtext t;
	(void)state;

	mtext_init(&t, 5000);
	for (int i = 0; i < 1000; i++)
		mtext_printf(&t, "line %d\n", i);
	assert_true(t.overflow);
	assert_true(t.len <= 5000);
	assert_int_equal(t.buf[t.len], '\0');
	size_t len = t.len;
	mtext_printf(&t, "more");
	assert_int_equal(t.len, len);
	mtext_free(&t);

	mtext_init(&t, 1 << 20);
	char big[10000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mtext_printf(&t, "%s|%s", "x", big);   /* one piece larger than the first allocation */
	assert_false(t.overflow);
	assert_int_equal(t.len, 2 + sizeof(big) - 1);
	mtext_free(&t);
}

static void test_label_escape(void **state)
{
	char out[32];
	(void)state;

	metrics_label_escape(out, sizeof(out), "a\"b\\c\nd");
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	metrics_label_escape(out, 3, "a\"b");   /* never splits an escape */
	assert_string_equal(out, "a");
	metrics_label_escape(out, sizeof(out), "alice");
	assert_string_equal(out, "alice");
}

static void test_user_slots(void **state)
{
	struct metrics *m = metrics_new();
	char name[32];
	(void)state;

	assert_non_null(m);
	assert_int_equal(metrics_user_slot(m, "alice"), 0);
	assert_int_equal(metrics_user_slot(m, "bob"), 1);
	assert_int_equal(metrics_user_slot(m, "alice"), 0);
	assert_int_equal(metrics_user_slot(m, ""), 2);
	for (int i = 3; i < METRICS_USERS_MAX - 1; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(metrics_user_slot(m, name), i);
	}
	/* the last slot takes every further user */
	assert_int_equal(metrics_user_slot(m, "late1"), METRICS_USERS_MAX - 1);
	assert_int_equal(metrics_user_slot(m, "late2"), METRICS_USERS_MAX - 1);
	assert_string_equal(m->users[METRICS_USERS_MAX - 1].name, METRICS_USER_OTHER);
	assert_int_equal(metrics_user_slot(m, "u7"), 7);
	assert_int_equal(metrics_user_slot(m, "bob"), 1);

	struct ipaddr a, b;
	ip("127.0.0.2", &a);
	ip("::1", &b);
	assert_int_equal(metrics_egress_slot(m, &a), 0);
	assert_int_equal(metrics_egress_slot(m, &b), 1);
	assert_int_equal(metrics_egress_slot(m, &a), 0);

	static const char code[] = "port_not_allowed";
	char copy[sizeof(code)];
	memcpy(copy, code, sizeof(code));
	metrics_code_count(m, code);
	metrics_code_count(m, copy);     /* equal text, another pointer: the same code */
	metrics_code_count(m, "proxy_auth_invalid");
	assert_int_equal(atomic_load(&m->ncodes), 2);
	assert_int_equal(atomic_load(&m->codes[0].n), 2);
	metrics_free(m);
}

/* Two workers with overlapping users, addresses and codes: the text has their sums. */
static void test_render_sum(void **state)
{
	struct metrics *w1 = metrics_new(), *w2 = metrics_new();
	struct metrics_snapshot snap;
	struct mtext t;
	struct ipaddr e2, e3, e9;
	(void)state;

	ip("127.0.0.2", &e2);
	ip("127.0.0.3", &e3);
	ip("127.0.0.9", &e9);
	mc_add(&w1->accepted, 5);
	mc_add(&w2->accepted, 7);
	mc_add(&w1->active, 1);
	mc_add(&w1->auth_failures, 2);
	mc_add(&w1->users[metrics_user_slot(w1, "alice")].c[MU_TUNNELS_TOTAL], 3);
	mc_add(&w2->users[metrics_user_slot(w2, "bob")].c[MU_TUNNELS_TOTAL], 1);
	mc_add(&w2->users[metrics_user_slot(w2, "alice")].c[MU_TUNNELS_TOTAL], 4);
	mc_add(&w2->users[metrics_user_slot(w2, "alice")].c[MU_BYTES_DOWN], 1000);
	mc_add(&w1->egress[metrics_egress_slot(w1, &e3)].c[ME_CONNS_TOTAL], 2);
	mc_add(&w2->egress[metrics_egress_slot(w2, &e2)].c[ME_CONNS_TOTAL], 6);
	mc_add(&w2->egress[metrics_egress_slot(w2, &e3)].c[ME_CONNS_TOTAL], 1);
	mc_sub(&w2->egress[metrics_egress_slot(w2, &e3)].c[ME_CONNS_TOTAL], 1);
	metrics_code_count(w1, "proxy_auth_invalid");
	metrics_code_count(w2, "proxy_auth_invalid");
	metrics_code_count(w2, "destination_forbidden");
	hist_observe(&w1->connect, 1500);

	memset(&snap, 0, sizeof(snap));
	snap.workers = 2;
	assert_int_equal(metrics_snapshot_add(&snap, w1), 0);
	assert_int_equal(metrics_snapshot_add(&snap, w2), 0);
	assert_int_equal(metrics_snapshot_egress_up(&snap, &e2, true), 0);
	assert_int_equal(metrics_snapshot_egress_up(&snap, &e3, false), 0);
	assert_int_equal(metrics_snapshot_egress_up(&snap, &e9, false), 0);
	assert_int_equal(metrics_snapshot_egress_up(&snap, &e9, true), 0);   /* up in another pool */
	mtext_init(&t, 1 << 20);
	metrics_render(&snap, &t);
	assert_false(t.overflow);
	assert_true(has_line(&t, "iplock_workers 2"));
	assert_true(has_line(&t, "iplock_draining 0"));
	assert_true(has_line(&t, "iplock_client_connections_total 12"));
	assert_true(has_line(&t, "iplock_client_connections_active 1"));
	assert_true(has_line(&t, "iplock_auth_failures_total 2"));
	assert_true(has_line(&t, "# TYPE iplock_denials_total counter"));
	assert_true(has_line(&t, "iplock_denials_total{code=\"proxy_auth_invalid\"} 2"));
	assert_true(has_line(&t, "iplock_denials_total{code=\"destination_forbidden\"} 1"));
	assert_true(has_line(&t, "iplock_user_tunnels_total{user=\"alice\"} 7"));
	assert_true(has_line(&t, "iplock_user_tunnels_total{user=\"bob\"} 1"));
	assert_true(has_line(&t, "iplock_user_bytes_total{user=\"alice\",direction=\"down\"} 1000"));
	assert_true(has_line(&t, "iplock_user_bytes_total{user=\"bob\",direction=\"up\"} 0"));
	assert_true(has_line(&t, "iplock_user_requests_total{user=\"alice\",kind=\"connect\"} 0"));
	assert_true(has_line(&t, "iplock_user_requests_total{user=\"bob\",kind=\"socks\"} 0"));
	assert_true(has_line(&t, "iplock_egress_bytes_total{egress=\"127.0.0.3\",direction=\"down\"} 0"));
	assert_null(strstr(t.buf, "(null)"));
	assert_true(has_line(&t, "iplock_egress_connections_total{egress=\"127.0.0.2\"} 6"));
	assert_true(has_line(&t, "iplock_egress_connections_total{egress=\"127.0.0.3\"} 2"));
	assert_true(has_line(&t, "iplock_egress_connections_total{egress=\"127.0.0.9\"} 0"));
	assert_true(has_line(&t, "iplock_egress_up{egress=\"127.0.0.2\"} 1"));
	assert_true(has_line(&t, "iplock_egress_up{egress=\"127.0.0.3\"} 0"));
	assert_true(has_line(&t, "iplock_egress_up{egress=\"127.0.0.9\"} 1"));
	assert_true(has_line(&t, "iplock_upstream_connect_seconds_bucket{le=\"0.001\"} 0"));
	assert_true(has_line(&t, "iplock_upstream_connect_seconds_bucket{le=\"0.0025\"} 1"));
	assert_true(has_line(&t, "iplock_upstream_connect_seconds_count 1"));
	assert_true(has_line(&t, "iplock_dns_lookup_seconds_count 0"));
	/* sorted: alice before bob, and every family announced once */
	assert_true(strstr(t.buf, "tunnels_total{user=\"alice\"}") < strstr(t.buf, "tunnels_total{user=\"bob\"}"));
	const char *p = strstr(t.buf, "# TYPE iplock_user_bytes_total");
	assert_non_null(p);
	assert_null(strstr(p + 1, "# TYPE iplock_user_bytes_total"));
	/* every sample line is "name{labels} value" or "name value" */
	for (char *line = t.buf; *line; ) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		if (*line != '#') {
			char *sp = memchr(line, ' ', (size_t)(nl - line));
			assert_non_null(sp);
			assert_true(sp[1] >= '0' && sp[1] <= '9');
		}
		line = nl + 1;
	}
	mtext_free(&t);
	metrics_snapshot_free(&snap);
	metrics_free(w1);
	metrics_free(w2);
}

/* An address that fails its probe leaves rotation, pins to it fail closed, and it comes back. */
static void test_egress_health(void **state)
{
	struct egress_pool p;
	struct ipaddr a[2];
	size_t idx;
	(void)state;

	ip("127.0.0.2", &a[0]);
	ip("127.0.0.3", &a[1]);
	assert_int_equal(egress_pool_init(&p, a, 2, EGRESS_ROUND_ROBIN), 0);
	assert_true(egress_is_up(&p, 0, 0) && egress_is_up(&p, 1, 0));
	egress_set_health(&p, &a[1], false);
	assert_false(egress_is_up(&p, 1, 0));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(egress_pick(&p, "h", -1, 0, 0, &idx), 0);
		assert_int_equal(idx, 0);
	}
	assert_int_equal(egress_pick(&p, "h", 2, 0, 0, &idx), -ENOENT);
	egress_set_health(&p, &a[0], false);
	assert_int_equal(egress_pick(&p, "h", -1, 0, 0, &idx), -ENOENT);
	egress_set_health(&p, &a[1], true);
	assert_int_equal(egress_pick(&p, "h", -1, 0, 0, &idx), 0);
	assert_int_equal(idx, 1);
	/* the local-failure mark and the probe verdict are separate: both must allow */
	egress_mark_down(&p, 1, 100, 50);
	assert_false(egress_is_up(&p, 1, 120));
	assert_true(egress_is_up(&p, 1, 150));
	assert_false(egress_is_up(&p, 2, 150));   /* out of range */
	egress_pool_free(&p);
}

static const char *load(const char *extra, struct proxy_config **cfg, char *err, size_t cap)
{
	char text[1024];

	snprintf(text, sizeof(text), "[proxy]\nlisten = 127.0.0.1:3128\negress = 127.0.0.2\n"
		 "auth = none\nopen_proxy = yes\n%s\n", extra);
	return proxy_config_load_string(text, "t.ini", cfg, err, cap);
}

static void test_config_keys(void **state)
{
	struct proxy_config *cfg;
	char err[256], txt[IPADDR_STRLEN];
	(void)state;

	assert_null(load("", &cfg, err, sizeof(err)));
	assert_int_equal(cfg->admin.port, 0);
	assert_int_equal(cfg->health_probe.kind, 0);
	assert_int_equal(cfg->health_interval_ms, 5000);
	assert_int_equal(cfg->health_timeout_ms, 2000);
	assert_int_equal(cfg->drain_timeout_ms, 30000);
	proxy_config_free(cfg);

	assert_null(load("admin_listen = 9090\nhealth_probe = 192.0.2.1:443\nhealth_interval = 500ms\n"
			 "health_timeout = 1s\ndrain_timeout = 0", &cfg, err, sizeof(err)));
	ipaddr_format(&cfg->admin.ip, txt, sizeof(txt));
	assert_string_equal(txt, "127.0.0.1");       /* a bare port is loopback */
	assert_int_equal(cfg->admin.port, 9090);
	assert_int_equal(cfg->health_probe.kind, HOST_IP);
	assert_int_equal(cfg->health_probe_port, 443);
	assert_int_equal(cfg->health_interval_ms, 500);
	assert_int_equal(cfg->health_timeout_ms, 1000);
	assert_int_equal(cfg->drain_timeout_ms, 0);
	proxy_config_free(cfg);

	assert_null(load("admin_listen = [::1]:9091\nhealth_probe = probe.example.com:80", &cfg, err, sizeof(err)));
	assert_int_equal(cfg->admin.ip.family, AF_INET6);
	assert_int_equal(cfg->health_probe.kind, HOST_NAME);
	assert_string_equal(cfg->health_probe.name, "probe.example.com");
	proxy_config_free(cfg);

	assert_non_null(load("admin_listen = localhost:9090", &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "t.ini:6: admin_listen"));
	assert_non_null(load("admin_listen = 127.0.0.1:3128", &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "also a proxy listen address"));
	assert_non_null(load("admin_listen = 0", &cfg, err, sizeof(err)));
	assert_non_null(load("health_probe = 192.0.2.1", &cfg, err, sizeof(err)));   /* port required */
	assert_non_null(load("health_interval = 10ms", &cfg, err, sizeof(err)));
	assert_non_null(load("drain_timeout = forever", &cfg, err, sizeof(err)));
}

static enum admin_route route(const char *req, bool *head)
{
	return admin_route_parse(req, strlen(req), head);
}

static void test_admin_route(void **state)
{
	bool head;
	(void)state;

	assert_int_equal(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &head), ADMIN_METRICS);
	assert_false(head);
	assert_int_equal(route("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", &head), ADMIN_METRICS);
	assert_int_equal(route("HEAD /healthz HTTP/1.0\r\n\r\n", &head), ADMIN_HEALTHZ);
	assert_true(head);
	assert_int_equal(route("GET /healthz\r\n\r\n", &head), ADMIN_HEALTHZ);   /* HTTP/0.9 style */
	assert_int_equal(route("POST /metrics HTTP/1.1\r\n\r\n", &head), ADMIN_BAD_METHOD);
	assert_int_equal(route("get /metrics HTTP/1.1\r\n\r\n", &head), ADMIN_BAD_METHOD);
	assert_int_equal(route("GET /metricsx HTTP/1.1\r\n\r\n", &head), ADMIN_NOT_FOUND);
	assert_int_equal(route("GET /metric HTTP/1.1\r\n\r\n", &head), ADMIN_NOT_FOUND);
	assert_int_equal(route("GET / HTTP/1.1\r\n\r\n", &head), ADMIN_NOT_FOUND);
	assert_int_equal(route("GET\r\nX: /metrics y\r\n\r\n", &head), ADMIN_BAD);   /* no space on line 1 */
	assert_int_equal(route(" /metrics HTTP/1.1\r\n\r\n", &head), ADMIN_BAD);
	assert_int_equal(route("", &head), ADMIN_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_mtext_cap),
		cmocka_unit_test(test_label_escape),
		cmocka_unit_test(test_user_slots),
		cmocka_unit_test(test_render_sum),
		cmocka_unit_test(test_egress_health),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_admin_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
