/* fuzz_tunnel_config.c: the text parsers of `iplock tunnel` on arbitrary bytes: the INI file,
 * a proxy URL, a mapping, and the proxy's answer (status line, error body). A URL that parses
 * shows its password masked; a refusal reason is printable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tunnel_config cfg;
	char *text = malloc(size + 1), err[512], reason[400];
	struct tunnel_proxy p;
	struct tunnel_map m;
	int st;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	tunnel_config_init(&cfg);
	tunnel_config_load_string(text, "f.ini", &cfg, err, sizeof(err));
	/* the display form always carries the mask in place of the password */
	if (!tunnel_proxy_parse(text, &p) && p.has_auth && p.pass[0] && !strstr(p.display, ":****@"))
		abort();
	tunnel_map_parse(text, &m);
	tunnel_parse_reply(text, size, &st);
	tunnel_error_reason(text, size, reason, sizeof(reason));
	for (const char *r = reason; *r; r++)
		if ((unsigned char)*r < 0x20 || (unsigned char)*r >= 0x7f)
			abort();
	free(text);
	return 0;
}
