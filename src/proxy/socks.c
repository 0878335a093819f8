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

#include "net/host.h"
#include "net/sock.h"
#include "proxy/respond.h"
#include "proxy/session.h"

enum socks_rep {
	SOCKS_OK = 0x00,
	SOCKS_GENERAL_FAILURE = 0x01,
	SOCKS_NOT_ALLOWED = 0x02,          /* connection not allowed by ruleset */
	SOCKS_NET_UNREACHABLE = 0x03,
	SOCKS_HOST_UNREACHABLE = 0x04,
	SOCKS_CONN_REFUSED = 0x05,
	SOCKS_TTL_EXPIRED = 0x06,          /* used for connect timeouts */
	SOCKS_CMD_UNSUPPORTED = 0x07,
	SOCKS_ATYP_UNSUPPORTED = 0x08,
};

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
	s->down.pend = malloc(n);
	if (!s->down.pend)
		return -ENOMEM;
	memcpy(s->down.pend, rep, n);
	s->down.pend_len = (uint32_t)n;
	s->status = 200;
	return 0;
}

/* Greeting: VER NMETHODS METHODS. Username/password when auth is on (no-auth is refused);
 * no-auth only on a proxy configured without auth. */
static ssize_t socks_greeting(struct session *s, const unsigned char *p, size_t n)
{
	bool want_auth = s->cfg->cfg->auth_required;
	unsigned char choice = 0xff;

	if (n < 2)
		return 0;
	if (p[0] != 5 || p[1] == 0) {
		s->reason = "not a SOCKS5 greeting";
		session_reply(s, NULL, 400, NULL);
		return -1;
	}
	if (n < 2u + p[1])
		return 0;
	for (unsigned i = 0; i < p[1]; i++) {
		if (want_auth && p[2 + i] == 0x02)
			choice = 0x02;
		if (!want_auth && p[2 + i] == 0x00)
			choice = 0x00;
	}
	unsigned char rep[2] = { 5, choice };
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
	return 2 + p[1];
}

/* RFC 1929: VER(1) ULEN UNAME PLEN PASSWD, checked like a Basic credential (same cache). */
static ssize_t socks_auth(struct session *s, const unsigned char *p, size_t n)
{
	char cred[600], basic[820];

	if (n < 2)
		return 0;
	size_t ulen = p[1];
	if (n < 2 + ulen + 1)
		return 0;
	size_t plen = p[2 + ulen];
	if (n < 3 + ulen + plen)
		return 0;
	if (p[0] != 1 || ulen == 0) {
		unsigned char rep[2] = { 1, 1 };
		socks_send_close(s, rep, 2, 407, "malformed SOCKS5 authentication");
		return -1;
	}
	memcpy(cred, p + 2, ulen);
	cred[ulen] = ':';
	memcpy(cred + ulen + 1, p + 3 + ulen, plen);
	memcpy(basic, "Basic ", 6);
	int b64 = EVP_EncodeBlock((unsigned char *)basic + 6, (unsigned char *)cred, (int)(ulen + 1 + plen));
	int rc = session_authenticate(s, basic, 6 + (size_t)b64);
	OPENSSL_cleanse(cred, sizeof(cred));
	OPENSSL_cleanse(basic, sizeof(basic));
	if (rc == -EACCES) {
		unsigned char rep[2] = { 1, 1 };
		socks_send_close(s, rep, 2, 407, "proxy credentials are not valid");
		return -1;
	}
	s->socks_busy = rc == -EBUSY;   /* over the user's cap: refused at the request */
	unsigned char ok[2] = { 1, 0 };
	if (sess_write(s, s->cio.fd, ok, 2) != 2) {
		session_close(s);
		return -1;
	}
	s->socks_step = SOCKS_STEP_REQUEST;
	return (ssize_t)(3 + ulen + plen);
}

/* VER CMD RSV ATYP DST.ADDR DST.PORT */
static ssize_t socks_request(struct session *s, const unsigned char *p, size_t n)
{
	unsigned char fail[10] = { 5, SOCKS_GENERAL_FAILURE, 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t alen, need;

	if (n < 4)
		return 0;
	if (p[0] != 5) {
		socks_send_close(s, fail, sizeof(fail), 400, "malformed SOCKS5 request");
		return -1;
	}
	switch (p[3]) {
	case 1: alen = 4; need = 4 + 4 + 2; break;
	case 4: alen = 16; need = 4 + 16 + 2; break;
	case 3:
		if (n < 5)
			return 0;
		alen = p[4];
		need = 4 + 1 + alen + 2;
		break;
	default:
		fail[1] = SOCKS_ATYP_UNSUPPORTED;
		socks_send_close(s, fail, sizeof(fail), 400, "SOCKS5 address type not supported");
		return -1;
	}
	if (n < need)
		return 0;
	if (p[1] != 1) {
		fail[1] = SOCKS_CMD_UNSUPPORTED;
		socks_send_close(s, fail, sizeof(fail), 400, "SOCKS5 command not supported (CONNECT only)");
		return -1;
	}
	s->is_connect = true;
	s->req_start_ms = loop_now(s->w->loop);
	s->port = (uint16_t)(p[need - 2] << 8 | p[need - 1]);
	if (p[3] == 3) {
		struct host h;
		const char *err = alen ? host_parse((const char *)p + 5, alen, &h) : "empty name";
		if (err) {
			snprintf(s->host, sizeof(s->host), "%.*s", (int)alen, (const char *)p + 5);
			respond_error_dup(s, 400, "bad_request_target", err);
			return -1;
		}
		snprintf(s->host, sizeof(s->host), "%s", h.name);
		if (h.kind == HOST_IP) {
			s->addrs[0] = h.ip;
			s->naddrs = 1;
		}
	} else {
		struct ipaddr ip = { .family = p[3] == 1 ? AF_INET : AF_INET6 };
		memcpy(ip.a, p + 4, alen);
		if (ip.family == AF_INET6) {
			/* a v4-mapped address is the IPv4 address, for every check that follows */
			struct sockaddr_storage ss;
			ipaddr_to_sockaddr(&ip, 0, &ss);
			ipaddr_from_sockaddr((struct sockaddr *)&ss, &ip);
		}
		s->addrs[0] = ip;
		s->naddrs = 1;
		ipaddr_format(&ip, s->host, sizeof(s->host));
	}
	if (s->socks_busy) {
		respond_error(s, 503, "too_many_connections", "this user is at its connection limit");
		return -1;
	}
	if (!session_admit_destination(s))
		return -1;
	s->cin->off += need;
	s->socks_step = SOCKS_STEP_DONE;
	session_route(s);
	return 0;
}

void socks_read(struct session *s)
{
	for (int guard = 0; guard < 4 && s->state == SESS_SOCKS; guard++) {
		const unsigned char *p = (const unsigned char *)s->cin->data + s->cin->off;
		size_t n = buf_pending(s->cin);
		ssize_t used;

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
