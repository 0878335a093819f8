/* admit.c: a session's admission, everything decided before any byte leaves: credentials and
 * the per-user connection cap, the egress pin, port policy, the user's destination rules, and
 * every resolved address against the forbidden ranges and the proxy's own listeners; with
 * users_db, the month's quota of the user's plan. */
#include "proxy/admit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http/reply.h"
#include "proxy/auth.h"
#include "proxy/policy.h"
#include "proxy/respond.h"
#include "proxy/session.h"
#include "proxy/usage.h"

/* ---------------------------------------------------------------- quota */

/* users_db: over the month's plan, s is refused (HTTP 429 with the plan, SOCKS5 0x02). */
static bool admit_quota(struct session *s)
{
	const struct proxy_user *u;
	char msg[150], body[1024], lim[256];

	if (s->user < 0)
		return true;
	u = &session_cfg(s)->users[s->user];
	if (!u->quota || (!u->plan_requests && !u->plan_bytes))
		return true;
	int64_t req = atomic_load(&u->quota->month_req), bytes = atomic_load(&u->quota->month_bytes);
	bool over_r = u->plan_requests && (uint64_t)req >= u->plan_requests;
	bool over_b = u->plan_bytes && (uint64_t)bytes >= u->plan_bytes;
	if (!over_r && !over_b)
		return true;
	snprintf(msg, sizeof(msg), "monthly %s quota of your plan is used up (%" PRId64 " of %" PRIu64 ")",
		 over_r ? "request" : "byte", over_r ? req : bytes, over_r ? u->plan_requests : u->plan_bytes);
	if (s->socks) {
		session_error_dup(s, 429, "quota_exceeded", msg);
		return false;
	}
	/* the envelope of http/reply with the plan's limits beside code and message */
	long n = http_error_json(body, sizeof(body) - sizeof(lim), "proxy_error", "quota_exceeded", msg);
	int m = snprintf(lim, sizeof(lim), ", \"plan\": {\"requests_per_month\": %" PRIu64
			 ", \"bytes_per_month\": %" PRIu64 ", \"max_conns\": %u}, \"usage\": "
			 "{\"requests\": %" PRId64 ", \"bytes\": %" PRId64 "}}}\n", u->plan_requests,
			 u->plan_bytes, u->max_conns, req, bytes);
	struct buf *b = NULL;
	if (n > 3 && m > 0 && (size_t)m < sizeof(lim) && !memcmp(body + n - 3, "}}\n", 3)) {
		memcpy(body + n - 3, lim, (size_t)m + 1);
		n = n - 3 + m;
		b = respond_json_build(429, body, (size_t)n);
	}
	snprintf(s->reason_buf, sizeof(s->reason_buf), "%s", msg);
	s->code = "quota_exceeded";
	if (!b) {
		session_error_dup(s, 429, "quota_exceeded", msg);
		return false;
	}
	session_reply(s, b, 429, s->reason_buf);
	return false;
}

/* ---------------------------------------------------------------- admission */

/* The metrics' user of this connection: the authenticated one, or "" with auth = none. */
static void session_user_count(struct session *s)
{
	metrics_user_set(s->w->metrics, &s->ms, s->user >= 0 ? session_cfg(s)->users[s->user].name : "");
}

static const char *hdr_val(const struct session *s, int i, size_t *len)
{
	*len = s->req->hdrs[i].val_len;
	return s->cin->data + s->cin->off + s->req->hdrs[i].val_off;
}

/* X-Iplock-Egress: a 1-based pool index or a pool address; must agree with the username option */
static const char *parse_pin_header(struct session *s)
{
	size_t len;
	int pin, i = http_head_find(s->req, s->cin->data + s->cin->off, "x-iplock-egress");

	if (i < 0)
		return NULL;
	const char *v = hdr_val(s, i, &len);
	const char *err = egress_pin_parse(s->pool, v, len, &pin);
	if (err)
		return err;
	if (s->pin != -1 && s->pin != pin)
		return "X-Iplock-Egress disagrees with the username option";
	s->pin = pin;
	return NULL;
}

