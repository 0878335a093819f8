/* session.h (console): login sessions and login throttling, in the console's memory (a
 * restart logs everyone out). A session is found by the SHA-256 of its cookie token, compared
 * in constant time; each has its own CSRF token; it ends after idle_s without a request or
 * absolute_s after login. Single-threaded: the console's one worker owns the table. */
#ifndef IPLOCK_CONSOLE_SESSION_H
#define IPLOCK_CONSOLE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "store/store.h"

#define SESSION_MAX        4096  /* live sessions; the oldest is dropped for a new one */
#define SESSION_TOKEN_LEN  43    /* letters/digits of a cookie token (~256 bits) */
#define SESSION_CSRF_LEN   43

struct session {
	bool used;
	char tok_hash[SHA256_HEX_LEN + 1];
	char csrf[SESSION_CSRF_LEN + 1];
	char user[STORE_USER_MAX + 1];
	char role[8];
	int64_t created, last;
};

struct sessions {
	struct session v[SESSION_MAX];
	unsigned idle_s, absolute_s;
};

enum session_state { SESSION_NONE = 0, SESSION_OK, SESSION_EXPIRED };

/* A new session for user; its cookie token goes to tok (SESSION_TOKEN_LEN + 1). NULL when
 * the random source failed. */
struct session *session_create(struct sessions *s, const char *user, const char *role,
			       int64_t now, char tok[SESSION_TOKEN_LEN + 1]);
/* The session of a cookie token: SESSION_OK (and *out, its last use moved to now),
 * SESSION_EXPIRED (removed), SESSION_NONE. */
enum session_state session_find(struct sessions *s, const char *tok, size_t len, int64_t now,
				struct session **out);
void session_end(struct session *ss);
/* Ends every session of user (removed from the console). */
void session_end_user(struct sessions *s, const char *user);
/* CSRF header value against the session's token, in constant time. */
bool session_csrf_ok(const struct session *ss, const char *hdr, size_t len);

/* Login throttling per user name and per client address: THROTTLE_FAILS failures within
 * THROTTLE_WINDOW_S block further attempts until the window has passed. */
#define THROTTLE_FAILS    5
#define THROTTLE_WINDOW_S 900
#define THROTTLE_SLOTS    2048

struct throttle_slot {
	char key[96];
	int64_t start;
	unsigned fails;
};
struct throttle {
	struct throttle_slot v[THROTTLE_SLOTS];
};

/* Seconds until key may try again, 0 when it may now. */
int64_t throttle_wait(const struct throttle *t, const char *key, int64_t now);
void throttle_fail(struct throttle *t, const char *key, int64_t now);
void throttle_clear(struct throttle *t, const char *key);

#endif
