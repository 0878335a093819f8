/* hook.c: writing the pre-commit hook, chaining a hook that was already there. */
#include "scan/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define HOOK_READ_MAX (1u << 20)   /* an existing hook bigger than this is not ours anyway */

/* `git -C repo rev-parse --git-path hooks`, made absolute-or-relative-to-cwd. 0 or -1. */
static int hooks_dir(const char *repo, char *out, size_t cap, char *msg, size_t mcap)
{
	char *argv[] = { "git", "-C", (char *)repo, "rev-parse", "--git-path", "hooks", NULL };
	posix_spawn_file_actions_t fa;
	int p[2], st = 0, rc = -1;
	pid_t pid;
	char buf[PATH_MAX];
	size_t n = 0;

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(msg, mcap, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	int e = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e) {
		close(p[0]);
		snprintf(msg, mcap, "cannot run git: %s", strerror(e));
		return -1;
	}
	for (;;) {
		ssize_t got = read(p[0], buf + n, sizeof(buf) - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
		if (n == sizeof(buf) - 1)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !buf[0]) {
		snprintf(msg, mcap, "%s is not a git repository", repo);
		return -1;
	}
	/* the path is relative to repo unless absolute */
	int w = buf[0] == '/' || !strcmp(repo, ".") ? snprintf(out, cap, "%s", buf)
						    : snprintf(out, cap, "%s/%s", repo, buf);
	if (w < 0 || (size_t)w >= cap)
		snprintf(msg, mcap, "hooks path too long");
	else
		rc = 0;
	return rc;
}

/* Whether the file at path is a hook we wrote (holds our marker). */
static int is_ours(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;
	int ours;

	if (!f)
		return -1;
	buf = malloc(HOOK_READ_MAX + 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, HOOK_READ_MAX, f);
	buf[n] = '\0';
	ours = strstr(buf, SCAN_HOOK_MARKER) != NULL;
	free(buf);
	fclose(f);
	return ours;
}

/* Single-quoted for sh: ' becomes '\'' */
static int sh_quote(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	if (cap < 3)
		return -1;
	out[n++] = '\'';
	for (; *s; s++) {
		if (n + 5 >= cap)
			return -1;
		if (*s == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = *s;
		}
	}
	out[n++] = '\'';
	out[n] = '\0';
	return 0;
}

int scan_hook_install(const char *repo, const char *iplock, char *msg, size_t cap)
{
	char dir[PATH_MAX], hook[PATH_MAX + 16], chained[PATH_MAX + 32], tmp[PATH_MAX + 32];
	char quoted[2 * PATH_MAX];
	struct stat st;
	bool chain = false, update = false;
	FILE *f = NULL;
	int rc = -1;

	if (hooks_dir(repo, dir, sizeof(dir), msg, cap))
		return -1;
	if (sh_quote(iplock, quoted, sizeof(quoted))) {
		snprintf(msg, cap, "path of iplock too long");
		return -1;
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(msg, cap, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(hook, sizeof(hook), "%s/pre-commit", dir);
	snprintf(chained, sizeof(chained), "%s/" SCAN_HOOK_CHAINED, dir);
	snprintf(tmp, sizeof(tmp), "%s/pre-commit.iplock-tmp", dir);
	if (lstat(hook, &st) == 0) {
		int ours = S_ISREG(st.st_mode) ? is_ours(hook) : 0;
		if (ours < 0) {
			snprintf(msg, cap, "cannot read %s: %s", hook, strerror(errno));
			return -1;
		}
		if (ours) {
			update = true;
		} else if (lstat(chained, &st) == 0) {
			/* never overwrite a hook we chained before */
			snprintf(msg, cap, "%s exists and so does %s: move one of them away first",
				 hook, chained);
			return -1;
		} else {
			chain = true;
		}
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		snprintf(msg, cap, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f,
		"#!/bin/sh\n"
		SCAN_HOOK_MARKER "\n"
		"# Blocks a commit whose staged files hold a Stripe-format secret (sk_live_, rk_live_, ...).\n"
		"# A hook that was here before runs first: " SCAN_HOOK_CHAINED ".\n"
		"hookdir=$(dirname \"$0\")\n"
		"if [ -x \"$hookdir/" SCAN_HOOK_CHAINED "\" ]; then\n"
		"\t\"$hookdir/" SCAN_HOOK_CHAINED "\" \"$@\" || exit $?\n"
		"fi\n"
		"iplock=${IPLOCK_HOOK_BIN:-%s}\n"
		"[ -x \"$iplock\" ] || iplock=iplock\n"
		"exec \"$iplock\" scan --staged\n", quoted);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(msg, cap, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (chain && rename(hook, chained) != 0) {
		snprintf(msg, cap, "cannot move %s aside: %s", hook, strerror(errno));
		goto out;
	}
	if (rename(tmp, hook) != 0) {
		snprintf(msg, cap, "cannot install %s: %s", hook, strerror(errno));
		if (chain)
			rename(chained, hook); /* put the old hook back */
		goto out;
	}
	snprintf(msg, cap, "%s %s%s", update ? "updated" : "installed", hook,
		 chain ? "; the existing hook was kept as " SCAN_HOOK_CHAINED " and runs first" : "");
	rc = 0;
out:
	fclose(f);
	if (rc)
		unlink(tmp);
	return rc;
}
