/* image.c: docker save / OCI images: manifest, layers in order, whiteouts, config strings. */
#include "scan/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "scan/archive.h"

#define IMG_JSON_MAX    (4u << 20)      /* manifests and configs are small: bigger is not read */
#define IMG_JSON_TOTAL  (64u << 20)
#define IMG_LAYERS_MAX  1024
#define IMG_NAME_MAX    4096

struct img_range {
	size_t start, end;
};

struct img_layer {
	char *member;           /* path in the tar / directory */
	char digest[80];        /* "sha256:<hex>" or "" */
	char *prefix;           /* display name: "<image>!sha256:<hex>" */
	char **wh;              /* whiteouts: "dir/name", or "dir/" for an opaque dir */
	size_t nwh;
	struct img_range *rg;   /* findings in this layer */
	size_t nrg;
};

struct img_json {
	char *name;
	char *data;
	size_t len;
};

struct scan_image {
	struct img_layer layer[IMG_LAYERS_MAX];
	size_t nlayers;
	char *config;           /* member path of the config */
	char config_digest[80];
	struct img_json *js;    /* pass 1: small JSON members */
	size_t njs, total;
	const char *dir;        /* OCI layout directory (else a tar) */
};

static void img_free(struct scan_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->nlayers; i++) {
		struct img_layer *l = &img->layer[i];
		free(l->member);
		free(l->prefix);
		for (size_t w = 0; w < l->nwh; w++)
			free(l->wh[w]);
		free(l->wh);
		free(l->rg);
	}
	for (size_t j = 0; j < img->njs; j++) {
		free(img->js[j].name);
		free(img->js[j].data);
	}
	free(img->js);
	free(img->config);
	free(img);
}

/* "./a/b" and "a/b" are the same member */
static const char *norm(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (*p == '/')
		p++;
	return p;
}

/* A small JSON member by name: from pass 1 (tar) or the directory. Caller frees. */
static char *img_get(struct scan_image *img, const char *name, size_t *len)
{
	name = norm(name);
	if (!img->dir) {
		for (size_t j = 0; j < img->njs; j++)
			if (!strcmp(img->js[j].name, name)) {
				char *d = malloc(img->js[j].len + 1);
				if (d) {
					memcpy(d, img->js[j].data, img->js[j].len + 1);
					*len = img->js[j].len;
				}
				return d;
			}
		return NULL;
	}
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", img->dir, name) >= (int)sizeof(path) ||
	    strstr(name, ".."))
		return NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *d = malloc(IMG_JSON_MAX + 1);
	size_t n = 0;
	while (d && n < IMG_JSON_MAX) {
		ssize_t got = read(fd, d + n, IMG_JSON_MAX - n);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (d) {
		d[n] = '\0';
		*len = n;
	}
	return d;
}

static json_t *img_json(struct scan_image *img, const char *name)
{
	size_t len = 0;
	char *d = img_get(img, name, &len);
	if (!d)
		return NULL;
	json_t *j = json_loadb(d, len, 0, NULL);
	free(d);
	return j;
}

/* "sha256:<hex>" to its blob path; false when it is no plain digest (no path tricks). */
static bool blob_path(const char *digest, char *out, size_t cap)
{
	const char *c = strchr(digest ? digest : "", ':');
	if (!c || c - digest > 16 || strchr(c + 1, '/') || strstr(c + 1, "..") || !c[1])
		return false;
	return snprintf(out, cap, "blobs/%.*s/%s", (int)(c - digest), digest, c + 1) < (int)cap;
}

static bool add_layer(struct scan_image *img, const char *member, const char *digest)
{
	if (img->nlayers >= IMG_LAYERS_MAX)
		return false;
	struct img_layer *l = &img->layer[img->nlayers];
	if (!(l->member = strdup(norm(member))))
		return false;
	snprintf(l->digest, sizeof(l->digest), "%s", digest ? digest : "");
	img->nlayers++;
	return true;
}

