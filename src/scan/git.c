/* git.c: history scanning through git's own plumbing, spawned with posix_spawn and pipes. */
#include "scan/git.h"

#include "scan/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fdio.h"
#include "core/secret.h"

extern char **environ;

#define GIT_LINE_MAX  8192
#define GIT_BLOB_INMEM (64u << 20)     /* larger blobs are streamed, not held */

/* Buffered reads from a pipe: header lines and exact-length blob bodies. */
struct breader {
	int fd;
	size_t pos, len;
	unsigned char buf[65536];
};

/* A reader over fd (which the caller still closes), or NULL out of memory. */
static struct breader *br_new(int fd)
{
	struct breader *b = malloc(sizeof(*b));

	if (b) {
		b->fd = fd;
		b->pos = b->len = 0;
	}
	return b;
}

static ssize_t br_fill(struct breader *b)
{
	for (;;) {
		ssize_t got = read(b->fd, b->buf, sizeof(b->buf));
		if (got >= 0) {
			b->pos = 0;
			b->len = (size_t)got;
			return got;
		}
		if (errno != EINTR)
			return -errno;
	}
}

/* One line without its '\n' into out (truncated to cap-1). 1 = line, 0 = end, -errno. */
static int br_line(struct breader *b, char *out, size_t cap)
{
	size_t n = 0;
	bool any = false;
	for (;;) {
		if (b->pos == b->len) {
			ssize_t got = br_fill(b);
			if (got < 0)
				return (int)got;
			if (got == 0) {
				out[n] = '\0';
				return any ? 1 : 0;
			}
		}
		any = true;
		unsigned char c = b->buf[b->pos++];
		if (c == '\n')
			break;
		if (n + 1 < cap)
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return 1;
}

static ssize_t br_read(struct breader *b, void *dst, size_t n)
{
	if (b->pos == b->len) {
		ssize_t got = br_fill(b);
		if (got <= 0)
			return got;
	}
	size_t k = b->len - b->pos < n ? b->len - b->pos : n;
	memcpy(dst, b->buf + b->pos, k);
	b->pos += k;
	return (ssize_t)k;
}

/* Exactly n bytes (or to EOF, which is then an error for the caller). */
static int br_exact(struct breader *b, void *dst, size_t n)
{
	size_t have = 0;
	while (have < n) {
		ssize_t got = br_read(b, (char *)dst + have, n - have);
		if (got < 0)
			return (int)got;
		if (got == 0)
			return -EPIPE;
		have += (size_t)got;
	}
	return 0;
}

static int br_skip(struct breader *b, uint64_t n)
{
	char tmp[4096];
	while (n) {
		size_t k = n < sizeof(tmp) ? (size_t)n : sizeof(tmp);
		int rc = br_exact(b, tmp, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

struct limited {
	struct breader *b;
	uint64_t left;
};

static ssize_t limited_read(void *arg, void *buf, size_t n)
{
	struct limited *l = arg;
	if (l->left == 0)
		return 0;
	if (n > l->left)
		n = (size_t)l->left;
	ssize_t got = br_read(l->b, buf, n);
	if (got == 0)
		return -EPIPE; /* git stopped mid-blob */
	if (got > 0)
		l->left -= (uint64_t)got;
	return got;
}

static int spawn_git(char *const argv[], int in_fd, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)))
		return -rc;
	if (in_fd >= 0 && (rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)))
		goto out;
	if (out_fd >= 0 && (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)))
		goto out;
	rc = posix_spawnp(pid, "git", &fa, NULL, argv, environ);
out:
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

