/* Partition claims: a hash of (kind, partition) -> epoch and resume offset. */
#include "solarx/claims.h"

#include <stdlib.h>
#include <uthash.h>

struct claim {
    struct {
        int32_t kind;
        int32_t partition;
    } id;
    int64_t epoch;
    int64_t resume; /* -1: unknown */
    UT_hash_handle hh;
};

struct claims {
    struct claim *by_id;
    size_t pending;
};

struct claims *claims_new(void)
{
    return calloc(1, sizeof(struct claims));
}

static struct claim *find(const struct claims *c, int kind, int32_t partition)
{
    struct claim key = {0}, *found = NULL;
    key.id.kind = kind;
    key.id.partition = partition;
    HASH_FIND(hh, c->by_id, &key.id, sizeof(key.id), found);
    return found;
}

void claims_destroy(struct claims *c)
{
    if (!c)
        return;
    struct claim *cl, *tmp;
    HASH_ITER(hh, c->by_id, cl, tmp)
    {
        HASH_DEL(c->by_id, cl);
        free(cl);
    }
    free(c);
}

bool claims_set(struct claims *c, int kind, int32_t partition, int64_t epoch, int64_t resume)
{
    struct claim *cl = find(c, kind, partition);
    if (!cl) {
        cl = calloc(1, sizeof(*cl));
        if (!cl)
            return false;
        cl->id.kind = kind;
        cl->id.partition = partition;
        cl->epoch = CLAIMS_NONE;
        HASH_ADD(hh, c->by_id, id, sizeof(cl->id), cl);
    }
    if (cl->epoch == CLAIMS_PENDING)
        c->pending--;
    if (epoch == CLAIMS_PENDING)
        c->pending++;
    cl->epoch = epoch;
    cl->resume = resume;
    return true;
}

void claims_remove(struct claims *c, int kind, int32_t partition)
{
    struct claim *cl = find(c, kind, partition);
    if (!cl)
        return;
    if (cl->epoch == CLAIMS_PENDING)
        c->pending--;
    HASH_DEL(c->by_id, cl);
    free(cl);
}

int64_t claims_epoch(const struct claims *c, int kind, int32_t partition)
{
    const struct claim *cl = find(c, kind, partition);
    return cl ? cl->epoch : CLAIMS_NONE;
}

int64_t claims_resume(const struct claims *c, int kind, int32_t partition)
{
    const struct claim *cl = find(c, kind, partition);
    return cl ? cl->resume : -1;
}

size_t claims_pending(const struct claims *c)
{
    return c->pending;
}

size_t claims_count(const struct claims *c)
{
    return HASH_COUNT(c->by_id);
}

void claims_note_consumed(struct claims *c, int kind, int32_t partition, int64_t offset)
{
    struct claim *cl = find(c, kind, partition);
    if (cl && cl->resume < 0)
        cl->resume = offset;
}

void claims_note_stored(struct claims *c, int kind, int32_t partition, int64_t next_offset)
{
    struct claim *cl = find(c, kind, partition);
    if (cl && next_offset > cl->resume)
        cl->resume = next_offset;
}

void claims_each(const struct claims *c,
                 void (*fn)(void *ctx, int kind, int32_t partition, int64_t epoch, int64_t resume),
                 void *ctx)
{
    for (const struct claim *cl = c->by_id; cl; cl = cl->hh.next)
        fn(ctx, cl->id.kind, cl->id.partition, cl->epoch, cl->resume);
}
