/* One-shot backfills that exit at the end: `ingest` (topic dump files, one JSON per line as
 * kafka-console-consumer writes them) and `replay` (a range of a topic's offsets, by manual
 * assignment, without joining or committing for the service's consumer group). Both write
 * through the same flush transaction as the service, so replaying is idempotent (P2). */
#ifndef SOLARX_BACKFILL_H
#define SOLARX_BACKFILL_H

#include <stddef.h>
#include <stdint.h>

#include "solarx/config.h"

/* What a backfill did. */
struct backfill_result {
    uint64_t messages;
    uint64_t readings;
    uint64_t merged;
    uint64_t duplicates;
    uint64_t dead_letters;
    uint64_t flushes;
};

/* Ingests the files. The topic of each is `topic` (a [topics] name or home/solar/battery), or,
 * when NULL, its file name less ".jsonl"/".json"/".txt", which must be one of the [topics].
 * Dead letters get partition -1 and the line number as offset. Returns 0, or -1 with errstr
 * (a file that cannot be read, an unknown topic, PostgreSQL failing). */
int backfill_ingest(const struct config *cfg, char *const *files, size_t file_count,
                    const char *topic, struct backfill_result *result, char *errstr,
                    size_t errstr_size);

enum backfill_from { BACKFILL_FROM_BEGINNING, BACKFILL_FROM_OFFSET, BACKFILL_FROM_TIMESTAMP };

struct backfill_replay_options {
    enum backfill_from from;
    int64_t offset;            /* BACKFILL_FROM_OFFSET */
    int64_t timestamp_ms;      /* BACKFILL_FROM_TIMESTAMP: Kafka message time, ms since the epoch */
    const char *topic;         /* one topic (name or home/solar/battery), or NULL for all three */
    const int32_t *partitions; /* only these, or NULL for all */
    size_t partition_count;
};

/* Replays the chosen partitions from the chosen start up to their high watermarks as they were
 * when it started, then exits. Stores no offsets and commits nothing. Returns 0 or -1. */
int backfill_replay(const struct config *cfg, const struct backfill_replay_options *opt,
                    struct backfill_result *result, char *errstr, size_t errstr_size);

#endif