/* Authentication, limits and policy: everything decided before any byte leaves. */
/* Credentials (a "Basic ..." value) -> user, pin, pool, per-user cap. 0, -EACCES or -EBUSY. */
int session_authenticate(struct session *s, const char *basic, size_t len)
{
	const struct proxy_config *c = session_cfg(s);
	struct auth_result ar;
	struct ipaddr client;
	uint64_t now = loop_now(s->w->loop);

	ipaddr_from_sockaddr((struct sockaddr *)&s->peer, &client);
	bool slow_ok = !auth_client_throttled(s->w->auth, &client, now);
	int rc = auth_check_basic_ex(c->users, c->nusers, c->generation, s->w->auth, basic, len, slow_ok, &ar);
	if (rc == -EAGAIN)
		return -ETIMEDOUT;   /* throttled: no password check for this address for now */
	if (rc) {
		auth_client_failed(s->w->auth, &client, now);
		return -EACCES;
	}
	if (s->user != ar.user && s->counted_user) {
		atomic_fetch_sub(&s->cfg->user_conns[s->user], 1);
		s->counted_user = false;
	}
	s->user = ar.user;
	s->pin = ar.egress_pin;
	const struct proxy_user *u = &c->users[s->user];
	if (u->egress)
		s->pool = u->egress;
	session_user_count(s);
	if (!s->counted_user) {
		unsigned cap = u->max_conns ? u->max_conns : c->max_conns_per_user;
		unsigned open = atomic_fetch_add(&s->cfg->user_conns[s->user], 1) + 1;
		s->counted_user = true;
		if (cap && open > cap)
			return -EBUSY;
	}
	return 0;
}

/* Port policy and the user's destination rules, for any protocol (s->host, s->port set). */
bool session_admit_destination(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);

	if (s->pin != -1 && (size_t)s->pin > s->pool->n) {
		session_error(s, 400, "bad_egress_pin", "egress pin is outside your egress pool");
		return false;
	}
	const struct portset *ports = s->is_connect ? &c->connect_ports : &c->http_ports;
	if (!portset_has(ports, s->port)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s to port %u is not allowed",
			 s->is_connect ? "CONNECT" : "forwarding", s->port);
		session_error_dup(s, 403, "port_not_allowed", msg);
		return false;
	}
	if (s->user >= 0) {
		const struct proxy_user *u = &c->users[s->user];
		if (!dest_rules_allow(u->allow, u->nallow, s->host, s->port)) {
			session_error(s, 403, "destination_not_allowed",
				      "this destination is not in your allow list");
			return false;
		}
		if (!admit_quota(s))
			return false;   /* over the plan: no upstream connection */
	}
	return true;
}

/* Authentication, limits and policy: everything decided before any byte leaves. */
bool session_admit_request(struct session *s, bool local)
{
	const struct proxy_config *c = session_cfg(s);
	const char *base = s->cin->data + s->cin->off;

	s->pool = &((struct proxy_config *)c)->egress;
	if (c->auth_required) {
		int i = http_head_find(s->req, base, "proxy-authorization");
		if (i < 0 && local)   /* the proxy's own endpoints also take plain Authorization */
			i = http_head_find(s->req, base, "authorization");
		int rc = -EACCES;
		if (i >= 0) {
			size_t len;
			const char *v = hdr_val(s, i, &len);
			rc = session_authenticate(s, v, len);
		}
		if (rc == -EBUSY) {
			session_error(s, 503, "too_many_connections", "this user is at its connection limit");
			return false;
		}
		if (rc == -ETIMEDOUT) {
			session_error(s, 407, "proxy_auth_throttled",
				      "too many failed proxy logins from this address: try again in a minute");
			return false;
		}
		if (rc) {
			session_error(s, 407, i < 0 ? "proxy_auth_required" : "proxy_auth_invalid",
				      i < 0 ? "proxy authentication required"
					    : "proxy credentials are not valid");
			return false;
		}
	}
	session_user_count(s);   /* with auth = none: the "" user */
	if (local)
		return true;
	const char *pin_err = parse_pin_header(s);
	if (pin_err) {
		session_error_dup(s, 400, "bad_egress_pin", pin_err);
		return false;
	}
	return session_admit_destination(s);
}

/* Every resolved address is checked; one refused address refuses the request (fail closed:
 * a name with one private and one public record is not quietly sent to the public one). */
bool session_check_addresses(struct session *s)
{
	const struct proxy_config *c = session_cfg(s);

	const struct ipaddr *addrs = s->dial.addrs;

	for (unsigned i = 0; i < s->dial.naddrs; i++) {
		const char *range = ipaddr_check_destination(&addrs[i], c->allow_destinations);
		bool self = false;
		for (size_t l = 0; l < c->nlisten && !range; l++)
			if (s->port == c->listen[l].port &&
			    (ipaddr_equal(&addrs[i], &c->listen[l].ip) ||
			     (c->listen[l].ip.family == addrs[i].family &&
			      !memcmp(c->listen[l].ip.a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16))))
				self = true;
		if (range || self) {
			char ip[IPADDR_STRLEN], msg[200];
			ipaddr_format(&addrs[i], ip, sizeof(ip));
			if (self)
				snprintf(msg, sizeof(msg), "destination %s is this proxy", ip);
			else
				snprintf(msg, sizeof(msg), "destination resolves to %s, in %s, which is not allowed", ip, range);
			s->dest = addrs[i];
			session_error_dup(s, 403, "destination_forbidden", msg);
			return false;
		}
	}
	return true;
}
