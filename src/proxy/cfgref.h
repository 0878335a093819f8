/* cfgref.h: a config snapshot shared by reference. Every session, the prober and the flush
 * thread keep the one they started with, so a reload never changes the rules under work in
 * flight; the last reference frees it. */
#ifndef IPLOCK_PROXY_CFGREF_H
#define IPLOCK_PROXY_CFGREF_H

#include <stdatomic.h>
#include <stddef.h>

#include "proxy/config.h"

struct cfg_ref {
	struct proxy_config *cfg;
	atomic_int refs;
	atomic_uint *user_conns;      /* per user index: open connections (max_conns) */
	struct ssl_ctx_st *tls_ctx;   /* tls_listen: built from tls_cert/tls_key at load */
	int log_fd;                   /* access log, owned: closed with the last reference; -1 = off */
};

/* Takes cfg (freed on failure too); one reference. NULL with err filled. */
struct cfg_ref *cfg_ref_new(struct proxy_config *cfg, char *err, size_t errcap);
struct cfg_ref *cfg_ref_get(struct cfg_ref *r);
void cfg_ref_put(struct cfg_ref *r);
/* Opens cfg->access_log into r->log_fd. On a reload (old set) a path that cannot be opened keeps
 * old's file (a warning), so a bad reopen never loses the log. 0, or -1 with err filled. */
int cfg_ref_open_log(struct cfg_ref *r, const struct cfg_ref *old, char *err, size_t errcap);

#endif
