/* test_buf.c: core/buf: the cap (an append that does not fit writes nothing), compaction,
 * the per-thread pool (a buffer given back is the next one taken, on its own thread only),
 * trimming, and buf_pending(NULL). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/buf.h"

static void test_fresh(void **state)
{
	(void)state;
	buf_pool_trim();
	struct buf *b = buf_get();
	assert_non_null(b);
	assert_int_equal(b->cap, BUF_SIZE);
	assert_int_equal(b->off, 0);
	assert_int_equal(b->len, 0);
	assert_int_equal(buf_pending(b), 0);
	assert_int_equal(buf_room(b), BUF_SIZE);
	buf_put(b);
	buf_put(NULL);   /* allowed, no effect */
	buf_pool_trim();
}

static void test_pending_null(void **state)
{
	(void)state;
	/* an idle connection holds no buffer: its pending count is 0, not a crash */
	assert_int_equal(buf_pending(NULL), 0);
}

static void test_append_cap(void **state)
{
	static char big[BUF_SIZE + 1];
	struct buf *b = buf_get();

	(void)state;
	assert_non_null(b);
	memset(big, 'x', sizeof(big));
	/* one byte too many: refused whole, the buffer is unchanged */
	assert_int_equal(buf_append(b, big, BUF_SIZE + 1), -ENOSPC);
	assert_int_equal(b->len, 0);
	assert_int_equal(buf_append(b, "hello", 5), 0);
	assert_int_equal(buf_pending(b), 5);
	assert_int_equal(buf_append(b, big, BUF_SIZE - 5 + 1), -ENOSPC);
	assert_int_equal(b->len, 5);
	assert_memory_equal(b->data, "hello", 5);
	/* exactly full is fine; then even one byte is refused */
	assert_int_equal(buf_append(b, big, BUF_SIZE - 5), 0);
	assert_int_equal(b->len, BUF_SIZE);
	assert_int_equal(buf_room(b), 0);
	assert_int_equal(buf_append(b, "y", 1), -ENOSPC);
	assert_int_equal(b->len, BUF_SIZE);
	assert_int_equal(buf_append(b, "", 0), 0);   /* nothing to add always fits */
	assert_memory_equal(b->data, "hello", 5);
	assert_int_equal(b->data[BUF_SIZE - 1], 'x');
	buf_put(b);
	buf_pool_trim();
}

static void test_compact(void **state)
{
	struct buf *b = buf_get();

	(void)state;
	assert_non_null(b);
	assert_int_equal(buf_append(b, "GET / HTTP/1.1\r\n", 16), 0);
	buf_compact(b);   /* nothing consumed: a no-op */
	assert_int_equal(b->off, 0);
	assert_int_equal(b->len, 16);
	b->off = 4;   /* "GET " consumed */
	buf_compact(b);
	assert_int_equal(b->off, 0);
	assert_int_equal(b->len, 12);
	assert_int_equal(buf_pending(b), 12);
	assert_memory_equal(b->data, "/ HTTP/1.1\r\n", 12);
	assert_int_equal(buf_room(b), BUF_SIZE - 12);
	/* everything consumed: compaction leaves an empty buffer with its whole room */
	b->off = b->len;
	buf_compact(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->off, 0);
	assert_int_equal(buf_room(b), BUF_SIZE);
	/* a head arriving in pieces stays contiguous after compaction */
	assert_int_equal(buf_append(b, "abcdef", 6), 0);
	b->off = 3;
	buf_compact(b);
	assert_int_equal(buf_append(b, "ghi", 3), 0);
	assert_memory_equal(b->data, "defghi", 6);
	buf_put(b);
	buf_pool_trim();
}

static void *other_thread_get(void *arg)
{
	struct buf **out = arg;

	*out = buf_get();
	return NULL;
}

static void test_pool_reuse(void **state)
{
	pthread_t th;
	struct buf *other = NULL;

	(void)state;
	buf_pool_trim();
	struct buf *a = buf_get();
	assert_non_null(a);
	assert_int_equal(buf_append(a, "dirty", 5), 0);
	a->off = 2;
	buf_put(a);
	/* the one given back is the one taken next, reset */
	struct buf *b = buf_get();
	assert_ptr_equal(a, b);
	assert_int_equal(b->off, 0);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->cap, BUF_SIZE);
	buf_put(b);
	/* the pool is per thread: another thread does not get this thread's idle buffer */
	assert_int_equal(pthread_create(&th, NULL, other_thread_get, &other), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_non_null(other);
	assert_ptr_not_equal(other, b);
	buf_put(other);   /* a buffer from another thread may be freed here (pool is only per-owner) */
	/* LIFO: the last given back comes first */
	struct buf *x = buf_get(), *y = buf_get();
	assert_non_null(x);
	assert_non_null(y);
	assert_ptr_not_equal(x, y);
	buf_put(x);
	buf_put(y);
	assert_ptr_equal(buf_get(), y);
	assert_ptr_equal(buf_get(), x);
	buf_put(x);
	buf_put(y);
	buf_pool_trim();
}

static void test_pool_trim(void **state)
{
	struct buf *held[8];

	(void)state;
	buf_pool_trim();
	for (int i = 0; i < 8; i++) {
		held[i] = buf_get();
		assert_non_null(held[i]);
	}
	for (int i = 0; i < 8; i++)
		buf_put(held[i]);
	buf_pool_trim();
	/* after a trim the pool is empty: ASan's leak check proves the idle buffers were freed,
	 * and a buffer taken now works (freshly allocated) */
	struct buf *b = buf_get();
	assert_non_null(b);
	assert_int_equal(buf_append(b, "x", 1), 0);
	buf_put(b);
	buf_pool_trim();
	buf_pool_trim();   /* an empty pool trims to nothing */
}

/* More buffers than the pool keeps (512) given back and taken again: the overflow is freed,
 * not chained, so every buffer taken is distinct and whole (ASan sees any double use). */
static void test_pool_bound(void **state)
{
	enum { N = 600 };
	static struct buf *held[N];

	(void)state;
	buf_pool_trim();
	for (int i = 0; i < N; i++) {
		held[i] = buf_get();
		assert_non_null(held[i]);
	}
	for (int i = 0; i < N; i++)
		buf_put(held[i]);
	/* every buffer taken back out is distinct (none is in the pool twice) */
	for (int i = 0; i < N; i++) {
		held[i] = buf_get();
		assert_non_null(held[i]);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(held[i], held[j]);
	}
	for (int i = 0; i < N; i++)
		buf_put(held[i]);
	buf_pool_trim();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_pending_null),
		cmocka_unit_test(test_append_cap),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_pool_reuse),
		cmocka_unit_test(test_pool_trim),
		cmocka_unit_test(test_pool_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