/* docker save: manifest.json = [{"Config": "...", "Layers": ["...", ...]}]; the first image. */
static bool resolve_docker(struct scan_image *img)
{
	json_t *m = img_json(img, "manifest.json");
	json_t *e = json_is_array(m) ? json_array_get(m, 0) : NULL;
	const char *cfg = json_string_value(json_object_get(e, "Config"));
	json_t *layers = json_object_get(e, "Layers");
	json_t *conf = NULL, *diff = NULL;
	bool ok = false;

	if (!cfg || !json_is_array(layers))
		goto out;
	if (!(img->config = strdup(norm(cfg))))
		goto out;
	/* the config's name (old layout) or path (new) carries its digest */
	const char *base = strrchr(img->config, '/') ? strrchr(img->config, '/') + 1 : img->config;
	snprintf(img->config_digest, sizeof(img->config_digest), "sha256:%.64s", base);
	conf = img_json(img, cfg);
	diff = json_object_get(json_object_get(conf, "rootfs"), "diff_ids");
	size_t i;
	json_t *v;
	json_array_foreach(layers, i, v) {
		const char *lp = json_string_value(v);
		if (!lp)
			continue;
		/* blobs/sha256/<hex> names itself; <id>/layer.tar takes the config's diff_id */
		char dg[80] = "";
		const char *d = json_string_value(json_array_get(diff, i));
		if (!strncmp(norm(lp), "blobs/", 6)) {
			const char *h = norm(lp) + 6;
			const char *sl = strchr(h, '/');
			if (sl)
				snprintf(dg, sizeof(dg), "%.*s:%s", (int)(sl - h), h, sl + 1);
		} else if (d) {
			snprintf(dg, sizeof(dg), "%s", d);
		}
		if (!add_layer(img, lp, dg))
			goto out;
	}
	ok = true;
out:
	json_decref(conf);
	json_decref(m);
	return ok;
}

/* OCI: index.json -> (index ->) manifest -> config + layers; the first manifest. */
static bool resolve_oci(struct scan_image *img)
{
	json_t *idx = img_json(img, "index.json"), *man = NULL, *sub = NULL;
	char path[IMG_NAME_MAX];
	bool ok = false;

	json_t *d0 = json_array_get(json_object_get(idx, "manifests"), 0);
	if (!blob_path(json_string_value(json_object_get(d0, "digest")), path, sizeof(path)))
		goto out;
	man = img_json(img, path);
	if (json_is_array(json_object_get(man, "manifests"))) {
		/* a nested index (multi-platform): its first manifest */
		sub = man;
		d0 = json_array_get(json_object_get(sub, "manifests"), 0);
		if (!blob_path(json_string_value(json_object_get(d0, "digest")), path, sizeof(path)))
			goto out;
		man = img_json(img, path);
	}
	const char *cd = json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
	json_t *layers = json_object_get(man, "layers");
	if (!blob_path(cd, path, sizeof(path)) || !json_is_array(layers))
		goto out;
	if (!(img->config = strdup(path)))
		goto out;
	snprintf(img->config_digest, sizeof(img->config_digest), "%s", cd);
	size_t i;
	json_t *v;
	json_array_foreach(layers, i, v) {
		const char *ld = json_string_value(json_object_get(v, "digest"));
		if (!blob_path(ld, path, sizeof(path)) || !add_layer(img, path, ld))
			goto out;
	}
	ok = true;
out:
	json_decref(idx);
	json_decref(man);
	json_decref(sub);
	return ok;
}

static bool img_resolve(struct scan_image *img, const char *name)
{
	if (!resolve_docker(img) && !resolve_oci(img))
		return false;
	for (size_t i = 0; i < img->nlayers; i++) {
		struct img_layer *l = &img->layer[i];
		size_t n = strlen(name) + strlen(l->member) + sizeof(l->digest) + 4;
		if (!(l->prefix = malloc(n)))
			return false;
		snprintf(l->prefix, n, "%s!%s", name, l->digest[0] ? l->digest : l->member);
	}
	return true;
}

