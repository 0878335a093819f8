/* input.c: files (mmap), directory walks and streams into the scanner. */
#include "scan/input.h"

#include "scan/archive.h"
#include "scan/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/secret.h"

#define WALK_DEPTH_MAX 128
#define SMALL_FILE (64 * 1024)  /* below this, read() beats setting up a mapping */

static void warn(struct scan_report *r, const char *path, int err)
{
	char line[4200];
	int n = snprintf(line, sizeof(line), "iplock scan: %s: %s\n", path, strerror(err));

	/* the path is the user's argument: a key pasted as a path is masked */
	if (n > 0) {
		secret_redact(line, strlen(line));
		fputs(line, stderr);
	}

	r->errors++;
}

struct fd_reader {
	int fd;
	uint64_t total;
};

static ssize_t fd_read(void *arg, void *buf, size_t n)
{
	struct fd_reader *fr = arg;
	for (;;) {
		ssize_t got = read(fr->fd, buf, n);
		if (got >= 0) {
			fr->total += (uint64_t)got;
			return got;
		}
		if (errno != EINTR)
			return -errno;
	}
}

int scan_input_archive(struct scan_report *r, const void *buf, size_t len, const char *name,
		       const struct scan_input_opts *o)
{
	if (scan_image_probe(buf, len)) {
		int rc = scan_image_tar(r, buf, len, name, o);
		if (rc != 1)
			return rc;
		/* not an image after all: an ordinary tar */
	}
	return scan_archive_buffer(r, buf, len, name, o, 1, NULL);
}

int scan_input_buffer(struct scan_report *r, const void *data, size_t len, const char *name,
		      const struct scan_input_opts *o, bool skip_binary)
{
	if (o->max_archive_depth > 0 && scan_archive_sniff(data, len))
		return scan_input_archive(r, data, len, name, o);
	if (skip_binary && scan_looks_binary(data, len))
		return 0;
	r->cur_file = name;
	int rc = scan_buffer(data, len, o->flags, scan_report_hit, r);
	r->files++;
	r->bytes += len;
	return rc;
}

int scan_input_stream(struct scan_report *r, scan_read_fn rd, void *rarg, const char *name,
		      const struct scan_input_opts *o)
{
	struct scan_peek pk = { .rd = rd, .rarg = rarg };
	int rc = 0;

	/* archives are found by their first bytes, so a stream is sniffed before it is scanned */
	if (o->max_archive_depth > 0)
		rc = scan_peek_fill(&pk);
	if (rc == 0 && o->max_archive_depth > 0 && scan_archive_sniff(pk.head, pk.hlen))
		rc = scan_archive_stream(r, pk.head, pk.hlen, rd, rarg, name, o, 1);
	else if (rc == 0)
		rc = scan_stream(scan_peek_read, &pk, SCAN_CHUNK_DEFAULT, o->flags, scan_report_hit, r);
	return rc;
}

int scan_input_fd(struct scan_report *r, int fd, const char *name, const struct scan_input_opts *o)
{
	struct fd_reader fr = { fd, 0 };

	r->cur_file = name;
	r->cur_blob = NULL;
	int rc = scan_input_stream(r, fd_read, &fr, name, o);
	r->files++;
	r->bytes += fr.total;
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		warn(r, name, -rc);
	return 0;
}

/* A regular file: read when small, mapped when large. skip_binary when met in a walk. */
static int scan_regular(struct scan_report *r, int fd, size_t size, const char *path,
			const struct scan_input_opts *o, bool skip_binary)
{
	unsigned char small[SMALL_FILE];
	const unsigned char *data = small;
	void *map = NULL;
	size_t len = 0;
	int rc = 0;

	if (size == 0)
		return 0;
	if (size <= sizeof(small)) {
		while (len < sizeof(small)) {
			ssize_t got = read(fd, small + len, sizeof(small) - len);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				warn(r, path, errno);
				return 0;
			}
			if (got == 0)
				break;
			len += (size_t)got;
		}
		/* a file that grows while we read is scanned as it was when we stat()ed it */
	} else {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			warn(r, path, errno);
			return 0;
		}
		/* advice values are not flags: one call each (failure only costs speed) */
		madvise(map, size, MADV_SEQUENTIAL);
		madvise(map, size, MADV_WILLNEED);
		data = map;
		len = size;
	}
	r->cur_blob = NULL;
	rc = scan_input_buffer(r, data, len, path, o, skip_binary);
	if (map)
		munmap(map, size);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(struct scan_report *r, const char *dir, const struct scan_input_opts *o, int depth);

/* One directory entry met while walking: never follows symlinks. */
static int walk_entry(struct scan_report *r, const char *path, const struct scan_input_opts *o,
		      int depth)
{
	struct stat st;
	int rc = 0;

	if (lstat(path, &st) != 0) {
		warn(r, path, errno);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return walk(r, path, o, depth + 1);
	if (!S_ISREG(st.st_mode))
		return 0; /* symlinks, sockets, fifos, devices */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0) {
		warn(r, path, errno);
		return 0;
	}
	rc = scan_regular(r, fd, (size_t)st.st_size, path, o, !o->binary);
	close(fd);
	return rc;
}

static int walk(struct scan_report *r, const char *dir, const struct scan_input_opts *o, int depth)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *d;

	if (depth > WALK_DEPTH_MAX) {
		warn(r, dir, ELOOP);
		return 0;
	}
	if (o->max_archive_depth > 0 && scan_image_is_dir(dir))
		return scan_image_dir(r, dir, o); /* an OCI image layout: layers in order */
	d = opendir(dir);
	if (!d) {
		warn(r, dir, errno);
		return 0;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **v = realloc(names, nc * sizeof(char *));
			if (!v) {
				rc = -ENOMEM;
				goto out;
			}
			names = v;
			cap = nc;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof(char *), cmp_name);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[PATH_MAX];
		size_t dl = strlen(dir);
		bool slash = dl > 0 && dir[dl - 1] == '/';
		/* "." walks show "a/b", as git and gitleaks do, not "./a/b" */
		int w = !strcmp(dir, ".") ?
			snprintf(path, sizeof(path), "%s", names[i]) :
			snprintf(path, sizeof(path), "%s%s%s", dir, slash ? "" : "/", names[i]);
		if (w < 0 || (size_t)w >= sizeof(path)) {
			warn(r, names[i], ENAMETOOLONG);
			continue;
		}
		rc = walk_entry(r, path, o, depth);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int scan_input_path(struct scan_report *r, const char *path, const struct scan_input_opts *o)
{
	struct stat st;
	int rc = 0;

	if (!strcmp(path, "-"))
		return scan_input_fd(r, 0, "-", o);
	if (stat(path, &st) != 0) {
		warn(r, path, errno);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return walk(r, path, o, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		warn(r, path, errno);
		return 0;
	}
	/* named files are scanned even when binary: a core dump was named on purpose */
	if (S_ISREG(st.st_mode))
		rc = scan_regular(r, fd, (size_t)st.st_size, path, o, false);
	else
		rc = scan_input_fd(r, fd, path, o);
	close(fd);
	return rc;
}
