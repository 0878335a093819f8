/* decide.c: key extraction, routes, client address and the ordered checks of the gate. */
#include "gate/decide.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/codec.h"

/* ---- key extraction ---- */

size_t gate_key_extract(const char *auth, size_t len, char *out, size_t cap)
{
	size_t i = 0, n;
	const char *tok;

	out[0] = '\0';
	if (!auth || cap < 2)
		return 0;
	while (i < len && (auth[i] == ' ' || auth[i] == '\t'))
		i++;
	auth += i;
	len -= i;
	while (len && (auth[len - 1] == ' ' || auth[len - 1] == '\t'))
		len--;
	if (len > 7 && !strncasecmp(auth, "Bearer", 6) && (auth[6] == ' ' || auth[6] == '\t')) {
		tok = auth + 7;
		n = len - 7;
		while (n && (*tok == ' ' || *tok == '\t')) {
			tok++;
			n--;
		}
		if (n >= cap)
			n = cap - 1;
		memcpy(out, tok, n);
		out[n] = '\0';
		return n;
	}
	if (len > 6 && !strncasecmp(auth, "Basic", 5) && (auth[5] == ' ' || auth[5] == '\t')) {
		char dec[GATE_KEY_TEXT_MAX * 2];
		tok = auth + 6;
		n = len - 6;
		while (n && (*tok == ' ' || *tok == '\t')) {
			tok++;
			n--;
		}
		long d = codec_b64_decode(tok, n, dec, sizeof(dec), CODEC_B64_LAX);
		if (d <= 0)
			return 0;
		const char *colon = memchr(dec, ':', (size_t)d);
		n = colon ? (size_t)(colon - dec) : (size_t)d;
		if (n >= cap)
			n = cap - 1;
		memcpy(out, dec, n);
		out[n] = '\0';
		return n;
	}
	return 0;
}

/* ---- client address ---- */

/* One X-Forwarded-For element: "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]:80". */
static bool xff_entry(const char *s, size_t n, struct ipaddr *out)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb)
			return false;
		size_t rest = n - (size_t)(rb - s) - 1;
		if (rest) {
			if (rb[1] != ':' || rest < 2 || rest > 6)
				return false;
			for (size_t i = 2; i <= rest; i++)
				if (rb[i] < '0' || rb[i] > '9')
					return false;
		}
		return ipaddr_parse(s + 1, (size_t)(rb - s) - 1, out) == NULL;
	}
	const char *c1 = memchr(s, ':', n);
	if (c1 && memchr(s, '.', (size_t)(c1 - s)) && !memchr(c1 + 1, ':', n - (size_t)(c1 - s) - 1)) {
		size_t pl = n - (size_t)(c1 - s) - 1;
		if (pl < 1 || pl > 5)
			return false;
		for (size_t i = 0; i < pl; i++)
			if (c1[1 + i] < '0' || c1[1 + i] > '9')
				return false;
		n = (size_t)(c1 - s);
	}
	return ipaddr_parse(s, n, out) == NULL;
}

enum gate_client gate_client_addr(const struct ipaddr *peer, const char *xff, size_t xff_len,
				  const struct cidr_set *trusted, struct ipaddr *client)
{
	size_t end = xff_len;

	*client = *peer;
	if (!peer->family)
		return GATE_CLIENT_UNKNOWN;
	if (!trusted || !xff || !xff_len || !cidr_set_contains(trusted, peer))
		return GATE_CLIENT_PEER;
	/* right to left: each hop appended the address it saw; the first untrusted is the client */
	for (;;) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		struct ipaddr a;
		if (!xff_entry(xff + start, end - start, &a)) {
			memset(client, 0, sizeof(*client));
			return GATE_CLIENT_UNKNOWN;
		}
		*client = a;
		if (!cidr_set_contains(trusted, &a) || start == 0)
			return GATE_CLIENT_XFF;
		end = start - 1;
	}
}

/* ---- decision ---- */

static void mask_printable(const char *key, size_t n, char out[SECRET_MASK_MAX])
{
	secret_mask(key, n, out);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == '\'' || *p == '"' ||
		    *p == '\\')
			*p = '?';
}

static void set(struct gate_decision *d, enum gate_outcome o, int status, const char *reason)
{
	d->outcome = o;
	d->status = status;
	d->reason = reason;
}

