/* proxyproto.c: PROXY protocol v1/v2 parsing and building (haproxy doc/proxy-protocol.txt). */
#include "net/proxyproto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
				    0x54, 0x0A };

/* "0".."65535" without sign or leading zeros. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static int parse_v1(const uint8_t *buf, size_t len, struct pp_info *out, const char **err)
{
	static const char magic[] = "PROXY ";
	const char *s = (const char *)buf;
	size_t cmp = len < 6 ? len : 6, end = 0;

	if (memcmp(s, magic, cmp)) {
		*err = "PROXY v1 header required";
		return -EPROTO;
	}
	for (size_t i = 0; i + 1 < len && i + 1 < PP_V1_MAX; i++)
		if (s[i] == '\r' && s[i + 1] == '\n') {
			end = i;
			break;
		}
	if (!end) {
		if (len >= PP_V1_MAX) {
			*err = "PROXY v1 line too long";
			return -EPROTO;
		}
		for (size_t i = 0; i < len; i++)
			if (s[i] == '\n' || s[i] == '\0') {
				*err = "PROXY v1 line malformed";
				return -EPROTO;
			}
		return 0;
	}
	/* the text is ASCII: a NUL or a bare LF is refused in a whole line as in a partial one */
	if (memchr(s, '\0', end) || memchr(s, '\n', end)) {
		*err = "PROXY v1 line malformed";
		return -EPROTO;
	}
	/* split the line after "PROXY " on single spaces */
	const char *f[6];
	size_t fl[6], nf = 0, start = 6;
	for (size_t i = 6; i <= end; i++) {
		if (i == end || s[i] == ' ') {
			if (nf == 5 || i == start) {
				*err = "PROXY v1 line malformed";
				return -EPROTO;
			}
			f[nf] = s + start;
			fl[nf++] = i - start;
			start = i + 1;
		}
	}
	memset(out, 0, sizeof(*out));
	if (nf >= 1 && fl[0] == 7 && !memcmp(f[0], "UNKNOWN", 7)) {
		out->kind = PP_KIND_UNKNOWN;
		return (int)end + 2;
	}
	if (nf != 5 || fl[0] != 4 || (memcmp(f[0], "TCP4", 4) && memcmp(f[0], "TCP6", 4))) {
		*err = "PROXY v1 line malformed";
		return -EPROTO;
	}
	bool v6 = f[0][3] == '6';
	if (ipaddr_parse(f[1], fl[1], &out->src) || ipaddr_parse(f[2], fl[2], &out->dst) ||
	    !parse_port(f[3], fl[3], &out->sport) || !parse_port(f[4], fl[4], &out->dport)) {
		*err = "PROXY v1 bad address or port";
		return -EPROTO;
	}
	/* TCP4 carries dotted quads only; TCP6 text may be a mapped v4, normalised by ipaddr */
	if (!v6 && (memchr(f[1], ':', fl[1]) || memchr(f[2], ':', fl[2]))) {
		*err = "PROXY v1 TCP4 with an IPv6 address";
		return -EPROTO;
	}
	if (v6 && (!memchr(f[1], ':', fl[1]) || !memchr(f[2], ':', fl[2]))) {
		*err = "PROXY v1 TCP6 with an IPv4 address";
		return -EPROTO;
	}
	out->kind = PP_KIND_PROXY;
	return (int)end + 2;
}

static void v6_addr(const uint8_t *p, struct ipaddr *out)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	memcpy(&sin6.sin6_addr, p, 16);
	ipaddr_from_sockaddr((const struct sockaddr *)&sin6, out);
}

static int parse_v2(const uint8_t *buf, size_t len, struct pp_info *out, const char **err)
{
	size_t cmp = len < 12 ? len : 12;

	if (memcmp(buf, v2_sig, cmp)) {
		*err = "PROXY v2 header required";
		return -EPROTO;
	}
	if (len < 16)
		return 0;
	uint8_t ver = buf[12] >> 4, cmd = buf[12] & 0x0F, fam = buf[13];
	size_t body = ((size_t)buf[14] << 8) | buf[15];
	if (ver != 2 || cmd > 1) {
		*err = "PROXY v2 bad version or command";
		return -EPROTO;
	}
	if (16 + body > PP_V2_MAX) {
		*err = "PROXY v2 header too long";
		return -EPROTO;
	}
	if (len < 16 + body)
		return 0;
	memset(out, 0, sizeof(*out));
	const uint8_t *p = buf + 16;
	if (cmd == 0) {
		out->kind = PP_KIND_LOCAL;
		return (int)(16 + body);
	}
	switch (fam) {
	case 0x11: /* TCP over IPv4 */
		if (body < 12) {
			*err = "PROXY v2 address block too short";
			return -EPROTO;
		}
		out->src.family = out->dst.family = AF_INET;
		memcpy(out->src.a, p, 4);
		memcpy(out->dst.a, p + 4, 4);
		out->sport = (uint16_t)(p[8] << 8 | p[9]);
		out->dport = (uint16_t)(p[10] << 8 | p[11]);
		out->kind = PP_KIND_PROXY;
		break;
	case 0x21: /* TCP over IPv6 */
		if (body < 36) {
			*err = "PROXY v2 address block too short";
			return -EPROTO;
		}
		v6_addr(p, &out->src);
		v6_addr(p + 16, &out->dst);
		out->sport = (uint16_t)(p[32] << 8 | p[33]);
		out->dport = (uint16_t)(p[34] << 8 | p[35]);
		out->kind = PP_KIND_PROXY;
		break;
	default: /* UNSPEC, UDP, unix sockets: no usable client address */
		out->kind = PP_KIND_UNKNOWN;
		break;
	}
	return (int)(16 + body);
}

