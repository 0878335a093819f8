/* hook.h: `iplock scan --install-hook`: a git pre-commit hook that runs `iplock scan --staged`.
 * A hook already there (not ours) is kept: renamed to pre-commit.iplock-chained and run first;
 * installing again rewrites our hook and chains nothing twice. */
#ifndef IPLOCK_SCAN_HOOK_H
#define IPLOCK_SCAN_HOOK_H

#include <stddef.h>

#define SCAN_HOOK_MARKER  "# installed by iplock scan --install-hook"
#define SCAN_HOOK_CHAINED "pre-commit.iplock-chained"

/* Installs the hook in repo's hooks directory (`git rev-parse --git-path hooks`, so worktrees
 * and core.hooksPath are honoured). iplock is the binary the hook runs (absolute path). On
 * success writes what was done to msg ("installed", "installed; chained the existing hook",
 * "updated") and returns 0; else -1 with a one-line reason in msg. */
int scan_hook_install(const char *repo, const char *iplock, char *msg, size_t cap);

#endif