/* One layer of an image, as archive.c is told about it (struct scan_archive_layer). */
struct layer_ref {
	struct scan_image *img;
	int layer;
};

/* A member's path: records a whiteout (true: nothing to scan). */
static bool layer_entry(void *arg, const char *path)
{
	const struct layer_ref *lr = arg;
	struct scan_image *img = lr->img;
	int layer = lr->layer;
	const char *p = norm(path);
	const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
	if (strncmp(base, ".wh.", 4) || layer < 0 || (size_t)layer >= img->nlayers)
		return false;
	struct img_layer *l = &img->layer[layer];
	char **v = realloc(l->wh, (l->nwh + 1) * sizeof(char *));
	if (!v)
		return true;
	l->wh = v;
	size_t dl = (size_t)(base - p);
	/* ".wh..wh..opq" hides the whole directory below; ".wh.NAME" deletes NAME */
	bool opaque = !strcmp(base, ".wh..wh..opq");
	const char *name = opaque ? "" : base + 4;
	size_t nl = strlen(name);
	char *t = malloc(dl + nl + 1);
	if (!t)
		return true;
	memcpy(t, p, dl);
	memcpy(t + dl, name, nl + 1);
	l->wh[l->nwh++] = t;
	return true;
}

/* The findings [first, r->n) of one member of the layer, for mark_deleted. */
static void layer_findings(void *arg, const struct scan_report *r, size_t first)
{
	const struct layer_ref *lr = arg;
	struct scan_image *img = lr->img;
	int layer = lr->layer;
	if (layer < 0 || (size_t)layer >= img->nlayers || r->n <= first)
		return;
	struct img_layer *l = &img->layer[layer];
	struct img_range *v = realloc(l->rg, (l->nrg + 1) * sizeof(*v));
	if (!v)
		return;
	l->rg = v;
	l->rg[l->nrg++] = (struct img_range){ first, r->n };
}

/* Is path (inside a layer) removed by a whiteout of a later layer? */
static bool deleted_later(const struct scan_image *img, size_t layer, const char *path)
{
	size_t pl = strcspn(path, "!"); /* a file inside an archive inside the layer: the archive */
	for (size_t j = layer + 1; j < img->nlayers; j++)
		for (size_t w = 0; w < img->layer[j].nwh; w++) {
			const char *t = img->layer[j].wh[w];
			size_t tl = strlen(t);
			if (tl == 0 || t[tl - 1] == '/') {
				if (tl <= pl && !strncmp(path, t, tl))
					return true; /* opaque directory */
			} else if (tl <= pl && !strncmp(path, t, tl) && (tl == pl || path[tl] == '/')) {
				return true; /* the file itself or a directory above it */
			}
		}
	return false;
}

static void mark_deleted(struct scan_image *img, struct scan_report *r)
{
	static const char mark[] = " (deleted in a later layer)";
	for (size_t i = 0; i < img->nlayers; i++) {
		struct img_layer *l = &img->layer[i];
		size_t plen = strlen(l->prefix);
		for (size_t g = 0; g < l->nrg; g++)
			for (size_t k = l->rg[g].start; k < l->rg[g].end && k < r->n; k++) {
				struct scan_finding *f = &r->v[k];
				if (strncmp(f->file, l->prefix, plen) || f->file[plen] != '!' ||
				    !deleted_later(img, i, norm(f->file + plen + 1)))
					continue;
				size_t n = strlen(f->file) + sizeof(mark);
				char *nf = malloc(n);
				if (!nf)
					continue;
				snprintf(nf, n, "%s%s", f->file, mark);
				free(f->file);
				f->file = nf;
			}
	}
}

