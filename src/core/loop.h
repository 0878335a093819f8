/* loop.h: a small epoll event loop, one per worker thread (after Redis' ae.c).
 *
 * Watchers and timers are embedded in their owners (container_of); the loop never allocates
 * per event. Closing a connection only queues it with loop_defer(): the loop frees it after
 * the current batch of events, so two events for one connection never see freed memory. */
#ifndef IPLOCK_LOOP_H
#define IPLOCK_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct loop;
struct io;
struct timer;

typedef void (*io_cb)(struct loop *loop, struct io *io, uint32_t revents);
typedef void (*timer_cb)(struct loop *loop, struct timer *t);

struct io {
	int fd;
	uint32_t want;       /* EPOLLIN / EPOLLOUT the owner asked for */
	uint32_t registered; /* what epoll has: epoll_ctl runs only when want changes */
	bool added;
	io_cb cb;
};

struct timer {
	uint64_t deadline_ms;
	size_t heap_idx;     /* position in the heap, SIZE_MAX when not armed */
	timer_cb cb;
};

struct deferred {
	struct deferred *next;
	void (*fn)(struct deferred *d);
};

int loop_new(struct loop **out);          /* 0 or -errno */
void loop_free(struct loop *loop);
int loop_run(struct loop *loop);          /* until loop_stop(); 0 or -errno */
void loop_stop(struct loop *loop);
uint64_t loop_now(const struct loop *loop);  /* ms, CLOCK_MONOTONIC, cached per iteration */
uint64_t loop_clock_ms(void);

void io_init(struct io *io, int fd, io_cb cb);
int io_want(struct loop *loop, struct io *io, uint32_t events); /* set interest; 0 stops polling */
/* Forget and close(fd). An event still queued for io in the batch being dispatched is dropped,
 * so io may be re-initialised on a new fd at once (a redial). loop may be NULL outside it. */
void io_close(struct loop *loop, struct io *io);
/* Out of the epoll set. Interest 0 (io_want) still reports ERR/HUP, level-triggered: an owner
 * that cannot act on a hang-up yet uses this, and io_want() later adds the fd back. */
void io_stop(struct loop *loop, struct io *io);

void timer_init(struct timer *t, timer_cb cb);
int timer_start(struct loop *loop, struct timer *t, uint64_t after_ms);
void timer_stop(struct loop *loop, struct timer *t);
static inline bool timer_active(const struct timer *t) { return t->heap_idx != (size_t)-1; }

void loop_defer(struct loop *loop, struct deferred *d, void (*fn)(struct deferred *d));
void loop_run_deferred(struct loop *loop);   /* at shutdown, after the last loop_run() */

/* Wake a loop from another thread (the callback runs on the loop's own thread). */
int loop_set_wakeup(struct loop *loop, void (*fn)(struct loop *loop, void *arg), void *arg);
void loop_wakeup(struct loop *loop);

#endif
