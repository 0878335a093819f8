/* array.h: growing a heap array by doubling, the one way every module grows its lists.
 * core/ owns what every layer uses: the event loop, buffers, lists and arrays, logging, secrets
 * (masking, constant-time compares), the codec (base64, hex, percent), whole-fd reads, the INI
 * layer, threads and assertions. It may include libc and system libraries only, never another
 * folder of src/. */
#ifndef IPLOCK_ARRAY_H
#define IPLOCK_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Room for element n of the array v (cap elements of size elem allocated): v itself while
 * n < *cap, else v reallocated to twice *cap (first when *cap is 0) and *cap updated. NULL when
 * out of memory or the size would overflow; v and *cap are then unchanged and v still owned
 * by the caller. */
static inline void *array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return v;
	size_t nc = *cap ? *cap * 2 : first;
	if (nc < *cap || (elem && nc > SIZE_MAX / elem))
		return NULL;
	void *nv = realloc(v, nc * elem);
	if (nv)
		*cap = nc;
	return nv;
}

#endif
