/* addr.c: strict IP literals, CIDR ranges and sets, special-purpose ranges. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool is_mapped(const uint8_t a[16])
{
	return memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0;
}

/* ::ffff:a.b.c.d -> a.b.c.d, so rules written for IPv4 also apply to its mapped form. */
static void normalise_mapped(struct ipaddr *ip)
{
	if (ip->family != AF_INET6 || !is_mapped(ip->a))
		return;
	uint8_t v4[4];
	memcpy(v4, ip->a + 12, 4);
	memset(ip->a, 0, sizeof(ip->a));
	memcpy(ip->a, v4, 4);
	ip->family = AF_INET;
}

static const char *ipv4_parse(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len)
				return "IPv4 address needs 4 dot-separated parts";
			if (s[i] != '.')
				return "bad IPv4 address";
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start)
			return "bad IPv4 address";
		if (i < len && s[i] >= '0' && s[i] <= '9')
			return "IPv4 part above 255";
		/* 010 means 8 to inet_aton and 10 to others: refuse, never guess */
		if (i - start > 1 && s[start] == '0')
			return "leading zero in IPv4 address";
		if (v > 255)
			return "IPv4 part above 255";
		out[part] = (uint8_t)v;
	}
	if (i != len)
		return "bad IPv4 address";
	return NULL;
}

/* Parses without normalising mapped addresses (cidr_parse needs the raw form). */
static const char *ip_parse_raw(const char *s, size_t len, struct ipaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return "empty address";
	if (memchr(s, '\0', len))
		return "NUL in address";
	if (memchr(s, ':', len)) {
		char buf[IPADDR_STRLEN];
		if (len > 45)
			return "IPv6 address too long";
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET6, buf, out->a) != 1)
			return "bad IPv6 address";
		out->family = AF_INET6;
		return NULL;
	}
	const char *err = ipv4_parse(s, len, out->a);
	if (err) {
		memset(out, 0, sizeof(*out));
		return err;
	}
	out->family = AF_INET;
	return NULL;
}

const char *ipaddr_parse(const char *s, size_t len, struct ipaddr *out)
{
	const char *err = ip_parse_raw(s, len, out);
	if (!err)
		normalise_mapped(out);
	return err;
}

int ipaddr_format(const struct ipaddr *ip, char *buf, size_t cap)
{
	char tmp[IPADDR_STRLEN];

	if (ip->family != AF_INET && ip->family != AF_INET6) {
		if (cap < 2)
			return -ENOSPC;
		memcpy(buf, "?", 2);
		return 0;
	}
	size_t n = 0;
	if (ip->family == AF_INET) {
		/* dotted quad by hand: inet_ntop formats IPv4 with sprintf, which showed in the
		 * profile of a forwarded request (the destination is formatted per request) */
		for (int i = 0; i < 4; i++) {
			unsigned v = ip->a[i];
			if (v >= 100)
				tmp[n++] = (char)('0' + v / 100);
			if (v >= 10)
				tmp[n++] = (char)('0' + v / 10 % 10);
			tmp[n++] = (char)('0' + v % 10);
			tmp[n++] = i < 3 ? '.' : '\0';
		}
		n--;
	} else {
		if (!inet_ntop(ip->family, ip->a, tmp, sizeof(tmp)))
			return -ENOSPC;
		n = strlen(tmp);
	}
	if (n + 1 > cap)
		return -ENOSPC;
	memcpy(buf, tmp, n + 1);
	return 0;
}

void ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		out->family = AF_INET;
		memcpy(out->a, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		out->family = AF_INET6;
		memcpy(out->a, &sin6->sin6_addr, 16);
		normalise_mapped(out);
	}
}

socklen_t ipaddr_to_sockaddr(const struct ipaddr *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip->a, 4);
		return sizeof(*sin);
	}
	if (ip->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip->a, 16);
		return sizeof(*sin6);
	}
	return 0;
}

static size_t family_len(uint8_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

bool ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->family == b->family && memcmp(a->a, b->a, family_len(a->family)) == 0;
}

static void set_v4(struct ipaddr *v4, const uint8_t *src, bool invert)
{
	memset(v4, 0, sizeof(*v4));
	v4->family = AF_INET;
	for (int i = 0; i < 4; i++)
		v4->a[i] = invert ? (uint8_t)~src[i] : src[i];
}

