/* session.h: one client connection to the proxy, from accept to close: its state and the
 * session core (session.c) every handler stands on. Each handler has its own header: admit.h,
 * route.h, forward.h, socks.h, request.h; dispatch.h accepts and routes events. */
#ifndef IPLOCK_PROXY_SESSION_H
#define IPLOCK_PROXY_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/exchange.h"
#include "http/head.h"
#include "net/addr.h"
#include "net/dial.h"
#include "net/dns.h"
#include "net/proxyproto.h"
#include "net/relay.h"
#include "net/sock.h"
#include "net/stream.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/usage.h"

enum sess_state {
	SESS_HEAD = 0,     /* reading a request head from the client */
	SESS_PROXY_HDR,    /* proxy_protocol listener: reading the balancer's PROXY header first */
	SESS_TLS,          /* TLS handshake with the client (tls_listen) */
	SESS_SOCKS,        /* SOCKS5 negotiation: greeting, authentication, request */
	SESS_RESOLVE,      /* waiting for the destination's addresses (c-ares) */
	SESS_CONNECT,      /* non-blocking connect from an egress address in progress */
	SESS_TUNNEL,       /* CONNECT established: opaque bytes relayed both ways */
	SESS_FORWARD,      /* plain HTTP: one request and its response streamed */
	SESS_REPLY,        /* writing the proxy's own response; the connection closes after it */
	SESS_LINGER,       /* reply sent and FIN sent: draining the client so it reads the reply */
	SESS_DONE,         /* closed, queued for free after this batch of events */
};

enum fwd_phase {
	FWD_HEAD_OUT = 0,  /* sending the rewritten head */
	FWD_BODY,          /* streaming the body with its original framing */
	FWD_DONE,          /* message complete */
	FWD_WAIT_HEAD,     /* response only: waiting for the upstream's head */
};

enum socks_step {
	SOCKS_STEP_GREETING = 0, /* waiting for VER NMETHODS METHODS */
	SOCKS_STEP_AUTH,         /* waiting for the RFC 1929 username/password */
	SOCKS_STEP_REQUEST,      /* waiting for CONNECT */
	SOCKS_STEP_DONE,         /* request taken: resolving, connecting or relaying */
};

struct session;

/* The steps above a handler that it may start: set at accept by the dispatch, so a handler low
 * in the stack (forward.c) calls up through a pointer, never by name. */
struct session_steps {
	void (*redial)(struct session *s);      /* dial the request's destination afresh */
	void (*next_head)(struct session *s);   /* parse the next request head cin holds */
};

struct session {
	struct worker *w;
	const struct session_steps *steps;
	struct cfg_ref *cfg;
	uint64_t id;
	enum sess_state state;
	struct io cio;               /* client */
	struct io uio;               /* upstream */
	struct stream cs;            /* the client's bytes: plain, or TLS (tls_listen) */
	struct timer kick;           /* TLS: decrypted bytes wait inside OpenSSL, no event will come */
	struct timer timer;          /* header, connect or idle deadline, by state */
	uint64_t start_ms, last_ms;
	struct sockaddr_storage peer;  /* the client: the TCP peer, or the PROXY header's source */
	struct pp_reader *pp;        /* SESS_PROXY_HDR: the header read so far */
	enum sess_state pp_next;     /* the state the connection starts in once the header is read */
	bool head_started;           /* keep-alive: first byte of the next head seen */
	bool counted_user;
	bool splice;
	bool splice_auto;            /* relay = auto: copy, then splice once a direction carries bulk */
	bool socks;                  /* this session speaks SOCKS5, not HTTP */
	bool socks_busy;
	enum socks_step socks_step;

	/* the request being served */
	int user;                    /* index in cfg->users, -1 before auth */
	int pin;                     /* 1-based egress pin, -1 none */
	bool is_connect;
	uint8_t method;
	char host[256];
	uint16_t port;
	struct dial dial;            /* the destination's addresses and the attempt in flight */
	struct ipaddr dest;
	struct egress_pool *pool;
	size_t egress_idx;
	bool have_egress;
	uint32_t tried;              /* egress addresses that failed locally for this request */

	struct buf *cin;             /* bytes from the client not yet consumed */
	struct buf *uin;             /* bytes from the upstream not yet consumed */
	struct buf *out_c;           /* proxy-made bytes for the client */
	struct buf *out_u;           /* rewritten request head for the upstream */
	struct http_head *req;       /* both from the thread's pool (session_head_get, ...) */
	struct http_exchange *x;     /* the response side of a forwarded request (http/exchange) */
	enum fwd_phase req_phase, resp_phase;
	size_t req_ready, resp_ready;   /* framed body bytes at in->off awaiting the write */
	bool close_after;            /* the client connection ends with this exchange */
	bool upstream_reused;
	bool req_had_body;
	bool has_method;
	/* Plain sockets keep EPOLLIN while an exchange does not read them (two epoll_ctl calls
	 * per request saved); an event that comes anyway (pipelined bytes, a FIN, an early
	 * response) sets the flag and interest drops until the exchange reads that side. */
	bool c_early, u_early;
	bool u_readable;             /* upstream: not known drained (epoll said readable since) */

