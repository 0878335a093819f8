/* bench/loadgen.c: load generator for the proxy benchmark (epoll, non-blocking, no
 * allocation per request besides OpenSSL's own with --tls). Run `loadgen --help` for the
 * modes and options.
 *
 * Every mode prints one result line of key=value pairs on stdout, e.g.
 *   mode=tunnels ok=81234 err=0 ... secs=8.000 rate=10154.2 p50_us=4100 p99_us=9800
 * Diagnostics (first few errors) go to stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

#define HEAD_CAP 4096            /* response head buffer per connection */
#define REQ_CAP 1024             /* prebuilt request cap */
#define SCRATCH_CAP (1u << 20)   /* body sink per thread */
#define MAX_THREADS 16
#define MAX_CONNS 100000
#define MAX_EVENTS 512
#define IDLE_BATCH 100           /* idle mode: tunnels being set up at once */
#define RETRY_NS 10000000ull     /* back-off after an error: 10 ms */
#define MAX_ERR_PRINT 5

/* Latency histogram: exact below 128 µs, then 64 sub-buckets per power of two (~1.5%). */
#define HIST_LIN 128
#define HIST_SUB 64
#define HIST_N (HIST_LIN + 40 * HIST_SUB)

enum mode {
	MODE_TUNNELS = 1,       /* connect, [CONNECT], GET /1k, close; repeat */
	MODE_FORWARD,           /* keep-alive GETs (absolute-form through a proxy) */
	MODE_BULK,              /* one download of N bytes at a time */
	MODE_IDLE,              /* N tunnels set up, one GET each, then held idle */
	MODE_SOCKS,             /* connect, SOCKS5 greeting [+ RFC 1929 auth] + CONNECT, GET /1k, close */
};

/* SOCKS5 client steps, each one request and one reply. */
enum socks_step {
	SOCKS_GREET = 0,        /* 05 01 METHOD -> 05 METHOD */
	SOCKS_AUTH,             /* RFC 1929: 01 ULEN USER PLEN PASS -> 01 00 */
	SOCKS_CONNECT,          /* 05 01 00 01 IPv4 PORT -> 05 00 00 ATYP ADDR PORT */
	SOCKS_DONE,             /* tunnel open */
};

enum conn_state {
	ST_FREE = 0,            /* no socket; waits for (re)start at retry_at */
	ST_CONNECTING,          /* non-blocking connect in flight */
	ST_TLS_HANDSHAKE,       /* --tls: TLS handshake with the proxy in flight */
	ST_SOCKS_SEND,          /* writing the request of the current SOCKS step */
	ST_SOCKS_READ,          /* waiting for the reply of the current SOCKS step */
	ST_SEND_CONNECT,        /* CONNECT line being written */
	ST_READ_CONNECT,        /* waiting for the CONNECT response head */
	ST_SEND_REQ,            /* GET being written */
	ST_READ_RESP,           /* reading the GET response */
	ST_PARKED,              /* idle mode: tunnel established and idle */
	ST_DONE,                /* no more work for this slot */
};

enum err_kind {
	ERR_CONNECT = 0,        /* connect() or socket set-up failed */
	ERR_STATUS,             /* proxy or origin answered other than 200 */
	ERR_EOF,                /* peer closed or reset mid-exchange */
	ERR_TIMEOUT,            /* an exchange exceeded the timeout */
	ERR_PROTO,              /* unparsable or oversized response head */
	ERR_TLS,                /* TLS handshake or record failure */
	ERR_KINDS,
};

static const char *const err_names[ERR_KINDS] = { "connect", "status", "eof", "timeout", "proto", "tls" };

struct opts {
	enum mode mode;
	struct sockaddr_in target;      /* where sockets connect: the proxy, or the origin */
	bool via_proxy;                 /* -x given */
	bool no_connect;                /* through a proxy, but without a CONNECT line (TCP relay) */
	char origin[64];                /* "IP:PORT" of the origin for CONNECT / absolute-form */
	char auth_line[256];            /* "Proxy-Authorization: Basic ...\r\n" or "" */
	int conc;
	double duration;
	long count;
	int threads;
	uint64_t bulk_bytes;
	double timeout;
	double hold;
	int spread;                     /* client source addresses 127.0.1.1..N, 0 = kernel's choice */
	bool tls;                       /* --tls: TLS to the proxy first */
	bool tls_resume;                /* --tls-resume: offer the slot's last session (ticket) */
};

struct thread;

struct conn {
	int fd;
	enum conn_state state;
	struct thread *th;
	uint64_t t_start;               /* ns: cycle or request start */
	uint64_t deadline;              /* ns */
	uint64_t retry_at;              /* ns, ST_FREE only */
	size_t out_off;
	size_t in_len;
	uint64_t body_left;
	bool head_done;
	bool close_after;               /* response said the connection closes */
	long reqs_on_conn;
	enum socks_step socks_step;
	SSL *ssl;                       /* --tls: this exchange's TLS connection */
	SSL_SESSION *sess;              /* --tls-resume: the last session this slot got */
	char in[HEAD_CAP];
};

