/* The window cache: the state of recently flushed windows as their fact rows were committed, so
 * that a flush reads stored state from PostgreSQL only for windows it does not hold. Pure (no
 * libpq): flush.c consults it before a flush and publishes into it only after COMMIT.
 *
 * Each entry is one fact row: the window's state, the row's version (0: no row) and, for a solar
 * window, the home the row names. Another writer (a second instance, `replay`) may change a row
 * behind the cache's back: the fact upserts apply only when the row still carries the version
 * the cache holds, and a mismatch makes the flush fail (flush.c forgets the batch's windows, and
 * the retry reads them again). Bounded: at most `limit` entries; publishing beyond it evicts the
 * least recently published window (windows are written in time order, so that is the oldest). */
#ifndef SOLARX_WINDOW_CACHE_H
#define SOLARX_WINDOW_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/window.h"

struct window_cache;

/* One cached fact row. */
struct window_cache_row {
    struct window_state state;
    int64_t version;    /* the fact row's version; 0 when no row exists */
    int32_t solar_home; /* solar windows: the fact row's home_id; 0 otherwise */
};

/* An empty cache of at most limit windows (0: nothing is ever kept). NULL when out of memory. */
struct window_cache *window_cache_new(size_t limit) __attribute__((warn_unused_result));
void window_cache_free(struct window_cache *c);

/* The row cached for key, or NULL. The pointer is valid until the next change of the cache. */
const struct window_cache_row *window_cache_get(const struct window_cache *c,
                                                const struct window_key *key);

/* Keeps row (a copy) under row->state.key, replacing what was there and making it the most
 * recently published; evicts the least recently published rows beyond the limit. Returns
 * false when out of memory (the key is then not cached at all). */
bool window_cache_publish(struct window_cache *c, const struct window_cache_row *row)
    __attribute__((warn_unused_result));

/* Forgets key (nothing when it is not cached). */
void window_cache_forget(struct window_cache *c, const struct window_key *key);

/* Forgets everything. */
void window_cache_clear(struct window_cache *c);

size_t window_cache_count(const struct window_cache *c);
size_t window_cache_limit(const struct window_cache *c);

/* Heap bytes one cached window takes (entry and hash overhead), for the README's sizing. */
size_t window_cache_entry_bytes(void);

#endif
