/* report.c: findings, ignores and the five output formats. */
#include "scan/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/array.h"
#include "core/codec.h"
#include "core/version.h"

#define INFO_URI "https://github.com/iplock/iplock/blob/main/docs/scan.md"

void scan_report_init(struct scan_report *r)
{
	memset(r, 0, sizeof(*r));
}

static void free_pair(char *a, char *b)
{
	free(a);
	free(b);
}

/* Copies of a and b into *da and *db: both, or neither (false). */
static bool dup_pair(char **da, const char *a, char **db, const char *b)
{
	*da = strdup(a);
	*db = strdup(b);
	if (*da && *db)
		return true;
	free_pair(*da, *db);
	*da = *db = NULL;
	return false;
}

bool scan_report_commit(struct scan_finding *f, const char *id, const char *author,
			const char *date)
{
	for (size_t c = 0; c < f->n_commits; c++)
		if (!strcmp(f->commits[c].id, id))
			return false;
	if (f->n_commits >= SCAN_GIT_COMMITS)
		return false;
	struct scan_commit *c = &f->commits[f->n_commits];
	if (!dup_pair(&c->author, author, &c->date, date))
		return false;
	snprintf(c->id, sizeof(c->id), "%s", id);
	f->n_commits++;
	return true;
}

void scan_report_skip(struct scan_report *r, const char *path, const char *why)
{
	if (r->n_skips == r->cap_skips) {
		size_t cap = r->cap_skips ? 2 * r->cap_skips : 16;
		if (r->n_skips >= SCAN_FINDINGS_MAX)
			return; /* counted on stderr; the list is capped like the findings */
		struct scan_skip *v = realloc(r->skips, cap * sizeof(*v));
		if (!v)
			return;
		r->skips = v;
		r->cap_skips = cap;
	}
	struct scan_skip *s = &r->skips[r->n_skips];
	if (dup_pair(&s->path, path, &s->why, why))
		r->n_skips++;
}

static json_t *jstr(const char *s);

static json_t *skips_json(const struct scan_report *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->n_skips; i++)
		json_array_append_new(a, json_pack("{s:o, s:o}", "path", jstr(r->skips[i].path),
						   "reason", jstr(r->skips[i].why)));
	return a;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void scan_report_free(struct scan_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct scan_finding *f = &r->v[i];
		free(f->file);
		if (f->secret)
			OPENSSL_cleanse(f->secret, f->len);
		free(f->secret);
		for (size_t c = 0; c < f->n_commits; c++)
			free_pair(f->commits[c].author, f->commits[c].date);
	}
	free(r->v);
	for (size_t i = 0; i < r->n_skips; i++)
		free_pair(r->skips[i].path, r->skips[i].why);
	free(r->skips);
	free_strv(r->ignore, r->n_ignore);
	free_strv(r->baseline, r->n_baseline);
	memset(r, 0, sizeof(*r));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_set(char **set, size_t n, const char *fp)
{
	return n && bsearch(&fp, set, n, sizeof(char *), cmp_str) != NULL;
}

