/* Unit tests of src/dim.c: every case of inserting a reading into a version list, the registry
 * "from t on" semantics, keys, and order independence over hundreds of random orders. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/dim.h"

/* Battery attributes told apart by capacity: attrs A = capacity 1 kWh, B = 2, ... */
static struct dim_attrs bat(int which)
{
    struct dim_attrs a;
    dim_battery_attrs(which * FIXED_SCALE, 1 * FIXED_SCALE, 3330000, &a);
    return a;
}
enum { A = 1, B = 2, C = 3, D = 4 };

struct exp_version {
    int64_t start, last_seen;
    int attrs;
};

/* A battery history holding the given versions (restored, so the invariants are checked). */
static struct dim_history *battery_with(const struct exp_version *v, size_t n)
{
    struct dim_history *h = dim_history_new(DIM_BATTERY, 1, 7);
    cr_assert_not_null(h);
    for (size_t i = 0; i < n; i++) {
        struct dim_attrs a = bat(v[i].attrs);
        cr_assert_eq(dim_history_restore(h, v[i].start, v[i].last_seen, &a), 0,
                     "bad fixture version %zu", i);
    }
    return h;
}

static void expect_versions(const struct dim_history *h, const struct exp_version *v, size_t n)
{
    cr_assert_eq(dim_history_count(h), n, "expected %zu versions, got %zu", n,
                 dim_history_count(h));
    for (size_t i = 0; i < n; i++) {
        const struct dim_version *got = dim_history_version(h, i);
        struct dim_attrs want = bat(v[i].attrs);
        cr_assert_eq(got->start, v[i].start, "version %zu start %lld, want %lld", i,
                     (long long)got->start, (long long)v[i].start);
        cr_assert_eq(got->last_seen, v[i].last_seen, "version %zu last_seen %lld, want %lld", i,
                     (long long)got->last_seen, (long long)v[i].last_seen);
        cr_assert(dim_attrs_equal(&got->attrs, &want), "version %zu has the wrong attributes", i);
    }
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

#define N(arr) (sizeof(arr) / sizeof((arr)[0]))
#define VERSIONS(...) ((const struct exp_version[]){__VA_ARGS__})
#define NV(...) N(VERSIONS(__VA_ARGS__))
#define EXPECT(h, ...) expect_versions((h), VERSIONS(__VA_ARGS__), NV(__VA_ARGS__))
#define WITH(...) battery_with(VERSIONS(__VA_ARGS__), NV(__VA_ARGS__))

static int observe(struct dim_history *h, int64_t t, int which, int64_t prev, int64_t next)
{
    struct dim_attrs a = bat(which);
    return dim_history_observe(h, t, &a, prev, next);
}

/* --- attributes and keys ----------------------------------------------------------------- */

Test(dim_attrs, equality_covers_values_count_and_text)
{
    struct dim_attrs a = bat(A), b = bat(A);
    cr_assert(dim_attrs_equal(&a, &b));
    b.v[DIM_BATTERY_MAX_OUTPUT_W]++;
    cr_assert_not(dim_attrs_equal(&a, &b));

    struct dim_attrs p1, p2;
    cr_assert(
        dim_panel_attrs("roof", 3 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE, 1, &p1));
    cr_assert(
        dim_panel_attrs("roof", 3 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE, 1, &p2));
    cr_assert(dim_attrs_equal(&p1, &p2));
    cr_assert(
        dim_panel_attrs("pole", 3 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE, 1, &p2));
    cr_assert_not(dim_attrs_equal(&p1, &p2), "the name is an attribute");
    cr_assert(
        dim_panel_attrs("roof", 3 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE, 2, &p2));
    cr_assert_not(dim_attrs_equal(&p1, &p2), "the home is an attribute");

    char long_name[DIM_TEXT_MAX + 1];
    memset(long_name, 'x', DIM_TEXT_MAX);
    long_name[DIM_TEXT_MAX] = '\0';
    cr_assert_not(dim_panel_attrs(long_name, 1, 1, 1, 1, &p2));
    long_name[DIM_TEXT_MAX - 1] = '\0';
    cr_assert(dim_panel_attrs(long_name, 1, 1, 1, 1, &p2), "63 bytes fit");
    cr_assert_not(dim_panel_attrs(NULL, 1, 1, 1, 1, &p2));

    struct dim_attrs h1, h2;
    dim_home_attrs(7880 * FIXED_SCALE, 19895 * FIXED_SCALE, &h1);
    dim_home_attrs(7880 * FIXED_SCALE, 19896 * FIXED_SCALE, &h2);
    cr_assert_eq(h1.n, DIM_HOME_NATTR);
    cr_assert_not(dim_attrs_equal(&h1, &h2));
}

Test(dim_attrs, battery_attrs_of_a_reading)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.kind = READING_BATTERY;
    r.capacity_kwh = 12 * FIXED_SCALE;
    r.max_charge_speed_w = 1 * FIXED_SCALE;
    r.max_output_w = 3330000;
    r.energy_wh = 9860 * FIXED_SCALE; /* state, not an attribute */
    struct dim_attrs a, b;
    dim_battery_attrs_of(&r, &a);
    dim_battery_attrs(12 * FIXED_SCALE, 1 * FIXED_SCALE, 3330000, &b);
    cr_assert(dim_attrs_equal(&a, &b));
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "canonical: byte-identical");
    r.energy_wh = 1;
    dim_battery_attrs_of(&r, &a);
    cr_assert(dim_attrs_equal(&a, &b), "current energy does not version the battery");
}

