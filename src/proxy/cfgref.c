/* cfgref.c: the reference-counted config snapshot (cfgref.h) and what is built with it once
 * per load (the per-user connection counters, the TLS listener's context). */
#include "proxy/cfgref.h"

#include <stdio.h>
#include <stdlib.h>

#include "net/tls.h"

struct cfg_ref *cfg_ref_get(struct cfg_ref *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

void cfg_ref_put(struct cfg_ref *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		proxy_config_free(r->cfg);
		SSL_CTX_free(r->tls_ctx);
		free(r->user_conns);
		free(r);
	}
}

struct cfg_ref *cfg_ref_new(struct proxy_config *cfg, char *err, size_t errcap)
{
	struct cfg_ref *r = calloc(1, sizeof(*r));

	if (!r || !(r->user_conns = calloc(cfg->nusers ? cfg->nusers : 1, sizeof(*r->user_conns)))) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}
	if (cfg->ntls_listen && !(r->tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, errcap)))
		goto fail;
	r->cfg = cfg;
	atomic_init(&r->refs, 1);
	return r;
fail:
	if (r)
		free(r->user_conns);
	free(r);
	proxy_config_free(cfg);
	return NULL;
}
