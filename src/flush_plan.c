/* The pure rules of a flush (flush_plan.h): locks, merge, raw rows, retention, partition days. */
#include "solarx/flush_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool flush_plan_start(struct flush_plan *p, struct batch_window **windows, size_t n,
                      size_t readings, int32_t window_seconds)
{
    p->windows = windows;
    p->window_count = 0;
    if (n > p->windows_cap) {
        /* An eighth of slack, not double: a state is ~570 bytes and a flush may hold
         * flush_max_windows of them. */
        size_t cap = n + n / 8;
        void *states = realloc(p->states, cap * sizeof(*p->states));
        if (states)
            p->states = states;
        void *homes = realloc(p->solar_home, cap * sizeof(*p->solar_home));
        if (homes)
            p->solar_home = homes;
        void *changed = realloc(p->changed, cap * sizeof(*p->changed));
        if (changed)
            p->changed = changed;
        void *versions = realloc(p->versions, cap * sizeof(*p->versions));
        if (versions)
            p->versions = versions;
        void *cached = realloc(p->cached, cap * sizeof(*p->cached));
        if (cached)
            p->cached = cached;
        if (!states || !homes || !changed || !versions || !cached)
            return false;
        p->windows_cap = cap;
    }
    if (readings > p->accepted_cap) {
        void *accepted = realloc(p->accepted, 2 * readings * sizeof(*p->accepted));
        if (!accepted)
            return false;
        p->accepted = accepted;
        p->accepted_cap = 2 * readings;
    }
    if (n) {
        memset(p->solar_home, 0, n * sizeof(*p->solar_home));
        memset(p->changed, 0, n * sizeof(*p->changed));
        memset(p->versions, 0, n * sizeof(*p->versions));
        memset(p->cached, 0, n * sizeof(*p->cached));
    }
    if (readings)
        memset(p->accepted, 0, readings * sizeof(*p->accepted));
    for (size_t i = 0; i < n; i++)
        window_state_init(&p->states[i], &windows[i]->key, window_seconds);
    p->window_count = n;
    return true;
}

size_t flush_plan_slice_rows(size_t rows)
{
    size_t per = (rows + FLUSH_PLAN_SLICES_MAX - 1) / FLUSH_PLAN_SLICES_MAX;
    return per > FLUSH_PLAN_SLICE_ROWS ? per : FLUSH_PLAN_SLICE_ROWS;
}

void flush_plan_free(struct flush_plan *p)
{
    free(p->states);
    free(p->solar_home);
    free(p->changed);
    free(p->versions);
    free(p->cached);
    free(p->accepted);
    *p = (struct flush_plan){0};
}