int proxyproto_parse(enum pp_version want, const uint8_t *buf, size_t len, struct pp_info *out,
		     const char **err)
{
	*err = NULL;
	if (len == 0)
		return 0;
	if (want == PP_V1)
		return parse_v1(buf, len, out, err);
	if (want == PP_V2)
		return parse_v2(buf, len, out, err);
	*err = "PROXY protocol not enabled";
	return -EPROTO;
}

int proxyproto_recv(int fd, struct pp_reader *r, struct pp_info *out, const char **err)
{
	uint8_t peek[PP_V2_MAX];
	size_t room = sizeof(r->buf) - r->len;

	*err = NULL;
	if (room == 0) {   /* the parser refuses a longer header before the buffer fills */
		*err = "PROXY header too long";
		return -EPROTO;
	}
	ssize_t n = recv(fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	memcpy(r->buf + r->len, peek, (size_t)n);
	int rc = proxyproto_parse(r->want, r->buf, r->len + (size_t)n, out, err);
	if (rc < 0)
		return rc;
	/* incomplete: every byte seen is the header's; complete: take exactly the rest of it */
	size_t take = rc == 0 ? (size_t)n : (size_t)rc - r->len;
	if (recv(fd, peek, take, MSG_DONTWAIT) != (ssize_t)take)
		return -EIO;
	r->len += take;
	return rc > 0 ? 1 : 0;
}

/* A peer seen as IPv4 on one side and IPv6 on the other (a v4-mapped address is read as IPv4):
 * both are sent as IPv6, the IPv4 one mapped, so neither address is lost. */
static void same_family(const struct ipaddr **src, const struct ipaddr **dst, struct ipaddr *m_src,
			struct ipaddr *m_dst)
{
	const struct ipaddr *in[2] = { *src, *dst };
	struct ipaddr *out[2] = { m_src, m_dst };

	if (in[0]->family == in[1]->family || !in[0]->family || !in[1]->family)
		return;
	for (int i = 0; i < 2; i++) {
		*out[i] = *in[i];
		if (in[i]->family == AF_INET) {
			out[i]->family = AF_INET6;
			memset(out[i]->a, 0, 10);
			out[i]->a[10] = out[i]->a[11] = 0xff;
			memcpy(out[i]->a + 12, in[i]->a, 4);
		}
	}
	*src = m_src;
	*dst = m_dst;
}

int proxyproto_v2_build(const struct ipaddr *src, uint16_t sport, const struct ipaddr *dst,
			uint16_t dport, uint8_t *out, size_t cap)
{
	struct ipaddr m_src, m_dst;
	size_t body;

	same_family(&src, &dst, &m_src, &m_dst);

	if (cap < 16)
		return -ENOSPC;
	memcpy(out, v2_sig, 12);
	/* same_family left both of one family, or one unknown: then LOCAL with no addresses */
	size_t alen = src->family != dst->family ? 0
		      : src->family == AF_INET ? 4 : src->family == AF_INET6 ? 16 : 0;
	if (!alen) {
		out[12] = 0x20;
		out[13] = 0x00;
		out[14] = out[15] = 0;
		return 16;
	}
	body = 2 * alen + 4;
	if (cap < 16 + body)
		return -ENOSPC;
	out[12] = 0x21;
	out[13] = alen == 4 ? 0x11 : 0x21;    /* TCP over IPv4 or IPv6 */
	memcpy(out + 16, src->a, alen);
	memcpy(out + 16 + alen, dst->a, alen);
	out[14] = 0;
	out[15] = (uint8_t)body;
	uint8_t *ports = out + 16 + body - 4;
	ports[0] = (uint8_t)(sport >> 8);
	ports[1] = (uint8_t)sport;
	ports[2] = (uint8_t)(dport >> 8);
	ports[3] = (uint8_t)dport;
	return (int)(16 + body);
}

int proxyproto_v1_build(const struct ipaddr *src, uint16_t sport, const struct ipaddr *dst,
			uint16_t dport, char *out, size_t cap)
{
	char a[IPADDR_STRLEN], b[IPADDR_STRLEN];
	struct ipaddr m_src, m_dst;
	int n;

	same_family(&src, &dst, &m_src, &m_dst);
	if (src->family != dst->family || !src->family)
		n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
	else if (ipaddr_format(src, a, sizeof(a)) || ipaddr_format(dst, b, sizeof(b)))
		return -ENOSPC;
	else
		n = snprintf(out, cap, "PROXY %s %s %s %u %u\r\n",
			     src->family == AF_INET ? "TCP4" : "TCP6", a, b, sport, dport);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}