Test(dim_key, pinned_positive_and_distinct)
{
    /* Pinned: these keys are stored in the warehouse, so the function must never change. */
    cr_assert_eq(dim_version_key(DIM_BATTERY, 1, 1, 1739498939), 7971214593307534447LL);
    cr_assert_eq(dim_version_key(DIM_HOME, 1, 1, 1735689600), 1687216658439002354LL);
    cr_assert_eq(dim_version_key(DIM_PANEL, 0, 4, 1735689600), 5622748462202021173LL);

    int64_t base = dim_version_key(DIM_BATTERY, 1, 3, 1000);
    cr_assert_eq(base, dim_version_key(DIM_BATTERY, 1, 3, 1000), "deterministic");
    cr_assert_neq(base, dim_version_key(DIM_PANEL, 1, 3, 1000));
    cr_assert_neq(base, dim_version_key(DIM_BATTERY, 2, 3, 1000));
    cr_assert_neq(base, dim_version_key(DIM_BATTERY, 1, 4, 1000));
    cr_assert_neq(base, dim_version_key(DIM_BATTERY, 1, 3, 1001));
    cr_assert_neq(base, dim_version_key(DIM_BATTERY, 3, 1, 1000), "home and device not swapped");
    cr_assert_gt(dim_version_key(DIM_BATTERY, -1, -1, INT64_MIN), 0);

    /* 3 kinds x 10 homes x 10 devices x 1000 starts: all positive, no collision. */
    size_t n = 3 * 10 * 10 * 1000, k = 0;
    int64_t *keys = malloc(n * sizeof(*keys));
    cr_assert_not_null(keys);
    for (int kind = 0; kind < 3; kind++)
        for (int home = 1; home <= 10; home++)
            for (int dev = 1; dev <= 10; dev++)
                for (int64_t s = 0; s < 1000; s++) {
                    keys[k] = dim_version_key((enum dim_kind)kind, home, dev, 1739491200 + s);
                    cr_assert_gt(keys[k], 0);
                    k++;
                }
    qsort(keys, n, sizeof(*keys), cmp_i64);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(keys[i], keys[i - 1], "collision");
    free(keys);
}

Test(dim_key, appliance_keys)
{
    cr_assert_eq(dim_appliance_key(1, "Refrigerator"), 7595381628247784165LL, "pinned");
    cr_assert_eq(dim_appliance_key(2, "Refrigerator"), 5691191441536091511LL, "pinned");
    const char *names[] = {"", "a", "b", "ab", "ba", "Iron", "Iron ", "iron", "Iron2"};
    size_t n = sizeof(names) / sizeof(names[0]);
    int64_t keys[2 * 9];
    for (size_t i = 0; i < n; i++) {
        keys[2 * i] = dim_appliance_key(1, names[i]);
        keys[2 * i + 1] = dim_appliance_key(2, names[i]);
        cr_assert_gt(keys[2 * i], 0);
        cr_assert_eq(keys[2 * i], dim_appliance_key(1, names[i]), "deterministic");
    }
    qsort(keys, 2 * n, sizeof(keys[0]), cmp_i64);
    for (size_t i = 1; i < 2 * n; i++)
        cr_assert_neq(keys[i], keys[i - 1], "collision");
}

/* --- observing readings: every case ------------------------------------------------------ */

Test(dim_observe, into_an_empty_history)
{
    struct dim_history *h = WITH();
    cr_assert_eq(observe(h, 100, A, DIM_NONE, DIM_NONE), 1);
    EXPECT(h, {100, 100, A});
    dim_history_destroy(h);
}

Test(dim_observe, before_the_first_with_equal_attrs_moves_its_start)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 90, A, DIM_NONE, 100), 1);
    EXPECT(h, {90, 120, A}, {130, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, before_the_first_with_other_attrs_inserts_a_version)
{
    struct dim_history *h = WITH({100, 120, A});
    cr_assert_eq(observe(h, 90, B, DIM_NONE, DIM_NONE), 1);
    EXPECT(h, {90, 90, B}, {100, 120, A});
    dim_history_destroy(h);
}

Test(dim_observe, after_the_last_with_equal_attrs_extends_it)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 150, B, 140, DIM_NONE), 1);
    EXPECT(h, {100, 120, A}, {130, 150, B});
    dim_history_destroy(h);
}