int scan_report_hit(void *arg, const struct scan_hit *hit)
{
	struct scan_report *r = arg;
	char fp[SHA256_HEX_LEN + 1];

	if (hit->allowed) {
		r->supp_inline++;
		return 0;
	}
	secret_sha256_hex(hit->key, hit->len, fp);
	if (in_set(r->ignore, r->n_ignore, fp)) {
		r->supp_ignore++;
		return 0;
	}
	if (in_set(r->baseline, r->n_baseline, fp)) {
		r->supp_baseline++;
		return 0;
	}
	if (r->n >= SCAN_FINDINGS_MAX) {
		r->dropped++;
		return 0;
	}
	struct scan_finding *v = array_grow(r->v, &r->cap, r->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	r->v = v;
	struct scan_finding *f = &r->v[r->n];
	memset(f, 0, sizeof(*f));
	f->file = strdup(r->cur_file ? r->cur_file : "-");
	f->secret = malloc(hit->len + 1);
	if (!f->file || !f->secret) {
		free(f->file);
		free(f->secret);
		return -ENOMEM;
	}
	memcpy(f->secret, hit->key, hit->len);
	f->secret[hit->len] = '\0';
	f->kind = hit->kind;
	f->line = hit->line;
	f->column = hit->column;
	f->offset = hit->offset;
	f->len = hit->len;
	memcpy(f->fingerprint, fp, sizeof(fp));
	secret_mask(hit->key, hit->len, f->masked);
	if (r->cur_blob)
		snprintf(f->blob, sizeof(f->blob), "%s", r->cur_blob);
	r->n++;
	return 0;
}

static bool is_fp(const char *s, size_t n)
{
	if (n != SHA256_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int push_fp(char ***set, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		char **v = realloc(*set, nc * sizeof(char *));
		if (!v)
			return -ENOMEM;
		*set = v;
		*cap = nc;
	}
	char *d = strndup(s, SHA256_HEX_LEN);
	if (!d)
		return -ENOMEM;
	(*set)[(*n)++] = d;
	return 0;
}

const char *scan_report_load_ignore(struct scan_report *r, const char *path, char *err, size_t cap)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t lineno = 0, setcap = r->n_ignore;
	const char *res = NULL;

	if (!f) {
		snprintf(err, cap, "cannot open ignore file %s: %s", path, strerror(errno));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = line + strspn(line, " \t");
		size_t n = strcspn(p, " \t\r\n#");
		if (n == 0)
			continue; /* blank or comment */
		/* gitleaks-style "file:rule:line" entries end with the fingerprint after a ':' */
		char *colon = memrchr(p, ':', n);
		if (colon) {
			n -= (size_t)(colon + 1 - p);
			p = colon + 1;
		}
		if (!is_fp(p, n)) {
			snprintf(err, cap, "%s:%zu: not a fingerprint (64 lowercase hex digits)", path,
				 lineno);
			res = err;
			break;
		}
		if (push_fp(&r->ignore, &r->n_ignore, &setcap, p)) {
			snprintf(err, cap, "out of memory");
			res = err;
			break;
		}
	}
	if (!res && ferror(f)) {
		snprintf(err, cap, "cannot read %s", path);
		res = err;
	}
	fclose(f);
	if (r->n_ignore)
		qsort(r->ignore, r->n_ignore, sizeof(char *), cmp_str);
	return res;
}

const char *scan_report_load_baseline(struct scan_report *r, const char *path, char *err,
				      size_t cap)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	size_t setcap = r->n_baseline;
	const char *res = NULL;

	if (!doc) {
		snprintf(err, cap, "baseline %s: %s (line %d)", path, jerr.text, jerr.line);
		return err;
	}
	json_t *arr = json_is_array(doc) ? doc : json_object_get(doc, "findings");
	if (!json_is_array(arr)) {
		snprintf(err, cap, "baseline %s: no findings array", path);
		res = err;
		goto out;
	}
	size_t i;
	json_t *it;
	json_array_foreach(arr, i, it) {
		const char *fp = json_string_value(json_object_get(it, "fingerprint"));
		if (!fp || !is_fp(fp, strlen(fp))) {
			snprintf(err, cap, "baseline %s: finding %zu has no fingerprint", path, i);
			res = err;
			goto out;
		}
		if (push_fp(&r->baseline, &r->n_baseline, &setcap, fp)) {
			snprintf(err, cap, "out of memory");
			res = err;
			goto out;
		}
	}
	if (r->n_baseline)
		qsort(r->baseline, r->n_baseline, sizeof(char *), cmp_str);
out:
	json_decref(doc);
	return res;
}

bool scan_format_parse(const char *s, enum scan_format *out)
{
	static const char *const names[] = { "text", "json", "jsonl", "sarif", "csv" };
	for (unsigned i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum scan_format)i;
			return true;
		}
	return false;
}

void scan_report_counts(const struct scan_report *r, size_t counts[4])
{
	memset(counts, 0, 4 * sizeof(size_t));
	for (size_t i = 0; i < r->n; i++)
		counts[scan_kind_severity(r->v[i].kind)]++;
}

