/* archive.c: archives and compressed streams, member by member, through libarchive.
 * scan/ owns `iplock scan`: the key-shaped-text engine, inputs (files, git, archives, images),
 * decoding, verdicts, liveness, revocation and reports. It may include core/, net/, http/ and
 * store/, never another product. */
#include "scan/archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#define ARC_BLOCK      (256u << 10)    /* bytes handed to libarchive per read from a stream */
#define ARC_MEM_BLOCK  (1u << 20)      /* ... and from memory (no copy) */
#define ARC_NAME_MAX   4096
#define ARC_INMEM_MAX  (4u << 20)      /* members up to this size are read whole, then scanned */

/* What one libarchive reader reads: memory, or a head then a stream (a parent member). */
struct src {
	const unsigned char *mem;
	size_t mem_len, mem_pos;
	const unsigned char *head;
	size_t hlen, hpos;
	scan_read_fn rd;
	void *rarg;
	unsigned char *blk;
	uint64_t raw;           /* bytes handed to libarchive: the "compressed" side of the ratio */
};

static la_ssize_t src_read(struct archive *a, void *arg, const void **out)
{
	struct src *s = arg;
	if (s->mem) {
		size_t n = s->mem_len - s->mem_pos;
		if (n > ARC_MEM_BLOCK)
			n = ARC_MEM_BLOCK;
		*out = s->mem + s->mem_pos;
		s->mem_pos += n;
		s->raw += n;
		return (la_ssize_t)n;
	}
	if (s->hpos < s->hlen) {
		size_t n = s->hlen - s->hpos;
		*out = s->head + s->hpos;
		s->hpos = s->hlen;
		s->raw += n;
		return (la_ssize_t)n;
	}
	ssize_t got = s->rd(s->rarg, s->blk, ARC_BLOCK);
	if (got < 0) {
		archive_set_error(a, (int)-got, "read error: %s", strerror((int)-got));
		return ARCHIVE_FATAL;
	}
	*out = s->blk;
	s->raw += (uint64_t)got;
	return got;
}

static la_int64_t src_skip(struct archive *a, void *arg, la_int64_t req)
{
	struct src *s = arg;
	(void)a;
	if (!s->mem || req <= 0)
		return 0; /* streams: libarchive reads and drops instead */
	size_t n = s->mem_len - s->mem_pos;
	if ((uint64_t)req < n)
		n = (size_t)req;
	s->mem_pos += n;
	return (la_int64_t)n;
}

static la_int64_t src_seek(struct archive *a, void *arg, la_int64_t off, int whence)
{
	struct src *s = arg;
	(void)a;
	la_int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (la_int64_t)s->mem_pos :
								     (la_int64_t)s->mem_len;
	la_int64_t to = base + off;
	if (to < 0 || (uint64_t)to > s->mem_len)
		return ARCHIVE_FATAL;
	s->mem_pos = (size_t)to;
	return to;
}

struct archive *scan_archive_reader(bool any)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_compress(a);
	if (any)
		archive_read_support_format_zip(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (any) {
		archive_read_support_format_raw(a);
		archive_read_support_format_empty(a);
	}
	return a;
}

/* A reader over s for any archive we open. */
static struct archive *arc_open(struct src *s, bool *ok)
{
	struct archive *a = scan_archive_reader(true);
	if (!a)
		return NULL;
	archive_read_set_callback_data(a, s);
	archive_read_set_read_callback(a, src_read);
	archive_read_set_skip_callback(a, src_skip);
	if (s->mem)
		archive_read_set_seek_callback(a, src_seek);
	/* on failure the reader is kept so the caller can read the error string */
	*ok = archive_read_open1(a) >= ARCHIVE_WARN;
	return a;
}

bool scan_archive_sniff(const void *head, size_t n)
{
	const unsigned char *p = head;
	if (n >= 4 && p[0] == 'P' && p[1] == 'K' &&
	    ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6) || (p[2] == 7 && p[3] == 8)))
		return true; /* zip, jar, whl, apk, docx */
	if (n >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)
		return true; /* gzip (deflate) */
	if (n >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6))
		return true; /* xz */
	if (n >= 10 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9' &&
	    !memcmp(p + 4, "1AY&SY", 6))
		return true; /* bzip2 */
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return true; /* zstd */
	if (n >= 262 && !memcmp(p + 257, "ustar", 5))
		return true; /* tar (POSIX or GNU) */
	return false;
}

