/* scan.c: `iplock scan`: find leaked Stripe-format keys in files, stdin or git history,
 * report them, and optionally revoke the ones our key store knows. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "scan/follow.h"
#include "scan/archive.h"
#include "scan/git.h"
#include "scan/hook.h"
#include "scan/input.h"
#include "scan/liveness.h"
#include "scan/report.h"
#include "scan/revoke.h"
#include "http/link.h"
#include "store/store.h"

#define DEFAULT_IGNORE ".iplockignore"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iplock scan [OPTIONS] [PATH...]      (PATH - is stdin; no PATH scans .)\n"
		"       iplock scan --git [OPTIONS] [REPO...] (whole history; no REPO is .)\n"
		"\n"
		"Finds sk_live_/rk_live_/sk_org_ (critical), whsec_ (high), sk_test_/rk_test_ (low)\n"
		"and, with --include-publishable, pk_ keys (info).\n"
		"\n"
		"  --git                  PATHs are git repositories: scan every unique blob of the history\n"
		"  -f, --format FMT       text (default), json, jsonl, sarif or csv\n"
		"  -o, --output FILE      write the report to FILE (mode 0600) instead of stdout\n"
		"  --show-secrets         print whole keys (default: prefix + last 4)\n"
		"  --include-publishable  also report pk_live_/pk_test_ keys\n"
		"  --binary               also scan binary files met in directories (named files always are)\n"
		"  --ignore-file FILE     fingerprints to ignore, one per line (default: ./.iplockignore if present)\n"
		"  --baseline REPORT      a previous --format json report: report only new findings\n"
		"  --revoke --db PATH     revoke every found key that is in the key store at PATH\n"
		"  --actor NAME           who revokes, for the audit record (default: the OS user)\n"
		"  -q, --quiet            no summary line on stderr\n"
		"  --max-archive-depth N  archives opened inside archives (default 4; 0: archives are bytes)\n"
		"  --max-decompressed-size N[KMG]  bytes out of one archive member (default 1G)\n"
		"  --max-archive-ratio N  decompressed/compressed ratio of a member (default 100)\n"
		"  --max-decode-depth N   base64/percent/escape layers decoded (default 2, max 4; 0: off)\n"
		"\n"
		"Leak response (docs/scan.md):\n"
		"  --follow FILE          watch a growing FILE (or - for stdin): report (and with --revoke,\n"
		"                         revoke) each key as soon as its line is written; until SIGINT/SIGTERM\n"
		"  --verify               classify each key: live, locked, dead or unknown, from the key store\n"
		"                         (--db PATH) and/or a Stripe-compatible API (--verify-api URL)\n"
		"  --verify-api URL       API to probe with read-only GETs (implies --verify)\n"
		"  --proxy URL            send the probes through this HTTP CONNECT proxy (e.g. iplock proxy)\n"
		"  --verify-rate N        probes per second (default 5)\n"
		"  --verify-timeout SEC   per probe (default 10)\n"
		"  --cacert FILE          CA certificates for https:// API or proxy\n"
		"  --staged               scan the git index (what a commit would add), not the work tree\n"
		"  --install-hook         write .git/hooks/pre-commit running `iplock scan --staged`\n"
		"                         (an existing hook is kept and runs first)\n"
		"  --fail-on CLASS        exit 1 only for findings of CLASS or worse: live, locked, unknown,\n"
		"                         any (default) or none\n"
		"\n"
		"Inline `iplock:allow` or `gitleaks:allow` on a key's line suppresses it.\n"
		"Exit status: 0 no findings (of the --fail-on class), 1 findings, 2 usage or I/O error.\n");
}

/* --follow, --verify, --staged, --install-hook: the leak-response options, kept together. */
struct scan_resp {
	const char *follow;
	bool verify;
	bool staged, install_hook;
	struct scan_liveness_opts lo;
	struct scan_liveness *lv;       /* open while scanning with --verify */
	int fail_on;                    /* enum scan_live, or -1: never */
	struct store *st;               /* open for --follow --revoke */
	const char *actor;
	enum scan_format fmt;
	bool show;
	FILE *out;
	int write_err;
};