static int compare_lock(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

size_t flush_plan_window_locks(const struct flush_plan *p, int64_t *locks)
{
    size_t n = p->window_count;
    for (size_t i = 0; i < n; i++) {
        const struct window_key *k = &p->windows[i]->key;
        locks[i] = (int64_t)(FLUSH_PLAN_LOCK_CLASS + k->kind) << 32 | (uint32_t)(k->start / 60);
    }
    qsort(locks, n, sizeof(*locks), compare_lock);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (distinct == 0 || locks[distinct - 1] != locks[i])
            locks[distinct++] = locks[i];
    return distinct;
}

bool flush_plan_merge(struct flush_plan *p, struct flush_merge_counts *counts,
                      flush_battery_fn on_battery, void *ctx, char *errstr, size_t errstr_size)
{
    size_t flat = 0;
    counts->min_ts = INT64_MAX;
    counts->max_ts = INT64_MIN;
    for (size_t i = 0; i < p->window_count; i++) {
        const struct batch_window *bw = p->windows[i];
        for (size_t j = 0; j < bw->count; j++, flat++) {
            struct reading r = bw->items[j].r;
            if (r.kind == READING_SOLAR) {
                /* A panel's fact row is keyed by the panel; its home is the smallest seen. */
                if (p->solar_home[i] == 0 || r.home_id < p->solar_home[i])
                    p->solar_home[i] = r.home_id;
                r.home_id = 0;
            }
            counts->readings++;
            if (!window_apply(&p->states[i], &r)) {
                counts->duplicates++;
                continue;
            }
            counts->accepted++;
            counts->merged[r.kind]++;
            p->accepted[flat] = true;
            p->changed[i] = true;
            if (r.kind == READING_BATTERY && on_battery &&
                !on_battery(ctx, i, &r, errstr, errstr_size))
                return false;
            if (r.ts < counts->min_ts)
                counts->min_ts = r.ts;
            if (r.ts > counts->max_ts)
                counts->max_ts = r.ts;
        }
    }
    return true;
}

size_t flush_plan_each_raw_row(const struct flush_plan *p, int kind, int64_t horizon,
                               flush_raw_row_fn fn, void *ctx)
{
    struct flush_raw_cursor c;
    flush_raw_cursor_start(&c, kind);
    (void)flush_plan_raw_rows(p, horizon, &c, SIZE_MAX, fn, ctx);
    return c.expired;
}

void flush_raw_cursor_start(struct flush_raw_cursor *c, int kind)
{
    *c = (struct flush_raw_cursor){.kind = kind, .end = SIZE_MAX};
}

void flush_raw_cursor_start_share(struct flush_raw_cursor *c, int kind,
                                  const struct flush_raw_share *share)
{
    *c = (struct flush_raw_cursor){
        .kind = kind, .window = share->first, .end = share->end, .flat = share->first_flat};
}

/* The raw rows of windows[i], whose first reading is accepted[flat]. */
static size_t window_raw_rows(const struct flush_plan *p, size_t i, size_t flat, int64_t horizon)
{
    const struct batch_window *bw = p->windows[i];
    size_t rows = 0;
    for (size_t j = 0; j < bw->count; j++)
        rows += p->accepted[flat + j] && bw->items[j].r.ts >= horizon;
    return rows;
}

struct flush_raw_share flush_plan_whole_share(const struct flush_plan *p, int64_t horizon)
{
    struct flush_raw_share share = {.first = 0, .end = p->window_count};
    size_t flat = 0;
    for (size_t i = 0; i < p->window_count; i++) {
        share.rows += window_raw_rows(p, i, flat, horizon);
        flat += p->windows[i]->count;
    }
    return share;
}

size_t flush_plan_raw_shares(const struct flush_plan *p, int64_t horizon, size_t n,
                             struct flush_raw_share *out)
{
    size_t total = flush_plan_whole_share(p, horizon).rows;
    if (n == 0 || total == 0)
        return 0;
    size_t given = 0, so_far = 0, flat = 0;
    struct flush_raw_share share = {0};
    for (size_t i = 0; i < p->window_count; i++) {
        size_t rows = window_raw_rows(p, i, flat, horizon);
        flat += p->windows[i]->count;
        share.rows += rows;
        so_far += rows;
        bool last = i + 1 == p->window_count;
        /* so_far reached (given + 1) / n of total: the share ends here */
        if (last || (given + 1 < n && so_far * n >= (given + 1) * total)) {
            share.end = i + 1;
            if (share.rows > 0)
                out[given++] = share;
            share = (struct flush_raw_share){.first = i + 1, .first_flat = flat};
        }
    }
    return given;
}

size_t flush_plan_raw_rows(const struct flush_plan *p, int64_t horizon, struct flush_raw_cursor *c,
                           size_t max_rows, flush_raw_row_fn fn, void *ctx)
{
    size_t given = 0;
    for (; c->window < p->window_count && c->window < c->end; c->window++, c->item = 0) {
        const struct batch_window *bw = p->windows[c->window];
        if (bw->key.kind != c->kind) {
            c->flat += bw->count;
            continue;
        }
        for (; c->item < bw->count; c->item++, c->flat++) {
            if (!p->accepted[c->flat])
                continue;
            if (bw->items[c->item].r.ts < horizon) {
                c->expired++; /* counted in its window, older than retention */
                continue;
            }
            if (given == max_rows)
                return given; /* this reading is the next one */
            fn(ctx, c->kind, &bw->items[c->item]);
            given++;
        }
    }
    c->done = true;
    return given;
}

int64_t flush_plan_day(int64_t ts)
{
    return ts >= 0 ? ts / 86400 : -((-ts + 86399) / 86400);
}

bool flush_retention_advance(struct flush_retention *r, int64_t max_ts, int64_t now,
                             int retention_days)
{
    int64_t ceiling = now + 86400;
    int64_t newest = max_ts < ceiling ? max_ts : ceiling;
    if (newest > r->newest_ts)
        r->newest_ts = newest;
    if (r->newest_ts == 0)
        return false;
    r->raw_horizon = (flush_plan_day(r->newest_ts) - retention_days) * 86400;
    return r->raw_horizon > r->dropped_horizon;
}

static int compare_day(const void *a, const void *b)
{
    const int32_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

bool flush_known_day(const struct flush_known_days *k, int32_t day)
{
    return bsearch(&day, k->days, k->count, sizeof(day), compare_day) != NULL;
}

void flush_known_days_add(struct flush_known_days *k, const int32_t *days, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t day = days[i];
        if (flush_known_day(k, day))
            continue;
        if (k->count == FLUSH_KNOWN_DAYS_MAX) {
            if (day < k->days[0])
                continue;
            memmove(k->days, k->days + 1, (FLUSH_KNOWN_DAYS_MAX - 1) * sizeof(k->days[0]));
            k->count--;
        }
        size_t at = k->count;
        while (at > 0 && k->days[at - 1] > day) {
            k->days[at] = k->days[at - 1];
            at--;
        }
        k->days[at] = day;
        k->count++;
    }
}

void flush_known_days_forget_before(struct flush_known_days *k, int32_t first_day)
{
    size_t keep = 0;
    for (size_t i = 0; i < k->count; i++)
        if (k->days[i] >= first_day)
            k->days[keep++] = k->days[i];
    k->count = keep;
}

bool flush_plan_unknown_days(const struct flush_plan *p, int64_t horizon,
                             const struct flush_known_days *known, int32_t **days, size_t *count,
                             size_t *cap)
{
    size_t n = 0, flat = 0;
    for (size_t i = 0; i < p->window_count; i++) {
        const struct batch_window *bw = p->windows[i];
        for (size_t j = 0; j < bw->count; j++, flat++) {
            const struct reading *r = &bw->items[j].r;
            if (!p->accepted[flat] || r->ts < horizon)
                continue;
            int32_t day = (int32_t)flush_plan_day(r->ts); /* four-digit years: fits */
            if ((n > 0 && (*days)[n - 1] == day) || flush_known_day(known, day))
                continue;
            if (n == *cap) {
                size_t grown = *cap ? 2 * *cap : 64;
                int32_t *more = realloc(*days, grown * sizeof(*more));
                if (!more)
                    return false;
                *days = more;
                *cap = grown;
            }
            (*days)[n++] = day;
        }
    }
    qsort(*days, n, sizeof(**days), compare_day);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || (*days)[unique - 1] != (*days)[i])
            (*days)[unique++] = (*days)[i];
    *count = unique;
    return true;
}
