/* health.h: egress health probes. On the admin thread's loop, every address of every pool is
 * bound and connected (non-blocking) to health_probe each health_interval; an address whose
 * probe fails leaves rotation (egress_set_health) until a probe passes again. Transitions are
 * logged. Verdicts are kept by address, so they survive reloads and apply to every pool. */
#ifndef IPLOCK_PROXY_HEALTH_H
#define IPLOCK_PROXY_HEALTH_H

#include <stdbool.h>

#include "core/loop.h"
#include "net/addr.h"
#include "proxy/proxy.h"

#define HEALTH_MAX 1024   /* distinct addresses probed; more are left in rotation unprobed */

struct health;

/* dns_servers as for the proxy (NULL = resolv.conf), for a probe target given by name. */
int health_new(struct loop *loop, const char *dns_servers, struct health **out);
void health_free(struct health *h);

/* The prober's snapshot (takes a reference): its verdicts are applied to the new pools at
 * once and a round starts. A snapshot without health_probe stops probing. */
void health_set_config(struct health *h, struct cfg_ref *r);

/* Copy the known verdicts into cfg's pools (from any thread: the reloader does it before the
 * workers see cfg, so a down address never reappears for a moment). */
void health_apply(struct health *h, struct proxy_config *cfg);

/* Calls fn for every pool of cfg (the global one first, then the users' own). */
void health_each_pool(struct proxy_config *cfg, void (*fn)(struct egress_pool *pool, void *arg), void *arg);

#endif
