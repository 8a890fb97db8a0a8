/* Partition claims: the epoch under which this instance owns each assigned partition (fencing,
 * see migrations/0006) and where its consumption would resume from PostgreSQL's point of view.
 * Pure bookkeeping, no I/O. */
#ifndef SOLARX_CLAIMS_H
#define SOLARX_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The epoch of a partition assigned while its claim could not be made (PostgreSQL down): no
 * flush can store its offset until claims_set gives it a real one (claims start at 1). */
#define CLAIMS_PENDING 0
/* No claim at all: the partition is not ours. */
#define CLAIMS_NONE (-1)

struct claims;

/* An empty set; NULL when out of memory. */
struct claims *claims_new(void);
void claims_destroy(struct claims *c);

/* Owns (kind, partition) under epoch (CLAIMS_PENDING: not yet claimed); resume is the offset
 * PostgreSQL stores for it (-1: none). Replaces an earlier claim of the partition. Returns false
 * when out of memory. */
bool claims_set(struct claims *c, int kind, int32_t partition, int64_t epoch, int64_t resume)
    __attribute__((warn_unused_result));
/* Gives the partition up (revoked or lost); unknown partitions are ignored. */
void claims_remove(struct claims *c, int kind, int32_t partition);

/* The epoch the partition is owned under, CLAIMS_PENDING, or CLAIMS_NONE. */
int64_t claims_epoch(const struct claims *c, int kind, int32_t partition);
/* Where a replay of the partition would start (see claims_note_*), -1 when unknown or unclaimed. */
int64_t claims_resume(const struct claims *c, int kind, int32_t partition);
/* How many partitions wait for their claim (CLAIMS_PENDING). */
size_t claims_pending(const struct claims *c);
size_t claims_count(const struct claims *c);

/* A message at offset was consumed: when nothing is stored for the partition yet, the first such
 * offset is where a replay of what was consumed must start. */
void claims_note_consumed(struct claims *c, int kind, int32_t partition, int64_t offset);
/* A flush stored next_offset for the partition: resume moves there (never backwards). */
void claims_note_stored(struct claims *c, int kind, int32_t partition, int64_t next_offset);

/* Calls fn for every claim (in no particular order); fn must not change c. */
void claims_each(const struct claims *c,
                 void (*fn)(void *ctx, int kind, int32_t partition, int64_t epoch, int64_t resume),
                 void *ctx);

#endif
