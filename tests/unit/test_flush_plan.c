/* Unit tests of the flush's pure rules (flush_plan.h): the lock list, the merge of a batch into
 * stored window states, the raw rows, the retention horizon and the partition days. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/batch.h"
#include "solarx/flush_plan.h"

static struct clock_zone *zone;

static void setup(void)
{
    char err[128];
    zone = clock_zone_new("UTC", err, sizeof(err));
    cr_assert_not_null(zone, "%s", err);
}

static void teardown(void)
{
    clock_zone_destroy(zone);
}

TestSuite(flush_plan, .init = setup, .fini = teardown);

#define T0 1739491200 /* 2025-02-14 00:00:00 UTC */
#define DAY0 (T0 / 86400)

static struct reading home(int32_t home_id, int64_t ts)
{
    return (struct reading){.kind = READING_HOME,
                            .home_id = home_id,
                            .device_id = home_id,
                            .ts = ts,
                            .energy_wh = 1000000,
                            .accumulated_wh = 5000000};
}

static struct reading battery(int32_t home_id, int32_t id, int64_t ts)
{
    return (struct reading){.kind = READING_BATTERY,
                            .home_id = home_id,
                            .device_id = id,
                            .ts = ts,
                            .energy_wh = 2000000,
                            .capacity_kwh = 10000000};
}

static struct flush_plan plan_of(struct batch *b)
{
    struct flush_plan p = {0};
    cr_assert(flush_plan_start(&p, batch_sorted_windows(b), b->window_count, b->reading_count,
                               b->window_seconds));
    return p;
}

Test(flush_plan, locks_are_sorted_and_distinct_per_kind_and_window)
{
    struct batch *b = batch_new(900, zone);
    struct reading r[] = {home(2, T0 + 901), home(1, T0), home(1, T0 + 5), home(3, T0 + 10),
                          battery(1, 1, T0)};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        batch_add_reading(b, &r[i], 0, (int64_t)i);
    struct flush_plan p = plan_of(b);
    int64_t locks[8];
    size_t n = flush_plan_window_locks(&p, locks);
    /* home windows at T0 (homes 1 and 3 share it) and T0 + 900; battery at T0 */
    cr_assert_eq(n, 3);
    int64_t home_class = FLUSH_PLAN_LOCK_CLASS + READING_HOME;
    int64_t battery_class = FLUSH_PLAN_LOCK_CLASS + READING_BATTERY;
    cr_assert_eq(locks[0], home_class << 32 | (T0 / 60));
    cr_assert_eq(locks[1], home_class << 32 | ((T0 + 900) / 60));
    cr_assert_eq(locks[2], battery_class << 32 | (T0 / 60));
    flush_plan_free(&p);
    batch_destroy(b);
}

static void collect_raw(void *ctx, int kind, const struct batch_reading *item)
{
    int64_t *offsets = ctx;
    offsets[++offsets[0]] = item->offset;
}

Test(flush_plan, merge_counts_only_new_seconds_over_the_stored_state)
{
    struct batch *b = batch_new(900, zone);
    struct reading r[] = {home(1, T0 + 1), home(1, T0 + 2), home(1, T0 + 2), home(1, T0 + 3)};
    for (size_t i = 0; i < 4; i++)
        batch_add_reading(b, &r[i], 0, 100 + (int64_t)i);
    struct flush_plan p = plan_of(b);
    /* The stored state already counts second T0 + 1 (an earlier flush). */
    struct reading stored = home(1, T0 + 1);
    cr_assert(window_apply(&p.states[0], &stored));

    struct flush_merge_counts counts = {0};
    char err[128];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    cr_assert_eq(counts.readings, 4);
    cr_assert_eq(counts.accepted, 2, "T0+2 and T0+3 are new");
    cr_assert_eq(counts.duplicates, 2, "T0+1 was stored, T0+2 came twice");
    cr_assert_eq(counts.merged[READING_HOME], 2);
    cr_assert_eq(counts.min_ts, T0 + 2);
    cr_assert_eq(counts.max_ts, T0 + 3);
    cr_assert(p.changed[0]);
    cr_assert_eq(p.states[0].readings_count, 3, "the stored second is not counted again");
    cr_assert_eq(p.states[0].sum_wh, 3000000);

    int64_t raw[8] = {0};
    cr_assert_eq(flush_plan_each_raw_row(&p, READING_HOME, 0, collect_raw, raw), 0);
    cr_assert_eq(raw[0], 2, "raw rows only for the accepted readings");
    cr_assert_eq(raw[1], 101);
    cr_assert_eq(raw[2], 103);
    raw[0] = 0;
    cr_assert_eq(flush_plan_each_raw_row(&p, READING_BATTERY, 0, collect_raw, raw), 0);
    cr_assert_eq(raw[0], 0);
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, a_window_with_only_stored_seconds_is_unchanged)
{
    struct batch *b = batch_new(900, zone);
    struct reading r = home(7, T0 + 9);
    batch_add_reading(b, &r, 0, 1);
    struct flush_plan p = plan_of(b);
    cr_assert(window_apply(&p.states[0], &r));
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    cr_assert_eq(counts.accepted, 0);
    cr_assert_eq(counts.duplicates, 1);
    cr_assert_not(p.changed[0]);
    cr_assert_eq(counts.max_ts, INT64_MIN);
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, solar_windows_take_the_smallest_home)
{
    struct batch *b = batch_new(900, zone);
    struct reading s1 = {.kind = READING_SOLAR, .home_id = 5, .device_id = 40, .ts = T0};
    struct reading s2 = s1;
    s2.home_id = 3;
    s2.ts++;
    batch_add_reading(b, &s1, 0, 1);
    batch_add_reading(b, &s2, 0, 2);
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    cr_assert_eq(p.window_count, 1);
    cr_assert_eq(p.solar_home[0], 3);
    cr_assert_eq(counts.accepted, 2);
    flush_plan_free(&p);
    batch_destroy(b);
}