static int scan_string(struct scan_report *r, const struct scan_input_opts *o, const char *s,
		       const char *name)
{
	r->cur_file = name;
	int rc = scan_buffer(s, strlen(s), o->flags, scan_report_hit, r);
	r->bytes += strlen(s);
	return rc;
}

/* The config's strings where secrets end up: Env, Cmd, Entrypoint, Labels, history created_by. */
static int scan_config(struct scan_image *img, struct scan_report *r, const char *name,
		       const struct scan_input_opts *o)
{
	json_t *conf = img_json(img, img->config);
	char where[IMG_NAME_MAX];
	int rc = 0;
	size_t i;
	json_t *v;

	if (!conf) {
		scan_archive_skipped(o, name, "image config missing or not JSON");
		return 0;
	}
	json_t *c = json_object_get(conf, "config");
	static const char *const arrays[] = { "Env", "Cmd", "Entrypoint" };
	for (size_t a = 0; a < 3 && !rc; a++)
		json_array_foreach(json_object_get(c, arrays[a]), i, v) {
			if (!json_is_string(v))
				continue;
			snprintf(where, sizeof(where), "%s!%s!config.%s[%zu]", name, img->config_digest,
				 arrays[a], i);
			if ((rc = scan_string(r, o, json_string_value(v), where)))
				break;
		}
	const char *k;
	json_object_foreach(json_object_get(c, "Labels"), k, v) {
		if (rc || !json_is_string(v))
			continue;
		snprintf(where, sizeof(where), "%s!%s!config.Labels.%s", name, img->config_digest, k);
		rc = scan_string(r, o, json_string_value(v), where);
	}
	json_array_foreach(json_object_get(conf, "history"), i, v) {
		const char *cb = json_string_value(json_object_get(v, "created_by"));
		if (rc || !cb)
			continue;
		snprintf(where, sizeof(where), "%s!%s!history[%zu].created_by", name, img->config_digest,
			 i);
		rc = scan_string(r, o, cb, where);
	}
	r->files++;
	json_decref(conf);
	return rc;
}

/* Scans one layer blob (an archive) of img, telling whiteouts and findings apart per layer. */
static int scan_layer(struct scan_report *r, struct scan_image *img, int layer, const void *buf,
		      size_t len, const struct scan_input_opts *o, int depth)
{
	struct layer_ref lr = { img, layer };
	const struct scan_archive_layer hooks = { layer_entry, layer_findings, &lr };
	return scan_archive_buffer(r, buf, len, img->layer[layer].prefix, o, depth, &hooks);
}

static int layer_index(const struct scan_image *img, const char *member)
{
	member = norm(member);
	for (size_t i = 0; i < img->nlayers; i++)
		if (!strcmp(img->layer[i].member, member))
			return (int)i;
	return -1;
}

/* "<64 hex>/json": the legacy per-layer copy of the config, scanned through the config itself */
static bool v1_json(const char *p)
{
	p = norm(p);
	return strspn(p, "0123456789abcdef") == 64 && !strcmp(p + 64, "/json");
}

