/* archive.h: archives and compressed streams found by content (zip, jar, whl, apk, tar, gzip,
 * xz, bzip2, zstd, 7z), read with libarchive and scanned member by member, nested up to a depth.
 * A finding names the whole path: `release.tar.gz!app/config.js`; a single compressed stream
 * (`app.log.gz`) keeps its own name. Members over the size limit, with a compression ratio over
 * the limit (bombs), or corrupt/truncated are scanned as far as they could be read and reported
 * as skipped, with the reason, on stderr; the scan goes on. Container images (docker save, OCI)
 * are read by image.h, which uses this file for their layers. */
#ifndef IPLOCK_SCAN_ARCHIVE_H
#define IPLOCK_SCAN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/opts.h"
#include "scan/report.h"
#include "scan/scan.h"

#define SCAN_ARCHIVE_DEPTH_DEFAULT 4
#define SCAN_ARCHIVE_SIZE_DEFAULT  (1ull << 30)  /* bytes out of one member */
#define SCAN_ARCHIVE_RATIO_DEFAULT 100u          /* out/in, checked once 16 MiB came out */
#define SCAN_ARCHIVE_RATIO_FLOOR   (16u << 20)
#define SCAN_SNIFF_LEN 512                       /* bytes scan_archive_sniff looks at */

/* Whether the first bytes are an archive or compressed stream we open (magic numbers, never
 * the name). n may be shorter than SCAN_SNIFF_LEN (then a tar is not recognised). */
bool scan_archive_sniff(const void *head, size_t n);

/* A stream's first bytes, read to tell an archive by its magic, then handed out again before
 * the rest: scan_peek_read is a scan_read_fn over p. */
struct scan_peek {
	scan_read_fn rd;
	void *rarg;
	unsigned char head[SCAN_SNIFF_LEN];
	size_t hlen, hpos;
};

/* Reads up to SCAN_SNIFF_LEN bytes into p->head (fewer at end of input): 0 or the reader's
 * -errno. */
int scan_peek_fill(struct scan_peek *p);
ssize_t scan_peek_read(void *arg, void *buf, size_t n);

/* What the reader of a container image learns while archive.c walks one of its layers: each
 * member's path first (entry returns true for a whiteout: recorded, nothing to scan), then the
 * findings [first, r->n) of that member. Called through pointers: archive.c knows no image. */
struct scan_archive_layer {
	bool (*entry)(void *arg, const char *path);
	void (*findings)(void *arg, const struct scan_report *r, size_t first);
	void *arg;
};

/* Scans buf as an archive named `name`, at nesting level depth (the outermost archive is 1).
 * layer, when set, is told about the members of this image layer. Images are not told apart
 * here: scan_input_archive (input.h) does that for an archive met at the top.
 * Returns 0 or -ENOMEM / the report's negative value. */
int scan_archive_buffer(struct scan_report *r, const void *buf, size_t len, const char *name,
			const struct scan_input_opts *o, int depth,
			const struct scan_archive_layer *layer);

/* The same for a stream: head (already read, hlen bytes) then rd until it returns 0. */
int scan_archive_stream(struct scan_report *r, const unsigned char *head, size_t hlen,
			scan_read_fn rd, void *rarg, const char *name,
			const struct scan_input_opts *o, int depth);

/* A libarchive reader that runs only the decompressors built into libarchive (gzip, bzip2,
 * xz, lzma, zstd, compress; never an external program) and reads tar; with any, also zip, raw
 * (one compressed stream) and empty input. Not opened yet; NULL out of memory. Every reader of
 * scan/ is made here. */
struct archive;
struct archive *scan_archive_reader(bool any);

/* Reports a skipped member on stderr and counts it. */
void scan_archive_skipped(const struct scan_input_opts *o, const char *name, const char *why);

#endif