void scan_archive_skipped(const struct scan_input_opts *o, const char *name, const char *why)
{
	fprintf(stderr, "iplock scan: %s: skipped: %s\n", name, why);
	if (o->skipped)
		(*o->skipped)++;
	if (o->skip_report)
		scan_report_skip(o->skip_report, name, why);
}

int scan_peek_fill(struct scan_peek *p)
{
	while (p->hlen < sizeof(p->head)) {
		ssize_t got = p->rd(p->rarg, p->head + p->hlen, sizeof(p->head) - p->hlen);
		if (got <= 0)
			return (int)got;
		p->hlen += (size_t)got;
	}
	return 0;
}

ssize_t scan_peek_read(void *arg, void *buf, size_t n)
{
	struct scan_peek *p = arg;
	if (p->hpos < p->hlen) {
		size_t k = p->hlen - p->hpos < n ? p->hlen - p->hpos : n;
		memcpy(buf, p->head + p->hpos, k);
		p->hpos += k;
		return (ssize_t)k;
	}
	return p->rd(p->rarg, buf, n);
}

struct actx {
	struct scan_report *r;
	const struct scan_input_opts *o;
	const struct scan_archive_layer *layer; /* set while scanning an image layer */
	unsigned char *mem;             /* reused buffer for small members */
	size_t memcap;
};

/* One member's bytes, with the size and ratio limits. */
struct member {
	struct archive *a;
	const struct src *src;
	uint64_t raw0, out, max;
	unsigned ratio;
	char why[256];
	bool stop;
	struct scan_peek pk;    /* the first bytes, looked at for a nested archive */
};

static ssize_t member_pull(struct member *m, void *buf, size_t n)
{
	if (m->stop)
		return 0;
	if (m->out + n > m->max)
		n = (size_t)(m->max - m->out + 1); /* one byte over tells "too large" from "exact" */
	la_ssize_t got = archive_read_data(m->a, buf, n);
	if (got < 0) {
		const char *e = archive_error_string(m->a);
		snprintf(m->why, sizeof(m->why), "corrupt or truncated: %s", e ? e : "read error");
		m->stop = true;
		return 0;
	}
	if (m->out + (uint64_t)got > m->max) {
		got = (la_ssize_t)(m->max - m->out);
		snprintf(m->why, sizeof(m->why),
			 "larger than %llu bytes decompressed (--max-decompressed-size); rest not scanned",
			 (unsigned long long)m->max);
		m->stop = true;
	}
	m->out += (uint64_t)got;
	uint64_t in = m->src->raw - m->raw0;
	if (!m->stop && m->out >= SCAN_ARCHIVE_RATIO_FLOOR && m->out / (in ? in : 1) > m->ratio) {
		snprintf(m->why, sizeof(m->why),
			 "compression ratio over %u after %llu bytes (zip bomb?); rest not scanned",
			 m->ratio, (unsigned long long)m->out);
		m->stop = true;
	}
	return got;
}

static ssize_t member_pull_fn(void *arg, void *buf, size_t n)
{
	return member_pull(arg, buf, n);
}

static int scan_entries(struct actx *c, struct archive *a, struct src *s, const char *prefix,
			int depth);

/* Opens a child archive over src and scans its members; reports a broken one as skipped. */
static int scan_archive_src(struct actx *c, struct src *s, const char *name, int depth)
{
	int rc = 0;
	if (!s->mem && !(s->blk = malloc(ARC_BLOCK)))
		return -ENOMEM;
	bool ok = false;
	struct archive *a = arc_open(s, &ok);
	if (!a) {
		rc = -ENOMEM;
		goto out;
	}
	if (!ok) {
		const char *e = archive_error_string(a);
		char why[300];
		snprintf(why, sizeof(why), "not a readable archive: %s", e ? e : "unknown format");
		scan_archive_skipped(c->o, name, why);
		goto out;
	}
	rc = scan_entries(c, a, s, name, depth);
out:
	if (a)
		archive_read_free(a);
	free(s->blk);
	s->blk = NULL;
	return rc;
}

