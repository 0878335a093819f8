/* image.h: container images: `docker save` tarballs (old `<id>/layer.tar` and new OCI-style
 * layouts) and OCI image layouts (a directory with oci-layout and index.json, or its tar).
 * Every layer of the first image is scanned; a finding names the layer digest and the path
 * inside it (`image.tar!sha256:ab…!app/.env`). Whiteouts are honoured the other way round: a
 * file deleted by a later layer is still reported, its name marked "(deleted in a later layer)",
 * because it still ships in the image's history. The config's Env, Cmd, Entrypoint, Labels and
 * history created_by lines (where `ENV STRIPE_KEY=…` ends up) are scanned one string at a time
 * (`image.tar!sha256:cf…!config.Env[2]`). */
#ifndef IPLOCK_SCAN_IMAGE_H
#define IPLOCK_SCAN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/opts.h"
#include "scan/report.h"

/* Whether buf is a tar whose first member looks like an image layout (cheap: one header). */
bool scan_image_probe(const void *buf, size_t len);

/* Scans an image tarball. 1 = not an image after all (scan it as a plain archive), else 0 or
 * a negative errno. */
int scan_image_tar(struct scan_report *r, const void *buf, size_t len, const char *name,
		   const struct scan_input_opts *o);

/* Whether dir is an OCI image layout (has oci-layout and index.json). */
bool scan_image_is_dir(const char *dir);

/* Scans an OCI image layout directory. 0 or a negative errno. */
int scan_image_dir(struct scan_report *r, const char *dir, const struct scan_input_opts *o);

#endif
