/* Batches: readings grouped by window, dead letters and offsets awaiting one transaction. */
#include "solarx/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    return q;
}

static void *xmemdup(const void *p, size_t len)
{
    char *q = xrealloc(NULL, len + 1);
    if (len)
        memcpy(q, p, len);
    q[len] = '\0';
    return q;
}

struct batch *batch_new(int32_t window_seconds, const struct clock_zone *zone)
{
    struct batch *b = xrealloc(NULL, sizeof(*b));
    *b = (struct batch){.window_seconds = window_seconds, .zone = zone};
    return b;
}

void batch_clear(struct batch *b)
{
    struct batch_window *w, *wtmp;
    HASH_ITER(hh, b->windows, w, wtmp)
    {
        HASH_DEL(b->windows, w);
        free(w->items);
        free(w);
    }
    for (size_t i = 0; i < b->dead_count; i++) {
        free(b->dead[i].key);
        free(b->dead[i].payload);
        free(b->dead[i].error);
        free(b->dead[i].source);
    }
    b->dead_count = 0;
    struct batch_offset *o, *otmp;
    HASH_ITER(hh, b->offsets, o, otmp)
    {
        HASH_DEL(b->offsets, o);
        free(o);
    }
    b->window_count = b->reading_count = b->offset_count = 0;
}

void batch_destroy(struct batch *b)
{
    if (!b)
        return;
    batch_clear(b);
    free(b->dead);
    free(b->source);
    free(b);
}

bool batch_is_empty(const struct batch *b)
{
    return b->reading_count == 0 && b->dead_count == 0 && b->offset_count == 0;
}

static struct batch_window *window_for(struct batch *b, const struct window_key *key)
{
    struct batch_window *w;
    HASH_FIND(hh, b->windows, key, sizeof(*key), w);
    if (!w) {
        w = xrealloc(NULL, sizeof(*w));
        memset(w, 0, sizeof(*w));
        w->key = *key;
        HASH_ADD(hh, b->windows, key, sizeof(w->key), w);
        b->window_count++;
    }
    return w;
}

static void window_push(struct batch_window *w, const struct batch_reading *item)
{
    if (w->count == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->items = xrealloc(w->items, w->cap * sizeof(*w->items));
    }
    w->items[w->count++] = *item;
}

void batch_add_reading(struct batch *b, const struct reading *r, int32_t partition, int64_t offset)
{
    int64_t start = clock_window_start(b->zone, r->ts, b->window_seconds);
    /* A panel's window is the panel's alone (the fact's key): home_id 0 in the key. */
    int32_t key_home = r->kind == READING_SOLAR ? 0 : r->home_id;
    struct window_key key = window_key_make(r->kind, key_home, r->device_id, start);
    struct batch_reading item = {.r = *r, .partition = partition, .offset = offset};
    window_push(window_for(b, &key), &item);
    b->reading_count++;
}

void batch_set_source(struct batch *b, const char *source)
{
    free(b->source);
    b->source = source ? xmemdup(source, strlen(source)) : NULL;
}

void batch_add_dead_letter(struct batch *b, enum reading_kind kind, int32_t partition,
                           int64_t offset, const void *key, size_t key_len, const void *payload,
                           size_t payload_len, const char *reason, const char *error)
{
    if (b->dead_count == b->dead_cap) {
        b->dead_cap = b->dead_cap ? 2 * b->dead_cap : 16;
        b->dead = xrealloc(b->dead, b->dead_cap * sizeof(*b->dead));
    }
    struct batch_dead_letter *d = &b->dead[b->dead_count++];
    *d = (struct batch_dead_letter){
        .kind = kind,
        .partition = partition,
        .offset = offset,
        .key = key ? xmemdup(key, key_len) : NULL,
        .key_len = key ? key_len : 0,
        .payload = xmemdup(payload, payload_len),
        .payload_len = payload_len,
        .error = xmemdup(error, strlen(error)),
        .source = b->source ? xmemdup(b->source, strlen(b->source)) : NULL,
    };
    /* The reason may quote bytes of a broken payload: keep it printable ASCII, so it is always
     * valid text for PostgreSQL. */
    for (char *p = d->error; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

static void note_next_offset(struct batch *b, int32_t kind, int32_t partition, int64_t next)
{
    struct batch_offset probe, *o;
    memset(&probe, 0, sizeof(probe));
    probe.id.kind = kind;
    probe.id.partition = partition;
    HASH_FIND(hh, b->offsets, &probe.id, sizeof(probe.id), o);
    if (!o) {
        o = xrealloc(NULL, sizeof(*o));
        *o = probe;
        o->next_offset = next;
        HASH_ADD(hh, b->offsets, id, sizeof(o->id), o);
        b->offset_count++;
    } else if (next > o->next_offset) {
        o->next_offset = next;
    }
}

void batch_note_offset(struct batch *b, enum reading_kind kind, int32_t partition, int64_t offset)
{
    note_next_offset(b, (int32_t)kind, partition, offset + 1);
}

static int compare_window_ptr(const void *a, const void *b)
{
    const struct batch_window *const *x = a, *const *y = b;
    return window_key_compare(&(*x)->key, &(*y)->key);
}

struct batch_window **batch_sorted_windows(const struct batch *b)
{
    if (b->window_count == 0)
        return NULL;
    struct batch_window **list = xrealloc(NULL, b->window_count * sizeof(*list));
    size_t n = 0;
    for (struct batch_window *w = b->windows; w; w = w->hh.next)
        list[n++] = w;
    qsort(list, n, sizeof(*list), compare_window_ptr);
    return list;
}

long batch_find_window(struct batch_window *const *windows, size_t n, const struct window_key *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = window_key_compare(&windows[mid]->key, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void batch_absorb(struct batch *dst, struct batch *src)
{
    struct batch_window *w, *wtmp;
    HASH_ITER(hh, src->windows, w, wtmp)
    {
        struct batch_window *into = window_for(dst, &w->key);
        for (size_t i = 0; i < w->count; i++)
            window_push(into, &w->items[i]);
        dst->reading_count += w->count;
    }
    char *dst_source = dst->source;
    for (size_t i = 0; i < src->dead_count; i++) {
        struct batch_dead_letter *d = &src->dead[i];
        dst->source = d->source; /* borrowed for the copy */
        batch_add_dead_letter(dst, d->kind, d->partition, d->offset, d->key, d->key_len, d->payload,
                              d->payload_len, d->reason, d->error);
    }
    dst->source = dst_source;
    struct batch_offset *o;
    for (o = src->offsets; o; o = o->hh.next)
        note_next_offset(dst, o->id.kind, o->id.partition, o->next_offset);
    batch_clear(src);
}
