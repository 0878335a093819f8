/* webhook.c: Stripe-Signature parsing, signing and verification (OpenSSL HMAC-SHA256).
 * webhook/ owns `iplock webhook`'s engine; it may include core/, net/, http/ and store/, never
 * another product. */
#include "webhook/webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/codec.h"
#include "core/secret.h"

/* One `key=value` item of the header: value runs from the first '=' to the next '=' or ','
 * (Python's item.split("=", 2)[1]). */
struct item {
	const char *key, *val;
	size_t klen, vlen;
	bool has_val;
};

/* Next ','-separated item from *p; false when the header is exhausted. split(",") always
 * yields at least one (possibly empty) item, so *done tracks the final one. */
static bool item_next(const char **p, const char *end, bool *done, struct item *it)
{
	if (*done)
		return false;
	const char *s = *p;
	const char *comma = memchr(s, ',', (size_t)(end - s));
	const char *e = comma ? comma : end;
	const char *eq = memchr(s, '=', (size_t)(e - s));

	it->key = s;
	it->klen = (size_t)((eq ? eq : e) - s);
	it->has_val = eq != NULL;
	if (eq) {
		const char *v = eq + 1;
		const char *eq2 = memchr(v, '=', (size_t)(e - v));
		it->val = v;
		it->vlen = (size_t)((eq2 ? eq2 : e) - v);
	} else {
		it->val = NULL;
		it->vlen = 0;
	}
	if (comma)
		*p = comma + 1;
	else
		*done = true;
	return true;
}

static bool item_is(const struct item *it, const char *name)
{
	size_t n = strlen(name);
	return it->klen == n && memcmp(it->key, name, n) == 0;
}

/* Python's str.isspace() for ASCII (int() strips these). */
static bool py_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* int(s) in base 10 as Python parses it (ASCII only): whitespace, sign, digits with single
 * underscores between them. Writes the canonical decimal that "%d" prints back. */