static const char *revoke_name(enum scan_revoke s)
{
	static const char *const n[] = { "", "revoked", "already-revoked", "not-in-store", "failed" };
	return (unsigned)s < 5 ? n[s] : "";
}

/* JSON strings must be UTF-8; paths and git authors need not be. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *c = strdup(s);
	if (!c)
		return NULL;
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(c);
	free(c);
	return j;
}

/* --verify: the store's and the API's view, then the class both give. */
static json_t *verdict_json(const struct scan_verdict *v)
{
	json_t *o = json_object();
	json_object_set_new(o, "class", json_string(scan_live_name(v->live)));
	if (v->store != SCAN_STORE_NONE) {
		json_object_set_new(o, "store", json_string(scan_store_state_name(v->store)));
		if (v->store == SCAN_STORE_ACTIVE)
			json_object_set_new(o, "allowlist_entries", json_integer((json_int_t)v->n_allow));
	}
	if (v->api != SCAN_API_NONE) {
		json_object_set_new(o, "api", json_string(scan_api_state_name(v->api)));
		if (v->http_status)
			json_object_set_new(o, "http_status", json_integer(v->http_status));
		if (v->ip[0])
			json_object_set_new(o, "ip", json_string(v->ip));
		if (v->perm[0])
			json_object_set_new(o, "missing_permission", json_string(v->perm));
		json_t *p = json_object();
		for (unsigned i = 0; i < SCAN_PROBE_COUNT; i++)
			if (v->probes[i] == SCAN_PROBE_READ || v->probes[i] == SCAN_PROBE_DENIED)
				json_object_set_new(p, scan_probe_resource(i),
						    json_string(v->probes[i] == SCAN_PROBE_READ ?
								"read" : "denied"));
		if (json_object_size(p))
			json_object_set_new(o, "permissions", p);
		else
			json_decref(p);
	}
	json_object_set_new(o, "detail", jstr(v->detail));
	return o;
}

static void commit_json(json_t *o, const struct scan_commit *c)
{
	json_object_set_new(o, "commit", json_string(c->id));
	json_object_set_new(o, "author", jstr(c->author));
	json_object_set_new(o, "date", jstr(c->date));
}

/* A git finding's blob and the commit that introduced it (the oldest), when known. */
static void blob_json(json_t *o, const struct scan_finding *f)
{
	json_object_set_new(o, "blob", json_string(f->blob));
	if (f->n_commits)
		commit_json(o, &f->commits[0]);
}

static json_t *finding_json(const struct scan_finding *f, bool show)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string(scan_kind_name(f->kind)));
	json_object_set_new(o, "title", json_string(scan_kind_title(f->kind)));
	json_object_set_new(o, "severity",
			    json_string(scan_severity_name(scan_kind_severity(f->kind))));
	json_object_set_new(o, "file", jstr(f->file));
	json_object_set_new(o, "line", json_integer((json_int_t)f->line));
	json_object_set_new(o, "column", json_integer((json_int_t)f->column));
	json_object_set_new(o, "offset", json_integer((json_int_t)f->offset));
	json_object_set_new(o, "length", json_integer((json_int_t)f->len));
	json_object_set_new(o, "fingerprint", json_string(f->fingerprint));
	json_object_set_new(o, "secret", json_string(show ? f->secret : f->masked));
	if (f->blob[0]) {
		blob_json(o, f);
		json_t *cs = json_array();
		for (size_t c = 0; c < f->n_commits; c++) {
			json_t *co = json_object();
			commit_json(co, &f->commits[c]);
			json_array_append_new(cs, co);
		}
		json_object_set_new(o, "commits", cs);
	}
	if (f->revoke != SCAN_REVOKE_NONE) {
		json_object_set_new(o, "revoked", json_boolean(f->revoke == SCAN_REVOKE_DONE ||
							       f->revoke == SCAN_REVOKE_ALREADY));
		json_object_set_new(o, "revoke_status", json_string(revoke_name(f->revoke)));
		if (f->key_id[0])
			json_object_set_new(o, "key_id", json_string(f->key_id));
	}
	if (f->verdict.live != SCAN_LIVE_NONE) {
		json_object_set_new(o, "liveness", json_string(scan_live_name(f->verdict.live)));
		json_object_set_new(o, "verify", verdict_json(&f->verdict));
	}
	return o;
}