Test(dim_observe, after_the_last_with_other_attrs_appends)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 150, A, DIM_NONE, DIM_NONE), 1);
    EXPECT(h, {100, 120, A}, {130, 140, B}, {150, 150, A});
    dim_history_destroy(h);
}

Test(dim_observe, gap_reading_equal_to_the_left_extends_it)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 125, A, 120, 130), 1);
    EXPECT(h, {100, 125, A}, {130, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, gap_reading_equal_to_the_right_moves_its_start)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 125, B, DIM_NONE, DIM_NONE), 1);
    EXPECT(h, {100, 120, A}, {125, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, gap_reading_unlike_both_neighbours_fills_the_gap)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 125, C, 120, 130), 1);
    EXPECT(h, {100, 120, A}, {125, 125, C}, {130, 140, B});
    /* The gap is now two gaps; readings there join their neighbours. */
    cr_assert_eq(observe(h, 121, A, 120, 125), 1);
    cr_assert_eq(observe(h, 124, C, 121, 125), 1);
    cr_assert_eq(observe(h, 126, B, 125, 130), 1);
    EXPECT(h, {100, 121, A}, {124, 125, C}, {126, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, runs_meet_without_an_equal_merge)
{
    /* A A _ B B, then the gap second as A then the B run grows back: versions stay apart. */
    struct dim_history *h = WITH({0, 0, A}, {10, 10, B});
    cr_assert_eq(observe(h, 5, A, 0, 10), 1);
    cr_assert_eq(observe(h, 7, B, 5, 10), 1);
    EXPECT(h, {0, 5, A}, {7, 10, B});
    cr_assert_eq(observe(h, 6, A, 5, 7), 1);
    EXPECT(h, {0, 6, A}, {7, 10, B});
    dim_history_destroy(h);
}

Test(dim_observe, inside_with_equal_attrs_changes_nothing)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 110, A, 105, 115), 0);
    cr_assert_eq(observe(h, 111, A, DIM_NONE, DIM_NONE), 0, "neighbours not needed");
    struct dim_attrs a = bat(A), b = bat(B);
    cr_assert_not(dim_history_needs_neighbours(h, 111, &a, NULL, NULL));
    cr_assert(dim_history_needs_neighbours(h, 111, &b, NULL, NULL));
    cr_assert_not(dim_history_needs_neighbours(h, 100, &b, NULL, NULL), "a boundary, not inside");
    cr_assert_not(dim_history_needs_neighbours(h, 125, &b, NULL, NULL), "a gap");
    cr_assert_not(dim_history_needs_neighbours(h, 90, &b, NULL, NULL), "before the first");
    EXPECT(h, {100, 120, A}, {130, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, inside_with_other_attrs_splits_the_version)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    struct dim_attrs c = bat(C);
    int64_t lo = 0, hi = 0;
    cr_assert(dim_history_needs_neighbours(h, 110, &c, &lo, &hi));
    cr_assert_eq(lo, 100);
    cr_assert_eq(hi, 120);
    cr_assert_eq(dim_history_observe(h, 110, &c, 109, 112), 1);
    EXPECT(h, {100, 109, A}, {110, 110, C}, {112, 120, A}, {130, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, split_next_to_the_first_and_last_readings)
{
    /* Readings 100, 101, 102 of A: a B at 101 leaves two single-reading A versions. */
    struct dim_history *h = WITH({100, 102, A});
    cr_assert_eq(observe(h, 101, B, 100, 102), 1);
    EXPECT(h, {100, 100, A}, {101, 101, B}, {102, 102, A});
    dim_history_destroy(h);
}

Test(dim_observe, split_needs_valid_neighbours)
{
    struct dim_history *h = WITH({100, 120, A});
    cr_assert_eq(observe(h, 110, B, DIM_NONE, DIM_NONE), -EINVAL);
    cr_assert_eq(observe(h, 110, B, 105, DIM_NONE), -EINVAL);
    cr_assert_eq(observe(h, 110, B, DIM_NONE, 115), -EINVAL);
    cr_assert_eq(observe(h, 110, B, 99, 115), -EINVAL, "prev before the version's start");
    cr_assert_eq(observe(h, 110, B, 105, 121), -EINVAL, "next after the version's last reading");
    cr_assert_eq(observe(h, 110, B, 110, 115), -EINVAL, "prev must precede t");
    cr_assert_eq(observe(h, 110, B, 105, 110), -EINVAL, "next must follow t");
    EXPECT(h, {100, 120, A});
    cr_assert_eq(observe(h, 110, B, 100, 120), 1);
    EXPECT(h, {100, 100, A}, {110, 110, B}, {120, 120, A});
    dim_history_destroy(h);
}

Test(dim_observe, given_neighbours_are_checked_in_gaps_too)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 140, B});
    cr_assert_eq(observe(h, 125, C, 119, 130), -EINVAL, "120 is a known later reading");
    cr_assert_eq(observe(h, 125, C, 120, 131), -EINVAL, "130 is a known earlier reading");
    cr_assert_eq(observe(h, 90, C, 80, DIM_NONE), -EINVAL, "nothing is known before 100");
    cr_assert_eq(observe(h, 150, C, 140, 160), -EINVAL, "nothing is known after 140");
    EXPECT(h, {100, 120, A}, {130, 140, B});
    dim_history_destroy(h);
}

