/* config.c: `iplock tunnel` settings: proxy URL, mappings from the command line or an INI file
 * ([proxy] url = ..., [tunnel NAME] listen = ..., remote = ...), with FILE:LINE errors (core/ini).
 * tunnel/ owns `iplock tunnel`, the local forwarder through the proxy (config and runtime). It
 * may include core/, net/, http/ and store/, never another product. */
#include "tunnel/tunnel.h"

#include "core/codec.h"
#include "core/ini.h"
#include "core/secret.h"
#include "http/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define TUNNEL_FILE_MAX (1u << 20)
_Static_assert(TUNNEL_NAME_MAX == INI_SECTION_NAME_MAX, "[tunnel NAME] is an INI section name");

void tunnel_config_init(struct tunnel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = 10000;
	cfg->splice_auto = true;
}

const char *tunnel_proxy_parse(const char *url, struct tunnel_proxy *out)
{
	const char *p, *err;
	size_t n = strlen(url);

	memset(out, 0, sizeof(*out));
	if (n > 1024)
		return "proxy URL too long";
	if (!strncmp(url, "http://", 7)) {
		out->scheme = TUNNEL_HTTP;
		p = url + 7;
	} else if (!strncmp(url, "socks5h://", 10)) {
		out->scheme = TUNNEL_SOCKS5H;
		p = url + 10;
	} else if (!strncmp(url, "socks5://", 9)) {
		/* names are still sent to the proxy: resolving here would leak lookups locally */
		out->scheme = TUNNEL_SOCKS5H;
		p = url + 9;
	} else if (!strncmp(url, "https://", 8)) {
		out->scheme = TUNNEL_HTTPS;
		p = url + 8;
	} else {
		return "proxy URL must start with http://, https:// or socks5h://";
	}
	const char *end = p + strlen(p);
	if (end > p && end[-1] == '/')
		end--;
	if (memchr(p, '/', (size_t)(end - p)) || memchr(p, '?', (size_t)(end - p)) || memchr(p, '#', (size_t)(end - p)))
		return "proxy URL takes no path";
	const char *at;
	if ((err = vurl_userinfo(p, (size_t)(end - p), out->user, sizeof(out->user), out->pass,
				 sizeof(out->pass), &at)))
		return err;
	if (at) {
		if (!out->user[0])
			return "proxy URL has an empty user name";
		if (strchr(out->user, ':'))
			return "proxy user name contains ':'";
		out->has_auth = true;
		p = at + 1;
	}
	if ((err = authority_parse(p, (size_t)(end - p), &out->host, &out->port, 0)))
		return err;

	/* the display form: the password replaced whole (even a tail narrows a guess; the user
	 * name identifies the credential), everything else as given */
	const char *masked = "****";
	bool v6 = out->host.kind == HOST_IP && out->host.ip.family == AF_INET6;
	snprintf(out->display, sizeof(out->display), "%s://%s%s%s%s%s%s%s:%u",
		 out->scheme == TUNNEL_HTTP ? "http" : out->scheme == TUNNEL_HTTPS ? "https" : "socks5h",
		 out->has_auth ? out->user : "", out->has_auth && out->pass[0] ? ":" : "",
		 out->has_auth && out->pass[0] ? masked : "", out->has_auth ? "@" : "",
		 v6 ? "[" : "", out->host.name, v6 ? "]" : "", out->port);
	/* shown by --check and every log line: a key given as the user name stays masked */
	secret_redact(out->display, strlen(out->display));
	return NULL;
}

static void set_authority(struct tunnel_map *m)
{
	bool v6 = m->remote.kind == HOST_IP && m->remote.ip.family == AF_INET6;

	snprintf(m->authority, sizeof(m->authority), v6 ? "[%s]:%u" : "%s:%u", m->remote.name,
		 m->remote_port);
}

