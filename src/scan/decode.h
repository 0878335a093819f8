/* decode.h: the decoders behind encoded-secret scanning: base64 (standard and URL-safe, with or
 * without padding), percent-encoding, and JSON / shell backslash escapes. Each writes at most n
 * bytes (never more than it reads) and never reads past in[n-1]. */
#ifndef IPLOCK_SCAN_DECODE_H
#define IPLOCK_SCAN_DECODE_H

#include <stdbool.h>
#include <stddef.h>

/* Base64 of in[0..n) up to the first byte that is not in either alphabet ('=' ends it too);
 * a trailing group of 2 or 3 characters yields 1 or 2 bytes. Returns the bytes written. */
size_t scan_b64_decode(const unsigned char *in, size_t n, unsigned char *out);

/* %XX (hex, either case) to the byte; everything else copied. */
size_t scan_pct_decode(const unsigned char *in, size_t n, unsigned char *out);

/* One escape at in[0] == '\\': its length (0 = not one we decode) and its byte in *c (code
 * points over 0x7f become 0x80, which is no key character). JSON \\uXXXX, C/shell \\xHH and
 * \\NNN (octal), the JSON/C letters (\\n \\t \\r \\b \\f \\v \\0) and \\ before any other
 * printable character (shell quoting: \\_ is _). */
size_t scan_esc_one(const unsigned char *in, size_t n, unsigned char *c);

/* Every escape in in[0..n) decoded as scan_esc_one does, other bytes copied. */
size_t scan_esc_decode(const unsigned char *in, size_t n, unsigned char *out);

#endif
