/* socks.c: SOCKS5 (RFC 1928) with username/password (RFC 1929), CONNECT only, on the same
 * sessions, users, pools, pinning, destination policy, limits and logs as HTTP. Names are
 * resolved by the proxy (socks5h) and checked like every other destination. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "core/codec.h"
#include "net/host.h"
#include "net/sock.h"
#include "proxy/session.h"
#include "proxy/socks_wire.h"

static void socks_send_close(struct session *s, const unsigned char *msg, size_t len, int status,
			     const char *reason)
{
	struct buf *b = buf_get();

	if (b && buf_append(b, msg, len)) {
		buf_put(b);
		b = NULL;
	}
	session_reply(s, b, status, reason);
}

static enum socks_rep rep_for(const char *code)
{
	static const struct { const char *code; enum socks_rep rep; } map[] = {
		{ "destination_forbidden", SOCKS_NOT_ALLOWED },
		{ "destination_not_allowed", SOCKS_NOT_ALLOWED },
		{ "port_not_allowed", SOCKS_NOT_ALLOWED },
		{ "bad_egress_pin", SOCKS_NOT_ALLOWED },
		{ "quota_exceeded", SOCKS_NOT_ALLOWED },
		{ "bad_request_target", SOCKS_NOT_ALLOWED },
		{ "dns_failure", SOCKS_HOST_UNREACHABLE },
		{ "connect_failed", SOCKS_HOST_UNREACHABLE },
		{ "network_unreachable", SOCKS_NET_UNREACHABLE },
		{ "connect_refused", SOCKS_CONN_REFUSED },
		{ "connect_timeout", SOCKS_TTL_EXPIRED },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].code, code))
			return map[i].rep;
	return SOCKS_GENERAL_FAILURE;
}

/* The proxy's refusal, in SOCKS terms: a reply with the code, then close. */
void socks_reply_error(struct session *s, const char *code, int status)
{
	unsigned char rep[10] = { 5, rep_for(code), 0, 1, 0, 0, 0, 0, 0, 0 };

	socks_send_close(s, rep, sizeof(rep), status, NULL);
}

/* Success: BND.ADDR/PORT is the egress side of the upstream connection. */
int socks_reply_success(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned char rep[22] = { 5, SOCKS_OK, 0 };
	size_t n;

	if (getsockname(s->uio.fd, (struct sockaddr *)&ss, &len) == -1)
		memset(&ss, 0, sizeof(ss));
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		rep[3] = 4;
		memcpy(rep + 4, &a->sin6_addr, 16);
		memcpy(rep + 20, &a->sin6_port, 2);
		n = 22;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		rep[3] = 1;
		memcpy(rep + 4, &a->sin_addr, 4);
		memcpy(rep + 8, &a->sin_port, 2);
		n = 10;
	}
	s->relay.down.pend = malloc(n);
	if (!s->relay.down.pend)
		return -ENOMEM;
	memcpy(s->relay.down.pend, rep, n);
	s->relay.down.pend_len = (uint32_t)n;
	s->status = 200;
	return 0;
}

/* Greeting: username/password when auth is on (no-auth is refused then); no-auth only on a
 * proxy configured without auth. */
static long socks_greeting(struct session *s, const uint8_t *p, size_t n)
{
	bool want_auth = s->cfg->cfg->auth_required;
	struct socks_greeting g;
	long used = socks_parse_greeting(p, n, &g);

	if (used < 0) {
		s->reason = "not a SOCKS5 greeting";
		session_reply(s, NULL, 400, NULL);
	}
	if (used <= 0)
		return used;
	uint8_t choice = want_auth ? (g.offers_userpass ? 0x02 : 0xff) : (g.offers_none ? 0x00 : 0xff);
	uint8_t rep[2] = { 5, choice };
	if (choice == 0xff) {
		socks_send_close(s, rep, 2, 407, want_auth ? "SOCKS5 client offered no username/password method"
							: "SOCKS5 client offered no acceptable method");
		return -1;
	}
	if (sess_write(s, s->cio.fd, rep, 2) != 2) {
		session_close(s);
		return -1;
	}
	s->socks_step = choice == 0x02 ? SOCKS_STEP_AUTH : SOCKS_STEP_REQUEST;
	return used;
}