static struct archive *mem_reader(const void *buf, size_t len)
{
	struct archive *a = scan_archive_reader(false);
	if (!a)
		return NULL;
	if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static bool image_name(const char *p)
{
	p = norm(p);
	size_t hex = strspn(p, "0123456789abcdef");
	return !strncmp(p, "blobs/", 6) || !strcmp(p, "oci-layout") || !strcmp(p, "index.json") ||
	       !strcmp(p, "manifest.json") || !strcmp(p, "repositories") ||
	       (hex == 64 && (p[64] == '/' || !strcmp(p + 64, ".json")));
}

bool scan_image_probe(const void *buf, size_t len)
{
	struct archive *a = mem_reader(buf, len);
	struct archive_entry *e;
	bool yes = false;
	if (!a)
		return false;
	if (archive_read_next_header(a, &e) >= ARCHIVE_WARN && archive_entry_pathname(e))
		yes = image_name(archive_entry_pathname(e));
	archive_read_free(a);
	return yes;
}

/* A member's bytes as one block: in place when libarchive hands it over whole (a plain tar in
 * memory), else copied up to max. *own is set when the caller must free. */
static const unsigned char *member_bytes(struct archive *a, struct archive_entry *e, uint64_t max,
					 size_t *len, unsigned char **own, const char **why)
{
	const void *blk;
	size_t sz;
	la_int64_t off;
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
	unsigned char *b = NULL;
	size_t have = 0, cap = 0;

	*own = NULL;
	*why = NULL;
	for (;;) {
		int rc = archive_read_data_block(a, &blk, &sz, &off);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc < ARCHIVE_WARN) {
			*why = archive_error_string(a) ? archive_error_string(a) : "read error";
			break;
		}
		if (!b && off == 0 && size >= 0 && sz == (uint64_t)size) {
			*len = sz;
			return blk; /* whole, in place */
		}
		if ((uint64_t)off + sz > max) {
			*why = "larger than --max-decompressed-size";
			break;
		}
		if ((size_t)off + sz > cap) {
			size_t nc = cap ? cap : 1 << 16;
			while (nc < (size_t)off + sz)
				nc *= 2;
			unsigned char *nb = realloc(b, nc);
			if (!nb) {
				free(b);
				*why = "out of memory";
				return NULL;
			}
			b = nb;
			cap = nc;
		}
		memcpy(b + off, blk, sz);
		if ((size_t)off + sz > have)
			have = (size_t)off + sz;
	}
	*own = b;
	*len = have;
	return b;
}

/* Calls fn for every regular member of the tar in buf, in order, until fn returns non-zero,
 * which is returned; 1 when buf cannot be opened. */
static int img_each(const void *buf, size_t len,
		    int (*fn)(void *arg, struct archive *a, struct archive_entry *e, const char *p),
		    void *arg)
{
	struct archive *a = mem_reader(buf, len);
	struct archive_entry *e;
	int rc = 0;

	if (!a)
		return 1;
	while (!rc && archive_read_next_header(a, &e) >= ARCHIVE_WARN) {
		const char *p = archive_entry_pathname(e);
		if (p && archive_entry_filetype(e) == AE_IFREG)
			rc = fn(arg, a, e, p);
	}
	archive_read_free(a);
	return rc;
}

/* Pass 1: keeps the small JSON members (manifests, index, configs). 0 or -ENOMEM. */
static int keep_json(void *arg, struct archive *a, struct archive_entry *e, const char *p)
{
	struct scan_image *img = arg;
	int64_t sz = archive_entry_size(e);
	if (sz <= 0 || sz > IMG_JSON_MAX || img->total + (uint64_t)sz > IMG_JSON_TOTAL)
		return 0;
	char *d = malloc((size_t)sz + 1);
	if (!d)
		return -ENOMEM;
	la_ssize_t got = 0, k;
	while (got < sz && (k = archive_read_data(a, d + got, (size_t)(sz - got))) > 0)
		got += k; /* a compressed image hands data over block by block */
	if (got != sz || (d[0] != '{' && d[0] != '[')) {
		free(d);
		return 0;
	}
	d[sz] = '\0';
	struct img_json *v = realloc(img->js, (img->njs + 1) * sizeof(*v));
	if (!v || !(v[img->njs].name = strdup(norm(p)))) {
		free(d);
		if (v)
			img->js = v;
		return -ENOMEM;
	}
	img->js = v;
	v[img->njs].data = d;
	v[img->njs].len = (size_t)sz;
	img->njs++;
	img->total += (uint64_t)sz;
	return 0;
}

/* What pass 2 needs besides the image. */
struct tar_pass {
	struct scan_report *r;
	struct scan_image *img;
	const char *name;
	const struct scan_input_opts *o;
	uint64_t max;
	char mname[IMG_NAME_MAX];
};

