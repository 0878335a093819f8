/* fuzz_config.c: libFuzzer target for the proxy INI config loader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char err[256];
	struct proxy_config *cfg = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (!proxy_config_load_string(text, "fuzz.ini", &cfg, err, sizeof(err))) {
		/* a loaded config is internally consistent */
		if (!cfg || cfg->nlisten == 0 || cfg->egress.n == 0 || !cfg->allow_destinations)
			abort();
		for (size_t i = 0; i < cfg->nusers; i++)
			if (!cfg->users[i].password_hash[0] || (cfg->users[i].nallow && !cfg->users[i].allow))
				abort();
		proxy_config_free(cfg);
	} else if (cfg || !memchr(err, ':', strlen(err))) {
		abort();
	}
	free(text);
	return 0;
}
