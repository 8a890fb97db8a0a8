/* The window cache (window_cache.h): a uthash table whose application order is the order of
 * publication, so the least recently published entry is always the first one. */
#include "solarx/window_cache.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct cache_entry {
    struct window_cache_row row;
    UT_hash_handle hh;
};

struct window_cache {
    struct cache_entry *entries; /* uthash by row.state.key; oldest publication first */
    size_t limit;
};

struct window_cache *window_cache_new(size_t limit)
{
    struct window_cache *c = calloc(1, sizeof(*c));
    if (c)
        c->limit = limit;
    return c;
}

void window_cache_clear(struct window_cache *c)
{
    struct cache_entry *e, *tmp;
    HASH_ITER(hh, c->entries, e, tmp)
    {
        HASH_DEL(c->entries, e);
        free(e);
    }
}

void window_cache_free(struct window_cache *c)
{
    if (!c)
        return;
    window_cache_clear(c);
    free(c);
}

static struct cache_entry *find(const struct window_cache *c, const struct window_key *key)
{
    struct cache_entry *e = NULL;
    HASH_FIND(hh, c->entries, key, sizeof(*key), e);
    return e;
}

const struct window_cache_row *window_cache_get(const struct window_cache *c,
                                                const struct window_key *key)
{
    struct cache_entry *e = find(c, key);
    return e ? &e->row : NULL;
}

void window_cache_forget(struct window_cache *c, const struct window_key *key)
{
    struct cache_entry *e = find(c, key);
    if (e) {
        HASH_DEL(c->entries, e);
        free(e);
    }
}

bool window_cache_publish(struct window_cache *c, const struct window_cache_row *row)
{
    struct cache_entry *e = find(c, &row->state.key);
    if (e)
        HASH_DEL(c->entries, e); /* re-added below: now the most recent */
    if (c->limit == 0) {
        free(e);
        return true;
    }
    if (!e && !(e = malloc(sizeof(*e))))
        return false;
    e->row = *row;
    HASH_ADD(hh, c->entries, row.state.key, sizeof(e->row.state.key), e);
    while (HASH_COUNT(c->entries) > c->limit) {
        struct cache_entry *oldest = c->entries;
        HASH_DEL(c->entries, oldest);
        free(oldest);
    }
    return true;
}

size_t window_cache_count(const struct window_cache *c)
{
    return HASH_COUNT(c->entries);
}

size_t window_cache_limit(const struct window_cache *c)
{
    return c->limit;
}

size_t window_cache_entry_bytes(void)
{
    /* The entry, its bucket share (uthash keeps load <= 10 per bucket, 2x growth; count one
     * bucket per entry as the upper bound) and malloc's header. */
    return sizeof(struct cache_entry) + 16 + 16;
}