void gate_decide(const struct keycache *kc, const struct gate_routes *routes,
		 const struct gate_input *in, struct gate_decision *d)
{
	char key[GATE_KEY_TEXT_MAX + 1];
	size_t klen = gate_key_extract(in->auth, in->auth_len, key, sizeof(key));
	const struct gate_key *k;

	memset(d, 0, sizeof(*d));
	d->route = routes ? gate_routes_match(routes, in->method, in->method_len, in->target,
					      in->target_len) : NULL;
	if (!klen) {
		set(d, GATE_NO_KEY, 401, "no_key");
		return;
	}
	mask_printable(key, klen, d->masked);
	k = kc ? keycache_find(kc, key, klen) : NULL;
	memset(key, 0, sizeof(key));
	if (!k) {
		set(d, GATE_INVALID_KEY, 401, "unknown_key");
		return;
	}
	d->key = k;
	if (k->revoked) {
		set(d, GATE_INVALID_KEY, 401, "revoked");
		return;
	}
	if (k->expires_at && k->expires_at <= in->now) {
		set(d, GATE_EXPIRED, 401, "expired");
		return;
	}
	if (k->allow) {
		bool unknown = in->client_kind == GATE_CLIENT_UNKNOWN || !in->client.family;
		if (unknown || !cidr_set_contains(k->allow, &in->client)) {
			/* report-only: the other checks still decide; this one is only noted */
			if (k->report) {
				d->would_refuse = true;
			} else {
				set(d, GATE_IP_DENIED, 401, unknown ? "client_unknown" : "ip_not_allowed");
				return;
			}
		}
	}
	switch (k->type) {
	case KEY_RESTRICTED: {
		bool read = (in->method_len == 3 && !memcmp(in->method, "GET", 3)) ||
			    (in->method_len == 4 && !memcmp(in->method, "HEAD", 4));
		if (!d->route) {
			set(d, GATE_NO_PERMISSION, 403, "route_not_in_table");
			return;
		}
		enum perm_level need = read ? PERM_READ : PERM_WRITE;
		if (gate_key_perm(k, d->route->resource) < need) {
			snprintf(d->perm, sizeof(d->perm), "rak_%s_%s", d->route->resource,
				 read ? "read" : "write");
			set(d, GATE_NO_PERMISSION, 403, "permission");
			return;
		}
		break;
	}
	case KEY_PUBLISHABLE:
		if (!d->route || !d->route->publishable) {
			set(d, GATE_PUBLISHABLE, 401, "publishable");
			return;
		}
		break;
	case KEY_ORG:
		if (!in->has_context || !in->has_version) {
			set(d, GATE_ORG_HEADERS, 400, "org_headers");
			return;
		}
		break;
	case KEY_SECRET:
		break;
	}
	set(d, GATE_ALLOW, 200, "ok");
}

void gate_error_message(const struct gate_decision *d, const char *account, char *buf,
			size_t cap)
{
	switch (d->outcome) {
	case GATE_ALLOW:
		snprintf(buf, cap, "ok");
		break;
	case GATE_NO_KEY:
		snprintf(buf, cap, "You did not provide an API key. You need to provide your API key "
			 "in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
			 "YOUR_SECRET_KEY').");
		break;
	case GATE_INVALID_KEY:
		snprintf(buf, cap, "Invalid API Key provided: %s", d->masked);
		break;
	case GATE_EXPIRED:
		snprintf(buf, cap, "Expired API Key provided: %s", d->masked);
		break;
	case GATE_IP_DENIED:
		snprintf(buf, cap, "The API key provided does not allow requests from your IP "
			 "address.");
		break;
	case GATE_NO_PERMISSION:
		if (d->perm[0])
			snprintf(buf, cap, "The provided key '%s' does not have the required "
				 "permissions for this endpoint%s%s%s. Having the '%s' permission "
				 "would allow this request to continue.", d->masked,
				 account ? " on account '" : "", account ? account : "",
				 account ? "'" : "", d->perm);
		else
			snprintf(buf, cap, "The provided key '%s' does not have the required "
				 "permissions for this endpoint%s%s%s.", d->masked,
				 account ? " on account '" : "", account ? account : "",
				 account ? "'" : "");
		break;
	case GATE_PUBLISHABLE:
		snprintf(buf, cap, "This API call cannot be made with a publishable API key. Please "
			 "use a secret API key.");
		break;
	case GATE_ORG_HEADERS:
		snprintf(buf, cap, "Requests made with an organization API key must include the "
			 "Stripe-Context and Stripe-Version headers.");
		break;
	}
}

int gate_error_body(const struct gate_decision *d, const char *account, char *buf, size_t cap)
{
	char msg[512];
	json_t *o = json_object(), *e = json_object();
	char *t = NULL;
	int rc = -ENOSPC;

	if (!o || !e)
		goto out;
	gate_error_message(d, account, msg, sizeof(msg));
	json_object_set_new(e, "type", json_string("invalid_request_error"));
	json_object_set_new(e, "message", json_string(msg));
	if (d->outcome == GATE_EXPIRED)
		json_object_set_new(e, "code", json_string("api_key_expired"));
	if (d->outcome == GATE_ORG_HEADERS)
		json_object_set_new(e, "param", json_string("Stripe-Context"));
	json_object_set(o, "error", e);
	t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (t && strlen(t) + 1 < cap) {
		size_t n = strlen(t);
		memcpy(buf, t, n);
		buf[n] = '\n';
		buf[n + 1] = '\0';
		rc = (int)n + 1;
	}
out:
	free(t);
	json_decref(e);
	json_decref(o);
	return rc;
}
