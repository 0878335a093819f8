/* input.h: feeding files, directories and stdin to the scanner, recording into a report. */
#ifndef IPLOCK_SCAN_INPUT_H
#define IPLOCK_SCAN_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "scan/opts.h"
#include "scan/report.h"
#include "scan/scan.h"

/* Scans a path: a regular file (memory-mapped), a directory (recursively, in name order,
 * skipping .git, symlinks and, unless asked, binary files), "-" for stdin, or any other
 * readable file (a pipe, a device) as a stream. Unreadable inputs are reported on stderr and
 * counted in r->errors. Returns 0 or a negative errno that stops the whole scan (-ENOMEM). */
int scan_input_path(struct scan_report *r, const char *path, const struct scan_input_opts *o);

/* One input held whole in memory (a file, a git blob), as `name`: an archive is opened (an
 * image tarball read as an image), a binary one skipped when skip_binary, anything else scanned
 * and counted in r->files and r->bytes. 0 or a negative errno (-ENOMEM). */
int scan_input_buffer(struct scan_report *r, const void *data, size_t len, const char *name,
		      const struct scan_input_opts *o, bool skip_binary);

/* An archive met at the top: an image tarball (docker save, OCI) is read as an image, anything
 * else as an ordinary archive. */
int scan_input_archive(struct scan_report *r, const void *buf, size_t len, const char *name,
		       const struct scan_input_opts *o);

/* One input read as a stream until rd returns 0 (stdin, a pipe, a huge git blob): its first
 * bytes tell an archive, which is opened; anything else is scanned. Counts nothing in r.
 * 0, the reader's -errno, -ENOMEM or the report's negative value. */
int scan_input_stream(struct scan_report *r, scan_read_fn rd, void *rarg, const char *name,
		      const struct scan_input_opts *o);

/* Scans what fd yields until end of input, as `name`. */
int scan_input_fd(struct scan_report *r, int fd, const char *name, const struct scan_input_opts *o);

#endif
