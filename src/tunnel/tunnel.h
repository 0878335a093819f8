/* tunnel.h: `iplock tunnel`, a local port forwarder for programs that cannot use a proxy:
 * each mapping listens locally and carries every accepted connection through an HTTP CONNECT
 * (or SOCKS5) tunnel of a proxy, so a database client, SFTP or LDAP leaves from the proxy's
 * static egress addresses. One thread, one event loop; every new local connection dials the
 * proxy afresh, so the tunnel recovers by itself when the proxy comes back. */
#ifndef IPLOCK_TUNNEL_H
#define IPLOCK_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/host.h"

#define TUNNEL_MAX_MAPS   64
#define TUNNEL_NAME_MAX   64
#define TUNNEL_CRED_MAX   255

enum tunnel_scheme {
	TUNNEL_HTTP = 1,     /* http://: CONNECT host:port */
	TUNNEL_SOCKS5H,      /* socks5h:// (or socks5://): the proxy resolves the name */
	TUNNEL_HTTPS,        /* https://: TLS to the proxy, then CONNECT inside it */
};

/* A proxy URL: scheme://[user[:password]@]host:port, user and password percent-decoded. */
struct tunnel_proxy {
	enum tunnel_scheme scheme;
	struct host host;
	uint16_t port;
	bool has_auth;
	char user[TUNNEL_CRED_MAX + 1];
	char pass[TUNNEL_CRED_MAX + 1];
	char display[600];   /* the URL with the password masked, for logs */
};

struct tunnel_map {
	char name[TUNNEL_NAME_MAX + 1];
	struct ipaddr listen_ip;
	uint16_t listen_port;
	struct host remote;  /* as given: a name is resolved by the proxy, never here */
	uint16_t remote_port;
	char authority[300]; /* "host:port" or "[v6]:port", what CONNECT asks for */
	int line;            /* config line of [tunnel NAME]; 0 for the command line */
};

struct tunnel_config {
	bool has_proxy;
	struct tunnel_proxy proxy;
	struct tunnel_map maps[TUNNEL_MAX_MAPS];
	size_t nmaps;
	unsigned connect_timeout_ms;     /* resolve + connect + proxy handshake; default 10 s */
	unsigned idle_timeout_ms;        /* 0 = none (database sessions idle for long) */
	bool splice, splice_auto;        /* relay mode: splice, auto (default) or copy */
	char cacert[512];                /* https:// proxies: CA file ("" = the system's CAs) */
	const char *path;                /* the -c file, read again on SIGHUP to check it; or NULL */
};

void tunnel_config_init(struct tunnel_config *cfg);

/* Parses a proxy URL (see struct tunnel_proxy). */
const char *tunnel_proxy_parse(const char *url, struct tunnel_proxy *out);

/* "[LOCAL_ADDR:]PORT=REMOTE_HOST:PORT" from the command line; LOCAL_ADDR defaults to 127.0.0.1. */
const char *tunnel_map_parse(const char *spec, struct tunnel_map *out);

/* Adds a mapping, refusing a duplicate name or listen address. */
const char *tunnel_config_add(struct tunnel_config *cfg, const struct tunnel_map *m);

/* INI file: [proxy] url, cacert, connect_timeout, idle_timeout, relay; [tunnel NAME] listen, remote.
 * Returns NULL, or err = "FILE:LINE: reason". */
const char *tunnel_config_load(const char *path, struct tunnel_config *cfg, char *err, size_t errcap);
const char *tunnel_config_load_string(const char *text, const char *name, struct tunnel_config *cfg,
				      char *err, size_t errcap);

/* The proxy's answer to CONNECT, parsed from a complete head (+ body if any): the status and,
 * for the proxy's JSON errors, "code: message" in reason. Returns 0 or -EPROTO. */
int tunnel_parse_reply(const char *head, size_t headlen, int *status);
void tunnel_error_reason(const char *body, size_t len, char *out, size_t cap);

/* Runs until SIGTERM/SIGINT: the listeners close, open connections get TUNNEL_DRAIN_MS to
 * finish (a second signal ends them). SIGHUP checks cfg->path again. sd_notify READY/RELOADING/
 * STOPPING for Type=notify units. Returns the exit status. */
#define TUNNEL_DRAIN_MS 30000
int tunnel_run(const struct tunnel_config *cfg);

#endif
