/* Unit tests of src/window.c: applying readings and duplicates, aggregates, neighbours in the
 * second-bitmap, the bytea hex form, and a property test that the final state of every window
 * is byte-identical whatever the order of readings and however they are split into flushes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/window.h"

#define START 1739498400LL /* 2025-02-14 02:00:00 UTC */

static struct reading home_reading(int64_t ts, fixed_t energy, fixed_t accumulated)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.kind = READING_HOME;
    r.home_id = 1;
    r.device_id = 1;
    r.ts = ts;
    r.energy_wh = energy;
    r.accumulated_wh = accumulated;
    return r;
}

static struct reading battery_reading(int64_t ts, fixed_t energy, uint8_t charging, uint8_t status,
                                      fixed_t capacity)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.kind = READING_BATTERY;
    r.home_id = 1;
    r.device_id = 3;
    r.ts = ts;
    r.energy_wh = energy;
    r.capacity_kwh = capacity;
    r.max_charge_speed_w = 1000000;
    r.max_output_w = 3330000;
    r.is_charging = charging;
    r.status = status;
    return r;
}

static void home_window(struct window_state *w, int32_t seconds)
{
    struct window_key key = window_key_make(READING_HOME, 1, 1, START);
    window_state_init(w, &key, seconds);
}

/* ---- keys ---- */

Test(window_key, make_zeroes_padding_and_compare_orders_kind_home_device_start)
{
    struct window_key a = window_key_make(READING_SOLAR, 2, 4, START);
    cr_assert_eq(a.pad_zero, 0);
    cr_assert_eq(a.kind, READING_SOLAR);
    cr_assert_eq(a.home_id, 2);
    cr_assert_eq(a.device_id, 4);
    cr_assert_eq(a.start, START);

    struct window_key sorted[] = {
        window_key_make(READING_HOME, 1, 1, START),
        window_key_make(READING_HOME, 1, 1, START + 900),
        window_key_make(READING_HOME, 2, 2, START - 900),
        window_key_make(READING_SOLAR, 1, 3, START + 900),
        window_key_make(READING_SOLAR, 1, 4, START - 900),
        window_key_make(READING_SOLAR, 1, 4, START),
        window_key_make(READING_BATTERY, -5, 1, START),
        window_key_make(READING_BATTERY, 1, 1, -900),
        window_key_make(READING_BATTERY, 1, 2147483647, START),
    };
    size_t n = sizeof(sorted) / sizeof(sorted[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = window_key_compare(&sorted[i], &sorted[j]);
            if (i < j)
                cr_assert_lt(c, 0, "%zu < %zu", i, j);
            else if (i > j)
                cr_assert_gt(c, 0, "%zu > %zu", i, j);
            else
                cr_assert_eq(c, 0);
        }
    }
    struct window_key big = window_key_make(READING_HOME, 1, 1, INT64_MAX);
    struct window_key small = window_key_make(READING_HOME, 1, 1, INT64_MIN);
    cr_assert_lt(window_key_compare(&small, &big), 0, "no overflow in the comparison");
}

/* ---- applying ---- */

Test(window_apply, init_zeroes_every_byte_but_the_key_and_length)
{
    struct window_state a, b;
    memset(&a, 0xa5, sizeof(a));
    memset(&b, 0x5a, sizeof(b));
    struct window_key key = window_key_make(READING_HOME, 1, 1, START);
    window_state_init(&a, &key, 900);
    window_state_init(&b, &key, 900);
    cr_assert(memcmp(&a, &b, sizeof(a)) == 0, "init must not depend on previous garbage");
    cr_assert_eq(a.seconds, 900);
    cr_assert_eq(a.readings_count, 0);
    cr_assert(window_state_is_consistent(&a));
}