static bool refuse_second_battery(void *ctx, size_t index, const struct reading *r, char *errstr,
                                  size_t errstr_size)
{
    int *calls = ctx;
    if (++*calls == 2) {
        snprintf(errstr, errstr_size, "battery %d refused", r->device_id);
        return false;
    }
    return true;
}

Test(flush_plan, accepted_battery_readings_go_to_the_history_which_may_refuse)
{
    struct batch *b = batch_new(900, zone);
    struct reading r[] = {battery(1, 1, T0), battery(1, 1, T0), battery(1, 1, T0 + 1)};
    for (size_t i = 0; i < 3; i++)
        batch_add_reading(b, &r[i], 0, (int64_t)i);
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64] = "";
    int calls = 0;
    cr_assert_not(flush_plan_merge(&p, &counts, refuse_second_battery, &calls, err, sizeof(err)));
    cr_assert_eq(calls, 2, "the duplicate is not observed");
    cr_assert_str_eq(err, "battery 1 refused");
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, raw_rows_before_the_horizon_are_counted_as_expired)
{
    struct batch *b = batch_new(900, zone);
    struct reading old = home(1, T0 - 86400 + 5), fresh = home(1, T0 + 5);
    batch_add_reading(b, &old, 0, 1);
    batch_add_reading(b, &fresh, 0, 2);
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    int64_t raw[4] = {0};
    cr_assert_eq(flush_plan_each_raw_row(&p, READING_HOME, T0, collect_raw, raw), 1);
    cr_assert_eq(raw[0], 1);
    cr_assert_eq(raw[1], 2);
    flush_plan_free(&p);
    batch_destroy(b);
}

/* A walk of the raw rows taken a few at a time (the chunked COPY) gives the rows of one walk,
 * in the same order, with the same expired count, across windows and kinds in between. */
Test(flush_plan, raw_rows_resume_where_the_last_chunk_ended)
{
    struct batch *b = batch_new(900, zone);
    int64_t offset = 0;
    for (int32_t h = 1; h <= 3; h++) {
        for (int s = 0; s < 5; s++) {
            struct reading r = home(h, (s == 2 ? T0 - 86400 : T0) + s); /* one old per home */
            batch_add_reading(b, &r, 0, offset++);
            struct reading x = battery(h, 1, T0 + s); /* another kind's windows between */
            batch_add_reading(b, &x, 1, offset++);
        }
        struct reading dup = home(h, T0 + 1);
        batch_add_reading(b, &dup, 0, offset++); /* not accepted: no raw row */
    }
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    int64_t whole[32] = {0};
    size_t expired = flush_plan_each_raw_row(&p, READING_HOME, T0, collect_raw, whole);
    cr_assert_eq(whole[0], 12, "4 rows a home");
    cr_assert_eq(expired, 3);
    for (size_t step = 1; step <= 13; step++) {
        int64_t chunked[32] = {0};
        struct flush_raw_cursor c;
        flush_raw_cursor_start(&c, READING_HOME);
        size_t turns = 0;
        while (!c.done) {
            size_t n = flush_plan_raw_rows(&p, T0, &c, step, collect_raw, chunked);
            cr_assert_leq(n, step);
            cr_assert_lt(++turns, 20, "the walk ends");
        }
        cr_assert_eq(flush_plan_raw_rows(&p, T0, &c, step, collect_raw, chunked), 0, "done");
        cr_assert_arr_eq(chunked, whole, sizeof(whole), "chunks of %zu", step);
        cr_assert_eq(c.expired, expired, "chunks of %zu", step);
    }
    flush_plan_free(&p);
    batch_destroy(b);
}