/* Pass 2: a layer as an archive (digest-named), anything else as a plain member. 0 or < 0. */
static int scan_member(void *arg, struct archive *a, struct archive_entry *e, const char *p)
{
	struct tar_pass *t = arg;
	struct scan_report *r = t->r;
	const struct scan_input_opts *o = t->o;
	int rc = 0;

	if (!strcmp(norm(p), t->img->config) || v1_json(p))
		return 0;
	int li = layer_index(t->img, p);
	size_t blen = 0;
	unsigned char *own = NULL;
	const char *why = NULL;
	const unsigned char *b = member_bytes(a, e, t->max, &blen, &own, &why);
	if (li >= 0)
		snprintf(t->mname, IMG_NAME_MAX, "%s", t->img->layer[li].prefix);
	else
		snprintf(t->mname, IMG_NAME_MAX, "%s!%s", t->name, norm(p));
	if (why)
		scan_archive_skipped(o, t->mname, why);
	if (b && !why) {
		if (scan_archive_sniff(b, blen) && o->max_archive_depth >= 2)
			rc = li >= 0 ? scan_layer(r, t->img, li, b, blen, o, 2) :
				       scan_archive_buffer(r, b, blen, t->mname, o, 2, NULL);
		else {
			r->cur_file = t->mname;
			rc = scan_buffer(b, blen, o->flags, scan_report_hit, r);
			r->files++;
			r->bytes += blen;
		}
	}
	free(own);
	return rc < 0 ? rc : 0;
}

int scan_image_tar(struct scan_report *r, const void *buf, size_t len, const char *name,
		   const struct scan_input_opts *o)
{
	struct scan_image *img = calloc(1, sizeof(*img));
	struct tar_pass *t = malloc(sizeof(*t));
	int rc = 0;

	if (!img || !t) {
		rc = -ENOMEM;
		goto out;
	}
	*t = (struct tar_pass){ .r = r, .img = img, .name = name, .o = o,
				.max = o->max_decompressed ? o->max_decompressed :
							     SCAN_ARCHIVE_SIZE_DEFAULT };
	if ((rc = img_each(buf, len, keep_json, img)))
		goto out;
	if (!img_resolve(img, name)) {
		rc = 1;
		goto out;
	}
	if ((rc = scan_config(img, r, name, o)))
		goto out;
	if ((rc = img_each(buf, len, scan_member, t)))
		goto out;
	mark_deleted(img, r);
out:
	img_free(img);
	free(t);
	return rc;
}

bool scan_image_is_dir(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;
	if (snprintf(p, sizeof(p), "%s/oci-layout", dir) >= (int)sizeof(p) || stat(p, &st) ||
	    !S_ISREG(st.st_mode))
		return false;
	snprintf(p, sizeof(p), "%s/index.json", dir);
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int scan_image_dir(struct scan_report *r, const char *dir, const struct scan_input_opts *o)
{
	struct scan_image *img = calloc(1, sizeof(*img));
	int rc = 0;

	if (!img)
		return -ENOMEM;
	img->dir = dir;
	if (!img_resolve(img, dir)) {
		scan_archive_skipped(o, dir, "OCI layout without a readable index/manifest");
		goto out;
	}
	if ((rc = scan_config(img, r, dir, o)))
		goto out;
	for (size_t i = 0; i < img->nlayers && rc >= 0; i++) {
		char path[PATH_MAX];
		struct stat st;
		struct img_layer *l = &img->layer[i];
		snprintf(path, sizeof(path), "%s/%s", dir, l->member);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
			scan_archive_skipped(o, l->prefix, "layer blob missing or empty");
			if (fd >= 0)
				close(fd);
			continue;
		}
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (map == MAP_FAILED) {
			scan_archive_skipped(o, l->prefix, strerror(errno));
			continue;
		}
		rc = scan_layer(r, img, (int)i, map, (size_t)st.st_size, o, 1);
		munmap(map, (size_t)st.st_size);
	}
	mark_deleted(img, r);
out:
	img_free(img);
	return rc;
}
