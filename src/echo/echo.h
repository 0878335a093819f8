/* echo.h: the `iplock echo` server: answers GET /ip and GET / with {"origin": "<client
 * address>"} (like httpbin), so `iplock verify --echo URL` can see which address a request
 * left from; other paths 404, other methods 405, malformed requests 400; keep-alive; HTTPS
 * with a certificate. The command line is cli/echo.c.
 *
 * Owns: the server. May include: core, net, http. */
#ifndef IPLOCK_ECHO_ECHO_H
#define IPLOCK_ECHO_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct echo_server;

/* Opens the server on net/server: a TLS context when cert (and key) are given, nworkers
 * workers each with a listener on sa (SO_REUSEPORT when more than one; listen_text names it
 * in errors); signals blocked for the workers, SIGPIPE ignored. NULL with a one-line err. */
struct echo_server *echo_open(const struct sockaddr *sa, socklen_t sl, const char *listen_text,
			      const char *cert, const char *key, unsigned nworkers, char *err,
			      size_t cap);
bool echo_is_tls(const struct echo_server *srv);
/* Serves until SIGTERM or SIGINT (answers in flight are finished, idle connections closed;
 * a second signal stops at once); SIGHUP is logged. 0, or -1 when the threads failed. */
int echo_run(struct echo_server *srv);
/* Closes every connection and the listeners; srv may be NULL. */
void echo_close(struct echo_server *srv);

#endif
