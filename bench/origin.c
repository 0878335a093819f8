/* bench/origin.c: a small, fast HTTP/1.1 origin for the proxy benchmark.
 *
 *   origin [-l 127.0.0.1:PORT] [-t THREADS]
 *
 * GET /1k            -> 1024 bytes (one prebuilt write)
 * GET /bulk?bytes=N  -> N bytes, sent with sendfile() from a memfd
 * anything else      -> 404, empty body
 * Keep-alive unless the request says "Connection: close" or is HTTP/1.0 without keep-alive.
 * One epoll loop per thread, SO_REUSEPORT listeners; no allocation per request.
 * Prints "ready PORT" on stdout once listening. Exits on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_CAP 8192            /* request head cap per connection */
#define MAX_EVENTS 256
#define MAX_THREADS 16
#define MEMFD_SIZE (4u << 20)   /* bulk bodies cycle through this file */
#define MAX_BULK (1ull << 40)

enum conn_state {
	CONN_READING = 1,       /* waiting for / parsing request heads */
	CONN_SENDING_HEAD,      /* response head (or the whole /1k response) partly written */
	CONN_SENDING_BODY,      /* bulk body partly sent with sendfile */
};

struct conn {
	int fd;
	enum conn_state state;
	bool close_after;       /* close once the current response is sent */
	bool want_out;          /* EPOLLOUT currently registered */
	size_t in_len;
	const char *out;        /* pending head bytes (static or hbuf) */
	size_t out_len;
	uint64_t body_left;     /* bulk bytes still to send */
	uint64_t body_off;      /* bulk bytes already sent (offset into the memfd cycle) */
	char hbuf[128];         /* bulk response head */
	char in[REQ_CAP];
};

static struct sockaddr_in listen_addr;
static int memfd = -1;
static char resp_1k[1200];
static size_t resp_1k_len;
static const char resp_404[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
/* A proxy that passes its client's absolute-form line or Proxy-Authorization on to the
 * origin did not process the request (tinyproxy pipes a connection after its first request). */
static const char resp_400[] = "HTTP/1.1 400 Proxy Leaked Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static const char *parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return "expected HOST:PORT";
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 0 || port > 65535)
		return "bad port";
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return "bad IPv4 address";
	return NULL;
}

static int make_listener(void)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) == -1 ||
	    listen(fd, 4096) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_set_out(int ep, struct conn *c, bool want)
{
	if (c->want_out == want)
		return;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c);
}

/* Finds the value of ?bytes=N in a request target; 0 if absent or bad. */
static uint64_t bulk_bytes(const char *target, size_t len)
{
	const char *q = memmem(target, len, "bytes=", 6);
	if (!q)
		return 0;
	uint64_t v = 0;
	for (q += 6; q < target + len && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint64_t)(*q - '0');
		if (v > MAX_BULK)
			return MAX_BULK;
	}
	return v;
}

/* Parses one request head of length head_len at c->in and sets up its response. */
static void conn_start_response(struct conn *c, size_t head_len)
{
	const char *p = c->in;
	const char *sp1 = memchr(p, ' ', head_len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - p)) : NULL;
	const char *eol = memchr(p, '\r', head_len);
	c->close_after = false;
	if (!sp1 || !sp2 || !eol || sp2 > eol) {
		c->out = resp_404;
		c->out_len = sizeof(resp_404) - 1;
		c->close_after = true;
		c->body_left = 0;
		c->state = CONN_SENDING_HEAD;
		return;
	}
	const char *target = sp1 + 1;
	size_t tlen = (size_t)(sp2 - target);
	bool http10 = (size_t)(eol - sp2) >= 9 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
	char saved = c->in[head_len - 1];
	c->in[head_len - 1] = '\0';
	if (strcasestr(eol, "\nconnection: close") || (http10 && !strcasestr(eol, "\nconnection: keep-alive")))
		c->close_after = true;
	bool leaked = (tlen > 7 && strncasecmp(target, "http://", 7) == 0) ||
		      strcasestr(eol, "\nproxy-authorization:") != NULL;
	c->in[head_len - 1] = saved;
	if (leaked) {
		c->out = resp_400;
		c->out_len = sizeof(resp_400) - 1;
		c->close_after = true;
		c->body_left = 0;
		c->state = CONN_SENDING_HEAD;
		return;
	}

	c->body_left = 0;
	c->body_off = 0;
	if (tlen == 3 && memcmp(target, "/1k", 3) == 0) {
		c->out = resp_1k;
		c->out_len = resp_1k_len;
	} else if (tlen >= 5 && memcmp(target, "/bulk", 5) == 0) {
		c->body_left = bulk_bytes(target, tlen);
		int n = snprintf(c->hbuf, sizeof(c->hbuf),
				 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n",
				 (unsigned long long)c->body_left);
		c->out = c->hbuf;
		c->out_len = (size_t)n;
	} else {
		c->out = resp_404;
		c->out_len = sizeof(resp_404) - 1;
	}
	c->state = CONN_SENDING_HEAD;
}

