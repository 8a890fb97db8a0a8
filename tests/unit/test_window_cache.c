/* Unit tests of the window cache: lookup, replacement, the bound and which window it evicts,
 * forgetting, and a cache of size 0. */
#include <criterion/criterion.h>

#include "solarx/window_cache.h"

#define T0 1739491200

static struct window_cache_row row_of(int32_t home_id, int64_t start, int64_t version)
{
    struct window_cache_row row = {.version = version};
    struct window_key key = window_key_make(READING_HOME, home_id, home_id, start);
    window_state_init(&row.state, &key, 900);
    struct reading r = {.kind = READING_HOME,
                        .home_id = home_id,
                        .device_id = home_id,
                        .ts = start + 1,
                        .energy_wh = 1000000};
    cr_assert(window_apply(&row.state, &r));
    return row;
}

static struct window_key key_of(int32_t home_id, int64_t start)
{
    return window_key_make(READING_HOME, home_id, home_id, start);
}

Test(window_cache, a_published_row_is_found_by_its_key_and_only_by_it)
{
    struct window_cache *c = window_cache_new(8);
    cr_assert_not_null(c);
    struct window_cache_row row = row_of(1, T0, 3);
    row.solar_home = 0;
    cr_assert(window_cache_publish(c, &row));
    struct window_key k = key_of(1, T0);
    const struct window_cache_row *got = window_cache_get(c, &k);
    cr_assert_not_null(got);
    cr_assert_eq(got->version, 3);
    cr_assert_eq(memcmp(&got->state, &row.state, sizeof(row.state)), 0, "the state, byte for byte");
    struct window_key other = key_of(1, T0 + 900), solar = window_key_make(READING_SOLAR, 1, 1, T0);
    cr_assert_null(window_cache_get(c, &other));
    cr_assert_null(window_cache_get(c, &solar), "the kind is part of the key");
    window_cache_free(c);
}

Test(window_cache, publishing_a_key_again_replaces_its_row)
{
    struct window_cache *c = window_cache_new(8);
    struct window_cache_row a = row_of(1, T0, 1), b = row_of(1, T0, 2);
    struct reading r = {
        .kind = READING_HOME, .home_id = 1, .device_id = 1, .ts = T0 + 7, .energy_wh = 5};
    cr_assert(window_apply(&b.state, &r));
    cr_assert(window_cache_publish(c, &a));
    cr_assert(window_cache_publish(c, &b));
    struct window_key k = key_of(1, T0);
    cr_assert_eq(window_cache_count(c), 1);
    cr_assert_eq(window_cache_get(c, &k)->version, 2);
    cr_assert_eq(window_cache_get(c, &k)->state.readings_count, 2);
    window_cache_free(c);
}

Test(window_cache, beyond_its_bound_the_least_recently_published_window_goes)
{
    struct window_cache *c = window_cache_new(3);
    for (int home = 1; home <= 3; home++) {
        struct window_cache_row row = row_of(home, T0, 1);
        cr_assert(window_cache_publish(c, &row));
    }
    struct window_cache_row again = row_of(1, T0, 2); /* home 1 is now the most recent */
    cr_assert(window_cache_publish(c, &again));
    struct window_cache_row fourth = row_of(4, T0, 1);
    cr_assert(window_cache_publish(c, &fourth));
    cr_assert_eq(window_cache_count(c), 3);
    struct window_key k1 = key_of(1, T0), k2 = key_of(2, T0), k3 = key_of(3, T0),
                      k4 = key_of(4, T0);
    cr_assert_null(window_cache_get(c, &k2), "home 2 was published least recently");
    cr_assert_not_null(window_cache_get(c, &k1));
    cr_assert_not_null(window_cache_get(c, &k3));
    cr_assert_not_null(window_cache_get(c, &k4));
    for (int i = 0; i < 1000; i++) { /* a long run stays at the bound */
        struct window_cache_row row = row_of(100 + i, T0 + 900 * (i % 7), 1);
        cr_assert(window_cache_publish(c, &row));
        cr_assert_leq(window_cache_count(c), 3);
    }
    window_cache_free(c);
}

Test(window_cache, a_forgotten_window_is_gone_and_clear_empties_it)
{
    struct window_cache *c = window_cache_new(8);
    struct window_cache_row a = row_of(1, T0, 1), b = row_of(2, T0, 1);
    cr_assert(window_cache_publish(c, &a));
    cr_assert(window_cache_publish(c, &b));
    struct window_key k1 = key_of(1, T0), k2 = key_of(2, T0), absent = key_of(9, T0);
    window_cache_forget(c, &k1);
    window_cache_forget(c, &absent); /* nothing */
    cr_assert_null(window_cache_get(c, &k1));
    cr_assert_not_null(window_cache_get(c, &k2));
    window_cache_clear(c);
    cr_assert_eq(window_cache_count(c), 0);
    cr_assert_null(window_cache_get(c, &k2));
    window_cache_free(c);
}

Test(window_cache, a_cache_of_size_zero_keeps_nothing)
{
    struct window_cache *c = window_cache_new(0);
    struct window_cache_row a = row_of(1, T0, 1);
    cr_assert(window_cache_publish(c, &a));
    cr_assert_eq(window_cache_count(c), 0);
    cr_assert_null(window_cache_get(c, &a.state.key));
    cr_assert_eq(window_cache_limit(c), 0);
    window_cache_free(c);
}

Test(window_cache, an_entry_is_under_a_kibibyte)
{
    /* The README's sizing: the default 4096 windows stay under 4 MiB. */
    cr_assert_lt(window_cache_entry_bytes(), 1024, "%zu", window_cache_entry_bytes());
}