static int member_scan(struct actx *c, struct archive *a, struct src *s, struct archive_entry *e,
		       const char *name, int depth)
{
	const struct scan_input_opts *o = c->o;
	struct member *m = calloc(1, sizeof(*m));
	int rc = 0;

	if (!m)
		return -ENOMEM;
	m->a = a;
	m->src = s;
	m->raw0 = s->raw;
	m->max = o->max_decompressed ? o->max_decompressed : SCAN_ARCHIVE_SIZE_DEFAULT;
	m->ratio = o->max_ratio ? o->max_ratio : SCAN_ARCHIVE_RATIO_DEFAULT;
	m->pk.rd = member_pull_fn;
	m->pk.rarg = m;
	scan_peek_fill(&m->pk); /* member_pull never fails: a broken member just ends (m->why) */
	size_t first = c->r->n;
	bool nested = scan_archive_sniff(m->pk.head, m->pk.hlen);
	if (nested && depth < o->max_archive_depth) {
		struct src cs = { .rd = scan_peek_read, .rarg = &m->pk };
		const struct scan_archive_layer *layer = c->layer;
		c->layer = NULL; /* archives inside a layer are ordinary archives */
		rc = scan_archive_src(c, &cs, name, depth + 1);
		c->layer = layer;
	} else {
		if (nested)
			scan_archive_skipped(o, name, "archive nested deeper than --max-archive-depth; "
					     "scanned as bytes");
		c->r->cur_file = name;
		int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		if (size >= 0 && (uint64_t)size <= ARC_INMEM_MAX && (uint64_t)size <= m->max) {
			/* small member: read whole (one buffer, reused) and scan in one go */
			size_t want = (size_t)size + 1, have = 0;
			if (c->memcap < want) {
				unsigned char *nb = realloc(c->mem, want);
				if (!nb) {
					rc = -ENOMEM;
					goto out;
				}
				c->mem = nb;
				c->memcap = want;
			}
			for (;;) {
				ssize_t got = scan_peek_read(&m->pk, c->mem + have, c->memcap - have);
				if (got <= 0)
					break;
				have += (size_t)got;
				if (have == c->memcap) {
					unsigned char *nb = have < ARC_INMEM_MAX * 2 ?
							    realloc(c->mem, have * 2) : NULL;
					if (!nb)
						break; /* lied about its size: the rest is not scanned */
					c->mem = nb;
					c->memcap = have * 2;
				}
			}
			rc = scan_buffer(c->mem, have, o->flags, scan_report_hit, c->r);
			c->r->bytes += have;
		} else {
			rc = scan_stream(scan_peek_read, &m->pk, SCAN_CHUNK_DEFAULT, o->flags,
					 scan_report_hit, c->r);
			c->r->bytes += m->out;
		}
		c->r->files++;
	}
	if (c->layer)
		c->layer->findings(c->layer->arg, c->r, first);
	if (m->why[0])
		scan_archive_skipped(o, name, m->why);
out:
	free(m);
	return rc;
}

static int scan_entries(struct actx *c, struct archive *a, struct src *s, const char *prefix,
			int depth)
{
	struct archive_entry *e;
	char *name = malloc(ARC_NAME_MAX);
	int rc = 0;

	if (!name)
		return -ENOMEM;
	for (;;) {
		int h = archive_read_next_header(a, &e);
		if (h == ARCHIVE_EOF)
			break;
		if (h == ARCHIVE_RETRY)
			continue;
		if (h < ARCHIVE_WARN) {
			const char *er = archive_error_string(a);
			char why[300];
			snprintf(why, sizeof(why), "corrupt or truncated archive: %s; rest not scanned",
				 er ? er : "bad header");
			scan_archive_skipped(c->o, prefix, why);
			break;
		}
		const char *p = archive_entry_pathname(e);
		if (!p)
			p = "?";
		if (c->layer && c->layer->entry(c->layer->arg, p))
			continue; /* a whiteout: recorded, nothing to scan */
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		if (archive_format(a) == ARCHIVE_FORMAT_RAW)
			snprintf(name, ARC_NAME_MAX, "%s", prefix); /* app.log.gz: its own name */
		else
			snprintf(name, ARC_NAME_MAX, "%s!%s", prefix, p);
		if ((rc = member_scan(c, a, s, e, name, depth)) < 0)
			break;
		rc = 0;
	}
	free(name);
	return rc;
}

int scan_archive_buffer(struct scan_report *r, const void *buf, size_t len, const char *name,
			const struct scan_input_opts *o, int depth,
			const struct scan_archive_layer *layer)
{
	struct actx c = { .r = r, .o = o, .layer = layer };
	struct src s = { .mem = buf, .mem_len = len };
	int rc = scan_archive_src(&c, &s, name, depth);
	free(c.mem);
	return rc;
}

int scan_archive_stream(struct scan_report *r, const unsigned char *head, size_t hlen,
			scan_read_fn rd, void *rarg, const char *name,
			const struct scan_input_opts *o, int depth)
{
	struct actx c = { .r = r, .o = o };
	struct src s = { .head = head, .hlen = hlen, .rd = rd, .rarg = rarg };
	int rc = scan_archive_src(&c, &s, name, depth);
	free(c.mem);
	return rc;
}