/* 0 when git exited with status 0. */
static int reap(pid_t pid, const char *what)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	fprintf(stderr, "iplock scan: git %s failed (%s %d)\n", what,
		WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return -EIO;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Starts git with stdin from in_fd (-1: ours) and stdout into a new pipe, whose read end goes
 * to *out; says so on stderr when git cannot be run. 0 or -errno. */
static int git_open(char *const argv[], int in_fd, pid_t *pid, int *out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	int rc = spawn_git(argv, in_fd, p[1], pid);
	close(p[1]);
	if (rc) {
		fprintf(stderr, "iplock scan: cannot run git: %s\n", strerror(-rc));
		close(p[0]);
		return rc;
	}
	*out = p[0];
	return 0;
}

/* The decimal object size in a cat-file header; -EPROTO when it is none. */
static int parse_size(const char *s, unsigned long long *out)
{
	char *end = NULL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -EPROTO : 0;
}

/* Scans the blob whose body comes next: in memory (binary check) or streamed when huge. */
static int scan_blob(struct scan_report *r, struct breader *b, uint64_t size, const char *oid,
		     const char *path, const struct scan_input_opts *o, unsigned char **mem,
		     size_t *memcap)
{
	int rc;

	r->cur_file = path;
	r->cur_blob = oid;
	if (size <= GIT_BLOB_INMEM) {
		if (*memcap < size) {
			unsigned char *nb = realloc(*mem, (size_t)size);
			if (!nb)
				return -ENOMEM;
			*mem = nb;
			*memcap = (size_t)size;
		}
		if ((rc = br_exact(b, *mem, (size_t)size)))
			return rc;
		if (size == 0) {
			r->files++; /* an empty blob counts, binary or not */
			return 0;
		}
		return scan_input_buffer(r, *mem, (size_t)size, path, o, !o->binary);
	}
	/* a huge blob is streamed; its first bytes still tell an archive */
	struct limited l = { b, size };
	rc = scan_input_stream(r, limited_read, &l, path, o);
	if (rc == 0 && l.left)
		rc = br_skip(b, l.left);
	r->files++;
	r->bytes += size;
	return rc;
}

static int scan_blobs(struct scan_report *r, const char *repo, const struct scan_input_opts *o)
{
	char *revlist[] = { "git", "-C", (char *)repo, "rev-list", "--objects", "--all",
			    "--filter=object:type=blob", NULL };
	char *catfile[] = { "git", "-C", (char *)repo, "cat-file",
			    "--batch=%(objectname) %(objecttype) %(objectsize) %(rest)", NULL };
	int fd1 = -1, fd2 = -1;
	pid_t pid1 = -1, pid2 = -1;
	struct breader *b = NULL;
	unsigned char *mem = NULL;
	size_t memcap = 0;
	char line[GIT_LINE_MAX];
	int rc = 0;

	if ((rc = git_open(revlist, -1, &pid1, &fd1)) || (rc = git_open(catfile, fd1, &pid2, &fd2)))
		goto out;
	close_fd(&fd1);
	if (!(b = br_new(fd2))) {
		rc = -ENOMEM;
		goto out;
	}
	while ((rc = br_line(b, line, sizeof(line))) > 0) {
		/* "<oid> <type> <size> <path>" or "<oid> missing" */
		char *sp1 = strchr(line, ' ');
		char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		char *sp3 = sp2 ? strchr(sp2 + 1, ' ') : NULL;
		if (!sp1 || !sp2 || !sp3 || (size_t)(sp1 - line) >= SCAN_OID_MAX)
			continue; /* missing object (shallow or partial clone) */
		*sp1 = *sp2 = *sp3 = '\0';
		unsigned long long size;
		if ((rc = parse_size(sp2 + 1, &size)))
			break;
		if (strcmp(sp1 + 1, "blob"))
			rc = br_skip(b, size);
		else
			rc = scan_blob(r, b, size, line, sp3 + 1, o, &mem, &memcap);
		if (rc == 0)
			rc = br_skip(b, 1); /* the '\n' after each body */
		if (rc)
			break;
	}
	if (rc < 0 && rc != -ENOMEM)
		fprintf(stderr, "iplock scan: reading git objects: %s\n", strerror(-rc));
out:
	close_fd(&fd1);
	close_fd(&fd2); /* an early stop ends git with SIGPIPE */
	if (pid1 > 0 && reap(pid1, "rev-list") && rc == 0)
		rc = -EIO;
	if (pid2 > 0 && reap(pid2, "cat-file") && rc == 0)
		rc = -EIO;
	free(b);
	free(mem);
	r->cur_file = r->cur_blob = NULL;
	return rc;
}

/* Findings of one blob are contiguous in the report: [start, end). */
struct blobref {
	const char *oid;
	size_t start, end;
};

static int cmp_blobref(const void *a, const void *b)
{
	return strcmp(((const struct blobref *)a)->oid, ((const struct blobref *)b)->oid);
}

static void add_commit(struct scan_report *r, const struct blobref *br, const char *id,
		       const char *author, const char *date, const char *path)
{
	for (size_t i = br->start; i < br->end; i++) {
		struct scan_finding *f = &r->v[i];
		if (!scan_report_commit(f, id, author, date))
			continue;
		/* the introducing commit names the path; quoted (odd) paths keep rev-list's; a
		 * member of an archive blob keeps its "!member" part */
		if (f->n_commits == 1 && path[0] && path[0] != '"') {
			const char *inner = strchr(f->file, '!');
			size_t pl = strlen(path), il = inner ? strlen(inner) : 0;
			char *p = malloc(pl + il + 1);
			if (p) {
				memcpy(p, path, pl);
				memcpy(p + pl, inner ? inner : "", il + 1);
				free(f->file);
				f->file = p;
			}
		}
	}
}

static int attribute(struct scan_report *r, size_t first, const char *repo)
{
	char *logv[] = { "git", "-C", (char *)repo, "-c", "core.quotePath=false", "log", "--all",
			 "-m", "--reverse", "--no-renames", "--raw", "--no-abbrev",
			 "--format=commit %H%n%an <%ae>%n%aI", NULL };
	struct blobref *refs = NULL;
	size_t n = 0;
	int fd = -1;
	pid_t pid = -1;
	struct breader *b = NULL;
	char line[GIT_LINE_MAX], id[SCAN_OID_MAX] = "", author[1024] = "", date[64] = "";
	int state = 0; /* lines still expected after "commit": 2 author, 1 date */
	int rc = 0;

	refs = calloc(r->n - first, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = first; i < r->n; i++) {
		if (n && !strcmp(refs[n - 1].oid, r->v[i].blob)) {
			refs[n - 1].end = i + 1;
			continue;
		}
		refs[n++] = (struct blobref){ r->v[i].blob, i, i + 1 };
	}
	qsort(refs, n, sizeof(*refs), cmp_blobref);
	if ((rc = git_open(logv, -1, &pid, &fd)))
		goto out;
	if (!(b = br_new(fd))) {
		rc = -ENOMEM;
		goto out;
	}
	while ((rc = br_line(b, line, sizeof(line))) > 0) {
		if (state == 2) {
			snprintf(author, sizeof(author), "%.*s", (int)sizeof(author) - 1, line);
			state = 1;
		} else if (state == 1) {
			snprintf(date, sizeof(date), "%.*s", (int)sizeof(date) - 1, line);
			state = 0;
		} else if (!strncmp(line, "commit ", 7)) {
			snprintf(id, sizeof(id), "%.*s", (int)sizeof(id) - 1, line + 7);
			state = 2;
		} else if (line[0] == ':') {
			/* ":<mode> <mode> <old> <new> <status>\t<path>" */
			char *tab = strchr(line, '\t');
			char *f = line;
			for (int k = 0; k < 3 && f; k++)
				f = strchr(f + 1, ' ');
			if (!tab || !f)
				continue;
			*tab = '\0';
			char *e = strchr(f + 1, ' ');
			if (e)
				*e = '\0';
			struct blobref key = { f + 1, 0, 0 };
			struct blobref *hit = bsearch(&key, refs, n, sizeof(*refs), cmp_blobref);
			if (hit)
				add_commit(r, hit, id, author, date, tab + 1);
		}
	}
out:
	close_fd(&fd);
	if (pid > 0 && reap(pid, "log") && rc == 0)
		rc = -EIO;
	free(b);
	free(refs);
	return rc;
}

int scan_git(struct scan_report *r, const char *repo, const struct scan_input_opts *o)
{
	size_t first = r->n;
	struct stat sb;

	/* a missing repository is said here, not by git, whose message would quote the path
	 * unmasked (a key pasted as the path must not reach the terminal) */
	int e = stat(repo, &sb) ? errno : S_ISDIR(sb.st_mode) ? 0 : ENOTDIR;
	if (e) {
		char line[4200];
		snprintf(line, sizeof(line), "iplock scan: %s: %s\n", repo, strerror(e));
		secret_redact(line, strlen(line));
		fputs(line, stderr);
		return -e;
	}
	int rc = scan_blobs(r, repo, o);
	if (rc == 0 && r->n > first)
		rc = attribute(r, first, repo);
	return rc;
}

/* ---- the index (scan --staged, the pre-commit hook) ---- */

#define STAGED_LIST_MAX (256u << 20)   /* bytes of `git diff --cached` output we accept */

int scan_git_staged(struct scan_report *r, const char *repo, const struct scan_input_opts *o)
{
	/* what the commit would add or change: new blob ids of staged files, against HEAD (or the
	 * empty tree on an unborn branch) */
	char *diffv[] = { "git", "-C", (char *)repo, "diff", "--cached", "--raw", "-z",
			  "--no-renames", "--no-abbrev", "--diff-filter=ACMT", NULL };
	char *catfile[] = { "git", "-C", (char *)repo, "cat-file", "--batch", NULL };
	int fd = -1, in[2] = { -1, -1 };
	pid_t pid = -1, cpid = -1;
	char *list = NULL, line[GIT_LINE_MAX];
	size_t len = 0, memcap = 0;
	unsigned char *mem = NULL;
	struct breader *b = NULL;
	int rc;

	if ((rc = git_open(diffv, -1, &pid, &fd)))
		goto out;
	rc = fdio_read_all(fd, STAGED_LIST_MAX, &list, &len);
	close_fd(&fd);
	if (reap(pid, "diff --cached") && rc == 0)
		rc = -EIO;
	pid = -1;
	if (rc)
		goto out;
	if (pipe2(in, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	if ((rc = git_open(catfile, in[0], &cpid, &fd)))
		goto out;
	close_fd(&in[0]);
	if (!(b = br_new(fd))) {
		rc = -ENOMEM;
		goto out;
	}
	/* records: ":<mode> <mode> <old> <new> <status>\0<path>\0" */
	for (size_t at = 0; at < len && rc == 0;) {
		char *meta = list + at, *path = meta + strlen(meta) + 1;
		if (path >= list + len)
			break;
		at = (size_t)(path - list) + strlen(path) + 1;
		char mode[8] = "", oid[SCAN_OID_MAX] = "";
		if (sscanf(meta, ":%*7s %7s %*64s %64s", mode, oid) != 2)
			continue;
		/* gitlinks (submodules) have no blob here; deletions are filtered out */
		if (!strcmp(mode, "160000") || strspn(oid, "0") == strlen(oid))
			continue;
		/* one request, one answer: cat-file flushes after each object, so no deadlock */
		char req[SCAN_OID_MAX + 1];
		int n = snprintf(req, sizeof(req), "%s\n", oid);
		for (int w = 0; w < n;) {
			ssize_t k = write(in[1], req + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				rc = -errno;
				break;
			}
			w += (int)k;
		}
		if (rc)
			break;
		int got = br_line(b, line, sizeof(line));
		if (got <= 0) {
			rc = got ? got : -EPIPE;
			break;
		}
		char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp1 || !sp2 || strncmp(sp1 + 1, "blob ", 5)) {
			fprintf(stderr, "iplock scan: %s: staged object %s is missing\n", path, oid);
			r->errors++;
			continue;
		}
		unsigned long long size;
		if ((rc = parse_size(sp2 + 1, &size)))
			break;
		rc = scan_blob(r, b, size, oid, path, o, &mem, &memcap);
		if (rc == 0)
			rc = br_skip(b, 1);
	}
	if (rc < 0 && rc != -ENOMEM)
		fprintf(stderr, "iplock scan: reading the index: %s\n", strerror(-rc));
out:
	close_fd(&fd);
	close_fd(&in[0]);
	close_fd(&in[1]);      /* end of requests: cat-file exits */
	if (pid > 0)
		reap(pid, "diff --cached");
	if (cpid > 0 && reap(cpid, "cat-file") && rc == 0)
		rc = -EIO;
	free(b);
	free(mem);
	free(list);
	r->cur_file = r->cur_blob = NULL;
	return rc;
}