Test(window_apply, new_second_is_applied_and_its_duplicate_is_not)
{
    struct window_state w;
    home_window(&w, 900);
    struct reading r = home_reading(START + 59, 930000, 5121330000LL);
    cr_assert(window_apply(&w, &r));
    struct window_state after_first = w;
    cr_assert_not(window_apply(&w, &r), "same second again is a duplicate");
    struct reading other_value = home_reading(START + 59, 5, 6);
    cr_assert_not(window_apply(&w, &other_value), "first value of a second wins");
    cr_assert(memcmp(&w, &after_first, sizeof(w)) == 0, "duplicates change nothing");
    cr_assert_eq(w.readings_count, 1);
    cr_assert_eq(w.sum_wh, 930000);
    cr_assert(window_second_seen(&w, START + 59));
    cr_assert_not(window_second_seen(&w, START + 58));
    cr_assert_not(window_second_seen(&w, START + 59 + 900));
    cr_assert(window_state_is_consistent(&w));
}

Test(window_apply, readings_of_another_window_or_device_are_refused_unchanged)
{
    struct window_state w, before;
    home_window(&w, 900);
    struct reading ok = home_reading(START + 1, 1, 1);
    cr_assert(window_apply(&w, &ok));
    before = w;
    struct reading bad[6];
    bad[0] = home_reading(START - 1, 1, 1);
    bad[1] = home_reading(START + 900, 1, 1);
    bad[2] = home_reading(START + 2, 1, 1);
    bad[2].home_id = 2;
    bad[3] = home_reading(START + 2, 1, 1);
    bad[3].device_id = 2;
    bad[4] = home_reading(START + 2, 1, 1);
    bad[4].kind = READING_SOLAR;
    bad[5] = home_reading(INT64_MIN, 1, 1);
    for (int i = 0; i < 6; i++) {
        cr_assert_not(window_contains(&w, &bad[i]), "case %d", i);
        cr_assert_not(window_apply(&w, &bad[i]), "case %d", i);
        cr_assert(memcmp(&w, &before, sizeof(w)) == 0, "case %d changed the state", i);
    }
    struct reading last = home_reading(START + 899, 1, 1);
    cr_assert(window_apply(&w, &last), "the last second belongs to the window");
}

Test(window_apply, invalid_window_length_accepts_nothing)
{
    static const int32_t bad_lengths[] = {0, -900, WINDOW_MAX_SECONDS + 1};
    for (size_t i = 0; i < 3; i++) {
        struct window_state w;
        home_window(&w, bad_lengths[i]);
        cr_assert_eq(w.seconds, 0);
        struct reading r = home_reading(START, 1, 1);
        cr_assert_not(window_apply(&w, &r));
        cr_assert_not(window_state_is_consistent(&w));
    }
    struct window_state w;
    home_window(&w, WINDOW_MAX_SECONDS);
    struct reading r = home_reading(START + WINDOW_MAX_SECONDS - 1, 1, 1);
    cr_assert(window_apply(&w, &r), "a full hour window takes its last second");
}

Test(window_apply, home_min_max_first_last_follow_the_seconds_not_the_order)
{
    struct window_state w;
    home_window(&w, 900);
    struct reading rs[] = {
        home_reading(START + 500, 2000000, 7000000), home_reading(START + 10, 500000, 1000000),
        home_reading(START + 899, 1500000, 9000000), home_reading(START + 0, 3000000, 500000),
        home_reading(START + 300, 0, 4000000),
    };
    for (size_t i = 0; i < 5; i++)
        cr_assert(window_apply(&w, &rs[i]));
    cr_assert_eq(w.readings_count, 5);
    cr_assert_eq(w.sum_wh, 7000000);
    cr_assert_eq(w.min_wh, 0);
    cr_assert_eq(w.max_wh, 3000000);
    cr_assert_eq(w.first_ts, START);
    cr_assert_eq(w.last_ts, START + 899);
    cr_assert_eq(w.last_energy_wh, 1500000);
    cr_assert_eq(w.last_accumulated_wh, 9000000);
    cr_assert_eq(w.last_capacity_kwh, 0, "battery fields stay zero for a home");
    cr_assert(window_state_is_consistent(&w));
}

