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

/* ---- bytes, split and dead letters (poison isolation) ---- */

static int64_t next_offset_of(const struct batch *b, enum reading_kind kind, int32_t partition)
{
    for (const struct batch_offset *o = b->offsets; o; o = o->hh.next)
        if (o->id.kind == (int32_t)kind && o->id.partition == partition)
            return o->next_offset;
    return -1;
}

static struct reading battery_reading(int32_t home, int32_t battery, int64_t ts)
{
    return (struct reading){.kind = READING_BATTERY,
                            .home_id = home,
                            .device_id = battery,
                            .ts = ts,
                            .energy_wh = 9860000000,
                            .capacity_kwh = 12000000,
                            .max_charge_speed_w = 1000000,
                            .max_output_w = 3330000,
                            .status = BATTERY_DISCHARGING};
}

Test(batch, bytes_count_readings_and_dead_letter_payloads)
{
    struct batch *b = batch_new(900, zone);
    struct reading r = home_reading(1, 1739491200);
    batch_add_reading(b, &r, 0, 1);
    cr_assert_eq(batch_bytes(b), BATCH_READING_BYTES);
    batch_add_dead_letter(b, READING_HOME, 0, 2, "k", 1, "xyz", 3, "invalid_json", "e");
    cr_assert_eq(batch_bytes(b), BATCH_READING_BYTES + 1 + 3 + 1);
    cr_assert(!batch_is_full(b, 3, 1000, 1000));
    cr_assert(batch_is_full(b, 2, 1000, 1000), "two entries reach two readings");
    cr_assert(batch_is_full(b, 1000, BATCH_READING_BYTES + 5, 1000), "bytes alone make it full");
    batch_clear(b);
    cr_assert_eq(batch_bytes(b), 0);
    batch_destroy(b);
}

Test(batch, truncated_dead_letters_keep_a_prefix_with_the_whole_length_and_digest)
{
    struct batch *b = batch_new(900, zone);
    size_t len = 200000;
    char *payload = malloc(len);
    memset(payload, 'a', len);
    batch_add_truncated_dead_letter(b, READING_HOME, 0, 7, NULL, 0, payload, len, 65536,
                                    "too_large", "too_large: big");
    const struct batch_dead_letter *d = &b->dead[0];
    cr_assert_eq(d->payload_len, 65536);
    cr_assert_eq(d->payload_bytes, 200000);
    /* sha256 of 200000 'a' characters (as `head -c 200000 /dev/zero | tr '\0' a | sha256sum`) */
    static const unsigned char want[4] = {0x22, 0x87, 0xd2, 0x07};
    cr_assert(memcmp(d->payload_sha256, want, 4) == 0, "digest of the whole payload");
    cr_assert_eq(batch_bytes(b), 65536 + strlen("too_large: big"));
    /* A whole payload has the same digest as a truncated copy of it. */
    batch_add_dead_letter(b, READING_HOME, 0, 8, NULL, 0, payload, len, "x", "y");
    cr_assert(memcmp(b->dead[1].payload_sha256, d->payload_sha256, 32) == 0);
    cr_assert_eq(b->dead[1].payload_len, len);
    free(payload);
    batch_destroy(b);
}

/* A batch of messages over two topics and partitions, with a gap after the last offsets. */
static struct batch *mixed_batch(void)
{
    struct batch *b = batch_new(900, zone);
    int64_t t0 = 1739491200;
    for (int64_t off = 10; off < 15; off++) { /* home p0: 10..14 */
        struct reading r = home_reading(1, t0 + off);
        batch_add_reading(b, &r, 0, off);
        batch_note_offset(b, READING_HOME, 0, off);
    }
    for (int64_t off = 3; off < 6; off++) { /* battery p1: 3..5, two batteries each */
        struct reading r1 = battery_reading(1, 1, t0 + off), r2 = battery_reading(1, 2, t0 + off);
        batch_add_reading(b, &r1, 1, off);
        batch_add_reading(b, &r2, 1, off);
        batch_note_offset(b, READING_BATTERY, 1, off);
    }
    batch_add_dead_letter(b, READING_HOME, 0, 15, NULL, 0, "{", 1, "invalid_json", "bad");
    batch_note_offset(b, READING_HOME, 0, 15);
    batch_note_offset(b, READING_HOME, 0, 19); /* e.g. transaction markers: nothing to write */
    return b;
}

