/* session.c (console): sessions and login throttling (session.h). */
#include "console/session.h"

#include <stdio.h>
#include <string.h>

struct session *session_create(struct sessions *s, const char *user, const char *role,
			       int64_t now, char tok[SESSION_TOKEN_LEN + 1])
{
	struct session *slot = NULL, *oldest = &s->v[0];

	for (size_t i = 0; i < SESSION_MAX; i++) {
		struct session *c = &s->v[i];
		/* a slot whose session has timed out is free again */
		if (c->used && (now - c->last >= s->idle_s || now - c->created >= s->absolute_s))
			c->used = false;
		if (!c->used && !slot)
			slot = c;
		if (c->used && c->last < oldest->last)
			oldest = c;
	}
	if (!slot)
		slot = oldest;
	memset(slot, 0, sizeof(*slot));
	if (secret_random_alnum(tok, SESSION_TOKEN_LEN) ||
	    secret_random_alnum(slot->csrf, SESSION_CSRF_LEN))
		return NULL;
	tok[SESSION_TOKEN_LEN] = '\0';
	slot->csrf[SESSION_CSRF_LEN] = '\0';
	secret_sha256_hex(tok, SESSION_TOKEN_LEN, slot->tok_hash);
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	snprintf(slot->role, sizeof(slot->role), "%s", role);
	slot->created = slot->last = now;
	slot->used = true;
	return slot;
}

enum session_state session_find(struct sessions *s, const char *tok, size_t len, int64_t now,
				struct session **out)
{
	char h[SHA256_HEX_LEN + 1];
	struct session *found = NULL;

	*out = NULL;
	if (len != SESSION_TOKEN_LEN)
		return SESSION_NONE;
	secret_sha256_hex(tok, len, h);
	/* every live session compared in constant time, no early exit: the time tells how many
	 * sessions there are, never how close a guess came */
	for (size_t i = 0; i < SESSION_MAX; i++) {
		if (!s->v[i].used)
			continue;
		if (secret_equal(s->v[i].tok_hash, SHA256_HEX_LEN, h, SHA256_HEX_LEN))
			found = &s->v[i];
	}
	if (!found)
		return SESSION_NONE;
	if (now - found->last >= s->idle_s || now - found->created >= s->absolute_s) {
		session_end(found);
		return SESSION_EXPIRED;
	}
	found->last = now;
	*out = found;
	return SESSION_OK;
}

void session_end(struct session *ss)
{
	memset(ss, 0, sizeof(*ss));
}

void session_end_user(struct sessions *s, const char *user)
{
	for (size_t i = 0; i < SESSION_MAX; i++)
		if (s->v[i].used && !strcmp(s->v[i].user, user))
			session_end(&s->v[i]);
}

bool session_csrf_ok(const struct session *ss, const char *hdr, size_t len)
{
	return hdr && secret_equal(ss->csrf, strlen(ss->csrf), hdr, len);
}

static struct throttle_slot *slot_of(const struct throttle *t, const char *key)
{
	for (size_t i = 0; i < THROTTLE_SLOTS; i++)
		if (t->v[i].key[0] && !strcmp(t->v[i].key, key))
			return (struct throttle_slot *)&t->v[i];
	return NULL;
}

int64_t throttle_wait(const struct throttle *t, const char *key, int64_t now)
{
	const struct throttle_slot *s = slot_of(t, key);

	if (!s || s->fails < THROTTLE_FAILS || now - s->start >= THROTTLE_WINDOW_S)
		return 0;
	return s->start + THROTTLE_WINDOW_S - now;
}

void throttle_fail(struct throttle *t, const char *key, int64_t now)
{
	struct throttle_slot *s = slot_of(t, key);

	if (!s) {
		/* a free slot, else the one whose window started first */
		s = &t->v[0];
		for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
			if (!t->v[i].key[0]) {
				s = &t->v[i];
				break;
			}
			if (t->v[i].start < s->start)
				s = &t->v[i];
		}
		memset(s, 0, sizeof(*s));
		snprintf(s->key, sizeof(s->key), "%s", key);
	}
	if (!s->fails || now - s->start >= THROTTLE_WINDOW_S) {
		s->start = now;
		s->fails = 0;
	}
	s->fails++;
}

void throttle_clear(struct throttle *t, const char *key)
{
	struct throttle_slot *s = slot_of(t, key);

	if (s)
		memset(s, 0, sizeof(*s));
}
