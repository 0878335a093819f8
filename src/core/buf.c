/* buf.c: the per-thread buffer pool. No locks: a buffer is used and returned on one thread. */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUF_POOL_MAX 512   /* idle buffers kept per thread (8 MiB): beyond that, free() */

struct buf_free {
	struct buf_free *next;
};

static _Thread_local struct buf_free *pool;
static _Thread_local size_t pool_len;

struct buf *buf_get(void)
{
	struct buf *b;

	if (pool) {
		b = (struct buf *)pool;
		pool = pool->next;
		pool_len--;
	} else {
		b = malloc(sizeof(*b) + BUF_SIZE);
		if (!b)
			return NULL;
	}
	b->off = b->len = 0;
	b->cap = BUF_SIZE;
	return b;
}

void buf_put(struct buf *b)
{
	if (!b)
		return;
	if (pool_len >= BUF_POOL_MAX) {
		free(b);
		return;
	}
	struct buf_free *f = (struct buf_free *)b;
	f->next = pool;
	pool = f;
	pool_len++;
}

void buf_pool_trim(void)
{
	while (pool) {
		struct buf_free *f = pool;
		pool = f->next;
		free(f);
	}
	pool_len = 0;
}

void buf_compact(struct buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (len > buf_room(b))
		return -ENOSPC;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}