Test(batch, split_halves_messages_in_topic_partition_offset_order)
{
    struct batch *src = mixed_batch();
    cr_assert_eq(batch_message_count(src), 9);
    struct batch *first = batch_new(900, zone), *second = batch_new(900, zone);
    cr_assert(batch_split(src, first, second));
    /* Order: home (kind 0) p0 10..15, then battery p1 3..5: first = home 10..13. */
    cr_assert_eq(batch_message_count(first), 4);
    cr_assert_eq(batch_message_count(second), 5);
    cr_assert_eq(first->reading_count, 4);
    cr_assert_eq(first->dead_count, 0);
    cr_assert_eq(second->reading_count, 1 + 6);
    cr_assert_eq(second->dead_count, 1);
    cr_assert_eq(next_offset_of(first, READING_HOME, 0), 14, "only up to its own last message");
    cr_assert_eq(next_offset_of(first, READING_BATTERY, 1), -1);
    cr_assert_eq(next_offset_of(second, READING_HOME, 0), 20, "the source's, gap included");
    cr_assert_eq(next_offset_of(second, READING_BATTERY, 1), 6);
    cr_assert_eq(batch_message_count(src), 9, "the source is unchanged");
    cr_assert_eq(batch_bytes(first) + batch_bytes(second), batch_bytes(src));
    cr_assert_null(second->source);

    /* Again on the second half: home 14, 15 | battery 3, 4, 5 -> first keeps the whole of home
     * p0, so it also takes the partition's next offset after the gap. */
    struct batch *a = batch_new(900, zone), *c = batch_new(900, zone);
    cr_assert(batch_split(second, a, c));
    cr_assert_eq(batch_message_count(a), 2);
    cr_assert_eq(next_offset_of(a, READING_HOME, 0), 20);
    cr_assert_eq(next_offset_of(c, READING_HOME, 0), -1);
    cr_assert_eq(next_offset_of(c, READING_BATTERY, 1), 6);
    cr_assert_eq(c->reading_count, 6, "a message's readings stay together");
    batch_destroy(a);
    batch_destroy(c);
    batch_destroy(first);
    batch_destroy(second);
    batch_destroy(src);
}

Test(batch, split_down_to_single_messages_then_refuses)
{
    struct batch *b = mixed_batch();
    /* Keep halving the second half: every level holds fewer messages, down to one. */
    size_t levels = 0;
    for (;;) {
        struct batch *first = batch_new(900, zone), *second = batch_new(900, zone);
        bool split = batch_split(b, first, second);
        if (!split) {
            cr_assert_eq(batch_message_count(b), 1);
            cr_assert_eq(first->reading_count + first->dead_count, 0, "nothing added");
            batch_destroy(first);
            batch_destroy(second);
            break;
        }
        cr_assert_lt(batch_message_count(second), batch_message_count(b));
        batch_destroy(first);
        batch_destroy(b);
        b = second;
        levels++;
    }
    cr_assert_eq(levels, 4); /* 9 -> 5 -> 3 -> 2 -> 1: the last one is battery p1 offset 5 */
    cr_assert_eq(next_offset_of(b, READING_BATTERY, 1), 6);
    batch_destroy(b);
}

