/* When to wake librdkafka 2.0's fetcher, and where to: the pure half of kafka.c's nudge.
 *
 * librdkafka 2.0 leaves a partition out of its fetches while the consumer queue holds
 * queued.min.messages, and its broker thread looks again only when something else wakes it (in
 * a catch-up, about once a second), while the service drains the queue in a fraction of that.
 * So once a drain has seen the queue at the threshold and a later one finds it empty, the
 * consumer seeks every partition it consumed from to the next offset it has not consumed: the
 * seek wakes the broker thread and fetches exactly from there. This records those offsets and
 * says when a nudge is due. librdkafka 2.1 and later wait by fetch.queue.backoff.ms instead: a
 * disabled fetch_nudge is never due.
 *
 * The fetcher counts the queue while the consumer drains it, so a drain turn that starts after
 * the fetcher stopped may find fewer than queued.min.messages: the turn in progress took some
 * meanwhile. It took at most what one turn takes (turn_take), so a queue of queued_min -
 * turn_take at the start of a turn already counts as full. Counting from queued_min alone missed
 * a stop in a few of every ~50, and each cost the catch-up the fetcher's own one-second wait. */
#ifndef SOLARX_FETCH_NUDGE_H
#define SOLARX_FETCH_NUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/reading.h"

/* The next offset not consumed, per partition of one topic (-1: unknown). */
struct fetch_partitions {
    int64_t *next;
    int count;
};

struct fetch_nudge {
    bool enabled;
    size_t full_at;      /* a queue this long at a turn's start may have stopped the fetcher */
    bool queue_was_full; /* seen at full_at since the last nudge or forget */
    unsigned long long nudges;
    struct fetch_partitions kind[READING_KIND_COUNT];
};

/* queued_min: queued.min.messages in use; turn_take: the most queue entries one drain turn
 * takes (messages and the events it serves). */
void fetch_nudge_init(struct fetch_nudge *fn, bool enabled, size_t queued_min, size_t turn_take);
void fetch_nudge_free(struct fetch_nudge *fn);

/* The queue's length at the start of a drain. */
void fetch_nudge_saw_queue(struct fetch_nudge *fn, size_t queue_length);

/* A message of kind's partition at offset was consumed. */
void fetch_nudge_consumed(struct fetch_nudge *fn, enum reading_kind kind, int32_t partition,
                          int64_t offset);

/* Forgets the partition's position (kind < 0: every position) and any full queue seen: after a
 * rebalance or a seek of the owner's, the positions are learned again from what is consumed. */
void fetch_nudge_forget(struct fetch_nudge *fn, int kind, int32_t partition);

/* The queue was found empty: true when the fetcher should be woken now (a full queue was seen
 * since the last nudge and a position is known); then counts the nudge and clears the mark. */
bool fetch_nudge_due(struct fetch_nudge *fn);

/* Calls add for every known position (kind, partition, next offset not consumed). */
void fetch_nudge_each(const struct fetch_nudge *fn,
                      void (*add)(void *ctx, enum reading_kind kind, int32_t partition,
                                  int64_t next),
                      void *ctx);

#endif