Test(window_apply, battery_last_values_follow_the_latest_second_in_any_order)
{
    struct reading rs[] = {
        battery_reading(START + 10, 9000000000LL, 0, BATTERY_IDLE, 12000000),
        battery_reading(START + 600, 5000000000LL, 1, BATTERY_CHARGING, 13500000),
        battery_reading(START + 300, 7000000000LL, 0, BATTERY_DISCHARGING, 12000000),
    };
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                     {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    struct window_state first;
    for (int o = 0; o < 6; o++) {
        struct window_state w;
        struct window_key key = window_key_make(READING_BATTERY, 1, 3, START);
        window_state_init(&w, &key, 900);
        for (int i = 0; i < 3; i++)
            cr_assert(window_apply(&w, &rs[orders[o][i]]));
        cr_assert_eq(w.last_ts, START + 600);
        cr_assert_eq(w.last_energy_wh, 5000000000LL);
        cr_assert_eq(w.last_is_charging, 1);
        cr_assert_eq(w.last_status, BATTERY_CHARGING);
        cr_assert_eq(w.last_capacity_kwh, 13500000);
        cr_assert_eq(w.last_max_charge_speed_w, 1000000);
        cr_assert_eq(w.last_max_output_w, 3330000);
        cr_assert_eq(w.min_wh, 5000000000LL);
        cr_assert_eq(w.max_wh, 9000000000LL);
        cr_assert_eq(w.sum_wh, 0, "battery energy is a state, never summed");
        cr_assert_eq(w.last_accumulated_wh, 0);
        cr_assert_eq(w.first_ts, START + 10);
        cr_assert(window_state_is_consistent(&w));
        if (o == 0)
            first = w;
        else
            cr_assert(memcmp(&w, &first, sizeof(w)) == 0, "order %d differs", o);
    }
}

Test(window_apply, fixed_point_sums_are_exact)
{
    struct window_state w;
    home_window(&w, 900);
    fixed_t e;
    cr_assert(fixed_from_double(0.000278, &e));
    cr_assert_eq(e, 278);
    for (int i = 0; i < 900; i++) {
        struct reading r = home_reading(START + i, e, 0);
        cr_assert(window_apply(&w, &r));
    }
    cr_assert_eq(w.sum_wh, 250200, "900 x 0.000278 Wh = 0.2502 Wh exactly");
    char text[FIXED_TEXT_SIZE];
    cr_assert_str_eq(fixed_format(w.sum_wh, text, sizeof(text)), "0.250200");

    /* 0.1 Wh 3600 times: a double accumulator drifts, the fixed one is 360 exactly. */
    home_window(&w, 3600);
    cr_assert(fixed_from_double(0.1, &e));
    double drift = 0;
    for (int i = 0; i < 3600; i++) {
        struct reading r = home_reading(START + i, e, 0);
        cr_assert(window_apply(&w, &r));
        drift += 0.1;
    }
    cr_assert_eq(w.sum_wh, 360000000);
    cr_assert_neq(drift, 360.0, "the double sum is not exact (this is why fixed_t exists)");
}

Test(window_apply, huge_sums_saturate_instead_of_wrapping)
{
    struct window_state w;
    home_window(&w, 900);
    for (int i = 0; i < 20; i++) {
        struct reading r = home_reading(START + i, 1000000000000000000LL, 0);
        cr_assert(window_apply(&w, &r));
    }
    cr_assert_eq(w.sum_wh, INT64_MAX);
}

/* ---- neighbours ---- */

Test(window_seen, next_and_prev_find_neighbouring_counted_seconds)
{
    struct window_state w;
    home_window(&w, 900);
    cr_assert_eq(window_next_seen_after(&w, START - 10), -1, "empty window");
    cr_assert_eq(window_prev_seen_before(&w, START + 5000), -1, "empty window");
    static const int marks[] = {0, 7, 8, 63, 64, 899};
    for (size_t i = 0; i < 6; i++) {
        struct reading r = home_reading(START + marks[i], 1, 1);
        cr_assert(window_apply(&w, &r));
    }
    cr_assert_eq(window_next_seen_after(&w, START - 5), START);
    cr_assert_eq(window_next_seen_after(&w, START), START + 7);
    cr_assert_eq(window_next_seen_after(&w, START + 7), START + 8);
    cr_assert_eq(window_next_seen_after(&w, START + 8), START + 63);
    cr_assert_eq(window_next_seen_after(&w, START + 64), START + 899);
    cr_assert_eq(window_next_seen_after(&w, START + 899), -1);
    cr_assert_eq(window_next_seen_after(&w, START + 100000), -1);
    cr_assert_eq(window_prev_seen_before(&w, START + 100000), START + 899);
    cr_assert_eq(window_prev_seen_before(&w, START + 900), START + 899);
    cr_assert_eq(window_prev_seen_before(&w, START + 899), START + 64);
    cr_assert_eq(window_prev_seen_before(&w, START + 64), START + 63);
    cr_assert_eq(window_prev_seen_before(&w, START + 63), START + 8);
    cr_assert_eq(window_prev_seen_before(&w, START + 8), START + 7);
    cr_assert_eq(window_prev_seen_before(&w, START + 1), START);
    cr_assert_eq(window_prev_seen_before(&w, START), -1);
    cr_assert_eq(window_prev_seen_before(&w, INT64_MIN), -1);
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

Test(window_seen, neighbours_match_a_linear_scan_on_random_bitmaps)
{
    static const int32_t lengths[] = {1, 7, 8, 9, 13, 64, 900, 3600};
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
        for (int trial = 0; trial < 20; trial++) {
            struct window_state w;
            int32_t len = lengths[l];
            home_window(&w, len);
            uint64_t density = 1 + rng_below(50);
            for (int32_t i = 0; i < len; i++) {
                if (rng_below(100) < density) {
                    struct reading r = home_reading(START + i, 1, 1);
                    cr_assert(window_apply(&w, &r));
                }
            }
            cr_assert(window_state_is_consistent(&w));
            for (int64_t ts = START - 3; ts <= START + len + 3; ts++) {
                int64_t next = -1, prev = -1;
                for (int64_t s = ts + 1; s < START + len && next < 0; s++)
                    if (s >= START && window_second_seen(&w, s))
                        next = s;
                for (int64_t s = ts - 1; s >= START && prev < 0; s--)
                    if (s < START + len && window_second_seen(&w, s))
                        prev = s;
                cr_assert_eq(window_next_seen_after(&w, ts), next, "len %d ts %+lld", len,
                             (long long)(ts - START));
                cr_assert_eq(window_prev_seen_before(&w, ts), prev, "len %d ts %+lld", len,
                             (long long)(ts - START));
            }
        }
    }
}

/* ---- hex ---- */

Test(window_hex, empty_and_marked_bitmaps_have_the_documented_text)
{
    struct window_state w;
    home_window(&w, 900);
    cr_assert_eq(window_seen_bytes(&w), 113, "900 bits round up to 113 bytes");
    char hex[WINDOW_SEEN_HEX_SIZE];
    window_seen_to_hex(&w, hex, sizeof(hex));
    cr_assert_eq(strlen(hex), 2 + 226);
    cr_assert_eq(hex[0], '\\');
    cr_assert_eq(hex[1], 'x');
    for (size_t i = 2; i < strlen(hex); i++)
        cr_assert_eq(hex[i], '0');

    static const int marks[] = {0, 1, 2, 3, 9, 899};
    for (size_t i = 0; i < 6; i++) {
        struct reading r = home_reading(START + marks[i], 1, 1);
        cr_assert(window_apply(&w, &r));
    }
    window_seen_to_hex(&w, hex, sizeof(hex));
    cr_assert(strncmp(hex, "\\x0f02", 6) == 0, "LSB first: %.10s", hex);
    cr_assert_str_eq(hex + strlen(hex) - 2, "08", "second 899 is bit 3 of byte 112");

    struct window_state full;
    struct window_key key = window_key_make(READING_HOME, 1, 1, START);
    window_state_init(&full, &key, WINDOW_MAX_SECONDS);
    window_seen_to_hex(&full, hex, sizeof(hex));
    cr_assert_eq(strlen(hex), WINDOW_SEEN_HEX_SIZE - 1, "an hour fills the buffer exactly");

    char small[7];
    window_seen_to_hex(&w, small, sizeof(small));
    cr_assert_str_eq(small, "\\x0f02", "truncated output stays terminated and whole-byte");
}

Test(window_hex, round_trip_restores_the_bitmap_exactly)
{
    rng_state = 42;
    static const int32_t lengths[] = {1, 8, 13, 900, 3600};
    for (size_t l = 0; l < 5; l++) {
        struct window_state w, back;
        home_window(&w, lengths[l]);
        for (int i = 0; i < lengths[l]; i++) {
            if (rng_below(3) == 0) {
                struct reading r = home_reading(START + i, i, i);
                cr_assert(window_apply(&w, &r));
            }
        }
        char hex[WINDOW_SEEN_HEX_SIZE];
        window_seen_to_hex(&w, hex, sizeof(hex));
        home_window(&back, lengths[l]);
        cr_assert(window_seen_from_hex(&back, hex), "length %d", lengths[l]);
        cr_assert(memcmp(back.seen, w.seen, sizeof(w.seen)) == 0, "length %d", lengths[l]);
        /* Upper-case hex digits are bytea too. */
        for (char *p = hex + 2; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
        home_window(&back, lengths[l]);
        cr_assert(window_seen_from_hex(&back, hex));
        cr_assert(memcmp(back.seen, w.seen, sizeof(w.seen)) == 0);
    }
}

Test(window_hex, malformed_hex_is_refused_and_leaves_the_state_alone)
{
    struct window_state w, before;
    home_window(&w, 12); /* 2 bytes; bits 12..15 of byte 1 must stay clear */
    struct reading r = home_reading(START + 4, 1, 1);
    cr_assert(window_apply(&w, &r));
    before = w;
    static const char *const bad[] = {
        "",        "\\x",     "\\x10",   "\\x1000ff", "x1000",  "\\X1000",  "\\\\x1000", "\\x10 0",
        "\\x1g00", "\\x10f0", "\\x1080", "0x1000",    "\\x100", " \\x1000", "\\x1000\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(window_seen_from_hex(&w, bad[i]), "\"%s\" accepted", bad[i]);
        cr_assert(memcmp(&w, &before, sizeof(w)) == 0, "\"%s\" changed the state", bad[i]);
    }
    cr_assert_not(window_seen_from_hex(&w, NULL));
    cr_assert(window_seen_from_hex(&w, "\\x100f"), "bits 8..11 are inside the window");
    cr_assert(window_second_seen(&w, START + 11));
    cr_assert_not(window_second_seen(&w, START + 0));
}

Test(window_hex, consistency_check_catches_corrupt_stored_rows)
{
    struct window_state w;
    home_window(&w, 900);
    for (int i = 100; i < 110; i++) {
        struct reading r = home_reading(START + i, 1000, 1);
        cr_assert(window_apply(&w, &r));
    }
    cr_assert(window_state_is_consistent(&w));
    struct window_state bad = w;
    bad.readings_count = 11;
    cr_assert_not(window_state_is_consistent(&bad), "count disagrees with the bitmap");
    bad = w;
    bad.first_ts = START + 101;
    cr_assert_not(window_state_is_consistent(&bad), "first_ts is not the first bit");
    bad = w;
    bad.last_ts = START + 899;
    cr_assert_not(window_state_is_consistent(&bad), "last_ts is not the last bit");
    bad = w;
    bad.seen[120] = 1;
    cr_assert_not(window_state_is_consistent(&bad), "bit beyond the window");
    bad = w;
    bad.seen[112] |= 0x08; /* second 899: the last, partial word of the bitmap */
    cr_assert_not(window_state_is_consistent(&bad), "a bit in the last byte is counted");
    bad = w;
    bad.seen[8] |= 0x01; /* second 64: a whole word of the bitmap */
    cr_assert_not(window_state_is_consistent(&bad), "a bit in a whole word is counted");
    bad = w;
    bad.min_wh = 2000;
    cr_assert_not(window_state_is_consistent(&bad), "min above max");
    bad = w;
    bad.key.pad_zero = 1;
    cr_assert_not(window_state_is_consistent(&bad), "dirty key padding");
    bad = w;
    bad.reserved_zero[3] = 1;
    cr_assert_not(window_state_is_consistent(&bad), "dirty tail padding");
}

/* ---- the property: order and batching never change a final state ---- */

#define PROP_DEVICES 6
#define PROP_WINDOWS 3
#define PROP_WINDOW_SECONDS 900
#define PROP_PER_WINDOW 170
#define PROP_UNIQUE (PROP_DEVICES * PROP_WINDOWS * PROP_PER_WINDOW)
#define PROP_TOTAL (PROP_UNIQUE + PROP_UNIQUE / 8)
#define PROP_KEYS (PROP_DEVICES * PROP_WINDOWS)
#define PROP_TRIALS 240

static const struct {
    enum reading_kind kind;
    int32_t home_id, device_id;
} prop_devices[PROP_DEVICES] = {
    {READING_HOME, 1, 1},    {READING_SOLAR, 1, 4},   {READING_SOLAR, 2, 5},
    {READING_BATTERY, 1, 1}, {READING_BATTERY, 1, 2}, {READING_BATTERY, 2, 1},
};

static struct reading prop_readings[PROP_TOTAL];
static struct window_key prop_keys[PROP_KEYS];
static struct window_state prop_reference[PROP_KEYS];

/* What a fact row holds: the state's fields as columns and the bitmap as bytea text. */
struct stored_row {
    bool present;
    int32_t readings_count;
    fixed_t sum_wh, min_wh, max_wh;
    int64_t first_ts, last_ts;
    fixed_t last_energy_wh, last_accumulated_wh, last_capacity_kwh, last_max_charge_speed_w,
        last_max_output_w;
    int32_t last_is_charging, last_status;
    char seen_hex[WINDOW_SEEN_HEX_SIZE];
};

static void row_store(struct stored_row *row, const struct window_state *w)
{
    row->present = true;
    row->readings_count = w->readings_count;
    row->sum_wh = w->sum_wh;
    row->min_wh = w->min_wh;
    row->max_wh = w->max_wh;
    row->first_ts = w->first_ts;
    row->last_ts = w->last_ts;
    row->last_energy_wh = w->last_energy_wh;
    row->last_accumulated_wh = w->last_accumulated_wh;
    row->last_capacity_kwh = w->last_capacity_kwh;
    row->last_max_charge_speed_w = w->last_max_charge_speed_w;
    row->last_max_output_w = w->last_max_output_w;
    row->last_is_charging = w->last_is_charging;
    row->last_status = w->last_status;
    window_seen_to_hex(w, row->seen_hex, sizeof(row->seen_hex));
}

/* Rebuilds a state from a stored row (a fresh state when there is none), as a flush would
 * after SELECT ... FOR UPDATE. */
static void row_load(const struct stored_row *row, const struct window_key *key,
                     struct window_state *w)
{
    window_state_init(w, key, PROP_WINDOW_SECONDS);
    if (!row->present)
        return;
    w->readings_count = row->readings_count;
    w->sum_wh = row->sum_wh;
    w->min_wh = row->min_wh;
    w->max_wh = row->max_wh;
    w->first_ts = row->first_ts;
    w->last_ts = row->last_ts;
    w->last_energy_wh = row->last_energy_wh;
    w->last_accumulated_wh = row->last_accumulated_wh;
    w->last_capacity_kwh = row->last_capacity_kwh;
    w->last_max_charge_speed_w = row->last_max_charge_speed_w;
    w->last_max_output_w = row->last_max_output_w;
    w->last_is_charging = (uint8_t)row->last_is_charging;
    w->last_status = (uint8_t)row->last_status;
    cr_assert(window_seen_from_hex(w, row->seen_hex));
    cr_assert(window_state_is_consistent(w));
}

static void prop_build_readings(void)
{
    rng_state = 0x5eed5eed5eedULL;
    size_t n = 0;
    for (int d = 0; d < PROP_DEVICES; d++) {
        for (int wi = 0; wi < PROP_WINDOWS; wi++) {
            int64_t start = START + (int64_t)wi * PROP_WINDOW_SECONDS;
            prop_keys[d * PROP_WINDOWS + wi] = window_key_make(
                prop_devices[d].kind, prop_devices[d].home_id, prop_devices[d].device_id, start);
            /* PROP_PER_WINDOW distinct seconds: a random subset by rejection. */
            bool taken[PROP_WINDOW_SECONDS] = {false};
            for (int k = 0; k < PROP_PER_WINDOW; k++) {
                int64_t s;
                do
                    s = (int64_t)rng_below(PROP_WINDOW_SECONDS);
                while (taken[s]);
                taken[s] = true;
                struct reading *r = &prop_readings[n++];
                memset(r, 0, sizeof(*r));
                r->kind = prop_devices[d].kind;
                r->home_id = prop_devices[d].home_id;
                r->device_id = prop_devices[d].device_id;
                r->ts = start + s;
                if (r->kind == READING_BATTERY) {
                    r->capacity_kwh = 12000000 + (fixed_t)rng_below(2) * 1500000;
                    r->energy_wh = (fixed_t)rng_below(12000000001ULL);
                    r->max_charge_speed_w = (fixed_t)rng_below(5000000000ULL);
                    r->max_output_w = (fixed_t)rng_below(5000000000ULL);
                    r->is_charging = (uint8_t)rng_below(2);
                    r->status = (uint8_t)rng_below(3);
                } else {
                    r->energy_wh = (fixed_t)rng_below(3000000); /* up to 3 Wh per second */
                    r->accumulated_wh = (fixed_t)rng_below(100000000000ULL);
                }
            }
        }
    }
    /* Exact duplicates of random readings (redeliveries). */
    size_t unique = n;
    while (n < PROP_TOTAL)
        prop_readings[n++] = prop_readings[rng_below(unique)];

    for (int k = 0; k < PROP_KEYS; k++) {
        window_state_init(&prop_reference[k], &prop_keys[k], PROP_WINDOW_SECONDS);
        for (size_t i = 0; i < PROP_TOTAL; i++)
            (void)window_apply(&prop_reference[k], &prop_readings[i]);
        cr_assert_eq(prop_reference[k].readings_count, PROP_PER_WINDOW);
    }
}

Test(window_property, any_order_and_any_flush_split_gives_byte_identical_states, .timeout = 240)
{
    prop_build_readings();
    static struct reading shuffled[PROP_TOTAL];
    static struct stored_row rows[PROP_KEYS];
    static size_t batch_index[PROP_TOTAL];
    memcpy(shuffled, prop_readings, sizeof(shuffled));
    rng_state = 20250214;

    for (int trial = 0; trial < PROP_TRIALS; trial++) {
        for (size_t i = PROP_TOTAL - 1; i > 0; i--) {
            size_t j = rng_below(i + 1);
            struct reading t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        memset(rows, 0, sizeof(rows));
        /* Batch sizes vary per trial: from single readings to the whole set at once. */
        size_t max_batch = trial % 10 == 0 ? PROP_TOTAL : 1 + rng_below(trial % 2 ? 40 : 900);
        size_t newly_counted = 0, flushes = 0;

        for (size_t pos = 0; pos < PROP_TOTAL;) {
            size_t len = 1 + rng_below(max_batch);
            if (len > PROP_TOTAL - pos)
                len = PROP_TOTAL - pos;
            flushes++;
            for (int k = 0; k < PROP_KEYS; k++) {
                /* The in-memory window of this batch (a fresh state) keeps the batch's
                 * distinct seconds... */
                struct window_state cache;
                window_state_init(&cache, &prop_keys[k], PROP_WINDOW_SECONDS);
                size_t members = 0;
                for (size_t i = pos; i < pos + len; i++)
                    if (window_apply(&cache, &shuffled[i]))
                        batch_index[members++] = i;
                if (members == 0)
                    continue;
                cr_assert_eq(cache.readings_count, (int32_t)members);
                /* ...which the flush folds into the stored row by re-applying them. */
                struct window_state stored;
                row_load(&rows[k], &prop_keys[k], &stored);
                for (size_t m = 0; m < members; m++)
                    newly_counted += window_apply(&stored, &shuffled[batch_index[m]]);
                cr_assert(window_state_is_consistent(&stored));
                row_store(&rows[k], &stored);
            }
            pos += len;
        }
        cr_assert_eq(newly_counted, (size_t)PROP_UNIQUE,
                     "trial %d: each distinct reading counted exactly once", trial);
        for (int k = 0; k < PROP_KEYS; k++) {
            struct window_state final;
            row_load(&rows[k], &prop_keys[k], &final);
            cr_assert(memcmp(&final, &prop_reference[k], sizeof(final)) == 0,
                      "trial %d (%zu flushes): window %d differs from the reference", trial,
                      flushes, k);
        }
    }
}
