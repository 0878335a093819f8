/* socks_wire.c: SOCKS5 message parsing, every length checked before it is used, and the
 * proxy's replies as bytes. */
#include "proxy/socks_wire.h"

#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

long socks_parse_greeting(const uint8_t *p, size_t n, struct socks_greeting *out)
{
	if (n < 2)
		return 0;
	if (p[0] != 5 || p[1] == 0)
		return -1;
	if (n < 2u + p[1])
		return 0;
	out->offers_none = out->offers_userpass = false;
	for (unsigned i = 0; i < p[1]; i++) {
		if (p[2 + i] == 0x00)
			out->offers_none = true;
		if (p[2 + i] == 0x02)
			out->offers_userpass = true;
	}
	return 2 + p[1];
}

long socks_parse_userpass(const uint8_t *p, size_t n, struct socks_userpass *out)
{
	if (n < 2)
		return 0;
	if (p[0] != 1 || p[1] == 0)
		return -1;
	size_t ulen = p[1];
	if (n < 2 + ulen + 1)
		return 0;
	size_t plen = p[2 + ulen];
	if (n < 3 + ulen + plen)
		return 0;
	out->user = p + 2;
	out->ulen = ulen;
	out->pass = p + 3 + ulen;
	out->plen = plen;
	return (long)(3 + ulen + plen);
}

long socks_parse_request(const uint8_t *p, size_t n, struct socks_request *out, uint8_t *rep)
{
	size_t alen, need;

	*rep = SOCKS_GENERAL_FAILURE;
	if (n < 4)
		return 0;
	if (p[0] != 5 || p[2] != 0)
		return -1;
	switch (p[3]) {
	case 1: alen = 4; need = 4 + 4 + 2; break;
	case 4: alen = 16; need = 4 + 16 + 2; break;
	case 3:
		if (n < 5)
			return 0;
		alen = p[4];
		need = 4 + 1 + alen + 2;
		if (alen == 0)
			return -1;
		break;
	default:
		*rep = SOCKS_ATYP_UNSUPPORTED;
		return -1;
	}
	if (n < need)
		return 0;
	if (p[1] != 1) {
		*rep = SOCKS_CMD_UNSUPPORTED;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->cmd = p[1];
	out->atyp = p[3];
	out->port = (uint16_t)(p[need - 2] << 8 | p[need - 1]);
	if (p[3] == 3) {
		if (memchr(p + 5, '\0', alen))
			return -1;
		memcpy(out->name, p + 5, alen);
		out->name[alen] = '\0';
	} else {
		struct ipaddr ip = { .family = p[3] == 1 ? AF_INET : AF_INET6 };
		struct sockaddr_storage ss;
		memcpy(ip.a, p + 4, alen);
		/* through a socket address and back: a v4-mapped IPv6 becomes its IPv4 */
		ipaddr_to_sockaddr(&ip, 0, &ss);
		ipaddr_from_sockaddr((struct sockaddr *)&ss, &out->ip);
	}
	return (long)need;
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

size_t socks_build_error(const char *code, unsigned char *out)
{
	const unsigned char rep[10] = { 5, rep_for(code), 0, 1, 0, 0, 0, 0, 0, 0 };

	memcpy(out, rep, sizeof(rep));
	return sizeof(rep);
}

size_t socks_build_success(const struct sockaddr_storage *bnd, unsigned char *out)
{
	memset(out, 0, SOCKS_REPLY_MAX);
	out[0] = 5;
	out[1] = SOCKS_OK;
	if (bnd->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)bnd;
		out[3] = 4;
		memcpy(out + 4, &a->sin6_addr, 16);
		memcpy(out + 20, &a->sin6_port, 2);
		return 22;
	}
	out[3] = 1;
	if (bnd->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)bnd;
		memcpy(out + 4, &a->sin_addr, 4);
		memcpy(out + 8, &a->sin_port, 2);
	}
	return 10;
}