Test(dim_observe, at_a_boundary)
{
    struct dim_history *h = WITH({100, 120, A}, {130, 130, B});
    cr_assert_eq(observe(h, 100, A, DIM_NONE, DIM_NONE), 0, "a known reading, same attrs");
    cr_assert_eq(observe(h, 120, A, DIM_NONE, DIM_NONE), 0);
    cr_assert_eq(observe(h, 130, B, DIM_NONE, DIM_NONE), 0);
    cr_assert_eq(observe(h, 100, B, DIM_NONE, DIM_NONE), -EEXIST);
    cr_assert_eq(observe(h, 120, C, DIM_NONE, DIM_NONE), -EEXIST);
    cr_assert_eq(observe(h, 130, A, DIM_NONE, DIM_NONE), -EEXIST);
    EXPECT(h, {100, 120, A}, {130, 130, B});
    /* The seconds right next to the boundaries are gaps, not insides. */
    cr_assert_eq(observe(h, 121, B, 120, 130), 1);
    cr_assert_eq(observe(h, 99, B, DIM_NONE, 100), 1);
    EXPECT(h, {99, 99, B}, {100, 120, A}, {121, 130, B});
    dim_history_destroy(h);
}

Test(dim_observe, rejects_bad_arguments)
{
    struct dim_history *h = WITH({100, 120, A});
    struct dim_attrs bad = bat(A);
    bad.n = DIM_ATTR_MAX + 1;
    cr_assert_eq(dim_history_observe(h, 130, &bad, DIM_NONE, DIM_NONE), -EINVAL);
    bad.n = -1;
    cr_assert_eq(dim_history_observe(h, 130, &bad, DIM_NONE, DIM_NONE), -EINVAL);
    struct dim_history *home = dim_history_new(DIM_HOME, 1, 1);
    struct dim_attrs a = bat(A);
    cr_assert_eq(dim_history_observe(home, 130, &a, DIM_NONE, DIM_NONE), -EINVAL,
                 "homes are registry-driven");
    cr_assert_eq(dim_history_count(home), 0);
    EXPECT(h, {100, 120, A});
    dim_history_destroy(home);
    dim_history_destroy(h);
}

/* --- reading the history ----------------------------------------------------------------- */

Test(dim_history, version_at_rows_and_keys)
{
    struct dim_history *empty = WITH();
    cr_assert_eq(dim_history_version_at(empty, 5), -1);
    cr_assert_eq(dim_history_key_at(empty, 5), 0);
    struct dim_row row;
    cr_assert_not(dim_history_row(empty, 0, &row));
    dim_history_destroy(empty);

    struct dim_history *h = WITH({10, 20, A}, {30, 40, B}, {50, 50, C});
    cr_assert_eq(dim_history_version_at(h, 5), 0, "before the first: the first");
    cr_assert_eq(dim_history_version_at(h, 10), 0);
    cr_assert_eq(dim_history_version_at(h, 25), 0, "a gap belongs to the version before it");
    cr_assert_eq(dim_history_version_at(h, 29), 0);
    cr_assert_eq(dim_history_version_at(h, 30), 1);
    cr_assert_eq(dim_history_version_at(h, 49), 1);
    cr_assert_eq(dim_history_version_at(h, 50), 2);
    cr_assert_eq(dim_history_version_at(h, INT64_MAX), 2);
    cr_assert_eq(dim_history_key_at(h, 25), dim_version_key(DIM_BATTERY, 1, 7, 10));
    cr_assert_eq(dim_history_key_at(h, 5), dim_version_key(DIM_BATTERY, 1, 7, 10));
    cr_assert_eq(dim_history_key_at(h, 99), dim_version_key(DIM_BATTERY, 1, 7, 50));

    cr_assert(dim_history_row(h, 0, &row));
    cr_assert_eq(row.key, dim_version_key(DIM_BATTERY, 1, 7, 10));
    cr_assert_eq(row.start, 10);
    cr_assert_eq(row.end, 30, "end = next start, not last_seen");
    cr_assert_not(row.current);
    struct dim_attrs a = bat(A);
    cr_assert(dim_attrs_equal(row.attrs, &a));
    cr_assert(dim_history_row(h, 2, &row));
    cr_assert_eq(row.start, 50);
    cr_assert_eq(row.end, DIM_NONE);
    cr_assert(row.current);
    cr_assert_not(dim_history_row(h, 3, &row));
    cr_assert_null(dim_history_version(h, 3));
    dim_history_destroy(h);
}

