/* Batches: readings grouped by window, dead letters and offsets awaiting one transaction. */
#include "solarx/batch.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/fixed.h"

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
    b->bytes = 0;
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

size_t batch_bytes(const struct batch *b)
{
    return b->bytes;
}

size_t batch_window_count(const struct batch *b)
{
    return b->window_count;
}

bool batch_is_full(const struct batch *b, size_t max_readings, size_t max_bytes, size_t max_windows)
{
    return batch_size(b) >= max_readings || b->bytes >= max_bytes || b->window_count >= max_windows;
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
    b->bytes += BATCH_READING_BYTES;
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

/* Appends a dead letter keeping payload[0..keep); whole describes the full payload. */
static struct batch_dead_letter *add_dead(struct batch *b, enum reading_kind kind,
                                          int32_t partition, int64_t offset, const void *key,
                                          size_t key_len, const void *payload, size_t keep,
                                          const char *reason, const char *error)
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
        .payload = xmemdup(payload, keep),
        .payload_len = keep,
        .payload_bytes = keep,
        .error = xmemdup(error, strlen(error)),
        .source = b->source ? xmemdup(b->source, strlen(b->source)) : NULL,
    };
    /* The reason may quote bytes of a broken payload: keep it printable ASCII, so it is always
     * valid text for PostgreSQL. */
    for (char *p = d->error; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
    b->bytes += d->key_len + d->payload_len + strlen(d->error);
    return d;
}

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        fputs("solarx-stream: SHA-256 failed\n", stderr);
        abort();
    }
}

void batch_add_dead_letter(struct batch *b, enum reading_kind kind, int32_t partition,
                           int64_t offset, const void *key, size_t key_len, const void *payload,
                           size_t payload_len, const char *reason, const char *error)
{
    batch_add_truncated_dead_letter(b, kind, partition, offset, key, key_len, payload, payload_len,
                                    payload_len, reason, error);
}

