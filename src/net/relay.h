/* relay.h: moving opaque bytes between two non-blocking sockets, one direction at a time,
 * with splice() through pooled pipes (the payload never enters user space) or with large-buffer
 * read/write. Nothing is held while a direction is idle: a pipe or a buffer is taken only while
 * bytes wait for a slow receiver. FIN is passed on (half-close) once pending bytes are out.
 * Used by the proxy's CONNECT tunnels, its inbound endpoints and `iplock tunnel`. */
#ifndef IPLOCK_NET_RELAY_H
#define IPLOCK_NET_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

#define RELAY_SCRATCH   (256 * 1024)   /* per thread: copy-mode reads land here */
#define PIPE_POOL_MAX   64

/* Idle splice pipes of one thread. */
struct pipe_pool {
	int pipes[PIPE_POOL_MAX][2];
	size_t n;
};

int pipe_pool_take(struct pipe_pool *pool, int p[2]);     /* 0 or -errno */
void pipe_pool_give(struct pipe_pool *pool, int p[2]);    /* p becomes {-1, -1} */
void pipe_pool_drain(struct pipe_pool *pool);             /* close every idle pipe */

/* How a relay reads and writes when a side is not a plain socket (a TLS client): copy mode
 * only, since splice needs the bytes as they are on the wire. */
struct relay_io {
	long (*read)(void *ctx, int fd, void *buf, size_t len);         /* as sock_read */
	long (*write)(void *ctx, int fd, const void *buf, size_t len);  /* as sock_write */
	void (*shutdown_write)(void *ctx, int fd);
	bool (*buffered)(void *ctx, int fd);   /* bytes read from fd but held above the socket */
	void *ctx;
};

/* What a thread lends its relays: the scratch buffer (copy mode) and its pipe pool. */
struct relay_env {
	char *scratch;                 /* RELAY_SCRATCH bytes */
	struct pipe_pool *pipes;
	bool splice;                   /* splice mode, else copy mode */
	bool splice_auto;              /* copy mode until a read fills the buffer, then splice */
	const struct relay_io *io;     /* NULL: plain sockets */
};

/* One direction of a relay. */
struct relay_dir {
	char *pend;        /* copy mode: bytes read but not yet written */
	uint32_t pend_off, pend_len;
	int pipe[2];       /* splice mode: pipe holding bytes in flight, -1 when none */
	uint32_t inpipe;
	bool eof;          /* the source sent FIN */
	bool shut;         /* the FIN was passed on to the sink */
	bool spliced;      /* auto mode: this direction moved to splice */
	bool fin_by_close; /* the owner closes dst as soon as this FIN is due: close() sends it */
};

void relay_dir_init(struct relay_dir *d);
bool relay_dir_pending(const struct relay_dir *d);

/* Queue bytes to send ahead of anything read from the source (a reply head, early data).
 * Returns 0 or -ENOMEM. */
int relay_dir_queue(struct relay_dir *d, const void *data, size_t len);

/* Move what is pending, then what src has, to dst. Returns 0, or -errno when the relay must
 * end; *count grows by the bytes written. */
int relay_dir_pump(const struct relay_env *env, struct relay_dir *d, int src, int dst,
		   uint64_t *count);

/* Only what is already pending (queued bytes, a filled pipe): no read from the source. */
int relay_dir_flush(const struct relay_env *env, struct relay_dir *d, int dst, uint64_t *count);

/* Free the pending buffer; give the pipe back (or close it if bytes are still inside). */
void relay_dir_release(struct relay_dir *d, struct pipe_pool *pool);

/* Epoll interest for the two sockets of a relay (up: a -> b, down: b -> a). */
void relay_interest(const struct relay_dir *up, const struct relay_dir *down, uint32_t *aev,
		    uint32_t *bev);

/* Both directions of one relay between the sockets of two watchers (up: a -> b), as the
 * proxy's tunnels, its inbound endpoints and `iplock tunnel` drive it. */
struct relay_pair {
	struct relay_dir up, down;
	struct io *a, *b;
	uint64_t *count_up, *count_down;   /* the owner's byte counters */
};

void relay_pair_init(struct relay_pair *p, struct io *a, struct io *b, uint64_t *count_up,
		     uint64_t *count_down);

/* After an event on a (from_a) or b: move bytes both ways as the event allows, then re-arm
 * both watchers. Returns 0 while the relay goes on, 1 once both FINs are through, -errno when
 * it must end; on anything but 0 the owner closes both sockets. */
int relay_pair_event(struct relay_pair *p, const struct relay_env *env, struct loop *loop, bool from_a,
		     uint32_t revents);

/* Only what is queued (relay_dir_queue), then re-arm: the start of a relay. Same returns. */
int relay_pair_flush(struct relay_pair *p, const struct relay_env *env, struct loop *loop);

void relay_pair_release(struct relay_pair *p, struct pipe_pool *pool);

#endif