Test(dim_history, clone_and_equal)
{
    struct dim_history *h = WITH({10, 20, A}, {30, 40, B});
    struct dim_history *c = dim_history_clone(h);
    cr_assert_not_null(c);
    cr_assert(dim_history_equal(h, c));
    cr_assert_eq(observe(c, 41, B, 40, DIM_NONE), 1);
    cr_assert_not(dim_history_equal(h, c), "last_seen is part of the version");
    struct dim_history *other = dim_history_new(DIM_BATTERY, 1, 8);
    struct dim_history *empty = dim_history_new(DIM_BATTERY, 1, 7);
    cr_assert_not(dim_history_equal(other, empty), "different device");
    cr_assert_not(dim_history_equal(h, empty));
    struct dim_history *empty_clone = dim_history_clone(empty);
    cr_assert(dim_history_equal(empty, empty_clone));
    dim_history_destroy(empty_clone);
    dim_history_destroy(empty);
    dim_history_destroy(other);
    dim_history_destroy(c);
    dim_history_destroy(h);
    dim_history_destroy(NULL);
}

/* The rows of h that differ from stored's, as a string of 'w' (written) and '.' (unchanged). */
static void expect_written_rows(const struct dim_history *stored, const struct dim_history *h,
                                const char *want)
{
    char got[16] = "";
    for (size_t i = 0; i < dim_history_count(h) && i + 1 < sizeof(got); i++)
        got[i] = dim_history_row_unchanged(stored, h, i) ? '.' : 'w';
    cr_assert_str_eq(got, want);
}

Test(dim_history, only_rows_that_differ_from_the_stored_ones_are_written)
{
    struct dim_history *stored = WITH({10, 20, A}, {30, 40, B});
    struct dim_history *h = dim_history_clone(stored);
    expect_written_rows(stored, h, "..");
    cr_assert_not(dim_history_drops_rows(stored, h));

    /* The usual flush: the current version's last_seen moves on. */
    cr_assert_eq(observe(h, 41, B, 40, DIM_NONE), 1);
    expect_written_rows(stored, h, ".w");
    cr_assert_not(dim_history_drops_rows(stored, h));

    /* A new version after the last: it is new, and the old last one gets an end date. */
    cr_assert_eq(observe(h, 50, C, 41, DIM_NONE), 1);
    expect_written_rows(stored, h, ".ww");
    cr_assert_not(dim_history_drops_rows(stored, h));
    dim_history_destroy(h);

    /* A late reading in the gap, equal to the right: that version's start (its key) moves, so
     * the stored row with the old key goes, and the version before it gets a new end date. */
    h = dim_history_clone(stored);
    cr_assert_eq(observe(h, 25, B, 20, 30), 1);
    expect_written_rows(stored, h, "ww");
    cr_assert(dim_history_drops_rows(stored, h));
    dim_history_destroy(h);

    /* A split: the left part keeps its key (new last_seen), two new versions follow. */
    h = dim_history_clone(stored);
    cr_assert_eq(observe(h, 15, C, 10, 20), 1);
    expect_written_rows(stored, h, "www.");
    cr_assert_not(dim_history_drops_rows(stored, h));
    dim_history_destroy(h);

    /* Against an empty stored history (a new device) every row is written; out of range: no. */
    struct dim_history *empty = dim_history_new(DIM_BATTERY, 1, 7);
    expect_written_rows(empty, stored, "ww");
    cr_assert_not(dim_history_drops_rows(empty, stored));
    cr_assert(dim_history_drops_rows(stored, empty));
    cr_assert_not(dim_history_row_unchanged(stored, stored, 2));
    struct dim_history *other = dim_history_new(DIM_BATTERY, 1, 8);
    cr_assert_eq(dim_history_restore(other, 10, 20, &(struct dim_attrs){0}), 0);
    cr_assert_not(dim_history_row_unchanged(other, stored, 0), "another device's rows");
    dim_history_destroy(other);
    dim_history_destroy(empty);
    dim_history_destroy(stored);
}

Test(dim_history, restore_checks_the_invariants)
{
    struct dim_history *h = WITH({10, 20, A});
    struct dim_attrs a = bat(A), b = bat(B);
    cr_assert_eq(dim_history_restore(h, 30, 25, &b), -EINVAL, "start after last_seen");
    cr_assert_eq(dim_history_restore(h, 20, 25, &b), -EINVAL, "overlaps the previous version");
    cr_assert_eq(dim_history_restore(h, 30, 40, &a), -EINVAL, "equal to the previous version");
    b.n = 9;
    cr_assert_eq(dim_history_restore(h, 30, 40, &b), -EINVAL);
    EXPECT(h, {10, 20, A});

    struct dim_history *home = dim_history_new(DIM_HOME, 1, 1);
    struct dim_attrs hm;
    dim_home_attrs(1, 2, &hm);
    cr_assert_eq(dim_history_restore(home, 10, 20, &hm), -EINVAL, "registry: last_seen = start");
    cr_assert_eq(dim_history_restore(home, 10, 10, &hm), 0);
    cr_assert_eq(dim_history_count(home), 1);
    dim_history_destroy(home);
    dim_history_destroy(h);
}