struct thread {
	pthread_t tid;
	int idx;
	int ep;
	struct conn *conns;
	int nconns;
	int active;                     /* slots not ST_DONE */
	uint64_t ok;
	uint64_t errs[ERR_KINDS];
	uint64_t body_bytes;
	uint64_t xfer_ns;               /* bulk: time spent transferring */
	uint64_t dropped;               /* idle: parked tunnels closed by the peer */
	uint64_t resumed;               /* --tls: handshakes that resumed a session */
	int parked;
	int idle_started;
	uint32_t hist[HIST_N];
	char *scratch;
};

static struct opts o = {
	.mode = MODE_TUNNELS,
	.conc = 50,
	.duration = 8,
	.threads = 1,
	.bulk_bytes = 268435456ull,
	.timeout = 10,
	.hold = 60,
};
static char req_connect[REQ_CAP];
static size_t req_connect_len;
static char req_get[REQ_CAP];
static size_t req_get_len;
static unsigned char socks_msg[3][REQ_CAP];     /* prebuilt request per SOCKS step */
static size_t socks_len[3];
static SSL_CTX *tls_ctx;
static char tls_desc[128];                      /* negotiated version/cipher/group, set once */
static atomic_flag tls_desc_set = ATOMIC_FLAG_INIT;
static uint64_t t_end;                  /* ns; 0 = no time bound */
static atomic_long cycles_left;         /* count bound (LONG_MAX when none) */
static atomic_int errs_printed;
static volatile sig_atomic_t released;  /* idle: SIGUSR1/SIGTERM/SIGINT */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	released = 1;
}

static int hist_index(uint64_t us)
{
	if (us < HIST_LIN)
		return (int)us;
	int e = 63 - __builtin_clzll(us);                    /* e >= 7 */
	int idx = HIST_LIN + (e - 7) * HIST_SUB + (int)((us >> (e - 6)) & (HIST_SUB - 1));
	return idx < HIST_N ? idx : HIST_N - 1;
}

static uint64_t hist_value(int idx)
{
	if (idx < HIST_LIN)
		return (uint64_t)idx;
	int e = (idx - HIST_LIN) / HIST_SUB + 7;
	uint64_t sub = (uint64_t)((idx - HIST_LIN) % HIST_SUB);
	return (1ull << e) + (sub << (e - 6));
}

static uint64_t hist_pct(const uint64_t *h, uint64_t total, double pct)
{
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)((double)total * pct / 100.0);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0;
	for (int i = 0; i < HIST_N; i++) {
		seen += h[i];
		if (seen > want)
			return hist_value(i);
	}
	return hist_value(HIST_N - 1);
}

static const char *parse_hostport(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return "expected IPv4:PORT";
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 1 || port > 65535)
		return "bad port";
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return "bad IPv4 address";
	return NULL;
}

