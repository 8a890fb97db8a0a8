/* `solarx-stream status`: where the service stands -- offsets stored in PostgreSQL against the
 * Kafka high watermarks, lag per partition, and the time of the last flush. */
#ifndef SOLARX_STATUS_H
#define SOLARX_STATUS_H

#include <stdio.h>

#include "solarx/config.h"

/* Writes the report to out: one line per partition, then a summary line
 * "total_lag=N partitions=N last_flush=…". Returns 0, or -1 with errstr when PostgreSQL or
 * Kafka cannot be asked. *total_lag_out gets the summed lag (a partition PostgreSQL has no
 * offset for counts from its low watermark). */
int status_report(const struct config *cfg, FILE *out, long long *total_lag_out, char *errstr,
                  size_t errstr_size);

#endif
