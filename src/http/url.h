/* url.h: the URLs the HTTP clients (`iplock verify`, `scan --verify`) are given: http:// or
 * https://, optional user:password (percent-decoded), an IP literal or DNS name, a port, and a
 * path. Pure code, no I/O. */
#ifndef IPLOCK_HTTP_URL_H
#define IPLOCK_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VURL_HOST_MAX 256
#define VURL_CRED_MAX 256
#define VURL_PATH_MAX 2048

struct vurl {
	bool tls;                        /* https:// */
	bool has_user;
	char user[VURL_CRED_MAX];        /* decoded */
	char password[VURL_CRED_MAX];    /* decoded; a secret: never printed */
	char host[VURL_HOST_MAX];        /* without brackets */
	bool host_is_ip;
	bool host_is_v6;
	uint16_t port;                   /* the scheme's default when absent */
	char path[VURL_PATH_MAX];        /* "/" when absent; query kept */
};

/* NULL on success, else a one-line reason. */
const char *vurl_parse(const char *s, struct vurl *out);

/* The credentials at the front of an authority a[0..len) ("user[:password]@host..."; the last
 * '@' ends them, so a password may hold '@' unescaped), percent-decoded with NUL and control
 * bytes refused (they go into a header). *at is that '@', or NULL when there are none. NULL on
 * success, else a one-line reason. Shared with `iplock tunnel`'s proxy URL. */
const char *vurl_userinfo(const char *a, size_t len, char *user, size_t ucap, char *pass, size_t pcap,
			  const char **at);

/* "host:port" as a CONNECT target or Host header ("[v6]:port" for IPv6). */
void vurl_authority(const struct vurl *u, char *buf, size_t cap);

/* The URL for display: the password replaced by "****"; the path only when with_path. */
void vurl_display(const struct vurl *u, bool with_path, char *buf, size_t cap);

#endif
