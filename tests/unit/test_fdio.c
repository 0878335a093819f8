/* test_fdio.c: core's small helpers for growing arrays and reading a descriptor whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/array.h"
#include "core/fdio.h"

/* A pipe holding n bytes of 'x' (n below the pipe's capacity), its write end closed. */
static int pipe_with(size_t n)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 0, 1);
	char *b = malloc(n ? n : 1);
	assert_non_null(b);
	memset(b, 'x', n);
	for (size_t w = 0; w < n;) {
		ssize_t k = write(p[1], b + w, n - w);
		assert_true(k > 0);
		w += (size_t)k;
	}
	free(b);
	close(p[1]);
	return p[0];
}

static void test_read_all(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0;

	/* empty, and growing past the first 64 KiB: whole, NUL-terminated */
	int fd = pipe_with(0);
	assert_int_equal(fdio_read_all(fd, 1 << 20, &out, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(out[0], '\0');
	free(out);
	close(fd);
	fd = pipe_with(200000);
	assert_int_equal(fdio_read_all(fd, 1 << 20, &out, &len), 0);
	assert_int_equal(len, 200000);
	assert_int_equal(out[199999], 'x');
	assert_int_equal(out[200000], '\0');
	free(out);
	close(fd);
	/* the cap: a full buffer at max bytes is refused, and *out stays untouched */
	out = NULL;
	fd = pipe_with(128 * 1024);
	assert_int_equal(fdio_read_all(fd, 128 * 1024, &out, &len), -E2BIG);
	assert_null(out);
	close(fd);
	fd = pipe_with(128 * 1024 - 1);
	assert_int_equal(fdio_read_all(fd, 128 * 1024, &out, &len), 0);
	assert_int_equal(len, 128 * 1024 - 1);
	free(out);
	close(fd);
	/* a read error is the read's errno */
	out = NULL;
	assert_int_equal(fdio_read_all(-1, 1024, &out, &len), -EBADF);
	assert_null(out);
}

static void test_array_grow(void **state)
{
	(void)state;
	size_t cap = 0;
	int *v = NULL;

	for (size_t n = 0; n < 100; n++) {
		int *nv = array_grow(v, &cap, n, sizeof(*v), 4);
		assert_non_null(nv);
		v = nv;
		v[n] = (int)n;
		assert_true(cap > n);
	}
	assert_int_equal(cap, 128); /* 4, 8, ..., 128: doubling from first */
	for (size_t n = 0; n < 100; n++)
		assert_int_equal(v[n], (int)n);
	/* room left: the same array, no reallocation */
	assert_ptr_equal(array_grow(v, &cap, 100, sizeof(*v), 4), v);
	/* a size that would overflow is refused and leaves the array as it was */
	size_t huge = SIZE_MAX / 2 + 1;
	assert_null(array_grow(v, &huge, huge, sizeof(*v), 4));
	assert_int_equal(huge, SIZE_MAX / 2 + 1);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_all),
		cmocka_unit_test(test_array_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
