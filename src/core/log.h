/* log.h: diagnostics on stderr, and one JSON object per line for access logs. */
#ifndef IPLOCK_LOG_H
#define IPLOCK_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_verbosity;   /* messages above this level are dropped; default LOG_INFO */

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_verbosity >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/* A JSON line built in a fixed buffer: fields are appended, overflow truncates the line cleanly
 * (the line stays valid JSON and says "truncated": true). */
struct jline {
	char buf[2048];
	size_t len;
	int overflow;
	int nfields;
};

void jline_begin(struct jline *j);
void jline_str(struct jline *j, const char *key, const char *val);          /* NULL -> null */
void jline_strn(struct jline *j, const char *key, const char *val, size_t n);
void jline_int(struct jline *j, const char *key, int64_t val);
void jline_uint(struct jline *j, const char *key, uint64_t val);
void jline_time(struct jline *j, const char *key);   /* now, RFC 3339 UTC with milliseconds */
void jline_end(struct jline *j);                      /* closes the object and adds '\n' */
int jline_write(const struct jline *j, int fd);       /* one write(): lines never interleave */

/* JSON string escaping into out (quotes not added); returns bytes written, stops at cap. */
size_t json_escape(char *out, size_t cap, const char *s, size_t n);

#endif
