/* relay.c: opaque byte relays (splice through pooled pipes, or large-buffer read/write). */
#include "net/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"

#define RELAY_READ_MAX (64 * 1024)   /* copy mode: one read; bounds what a slow sink holds */
#define SPLICE_MAX (1 << 20)
#define PUMP_ROUNDS 8                /* reads per event per direction, for fairness */

int pipe_pool_take(struct pipe_pool *pool, int p[2])
{
	if (pool->n) {
		pool->n--;
		p[0] = pool->pipes[pool->n][0];
		p[1] = pool->pipes[pool->n][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	return 0;
}

void pipe_pool_give(struct pipe_pool *pool, int p[2])
{
	if (pool->n < PIPE_POOL_MAX) {
		pool->pipes[pool->n][0] = p[0];
		pool->pipes[pool->n][1] = p[1];
		pool->n++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

void pipe_pool_drain(struct pipe_pool *pool)
{
	while (pool->n) {
		pool->n--;
		close(pool->pipes[pool->n][0]);
		close(pool->pipes[pool->n][1]);
	}
}

void relay_dir_init(struct relay_dir *d)
{
	memset(d, 0, sizeof(*d));
	d->pipe[0] = d->pipe[1] = -1;
}

bool relay_dir_pending(const struct relay_dir *d)
{
	return d->pend_len > d->pend_off || d->inpipe > 0;
}

int relay_dir_queue(struct relay_dir *d, const void *data, size_t len)
{
	size_t have = d->pend_len - d->pend_off;

	if (len == 0)
		return 0;
	if (len > UINT32_MAX / 2 || have > UINT32_MAX / 2)
		return -ENOMEM;
	char *p = malloc(have + len);
	if (!p)
		return -ENOMEM;
	if (have)
		memcpy(p, d->pend + d->pend_off, have);
	memcpy(p + have, data, len);
	free(d->pend);
	d->pend = p;
	d->pend_off = 0;
	d->pend_len = (uint32_t)(have + len);
	return 0;
}

static long env_read(const struct relay_env *env, int fd, void *buf, size_t len)
{
	return env->io ? env->io->read(env->io->ctx, fd, buf, len) : sock_read(fd, buf, len);
}

static long env_write(const struct relay_env *env, int fd, const void *buf, size_t len)
{
	return env->io ? env->io->write(env->io->ctx, fd, buf, len) : sock_write(fd, buf, len);
}

int relay_dir_flush(const struct relay_env *env, struct relay_dir *d, int dst, uint64_t *count)
{
	while (d->pend_len > d->pend_off) {
		long n = env_write(env, dst, d->pend + d->pend_off, d->pend_len - d->pend_off);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		d->pend_off += (uint32_t)n;
		*count += (uint64_t)n;
	}
	if (d->pend) {
		free(d->pend);
		d->pend = NULL;
		d->pend_off = d->pend_len = 0;
	}
	while (d->inpipe > 0) {
		ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		d->inpipe -= (uint32_t)n;
		*count += (uint64_t)n;
	}
	if (d->pipe[0] != -1)
		pipe_pool_give(env->pipes, d->pipe);
	return 0;
}

int relay_dir_pump(const struct relay_env *env, struct relay_dir *d, int src, int dst,
		   uint64_t *count)
{
	int rc = relay_dir_flush(env, d, dst, count);

	if (rc)
		return rc;
	for (int round = 0; round < PUMP_ROUNDS && !relay_dir_pending(d) && !d->eof; round++) {
		if (env->splice || d->spliced) {
			if (d->pipe[0] == -1 && (rc = pipe_pool_take(env->pipes, d->pipe)) != 0)
				return rc;
			ssize_t n = splice(src, NULL, d->pipe[1], NULL, SPLICE_MAX, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n == -1 && errno == EAGAIN)
				break;
			if (n == -1)
				return -errno;
			if (n == 0) {
				d->eof = true;
				break;
			}
			d->inpipe = (uint32_t)n;
		} else {
			char *scratch = env->scratch;
			long n = env_read(env, src, scratch, RELAY_READ_MAX);
			if (n == -EAGAIN)
				break;
			if (n < 0)
				return (int)n;
			if (n == 0) {
				d->eof = true;
				break;
			}
			long w = env_write(env, dst, scratch, (size_t)n);
			if (w == -EAGAIN)
				w = 0;
			if (w < 0)
				return (int)w;
			*count += (uint64_t)w;
			if (w < n) {
				/* the sink is slow: keep the rest, stop reading this source until it drains */
				d->pend = malloc((size_t)(n - w));
				if (!d->pend)
					return -ENOMEM;
				memcpy(d->pend, scratch + w, (size_t)(n - w));
				d->pend_off = 0;
				d->pend_len = (uint32_t)(n - w);
				break;
			}
			if (n == RELAY_READ_MAX && env->splice_auto && !env->io) {
				/* a full read: this direction carries bulk data, move it by splice from now */
				d->spliced = true;
				continue;
			}
			if (n < RELAY_READ_MAX && !(env->io && env->io->buffered && env->io->buffered(env->io->ctx, src)))
				break;   /* a short read: the socket is drained */
		}
		if ((rc = relay_dir_flush(env, d, dst, count)) != 0)
			return rc;
	}
	if (!relay_dir_pending(d) && d->pipe[0] != -1)
		pipe_pool_give(env->pipes, d->pipe);
	if (d->eof && !relay_dir_pending(d) && !d->shut) {
		/* with fin_by_close the close that follows sends the FIN: one syscall less */
		if (!d->fin_by_close && env->io && env->io->shutdown_write)
			env->io->shutdown_write(env->io->ctx, dst);
		else if (!d->fin_by_close)
			shutdown(dst, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

void relay_dir_release(struct relay_dir *d, struct pipe_pool *pool)
{
	free(d->pend);
	d->pend = NULL;
	d->pend_off = d->pend_len = 0;
	if (d->pipe[0] != -1) {
		if (d->inpipe) {
			/* bytes still inside: this pipe cannot be reused */
			close(d->pipe[0]);
			close(d->pipe[1]);
			d->pipe[0] = d->pipe[1] = -1;
			d->inpipe = 0;
		} else {
			pipe_pool_give(pool, d->pipe);
		}
	}
}

void relay_interest(const struct relay_dir *up, const struct relay_dir *down, uint32_t *aev,
		    uint32_t *bev)
{
	*aev = *bev = 0;
	if (!relay_dir_pending(up) && !up->eof)
		*aev |= EPOLLIN;
	if (relay_dir_pending(up))
		*bev |= EPOLLOUT;
	if (!relay_dir_pending(down) && !down->eof)
		*bev |= EPOLLIN;
	if (relay_dir_pending(down))
		*aev |= EPOLLOUT;
}

void relay_pair_init(struct relay_pair *p, struct io *a, struct io *b, uint64_t *count_up,
		     uint64_t *count_down)
{
	relay_dir_init(&p->up);
	relay_dir_init(&p->down);
	p->a = a;
	p->b = b;
	p->count_up = count_up;
	p->count_down = count_down;
}

/* End on error or when both FINs are through, else re-arm both watchers. */
static int pair_settle(struct relay_pair *p, struct loop *loop, int rc)
{
	uint32_t aev, bev;

	if (rc)
		return rc;
	if (p->up.shut && p->down.shut)
		return 1;
	relay_interest(&p->up, &p->down, &aev, &bev);
	io_want(loop, p->a, aev);
	io_want(loop, p->b, bev);
	return 0;
}

int relay_pair_event(struct relay_pair *p, const struct relay_env *env, struct loop *loop, bool from_a,
		     uint32_t revents)
{
	bool both = revents & (EPOLLERR | EPOLLHUP);
	int rc = 0;

	/* readable a or writable b move bytes up; the reverse moves them down */
	if (both || (from_a ? (revents & EPOLLIN) : (revents & EPOLLOUT)))
		rc = relay_dir_pump(env, &p->up, p->a->fd, p->b->fd, p->count_up);
	if (!rc && (both || (from_a ? (revents & EPOLLOUT) : (revents & EPOLLIN))))
		rc = relay_dir_pump(env, &p->down, p->b->fd, p->a->fd, p->count_down);
	rc = pair_settle(p, loop, rc);
	/* a hung-up side we want nothing from would wake us forever (ERR/HUP ignore interest 0) */
	struct io *hit = from_a ? p->a : p->b;
	if (!rc && both && !hit->want)
		io_stop(loop, hit);
	return rc;
}

int relay_pair_flush(struct relay_pair *p, const struct relay_env *env, struct loop *loop)
{
	int rc = relay_dir_flush(env, &p->down, p->a->fd, p->count_down);

	if (!rc)
		rc = relay_dir_flush(env, &p->up, p->b->fd, p->count_up);
	return pair_settle(p, loop, rc);
}

void relay_pair_release(struct relay_pair *p, struct pipe_pool *pool)
{
	relay_dir_release(&p->up, pool);
	relay_dir_release(&p->down, pool);
}
