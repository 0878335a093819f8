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
#include "proxy/admit.h"
#include "proxy/route.h"
#include "proxy/session.h"
#include "proxy/socks.h"
#include "proxy/socks_wire.h"

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
		session_reply_bytes(s, rep, 2, 407, want_auth ? "SOCKS5 client offered no username/password method"
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
		session_reply_bytes(s, refused, 2, 407, "malformed SOCKS5 authentication");
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
		session_reply_bytes(s, refused, 2, 407, rc == -EACCES ? "proxy credentials are not valid"
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
		session_reply_bytes(s, fail, sizeof(fail), 400,
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

/* SESS_SOCKS: the client spoke: read what it sent, then negotiate on. */
void socks_input(struct session *s)
{
	if (!s->cin && !(s->cin = buf_get())) {
		session_close(s);
		return;
	}
	buf_compact(s->cin);
	long n = sess_read(s, s->cio.fd, s->cin->data + s->cin->len, buf_room(s->cin));
	if (n == -EAGAIN)
		return;
	if (n <= 0 || buf_room(s->cin) == 0) {
		s->reason = "client closed during SOCKS5 negotiation";
		session_close(s);
		return;
	}
	s->cin->len += (size_t)n;
	socks_read(s);
}
