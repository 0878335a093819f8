/* config.h: the proxy's INI configuration ([proxy] and [user NAME] sections), parsed with
 * libinih and validated completely: any unknown section or key, bad value or missing
 * requirement is an error "FILE:LINE: reason". Every key is documented in docs/config.md. */
#ifndef IPLOCK_PROXY_CONFIG_H
#define IPLOCK_PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/host.h"
#include "net/proxyproto.h"
#include "proxy/egress.h"
#include "proxy/policy.h"

#define PROXY_MAX_LISTEN    8
#define PROXY_USER_NAME_MAX 64
#define PROXY_RELAY_DEFAULT "auto"     /* "auto", "splice" or "copy" */
#define PROXY_MAX_INBOUND   16
#define INBOUND_MAX_ROUTES  256

struct quota_ent;

struct proxy_user {
	char name[PROXY_USER_NAME_MAX + 1];
	char password_hash[160];
	/* users_db (proxy/fleet.c): set after the load, never by the INI parser */
	bool from_store;                 /* the user comes from the store, not a [user] block */
	char old_hash[160];              /* a rotated-out password hash: valid until old_expires */
	int64_t old_expires;             /* unix seconds; 0 = no old password */
	uint64_t plan_requests, plan_bytes;   /* per calendar month (UTC); 0 = unlimited */
	struct quota_ent *quota;         /* the user's usage this month; NULL without users_db */
	struct egress_pool *egress;      /* NULL = the global pool */
	struct dest_rule *allow;         /* none (nallow 0) = every destination */
	size_t nallow;
	unsigned max_conns;              /* 0 = no per-user cap beyond max_conns_per_user */
};

struct listen_addr {
	struct ipaddr ip;
	uint16_t port;
	enum pp_version pp;              /* listen/socks_listen/tls_listen: PROXY header required */
};

/* An inbound endpoint: a fixed address that relays TCP to a backend without terminating TLS,
 * routed by the ClientHello's server name when sni routes are set (docs/inbound.md). */
struct inbound_route {
	char host[260];                  /* lowercased, as written: "a.example.com", "*.x", "**.x" */
	enum host_wild wild;             /* "*." exactly one more label, "**." any depth (net/host.h) */
	size_t skip;                     /* host + skip: the name without the wildcard prefix */
	struct host backend;
	uint16_t port;
};

struct proxy_inbound {
	char name[PROXY_USER_NAME_MAX + 1];
	struct listen_addr listen;
	bool has_forward;                /* the default backend: no route matched, or no SNI */
	struct host forward;
	uint16_t forward_port;
	struct inbound_route *routes;
	size_t nroutes;
	enum pp_version proxy_protocol;  /* PP_OFF or PP_V2, towards the backend */
	struct cidr_set *allow;          /* client CIDRs; NULL = every client */
};

struct proxy_config {
	struct listen_addr listen[PROXY_MAX_LISTEN];
	size_t nlisten;
	struct listen_addr socks_listen[PROXY_MAX_LISTEN];  /* SOCKS5-only listeners */
	size_t nsocks_listen;
	bool socks_sniff;
	struct listen_addr tls_listen[PROXY_MAX_LISTEN];    /* HTTPS proxy: TLS from client to proxy */
	size_t ntls_listen;
	char tls_cert[256], tls_key[256];                  /* PEM files, read again on every reload */                          /* SOCKS5 on the HTTP listeners too (first byte 5) */
	struct cidr_set *trusted_balancers;        /* peers allowed on proxy_protocol listeners; NULL none */
	struct egress_pool egress;                 /* the global pool (required) */
	struct cidr_set *allow_destinations;       /* CIDRs exempt from the special ranges (never NULL) */
	struct portset connect_ports, http_ports;  /* defaults "443 80" and "80 443" */
	unsigned header_timeout_ms, connect_timeout_ms, idle_timeout_ms;
	unsigned max_header_bytes, max_headers, max_conns, max_conns_per_user;
	unsigned workers;                          /* 0 = one per core */
	unsigned egress_down_ms;
	struct listen_addr admin;                  /* admin_listen (/metrics, /healthz); port 0 = off */
	struct host health_probe;                  /* health_probe target; kind 0 = no probing */
	uint16_t health_probe_port;
	unsigned health_interval_ms, health_timeout_ms;
	unsigned drain_timeout_ms;                 /* SIGTERM: how long tunnels may finish */
	bool auth_required;
	char relay[16];                            /* "auto", "splice" or "copy" */
	char access_log[256];                      /* "-" = stdout, "off", or a path */
	struct proxy_user *users;
	size_t nusers;
	struct proxy_inbound inbound[PROXY_MAX_INBOUND];
	size_t ninbound;
	uint64_t generation;                       /* distinct for every successful load */
	char users_db[512];                        /* the store with more users ("" = none) */
	char node_name[PROXY_USER_NAME_MAX + 1];   /* this node in the store (default: hostname) */
};

/* Loads and validates path. Returns NULL and *out, or an error with err = "FILE:LINE: reason"
 * ("FILE: reason" for whole-file problems such as a missing [proxy] section). */
const char *proxy_config_load(const char *path, struct proxy_config **out, char *err, size_t errcap);

/* The same from a NUL-terminated string; name stands for the file name in errors. */
const char *proxy_config_load_string(const char *text, const char *name, struct proxy_config **out,
				     char *err, size_t errcap);

void proxy_config_free(struct proxy_config *cfg);

/* Index of the user called name, or -1. */
int proxy_config_find_user(const struct proxy_config *cfg, const char *name, size_t len);

/* [A-Za-z0-9._-], 1-64 characters ('+' is reserved for username options). */
bool proxy_user_name_valid(const char *name, size_t len);

/* "127.0.0.1:3128", "[::1]:3128" */
void listen_addr_format(const struct listen_addr *a, char *out, size_t cap);

#endif
