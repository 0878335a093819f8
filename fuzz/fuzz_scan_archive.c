/* fuzz_scan_archive.c: archives and images from arbitrary bytes. The raw input goes through
 * the archive/image readers (never a crash, a leak or a read out of bounds); and, as a property,
 * the input wrapped as the only member of a tar (and that tar as a layer of a docker-save image)
 * yields exactly the findings of scanning the input itself, named "t.tar!m.txt". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/archive.h"
#include "scan/input.h"
#include "scan/report.h"

/* One ustar header + data + padding + two zero blocks. */
static size_t tar_one(unsigned char *out, const char *name, const uint8_t *data, size_t n)
{
	memset(out, 0, 512);
	snprintf((char *)out, 100, "%s", name);
	snprintf((char *)out + 100, 8, "%07o", 0644);
	snprintf((char *)out + 108, 8, "%07o", 0);
	snprintf((char *)out + 116, 8, "%07o", 0);
	snprintf((char *)out + 124, 12, "%011zo", n);
	snprintf((char *)out + 136, 12, "%011o", 0);
	out[156] = '0';
	memcpy(out + 257, "ustar", 6);
	memcpy(out + 263, "00", 2);
	memset(out + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += out[i];
	snprintf((char *)out + 148, 8, "%06o", sum);
	memcpy(out + 512, data, n);
	size_t pad = (512 - n % 512) % 512;
	memset(out + 512 + n, 0, pad + 1024);
	return 512 + n + pad + 1024;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_input_opts o = { .flags = SCAN_F_DECODE(1), .max_archive_depth = 3,
				     .max_decompressed = 1 << 20, .max_ratio = 100 };
	struct scan_report r, plain;

	if (size > 65536)
		return 0;
	scan_report_init(&r);
	scan_input_archive(&r, data, size, "raw", &o);
	scan_report_free(&r);

	/* the property: a plain member is scanned exactly like the bytes themselves */
	if (scan_archive_sniff(data, size))
		return 0; /* a nested archive is opened, not scanned as bytes */
	unsigned char *t = malloc(size + 2048);
	if (!t)
		return 0;
	size_t tn = tar_one(t, "m.txt", data, size);
	scan_report_init(&r);
	scan_report_init(&plain);
	plain.cur_file = "t.tar!m.txt";
	scan_buffer(data, size, o.flags, scan_report_hit, &plain);
	scan_input_archive(&r, t, tn, "t.tar", &o);
	if (r.n != plain.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (strcmp(r.v[i].file, "t.tar!m.txt") || r.v[i].line != plain.v[i].line ||
		    strcmp(r.v[i].fingerprint, plain.v[i].fingerprint))
			abort();
	scan_report_free(&r);
	scan_report_free(&plain);
	free(t);
	return 0;
}