bool ipaddr_embedded_v4(const struct ipaddr *ip, int which, struct ipaddr *v4)
{
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

	if (ip->family != AF_INET6)
		return false;
	if (which == 0 && is_mapped(ip->a)) {
		set_v4(v4, ip->a + 12, false);
		return true;
	}
	if (which == 0 && memcmp(ip->a, nat64, sizeof(nat64)) == 0) {
		set_v4(v4, ip->a + 12, false);
		return true;
	}
	if (which == 0 && ip->a[0] == 0x20 && ip->a[1] == 0x02) {         /* 6to4 2002:AABB:CCDD:: */
		set_v4(v4, ip->a + 2, false);
		return true;
	}
	if (ip->a[0] == 0x20 && ip->a[1] == 0x01 && ip->a[2] == 0 && ip->a[3] == 0) {
		/* Teredo 2001:0::/32: server IPv4 in bits 32-63, client IPv4 inverted in the last 32 */
		if (which == 0)
			set_v4(v4, ip->a + 12, true);
		else
			set_v4(v4, ip->a + 4, false);
		return true;
	}
	return false;
}

/* Bits of a and b equal over the first prefix bits. */
static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rem = prefix % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rem == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (a[full] & mask) == (b[full] & mask);
}

const char *cidr_parse(const char *s, size_t len, struct cidr *out)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	struct ipaddr ip;
	const char *err;

	memset(out, 0, sizeof(*out));
	if ((err = ip_parse_raw(s, alen, &ip)))
		return err;
	unsigned max = ip.family == AF_INET ? 32 : 128, prefix = max;
	if (slash) {
		const char *p = slash + 1;
		size_t plen = len - alen - 1;
		if (plen == 0 || plen > 3)
			return "bad prefix length";
		prefix = 0;
		for (size_t i = 0; i < plen; i++) {
			if (p[i] < '0' || p[i] > '9')
				return "bad prefix length";
			prefix = prefix * 10 + (unsigned)(p[i] - '0');
		}
		if (plen > 1 && p[0] == '0')
			return "leading zero in prefix length";
		if (prefix > max)
			return ip.family == AF_INET ? "prefix length above 32" : "prefix length above 128";
	}
	/* Host bits set usually means a typo ("10.0.0.1/8"): refuse rather than guess the intent. */
	for (unsigned bit = prefix; bit < max; bit++)
		if (ip.a[bit / 8] & (0x80 >> (bit % 8)))
			return "host bits set";
	if (ip.family == AF_INET6 && prefix >= 96 && is_mapped(ip.a)) {
		normalise_mapped(&ip);
		prefix -= 96;
	}
	out->net = ip;
	out->prefix = (uint8_t)prefix;
	return NULL;
}

bool cidr_contains(const struct cidr *c, const struct ipaddr *ip)
{
	if (c->net.family != ip->family || !c->net.family)
		return false;
	return prefix_match(c->net.a, ip->a, c->prefix);
}

