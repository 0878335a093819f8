/* cfgref.c: the reference-counted config snapshot (cfgref.h) and what is built with it once
 * per load (the per-user connection counters, the TLS listener's context). */
#include "proxy/cfgref.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

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
		if (r->log_fd >= 0)
			close(r->log_fd);
		free(r);
	}
}

int cfg_ref_open_log(struct cfg_ref *r, const struct cfg_ref *old, char *err, size_t errcap)
{
	const char *path = r->cfg->access_log;

	if (!strcmp(path, "off"))
		return 0;
	/* "-": a snapshot's own copy of stdout, so closing it with the snapshot leaves stdout open */
	r->log_fd = !strcmp(path, "-") ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0) :
		    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (r->log_fd >= 0)
		return 0;
	snprintf(err, errcap, "cannot open access log %s: %s", path, strerror(errno));
	if (!old || old->log_fd < 0)
		return -1;
	log_warn("reload: %s; still writing to the one open before", err);
	if ((r->log_fd = fcntl(old->log_fd, F_DUPFD_CLOEXEC, 0)) >= 0)
		return 0;
	snprintf(err, errcap, "cannot keep the open access log: %s", strerror(errno));
	return -1;
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
	r->log_fd = -1;
	atomic_init(&r->refs, 1);
	return r;
fail:
	if (r)
		free(r->user_conns);
	free(r);
	proxy_config_free(cfg);
	return NULL;
}