/* A batch over several homes and kinds, merged: 3 homes x 5 seconds of home and battery readings,
 * one home reading per home before T0 (expired at horizon T0) and one duplicate per home. */
static struct batch *mixed_batch(void)
{
    struct batch *b = batch_new(900, zone);
    int64_t offset = 0;
    for (int32_t h = 1; h <= 3; h++) {
        for (int s = 0; s < 5; s++) {
            struct reading r = home(h, (s == 2 ? T0 - 86400 : T0) + s);
            batch_add_reading(b, &r, 0, offset++);
            struct reading x = battery(h, 1, T0 + s);
            batch_add_reading(b, &x, 1, offset++);
        }
        struct reading dup = home(h, T0 + 1);
        batch_add_reading(b, &dup, 0, offset++);
    }
    return b;
}

/* Every raw row of the plan, kind by kind, walked share by share. */
static size_t collect_shares(const struct flush_plan *p, const struct flush_raw_share *shares,
                             size_t n, int64_t *offsets, size_t *expired)
{
    size_t rows = 0;
    *expired = 0;
    for (size_t i = 0; i < n; i++) {
        size_t share_rows = 0;
        for (int kind = 0; kind < READING_KIND_COUNT; kind++) {
            struct flush_raw_cursor c;
            flush_raw_cursor_start_share(&c, kind, &shares[i]);
            share_rows += flush_plan_raw_rows(p, T0, &c, SIZE_MAX, collect_raw, offsets);
            *expired += c.expired;
        }
        cr_assert_eq(share_rows, shares[i].rows, "share %zu counts its rows", i);
        cr_assert_gt(share_rows, 0, "no empty share");
        rows += share_rows;
    }
    return rows;
}

static int compare_offsets(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Split between connections, the raw rows are those of one walk over the whole plan, each
 * once, with the same expired count; the shares are consecutive and about equal. */
Test(flush_plan, raw_shares_cover_every_raw_row_once_in_about_equal_parts)
{
    struct batch *b = mixed_batch();
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    struct flush_raw_share whole = flush_plan_whole_share(&p, T0);
    cr_assert_eq(whole.rows, 12 + 15, "4 home rows and 5 battery rows a home");
    int64_t all[64] = {0};
    size_t expired_all = 0;
    cr_assert_eq(collect_shares(&p, &whole, 1, all, &expired_all), whole.rows);
    cr_assert_eq(expired_all, 3);
    qsort(all + 1, (size_t)all[0], sizeof(int64_t), compare_offsets);
    for (size_t n = 1; n <= 8; n++) {
        struct flush_raw_share shares[8];
        size_t given = flush_plan_raw_shares(&p, T0, n, shares);
        cr_assert_leq(given, n);
        /* fewer only where single windows hold more than a share's part of the rows */
        cr_assert_geq(given, n <= 3 ? n : 1, "%zu shares over %zu windows", n, p.window_count);
        for (size_t i = 1; i < given; i++)
            cr_assert_geq(shares[i].first, shares[i - 1].end, "consecutive");
        int64_t split[64] = {0};
        size_t expired = 0;
        cr_assert_eq(collect_shares(&p, shares, given, split, &expired), whole.rows);
        cr_assert_eq(expired, expired_all, "in %zu shares", n);
        qsort(split + 1, (size_t)split[0], sizeof(int64_t), compare_offsets);
        cr_assert_arr_eq(split, all, sizeof(all), "in %zu shares: the same rows, each once", n);
        size_t largest_window = 5; /* rows */
        for (size_t i = 0; i + 1 < given; i++)
            cr_assert_leq(shares[i].rows, whole.rows / n + largest_window, "share %zu of %zu", i,
                          n);
    }
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, a_plan_without_raw_rows_has_no_share)
{
    struct batch *b = batch_new(900, zone);
    struct reading old = home(1, T0 - 86400 + 5);
    batch_add_reading(b, &old, 0, 1);
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));
    struct flush_raw_share shares[4];
    cr_assert_eq(flush_plan_raw_shares(&p, T0, 4, shares), 0, "its only row is expired");
    cr_assert_eq(flush_plan_raw_shares(&p, 0, 4, shares), 1, "one window: one share");
    cr_assert_eq(shares[0].rows, 1);
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, retention_keeps_days_behind_the_newest_reading_capped_by_the_clock)
{
    struct flush_retention r = {0};
    int64_t now = T0 + 3600;
    cr_assert_not(flush_retention_advance(&r, INT64_MIN, now, 7), "no reading yet: no horizon");
    cr_assert_eq(r.raw_horizon, 0);

    cr_assert(flush_retention_advance(&r, T0 + 100, now, 7));
    cr_assert_eq(r.raw_horizon, T0 - 7 * 86400);
    r.dropped_horizon = r.raw_horizon; /* committed */
    cr_assert_not(flush_retention_advance(&r, T0 + 200, now, 7), "same day: nothing to drop");
    cr_assert_not(flush_retention_advance(&r, T0 - 5 * 86400, now, 7), "older: never back");
    cr_assert_eq(r.raw_horizon, T0 - 7 * 86400);

    /* A reading a year ahead counts as one day ahead of the clock. */
    cr_assert(flush_retention_advance(&r, T0 + 365 * 86400, now, 7));
    cr_assert_eq(r.newest_ts, now + 86400);
    cr_assert_eq(r.raw_horizon, (DAY0 + 1 - 7) * 86400);
}

