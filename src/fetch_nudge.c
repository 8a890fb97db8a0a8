/* The positions and the timing of kafka.c's fetcher nudge (fetch_nudge.h). */
#include "solarx/fetch_nudge.h"

#include <stdlib.h>
#include <string.h>

void fetch_nudge_init(struct fetch_nudge *fn, bool enabled, size_t queued_min, size_t turn_take)
{
    memset(fn, 0, sizeof(*fn));
    fn->enabled = enabled;
    fn->full_at = queued_min > turn_take ? queued_min - turn_take : 1;
}

void fetch_nudge_free(struct fetch_nudge *fn)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        free(fn->kind[k].next);
    memset(fn->kind, 0, sizeof(fn->kind));
}

void fetch_nudge_saw_queue(struct fetch_nudge *fn, size_t queue_length)
{
    if (fn->enabled && queue_length >= fn->full_at)
        fn->queue_was_full = true;
}

/* The partition's slot, grown as partitions appear; NULL when memory runs out (that partition
 * is then simply not sought: the seek of any other one wakes the same broker thread). */
static int64_t *position_slot(struct fetch_partitions *p, int32_t partition)
{
    if (partition >= p->count) {
        int count = partition + 1;
        int64_t *next = realloc(p->next, (size_t)count * sizeof(*next));
        if (!next)
            return NULL;
        for (int i = p->count; i < count; i++)
            next[i] = -1;
        p->next = next;
        p->count = count;
    }
    return &p->next[partition];
}

void fetch_nudge_consumed(struct fetch_nudge *fn, enum reading_kind kind, int32_t partition,
                          int64_t offset)
{
    if (!fn->enabled || partition < 0 || offset < 0)
        return;
    int64_t *next = position_slot(&fn->kind[kind], partition);
    if (next)
        *next = offset + 1;
}

void fetch_nudge_forget(struct fetch_nudge *fn, int kind, int32_t partition)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        struct fetch_partitions *p = &fn->kind[k];
        for (int i = 0; i < p->count; i++)
            if (kind < 0 || (k == kind && i == partition))
                p->next[i] = -1;
    }
    fn->queue_was_full = false;
}

static bool any_position(const struct fetch_nudge *fn)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        for (int i = 0; i < fn->kind[k].count; i++)
            if (fn->kind[k].next[i] >= 0)
                return true;
    return false;
}

bool fetch_nudge_due(struct fetch_nudge *fn)
{
    if (!fn->queue_was_full)
        return false;
    fn->queue_was_full = false;
    if (!any_position(fn))
        return false;
    fn->nudges++;
    return true;
}

void fetch_nudge_each(const struct fetch_nudge *fn,
                      void (*add)(void *ctx, enum reading_kind kind, int32_t partition,
                                  int64_t next),
                      void *ctx)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        for (int i = 0; i < fn->kind[k].count; i++)
            if (fn->kind[k].next[i] >= 0)
                add(ctx, (enum reading_kind)k, i, fn->kind[k].next[i]);
}