static void base64(const char *in, size_t len, char *out, size_t cap)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t j = 0;
	for (size_t i = 0; i < len && j + 5 < cap; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (uint32_t)(unsigned char)in[i + 2];
		out[j++] = tab[(v >> 18) & 63];
		out[j++] = tab[(v >> 12) & 63];
		out[j++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[j++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[j] = '\0';
}

static void report_err(struct conn *c, enum err_kind kind, const char *detail)
{
	c->th->errs[kind]++;
	if (atomic_fetch_add(&errs_printed, 1) < MAX_ERR_PRINT)
		fprintf(stderr, "loadgen: error %s: %s\n", err_names[kind], detail);
}

static bool claim_cycle(void)
{
	return atomic_fetch_sub(&cycles_left, 1) > 0;
}

static void conn_close_fd(struct conn *c)
{
	if (c->ssl) {
		/* No close_notify here: a failed TLS connection must not be shut down cleanly. */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

/* OpenSSL's result as a socket call's: n > 0, 0 = EOF, -1 with errno (EAGAIN = wait). */
static ssize_t tls_result(struct conn *c, int n)
{
	if (n > 0)
		return n;
	int e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno == 0)
		return 0;       /* EOF without close_notify */
	if (e != SSL_ERROR_SYSCALL)
		errno = EPROTO;
	ERR_clear_error();
	return -1;
}

/* send()/recv() on the socket, or on the TLS connection with --tls. */
static ssize_t io_send(struct conn *c, const void *buf, size_t len)
{
	if (!c->ssl)
		return send(c->fd, buf, len, MSG_NOSIGNAL);
	errno = 0;
	return tls_result(c, SSL_write(c->ssl, buf, (int)len));
}

static ssize_t io_recv(struct conn *c, void *buf, size_t len, int flags)
{
	if (!c->ssl)
		return recv(c->fd, buf, len, flags);
	errno = 0;
	return tls_result(c, SSL_read(c->ssl, buf, (int)len));
}

static void conn_start(struct conn *c, uint64_t now);

/* Ends the slot's current exchange with an error; it restarts after a short back-off. */
static void conn_fail(struct conn *c, enum err_kind kind, const char *detail, uint64_t now)
{
	report_err(c, kind, detail);
	if (c->state == ST_PARKED)
		c->th->parked--;
	conn_close_fd(c);
	c->state = ST_FREE;
	c->retry_at = now + RETRY_NS;
	if (o.mode == MODE_IDLE) {
		/* An idle slot that failed is not retried: it counts as an error. */
		c->state = ST_DONE;
		c->th->active--;
	} else if (kind != ERR_CONNECT && kind != ERR_TIMEOUT) {
		/* The peer answered: restart now (connect failures and timeouts back off). */
		conn_start(c, now);
	}
}

static int conn_open(struct conn *c, uint64_t now)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		conn_fail(c, ERR_CONNECT, strerror(errno), now);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o.spread > 0) {
		/* Spread client sockets over several source IPs so one 4-tuple space is not exhausted. */
		static atomic_uint rr;
		struct sockaddr_in src = { .sin_family = AF_INET };
		unsigned k = atomic_fetch_add(&rr, 1) % (unsigned)o.spread;
		src.sin_addr.s_addr = htonl(0x7f000101u + k);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
			close(fd);
			conn_fail(c, ERR_CONNECT, strerror(errno), now);
			return -1;
		}
	}
	c->fd = fd;
	c->out_off = 0;
	c->in_len = 0;
	c->head_done = false;
	c->close_after = false;
	c->reqs_on_conn = 0;
	c->socks_step = SOCKS_GREET;
	c->deadline = now + (uint64_t)(o.timeout * 1e9);
	if (connect(fd, (struct sockaddr *)&o.target, sizeof(o.target)) == -1 && errno != EINPROGRESS) {
		conn_fail(c, ERR_CONNECT, strerror(errno), now);
		return -1;
	}
	c->state = ST_CONNECTING;
	/* Edge-triggered, registered once: the state machine runs each step until EAGAIN. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
	if (epoll_ctl(c->th->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		conn_fail(c, ERR_CONNECT, strerror(errno), now);
		return -1;
	}
	return 0;
}

/* Starts a new cycle on a free slot if the bounds allow; marks the slot done otherwise. */
static void conn_start(struct conn *c, uint64_t now)
{
	if ((t_end && now >= t_end) || (o.mode != MODE_IDLE && !claim_cycle())) {
		c->state = ST_DONE;
		c->th->active--;
		return;
	}
	c->t_start = now;
	conn_open(c, now);
}

/* Parses a response head at c->in; returns its length, 0 if incomplete, -1 if bad. */
static long parse_head(struct conn *c, int *status, uint64_t *clen, bool *has_clen)
{
	char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return c->in_len >= HEAD_CAP ? -1 : 0;
	size_t hlen = (size_t)(end + 4 - c->in);
	if (hlen < 12 || memcmp(c->in, "HTTP/1.", 7) != 0)
		return -1;
	*status = (c->in[9] - '0') * 100 + (c->in[10] - '0') * 10 + (c->in[11] - '0');
	bool http10 = c->in[7] == '0';
	*has_clen = false;
	*clen = 0;
	c->close_after = http10;
	/* Walk header lines; only Content-Length and Connection matter. */
	const char *p = memchr(c->in, '\n', hlen) + 1;
	const char *lim = c->in + hlen - 2;
	while (p < lim) {
		const char *eol = memchr(p, '\n', (size_t)(lim - p) + 1);
		if (!eol)
			break;
		size_t ll = (size_t)(eol - p);
		if (ll > 15 && strncasecmp(p, "content-length:", 15) == 0) {
			const char *v = p + 15;
			while (*v == ' ')
				v++;
			uint64_t n = 0;
			while (*v >= '0' && *v <= '9')
				n = n * 10 + (uint64_t)(*v++ - '0');
			*clen = n;
			*has_clen = true;
		} else if (ll > 11 && strncasecmp(p, "connection:", 11) == 0) {
			const char *v = p + 11;
			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
			else if (strncasecmp(v, "keep-alive", 10) == 0)
				c->close_after = false;
		} else if (ll > 17 && strncasecmp(p, "proxy-connection:", 17) == 0) {
			const char *v = p + 17;
			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
		}
		p = eol + 1;
	}
	return (long)hlen;
}

static void status_detail(const struct conn *c, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < c->in_len && n + 1 < cap && c->in[n] != '\r' && c->in[n] != '\n') {
		buf[n] = c->in[n];
		n++;
	}
	buf[n] = '\0';
}

static void record_ok(struct conn *c, uint64_t now)
{
	struct thread *th = c->th;
	th->ok++;
	th->hist[hist_index((now - c->t_start) / 1000)]++;
}

/* One finished response: decide what the slot does next. */
static void conn_response_done(struct conn *c, uint64_t now)
{
	struct thread *th = c->th;
	if (o.mode == MODE_IDLE) {
		th->ok++;
		c->state = ST_PARKED;
		th->parked++;
		return;
	}
	record_ok(c, now);
	if (o.mode == MODE_BULK)
		th->xfer_ns += now - c->t_start;
	if (o.mode == MODE_FORWARD && !c->close_after && !(t_end && now >= t_end) && claim_cycle()) {
		c->state = ST_SEND_REQ;
		c->out_off = 0;
		c->in_len = 0;
		c->head_done = false;
		c->t_start = now;
		c->deadline = now + (uint64_t)(o.timeout * 1e9);
		return;
	}
	if (c->ssl) {
		if (o.tls_resume) {
			/* The newest session (TLS 1.3: the last ticket, read before the response). */
			SSL_SESSION *s = SSL_get1_session(c->ssl);
			if (s) {
				SSL_SESSION_free(c->sess);
				c->sess = s;
			}
		}
		SSL_shutdown(c->ssl);   /* close_notify, as curl sends; not waited for */
		ERR_clear_error();
	}
	conn_close_fd(c);
	c->state = ST_FREE;
	conn_start(c, now);
}

