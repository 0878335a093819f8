/* opts.h: what every reader of scan inputs is told (files, streams, git, archives, images):
 * engine flags, archive limits and where skipped members are counted. Its own header so that
 * the readers below input.c need not include input.h. */
#ifndef IPLOCK_SCAN_OPTS_H
#define IPLOCK_SCAN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

struct scan_report;

struct scan_input_opts {
	unsigned flags;         /* SCAN_F_* and SCAN_F_DECODE(depth) */
	bool binary;            /* also scan binary files met while walking directories */
	int max_archive_depth;  /* archives opened inside each other; 0 = archives are bytes */
	uint64_t max_decompressed; /* bytes out of one archive member (0 = default) */
	unsigned max_ratio;     /* decompressed/compressed of a member (0 = default) */
	uint64_t *skipped;      /* archive members skipped (bomb, corrupt), counted when set */
	struct scan_report *skip_report; /* and listed there (JSON, SARIF), when set */
};

#endif
