/* fdio.c: reading all of a descriptor into memory, capped. */
#include "core/fdio.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define FDIO_FIRST (64 * 1024)

int fdio_read_all(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = FDIO_FIRST, n = 0;
	char *b = malloc(cap + 1);
	int rc = 0;

	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			char *nb = cap >= max ? NULL : realloc(b, cap * 2 + 1);
			if (!nb) {
				rc = cap >= max ? -E2BIG : -ENOMEM;
				goto out;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	b = NULL;
out:
	free(b);
	return rc;
}