void batch_add_truncated_dead_letter(struct batch *b, enum reading_kind kind, int32_t partition,
                                     int64_t offset, const void *key, size_t key_len,
                                     const void *payload, size_t payload_len, size_t keep_bytes,
                                     const char *reason, const char *error)
{
    size_t keep = keep_bytes < payload_len ? keep_bytes : payload_len;
    struct batch_dead_letter *d =
        add_dead(b, kind, partition, offset, key, key_len, payload, keep, reason, error);
    d->payload_bytes = payload_len;
    sha256(payload, payload_len, d->payload_sha256);
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

/* Copies dead letter d (from another batch) into b, source and digest included. */
static void copy_dead(struct batch *b, const struct batch_dead_letter *d, const char *reason,
                      const char *error)
{
    char *own_source = b->source;
    b->source = d->source; /* borrowed for the copy */
    struct batch_dead_letter *c = add_dead(b, d->kind, d->partition, d->offset, d->key, d->key_len,
                                           d->payload, d->payload_len, reason, error);
    b->source = own_source;
    c->payload_bytes = d->payload_bytes;
    memcpy(c->payload_sha256, d->payload_sha256, sizeof(c->payload_sha256));
}

void batch_absorb(struct batch *dst, struct batch *src)
{
    for (size_t i = 0; i < src->reading_count; i++)
        push(dst, window_for(dst, &src->owner[i]->key), &src->arrived[i]);
    for (size_t i = 0; i < src->dead_count; i++)
        copy_dead(dst, &src->dead[i], src->dead[i].reason, src->dead[i].error);
    struct batch_offset *o;
    for (o = src->offsets; o; o = o->hh.next)
        note_next_offset(dst, o->id.kind, o->id.partition, o->next_offset);
    batch_clear(src);
}

/* ---- isolating the messages PostgreSQL rejects ---------------------------------------------- */

/* A consumed message: what batch_split orders and halves. */
struct message_id {
    int32_t kind;
    int32_t partition;
    int64_t offset;
};

static int compare_message_id(const void *a, const void *b)
{
    const struct message_id *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static struct message_id reading_message(const struct batch_reading *r)
{
    return (struct message_id){(int32_t)r->r.kind, r->partition, r->offset};
}

static struct message_id dead_message(const struct batch_dead_letter *d)
{
    return (struct message_id){(int32_t)d->kind, d->partition, d->offset};
}

/* The distinct messages of b, sorted; *n_out of them. Caller frees. */
static struct message_id *sorted_messages(const struct batch *b, size_t *n_out)
{
    size_t n = b->reading_count + b->dead_count;
    struct message_id *ids = xrealloc(NULL, (n ? n : 1) * sizeof(*ids));
    for (size_t i = 0; i < b->reading_count; i++)
        ids[i] = reading_message(&b->arrived[i]);
    for (size_t i = 0; i < b->dead_count; i++)
        ids[b->reading_count + i] = dead_message(&b->dead[i]);
    qsort(ids, n, sizeof(*ids), compare_message_id);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || compare_message_id(&ids[unique - 1], &ids[i]) != 0)
            ids[unique++] = ids[i];
    *n_out = unique;
    return ids;
}

size_t batch_message_count(const struct batch *b)
{
    size_t n;
    free(sorted_messages(b, &n));
    return n;
}

static const struct batch_offset *find_offset(const struct batch *b, int32_t kind,
                                              int32_t partition)
{
    struct batch_offset probe, *o;
    memset(&probe, 0, sizeof(probe));
    probe.id.kind = kind;
    probe.id.partition = partition;
    HASH_FIND(hh, b->offsets, &probe.id, sizeof(probe.id), o);
    return o;
}

bool batch_split(const struct batch *src, struct batch *first, struct batch *second)
{
    size_t n;
    struct message_id *ids = sorted_messages(src, &n);
    if (n < 2) {
        free(ids);
        return false;
    }
    const struct message_id pivot = ids[n / 2]; /* the first message of the second half */
    free(ids);
    batch_set_source(first, src->source);
    batch_set_source(second, src->source);
    for (size_t i = 0; i < src->reading_count; i++) {
        const struct batch_reading *r = &src->arrived[i];
        struct message_id id = reading_message(r);
        struct batch *half = compare_message_id(&id, &pivot) < 0 ? first : second;
        push(half, window_for(half, &src->owner[i]->key), r);
        note_next_offset(half, id.kind, id.partition, id.offset + 1);
    }
    for (size_t i = 0; i < src->dead_count; i++) {
        const struct batch_dead_letter *d = &src->dead[i];
        struct message_id id = dead_message(d);
        struct batch *half = compare_message_id(&id, &pivot) < 0 ? first : second;
        copy_dead(half, d, d->reason, d->error);
        note_next_offset(half, id.kind, id.partition, id.offset + 1);
    }
    /* src's next_offset covers offsets no message of the batch holds (gaps, the end): it goes
     * with the half that holds the partition's last message, or to first when none does. */
    for (const struct batch_offset *o = src->offsets; o; o = o->hh.next) {
        struct batch *half = find_offset(second, o->id.kind, o->id.partition) ? second : first;
        note_next_offset(half, o->id.kind, o->id.partition, o->next_offset);
    }
    return true;
}

static void put_fixed(FILE *out, const char *name, fixed_t v)
{
    char text[FIXED_TEXT_SIZE];
    fprintf(out, "\"%s\": %s", name, fixed_format(v, text, sizeof(text)));
}

/* One Solar-X message of readings[0..n) (one message's readings: same kind, home and ts). */
static char *encode_message(const struct batch_reading *const *readings, size_t n, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    const struct reading *r0 = &readings[0]->r;
    char ts[40];
    clock_format_utc(r0->ts, ts, sizeof(ts));
    fprintf(out, "{\"time_stamp\": \"%s\", \"home_id\": %d", ts, (int)r0->home_id);
    if (r0->kind == READING_BATTERY) {
        fputs(", \"batteries\": {", out);
        for (size_t i = 0; i < n; i++) {
            const struct reading *r = &readings[i]->r;
            fprintf(out, "%s\"battery_%d\": {", i ? ", " : "", (int)r->device_id);
            put_fixed(out, "capacity_kwh", r->capacity_kwh);
            fputs(", ", out);
            put_fixed(out, "max_charge_speed_w", r->max_charge_speed_w);
            fputs(", ", out);
            put_fixed(out, "current_energy_wh", r->energy_wh);
            fprintf(out, ", \"is_charging\": %d, \"status\": \"%s\", ", r->is_charging ? 1 : 0,
                    reading_status_name(r->status));
            put_fixed(out, "max_output_w", r->max_output_w);
            fputs("}", out);
        }
        fputs("}", out);
    } else {
        if (r0->kind == READING_SOLAR)
            fprintf(out, ", \"panel_id\": %d", (int)r0->device_id);
        fputs(", ", out);
        put_fixed(out, "current_consumption_w", r0->energy_wh);
        fputs(", ", out);
        put_fixed(out, "consumption_accumulated_w", r0->accumulated_wh);
    }
    fputs("}", out);
    fclose(out);
    return text;
}

static int compare_reading_message(const void *a, const void *b)
{
    const struct batch_reading *const *x = a, *const *y = b;
    struct message_id i = reading_message(*x), j = reading_message(*y);
    int c = compare_message_id(&i, &j);
    if (c != 0)
        return c;
    return ((*x)->r.device_id > (*y)->r.device_id) - ((*x)->r.device_id < (*y)->r.device_id);
}

void batch_to_dead_letters(const struct batch *src, struct batch *dst, const char *reason,
                           const char *error)
{
    for (size_t i = 0; i < src->dead_count; i++) {
        const struct batch_dead_letter *d = &src->dead[i];
        char *full = NULL;
        size_t full_len = 0;
        FILE *out = open_memstream(&full, &full_len);
        if (!out) {
            fputs("solarx-stream: out of memory\n", stderr);
            abort();
        }
        fprintf(out, "%s (was %s: %s)", error, d->reason, d->error);
        fclose(out);
        copy_dead(dst, d, reason, full);
        free(full);
    }
    const struct batch_reading **by_message =
        xrealloc(NULL, (src->reading_count ? src->reading_count : 1) * sizeof(*by_message));
    for (size_t i = 0; i < src->reading_count; i++)
        by_message[i] = &src->arrived[i];
    qsort(by_message, src->reading_count, sizeof(*by_message), compare_reading_message);
    for (size_t i = 0; i < src->reading_count;) {
        struct message_id id = reading_message(by_message[i]);
        size_t j = i + 1;
        while (j < src->reading_count) {
            struct message_id next = reading_message(by_message[j]);
            if (compare_message_id(&id, &next) != 0)
                break;
            j++;
        }
        size_t len = 0;
        char *payload = encode_message(by_message + i, j - i, &len);
        char *own_source = dst->source;
        dst->source = src->source; /* borrowed: the dump file the readings came from */
        batch_add_dead_letter(dst, (enum reading_kind)id.kind, id.partition, id.offset, NULL, 0,
                              payload, len, reason, error);
        dst->source = own_source;
        free(payload);
        i = j;
    }
    free(by_message);
    for (const struct batch_offset *o = src->offsets; o; o = o->hh.next)
        note_next_offset(dst, o->id.kind, o->id.partition, o->next_offset);
}