/* Length of the reply to the current SOCKS step, or 0 if c->in does not tell it yet. */
static size_t socks_reply_len(const struct conn *c)
{
	if (c->socks_step != SOCKS_CONNECT)
		return 2;
	if (c->in_len < 5)
		return 0;
	switch (c->in[3]) {
	case 1:
		return 10;
	case 4:
		return 22;
	case 3:
		return 7 + (size_t)(unsigned char)c->in[4];
	default:
		return 5;       /* checked (and refused) by the caller */
	}
}

/* Reads the reply to the current SOCKS step; 1 = accepted, 0 = EAGAIN, -1 = failed. */
static int conn_socks_read(struct conn *c, uint64_t now)
{
	size_t need;
	while ((need = socks_reply_len(c)) == 0 || c->in_len < need) {
		size_t want = (need ? need : 5) - c->in_len;
		ssize_t n = io_recv(c, c->in + c->in_len, want, 0);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			conn_fail(c, ERR_EOF, n == 0 ? "closed before SOCKS reply" : strerror(errno), now);
			return -1;
		}
		if (n == -1)
			return 0;
		c->in_len += (size_t)n;
	}
	const unsigned char *r = (const unsigned char *)c->in;
	char d[64];
	bool ok;
	if (c->socks_step == SOCKS_GREET)
		ok = r[0] == 5 && r[1] == socks_msg[SOCKS_GREET][2];
	else if (c->socks_step == SOCKS_AUTH)
		ok = r[0] == 1 && r[1] == 0;
	else
		ok = r[0] == 5 && r[1] == 0 && (r[3] == 1 || r[3] == 3 || r[3] == 4);
	if (!ok) {
		snprintf(d, sizeof(d), "SOCKS step %d reply %02x %02x", (int)c->socks_step, r[0], r[1]);
		conn_fail(c, ERR_STATUS, d, now);
		return -1;
	}
	c->in_len = 0;
	/* No-auth greeting: the server chose 00, so the next step is CONNECT. */
	c->socks_step = c->socks_step == SOCKS_GREET && socks_msg[SOCKS_GREET][2] == 0 ? SOCKS_CONNECT
										      : c->socks_step + 1;
	return 1;
}

/* Drives the TLS handshake; 1 = done, 0 = EAGAIN, -1 = failed. */
static int conn_tls_handshake(struct conn *c, uint64_t now)
{
	if (!c->ssl) {
		c->ssl = SSL_new(tls_ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
			conn_fail(c, ERR_TLS, "SSL_new failed", now);
			return -1;
		}
		SSL_set_connect_state(c->ssl);
		if (o.tls_resume && c->sess)
			SSL_set_session(c->ssl, c->sess);
	}
	errno = 0;
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		if (SSL_session_reused(c->ssl))
			c->th->resumed++;
		if (!atomic_flag_test_and_set(&tls_desc_set)) {
			int nid = SSL_get_negotiated_group(c->ssl);
			snprintf(tls_desc, sizeof(tls_desc), "%s/%s/%s", SSL_get_version(c->ssl),
				 SSL_get_cipher_name(c->ssl), nid > 0 ? OBJ_nid2sn(nid) : "none");
		}
		return 1;
	}
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	char d[160];
	unsigned long ec = ERR_peek_error();
	if (ec)
		ERR_error_string_n(ec, d, sizeof(d));
	else
		snprintf(d, sizeof(d), "handshake: %s", errno ? strerror(errno) : "peer closed");
	ERR_clear_error();
	conn_fail(c, ERR_TLS, d, now);
	return -1;
}

/* The state after the TCP connect (or the TLS handshake) completes. */
static enum conn_state conn_first_state(void)
{
	if (o.mode == MODE_SOCKS)
		return ST_SOCKS_SEND;
	return o.via_proxy && !o.no_connect && o.mode != MODE_FORWARD ? ST_SEND_CONNECT : ST_SEND_REQ;
}

