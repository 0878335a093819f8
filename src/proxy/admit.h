/* admit.h: a session's admission (admit.c): everything decided before a byte leaves. Each
 * refusal is answered (session_error) and returns false or an error. */
#ifndef IPLOCK_PROXY_ADMIT_H
#define IPLOCK_PROXY_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

struct session;

int session_authenticate(struct session *s, const char *basic, size_t len);
bool session_admit_destination(struct session *s);
bool session_admit_request(struct session *s, bool local);   /* auth, pin, destination rules */
bool session_check_addresses(struct session *s);            /* every resolved address allowed */

#endif