static const char *parse_listen(const char *s, size_t len, struct tunnel_map *m)
{
	struct host h;
	const char *err;

	/* a bare port listens on 127.0.0.1: a forwarder open to the network is rarely intended */
	if (!memchr(s, ':', len)) {
		if ((err = port_parse(s, len, &m->listen_port)))
			return err;
		ipaddr_parse("127.0.0.1", 9, &m->listen_ip);
		return NULL;
	}
	if ((err = authority_parse(s, len, &h, &m->listen_port, 0)))
		return err;
	if (h.kind != HOST_IP)
		return "listen takes an IP address (127.0.0.1:5432), not a name";
	m->listen_ip = h.ip;
	return NULL;
}

static const char *parse_remote(const char *s, size_t len, struct tunnel_map *m)
{
	const char *err = authority_parse(s, len, &m->remote, &m->remote_port, 0);

	if (err)
		return err;
	set_authority(m);
	return NULL;
}

const char *tunnel_map_parse(const char *spec, struct tunnel_map *out)
{
	const char *eq = strchr(spec, '=');
	const char *err;

	memset(out, 0, sizeof(*out));
	if (!eq)
		return "mapping must be [LOCAL_ADDR:]PORT=REMOTE_HOST:PORT";
	if ((err = parse_listen(spec, (size_t)(eq - spec), out)))
		return err;
	if ((err = parse_remote(eq + 1, strlen(eq + 1), out)))
		return err;
	char ip[IPADDR_STRLEN];
	ipaddr_format(&out->listen_ip, ip, sizeof(ip));
	snprintf(out->name, sizeof(out->name), out->listen_ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 ip, out->listen_port);
	return NULL;
}

const char *tunnel_config_add(struct tunnel_config *cfg, const struct tunnel_map *m)
{
	for (size_t i = 0; i < cfg->nmaps; i++) {
		if (!strcmp(cfg->maps[i].name, m->name))
			return "duplicate tunnel name";
		if (ipaddr_equal(&cfg->maps[i].listen_ip, &m->listen_ip) &&
		    cfg->maps[i].listen_port == m->listen_port)
			return "duplicate listen address";
	}
	if (cfg->nmaps >= TUNNEL_MAX_MAPS)
		return "too many tunnels (at most 64)";
	cfg->maps[cfg->nmaps++] = *m;
	return NULL;
}

/* ---------------------------------------------------------------- INI file */

enum tsection {
	TS_NONE = 0,      /* before the first section */
	TS_PROXY,         /* [proxy] */
	TS_TUNNEL,        /* [tunnel NAME] */
};

struct tload {
	struct tunnel_config *cfg;
	struct ini *ini;  /* line numbers, the first error */
	enum tsection section;
	int proxy_line;
	struct tunnel_map cur;   /* the [tunnel NAME] being read */
	bool have_cur, cur_listen, cur_remote;
	int seen[8];      /* [proxy] keys: line of first occurrence */
};