/* RFC 1929 username/password, checked as a Basic credential (same users, cache, options). */
static long socks_auth(struct session *s, const uint8_t *p, size_t n)
{
	static const uint8_t refused[2] = { 1, 1 };
	char cred[520], basic[720];
	struct socks_userpass up;
	long used = socks_parse_userpass(p, n, &up);

	if (used < 0)
		socks_send_close(s, refused, 2, 407, "malformed SOCKS5 authentication");
	if (used <= 0)
		return used;
	memcpy(cred, up.user, up.ulen);
	cred[up.ulen] = ':';
	memcpy(cred + up.ulen + 1, up.pass, up.plen);
	memcpy(basic, "Basic ", 6);
	long b64 = codec_b64_encode(cred, up.ulen + 1 + up.plen, basic + 6, sizeof(basic) - 6, 0);
	int rc = session_authenticate(s, basic, 6 + (size_t)b64);
	OPENSSL_cleanse(cred, sizeof(cred));
	OPENSSL_cleanse(basic, sizeof(basic));
	if (rc == -EACCES || rc == -ETIMEDOUT) {
		socks_send_close(s, refused, 2, 407, rc == -EACCES ? "proxy credentials are not valid"
				 : "too many failed proxy logins from this address");
		return -1;
	}
	s->socks_busy = rc == -EBUSY;   /* over the user's cap: refused at the request */
	static const uint8_t ok[2] = { 1, 0 };
	if (sess_write(s, s->cio.fd, ok, 2) != 2) {
		session_close(s);
		return -1;
	}
	s->socks_step = SOCKS_STEP_REQUEST;
	return used;
}

static long socks_request(struct session *s, const uint8_t *p, size_t n)
{
	struct socks_request rq;
	uint8_t rep;
	long used = socks_parse_request(p, n, &rq, &rep);

	if (used < 0) {
		uint8_t fail[10] = { 5, rep, 0, 1, 0, 0, 0, 0, 0, 0 };
		socks_send_close(s, fail, sizeof(fail), 400,
				 rep == SOCKS_CMD_UNSUPPORTED ? "SOCKS5 command not supported (CONNECT only)"
				 : rep == SOCKS_ATYP_UNSUPPORTED ? "SOCKS5 address type not supported"
								 : "malformed SOCKS5 request");
	}
	if (used <= 0)
		return used;
	s->is_connect = true;
	s->req_start_ms = loop_now(s->w->loop);
	s->port = rq.port;
	if (rq.atyp == 3) {
		struct host h;
		const char *err = host_parse(rq.name, strlen(rq.name), &h);
		if (err) {
			snprintf(s->host, sizeof(s->host), "%s", rq.name);
			session_error_dup(s, 400, "bad_request_target", err);
			return -1;
		}
		snprintf(s->host, sizeof(s->host), "%s", h.name);
		if (h.kind == HOST_IP) {
			dial_set_addr(&s->dial, &h.ip);
		}
	} else {
		dial_set_addr(&s->dial, &rq.ip);
		ipaddr_format(&rq.ip, s->host, sizeof(s->host));
	}
	if (s->socks_busy) {
		session_error(s, 503, "too_many_connections", "this user is at its connection limit");
		return -1;
	}
	if (!session_admit_destination(s))
		return -1;
	s->cin->off += (size_t)used;
	s->socks_step = SOCKS_STEP_DONE;
	session_route(s);
	return 0;
}

void socks_read(struct session *s)
{
	for (int guard = 0; guard < 4 && s->state == SESS_SOCKS; guard++) {
		const uint8_t *p = (const uint8_t *)s->cin->data + s->cin->off;
		size_t n = buf_pending(s->cin);
		long used;

		switch (s->socks_step) {
		case SOCKS_STEP_GREETING: used = socks_greeting(s, p, n); break;
		case SOCKS_STEP_AUTH:     used = socks_auth(s, p, n); break;
		case SOCKS_STEP_REQUEST:  used = socks_request(s, p, n); return;
		default:                  return;
		}
		if (used <= 0)
			return;
		s->cin->off += (size_t)used;
	}
}
