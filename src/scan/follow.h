/* follow.h: `iplock scan --follow`: watch a growing file (a CI log) or a stream and report each
 * key as soon as the line holding it is complete. Files are watched with inotify (a 200 ms poll
 * backs it up, and replaces it where inotify is missing); truncation and rotation (the path
 * now names a new file) restart from the new file's start. */
#ifndef IPLOCK_SCAN_FOLLOW_H
#define IPLOCK_SCAN_FOLLOW_H

#include <signal.h>

#include "scan/input.h"
#include "scan/report.h"

#define SCAN_FOLLOW_LINE_MAX (1u << 20)  /* longer lines are scanned in overlapping pieces */

struct scan_follow_opts {
	const struct scan_input_opts *io;
	/* called for every new finding r->v[idx], at once (verify, revoke, write); returns 0 to go
	 * on or a negative errno to stop following */
	int (*on_finding)(void *arg, struct scan_report *r, size_t idx);
	void *arg;
	int poll_ms;            /* wake-up interval without an inotify event; 0 = 200 */
};

/* Follows path ("-" = stdin) until *stop is set (a signal handler sets it), or until the end of
 * a stream (stdin, a pipe). A file that does not exist yet is waited for. Returns 0, -ENOMEM, a
 * negative errno from on_finding, or -errno when the input cannot be read. */
int scan_follow(struct scan_report *r, const char *path, const struct scan_follow_opts *o,
		volatile sig_atomic_t *stop);

#endif