/* Writes what can be written; returns -1 when the connection must close. */
static int conn_write(int ep, struct conn *c)
{
	while (c->state != CONN_READING) {
		if (c->state == CONN_SENDING_HEAD) {
			ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
			if (n == -1) {
				if (errno == EAGAIN) {
					conn_set_out(ep, c, true);
					return 0;
				}
				return -1;
			}
			c->out += n;
			c->out_len -= (size_t)n;
			if (c->out_len > 0)
				continue;
			c->state = c->body_left ? CONN_SENDING_BODY : CONN_READING;
		} else {
			/* Offsets cycle through the memfd; each call sends at most to its end. */
			off_t off = (off_t)(c->body_off % MEMFD_SIZE);
			size_t chunk = MEMFD_SIZE - (size_t)off;
			if (c->body_left < chunk)
				chunk = (size_t)c->body_left;
			ssize_t n = sendfile(c->fd, memfd, &off, chunk);
			if (n == -1) {
				if (errno == EAGAIN) {
					conn_set_out(ep, c, true);
					return 0;
				}
				return -1;
			}
			c->body_off += (uint64_t)n;
			c->body_left -= (uint64_t)n;
			if (c->body_left == 0)
				c->state = CONN_READING;
		}
		if (c->state == CONN_READING) {
			if (c->close_after)
				return -1;
			conn_set_out(ep, c, false);
		}
	}
	return 0;
}

/* Consumes complete request heads from the buffer (pipelining allowed). */
static int conn_process(int ep, struct conn *c)
{
	while (c->state == CONN_READING && c->in_len > 0) {
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!end) {
			if (c->in_len >= REQ_CAP)
				return -1;
			return 0;
		}
		size_t head_len = (size_t)(end + 4 - c->in);
		conn_start_response(c, head_len);
		/* Requests carry no body here; drop the head before writing. */
		memmove(c->in, c->in + head_len, c->in_len - head_len);
		c->in_len -= head_len;
		if (conn_write(ep, c) == -1)
			return -1;
	}
	return 0;
}

static int conn_read(int ep, struct conn *c)
{
	for (;;) {
		if (c->in_len >= REQ_CAP)
			return -1;
		ssize_t n = recv(c->fd, c->in + c->in_len, REQ_CAP - c->in_len, 0);
		if (n == 0)
			return -1;
		if (n == -1)
			return errno == EAGAIN ? 0 : -1;
		c->in_len += (size_t)n;
		if (conn_process(ep, c) == -1)
			return -1;
		/* A response waits for EPOLLOUT: stop reading until it is out (back-pressure). */
		if (c->state != CONN_READING)
			return 0;
	}
}

static void *worker(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1) {
		perror("origin: epoll");
		exit(1);
	}
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	struct epoll_event evs[MAX_EVENTS];
	int one = 1;
	while (!stopping) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 200);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd == -1) {
						if (errno == EMFILE || errno == ENFILE)
							usleep(1000);
						break;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					struct conn *nc = malloc(sizeof(*nc));
					if (!nc) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					nc->state = CONN_READING;
					nc->in_len = 0;
					nc->want_out = false;
					nc->close_after = false;
					nc->body_left = 0;
					struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			int rc = 0;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				rc = -1;
			if (rc == 0 && (evs[i].events & EPOLLOUT))
				rc = conn_write(ep, c);
			if (rc == 0 && c->state == CONN_READING && (evs[i].events & (EPOLLIN | EPOLLRDHUP)))
				rc = conn_read(ep, c);
			if (rc == 0 && c->state == CONN_READING)
				rc = conn_process(ep, c);
			if (rc == -1)
				conn_close(c);
		}
	}
	return NULL;
}

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: origin [-l 127.0.0.1:PORT] [-t THREADS]\n");
	return rc;
}

int main(int argc, char **argv)
{
	const char *laddr = "127.0.0.1:0";
	long threads = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage(0);
		if (i + 1 >= argc)
			return usage(2);
		if (strcmp(argv[i], "-l") == 0) {
			laddr = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0) {
			char *end;
			threads = strtol(argv[++i], &end, 10);
			if (*end || threads < 1 || threads > MAX_THREADS)
				return usage(2);
		} else {
			return usage(2);
		}
	}
	const char *err = parse_addr(laddr, &listen_addr);
	if (err) {
		fprintf(stderr, "origin: %s: %s\n", laddr, err);
		return 2;
	}
	/* The first listener fixes the port (0 = any); the others share it via SO_REUSEPORT. */
	int lfds[MAX_THREADS];
	for (long i = 0; i < threads; i++) {
		lfds[i] = make_listener();
		socklen_t sl = sizeof(listen_addr);
		if (lfds[i] == -1 || getsockname(lfds[i], (struct sockaddr *)&listen_addr, &sl) == -1) {
			perror("origin: listen");
			return 1;
		}
	}

	int hl = snprintf(resp_1k, sizeof(resp_1k),
			  "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n");
	memset(resp_1k + hl, 'x', 1024);
	resp_1k_len = (size_t)hl + 1024;

	memfd = memfd_create("origin-bulk", MFD_CLOEXEC);
	if (memfd == -1 || ftruncate(memfd, MEMFD_SIZE) == -1) {
		perror("origin: memfd");
		return 1;
	}
	char *map = mmap(NULL, MEMFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED) {
		perror("origin: mmap");
		return 1;
	}
	for (size_t i = 0; i < MEMFD_SIZE; i++)
		map[i] = (char)('a' + i % 26);
	munmap(map, MEMFD_SIZE);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pthread_t tids[MAX_THREADS];
	for (long i = 1; i < threads; i++)
		pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)lfds[i]);
	printf("ready %u\n", ntohs(listen_addr.sin_port));
	fflush(stdout);
	worker((void *)(intptr_t)lfds[0]);
	for (long i = 1; i < threads; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
