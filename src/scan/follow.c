/* follow.c: following a growing file or a stream; each complete line is scanned at once. */
#include "scan/follow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLLOW_POLL_MS      200  /* backs up inotify (events can be missed across a rotation) */
#define FOLLOW_POLL_NO_INOTIFY 50

/* Bytes not scanned yet: the start of the line being written. */
struct follower {
	struct scan_report *r;
	const struct scan_follow_opts *o;
	unsigned char *buf;     /* SCAN_FOLLOW_LINE_MAX bytes */
	size_t len;
	uint64_t off;           /* input offset of buf[0] */
	uint64_t line;          /* line number of buf[0] */
	uint64_t col0;          /* bytes of that line before buf[0] (a piece of an overlong line) */
	size_t skip;            /* hits before this offset were reported with the previous piece */
	size_t cut;             /* only hits before this offset count (overlong-line pieces) */
};

/* Back to the start of an input (a rotated file): the report, options and buffer stay. */
static void follower_reset(struct follower *fw)
{
	*fw = (struct follower){ .r = fw->r, .o = fw->o, .buf = fw->buf, .line = 1, .cut = SIZE_MAX };
}

/* Maps a hit in buf to its place in the input, records it and acts on it at once. */
static int follow_hit(void *arg, const struct scan_hit *hit)
{
	struct follower *fw = arg;
	if (hit->offset < fw->skip || hit->offset >= fw->cut)
		return 0;
	struct scan_hit h = *hit;
	h.offset += fw->off;
	if (h.line == 1)
		h.column += fw->col0;
	h.line += fw->line - 1;
	size_t before = fw->r->n;
	int rc = scan_report_hit(fw->r, &h);
	if (rc == 0 && fw->r->n > before && fw->o->on_finding)
		rc = fw->o->on_finding(fw->o->arg, fw->r, before);
	return rc;
}

/* Scans the complete lines held (everything when final) and keeps the rest. */
static int drain(struct follower *fw, bool final)
{
	unsigned flags = fw->o->io ? fw->o->io->flags : 0;
	const unsigned char *nl = fw->len ? memrchr(fw->buf, '\n', fw->len) : NULL;
	int rc;

	if (nl || (final && fw->len)) {
		size_t n = final ? fw->len : (size_t)(nl - fw->buf) + 1;
		fw->cut = SIZE_MAX;
		if ((rc = scan_buffer(fw->buf, n, flags, follow_hit, fw)))
			return rc;
		uint64_t lines = scan_count_newlines(fw->buf, n);
		const unsigned char *last = memrchr(fw->buf, '\n', n);
		fw->line += lines;
		fw->col0 = lines ? (uint64_t)(n - (size_t)(last - fw->buf) - 1) : fw->col0 + n;
		fw->off += n;
		memmove(fw->buf, fw->buf + n, fw->len - n);
		fw->len -= n;
		fw->skip = 0;
		return 0;
	}
	if (fw->len < SCAN_FOLLOW_LINE_MAX)
		return 0;
	/* an overlong line: keys that start before cut are decidable; the byte before cut stays
	 * for the boundary check of a key starting at cut */
	fw->cut = fw->len - SCAN_KEY_MAX - 1;
	rc = scan_buffer(fw->buf, fw->len, flags, follow_hit, fw);
	size_t keep = fw->cut - 1;
	fw->cut = SIZE_MAX;
	if (rc)
		return rc;
	fw->off += keep;
	fw->col0 += keep;
	memmove(fw->buf, fw->buf + keep, fw->len - keep);
	fw->len -= keep;
	fw->skip = 1;
	return 0;
}

/* Reads what fd has now (to EOF, or EAGAIN). 0, or -errno. */
static int read_available(struct follower *fw, int fd, uint64_t *pos, volatile sig_atomic_t *stop)
{
	for (;;) {
		ssize_t got = read(fd, fw->buf + fw->len, SCAN_FOLLOW_LINE_MAX - fw->len);
		if (got < 0) {
			if (errno == EINTR && !*stop)
				continue;
			return errno == EINTR || errno == EAGAIN ? 0 : -errno;
		}
		if (got == 0)
			return 0;
		fw->len += (size_t)got;
		*pos += (uint64_t)got;
		fw->r->bytes += (uint64_t)got;
		int rc = drain(fw, false);
		if (rc)
			return rc;
	}
}

