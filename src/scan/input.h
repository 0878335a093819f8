/* input.h: feeding files, directories and stdin to the scanner, recording into a report. */
#ifndef IPLOCK_SCAN_INPUT_H
#define IPLOCK_SCAN_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "scan/report.h"

struct scan_input_opts {
	unsigned flags;         /* SCAN_F_* and SCAN_F_DECODE(depth) */
	bool binary;            /* also scan binary files met while walking directories */
	int max_archive_depth;  /* archives opened inside each other; 0 = archives are bytes */
	uint64_t max_decompressed; /* bytes out of one archive member (0 = default) */
	unsigned max_ratio;     /* decompressed/compressed of a member (0 = default) */
	uint64_t *skipped;      /* archive members skipped (bomb, corrupt), counted when set */
	struct scan_report *skip_report; /* and listed there (JSON, SARIF), when set */
};

/* Scans a path: a regular file (memory-mapped), a directory (recursively, in name order,
 * skipping .git, symlinks and, unless asked, binary files), "-" for stdin, or any other
 * readable file (a pipe, a device) as a stream. Unreadable inputs are reported on stderr and
 * counted in r->errors. Returns 0 or a negative errno that stops the whole scan (-ENOMEM). */
int scan_input_path(struct scan_report *r, const char *path, const struct scan_input_opts *o);

/* Scans what fd yields until end of input, as `name`. */
int scan_input_fd(struct scan_report *r, int fd, const char *name, const struct scan_input_opts *o);

#endif
