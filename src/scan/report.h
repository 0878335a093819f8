/* report.h: scan findings: collection with ignores (inline markers, fingerprint file, baseline),
 * and output as text, JSON, JSON Lines, SARIF 2.1.0 or CSV.
 *
 * A fingerprint is the SHA-256 hex of the whole key: it survives code moving, and it is the very
 * hash the key store files keys under, so a finding can be looked up there directly. */
#ifndef IPLOCK_SCAN_REPORT_H
#define IPLOCK_SCAN_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/secret.h"
#include "scan/scan.h"
#include "scan/verdict.h"

#define SCAN_FINDINGS_MAX 1000000      /* beyond this, findings are counted, not kept */
#define SCAN_OID_MAX      65           /* hex object id (SHA-1 or SHA-256) plus NUL */
#define SCAN_GIT_COMMITS  16           /* introducing commits kept per finding */

enum scan_format {
	SCAN_FMT_TEXT = 0,      /* one redacted line per finding */
	SCAN_FMT_JSON,          /* one document: {"findings": [...], "summary": {...}} */
	SCAN_FMT_JSONL,         /* one object per line */
	SCAN_FMT_SARIF,         /* SARIF 2.1.0 for code-scanning UIs */
	SCAN_FMT_CSV,           /* RFC 4180, with a header row */
};

enum scan_revoke {
	SCAN_REVOKE_NONE = 0,   /* not asked, or not tried */
	SCAN_REVOKE_DONE,       /* revoked now */
	SCAN_REVOKE_ALREADY,    /* was revoked before */
	SCAN_REVOKE_UNKNOWN,    /* not in the key store */
	SCAN_REVOKE_FAILED,     /* the store refused or failed */
};

struct scan_commit {
	char id[SCAN_OID_MAX];
	char *author;           /* "Name <email>" */
	char *date;             /* ISO 8601 */
};

struct scan_finding {
	enum scan_kind kind;
	char *file;             /* path as given, "-" for stdin, path in the repository for git */
	uint64_t line, column, offset;
	size_t len;
	char fingerprint[SHA256_HEX_LEN + 1];
	char masked[SECRET_MASK_MAX];
	char *secret;           /* the whole key, wiped when freed */
	char blob[SCAN_OID_MAX];        /* git: the blob ("" otherwise) */
	struct scan_commit commits[SCAN_GIT_COMMITS]; /* git: oldest first */
	size_t n_commits;
	enum scan_revoke revoke;
	char key_id[32];        /* store id when the key is in the store */
	struct scan_verdict verdict; /* --verify: is it live? (verdict.live NONE when not asked) */
};

struct scan_report {
	struct scan_finding *v;
	size_t n, cap;
	size_t dropped;         /* findings beyond SCAN_FINDINGS_MAX */
	size_t supp_inline, supp_ignore, supp_baseline;
	uint64_t files, bytes;
	int errors;             /* inputs that could not be read */
	char **ignore;          /* sorted fingerprints */
	size_t n_ignore;
	char **baseline;        /* sorted fingerprints */
	size_t n_baseline;
	struct scan_skip {      /* archive members not scanned (bomb, corrupt, too deep) */
		char *path;
		char *why;
	} *skips;
	size_t n_skips, cap_skips;
	/* where hits go: set by the input drivers before each input */
	const char *cur_file;
	const char *cur_blob;
};

void scan_report_init(struct scan_report *r);

/* Adds a commit that carries f's blob (git scans): each commit once, at most SCAN_GIT_COMMITS,
 * oldest first as they come. false when it was not added (seen, full, out of memory). */
bool scan_report_commit(struct scan_finding *f, const char *id, const char *author,
			const char *date);

/* Records an archive member that was skipped, with the reason (listed in JSON and SARIF). */
void scan_report_skip(struct scan_report *r, const char *path, const char *why);
void scan_report_free(struct scan_report *r);

/* The scan_hit_fn for the engine: applies ignores and records (arg is the report). */
int scan_report_hit(void *arg, const struct scan_hit *hit);

/* Loads fingerprints to ignore: one 64-hex fingerprint per line, first token; '#' comments.
 * NULL = ok, else a message (line number included) in err. */
const char *scan_report_load_ignore(struct scan_report *r, const char *path, char *err, size_t cap);

/* Loads the fingerprints of a previous JSON report (ours: {"findings": [...]}, or a bare array). */
const char *scan_report_load_baseline(struct scan_report *r, const char *path, char *err,
				      size_t cap);

bool scan_format_parse(const char *s, enum scan_format *out);

/* Writes the report. show_secrets prints whole keys instead of prefix + last 4. */
int scan_report_write(const struct scan_report *r, enum scan_format fmt, bool show_secrets,
		      FILE *out);

/* Streams (--follow): the CSV header row (nothing for other formats), then one finding at a
 * time, flushed at once. JSON and SARIF are documents: the caller writes them at the end. */
int scan_report_write_head(enum scan_format fmt, FILE *out);
int scan_report_write_one(const struct scan_report *r, size_t i, enum scan_format fmt,
			  bool show_secrets, FILE *out);
/* Whether a format can be written a finding at a time. */
bool scan_format_streams(enum scan_format fmt);

/* Counts by severity, for the summary. */
void scan_report_counts(const struct scan_report *r, size_t counts[4]);

#endif
