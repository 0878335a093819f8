/* fdio.h: reading all of a descriptor (a pipe, a payload on stdin) into memory, capped. */
#ifndef IPLOCK_FDIO_H
#define IPLOCK_FDIO_H

#include <stddef.h>

/* Reads fd to its end into a new NUL-terminated buffer: *out (the caller frees), *len bytes
 * before the NUL. The buffer starts at 64 KiB and doubles; once it is full at max bytes or
 * more, -E2BIG. Else 0, -ENOMEM, or the read's -errno (EINTR is retried); *out is set only
 * on success. */
int fdio_read_all(int fd, size_t max, char **out, size_t *len);

#endif
