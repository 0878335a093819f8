/* buf.h: capped byte buffers from a per-thread pool. An idle connection holds none: buffers
 * are taken when bytes arrive and given back as soon as they are all sent. */
#ifndef IPLOCK_BUF_H
#define IPLOCK_BUF_H

#include <stddef.h>

#define BUF_SIZE (16 * 1024)  /* every pooled buffer; also the cap of a request head */

struct buf {
	size_t off;     /* first unsent / unconsumed byte */
	size_t len;     /* bytes held, from data[0] */
	size_t cap;     /* usable size of data[] */
	char data[];
};

struct buf *buf_get(void);          /* NULL on ENOMEM */
void buf_put(struct buf *b);        /* NULL is fine */
void buf_pool_trim(void);           /* free this thread's idle buffers */

static inline size_t buf_pending(const struct buf *b) { return b ? b->len - b->off : 0; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->len; }

/* Slide unconsumed bytes to the front, so a head that arrives in pieces stays contiguous. */
void buf_compact(struct buf *b);

/* Append, or -ENOSPC when it does not fit (the cap is the limit: nothing partial is written). */
int buf_append(struct buf *b, const void *data, size_t len);

#endif