static void tfail(struct tload *t, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void tfail(struct tload *t, int line, const char *fmt, ...)
{
	char msg[INI_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ini_fail(t->ini, line, "%s", msg);
}

static void tunnel_end(struct tload *t)
{
	const char *err;

	if (!t->have_cur || ini_failed(t->ini))
		return;
	t->have_cur = false;
	if (!t->cur_listen || !t->cur_remote) {
		tfail(t, t->cur.line, "[tunnel %s] needs listen and remote", t->cur.name);
		return;
	}
	if ((err = tunnel_config_add(t->cfg, &t->cur)))
		tfail(t, t->cur.line, "[tunnel %s]: %s", t->cur.name, err);
}

static void tsection_begin(struct tload *t, const char *s, size_t len)
{
	tunnel_end(t);
	if (len == 5 && !memcmp(s, "proxy", 5)) {
		if (t->proxy_line) {
			tfail(t, ini_line(t->ini), "duplicate [proxy] section (first at line %d)", t->proxy_line);
			return;
		}
		t->proxy_line = ini_line(t->ini);
		t->section = TS_PROXY;
		return;
	}
	const char *name;
	size_t nlen;
	if (ini_section_named(s, len, "tunnel", &name, &nlen)) {
		if (!ini_name_valid(name, nlen)) {
			tfail(t, ini_line(t->ini), "bad tunnel name (1-64 of A-Z a-z 0-9 . _ -)");
			return;
		}
		memset(&t->cur, 0, sizeof(t->cur));
		memcpy(t->cur.name, name, nlen);
		t->cur.line = ini_line(t->ini);
		t->have_cur = true;
		t->cur_listen = t->cur_remote = false;
		t->section = TS_TUNNEL;
		return;
	}
	tfail(t, ini_line(t->ini), "unknown section [%.*s] (expected [proxy] or [tunnel NAME])",
	      (int)(len > 64 ? 64 : len), s);
}

static const char *tsection(struct ini *ini, void *user, const char *name, size_t len)
{
	(void)ini;
	tsection_begin(user, name, len);
	return NULL;     /* tsection_begin reports its own errors */
}

static const char *tkey(struct ini *ini, void *user, const char *name, const char *value)
{
	struct tload *t = user;
	const char *err = NULL;

	if (t->section == TS_NONE) {
		tfail(t, ini_line(ini), "key %s outside a section (start with [proxy])", name);
		return NULL;
	}
	if (t->section == TS_PROXY) {
		static const char *const pkeys[] = { "url", "connect_timeout", "idle_timeout", "relay", "cacert" };
		int k = -1;
		for (int i = 0; i < 5; i++)
			if (!strcmp(name, pkeys[i]))
				k = i;
		if (k < 0) {
			tfail(t, ini_line(ini), "unknown key %s in [proxy]", name);
			return NULL;
		}
		if ((err = ini_once(ini, name)))
			return err;
		t->seen[k] = ini_line(ini);
		if (k == 0) {
			err = tunnel_proxy_parse(value, &t->cfg->proxy);
			t->cfg->has_proxy = !err;
		} else if (k == 1) {
			err = ini_parse_duration(value, 100, 3600000, &t->cfg->connect_timeout_ms);
		} else if (k == 2) {
			err = ini_parse_duration(value, 0, 7 * 86400000UL, &t->cfg->idle_timeout_ms);
		} else if (k == 4) {
			if (strlen(value) >= sizeof(t->cfg->cacert))
				err = "path too long";
			else
				memcpy(t->cfg->cacert, value, strlen(value) + 1);
		} else if (!strcmp(value, "splice") || !strcmp(value, "copy") || !strcmp(value, "auto")) {
			t->cfg->splice = !strcmp(value, "splice");
			t->cfg->splice_auto = !strcmp(value, "auto");
		} else {
			err = "relay must be auto, splice or copy";
		}
	} else if (!strcmp(name, "listen")) {
		if (!(err = ini_once(ini, name)))
			err = parse_listen(value, strlen(value), &t->cur);
		t->cur_listen = true;
	} else if (!strcmp(name, "remote")) {
		if (!(err = ini_once(ini, name)))
			err = parse_remote(value, strlen(value), &t->cur);
		t->cur_remote = true;
	} else {
		tfail(t, ini_line(ini), "unknown key %s in [tunnel %s] (expected listen or remote)", name, t->cur.name);
		return NULL;
	}
	return err;
}

static const struct ini_ops tops = { .section = tsection, .key = tkey };

const char *tunnel_config_load_string(const char *text, const char *name, struct tunnel_config *cfg,
				      char *err, size_t errcap)
{
	struct ini ini;
	struct tload t = { .cfg = cfg, .ini = &ini };

	ini_run(&ini, text, strlen(text), &tops, &t);
	tunnel_end(&t);
	if (!t.proxy_line && !cfg->has_proxy)
		tfail(&t, -1, "missing [proxy] section with url = http://user:pass@host:port");
	if (t.proxy_line && !t.seen[0])
		tfail(&t, t.proxy_line, "[proxy] has no url");
	return ini_error(&ini, name, err, errcap);
}

const char *tunnel_config_load(const char *path, struct tunnel_config *cfg, char *err, size_t errcap)
{
	char *text;
	size_t len;

	if (ini_read_file(path, TUNNEL_FILE_MAX, &text, &len, err, errcap))
		return err;
	const char *result = len != strlen(text) ? (snprintf(err, errcap, "%s: NUL byte in file", path), err)
			     : tunnel_config_load_string(text, path, cfg, err, errcap);
	free(text);
	return result;
}
