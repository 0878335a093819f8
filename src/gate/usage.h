/* usage.h: key usage telemetry off the request path. Each worker counts requests per key,
 * client address and hour in its own table (no lock); every flush_ms the table is handed to a
 * writer thread with its own store connection, which writes it in one transaction
 * (store_usage_write). So a key costs at most one write per worker per flush interval,
 * whatever the request rate, and a slow or unreachable database never delays a request (a
 * batch that cannot be written is dropped and counted, the failure logged once). */
#ifndef IPLOCK_GATE_USAGE_H
#define IPLOCK_GATE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

struct gate_usage;

/* Opens the store at db for writing and starts the writer thread. 0 or -errno. */
int gate_usage_new(const char *db, unsigned flush_ms, struct gate_usage **out);
/* Counts one decision (request path: a table update, a trylock at most once per flush);
 * would_refuse: allowed by a report-only allowlist the client is outside of. */
void gate_usage_note(struct gate_usage *u, const char *key_id, const char *client,
		     bool allowed, bool would_refuse, int64_t now_s, uint64_t now_ms);
/* Writes what is left and stops the thread. */
void gate_usage_free(struct gate_usage *u);

#endif
