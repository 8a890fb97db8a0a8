/* Partition ownership in PostgreSQL (fencing): claiming the partitions Kafka assigned, which
 * bumps their epoch in solarx_meta.consumer_offsets and so fences every earlier owner's flushes
 * (solarx_meta.store_offsets, migrations/0006). */
#ifndef SOLARX_OWNERSHIP_H
#define SOLARX_OWNERSHIP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/claims.h"
#include "solarx/config.h"

/* One partition to claim, and what the claim found. */
struct ownership_partition {
    int kind; /* enum reading_kind: the topic is cfg->topic[kind] */
    int32_t partition;
    int64_t next_offset; /* out: the offset PostgreSQL stores, -1 when none */
    int64_t epoch;       /* out: the epoch it is now owned under */
};

/* Claims parts[0..n) for owner (a label for operators) in group, in one statement on conn (a
 * blocking connection): creates missing rows, increments every epoch, and records the epochs in
 * claims (resume: the stored offset, else what claims already knew). Returns false with errstr,
 * having claimed nothing. */
bool ownership_claim(PGconn *conn, const struct config *cfg, const char *group, const char *owner,
                     struct ownership_partition *parts, size_t n, struct claims *claims,
                     char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

#endif
