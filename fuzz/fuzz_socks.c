/* fuzz_socks.c: the SOCKS5 greeting, RFC 1929 authentication and request parsers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/socks_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks_greeting g;
	struct socks_userpass up;
	struct socks_request rq;
	uint8_t rep;

	/* a conversation as a client sends it: each parser takes what it consumed off the front */
	long a = socks_parse_greeting(data, size, &g);
	if (a > (long)size)
		abort();
	size_t off = a > 0 ? (size_t)a : 0;
	long b = socks_parse_userpass(data + off, size - off, &up);
	if (b > 0) {
		if ((size_t)b > size - off || up.user + up.ulen > data + size || up.pass + up.plen > data + size)
			abort();
		off += (size_t)b;
	}
	long c = socks_parse_request(data + off, size - off, &rq, &rep);
	if (c > 0 && ((size_t)c > size - off || strlen(rq.name) > 255))
		abort();
	/* and each parser alone on the whole input */
	socks_parse_userpass(data, size, &up);
	socks_parse_request(data, size, &rq, &rep);
	return 0;
}