Test(dim_history, from_readings_is_the_reference)
{
    struct dim_observation obs[6];
    int64_t ts[] = {1, 2, 5, 6, 9, 12};
    int which[] = {A, A, B, A, A, C};
    for (int i = 0; i < 6; i++) {
        obs[i].t = ts[i];
        obs[i].attrs = bat(which[i]);
    }
    struct dim_history *h = dim_history_from_readings(DIM_BATTERY, 1, 7, obs, 6);
    cr_assert_not_null(h);
    EXPECT(h, {1, 2, A}, {5, 5, B}, {6, 9, A}, {12, 12, C});
    dim_history_destroy(h);

    h = dim_history_from_readings(DIM_BATTERY, 1, 7, obs, 0);
    cr_assert_not_null(h);
    cr_assert_eq(dim_history_count(h), 0);
    dim_history_destroy(h);

    obs[3].t = 5; /* duplicate second */
    errno = 0;
    cr_assert_null(dim_history_from_readings(DIM_BATTERY, 1, 7, obs, 6));
    cr_assert_eq(errno, EINVAL);
    obs[3].t = 4; /* out of order */
    errno = 0;
    cr_assert_null(dim_history_from_readings(DIM_BATTERY, 1, 7, obs, 6));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(dim_history_from_readings(DIM_HOME, 1, 1, obs, 1));
    cr_assert_eq(errno, EINVAL);
}

/* --- order independence ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define SPAN 1000
#define T0 1739491200

/* The attributes of the battery at second s: A, B, C (its first reading after a gap), A, a
 * one-reading D, A, B, a one-reading C, B. */
static int attrs_at(int s)
{
    if (s < 150)
        return A;
    if (s < 230)
        return B;
    if (s < 420)
        return C;
    if (s == 600)
        return D;
    if (s < 800)
        return A;
    return s == 900 ? C : B;
}

static bool present(int s)
{
    if ((s >= 200 && s < 260) || (s >= 500 && s < 530) || (s >= 700 && s < 702))
        return false;
    if (s == 600 || s == 900 || s == 0 || s == SPAN - 1)
        return true;
    return rng_next() % 10 != 0; /* and 10% lost at random */
}

/* Latest seen second before s / earliest after, as absolute times, or DIM_NONE. */
static int64_t seen_before(const bool *seen, int s)
{
    for (int k = s - 1; k >= 0; k--)
        if (seen[k])
            return T0 + k;
    return DIM_NONE;
}

static int64_t seen_after(const bool *seen, int s)
{
    for (int k = s + 1; k < SPAN; k++)
        if (seen[k])
            return T0 + k;
    return DIM_NONE;
}

/* The reference over the seen subset of readings. */
static struct dim_history *reference_of(const struct dim_observation *sorted, size_t n,
                                        const bool *seen)
{
    struct dim_observation *sub = malloc((n ? n : 1) * sizeof(*sub));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (seen[sorted[i].t - T0])
            sub[m++] = sorted[i];
    struct dim_history *ref = dim_history_from_readings(DIM_BATTERY, 1, 7, sub, m);
    free(sub);
    cr_assert_not_null(ref);
    return ref;
}