/* Sends from a prebuilt request; returns 1 when fully sent, 0 on EAGAIN, -1 on error. */
static int conn_send(struct conn *c, const char *req, size_t len, uint64_t now)
{
	while (c->out_off < len) {
		ssize_t n = io_send(c, req + c->out_off, len - c->out_off);
		if (n == -1) {
			if (errno == EAGAIN)
				return 0;
			conn_fail(c, c->ssl ? ERR_TLS : ERR_EOF, strerror(errno), now);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = 0;
	return 1;
}

/* Reads a response (head into c->in, body discarded); 1 = complete, 0 = EAGAIN, -1 = failed. */
static int conn_read_resp(struct conn *c, bool is_connect, uint64_t now)
{
	struct thread *th = c->th;
	for (;;) {
		if (!c->head_done) {
			ssize_t n = io_recv(c, c->in + c->in_len, HEAD_CAP - c->in_len, 0);
			if (n == 0 || (n == -1 && errno != EAGAIN)) {
				/* A keep-alive connection closed by the server between requests: reconnect. */
				if (o.mode == MODE_FORWARD && c->reqs_on_conn > 1 && c->in_len == 0 && !is_connect) {
					atomic_fetch_add(&cycles_left, 1);
					conn_close_fd(c);
					c->state = ST_FREE;
					conn_start(c, now);
					return -1;
				}
				conn_fail(c, ERR_EOF, n == 0 ? "closed before response head" : strerror(errno), now);
				return -1;
			}
			if (n == -1)
				return 0;
			c->in_len += (size_t)n;
			int status;
			uint64_t clen;
			bool has_clen;
			long hlen = parse_head(c, &status, &clen, &has_clen);
			if (hlen == 0)
				continue;
			if (hlen < 0) {
				conn_fail(c, ERR_PROTO, "bad response head", now);
				return -1;
			}
			if (status != 200) {
				char d[160];
				status_detail(c, d, sizeof(d));
				conn_fail(c, ERR_STATUS, d, now);
				return -1;
			}
			size_t extra = c->in_len - (size_t)hlen;
			if (is_connect) {
				/* Bytes after the CONNECT head already belong to the tunnel. */
				memmove(c->in, c->in + hlen, extra);
				c->in_len = extra;
				return 1;
			}
			if (!has_clen) {
				conn_fail(c, ERR_PROTO, "response without Content-Length", now);
				return -1;
			}
			if (extra > clen) {
				conn_fail(c, ERR_PROTO, "more bytes than Content-Length", now);
				return -1;
			}
			th->body_bytes += extra;
			c->body_left = clen - extra;
			c->head_done = true;
			if (c->body_left == 0)
				return 1;
			continue;
		}
		size_t want = c->body_left < SCRATCH_CAP ? (size_t)c->body_left : SCRATCH_CAP;
		/* MSG_TRUNC on TCP discards without copying: the client costs little CPU in bulk. */
		ssize_t n = io_recv(c, th->scratch, want, o.mode == MODE_BULK ? MSG_TRUNC : 0);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			conn_fail(c, ERR_EOF, n == 0 ? "closed mid-body" : strerror(errno), now);
			return -1;
		}
		if (n == -1)
			return 0;
		th->body_bytes += (uint64_t)n;
		c->body_left -= (uint64_t)n;
		if (c->body_left == 0)
			return 1;
	}
}

/* Runs the slot's state machine as far as the socket allows (edge-triggered). */
static void conn_drive(struct conn *c, uint32_t events, uint64_t now)
{
	if (c->state == ST_CONNECTING) {
		if (events & EPOLLERR) {
			int err = 0;
			socklen_t sl = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
			conn_fail(c, ERR_CONNECT, strerror(err ? err : ECONNREFUSED), now);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		c->state = o.tls ? ST_TLS_HANDSHAKE : conn_first_state();
	}
	for (;;) {
		int rc;
		switch (c->state) {
		case ST_TLS_HANDSHAKE:
			rc = conn_tls_handshake(c, now);
			if (rc <= 0)
				return;
			c->state = conn_first_state();
			break;
		case ST_SOCKS_SEND:
			rc = conn_send(c, (const char *)socks_msg[c->socks_step], socks_len[c->socks_step], now);
			if (rc <= 0)
				return;
			c->state = ST_SOCKS_READ;
			break;
		case ST_SOCKS_READ:
			rc = conn_socks_read(c, now);
			if (rc <= 0)
				return;
			c->state = c->socks_step == SOCKS_DONE ? ST_SEND_REQ : ST_SOCKS_SEND;
			break;
		case ST_SEND_CONNECT:
			rc = conn_send(c, req_connect, req_connect_len, now);
			if (rc <= 0)
				return;
			c->state = ST_READ_CONNECT;
			break;
		case ST_READ_CONNECT:
			rc = conn_read_resp(c, true, now);
			if (rc <= 0)
				return;
			c->state = ST_SEND_REQ;
			break;
		case ST_SEND_REQ:
			rc = conn_send(c, req_get, req_get_len, now);
			if (rc <= 0)
				return;
			c->reqs_on_conn++;
			c->head_done = false;
			c->state = ST_READ_RESP;
			break;
		case ST_READ_RESP:
			if (c->in_len > 0 && !c->head_done) {
				/* Leftover bytes after a CONNECT head: try to parse them first. */
				int status;
				uint64_t clen;
				bool has_clen;
				if (parse_head(c, &status, &clen, &has_clen) > 0) {
					conn_fail(c, ERR_PROTO, "response before request", now);
					return;
				}
			}
			rc = conn_read_resp(c, false, now);
			if (rc <= 0)
				return;
			conn_response_done(c, now);
			if (c->state == ST_PARKED || c->state == ST_DONE || c->state == ST_FREE)
				return;
			if (c->state == ST_CONNECTING)
				return;
			break;
		case ST_PARKED:
			if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
				char b[256];
				ssize_t n = recv(c->fd, b, sizeof(b), 0);
				if (n == -1 && errno == EAGAIN)
					return;
				c->th->dropped++;
				c->th->parked--;
				conn_close_fd(c);
				c->state = ST_DONE;
				c->th->active--;
			}
			return;
		default:
			return;
		}
	}
}

static void print_result(struct thread *ths, int nth, double secs)
{
	uint64_t ok = 0, err = 0, errs[ERR_KINDS] = { 0 }, bytes = 0, xfer = 0, dropped = 0, resumed = 0;
	static uint64_t hist[HIST_N];
	for (int t = 0; t < nth; t++) {
		ok += ths[t].ok;
		bytes += ths[t].body_bytes;
		xfer += ths[t].xfer_ns;
		dropped += ths[t].dropped;
		resumed += ths[t].resumed;
		for (int k = 0; k < ERR_KINDS; k++) {
			errs[k] += ths[t].errs[k];
			err += ths[t].errs[k];
		}
		for (int i = 0; i < HIST_N; i++)
			hist[i] += ths[t].hist[i];
	}
	static const char *const names[] = { "", "tunnels", "forward", "bulk", "idle", "socks" };
	printf("mode=%s ok=%llu err=%llu", names[o.mode], (unsigned long long)ok, (unsigned long long)err);
	if (o.tls)
		printf(" tls=%s resume=%s resumed=%llu", tls_desc[0] ? tls_desc : "none",
		       o.tls_resume ? "on" : "off", (unsigned long long)resumed);
	for (int k = 0; k < ERR_KINDS; k++)
		printf(" err_%s=%llu", err_names[k], (unsigned long long)errs[k]);
	/* The generator's own CPU, to check it is not the bottleneck. */
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf(" secs=%.3f lg_cpu_s=%.3f", secs, cpu);
	if (o.mode == MODE_IDLE) {
		printf(" dropped=%llu\n", (unsigned long long)dropped);
	} else if (o.mode == MODE_BULK) {
		double xs = (double)xfer / 1e9;
		printf(" bytes=%llu xfer_secs=%.3f mbps=%.1f\n", (unsigned long long)bytes, xs,
		       xs > 0 ? (double)bytes / 1e6 / xs : 0.0);
	} else {
		printf(" rate=%.1f p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu\n",
		       secs > 0 ? (double)ok / secs : 0.0,
		       (unsigned long long)hist_pct(hist, ok, 50), (unsigned long long)hist_pct(hist, ok, 90),
		       (unsigned long long)hist_pct(hist, ok, 99), (unsigned long long)hist_pct(hist, ok, 100));
	}
	fflush(stdout);
}

static void idle_start_more(struct thread *th, uint64_t now)
{
	/* Slots being set up: started, neither parked nor done. */
	int busy = th->idle_started - th->parked - (th->nconns - th->active);
	while (th->idle_started < th->nconns && busy < IDLE_BATCH) {
		conn_start(&th->conns[th->idle_started++], now);
		busy++;
	}
}

static void *thread_run(void *arg)
{
	struct thread *th = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now = now_ns();
	bool ready_printed = false;
	uint64_t hold_end = 0;
	if (o.mode == MODE_IDLE)
		idle_start_more(th, now);
	else
		for (int i = 0; i < th->nconns; i++)
			conn_start(&th->conns[i], now);
	uint64_t last_scan = now;
	while (th->active > 0) {
		int n = epoll_wait(th->ep, evs, MAX_EVENTS, 10);
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			conn_drive(c, evs[i].events, now);
		}
		if (t_end && now >= t_end && o.mode != MODE_IDLE)
			break;
		if (o.mode == MODE_IDLE) {
			idle_start_more(th, now);
			/* Ready when every slot still alive is parked (the rest failed). */
			if (!ready_printed && th->idle_started == th->nconns && th->active == th->parked) {
				uint64_t e = 0;
				for (int k = 0; k < ERR_KINDS; k++)
					e += th->errs[k];
				printf("ready ok=%d err=%llu\n", th->parked, (unsigned long long)e);
				fflush(stdout);
				ready_printed = true;
				hold_end = now + (uint64_t)(o.hold * 1e9);
			}
			if (ready_printed && (released || now >= hold_end))
				break;
			if (!ready_printed && t_end && now >= t_end)
				break;
		}
		/* Every 10 ms: restart backed-off slots, time out stuck ones. */
		if (now - last_scan >= 10000000ull) {
			last_scan = now;
			for (int i = 0; i < th->nconns; i++) {
				struct conn *c = &th->conns[i];
				if (c->state == ST_FREE && o.mode != MODE_IDLE) {
					if (now >= c->retry_at)
						conn_start(c, now);
				} else if (c->state != ST_DONE && c->state != ST_PARKED && c->state != ST_FREE &&
					   now > c->deadline) {
					conn_fail(c, ERR_TIMEOUT, "exchange timed out", now);
				}
			}
		}
	}
	for (int i = 0; i < th->nconns; i++)
		conn_close_fd(&th->conns[i]);
	return NULL;
}

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: loadgen MODE [options]\n"
		"modes:\n"
		"  tunnels   N clients loop: connect, CONNECT (with -x), GET /1k, close\n"
		"  direct    same as tunnels without a proxy (connect to -o)\n"
		"  forward   N keep-alive connections of GETs (absolute-form with -x)\n"
		"  bulk      one tunnel at a time: GET /bulk?bytes=B (-n downloads)\n"
		"  idle      open N tunnels (one GET each), print 'ready', hold until SIGUSR1 or -H\n"
		"  socks     N clients loop: connect, SOCKS5 (-a: RFC 1929 auth, else no-auth)\n"
		"            CONNECT to -o by IPv4, GET /1k, close (-x is the SOCKS server)\n"
		"  freeport  print a free TCP port on 127.0.0.1\n"
		"options:\n"
		"  -o IP:PORT   origin (required)\n"
		"  -x IP:PORT   proxy; without it, connect straight to the origin\n"
		"  -a USER:PASS Proxy-Authorization Basic\n"
		"  --no-connect through -x without a CONNECT line (a TCP relay such as HAProxy)\n"
		"  --tls        tunnels/socks: TLS to the proxy first (full handshakes, no verification)\n"
		"  --tls-resume as --tls, each client slot offers its last session (ticket)\n"
		"  -c N         concurrency (default 50; idle: tunnels, default 2000)\n"
		"  -d SECS      duration bound (default 8; idle: set-up bound)\n"
		"  -n COUNT     total cycles/requests/downloads bound\n"
		"  -t THREADS   threads (default 1)\n"
		"  -b BYTES     bulk size (default 268435456)\n"
		"  -T SECS      per-exchange timeout (default 10)\n"
		"  -H SECS      idle: hold at most this long after ready (default 60)\n"
		"  -S N         spread client source IPs over 127.0.1.1..N\n");
	return rc;
}