static json_t *summary_json(const struct scan_report *r)
{
	size_t c[4];
	scan_report_counts(r, c);
	json_t *s = json_pack("{s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I}",
			      "findings", (json_int_t)(r->n + r->dropped),
			      "by_severity", "critical", (json_int_t)c[0], "high", (json_int_t)c[1],
			      "low", (json_int_t)c[2], "info", (json_int_t)c[3],
			      "suppressed", "inline", (json_int_t)r->supp_inline,
			      "ignore_file", (json_int_t)r->supp_ignore,
			      "baseline", (json_int_t)r->supp_baseline,
			      "not_listed", (json_int_t)r->dropped,
			      "files", (json_int_t)r->files, "bytes", (json_int_t)r->bytes,
			      "errors", (json_int_t)r->errors);
	json_object_set_new(s, "skipped", json_integer((json_int_t)r->n_skips));
	return s;
}

static int dump(json_t *j, FILE *out, size_t flags)
{
	if (!j)
		return -ENOMEM;
	int rc = json_dumpf(j, out, flags) == 0 ? 0 : -EIO;
	json_decref(j);
	return rc;
}

/* RFC 3986 path: keep unreserved characters and '/', percent-encode the rest. */
static char *uri_path(const char *p)
{
	size_t n = strlen(p);
	char *o = malloc(3 * n + 1);

	if (o && codec_pct_encode(p, n, "/", o, 3 * n + 1) < 0) {
		free(o);
		o = NULL;
	}
	return o;
}

static const char *sarif_level(enum scan_severity s)
{
	return s <= SCAN_SEV_HIGH ? "error" : s == SCAN_SEV_LOW ? "warning" : "note";
}

static const char *sarif_score(enum scan_severity s)
{
	static const char *const v[] = { "9.5", "8.0", "3.0", "0.0" };
	return v[s];
}