int cidr_format(const struct cidr *c, char *buf, size_t cap)
{
	char ip[IPADDR_STRLEN];
	int rc = ipaddr_format(&c->net, ip, sizeof(ip));
	if (rc)
		return rc;
	int n = snprintf(buf, cap, "%s/%u", ip, c->prefix);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

/* ---- CIDR sets: per family, ranges [lo, hi] as 16-byte big-endian keys (IPv4 in the first
 * four bytes, the rest zero), so memcmp orders them. A sorted, coalesced prefix answers by
 * binary search; new ranges go to a short unsorted tail that is merged in every SET_TAIL adds,
 * so building a set of n ranges costs O(n log n) whatever the input order. */

#define SET_TAIL 32

struct range {
	uint8_t lo[16], hi[16];
};

struct range_list {
	struct range *r;
	size_t n, nsorted, cap;
};

struct cidr_set {
	struct range_list v4, v6;
	size_t count;
};

struct cidr_set *cidr_set_new(void)
{
	return calloc(1, sizeof(struct cidr_set));
}

void cidr_set_free(struct cidr_set *set)
{
	if (!set)
		return;
	free(set->v4.r);
	free(set->v6.r);
	free(set);
}

static int range_cmp(const void *a, const void *b)
{
	return memcmp(((const struct range *)a)->lo, ((const struct range *)b)->lo, 16);
}

static void push_coalesced(struct range *out, size_t *n, const struct range *r)
{
	if (*n > 0 && memcmp(r->lo, out[*n - 1].hi, 16) <= 0) {
		if (memcmp(r->hi, out[*n - 1].hi, 16) > 0)
			memcpy(out[*n - 1].hi, r->hi, 16);
		return;
	}
	out[(*n)++] = *r;
}

/* Sorts the tail and merges it into the sorted part; the result is coalesced. */
static int list_merge(struct range_list *l)
{
	struct range *tmp = malloc(l->cap * sizeof(*tmp));
	size_t i = 0, j = l->nsorted, n = 0;

	if (!tmp)
		return -ENOMEM;
	qsort(l->r + l->nsorted, l->n - l->nsorted, sizeof(*l->r), range_cmp);
	while (i < l->nsorted || j < l->n) {
		if (j >= l->n || (i < l->nsorted && range_cmp(&l->r[i], &l->r[j]) <= 0))
			push_coalesced(tmp, &n, &l->r[i++]);
		else
			push_coalesced(tmp, &n, &l->r[j++]);
	}
	free(l->r);
	l->r = tmp;
	l->n = l->nsorted = n;
	return 0;
}

/* Appends c's range, unsorted, to its family's list: 0, -EINVAL or -ENOMEM. */
static int list_append(struct cidr_set *set, const struct cidr *c, struct range_list **out)
{
	struct range_list *l;
	unsigned max;

	if (c->net.family == AF_INET) {
		l = &set->v4;
		max = 32;
	} else if (c->net.family == AF_INET6) {
		l = &set->v6;
		max = 128;
	} else {
		return -EINVAL;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct range *r = realloc(l->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		l->r = r;
		l->cap = cap;
	}
	struct range *r = &l->r[l->n++];
	memset(r, 0, sizeof(*r));
	memcpy(r->lo, c->net.a, 16);
	memcpy(r->hi, c->net.a, 16);
	for (unsigned bit = c->prefix; bit < max; bit++)
		r->hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
	set->count++;
	*out = l;
	return 0;
}

int cidr_set_add(struct cidr_set *set, const struct cidr *c)
{
	struct range_list *l;
	int rc = list_append(set, c, &l);

	if (rc)
		return rc;
	if (l->n - l->nsorted >= SET_TAIL && list_merge(l) < 0) {
		l->n--;
		set->count--;
		return -ENOMEM;
	}
	return 0;
}

int cidr_set_add_many(struct cidr_set *set, const struct cidr *c, size_t n)
{
	struct range_list *ls[2] = { &set->v4, &set->v6 }, *l;
	int rc;

	/* appended first and merged once per family: O(n log n), where n single adds merge a
	 * growing list every SET_TAIL entries (quadratic for a 100,000-entry allowlist) */
	for (size_t i = 0; i < n; i++)
		if ((rc = list_append(set, &c[i], &l)))
			return rc;
	for (int f = 0; f < 2; f++)
		if (ls[f]->n > ls[f]->nsorted && list_merge(ls[f]) < 0)
			return -ENOMEM;
	return 0;
}

static bool list_contains(const struct range_list *l, const uint8_t key[16])
{
	size_t lo = 0, hi = l->nsorted;

	/* find the last sorted range whose lo <= key; ranges there do not overlap */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(l->r[mid].lo, key, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && memcmp(key, l->r[lo - 1].hi, 16) <= 0)
		return true;
	for (size_t i = l->nsorted; i < l->n; i++)
		if (memcmp(l->r[i].lo, key, 16) <= 0 && memcmp(key, l->r[i].hi, 16) <= 0)
			return true;
	return false;
}

bool cidr_set_contains(const struct cidr_set *set, const struct ipaddr *ip)
{
	if (!set)
		return false;
	struct ipaddr n = *ip;
	normalise_mapped(&n);
	if (n.family == AF_INET)
		return list_contains(&set->v4, n.a);
	if (n.family == AF_INET6)
		return list_contains(&set->v6, n.a);
	return false;
}

size_t cidr_set_count(const struct cidr_set *set)
{
	return set ? set->count : 0;
}

/* ---- special-purpose ranges (IANA registries; the egress-proxy reference list first) */

struct special {
	uint8_t a[16];
	uint8_t prefix;
	const char *text;
};

static const struct special special_v4[] = {
	/* most specific first where ranges nest, so the text names the narrowest */
	{ { 255, 255, 255, 255 }, 32, "255.255.255.255/32" },
	{ { 0 }, 8, "0.0.0.0/8" },
	{ { 10 }, 8, "10.0.0.0/8" },
	{ { 100, 64 }, 10, "100.64.0.0/10" },
	{ { 127 }, 8, "127.0.0.0/8" },
	{ { 169, 254 }, 16, "169.254.0.0/16" },
	{ { 172, 16 }, 12, "172.16.0.0/12" },
	{ { 192, 0, 0 }, 24, "192.0.0.0/24" },
	{ { 192, 0, 2 }, 24, "192.0.2.0/24" },
	{ { 192, 88, 99 }, 24, "192.88.99.0/24" },           /* deprecated 6to4 relay anycast */
	{ { 192, 168 }, 16, "192.168.0.0/16" },
	{ { 198, 18 }, 15, "198.18.0.0/15" },
	{ { 198, 51, 100 }, 24, "198.51.100.0/24" },
	{ { 203, 0, 113 }, 24, "203.0.113.0/24" },
	{ { 224 }, 4, "224.0.0.0/4" },
	{ { 240 }, 4, "240.0.0.0/4" },
};

static const struct special special_v6[] = {
	{ { 0 }, 128, "::/128" },
	{ { [15] = 1 }, 128, "::1/128" },
	{ { 0 }, 96, "::/96" },                                  /* deprecated IPv4-compatible */
	{ { [10] = 0xff, [11] = 0xff }, 96, "::ffff:0:0/96" },
	{ { 0, 0x64, 0xff, 0x9b }, 96, "64:ff9b::/96" },
	{ { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, "64:ff9b:1::/48" },  /* local-use NAT64 */
	{ { 0x01, 0x00 }, 64, "100::/64" },                      /* discard-only */
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, "2001::/32" },         /* Teredo */
	{ { 0x20, 0x01, 0x00, 0x10 }, 28, "2001:10::/28" },      /* ORCHID (deprecated) */
	{ { 0x20, 0x01, 0x00, 0x20 }, 28, "2001:20::/28" },      /* ORCHIDv2 */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "2001:db8::/32" },
	{ { 0x20, 0x02 }, 16, "2002::/16" },                     /* 6to4 */
	{ { 0x3f, 0xff, 0x00 }, 20, "3fff::/20" },               /* documentation (RFC 9637) */
	{ { 0x5f, 0x00 }, 16, "5f00::/16" },                     /* SRv6 SIDs */
	{ { 0xfc }, 7, "fc00::/7" },
	{ { 0xfe, 0x80 }, 10, "fe80::/10" },
	{ { 0xfe, 0xc0 }, 10, "fec0::/10" },                     /* site-local (deprecated) */
	{ { 0xff }, 8, "ff00::/8" },
};

/* The range of ip itself, without looking at embedded IPv4. */
static const char *own_range(const struct ipaddr *ip)
{
	if (ip->family == AF_INET) {
		for (size_t i = 0; i < sizeof(special_v4) / sizeof(special_v4[0]); i++)
			if (prefix_match(special_v4[i].a, ip->a, special_v4[i].prefix))
				return special_v4[i].text;
		return NULL;
	}
	if (ip->family != AF_INET6)
		return "unknown address family";
	for (size_t i = 0; i < sizeof(special_v6) / sizeof(special_v6[0]); i++)
		if (prefix_match(special_v6[i].a, ip->a, special_v6[i].prefix))
			return special_v6[i].text;
	/* Only 2000::/3 holds global unicast; the rest is reserved or unassigned. */
	if ((ip->a[0] & 0xe0) != 0x20)
		return "outside 2000::/3";
	return NULL;
}

const char *ipaddr_special_range(const struct ipaddr *ip)
{
	struct ipaddr n = *ip, v4;

	normalise_mapped(&n);
	for (int which = 0; which < 2; which++) {
		if (ipaddr_embedded_v4(&n, which, &v4)) {
			const char *r = own_range(&v4);
			if (r)
				return r;
		}
	}
	return own_range(&n);
}

const char *ipaddr_check_destination(const struct ipaddr *ip, const struct cidr_set *allow)
{
	struct ipaddr n = *ip, v4;
	const char *r;

	normalise_mapped(&n);
	if ((r = own_range(&n)) && !cidr_set_contains(allow, &n))
		return r;
	for (int which = 0; which < 2; which++) {
		if (!ipaddr_embedded_v4(&n, which, &v4))
			continue;
		if ((r = own_range(&v4)) && !cidr_set_contains(allow, &v4))
			return r;
	}
	return NULL;
}