static bool num_arg(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int freeport(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1) {
		perror("loadgen: freeport");
		return 1;
	}
	printf("%u\n", ntohs(sa.sin_port));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(2);
	const char *m = argv[1];
	if (strcmp(m, "-h") == 0 || strcmp(m, "--help") == 0)
		return usage(0);
	bool direct = false;
	bool conc_set = false;
	if (strcmp(m, "tunnels") == 0) {
		o.mode = MODE_TUNNELS;
	} else if (strcmp(m, "direct") == 0) {
		o.mode = MODE_TUNNELS;
		direct = true;
	} else if (strcmp(m, "forward") == 0) {
		o.mode = MODE_FORWARD;
	} else if (strcmp(m, "bulk") == 0) {
		o.mode = MODE_BULK;
	} else if (strcmp(m, "idle") == 0) {
		o.mode = MODE_IDLE;
	} else if (strcmp(m, "socks") == 0) {
		o.mode = MODE_SOCKS;
	} else if (strcmp(m, "freeport") == 0) {
		return freeport();
	} else {
		fprintf(stderr, "loadgen: unknown mode %s\n", m);
		return 2;
	}
	const char *origin = NULL, *proxy = NULL, *auth = NULL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		double v;
		if (strcmp(a, "--no-connect") == 0) {
			o.no_connect = true;
			continue;
		}
		if (strcmp(a, "--tls") == 0 || strcmp(a, "--tls-resume") == 0) {
			o.tls = true;
			o.tls_resume = strcmp(a, "--tls-resume") == 0;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage(0);
		if (i + 1 >= argc) {
			fprintf(stderr, "loadgen: %s needs a value\n", a);
			return 2;
		}
		const char *val = argv[++i];
		if (strcmp(a, "-o") == 0) {
			origin = val;
		} else if (strcmp(a, "-x") == 0) {
			proxy = val;
		} else if (strcmp(a, "-a") == 0) {
			auth = val;
		} else if (strcmp(a, "-c") == 0 && num_arg(val, 1, MAX_CONNS, &v)) {
			o.conc = (int)v;
			conc_set = true;
		} else if (strcmp(a, "-d") == 0 && num_arg(val, 0.01, 3600, &v)) {
			o.duration = v;
		} else if (strcmp(a, "-n") == 0 && num_arg(val, 1, 1e12, &v)) {
			o.count = (long)v;
		} else if (strcmp(a, "-t") == 0 && num_arg(val, 1, MAX_THREADS, &v)) {
			o.threads = (int)v;
		} else if (strcmp(a, "-b") == 0 && num_arg(val, 1, 1e13, &v)) {
			o.bulk_bytes = (uint64_t)v;
		} else if (strcmp(a, "-T") == 0 && num_arg(val, 0.01, 3600, &v)) {
			o.timeout = v;
		} else if (strcmp(a, "-H") == 0 && num_arg(val, 0, 3600, &v)) {
			o.hold = v;
		} else if (strcmp(a, "-S") == 0 && num_arg(val, 0, 250, &v)) {
			o.spread = (int)v;
		} else {
			fprintf(stderr, "loadgen: bad option %s %s\n", a, val);
			return 2;
		}
	}
	if (!origin) {
		fprintf(stderr, "loadgen: -o ORIGIN is required\n");
		return 2;
	}
	struct sockaddr_in osa;
	const char *err = parse_hostport(origin, &osa);
	if (!err && proxy && !direct)
		err = parse_hostport(proxy, &o.target);
	if (err) {
		fprintf(stderr, "loadgen: %s\n", err);
		return 2;
	}
	if (!proxy || direct)
		o.target = osa;
	if (o.mode == MODE_SOCKS && !proxy) {
		fprintf(stderr, "loadgen: socks needs -x SOCKS-SERVER\n");
		return 2;
	}
	if (o.tls && (!proxy || direct || (o.mode != MODE_TUNNELS && o.mode != MODE_SOCKS))) {
		fprintf(stderr, "loadgen: --tls needs tunnels or socks mode with -x\n");
		return 2;
	}
	o.via_proxy = proxy && !direct;
	snprintf(o.origin, sizeof(o.origin), "%s", origin);
	if (auth && o.via_proxy) {
		char b64[200];
		if (strlen(auth) > 140) {
			fprintf(stderr, "loadgen: -a too long\n");
			return 2;
		}
		base64(auth, strlen(auth), b64, sizeof(b64));
		snprintf(o.auth_line, sizeof(o.auth_line), "Proxy-Authorization: Basic %s\r\n", b64);
	}
	if (o.mode == MODE_BULK) {
		o.conc = 1;
		o.threads = 1;
		if (!o.count)
			o.count = 1;
	}
	if (o.mode == MODE_IDLE) {
		o.threads = 1;
		if (!conc_set)
			o.conc = 2000;
	}
	if (o.threads > o.conc)
		o.threads = o.conc;

	/* Prebuilt requests: nothing is formatted per request. */
	int n = snprintf(req_connect, sizeof(req_connect), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
			 o.origin, o.origin, o.auth_line);
	req_connect_len = (size_t)n;
	if (o.mode == MODE_FORWARD && o.via_proxy && !o.no_connect)
		n = snprintf(req_get, sizeof(req_get), "GET http://%s/1k HTTP/1.1\r\nHost: %s\r\n%s\r\n",
			     o.origin, o.origin, o.auth_line);
	else if (o.mode == MODE_BULK)
		n = snprintf(req_get, sizeof(req_get), "GET /bulk?bytes=%llu HTTP/1.1\r\nHost: %s\r\n\r\n",
			     (unsigned long long)o.bulk_bytes, o.origin);
	else
		n = snprintf(req_get, sizeof(req_get), "GET /1k HTTP/1.1\r\nHost: %s\r\n\r\n", o.origin);
	req_get_len = (size_t)n;
	if (o.mode == MODE_SOCKS) {
		/* Greeting offering one method, as httpx does: username/password with -a. */
		unsigned char *g = socks_msg[SOCKS_GREET];
		g[0] = 5;
		g[1] = 1;
		g[2] = auth ? 2 : 0;
		socks_len[SOCKS_GREET] = 3;
		if (auth) {
			const char *colon = strchr(auth, ':');
			size_t ul = colon ? (size_t)(colon - auth) : 0;
			size_t pl = colon ? strlen(colon + 1) : 0;
			if (!colon || ul < 1 || ul > 255 || pl < 1 || pl > 255) {
				fprintf(stderr, "loadgen: -a must be USER:PASS (1-255 bytes each)\n");
				return 2;
			}
			unsigned char *a = socks_msg[SOCKS_AUTH];
			a[0] = 1;
			a[1] = (unsigned char)ul;
			memcpy(a + 2, auth, ul);
			a[2 + ul] = (unsigned char)pl;
			memcpy(a + 3 + ul, colon + 1, pl);
			socks_len[SOCKS_AUTH] = 3 + ul + pl;
		}
		unsigned char *k = socks_msg[SOCKS_CONNECT];
		k[0] = 5;
		k[1] = 1;
		k[2] = 0;
		k[3] = 1;
		memcpy(k + 4, &osa.sin_addr, 4);
		memcpy(k + 8, &osa.sin_port, 2);
		socks_len[SOCKS_CONNECT] = 10;
	}
	if (o.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (!tls_ctx) {
			fprintf(stderr, "loadgen: cannot create a TLS context\n");
			return 1;
		}
		/* The proxy's cost is the subject: the client skips certificate checks. */
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	}

	atomic_store(&cycles_left, o.count ? o.count : 0x7fffffffffffffffL);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct thread *ths = calloc((size_t)o.threads, sizeof(*ths));
	struct conn *conns = calloc((size_t)o.conc, sizeof(*conns));
	if (!ths || !conns) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	uint64_t t0 = now_ns();
	/* Bulk is bounded by -n and the per-exchange timeout instead of a duration. */
	t_end = o.mode == MODE_BULK ? 0 : t0 + (uint64_t)(o.duration * 1e9);
	int base = 0;
	for (int t = 0; t < o.threads; t++) {
		struct thread *th = &ths[t];
		th->idx = t;
		th->nconns = o.conc / o.threads + (t < o.conc % o.threads ? 1 : 0);
		th->conns = conns + base;
		base += th->nconns;
		th->active = th->nconns;
		th->ep = epoll_create1(EPOLL_CLOEXEC);
		th->scratch = malloc(SCRATCH_CAP);
		if (th->ep == -1 || !th->scratch) {
			perror("loadgen: setup");
			return 1;
		}
		for (int i = 0; i < th->nconns; i++) {
			th->conns[i].fd = -1;
			th->conns[i].th = th;
		}
	}
	if (o.mode == MODE_BULK)
		o.timeout = o.timeout < 120 ? 120 : o.timeout;
	for (int t = 1; t < o.threads; t++)
		pthread_create(&ths[t].tid, NULL, thread_run, &ths[t]);
	thread_run(&ths[0]);
	for (int t = 1; t < o.threads; t++)
		pthread_join(ths[t].tid, NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	print_result(ths, o.threads, secs);
	return 0;
}