Test(batch, rejected_messages_become_dead_letters_with_a_rebuilt_payload)
{
    struct batch *src = batch_new(900, zone);
    struct reading r1 = battery_reading(3, 2, 1739498940), r2 = battery_reading(3, 1, 1739498940);
    batch_add_reading(src, &r1, 2, 41);
    batch_add_reading(src, &r2, 2, 41);
    batch_note_offset(src, READING_BATTERY, 2, 41);
    struct batch *dst = batch_new(900, zone);
    batch_to_dead_letters(src, dst, "postgres_rejected", "postgres_rejected: sqlstate 23514: x");
    cr_assert_eq(dst->dead_count, 1);
    cr_assert_eq(dst->reading_count, 0);
    const struct batch_dead_letter *d = &dst->dead[0];
    cr_assert_eq(d->kind, READING_BATTERY);
    cr_assert_eq(d->partition, 2);
    cr_assert_eq(d->offset, 41);
    cr_assert_str_eq(d->reason, "postgres_rejected");
    cr_assert_str_eq(d->error, "postgres_rejected: sqlstate 23514: x");
    cr_assert_str_eq(d->payload,
                     "{\"time_stamp\": \"2025-02-14 02:09:00+00:00\", \"home_id\": 3, "
                     "\"batteries\": {\"battery_1\": {\"capacity_kwh\": 12.000000, "
                     "\"max_charge_speed_w\": 1.000000, \"current_energy_wh\": 9860.000000, "
                     "\"is_charging\": 0, \"status\": \"discharging\", \"max_output_w\": "
                     "3.330000}, \"battery_2\": {\"capacity_kwh\": 12.000000, "
                     "\"max_charge_speed_w\": 1.000000, \"current_energy_wh\": 9860.000000, "
                     "\"is_charging\": 0, \"status\": \"discharging\", \"max_output_w\": "
                     "3.330000}}}");
    cr_assert_eq(d->payload_bytes, d->payload_len);
    cr_assert_eq(next_offset_of(dst, READING_BATTERY, 2), 42);
    batch_destroy(src);
    batch_destroy(dst);
}

Test(batch, rejected_dead_letters_keep_their_payload_and_say_what_they_were)
{
    struct batch *src = batch_new(900, zone);
    batch_set_source(src, "home.jsonl");
    batch_add_dead_letter(src, READING_HOME, -1, 9, "key", 3, "\0\xff", 2, "invalid_json", "bad");
    struct reading r = home_reading(1, 1739498940);
    batch_add_reading(src, &r, -1, 10);
    struct batch *first = batch_new(900, zone), *second = batch_new(900, zone);
    cr_assert(batch_split(src, first, second));
    cr_assert_str_eq(second->source, "home.jsonl", "halves keep the dump file");
    batch_destroy(first);
    batch_destroy(second);
    struct batch *dst = batch_new(900, zone);
    batch_to_dead_letters(src, dst, "postgres_rejected", "postgres_rejected: p");
    cr_assert_eq(dst->dead_count, 2);
    cr_assert_str_eq(dst->dead[0].error, "postgres_rejected: p (was invalid_json: bad)");
    cr_assert_eq(dst->dead[0].payload_len, 2);
    cr_assert_eq(memcmp(dst->dead[0].payload, "\0\xff", 2), 0);
    cr_assert_str_eq(dst->dead[0].source, "home.jsonl");
    cr_assert_str_eq(dst->dead[1].source, "home.jsonl", "rebuilt letters take src's source");
    cr_assert_str_eq(dst->dead[1].payload,
                     "{\"time_stamp\": \"2025-02-14 02:09:00+00:00\", \"home_id\": 1, "
                     "\"current_consumption_w\": 0.001000, \"consumption_accumulated_w\": "
                     "0.000000}");
    batch_destroy(src);
    batch_destroy(dst);
}