	/* upstream kept alive between forwarded requests */
	bool u_idle;
	char u_host[256];
	uint16_t u_port;
	size_t u_egress;
	struct ipaddr u_dest;

	struct relay_pair relay;     /* CONNECT tunnels; up: client -> upstream */

	/* for the access log */
	int status;
	const char *reason;
	const char *code;            /* the JSON error's code when the proxy refused, else NULL */
	char reason_buf[160];        /* a reason built at run time (session_error_dup) */
	uint64_t bytes_up, bytes_down;
	uint64_t req_start_ms;

	struct metrics_sess ms;

	struct usage_mark use;       /* users_db: the slot this request counts in (usage.h) */

	struct session *next, *prev;  /* the worker's list */
	struct deferred dfr;
};

static inline const struct proxy_config *session_cfg(const struct session *s)
{
	return s->cfg->cfg;
}

/* The address the upstream leaves from, once one is picked. */
static inline const struct ipaddr *session_egress(const struct session *s)
{
	return s->have_egress && s->pool ? &s->pool->addrs[s->egress_idx] : NULL;
}

/* Bytes down that were payload: the proxy's own "200 Connection established" is not. */
static inline uint64_t session_payload_down(const struct session *s)
{
	bool ok_line = s->is_connect && !s->socks && s->status == 200;

	return ok_line ? (s->bytes_down >= 39 ? s->bytes_down - 39 : 0) : s->bytes_down;
}

/* Client or upstream I/O: the client side is the session's stream (TLS when it has it). */
static inline long sess_read(struct session *s, int fd, void *buf, size_t len)
{
	return fd == s->cio.fd ? stream_read(&s->cs, buf, len) : sock_read(fd, buf, len);
}

static inline long sess_write(struct session *s, int fd, const void *buf, size_t len)
{
	return fd == s->cio.fd ? stream_write(&s->cs, buf, len) : sock_write(fd, buf, len);
}

/* FIN (and close_notify over TLS) towards fd */
void sess_shutdown_write(struct session *s, int fd);

/* The proxy's own answer, as HTTP or as a SOCKS5 reply (whichever the client speaks); the
 * connection closes after. message must be a string constant (it is kept as the log reason). */
void session_error(struct session *s, int status, const char *code, const char *message);
/* message is copied */
void session_error_dup(struct session *s, int status, const char *code, const char *message);
/* A JSON answer of the proxy's own (the pool endpoint). */
void session_json(struct session *s, int status, const char *json, size_t len);
/* Send b (or close when NULL), log status and reason, close after. */
void session_reply(struct session *s, struct buf *b, int status, const char *reason);
/* The same with len bytes of msg (copied; SOCKS5 replies). */
void session_reply_bytes(struct session *s, const void *msg, size_t len, int status, const char *reason);
void session_reply_flush(struct session *s);               /* SESS_REPLY: write on */
void session_linger_read(struct session *s);               /* SESS_LINGER: drain until the client's FIN */

/* life cycle */
void session_close(struct session *s);
void session_touch(struct session *s);
void session_close_all(struct worker *w);
void session_arm(struct session *s, unsigned ms);          /* the session's deadline, by state */
void session_log(struct session *s);                       /* the access log line of this request */
void session_upstream_close(struct session *s);
void session_exchange_reset(struct session *s);            /* forget the request served */
void session_metrics_tick(struct worker *w);               /* bytes in flight reach the counters */
void session_count_request(struct session *s);             /* users_db: one request for s's user */

/* CONNECT and SOCKS5 tunnels: the relay (relay.c) with the session's ends */
void session_tunnel_start(struct session *s);              /* connected: queued bytes out, then relay */
void session_tunnel_event(struct session *s, bool from_client, uint32_t revents);

/* Request heads and exchanges come from a small per-thread pool: no malloc per request, and
 * an idle connection or a tunnel holds none. NULL on ENOMEM; put takes NULL. */
struct http_head *session_head_get(void);
void session_head_put(struct http_head *h);
struct http_exchange *session_xchg_get(void);
void session_xchg_put(struct http_exchange *x);
void session_pool_trim(void);   /* the worker thread ends: free its pooled ones */

#endif