static int write_sarif(const struct scan_report *r, bool show, FILE *out)
{
	json_t *rules = json_array(), *results = json_array();

	for (unsigned k = 0; k < SCAN_KIND_COUNT; k++) {
		enum scan_severity sev = scan_kind_severity((enum scan_kind)k);
		json_array_append_new(rules, json_pack(
			"{s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:[s,s], s:s}}",
			"id", scan_kind_name((enum scan_kind)k),
			"name", scan_kind_title((enum scan_kind)k),
			"shortDescription", "text", scan_kind_title((enum scan_kind)k),
			"fullDescription", "text",
			"A Stripe-format key in the code or history: revoke or rotate it, then remove it.",
			"help", "text", "Revoke the key (iplock scan --revoke for keys in the local store), "
			"rotate it at Stripe, and keep keys in a secret manager.",
			"defaultConfiguration", "level", sarif_level(sev),
			"properties", "tags", "security", "secret", "security-severity", sarif_score(sev)));
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct scan_finding *f = &r->v[i];
		enum scan_severity sev = scan_kind_severity(f->kind);
		char msg[512];
		char *uri = uri_path(strcmp(f->file, "-") ? f->file : "stdin");
		snprintf(msg, sizeof(msg), "%s %s found", scan_kind_title(f->kind),
			 show ? f->secret : f->masked);
		json_t *res = json_pack(
			"{s:s, s:i, s:s, s:{s:s}, s:[{s:{s:{s:s}, s:{s:I, s:I, s:I, s:I, s:I, s:I}}}],"
			" s:{s:s}}",
			"ruleId", scan_kind_name(f->kind), "ruleIndex", (int)f->kind,
			"level", sarif_level(sev), "message", "text", msg,
			"locations", "physicalLocation", "artifactLocation", "uri", uri ? uri : "unknown",
			"region", "startLine", (json_int_t)f->line, "startColumn", (json_int_t)f->column,
			"endLine", (json_int_t)f->line, "endColumn", (json_int_t)(f->column + f->len),
			"byteOffset", (json_int_t)f->offset, "byteLength", (json_int_t)f->len,
			"partialFingerprints", "iplockKeyHash/v1", f->fingerprint);
		free(uri);
		json_t *props = json_pack("{s:s, s:s}", "severity", scan_severity_name(sev),
					  "secret", show ? f->secret : f->masked);
		if (f->blob[0])
			blob_json(props, f);
		if (f->revoke != SCAN_REVOKE_NONE)
			json_object_set_new(props, "revoke_status", json_string(revoke_name(f->revoke)));
		if (f->verdict.live != SCAN_LIVE_NONE) {
			json_object_set_new(props, "liveness", json_string(scan_live_name(f->verdict.live)));
			json_object_set_new(props, "verify", verdict_json(&f->verdict));
		}
		json_object_set_new(res, "properties", props);
		json_array_append_new(results, res);
	}
	json_t *doc = json_pack(
		"{s:s, s:s, s:[{s:{s:{s:s, s:s, s:s, s:s, s:o}}, s:s, s:o}]}",
		"$schema", "https://json.schemastore.org/sarif-2.1.0.json",
		"version", "2.1.0",
		"runs", "tool", "driver", "name", "iplock", "version", IPLOCK_VERSION,
		"semanticVersion", IPLOCK_VERSION, "informationUri", INFO_URI, "rules", rules,
		"columnKind", "unicodeCodePoints", "results", results);
	/* skipped archive members: tool execution notifications, so code scanning shows them */
	json_t *notes = json_array();
	for (size_t i = 0; i < r->n_skips; i++) {
		char *uri = uri_path(r->skips[i].path);
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s: skipped: %s", r->skips[i].path, r->skips[i].why);
		json_array_append_new(notes, json_pack(
			"{s:s, s:{s:s}, s:[{s:{s:{s:s}}}]}", "level", "warning", "message", "text", msg,
			"locations", "physicalLocation", "artifactLocation", "uri", uri ? uri : "unknown"));
		free(uri);
	}
	json_object_set_new(json_array_get(json_object_get(doc, "runs"), 0), "invocations",
			    json_pack("[{s:b, s:o}]", "executionSuccessful", 1,
				      "toolExecutionNotifications", notes));
	int rc = dump(doc, out, JSON_INDENT(2));
	fputc('\n', out);
	return rc;
}

/* RFC 4180: quote when needed, double the quotes. */
static void csv_field(FILE *out, const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', out);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	} else {
		fputs(s, out);
	}
	fputs(last ? "\r\n" : ",", out);
}

#define CSV_HEAD "kind,severity,file,line,column,offset,fingerprint,secret,commit,author,date," \
	"revoked,liveness,verify\r\n"

static void write_csv_one(const struct scan_finding *f, bool show, FILE *out)
{
	char num[3][24];
	snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)f->line);
	snprintf(num[1], sizeof(num[1]), "%llu", (unsigned long long)f->column);
	snprintf(num[2], sizeof(num[2]), "%llu", (unsigned long long)f->offset);
	csv_field(out, scan_kind_name(f->kind), false);
	csv_field(out, scan_severity_name(scan_kind_severity(f->kind)), false);
	csv_field(out, f->file, false);
	csv_field(out, num[0], false);
	csv_field(out, num[1], false);
	csv_field(out, num[2], false);
	csv_field(out, f->fingerprint, false);
	csv_field(out, show ? f->secret : f->masked, false);
	csv_field(out, f->n_commits ? f->commits[0].id : "", false);
	csv_field(out, f->n_commits ? f->commits[0].author : "", false);
	csv_field(out, f->n_commits ? f->commits[0].date : "", false);
	csv_field(out, revoke_name(f->revoke), false);
	csv_field(out, scan_live_name(f->verdict.live), false);
	csv_field(out, f->verdict.detail, true);
}

static void write_csv(const struct scan_report *r, bool show, FILE *out)
{
	fputs(CSV_HEAD, out);
	for (size_t i = 0; i < r->n; i++)
		write_csv_one(&r->v[i], show, out);
}