/* A stream (stdin, a pipe): blocking reads until its end or a stop. */
static int follow_stream(struct follower *fw, int fd, volatile sig_atomic_t *stop)
{
	int rc = 0;

	fw->r->files++;
	while (!*stop) {
		ssize_t got = read(fd, fw->buf + fw->len, SCAN_FOLLOW_LINE_MAX - fw->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			break;
		}
		if (got == 0)
			break;
		fw->len += (size_t)got;
		fw->r->bytes += (uint64_t)got;
		if ((rc = drain(fw, false)))
			break;
	}
	return rc ? rc : drain(fw, true);
}

static int watch_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (ifd < 0)
		return -1;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	/* the directory, not the file: rotation replaces the file under the same name */
	if (inotify_add_watch(ifd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB) < 0) {
		close(ifd);
		return -1;
	}
	return ifd;
}

static int follow_file(struct follower *fw, const char *path, volatile sig_atomic_t *stop)
{
	int ifd = watch_dir(path), fd = -1, rc = 0;
	int wait_ms = fw->o->poll_ms > 0 ? fw->o->poll_ms : FOLLOW_POLL_MS;
	bool told_waiting = false;
	uint64_t pos = 0;
	dev_t dev = 0;
	ino_t ino = 0;

	if (ifd < 0 && wait_ms > FOLLOW_POLL_NO_INOTIFY)
		wait_ms = FOLLOW_POLL_NO_INOTIFY;
	while (!*stop) {
		struct stat st;
		if (fd < 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0 && errno != ENOENT) {
				rc = -errno;
				break;
			}
			if (fd < 0 && !told_waiting) {
				fprintf(stderr, "iplock scan: waiting for %s to appear\n", path);
				told_waiting = true;
			}
			if (fd >= 0) {
				if (fstat(fd, &st) != 0) {
					rc = -errno;
					break;
				}
				dev = st.st_dev;
				ino = st.st_ino;
				pos = 0;
				follower_reset(fw);
				fw->r->files++;
			}
		}
		if (fd >= 0) {
			if ((rc = read_available(fw, fd, &pos, stop)))
				break;
			if (fstat(fd, &st) == 0 && (uint64_t)st.st_size < pos) {
				fprintf(stderr, "iplock scan: %s was truncated: following it from its start\n",
					path);
				if ((rc = drain(fw, true)))
					break;
				lseek(fd, 0, SEEK_SET);
				pos = 0;
				follower_reset(fw);
				continue;
			}
			if (stat(path, &st) != 0 || st.st_dev != dev || st.st_ino != ino) {
				/* rotated: what the writer added to the old file before moving on counts */
				if ((rc = read_available(fw, fd, &pos, stop)) || (rc = drain(fw, true)))
					break;
				close(fd);
				fd = -1;
				fprintf(stderr, "iplock scan: %s was replaced: following the new file\n", path);
				told_waiting = true;
				continue;
			}
		}
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		int n = poll(&pfd, ifd >= 0 ? 1 : 0, wait_ms);
		if (n > 0) {
			char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(ifd, ev, sizeof(ev)) > 0)
				; /* which event does not matter: every wake-up reads and re-checks */
		}
	}
	/* stopped: the line being written when we stopped is reported too */
	if (rc == 0)
		rc = drain(fw, true);
	if (fd >= 0)
		close(fd);
	if (ifd >= 0)
		close(ifd);
	return rc;
}

int scan_follow(struct scan_report *r, const char *path, const struct scan_follow_opts *o,
		volatile sig_atomic_t *stop)
{
	struct follower fw = { .r = r, .o = o };
	struct stat st;
	int rc;

	fw.buf = malloc(SCAN_FOLLOW_LINE_MAX);
	if (!fw.buf)
		return -ENOMEM;
	follower_reset(&fw);
	r->cur_file = path;
	r->cur_blob = NULL;
	if (!strcmp(path, "-"))
		rc = follow_stream(&fw, 0, stop);
	else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		rc = fd < 0 ? -errno : follow_stream(&fw, fd, stop);
		if (fd >= 0)
			close(fd);
	} else {
		rc = follow_file(&fw, path, stop);
	}
	free(fw.buf);
	r->cur_file = NULL;
	return rc;
}
