/* bug.h (core): BUG_ON for invariants that must never break. A debug build (SANITIZE=1, the
 * fuzzers: IPLOCK_DEBUG) aborts at the first one; a release build logs each site once and lets
 * the caller fail the one request or connection: BUG_ON is an expression that is true when the
 * invariant broke, so callers write `if (BUG_ON(!p)) return -EPROTO;`. */
#ifndef IPLOCK_CORE_BUG_H
#define IPLOCK_CORE_BUG_H

#include <stdatomic.h>
#include <stdbool.h>

/* Reports a broken invariant (aborts under IPLOCK_DEBUG); returns true. */
bool bug_report(atomic_bool *logged, const char *file, int line, const char *cond);

#define BUG_ON(cond) \
	(__builtin_expect(!!(cond), 0) ? ({ static atomic_bool bug_logged_; \
		bug_report(&bug_logged_, __FILE__, __LINE__, #cond); }) : false)

#endif