Test(dim_order, any_order_gives_the_same_versions)
{
    rng_state = 42;
    struct dim_observation *sorted = malloc(SPAN * sizeof(*sorted));
    size_t n = 0;
    for (int s = 0; s < SPAN; s++) {
        if (!present(s))
            continue;
        sorted[n].t = T0 + s;
        sorted[n].attrs = bat(attrs_at(s));
        n++;
    }
    struct dim_history *ref = dim_history_from_readings(DIM_BATTERY, 1, 7, sorted, n);
    cr_assert_not_null(ref);
    cr_assert_eq(dim_history_count(ref), 9, "A B C A D A B C B, got %zu", dim_history_count(ref));
    cr_assert_eq(dim_history_version(ref, 2)->start, T0 + 260, "C starts at its first reading");
    cr_assert_eq(dim_history_version(ref, 1)->last_seen, T0 + 199);

    size_t *order = malloc(n * sizeof(*order));
    const int orders = 250;
    for (int o = 0; o < orders; o++) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        if (o == 1) { /* one order in reverse, the rest shuffled; order 0 is sorted */
            for (size_t i = 0; i < n; i++)
                order[i] = n - 1 - i;
        } else if (o > 1) {
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)(rng_next() % (i + 1));
                size_t tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
        }
        bool seen[SPAN] = {false};
        struct dim_history *h = dim_history_new(DIM_BATTERY, 1, 7);
        for (size_t k = 0; k < n; k++) {
            const struct dim_observation *r = &sorted[order[k]];
            int s = (int)(r->t - T0);
            int64_t prev = DIM_NONE, next = DIM_NONE, lo = 0, hi = 0;
            bool need = dim_history_needs_neighbours(h, r->t, &r->attrs, &lo, &hi);
            if (o % 2 == 0 || need) {
                /* even orders always give the neighbours, odd ones only when needed */
                prev = seen_before(seen, s);
                next = seen_after(seen, s);
            }
            if (need)
                cr_assert(lo <= prev && next <= hi, "neighbours outside [lo, hi]");
            int rc = dim_history_observe(h, r->t, &r->attrs, prev, next);
            cr_assert(rc == 0 || rc == 1, "order %d step %zu: rc %d", o, k, rc);
            seen[s] = true;
            if (o < 6) { /* the invariant after every step, for a few orders */
                struct dim_history *step = reference_of(sorted, n, seen);
                cr_assert(dim_history_equal(h, step), "order %d diverges at step %zu", o, k);
                dim_history_destroy(step);
            }
        }
        cr_assert(dim_history_equal(h, ref), "order %d: different history", o);
        for (size_t i = 0; i < dim_history_count(ref); i++)
            cr_assert_eq(memcmp(dim_history_version(h, i), dim_history_version(ref, i),
                                sizeof(struct dim_version)),
                         0, "order %d version %zu not byte-identical", o, i);
        dim_history_destroy(h);
    }
    free(order);
    free(sorted);
    dim_history_destroy(ref);
}

/* --- registry-driven histories ----------------------------------------------------------- */

static struct dim_attrs home(int which)
{
    struct dim_attrs a;
    dim_home_attrs(which * 100 * FIXED_SCALE, which * 1000 * FIXED_SCALE, &a);
    return a;
}

static int reg(struct dim_history *h, int64_t t, int which)
{
    struct dim_attrs a = home(which);
    return dim_history_observe_registry(h, t, &a);
}

struct exp_reg {
    int64_t start;
    int which;
};

static void expect_registry(const struct dim_history *h, const struct exp_reg *v, size_t n)
{
    cr_assert_eq(dim_history_count(h), n, "expected %zu versions, got %zu", n,
                 dim_history_count(h));
    for (size_t i = 0; i < n; i++) {
        const struct dim_version *got = dim_history_version(h, i);
        struct dim_attrs want = home(v[i].which);
        cr_assert_eq(got->start, v[i].start, "version %zu starts at %lld, want %lld", i,
                     (long long)got->start, (long long)v[i].start);
        cr_assert_eq(got->last_seen, got->start);
        cr_assert(dim_attrs_equal(&got->attrs, &want), "version %zu has the wrong attributes", i);
    }
}
#define EXPECT_REG(h, ...)                                                                         \
    expect_registry((h), (const struct exp_reg[]){__VA_ARGS__},                                    \
                    N(((const struct exp_reg[]){__VA_ARGS__})))

Test(dim_registry, first_load_and_unchanged_reloads)
{
    struct dim_history *h = dim_history_new(DIM_HOME, 1, 1);
    cr_assert_eq(reg(h, 100, A), 1);
    EXPECT_REG(h, {100, A});
    cr_assert_eq(reg(h, 200, A), 0, "unchanged reload at a later load time");
    cr_assert_eq(reg(h, 100, A), 0);
    EXPECT_REG(h, {100, A});
    cr_assert_eq(reg(h, 300, B), 1, "edited: a new version from the load time");
    EXPECT_REG(h, {100, A}, {300, B});
    cr_assert_eq(reg(h, 400, B), 0);
    EXPECT_REG(h, {100, A}, {300, B});
    dim_history_destroy(h);
}

Test(dim_registry, back_dated_entries_supersede_later_versions)
{
    struct dim_history *h = dim_history_new(DIM_HOME, 1, 1);
    cr_assert_eq(reg(h, 100, A), 1);
    cr_assert_eq(reg(h, 300, B), 1);
    cr_assert_eq(reg(h, 250, B), 1, "B was in effect earlier than first known");
    EXPECT_REG(h, {100, A}, {250, B});
    cr_assert_eq(reg(h, 200, C), 1, "from 200 on, C: B is gone from the registry");
    EXPECT_REG(h, {100, A}, {200, C});
    cr_assert_eq(reg(h, 200, A), 1, "same instant, attributes back to A: merges");
    EXPECT_REG(h, {100, A});
    cr_assert_eq(reg(h, 50, A), 1, "A known from earlier");
    EXPECT_REG(h, {50, A});
    cr_assert_eq(reg(h, 10, B), 1, "from 10 on, B");
    EXPECT_REG(h, {10, B});
    dim_history_destroy(h);
}