static bool parse_py_int(const char *s, size_t n, char out[WEBHOOK_TS_MAX], int64_t *val)
{
	size_t i = 0, digits = 0;
	bool neg = false, saturated = false;
	uint64_t mag = 0;
	char buf[WEBHOOK_TS_MAX];

	while (n > 0 && py_space((unsigned char)s[n - 1]))
		n--;
	while (i < n && py_space((unsigned char)s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i >= n)
		return false;
	for (; i < n; i++) {
		char c = s[i];
		if (c == '_') {
			/* only between two digits */
			if (i == 0 || i + 1 >= n || s[i - 1] < '0' || s[i - 1] > '9' ||
			    s[i + 1] < '0' || s[i + 1] > '9')
				return false;
			continue;
		}
		if (c < '0' || c > '9')
			return false;
		if (digits == 0 && c == '0')
			continue; /* leading zeros vanish in the canonical form */
		if (digits + 2 >= sizeof(buf))
			return false; /* longer than any sane timestamp */
		buf[digits++] = c;
		if (mag > (UINT64_MAX - 9) / 10)
			saturated = true;
		else
			mag = mag * 10 + (uint64_t)(c - '0');
	}
	/* only zeros were seen (the loop needs at least one digit to get here) */
	if (digits == 0) {
		memcpy(out, "0", 2);
		*val = 0;
		return true;
	}
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	memcpy(out + o, buf, digits);
	out[o + digits] = '\0';
	if (saturated || mag > (uint64_t)INT64_MAX)
		*val = neg ? INT64_MIN : INT64_MAX;
	else
		*val = neg ? -(int64_t)mag : (int64_t)mag;
	return true;
}

const char *webhook_parse_header(const char *hdr, size_t len, struct webhook_header *out)
{
	const char *p = hdr, *end = hdr + len;
	bool done = false, have_t = false;
	struct item it;

	memset(out, 0, sizeof(*out));
	if (len > WEBHOOK_HEADER_MAX)
		return WEBHOOK_ERR_HEADER;
	while (item_next(&p, end, &done, &it)) {
		if (item_is(&it, "t")) {
			/* every t item must have a value, the first one counts */
			if (!it.has_val)
				return WEBHOOK_ERR_HEADER;
			if (!have_t) {
				if (!parse_py_int(it.val, it.vlen, out->ts, &out->t))
					return WEBHOOK_ERR_HEADER;
				have_t = true;
			}
		} else if (item_is(&it, "v1")) {
			if (!it.has_val)
				return WEBHOOK_ERR_HEADER;
			if (out->n_sig < WEBHOOK_MAX_SIGS) {
				out->sig[out->n_sig] = it.val;
				out->sig_len[out->n_sig] = it.vlen;
			}
			out->n_sig++;
		}
	}
	return have_t ? NULL : WEBHOOK_ERR_HEADER;
}

void webhook_signature(const char *secret, size_t secret_len, const char *ts,
		       const void *payload, size_t len, char out[WEBHOOK_SIG_HEX + 1])
{
	unsigned char md[32];
	size_t mdlen = 0;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	/* an empty key is legal HMAC; OpenSSL wants a non-NULL pointer */
	static const unsigned char nokey[1];

	memset(md, 0, sizeof(md));
	if (!ctx || !EVP_MAC_init(ctx, secret_len ? (const unsigned char *)secret : nokey,
				  secret_len, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    (len && !EVP_MAC_update(ctx, payload, len)) ||
	    !EVP_MAC_final(ctx, md, &mdlen, sizeof(md)))
		/* cannot happen with a working libcrypto; an all-zero tag never verifies by luck */
		memset(md, 0, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	codec_hex_encode(md, sizeof(md), out, WEBHOOK_SIG_HEX + 1, false);
}

int webhook_sign(const char *const *secrets, size_t n_secrets, int64_t timestamp,
		 const void *payload, size_t len, char *out, size_t cap)
{
	char ts[WEBHOOK_TS_MAX];
	char sig[WEBHOOK_SIG_HEX + 1];

	if (n_secrets == 0 || cap == 0)
		return -EINVAL;
	snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	int n = snprintf(out, cap, "t=%s", ts);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	for (size_t i = 0; i < n_secrets; i++) {
		webhook_signature(secrets[i], strlen(secrets[i]), ts, payload, len, sig);
		int m = snprintf(out + n, cap - (size_t)n, ",v1=%s", sig);
		if (m < 0 || (size_t)m >= cap - (size_t)n)
			return -ENOSPC;
		n += m;
	}
	return n;
}

const char *webhook_verify(const char *hdr, size_t hdr_len, const void *payload, size_t len,
			   const char *const *secrets, size_t n_secrets, int64_t tolerance,
			   int64_t now, int64_t *t_out)
{
	struct webhook_header h;
	const char *err = webhook_parse_header(hdr, hdr_len, &h);
	char expect[WEBHOOK_SIG_HEX + 1];
	bool ok = false;

	if (err)
		return err;
	if (t_out)
		*t_out = h.t;
	if (h.n_sig == 0)
		return WEBHOOK_ERR_SCHEME;
	for (size_t s = 0; s < n_secrets; s++) {
		webhook_signature(secrets[s], strlen(secrets[s]), h.ts, payload, len, expect);
		/* walk every v1 again: the struct keeps only the first few */
		const char *p = hdr, *end = hdr + hdr_len;
		bool done = false;
		struct item it;
		while (item_next(&p, end, &done, &it))
			if (item_is(&it, "v1") &&
			    secret_equal(expect, WEBHOOK_SIG_HEX, it.val, it.vlen))
				ok = true;
	}
	if (!ok)
		return WEBHOOK_ERR_MATCH;
	/* the SDKs reject only old timestamps; tolerance 0 disables the check */
	if (tolerance > 0 && now > INT64_MIN + tolerance && h.t < now - tolerance)
		return WEBHOOK_ERR_STALE;
	return NULL;
}
