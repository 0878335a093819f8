/* git.h: scanning a repository's whole history: every unique blob once
 * (`git rev-list --objects --all` piped into `git cat-file --batch`), then, for the blobs with
 * findings only, the commits that introduced them (`git log --all -m --raw`, oldest first). */
#ifndef IPLOCK_SCAN_GIT_H
#define IPLOCK_SCAN_GIT_H

#include "scan/input.h"
#include "scan/report.h"

/* Scans repo's history into r. Returns 0, or -errno when git could not be run or failed
 * (a message is on stderr). */
int scan_git(struct scan_report *r, const char *repo, const struct scan_input_opts *o);

/* Scans what a commit would add: the staged blobs (the index, not the work tree) of files
 * added or changed against HEAD (every staged file on an unborn branch). For pre-commit hooks. */
int scan_git_staged(struct scan_report *r, const char *repo, const struct scan_input_opts *o);

#endif
