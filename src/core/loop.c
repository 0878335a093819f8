/* loop.c: epoll, a binary heap of timers, deferred frees, an eventfd to wake from outside. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct timer **heap;
	size_t nheap, capheap;
	struct deferred *deferred;
	struct io wake_io;
	void (*wake_fn)(struct loop *loop, void *arg);
	void *wake_arg;
	struct epoll_event *batch;   /* events being dispatched, so a close can void its later ones */
	int batch_n, batch_i;
};

uint64_t loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd == -1) {
		int err = -errno;
		free(loop);
		return err;
	}
	loop->wake_io.fd = -1;
	loop->now_ms = loop_clock_ms();
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	if (loop->wake_io.fd != -1)
		close(loop->wake_io.fd);
	close(loop->epfd);
	free(loop->heap);
	free(loop);
}

void loop_stop(struct loop *loop) { loop->stop = true; }
uint64_t loop_now(const struct loop *loop) { return loop->now_ms; }

void io_init(struct io *io, int fd, io_cb cb)
{
	io->fd = fd;
	io->want = 0;
	io->registered = 0;
	io->added = false;
	io->cb = cb;
}

int io_want(struct loop *loop, struct io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->want = events;
	if (io->added && io->registered == events)
		return 0;
	if (!io->added) {
		if (!events)
			return 0;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) == -1)
			return -errno;
		io->added = true;
	} else if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1) {
		return -errno;
	}
	io->registered = events;
	return 0;
}

/* An io closed or stopped mid-batch may be reused at once (io_init on a new fd, as a redial
 * does): an event still queued for it in this batch belongs to the old fd, so it is voided. */
static void batch_forget(struct loop *loop, const struct io *io)
{
	for (int j = loop->batch_i + 1; j < loop->batch_n; j++)
		if (loop->batch[j].data.ptr == io)
			loop->batch[j].data.ptr = NULL;
}

void io_stop(struct loop *loop, struct io *io)
{
	batch_forget(loop, io);
	if (io->fd != -1 && io->added)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->added = false;
	io->want = io->registered = 0;
}

void io_close(struct loop *loop, struct io *io)
{
	if (io->fd == -1)
		return;
	if (loop)
		batch_forget(loop, io);
	/* close() takes the fd out of the epoll set (our fds are never dup'd): no EPOLL_CTL_DEL */
	close(io->fd);
	io->fd = -1;
	io->added = false;
	io->want = io->registered = 0;
}

/* --- timers: a binary min-heap on deadline_ms, each timer knows its slot --- */

static void heap_swap(struct loop *loop, size_t a, size_t b)
{
	struct timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_idx = a;
	loop->heap[b]->heap_idx = b;
}

static void heap_up(struct loop *loop, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (loop->heap[p]->deadline_ms <= loop->heap[i]->deadline_ms)
			break;
		heap_swap(loop, i, p);
		i = p;
	}
}

static void heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < loop->nheap && loop->heap[l]->deadline_ms < loop->heap[m]->deadline_ms)
			m = l;
		if (r < loop->nheap && loop->heap[r]->deadline_ms < loop->heap[m]->deadline_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

void timer_init(struct timer *t, timer_cb cb)
{
	t->deadline_ms = 0;
	t->heap_idx = (size_t)-1;
	t->cb = cb;
}

void timer_stop(struct loop *loop, struct timer *t)
{
	size_t i = t->heap_idx;

	if (i == (size_t)-1)
		return;
	t->heap_idx = (size_t)-1;
	if (i == --loop->nheap)
		return;
	loop->heap[i] = loop->heap[loop->nheap];
	loop->heap[i]->heap_idx = i;
	heap_down(loop, i);
	heap_up(loop, i);
}

int timer_start(struct loop *loop, struct timer *t, uint64_t after_ms)
{
	timer_stop(loop, t);
	if (loop->nheap == loop->capheap) {
		size_t ncap = loop->capheap ? loop->capheap * 2 : 64;
		struct timer **n = realloc(loop->heap, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		loop->heap = n;
		loop->capheap = ncap;
	}
	t->deadline_ms = loop->now_ms + after_ms;
	t->heap_idx = loop->nheap;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, t->heap_idx);
	return 0;
}

static void timers_run(struct loop *loop)
{
	while (loop->nheap && loop->heap[0]->deadline_ms <= loop->now_ms) {
		struct timer *t = loop->heap[0];
		timer_stop(loop, t);
		t->cb(loop, t);
	}
}

void loop_defer(struct loop *loop, struct deferred *d, void (*fn)(struct deferred *d))
{
	d->fn = fn;
	d->next = loop->deferred;
	loop->deferred = d;
}

void loop_run_deferred(struct loop *loop)
{
	while (loop->deferred) {
		struct deferred *d = loop->deferred;
		loop->deferred = d->next;
		d->fn(d);
	}
}

static void wake_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	uint64_t v;

	(void)revents;
	if (read(io->fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		return;
	if (loop->wake_fn)
		loop->wake_fn(loop, loop->wake_arg);
}

int loop_set_wakeup(struct loop *loop, void (*fn)(struct loop *loop, void *arg), void *arg)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd == -1)
		return -errno;
	loop->wake_fn = fn;
	loop->wake_arg = arg;
	io_init(&loop->wake_io, fd, wake_cb);
	return io_want(loop, &loop->wake_io, EPOLLIN);
}

void loop_wakeup(struct loop *loop)
{
	uint64_t one = 1;

	if (loop->wake_io.fd != -1 && write(loop->wake_io.fd, &one, sizeof(one)) == -1) {
		/* counter saturated: a wakeup is already pending, nothing is lost */
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[LOOP_MAX_EVENTS];

	while (!loop->stop) {
		int timeout = -1;

		if (loop->nheap) {
			uint64_t d = loop->heap[0]->deadline_ms;
			timeout = d <= loop->now_ms ? 0 : (int)(d - loop->now_ms > 60000 ? 60000 : d - loop->now_ms);
		}
		int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		loop->now_ms = loop_clock_ms();
		loop->batch = events;
		loop->batch_n = n;
		for (loop->batch_i = 0; loop->batch_i < n; loop->batch_i++) {
			struct io *io = events[loop->batch_i].data.ptr;
			/* an earlier callback in this batch may have closed it (voided, or fd -1) */
			if (io && io->fd != -1)
				io->cb(loop, io, events[loop->batch_i].events);
		}
		loop->batch_n = 0;
		timers_run(loop);
		loop_run_deferred(loop);
	}
	loop_run_deferred(loop);
	return 0;
}