Test(dim_registry, same_instant_other_attrs_replaces)
{
    struct dim_history *h = dim_history_new(DIM_HOME, 1, 1);
    cr_assert_eq(reg(h, 100, A), 1);
    cr_assert_eq(reg(h, 200, B), 1);
    cr_assert_eq(reg(h, 200, C), 1);
    EXPECT_REG(h, {100, A}, {200, C});
    dim_history_destroy(h);
}

Test(dim_registry, a_snapshot_with_several_entries)
{
    struct dim_history *h = dim_history_new(DIM_HOME, 1, 1);
    cr_assert_eq(reg(h, 10, D), 1);
    struct dim_observation obs[3] = {{300, home(B)}, {100, home(A)}, {200, home(A)}};
    cr_assert_eq(dim_history_apply_registry(h, obs, 3), 1);
    EXPECT_REG(h, {10, D}, {100, A}, {300, B});
    struct dim_observation again[3] = {{200, home(A)}, {300, home(B)}, {100, home(A)}};
    cr_assert_eq(dim_history_apply_registry(h, again, 3), 0, "unchanged snapshot, any order");
    EXPECT_REG(h, {10, D}, {100, A}, {300, B});
    struct dim_observation edit[2] = {{100, home(A)}, {300, home(C)}};
    cr_assert_eq(dim_history_apply_registry(h, edit, 2), 1);
    EXPECT_REG(h, {10, D}, {100, A}, {300, C});

    struct dim_observation dup_ok[2] = {{400, home(C)}, {400, home(C)}};
    cr_assert_eq(dim_history_apply_registry(h, dup_ok, 2), 0);
    struct dim_observation conflict[2] = {{400, home(C)}, {400, home(A)}};
    cr_assert_eq(dim_history_apply_registry(h, conflict, 2), -EINVAL);
    cr_assert_eq(dim_history_apply_registry(h, conflict, 0), -EINVAL);
    struct dim_observation bad_n = {500, home(A)};
    bad_n.attrs.n = DIM_ATTR_MAX + 1;
    cr_assert_eq(dim_history_apply_registry(h, &bad_n, 1), -EINVAL);
    cr_assert_eq(dim_history_observe_registry(h, 500, &bad_n.attrs), -EINVAL);
    EXPECT_REG(h, {10, D}, {100, A}, {300, C});

    struct dim_history *battery = dim_history_new(DIM_BATTERY, 1, 1);
    cr_assert_eq(dim_history_apply_registry(battery, obs, 3), -EINVAL, "batteries: stream");
    cr_assert_eq(dim_history_count(battery), 0);
    dim_history_destroy(battery);
    dim_history_destroy(h);
}

Test(dim_registry, panel_name_and_home_version_the_panel)
{
    struct dim_history *h = dim_history_new(DIM_PANEL, 0, 4);
    struct dim_attrs p;
    cr_assert(dim_panel_attrs("kafka panel", 10 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE,
                              1, &p));
    cr_assert_eq(dim_history_observe_registry(h, 100, &p), 1);
    cr_assert_eq(dim_history_observe_registry(h, 200, &p), 0);
    cr_assert(dim_panel_attrs("kafka panel", 10 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE,
                              2, &p));
    cr_assert_eq(dim_history_observe_registry(h, 300, &p), 1, "moved to home 2");
    cr_assert(
        dim_panel_attrs("roof", 10 * FIXED_SCALE, 1000 * FIXED_SCALE, 25 * FIXED_SCALE, 2, &p));
    cr_assert_eq(dim_history_observe_registry(h, 400, &p), 1, "renamed");
    cr_assert_eq(dim_history_count(h), 3);
    struct dim_row row;
    cr_assert(dim_history_row(h, 2, &row));
    cr_assert_str_eq(row.attrs->text, "roof");
    cr_assert(row.current);
    cr_assert_eq(row.key, dim_version_key(DIM_PANEL, 0, 4, 400));
    cr_assert(dim_history_row(h, 0, &row));
    cr_assert_eq(row.end, 300);
    dim_history_destroy(h);
}

Test(dim_registry, an_unchanged_reload_writes_no_row_an_edit_its_rows)
{
    struct dim_history *stored = dim_history_new(DIM_HOME, 1, 1);
    cr_assert_eq(reg(stored, 100, A), 1);
    struct dim_history *h = dim_history_clone(stored);
    cr_assert_eq(reg(h, 200, A), 0);
    expect_written_rows(stored, h, ".");
    cr_assert_eq(reg(h, 300, B), 1);
    expect_written_rows(stored, h, "ww"); /* the first version now ends at 300 */
    cr_assert_not(dim_history_drops_rows(stored, h));
    cr_assert_eq(reg(h, 50, C), 1); /* back-dated: supersedes every version */
    expect_written_rows(stored, h, "w");
    cr_assert(dim_history_drops_rows(stored, h));
    dim_history_destroy(h);
    dim_history_destroy(stored);
}
