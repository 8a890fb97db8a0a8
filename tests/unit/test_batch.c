/* Unit tests of batches: grouping by window, offsets, dead letters, absorb. */
#include <criterion/criterion.h>
#include <string.h>

#include "solarx/batch.h"

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

TestSuite(batch, .init = setup, .fini = teardown);

static struct reading home_reading(int32_t home, int64_t ts)
{
    return (struct reading){
        .kind = READING_HOME, .home_id = home, .device_id = home, .ts = ts, .energy_wh = 1000};
}

Test(batch, readings_are_grouped_by_device_and_window)
{
    struct batch *b = batch_new(900, zone);
    int64_t t0 = 1739491200; /* 2025-02-14 00:00:00 UTC */
    struct reading r1 = home_reading(1, t0), r2 = home_reading(1, t0 + 899),
                   r3 = home_reading(1, t0 + 900), r4 = home_reading(2, t0 + 5);
    batch_add_reading(b, &r1, 0, 10);
    batch_add_reading(b, &r2, 0, 11);
    batch_add_reading(b, &r3, 0, 12);
    batch_add_reading(b, &r4, 1, 3);
    cr_assert_eq(b->reading_count, 4);
    cr_assert_eq(b->window_count, 3);
    struct batch_window **w = batch_sorted_windows(b);
    cr_assert_eq(w[0]->key.home_id, 1);
    cr_assert_eq(w[0]->key.start, t0);
    cr_assert_eq(w[0]->count, 2);
    cr_assert_eq(w[0]->items[1].offset, 11);
    cr_assert_eq(w[1]->key.start, t0 + 900);
    cr_assert_eq(w[2]->key.home_id, 2);
    cr_assert_eq(w[2]->items[0].offset, 3);
    cr_assert_eq(batch_sorted_windows(b), w, "the list is the batch's own, built again in place");
    batch_destroy(b);
}

Test(batch, solar_windows_are_keyed_by_panel_alone)
{
    struct batch *b = batch_new(900, zone);
    struct reading s1 = {.kind = READING_SOLAR, .home_id = 1, .device_id = 4, .ts = 1739491200};
    struct reading s2 = s1;
    s2.home_id = 2;
    s2.ts++;
    batch_add_reading(b, &s1, 0, 1);
    batch_add_reading(b, &s2, 0, 2);
    cr_assert_eq(b->window_count, 1, "one panel, one window, whatever the home says");
    struct batch_window **w = batch_sorted_windows(b);
    cr_assert_eq(w[0]->key.home_id, 0);
    cr_assert_eq(w[0]->items[1].r.home_id, 2, "the reading keeps its home");
    batch_destroy(b);
}

Test(batch, offsets_keep_the_highest_next_offset_per_partition)
{
    struct batch *b = batch_new(900, zone);
    batch_note_offset(b, READING_HOME, 0, 5);
    batch_note_offset(b, READING_HOME, 0, 3);
    batch_note_offset(b, READING_HOME, 1, 0);
    batch_note_offset(b, READING_BATTERY, 0, 9);
    cr_assert_eq(b->offset_count, 3);
    for (struct batch_offset *o = b->offsets; o; o = o->hh.next) {
        if (o->id.kind == READING_HOME && o->id.partition == 0)
            cr_assert_eq(o->next_offset, 6);
        if (o->id.kind == READING_HOME && o->id.partition == 1)
            cr_assert_eq(o->next_offset, 1);
        if (o->id.kind == READING_BATTERY)
            cr_assert_eq(o->next_offset, 10);
    }
    cr_assert_not(batch_is_empty(b), "offsets alone make a batch worth flushing");
    batch_clear(b);
    cr_assert(batch_is_empty(b));
    batch_destroy(b);
}

Test(batch, storage_is_reused_after_clear)
{
    struct batch *b = batch_new(900, zone);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10000; i++) {
            struct reading r = home_reading(1 + i % 7, 1739491200 + i);
            batch_add_reading(b, &r, 0, i);
        }
        struct batch_window **w = batch_sorted_windows(b);
        size_t total = 0;
        for (size_t i = 0; i < b->window_count; i++) {
            total += w[i]->count;
            for (size_t j = 1; j < w[i]->count; j++)
                cr_assert_lt(w[i]->items[j - 1].offset, w[i]->items[j].offset);
        }
        cr_assert_eq(total, 10000);
        struct batch_reading *storage = b->arrived;
        batch_clear(b);
        cr_assert_eq(b->arrived, storage, "cleared, not freed");
    }
    batch_destroy(b);
}

Test(batch, dead_letters_are_copied_and_their_reason_made_printable)
{
    struct batch *b = batch_new(900, zone);
    char payload[] = "{\"broken\xff";
    batch_add_dead_letter(b, READING_SOLAR, 2, 77, "k", 1, payload, sizeof(payload) - 1,
                          "invalid_json", "invalid_json: bad byte \xff\n here");
    payload[0] = 'X'; /* the batch holds its own copy */
    cr_assert_eq(b->dead_count, 1);
    cr_assert_eq(b->dead[0].payload[0], '{');
    cr_assert_eq(b->dead[0].payload_len, sizeof(payload) - 1);
    cr_assert_eq(b->dead[0].offset, 77);
    cr_assert_str_eq(b->dead[0].reason, "invalid_json");
    cr_assert_str_eq(b->dead[0].error, "invalid_json: bad byte ?? here");
    batch_destroy(b);
}

Test(batch, absorb_moves_everything_and_empties_the_source)
{
    struct batch *a = batch_new(900, zone), *b = batch_new(900, zone);
    struct reading r1 = home_reading(1, 1739491200), r2 = home_reading(1, 1739491201);
    batch_add_reading(a, &r1, 0, 1);
    batch_note_offset(a, READING_HOME, 0, 1);
    batch_add_reading(b, &r2, 0, 2);
    batch_note_offset(b, READING_HOME, 0, 2);
    batch_add_dead_letter(b, READING_HOME, 0, 3, NULL, 0, "x", 1, "invalid_json", "e");
    batch_absorb(a, b);
    cr_assert(batch_is_empty(b));
    cr_assert_eq(a->reading_count, 2);
    cr_assert_eq(a->window_count, 1);
    struct batch_window **w = batch_sorted_windows(a);
    cr_assert_eq(w[0]->count, 2);
    cr_assert_eq(w[0]->items[0].offset, 1, "arrival order is kept");
    cr_assert_eq(w[0]->items[1].offset, 2);
    cr_assert_eq(a->dead_count, 1);
    cr_assert_eq(a->offsets->next_offset, 3);
    batch_destroy(a);
    batch_destroy(b);
}
