/* log.c: stderr diagnostics and JSON lines. */
#include "core/log.h"
#include "core/secret.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_verbosity = LOG_INFO;

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if ((int)level > log_verbosity)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ iplock[%d] %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)getpid(), names[level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2));
	/* a message may quote user input (a header, an argument): never let a key through */
	len = (size_t)n + secret_redact(line + n, len - (size_t)n);
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) == -1) {
		/* nowhere left to report it */
	}
}

size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			esc[k++] = '\\';
			esc[k++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			/* control and non-ASCII bytes are escaped: logs stay valid JSON whatever came in */
			esc[k++] = '\\'; esc[k++] = 'u'; esc[k++] = '0'; esc[k++] = '0';
			esc[k++] = hex[c >> 4]; esc[k++] = hex[c & 15];
		} else {
			esc[k++] = (char)c;
		}
		if (o + k > cap)
			break;
		memcpy(out + o, esc, k);
		o += k;
	}
	return o;
}

#define JLINE_RESERVE 32   /* room kept for the closing ',"truncated":true}\n' */

static void jline_raw(struct jline *j, const char *s, size_t n)
{
	if (j->overflow || j->len + n > sizeof(j->buf) - JLINE_RESERVE) {
		j->overflow = 1;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void jline_key(struct jline *j, const char *key)
{
	if (j->nfields++)
		jline_raw(j, ",", 1);
	jline_raw(j, "\"", 1);
	jline_raw(j, key, strlen(key));
	jline_raw(j, "\":", 2);
}

void jline_begin(struct jline *j)
{
	j->len = 0;
	j->overflow = 0;
	j->nfields = 0;
	jline_raw(j, "{", 1);
}

void jline_strn(struct jline *j, const char *key, const char *val, size_t n)
{
	size_t save = j->len;
	int savef = j->nfields;

	jline_key(j, key);
	if (!val) {
		jline_raw(j, "null", 4);
		return;
	}
	jline_raw(j, "\"", 1);
	if (!j->overflow) {
		/* fields carry request data (paths, names): keys in them are masked */
		char clean[sizeof(j->buf)];
		size_t cn = n < sizeof(clean) ? n : sizeof(clean);
		memcpy(clean, val, cn);
		cn = secret_redact(clean, cn);
		size_t room = sizeof(j->buf) - JLINE_RESERVE - j->len;
		size_t w = json_escape(j->buf + j->len, room, clean, cn);
		j->len += w;
		if (w == room && n)
			j->overflow = 1;
	}
	jline_raw(j, "\"", 1);
	if (j->overflow) {
		/* drop the partial field so the line stays well-formed */
		j->len = save;
		j->nfields = savef;
	}
}

void jline_str(struct jline *j, const char *key, const char *val)
{
	jline_strn(j, key, val, val ? strlen(val) : 0);
}

void jline_int(struct jline *j, const char *key, int64_t val)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", (long long)val);

	jline_key(j, key);
	jline_raw(j, num, (size_t)n);
}

void jline_uint(struct jline *j, const char *key, uint64_t val)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)val);

	jline_key(j, key);
	jline_raw(j, num, (size_t)n);
}

void jline_time(struct jline *j, const char *key)
{
	struct timespec ts;
	struct tm tm;
	char t[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000);
	jline_strn(j, key, t, (size_t)n);
}

void jline_end(struct jline *j)
{
	if (j->overflow) {
		static const char tail[] = ",\"truncated\":true}\n";
		memcpy(j->buf + j->len, tail, sizeof(tail) - 1);
		j->len += sizeof(tail) - 1;
		return;
	}
	memcpy(j->buf + j->len, "}\n", 2);
	j->len += 2;
}

int jline_write(const struct jline *j, int fd)
{
	ssize_t n;

	do
		n = write(fd, j->buf, j->len);
	while (n == -1 && errno == EINTR);
	return n == -1 ? -errno : 0;
}
