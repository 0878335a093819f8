/* relay.c: CONNECT tunnels. Bytes move untouched, with splice() through pooled pipes (the
 * payload never enters user space) or with large-buffer read/write; `relay` in the config
 * picks one. FIN is passed on per direction (half-close), after pending bytes are out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"
#include "proxy/session.h"

#define RELAY_READ_MAX (64 * 1024)   /* copy mode: one read; bounds what a slow sink holds */
#define SPLICE_MAX (1 << 20)
#define PUMP_ROUNDS 8                /* reads per event per direction, for fairness */

int pipe_take(struct worker *w, int p[2])
{
	if (w->npipes) {
		w->npipes--;
		p[0] = w->pipes[w->npipes][0];
		p[1] = w->pipes[w->npipes][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	return 0;
}

void pipe_give(struct worker *w, int p[2])
{
	if (w->npipes < PIPE_POOL_MAX) {
		w->pipes[w->npipes][0] = p[0];
		w->pipes[w->npipes][1] = p[1];
		w->npipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

static bool dir_pending(const struct relay_dir *d)
{
	return d->pend_len > d->pend_off || d->inpipe > 0;
}

/* Move what is pending, then what the source has, to the sink. Returns 0, or -errno when
 * the tunnel must end. */
static int dir_flush(struct session *s, struct relay_dir *d, int dst, uint64_t *count)
{
	while (d->pend_len > d->pend_off) {
		long n = sess_write(s, dst, d->pend + d->pend_off, d->pend_len - d->pend_off);
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
		pipe_give(s->w, d->pipe);
	return 0;
}

static int dir_pump(struct session *s, struct relay_dir *d, int src, int dst, uint64_t *count)
{
	int rc = dir_flush(s, d, dst, count);

	if (rc)
		return rc;
	for (int round = 0; round < PUMP_ROUNDS && !dir_pending(d) && !d->eof; round++) {
		if (s->splice) {
			if (d->pipe[0] == -1 && (rc = pipe_take(s->w, d->pipe)) != 0)
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
			char *scratch = s->w->scratch;
			long n = sess_read(s, src, scratch, RELAY_READ_MAX);
			if (n == -EAGAIN)
				break;
			if (n < 0)
				return (int)n;
			if (n == 0) {
				d->eof = true;
				break;
			}
			long w = sess_write(s, dst, scratch, (size_t)n);
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
			if (n < RELAY_READ_MAX && !(s->ssl && src == s->cio.fd && SSL_pending(s->ssl)))
				break;   /* a short read: the socket is drained */
		}
		if ((rc = dir_flush(s, d, dst, count)) != 0)
			return rc;
	}
	if (!dir_pending(d) && d->pipe[0] != -1)
		pipe_give(s->w, d->pipe);
	if (d->eof && !dir_pending(d) && !d->shut) {
		sess_shutdown_write(s, dst);
		d->shut = true;
	}
	return 0;
}

static void relay_interest(struct session *s)
{
	uint32_t cev = 0, uev = 0;

	if (!dir_pending(&s->up) && !s->up.eof)
		cev |= EPOLLIN;
	if (dir_pending(&s->up))
		uev |= EPOLLOUT;
	if (!dir_pending(&s->down) && !s->down.eof)
		uev |= EPOLLIN;
	if (dir_pending(&s->down))
		cev |= EPOLLOUT;
	io_want(s->w->loop, &s->cio, cev);
	io_want(s->w->loop, &s->uio, uev);
}

void relay_start(struct session *s)
{
	relay_event(s, true, EPOLLIN | EPOLLOUT);   /* pumps both ways: the 200, early bytes */
}

void relay_event(struct session *s, bool from_client, uint32_t revents)
{
	int rc = 0;
	bool both = revents & (EPOLLERR | EPOLLHUP);

	session_touch(s);
	/* readable client or writable upstream move bytes up; the reverse moves them down */
	if (both || (from_client ? (revents & EPOLLIN) : (revents & EPOLLOUT)))
		rc = dir_pump(s, &s->up, s->cio.fd, s->uio.fd, &s->bytes_up);
	if (!rc && (both || (from_client ? (revents & EPOLLOUT) : (revents & EPOLLIN))))
		rc = dir_pump(s, &s->down, s->uio.fd, s->cio.fd, &s->bytes_down);
	if (rc) {
		if (!s->reason)
			s->reason = (rc == -ECONNRESET || rc == -EPIPE) ? "connection reset" : "relay error";
		session_close(s);
		return;
	}
	if (s->up.shut && s->down.shut) {
		session_close(s);
		return;
	}
	relay_interest(s);
}

void relay_release(struct session *s)
{
	struct relay_dir *dirs[2] = { &s->up, &s->down };

	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = dirs[i];
		free(d->pend);
		d->pend = NULL;
		if (d->pipe[0] != -1) {
			if (d->inpipe) {
				/* bytes still inside: this pipe cannot be reused */
				close(d->pipe[0]);
				close(d->pipe[1]);
				d->pipe[0] = d->pipe[1] = -1;
			} else {
				pipe_give(s->w, d->pipe);
			}
		}
	}
}
