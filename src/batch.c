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
    free(b->arrived);
    free(b->owner);
    free(b->grouped);
    free(b->sorted);
    free(b);
}

size_t batch_size(const struct batch *b)
{
    return b->reading_count + b->dead_count;
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

static void push(struct batch *b, struct batch_window *w, const struct batch_reading *item)
{
    if (b->reading_count == b->reading_cap) {
        b->reading_cap = b->reading_cap ? 2 * b->reading_cap : 4096;
        b->arrived = xrealloc(b->arrived, b->reading_cap * sizeof(*b->arrived));
        b->owner = xrealloc(b->owner, b->reading_cap * sizeof(*b->owner));
        b->grouped = xrealloc(b->grouped, b->reading_cap * sizeof(*b->grouped));
    }
    b->arrived[b->reading_count] = *item;
    b->owner[b->reading_count++] = w;
    w->count++;
}

void batch_add_reading(struct batch *b, const struct reading *r, int32_t partition, int64_t offset)
{
    int64_t start = clock_window_start(b->zone, r->ts, b->window_seconds);
    /* A panel's window is the panel's alone (the fact's key): home_id 0 in the key. */
    int32_t key_home = r->kind == READING_SOLAR ? 0 : r->home_id;
    struct window_key key = window_key_make(r->kind, key_home, r->device_id, start);
    struct batch_reading item = {.r = *r, .partition = partition, .offset = offset};
    push(b, window_for(b, &key), &item);
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

struct batch_window **batch_sorted_windows(struct batch *b)
{
    if (b->window_count == 0)
        return NULL;
    if (b->sorted_cap < b->window_count) {
        b->sorted_cap = 2 * b->window_count;
        b->sorted = xrealloc(b->sorted, b->sorted_cap * sizeof(*b->sorted));
    }
    size_t n = 0;
    for (struct batch_window *w = b->windows; w; w = w->hh.next)
        b->sorted[n++] = w;
    qsort(b->sorted, n, sizeof(*b->sorted), compare_window_ptr);
    /* Group the readings: each window's slice of `grouped`, filled in arrival order. */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        b->sorted[i]->items = b->grouped + start;
        b->sorted[i]->filled = 0;
        start += b->sorted[i]->count;
    }
    for (size_t i = 0; i < b->reading_count; i++) {
        struct batch_window *w = b->owner[i];
        w->items[w->filled++] = b->arrived[i];
    }
    return b->sorted;
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
    for (size_t i = 0; i < src->reading_count; i++)
        push(dst, window_for(dst, &src->owner[i]->key), &src->arrived[i]);
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