static volatile sig_atomic_t follow_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	follow_stop = 1;
}

/* --follow: each finding is revoked and written the moment its line is complete. */
static int follow_finding(void *arg, struct scan_report *r, size_t i)
{
	struct scan_resp *sr = arg;
	struct scan_finding *f = &r->v[i];

	if (sr->lv)
		scan_liveness_check(sr->lv, f);
	if (sr->st) {
		char who[128];
		if (sr->actor)
			snprintf(who, sizeof(who), "%s", sr->actor);
		else
			store_actor_default(who, sizeof(who));
		if (scan_revoke_one(sr->st, f, 1, who) == SCAN_REVOKE_FAILED)
			r->errors++;
	}
	if (scan_format_streams(sr->fmt) && scan_report_write_one(r, i, sr->fmt, sr->show, sr->out))
		sr->write_err = 1;
	return 0;
}

static int run_follow(struct scan_resp *sr, struct scan_report *r, const struct scan_input_opts *io,
		      const char *db)
{
	struct sigaction sa = { .sa_handler = on_stop_signal }; /* no SA_RESTART: reads return */
	struct scan_follow_opts fo = { .io = io, .on_finding = follow_finding, .arg = sr };
	char err[512];
	int rc;

	if (db && scan_store_open(db, &sr->st, err, sizeof(err))) {
		cli_fail("scan", 2, err, NULL);
		return -EINVAL;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (scan_report_write_head(sr->fmt, sr->out))
		sr->write_err = 1;
	rc = scan_follow(r, sr->follow, &fo, &follow_stop);
	if (rc && rc != -ENOMEM)
		cli_errorf("iplock scan: %s: %s\n", sr->follow, strerror(-rc));
	if (sr->st)
		store_close(sr->st);
	sr->st = NULL;
	return rc;
}

/* --install-hook [REPO] */
static int install_hook(const char *repo)
{
	char self[4096], msg[8192];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (!repo)
		return cli_fail("scan", 2, "--install-hook takes at most one REPO", NULL);
	/* the hook runs this very binary (IPLOCK_HOOK_BIN or PATH when it is gone) */
	if (n <= 0 || (size_t)n >= sizeof(self) - 1)
		snprintf(self, sizeof(self), "iplock");
	else
		self[n] = '\0';
	if (scan_hook_install(repo, self, msg, sizeof(msg)))
		return cli_fail("scan", 2, msg, NULL);
	printf("iplock scan: %s\n", msg);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A count, or with units a size: 512, 64K, 256M, 1G. */
static bool scan_parse_limit(const char *s, bool units, unsigned long long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return false;
	unsigned shift = 0;
	if (units && *end) {
		const char *u = strchr("KMG", *end);
		if (!u || !*u || end[1])
			return false;
		shift = 10 * (unsigned)(u - "KMG" + 1);
		end++;
	}
	if (*end || v > (~0ull >> shift))
		return false;
	*out = v << shift;
	return true;
}

static FILE *open_output(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

int scan_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "git", no_argument, NULL, 'g' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "show-secrets", no_argument, NULL, 'S' },
		{ "include-publishable", no_argument, NULL, 'P' },
		{ "binary", no_argument, NULL, 'B' },
		{ "ignore-file", required_argument, NULL, 'I' },
		{ "baseline", required_argument, NULL, 'b' },
		{ "revoke", no_argument, NULL, 'R' },
		{ "db", required_argument, NULL, 'd' },
		{ "actor", required_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "follow", required_argument, NULL, 'F' },
		{ "verify", no_argument, NULL, 'V' },
		{ "staged", no_argument, NULL, 's' },
		{ "install-hook", no_argument, NULL, 'H' },
		{ "verify-api", required_argument, NULL, 'A' },
		{ "proxy", required_argument, NULL, 'x' },
		{ "verify-rate", required_argument, NULL, 'r' },
		{ "verify-timeout", required_argument, NULL, 't' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "fail-on", required_argument, NULL, 'E' },
		/* archives, images, decoding */
		{ "max-archive-depth", required_argument, NULL, 0x100 },
		{ "max-decompressed-size", required_argument, NULL, 0x101 },
		{ "max-archive-ratio", required_argument, NULL, 0x102 },
		{ "max-decode-depth", required_argument, NULL, 0x103 },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t skipped = 0;
	struct scan_input_opts io = { .flags = SCAN_F_DECODE(SCAN_DECODE_DEPTH_DEFAULT),
				      .max_archive_depth = SCAN_ARCHIVE_DEPTH_DEFAULT,
				      .max_decompressed = SCAN_ARCHIVE_SIZE_DEFAULT,
				      .max_ratio = SCAN_ARCHIVE_RATIO_DEFAULT, .skipped = &skipped };
	enum scan_format fmt = SCAN_FMT_TEXT;
	const char *output = NULL, *ignore = NULL, *baseline = NULL, *db = NULL, *actor = NULL;
	bool git = false, show = false, revoke = false, quiet = false;
	struct scan_report r;
	struct scan_resp sr = { 0 };
	char err[512];
	FILE *out = stdout;
	int c, rc = 2;

	scan_report_init(&r);
	io.skip_report = &r;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'g': git = true; break;
		case 'f':
			if (!scan_format_parse(optarg, &fmt)) {
				rc = cli_fail("scan", 2,
						"unknown format (text, json, jsonl, sarif, csv)", optarg);
				goto out;
			}
			break;
		case 'o': output = optarg; break;
		case 'S': show = true; break;
		case 'P': io.flags |= SCAN_F_PUBLISHABLE; break;
		case 'B': io.binary = true; break;
		case 'I': ignore = optarg; break;
		case 'b': baseline = optarg; break;
		case 'R': revoke = true; break;
		case 'd': db = optarg; break;
		case 'a': actor = optarg; break;
		case 'q': quiet = true; break;
		case 'F': sr.follow = optarg; break;
		case 'V': sr.verify = true; break;
		case 's': sr.staged = true; break;
		case 'H': sr.install_hook = true; break;
		case 'A': sr.verify = true; sr.lo.api = optarg; break;
		case 'x': sr.lo.proxy = optarg; break;
		case 'C': sr.lo.cacert = optarg; break;
		case 'r':
		case 't': {
			char *end = NULL;
			double d = strtod(optarg, &end);
			if (!end || *end || !(d > 0) || d > 1e6) {
				rc = cli_fail("scan", 2, "not a positive number", optarg);
				goto out;
			}
			if (c == 'r')
				sr.lo.rate = d;
			else
				sr.lo.timeout_ms = d * 1000 < 1 ? 1 : (int)(d * 1000);
			break;
		}
		case 'E':
			if (!scan_fail_on_parse(optarg, &sr.fail_on)) {
				rc = cli_fail("scan", 2,
						"unknown --fail-on class (live, locked, unknown, any, none)", optarg);
				goto out;
			}
			break;
		case 0x100: case 0x101: case 0x102: case 0x103: {
			unsigned long long v;
			if (!scan_parse_limit(optarg, c == 0x101, &v) || (c == 0x100 && v > 16) ||
			    (c == 0x103 && v > SCAN_DECODE_DEPTH_MAX) || ((c == 0x101 || c == 0x102) && v == 0)) {
				rc = cli_fail("scan", 2, "bad value", argv[optind - 1]);
				goto out;
			}
			if (c == 0x103)
				io.flags = (io.flags & ~SCAN_F_DECODE_MASK) | SCAN_F_DECODE(v);
			else if (c == 0x100)
				io.max_archive_depth = (int)v;
			else if (c == 0x101)
				io.max_decompressed = v;
			else
				io.max_ratio = v > 1000000 ? 1000000 : (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			rc = cli_fail("scan", 2, "unknown or incomplete option", argv[optind - 1]);
			goto out;
		}
	}
	if (revoke && !db) {
		rc = cli_fail("scan", 2, "--revoke needs --db PATH", NULL);
		goto out;
	}
	if (db && !revoke && !sr.verify) {
		rc = cli_fail("scan", 2, "--db is only used with --revoke or --verify", NULL);
		goto out;
	}
	if (sr.verify && !db && !sr.lo.api) {
		rc = cli_fail("scan", 2,
				"--verify needs --db PATH (the key store) or --verify-api URL", NULL);
		goto out;
	}
	if (!sr.verify && (sr.lo.proxy || sr.lo.rate || sr.lo.timeout_ms || sr.lo.cacert)) {
		rc = cli_fail("scan", 2,
				"--proxy, --verify-rate, --verify-timeout and --cacert need --verify-api", NULL);
		goto out;
	}
	if (!sr.verify && sr.fail_on > SCAN_LIVE_NONE) {
		rc = cli_fail("scan", 2, "--fail-on live, locked or unknown needs --verify", NULL);
		goto out;
	}
	if (revoke && !store_is_remote(db) && access(db, R_OK | W_OK) != 0) {
		rc = cli_fail("scan", 2, "no usable key store (--db)", db);
		goto out;
	}
	if (!ignore && access(DEFAULT_IGNORE, F_OK) == 0)
		ignore = DEFAULT_IGNORE;
	if (ignore && scan_report_load_ignore(&r, ignore, err, sizeof(err))) {
		rc = cli_fail("scan", 2, err, NULL);
		goto out;
	}
	if (baseline && scan_report_load_baseline(&r, baseline, err, sizeof(err))) {
		rc = cli_fail("scan", 2, err, NULL);
		goto out;
	}
	if (output && !(out = open_output(output))) {
		out = stdout;
		rc = cli_fail("scan", 2, "cannot write output", output);
		goto out;
	}

	if (sr.install_hook) {
		rc = install_hook(argc - optind > 1 ? NULL : optind < argc ? argv[optind] : ".");
		goto out;
	}
	if (sr.staged && (git || sr.follow)) {
		rc = cli_fail("scan", 2,
				"--staged scans the index of REPO...: not with --git or --follow", NULL);
		goto out;
	}
	/* probes and the git pipes must not kill us when the other end goes away */
	if (sr.staged || sr.verify)
		signal(SIGPIPE, SIG_IGN);
	if (sr.follow && (git || optind < argc)) {
		rc = cli_fail("scan", 2, "--follow takes one FILE and no other input", NULL);
		goto out;
	}
	if (sr.verify) {
		sr.lo.db = db;
		if (scan_liveness_open(&sr.lo, &sr.lv, err, sizeof(err))) {
			rc = cli_fail("scan", 2, err, NULL);
			goto out;
		}
	}
	sr.actor = actor;
	sr.fmt = fmt;
	sr.show = show;
	sr.out = out;

	double t0 = now_s();
	bool fatal = false;
	int n_inputs = sr.follow ? 0 : argc - optind;
	if (sr.follow) {
		int e = run_follow(&sr, &r, &io, revoke ? db : NULL);
		if (e == -ENOMEM) {
			cli_fail("scan", 2, "out of memory", NULL);
			fatal = true;
		} else if (e) {
			r.errors++;
		}
	}
	for (int i = 0; !sr.follow && i < (n_inputs ? n_inputs : 1) && !fatal; i++) {
		const char *in = n_inputs ? argv[optind + i] : ".";
		int e = sr.staged ? scan_git_staged(&r, in, &io) :
			git ? scan_git(&r, in, &io) : scan_input_path(&r, in, &io);
		if (e == -ENOMEM) {
			cli_fail("scan", 2, "out of memory", NULL);
			fatal = true;
		} else if (e) {
			r.errors++;
		}
	}
	double dt = now_s() - t0;

	/* before revoking: the report says what the key was when found */
	for (size_t i = 0; !sr.follow && sr.lv && !fatal && i < r.n; i++)
		scan_liveness_check(sr.lv, &r.v[i]);

	if (revoke && !sr.follow && !fatal && r.n) { /* --follow revoked each at once */
		const char *rerr = scan_revoke_found(&r, db, actor, err, sizeof(err));
		if (rerr) {
			cli_fail("scan", 2, rerr, NULL);
			r.errors++;
		}
	}
	if ((!sr.follow || !scan_format_streams(fmt)) && scan_report_write(&r, fmt, show, out)) {
		cli_fail("scan", 2, "cannot write the report", output ? output : "stdout");
		fatal = true;
	}
	if (!quiet) {
		size_t cnt[4];
		scan_report_counts(&r, cnt);
		cli_errorf(
			"iplock scan: %zu finding%s (%zu critical, %zu high, %zu low, %zu info); "
			"suppressed %zu inline, %zu by ignore file, %zu by baseline; "
			"%llu input%s, %llu bytes in %.3f s\n",
			r.n + r.dropped, r.n + r.dropped == 1 ? "" : "s", cnt[0], cnt[1], cnt[2], cnt[3],
			r.supp_inline, r.supp_ignore, r.supp_baseline, (unsigned long long)r.files,
			r.files == 1 ? "" : "s", (unsigned long long)r.bytes, dt);
		if (revoke) {
			size_t done = 0;
			/* keys, not places: a key found twice is revoked once */
			for (size_t i = 0; i < r.n; i++) {
				bool first = r.v[i].revoke == SCAN_REVOKE_DONE;
				for (size_t j = 0; first && j < i; j++)
					first = r.v[j].revoke != SCAN_REVOKE_DONE ||
						strcmp(r.v[j].key_id, r.v[i].key_id) != 0;
				done += first;
			}
			cli_errorf("iplock scan: revoked %zu key%s in %s\n", done,
				done == 1 ? "" : "s", db);
		}
	}
	if (skipped && !quiet)
		fprintf(stderr, "iplock scan: %llu archive member%s skipped (reasons above)\n",
			(unsigned long long)skipped, skipped == 1 ? "" : "s");
	if (sr.write_err) {
		cli_fail("scan", 2, "cannot write the report", output ? output : "stdout");
		fatal = true;
	}
	size_t failing = r.dropped;
	for (size_t i = 0; i < r.n; i++)
		failing += sr.fail_on >= 0 && (int)r.v[i].verdict.live >= sr.fail_on;
	if (sr.verify && !quiet) {
		size_t cls[SCAN_LIVE_LIVE + 1] = { 0 };
		for (size_t i = 0; i < r.n; i++)
			cls[r.v[i].verdict.live <= SCAN_LIVE_LIVE ? r.v[i].verdict.live : 0]++;
		fprintf(stderr, "iplock scan: verified: %zu live, %zu locked, %zu dead, %zu unknown\n",
			cls[SCAN_LIVE_LIVE], cls[SCAN_LIVE_LOCKED], cls[SCAN_LIVE_DEAD],
			cls[SCAN_LIVE_UNKNOWN]);
	}
	rc = fatal || r.errors ? 2 : (sr.fail_on < 0 ? 0 : failing) ? 1 : 0;
	if (sr.staged && rc == 1)
		fprintf(stderr, "iplock scan: commit blocked: remove the key%s from the staged files "
			"(git add them again), or mark a false positive with iplock:allow\n",
			failing == 1 ? "" : "s");
out:
	if (out != stdout && fclose(out) != 0 && rc != 2)
		rc = cli_fail("scan", 2, "cannot write output", output);
	scan_report_free(&r);
	if (sr.lv) {
		scan_liveness_close(sr.lv);
		vlink_cleanup();
	}
	return rc;
}
