/* url.c: URL parsing for iplock verify. */
#include "http/url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/codec.h"
#include "net/addr.h"
#include "net/host.h"

/* Percent-decode s[0..len) into out (NUL-terminated); a decoded NUL or CR/LF is refused
 * because the result goes into a header. */
static const char *pct_decode(const char *s, size_t len, char *out, size_t cap)
{
	switch (codec_pct_decode(s, len, out, cap, CODEC_PCT_NO_CTL)) {
	case CODEC_E_ESCAPE: return "bad percent escape in the credentials";
	case CODEC_E_CONTROL: return "control characters in the credentials";
	case CODEC_E_SPACE: return "credentials too long";
	default: return NULL;
	}
}

const char *vurl_userinfo(const char *a, size_t len, char *user, size_t ucap, char *pass, size_t pcap,
			  const char **at)
{
	const char *err;

	*at = NULL;
	for (size_t i = 0; i < len; i++)
		if (a[i] == '@')
			*at = a + i;
	if (!*at)
		return NULL;
	const char *colon = memchr(a, ':', (size_t)(*at - a));
	if ((err = pct_decode(a, (size_t)((colon ? colon : *at) - a), user, ucap)))
		return err;
	if (colon && (err = pct_decode(colon + 1, (size_t)(*at - colon - 1), pass, pcap)))
		return err;
	return NULL;
}

const char *vurl_parse(const char *s, struct vurl *out)
{
	memset(out, 0, sizeof(*out));
	if (!strncasecmp(s, "http://", 7)) {
		s += 7;
	} else if (!strncasecmp(s, "https://", 8)) {
		out->tls = true;
		s += 8;
	} else {
		return "the URL must start with http:// or https://";
	}
	size_t alen = strcspn(s, "/?#");
	const char *auth = s, *rest = s + alen;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "spaces or control characters in the URL";
	const char *at;
	const char *err = vurl_userinfo(auth, alen, out->user, sizeof(out->user), out->password,
					sizeof(out->password), &at);
	if (err)
		return err;
	if (at) {
		out->has_user = true;
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	if (alen == 0)
		return "the URL has no host";
	struct host h;
	err = authority_parse(auth, alen, &h, &out->port, out->tls ? 443 : 80);
	if (err)
		return err;
	snprintf(out->host, sizeof(out->host), "%s", h.name);
	out->host_is_ip = h.kind == HOST_IP;
	out->host_is_v6 = h.kind == HOST_IP && h.ip.family == AF_INET6;
	if (*rest == '#' || *rest == '\0') {
		snprintf(out->path, sizeof(out->path), "/");
	} else {
		size_t plen = strcspn(rest, "#");
		if (plen + 2 > sizeof(out->path))
			return "the URL path is too long";
		if (*rest == '?') {
			out->path[0] = '/';
			memcpy(out->path + 1, rest, plen);
			out->path[plen + 1] = '\0';
		} else {
			memcpy(out->path, rest, plen);
			out->path[plen] = '\0';
		}
	}
	return NULL;
}

void vurl_authority(const struct vurl *u, char *buf, size_t cap)
{
	snprintf(buf, cap, u->host_is_v6 ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
}

void vurl_display(const struct vurl *u, bool with_path, char *buf, size_t cap)
{
	char a[VURL_HOST_MAX + 16];

	vurl_authority(u, a, sizeof(a));
	if (u->has_user)
		snprintf(buf, cap, "%s://%.64s%s@%s%s", u->tls ? "https" : "http", u->user,
			 u->password[0] ? ":****" : "", a, with_path ? u->path : "");
	else
		snprintf(buf, cap, "%s://%s%s", u->tls ? "https" : "http", a, with_path ? u->path : "");
}