Test(batch, windows_are_counted_exactly_with_repeats_kinds_and_devices)
{
    struct batch *b = batch_new(900, zone);
    int64_t t0 = 1739491200; /* 2025-02-14 00:00:00 UTC, a window start */
    struct reading r = home_reading(1, t0);
    batch_add_reading(b, &r, 0, 1);
    cr_assert_eq(batch_window_count(b), 1);
    /* Repeats: the same second again, another second of the window, a duplicate message. */
    batch_add_reading(b, &r, 0, 2);
    r.ts = t0 + 899;
    batch_add_reading(b, &r, 0, 3);
    cr_assert_eq(batch_window_count(b), 1, "a window's readings count it once");
    /* The next window of the same home. */
    r.ts = t0 + 900;
    batch_add_reading(b, &r, 0, 4);
    cr_assert_eq(batch_window_count(b), 2);
    /* Same home and window, other kinds: each kind's window is its own fact row. */
    struct reading bat = battery_reading(1, 1, t0 + 10);
    batch_add_reading(b, &bat, 1, 1);
    cr_assert_eq(batch_window_count(b), 3);
    struct reading sol = {.kind = READING_SOLAR, .home_id = 1, .device_id = 14, .ts = t0 + 10};
    batch_add_reading(b, &sol, 2, 1);
    cr_assert_eq(batch_window_count(b), 4);
    /* Other devices: a second battery of the home, a second home. */
    struct reading bat2 = battery_reading(1, 2, t0 + 10);
    batch_add_reading(b, &bat2, 1, 1);
    struct reading h2 = home_reading(2, t0 + 10);
    batch_add_reading(b, &h2, 0, 5);
    cr_assert_eq(batch_window_count(b), 6);
    /* A panel reported by another home is the same panel's window (keyed by panel alone). */
    sol.home_id = 2;
    sol.ts++;
    batch_add_reading(b, &sol, 2, 2);
    cr_assert_eq(batch_window_count(b), 6);
    cr_assert_eq(batch_window_count(b), b->window_count);
    batch_clear(b);
    cr_assert_eq(batch_window_count(b), 0, "a cleared batch touches no window");
    batch_destroy(b);
}

Test(batch, is_full_at_the_window_bound)
{
    struct batch *b = batch_new(900, zone);
    int64_t t0 = 1739491200;
    for (int32_t home = 1; home <= 4; home++) {
        cr_assert(!batch_is_full(b, 1000, 1 << 20, 4), "%d windows are below a bound of 4",
                  (int)batch_window_count(b));
        for (int s = 0; s < 5; s++) {
            struct reading r = home_reading(home, t0 + s);
            batch_add_reading(b, &r, 0, home * 10 + s);
        }
    }
    cr_assert_eq(batch_size(b), 20);
    cr_assert(batch_is_full(b, 1000, 1 << 20, 4), "four windows reach a bound of four");
    cr_assert(!batch_is_full(b, 1000, 1 << 20, 5), "readings do not count as windows");
    batch_clear(b);
    cr_assert(!batch_is_full(b, 1000, 1 << 20, 1));
    batch_destroy(b);
}

Test(batch, absorb_and_split_count_the_windows_they_hold)
{
    struct batch *a = batch_new(900, zone), *c = batch_new(900, zone);
    int64_t t0 = 1739491200;
    struct reading r1 = home_reading(1, t0), r2 = home_reading(2, t0), r3 = home_reading(1, t0 + 1);
    batch_add_reading(a, &r1, 0, 1);
    batch_add_reading(a, &r2, 0, 2);
    batch_add_reading(c, &r3, 0, 3);
    batch_add_reading(c, &r2, 0, 4);
    batch_absorb(a, c);
    cr_assert_eq(batch_window_count(a), 2, "the windows both held count once");
    cr_assert_eq(batch_window_count(c), 0);
    struct batch *first = batch_new(900, zone), *second = batch_new(900, zone);
    cr_assert(batch_split(a, first, second));
    cr_assert_eq(batch_window_count(first), 2, "offsets 1, 2: homes 1 and 2");
    cr_assert_eq(batch_window_count(second), 2, "offsets 3, 4: homes 1 and 2");
    batch_destroy(first);
    batch_destroy(second);
    batch_destroy(a);
    batch_destroy(c);
}
