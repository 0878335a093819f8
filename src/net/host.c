/* host.c: host literals and names, authorities, port sets. */
#include "net/host.h"

#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A label inet_aton or a URL parser would read as a number: 123, 0x7f, 0X, 0x. */
static bool label_numeric(const char *s, size_t len)
{
	size_t i = 0;

	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < len; i++)
			if (!is_hex(s[i]))
				return false;
		return true;
	}
	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return len > 0;
}

static const char *name_parse(const char *s, size_t len, struct host *out)
{
	if (len > 0 && s[len - 1] == '.')
		len--;                       /* the root label: "example.com." is example.com */
	if (len == 0)
		return "empty host";
	if (len > 253)
		return "host name longer than 253 characters";
	size_t label = 0, last_start = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';
		if (c == '.') {
			if (label == 0)
				return "empty label in host name";
			if (s[i - 1] == '-' || s[i - label] == '-')
				return "host name label starts or ends with '-'";
			if (i < len)
				last_start = i + 1;
			label = 0;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
			  c == '-' || c == '_';
		if (!ok)
			return "invalid character in host name";
		if (++label > 63)
			return "host name label longer than 63 characters";
	}
	/* no TLD is numeric; a numeric last label means a resolver may treat it as an address */
	if (label_numeric(s + last_start, len - last_start))
		return "ambiguous numeric host";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		out->name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out->name[len] = '\0';
	out->kind = HOST_NAME;
	return NULL;
}

static const char *ip_host(const char *s, size_t len, struct host *out)
{
	const char *err = ipaddr_parse(s, len, &out->ip);
	if (err)
		return err;
	out->kind = HOST_IP;
	if (ipaddr_format(&out->ip, out->name, sizeof(out->name)) < 0)
		return "bad address";
	return NULL;
}

const char *host_parse(const char *s, size_t len, struct host *out)
{
	const char *err;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return "empty host";
	if (s[0] == '[') {
		if (len < 2 || s[len - 1] != ']')
			return "missing ']' after IPv6 address";
		if (!memchr(s + 1, ':', len - 2))
			return "only IPv6 addresses go in brackets";
		err = ip_host(s + 1, len - 2, out);
	} else if (memchr(s, ':', len)) {
		err = ip_host(s, len, out);
	} else if (len <= 15 && !ipaddr_parse(s, len, &out->ip)) {
		err = ip_host(s, len, out);
	} else {
		err = name_parse(s, len, out);
	}
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

const char *port_parse(const char *s, size_t len, uint16_t *port)
{
	unsigned v = 0;

	if (len == 0)
		return "empty port";
	if (len > 5)
		return "port out of range";
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return "port is not a number";
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (len > 1 && s[0] == '0')
		return "leading zero in port";
	if (v == 0 || v > 65535)
		return "port out of range";
	*port = (uint16_t)v;
	return NULL;
}

const char *authority_parse(const char *s, size_t len, struct host *out, uint16_t *port,
			    uint16_t default_port)
{
	size_t hlen;
	const char *p = NULL, *err;

	memset(out, 0, sizeof(*out));
	*port = 0;
	if (len == 0)
		return "empty host";
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return "missing ']' after IPv6 address";
		hlen = (size_t)(close - s) + 1;
		if (hlen < len) {
			if (s[hlen] != ':')
				return "unexpected text after ']'";
			p = s + hlen + 1;
		}
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
			return "IPv6 address must be in brackets";
		hlen = colon ? (size_t)(colon - s) : len;
		if (colon)
			p = colon + 1;
	}
	if ((err = host_parse(s, hlen, out)))
		return err;
	if (p) {
		err = port_parse(p, len - (size_t)(p - s), port);
	} else if (default_port) {
		*port = default_port;
	} else {
		err = "port required";
	}
	if (err) {
		memset(out, 0, sizeof(*out));
		*port = 0;
	}
	return err;
}

void portset_add(struct portset *set, uint16_t lo, uint16_t hi)
{
	for (unsigned p = lo; p <= hi; p++)
		set->bits[p / 8] |= (uint8_t)(1u << (p % 8));
}

const char *portset_parse(const char *s, struct portset *out)
{
	size_t i = 0, count = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		while (s[i] == ' ' || s[i] == '\t' || s[i] == ',')
			i++;
		if (!s[i])
			break;
		size_t start = i;
		while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '-')
			i++;
		uint16_t lo, hi;
		const char *err = port_parse(s + start, i - start, &lo);
		if (err)
			return err;
		hi = lo;
		if (s[i] == '-') {
			start = ++i;
			while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != ',')
				i++;
			if ((err = port_parse(s + start, i - start, &hi)))
				return err;
			if (hi < lo)
				return "port range upside down";
		}
		portset_add(out, lo, hi);
		count++;
	}
	if (count == 0)
		return "empty port list";
	return NULL;
}

bool portset_has(const struct portset *set, uint16_t port)
{
	return (set->bits[port / 8] >> (port % 8)) & 1;
}

enum host_wild host_wild_prefix(const char *s, size_t len, size_t *skip)
{
	if (len >= 3 && !memcmp(s, "**.", 3)) {
		*skip = 3;
		return HOST_WILD_ANY;
	}
	if (len >= 2 && !memcmp(s, "*.", 2)) {
		*skip = 2;
		return HOST_WILD_ONE;
	}
	*skip = 0;
	return HOST_WILD_NONE;
}

bool host_wild_match(enum host_wild wild, const char *suffix, const char *name, size_t len)
{
	size_t slen = strlen(suffix);

	if (wild == HOST_WILD_NONE)
		return len == slen && !strncasecmp(name, suffix, len);
	/* at least "x." before the suffix, and the suffix starts at a label boundary */
	if (len < slen + 2 || name[len - slen - 1] != '.' || strncasecmp(name + len - slen, suffix, slen))
		return false;
	size_t plen = len - slen - 1;   /* the labels the wildcard stands for */
	for (size_t i = 0; i < plen; i++) {
		if (name[i] != '.')
			continue;
		if (wild == HOST_WILD_ONE || i == 0 || name[i - 1] == '.')
			return false;   /* a second label, or an empty one */
	}
	return name[0] != '.' && name[plen - 1] != '.';
}

const char *host_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct host h;
	uint16_t port;
	const char *err = authority_parse(s, strlen(s), &h, &port, 0);

	if (err)
		return err;
	if (h.kind != HOST_IP)
		return "the address must be an IP literal and a port (127.0.0.1:8088, [::1]:8088)";
	*len = ipaddr_to_sockaddr(&h.ip, port, ss);
	return *len ? NULL : "unusable address";
}