Test(flush_plan, days_before_the_epoch_round_down)
{
    cr_assert_eq(flush_plan_day(0), 0);
    cr_assert_eq(flush_plan_day(86399), 0);
    cr_assert_eq(flush_plan_day(-1), -1);
    cr_assert_eq(flush_plan_day(-86400), -1);
    cr_assert_eq(flush_plan_day(-86401), -2);
}

Test(flush_plan, partition_days_are_the_unknown_days_of_the_raw_rows)
{
    struct batch *b = batch_new(900, zone);
    struct reading r[] = {home(1, T0 + 2 * 86400), home(1, T0 + 5), home(2, T0 + 86400 + 7),
                          home(1, T0 - 9 * 86400), home(3, T0 + 6)};
    for (size_t i = 0; i < 5; i++)
        batch_add_reading(b, &r[i], 0, (int64_t)i);
    struct flush_plan p = plan_of(b);
    struct flush_merge_counts counts = {0};
    char err[64];
    cr_assert(flush_plan_merge(&p, &counts, NULL, NULL, err, sizeof(err)));

    struct flush_known_days known = {0};
    int32_t day1 = DAY0 + 1;
    flush_known_days_add(&known, &day1, 1);
    int32_t *days = NULL;
    size_t count = 0, cap = 0;
    /* horizon T0 - 7 days: the reading 9 days back has no raw row, hence no partition */
    cr_assert(flush_plan_unknown_days(&p, T0 - 7 * 86400, &known, &days, &count, &cap));
    cr_assert_eq(count, 2);
    cr_assert_eq(days[0], DAY0);
    cr_assert_eq(days[1], DAY0 + 2);
    free(days);
    flush_plan_free(&p);
    batch_destroy(b);
}

Test(flush_plan, known_days_keep_the_newest_and_forget_dropped_ones)
{
    struct flush_known_days k = {0};
    int32_t days[FLUSH_KNOWN_DAYS_MAX + 2];
    for (int i = 0; i < FLUSH_KNOWN_DAYS_MAX + 2; i++)
        days[i] = 1000 + (FLUSH_KNOWN_DAYS_MAX + 1 - i); /* newest first */
    flush_known_days_add(&k, days, FLUSH_KNOWN_DAYS_MAX + 2);
    cr_assert_eq(k.count, FLUSH_KNOWN_DAYS_MAX);
    cr_assert_eq(k.days[0], 1002, "the two oldest are not kept");
    cr_assert(flush_known_day(&k, 1000 + FLUSH_KNOWN_DAYS_MAX + 1));
    cr_assert_not(flush_known_day(&k, 1001));
    for (int i = 1; i < FLUSH_KNOWN_DAYS_MAX; i++)
        cr_assert_lt(k.days[i - 1], k.days[i]);
    flush_known_days_forget_before(&k, 1010);
    cr_assert_eq(k.count, FLUSH_KNOWN_DAYS_MAX - 8);
    cr_assert_eq(k.days[0], 1010);
}

Test(flush_plan, slices_hold_at_least_1024_windows_and_a_kind_at_most_6_slices)
{
    cr_assert_eq(flush_plan_slice_rows(0), FLUSH_PLAN_SLICE_ROWS);
    cr_assert_eq(flush_plan_slice_rows(1), 1024);
    cr_assert_eq(flush_plan_slice_rows(6144), 1024);
    cr_assert_eq(flush_plan_slice_rows(6145), 1025, "beyond 6 x 1024: larger slices");
    cr_assert_eq(flush_plan_slice_rows(60000), 10000);
    for (size_t rows = 1; rows < 100000; rows += 997) {
        size_t per = flush_plan_slice_rows(rows);
        cr_assert_leq((rows + per - 1) / per, FLUSH_PLAN_SLICES_MAX, "%zu rows", rows);
    }
}
