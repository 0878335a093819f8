/* archive.h: archives and compressed streams found by content (zip, jar, whl, apk, tar, gzip,
 * xz, bzip2, zstd, 7z), read with libarchive and scanned member by member, nested up to a depth.
 * A finding names the whole path: `release.tar.gz!app/config.js`; a single compressed stream
 * (`app.log.gz`) keeps its own name. Members over the size limit, with a compression ratio over
 * the limit (bombs), or corrupt/truncated are scanned as far as they could be read and reported
 * as skipped, with the reason, on stderr; the scan goes on. Container images (docker save, OCI)
 * met this way are handed to image.h. */
#ifndef IPLOCK_SCAN_ARCHIVE_H
#define IPLOCK_SCAN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/input.h"
#include "scan/report.h"
#include "scan/scan.h"

#define SCAN_ARCHIVE_DEPTH_DEFAULT 4
#define SCAN_ARCHIVE_SIZE_DEFAULT  (1ull << 30)  /* bytes out of one member */
#define SCAN_ARCHIVE_RATIO_DEFAULT 100u          /* out/in, checked once 16 MiB came out */
#define SCAN_ARCHIVE_RATIO_FLOOR   (16u << 20)
#define SCAN_SNIFF_LEN 512                       /* bytes scan_archive_sniff looks at */

struct scan_image;

/* Whether the first bytes are an archive or compressed stream we open (magic numbers, never
 * the name). n may be shorter than SCAN_SNIFF_LEN (then a tar is not recognised). */
bool scan_archive_sniff(const void *head, size_t n);

/* Scans buf as an archive named `name`, at nesting level depth (the outermost archive is 1).
 * img, when set, is the image whose layer this is (whiteouts and findings are recorded).
 * Returns 0 or -ENOMEM / the report's negative value. */
int scan_archive_buffer(struct scan_report *r, const void *buf, size_t len, const char *name,
			const struct scan_input_opts *o, int depth, struct scan_image *img, int layer);

/* The same for a stream: head (already read, hlen bytes) then rd until it returns 0. */
int scan_archive_stream(struct scan_report *r, const unsigned char *head, size_t hlen,
			scan_read_fn rd, void *rarg, const char *name,
			const struct scan_input_opts *o, int depth);

/* Reports a skipped member on stderr and counts it. */
struct archive;
/* The decompressors built into libarchive (gzip, bzip2, xz, lzma, zstd, compress), never an
 * external program: every reader of scan/ takes these and no others. */
void scan_archive_filters(struct archive *a);

void scan_archive_skipped(const struct scan_input_opts *o, const char *name, const char *why);

#endif
