/* bug.c: the report behind BUG_ON. */
#include "core/bug.h"

#include <stdlib.h>

#include "core/log.h"

bool bug_report(atomic_bool *logged, const char *file, int line, const char *cond)
{
	if (!atomic_exchange(logged, true))
		log_error("BUG at %s:%d: %s (please report it; this request fails, the process goes on)",
			  file, line, cond);
#ifdef IPLOCK_DEBUG
	abort();
#endif
	return true;
}
