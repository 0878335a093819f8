/* config.h: the gate's INI file (core/ini).
 *
 *   [gate]
 *   listen = 127.0.0.1:8080                      ; repeatable; options after the address:
 *   listen = 127.0.0.1:8443 tls proxy_protocol=v2 ;   tls, proxy_protocol=v1|v2|off
 *   db = keys.db                                 ; relative to the config file, or
 *   db = postgresql://gate@db1/iplock            ;   a libpq URI / "host=... dbname=..."
 *   resync = 5                                   ; PostgreSQL: seconds between re-checks
 *   max_staleness = 300                          ; PostgreSQL: seconds without contact
 *   on_stale = serve | deny                      ;   before on_stale applies
 *   metrics = off | on                           ; on: GET /_iplock/metrics (Prometheus)
 *   usage = off | on                             ; on: key usage telemetry to the store
 *   usage_flush = 5                              ;   seconds between a worker's batches
 *   upstream = 127.0.0.1:9000                    ; reverse-proxy target (IP or name), or
 *   upstream = http://api:9000 | https://api:9443 ;   with a scheme (https: verified TLS)
 *   upstream_ca = ca.pem                         ; https upstream: CAs to trust (default: system)
 *   mode = reverse-proxy | forward-auth | both   ; both: auth_path is forward-auth
 *   auth_path = /_iplock/auth
 *   tls_cert = cert.pem
 *   tls_key = key.pem
 *   trusted_proxies = 10.0.0.0/8, ::1            ; peers whose X-Forwarded-For is read
 *   access_log = access.log | - (stdout) | off
 *   account = acct_123                           ; named in 403 messages
 *   idle_timeout = 60                            ; seconds
 *   header_timeout = 10                          ; seconds for a whole request head
 *   workers = 1                                  ; threads (SO_REUSEPORT listeners)
 *   drain_timeout = 30s                          ; SIGTERM: requests in flight may finish
 *   path_normalize = refuse | rewrite            ; a non-canonical target: 400, or forward
 *                                                ;   the canonical form (reverse-proxy only)
 *
 *   [route charges]
 *   method = *            ; or GET,POST
 *   path = /v1/charges*
 *   resource = charge
 *   publishable = false
 */
#ifndef IPLOCK_GATE_CONFIG_H
#define IPLOCK_GATE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gate/decide.h"
#include "net/proxyproto.h"

#define GATE_MAX_LISTEN 16

enum gate_mode {
	GATE_MODE_PROXY = 0,    /* every request is forwarded to upstream once allowed */
	GATE_MODE_AUTH,         /* every request is a forward-auth check */
	GATE_MODE_BOTH,         /* auth_path is forward-auth, the rest is proxied */
};

enum gate_path_norm {
	GATE_PATH_REFUSE = 0,   /* a non-canonical request target is a 400 */
	GATE_PATH_REWRITE,      /* decided on and forwarded in its canonical form */
};

struct gate_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool tls;
	enum pp_version pp;
	char text[80];
};

struct gate_config {
	char path[4096];                /* the file it was loaded from (SIGHUP reads it again) */
	struct gate_listen listen[GATE_MAX_LISTEN];
	int n_listen;
	char db[4096];
	struct sockaddr_storage upstream;
	socklen_t upstream_len;
	char upstream_text[280];
	bool upstream_tls;              /* https://: TLS to the upstream, certificate verified */
	char upstream_host[256];        /* name or IP literal the certificate must match (SNI) */
	char upstream_ca[4096];         /* "" = the system's trust store */
	enum gate_mode mode;
	char auth_path[256];
	char tls_cert[4096];
	char tls_key[4096];
	struct cidr_set *trusted;       /* NULL: trust nobody */
	char access_log[4096];          /* "" = off, "-" = stdout */
	char account[128];
	unsigned idle_timeout_s;
	unsigned header_timeout_s;      /* a request head must arrive whole within this */
	unsigned workers;               /* threads, each with its own loop and listeners */
	unsigned drain_timeout_ms;      /* SIGTERM/SIGINT: how long requests in flight may finish */
	enum gate_path_norm path_norm;  /* proxied requests; forward-auth always refuses */
	unsigned resync_ms;             /* PostgreSQL: re-check without a notification */
	unsigned max_staleness_s;       /* data older than this is stale */
	bool stale_deny;                /* stale data: answer 503 instead of deciding */
	bool metrics;                   /* answer GET /_iplock/metrics */
	bool usage;                     /* write key usage telemetry */
	unsigned usage_flush_ms;        /* a worker hands its usage counts over this often */
	struct gate_routes routes;
};

/* Loads path into cfg (zeroed first). NULL = ok, else a one-line reason ("file:line: ..."). */
const char *gate_config_load(const char *path, struct gate_config *cfg, char *err, size_t cap);
void gate_config_free(struct gate_config *cfg);

#endif
