/* fuzz_tls_sni.c: the ClientHello server-name reader on arbitrary bytes: never reads out of
 * bounds, and a name it returns is a valid lowercased DNS host name. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[TLS_SNI_NAME_MAX + 1];
	const char *err;
	int rc = tls_sni_parse(data, size, name, &err);

	if (rc == 1) {
		size_t n = strlen(name);
		if (n == 0 || n > TLS_SNI_NAME_MAX || name[0] == '.' || name[n - 1] == '.')
			abort();
		for (size_t i = 0; i < n; i++)
			if (name[i] >= 'A' && name[i] <= 'Z')
				abort();
	}
	if (rc == -EPROTO && !err)
		abort();
	/* a prefix of an accepted hello is "need more" or the same answer, never a refusal */
	if ((rc == 1 || rc == -ENOENT) && size > 1) {
		int prc = tls_sni_parse(data, size - 1, name, &err);
		if (prc != 0 && prc != rc)
			abort();
	}
	return 0;
}
