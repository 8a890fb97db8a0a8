/* `solarx-stream run`: the long-running service. Consumes the topics, batches readings by
 * window, flushes each batch in one PostgreSQL transaction, commits offsets to Kafka after it. */
#ifndef SOLARX_SERVICE_H
#define SOLARX_SERVICE_H

#include <stddef.h>

#include "solarx/config.h"

/* Runs until SIGTERM/SIGINT (graceful: final flush and commit; a second signal exits at once).
 * Takes ownership of cfg (reloads on SIGHUP replace parts of it). Returns 0 on a clean stop,
 * 1 after a fast exit or a fatal fault, with errstr set when start-up failed. */
int service_run(struct config *cfg, char *errstr, size_t errstr_size);

#endif
