/* thread.h: starting a background thread (the gate's usage writer, the proxy's usage flusher,
 * a store feed) that never takes a signal: signals belong to the thread running the server
 * loop. May include: libc and pthreads only (core is the lowest layer). */
#ifndef IPLOCK_CORE_THREAD_H
#define IPLOCK_CORE_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread; the caller's mask is unchanged.
 * 0 or -errno. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
