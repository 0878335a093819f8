/* fuzz_pg_target.c: store_is_remote() and store_target_display() over connection strings built
 * around a planted password (URI user:password@, URI ?password=, key=value password=).
 * Properties: the output is always NUL-terminated within its buffer; the planted password
 * never survives in a string that names PostgreSQL; a SQLite path is shown unchanged. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define FUZZ_MAX 2048
static const char pw[] = "Zq9Xk2Lm7Wp4";

/* appends data[0..n) minus the bytes in `drop` (and NUL) */
static size_t put(char *dst, size_t o, const uint8_t *d, size_t n, const char *drop)
{
	for (size_t i = 0; i < n; i++)
		if (d[i] && !strchr(drop, d[i]))
			dst[o++] = (char)d[i];
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[FUZZ_MAX * 2 + 64], out[sizeof(in) * 2];
	size_t o = 0;

	if (size < 2 || size > FUZZ_MAX)
		return 0;
	int form = data[0] % 4;
	size_t cut = data[1] % (size - 1);
	const uint8_t *a = data + 2, *b = data + 2 + cut;
	size_t na = cut > size - 2 ? size - 2 : cut, nb = size - 2 - na;

	switch (form) {
	case 0:     /* postgresql://USER:pw@REST */
		o = (size_t)sprintf(in, "postgresql://");
		o = put(in, o, a, na, ":@/?#");
		o += (size_t)sprintf(in + o, ":%s@", pw);
		o = put(in, o, b, nb, "");
		break;
	case 1:     /* postgresql://h/db?CTX&password=pw&REST */
		o = (size_t)sprintf(in, "postgresql://h/db?");
		o = put(in, o, a, na, "#");
		o += (size_t)sprintf(in + o, "&password=%s&", pw);
		o = put(in, o, b, nb, "");
		break;
	case 2:     /* host=h CTX password=pw REST */
		o = (size_t)sprintf(in, "host=h ");
		o = put(in, o, a, na, "");
		o += (size_t)sprintf(in + o, " password=%s ", pw);
		o = put(in, o, b, nb, "");
		break;
	default:    /* anything */
		o = put(in, 0, data + 2, size - 2, "");
		break;
	}
	in[o] = '\0';
	memset(out, 'X', sizeof(out));
	store_target_display(in, out, sizeof(out));
	if (!memchr(out, '\0', sizeof(out)))
		abort();
	/* only the planted copy is a password: one the fuzzer wrote elsewhere is plain text */
	const char *first = strstr(in, pw);
	bool once = first && !strstr(first + 1, pw);
	if (form < 3 && once && (!store_is_remote(in) || strstr(out, pw)))
		abort();
	if (!store_is_remote(in) && strcmp(in, out))
		abort();
	/* a short buffer truncates, never overruns */
	char small[8];
	store_target_display(in, small, sizeof(small));
	if (!memchr(small, '\0', sizeof(small)))
		abort();
	return 0;
}
