/* console.h: `iplock console`, the web dashboard and management API over the gate's key store
 * (docs/console.md, docs/console-api.yaml). The command line is cli/console.c.
 *
 * Owns: the server (server.c: connections on net/server, one worker, optional TLS), the API
 * (api.c), sessions (session.c), request parsers (parse.c), the embedded UI files (assets.c),
 * the fleet's egress addresses (egress.c) and the users/tokens commands (admin.c).
 * May include: core, net, http, store. */
#ifndef IPLOCK_CONSOLE_CONSOLE_H
#define IPLOCK_CONSOLE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "console/config.h"

struct console;

/* Opens the store, the TLS context and the listener; takes cfg over (its routes and egress
 * list are freed with the console, or at once on failure). NULL with a one-line err. */
struct console *console_open(struct console_config *cfg, char *err, size_t cap);
bool console_is_tls(const struct console *c);
/* Serves until SIGTERM/SIGINT. 0, or -1 when the threads failed. */
int console_run(struct console *c);
void console_close(struct console *c);

/* `iplock console users|tokens ...` against the store at db; each prints its result to
 * stdout (never a password; a token's text once) and returns 0, or an exit code with a
 * one-line reason in err. actor names the OS user. */
int console_user_add(const char *db, const char *name, const char *password, size_t pwlen,
		     const char *role, const char *actor, char *err, size_t cap);
int console_user_list(const char *db, bool json, char *err, size_t cap);
int console_user_remove(const char *db, const char *name, const char *actor, char *err,
			size_t cap);
int console_token_create(const char *db, const char *name, const char *scope,
			 const char *actor, char *err, size_t cap);
int console_token_list(const char *db, bool json, char *err, size_t cap);
int console_token_revoke(const char *db, const char *id, const char *actor, char *err,
			 size_t cap);

#endif