/* Control bytes in a path or an author would forge report lines or drive the terminal. */
static void fput_safe(const char *s, FILE *out)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static void write_text_one(const struct scan_finding *f, bool show, FILE *out)
{
	fput_safe(f->file, out);
	fprintf(out, ":%llu:%llu: %s %s %s fingerprint=%s",
		(unsigned long long)f->line, (unsigned long long)f->column,
		scan_severity_name(scan_kind_severity(f->kind)), scan_kind_name(f->kind),
		show ? f->secret : f->masked, f->fingerprint);
	if (f->n_commits) {
		fprintf(out, " commit=%.12s author=\"", f->commits[0].id);
		fput_safe(f->commits[0].author, out);
		fprintf(out, "\" date=%s", f->commits[0].date);
	}
	else if (f->blob[0])
		fprintf(out, " blob=%.12s", f->blob);
	if (f->revoke != SCAN_REVOKE_NONE)
		fprintf(out, " revoke=%s%s%s", revoke_name(f->revoke), f->key_id[0] ? ":" : "",
			f->key_id);
	if (f->verdict.live != SCAN_LIVE_NONE) {
		fprintf(out, " liveness=%s verify=\"", scan_live_name(f->verdict.live));
		fput_safe(f->verdict.detail, out);
		fputc('"', out);
	}
	fputc('\n', out);
}

static void write_text(const struct scan_report *r, bool show, FILE *out)
{
	for (size_t i = 0; i < r->n; i++)
		write_text_one(&r->v[i], show, out);
}

int scan_report_write(const struct scan_report *r, enum scan_format fmt, bool show_secrets,
		      FILE *out)
{
	int rc = 0;

	switch (fmt) {
	case SCAN_FMT_TEXT:
		write_text(r, show_secrets, out);
		break;
	case SCAN_FMT_CSV:
		write_csv(r, show_secrets, out);
		break;
	case SCAN_FMT_JSONL:
		for (size_t i = 0; i < r->n && rc == 0; i++) {
			rc = dump(finding_json(&r->v[i], show_secrets), out, JSON_COMPACT);
			fputc('\n', out);
		}
		break;
	case SCAN_FMT_JSON: {
		json_t *arr = json_array();
		for (size_t i = 0; i < r->n; i++)
			json_array_append_new(arr, finding_json(&r->v[i], show_secrets));
		json_t *doc = json_pack("{s:s, s:s, s:o, s:o, s:o}", "tool", "iplock", "version",
					IPLOCK_VERSION, "findings", arr, "skipped", skips_json(r),
					"summary", summary_json(r));
		rc = dump(doc, out, JSON_INDENT(2));
		fputc('\n', out);
		break;
	}
	case SCAN_FMT_SARIF:
		rc = write_sarif(r, show_secrets, out);
		break;
	}
	if (fflush(out) != 0 || ferror(out))
		rc = -EIO;
	return rc;
}

bool scan_format_streams(enum scan_format fmt)
{
	return fmt == SCAN_FMT_TEXT || fmt == SCAN_FMT_JSONL || fmt == SCAN_FMT_CSV;
}

int scan_report_write_head(enum scan_format fmt, FILE *out)
{
	if (fmt == SCAN_FMT_CSV)
		fputs(CSV_HEAD, out);
	return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}

int scan_report_write_one(const struct scan_report *r, size_t i, enum scan_format fmt,
			  bool show_secrets, FILE *out)
{
	int rc = 0;

	if (i >= r->n)
		return -EINVAL;
	switch (fmt) {
	case SCAN_FMT_TEXT:
		write_text_one(&r->v[i], show_secrets, out);
		break;
	case SCAN_FMT_CSV:
		write_csv_one(&r->v[i], show_secrets, out);
		break;
	case SCAN_FMT_JSONL:
		rc = dump(finding_json(&r->v[i], show_secrets), out, JSON_COMPACT);
		fputc('\n', out);
		break;
	default:
		return -EINVAL; /* documents are written whole, at the end */
	}
	/* a finding in a stream is acted on at once: it must not wait in a buffer */
	if (fflush(out) != 0 || ferror(out))
		rc = -EIO;
	return rc;
}
