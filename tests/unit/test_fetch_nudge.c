/* When and where kafka.c wakes librdkafka 2.0's fetcher (fetch_nudge.h). */
#include <criterion/criterion.h>

#include "solarx/fetch_nudge.h"

struct seen {
    int count;
    enum reading_kind kind[16];
    int32_t partition[16];
    int64_t next[16];
};

static void record(void *ctx, enum reading_kind kind, int32_t partition, int64_t next)
{
    struct seen *s = ctx;
    cr_assert_lt(s->count, 16);
    s->kind[s->count] = kind;
    s->partition[s->count] = partition;
    s->next[s->count] = next;
    s->count++;
}

static struct seen positions(const struct fetch_nudge *fn)
{
    struct seen s = {0};
    fetch_nudge_each(fn, record, &s);
    return s;
}

Test(fetch_nudge, due_only_after_a_full_queue_was_seen)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 10000, 0);
    fetch_nudge_consumed(&fn, READING_HOME, 0, 41);
    fetch_nudge_saw_queue(&fn, 9999); /* below the threshold: the fetcher still fetches */
    cr_assert_not(fetch_nudge_due(&fn));
    fetch_nudge_saw_queue(&fn, 10000);
    fetch_nudge_saw_queue(&fn, 3); /* a later, emptier turn does not clear the mark */
    cr_assert(fetch_nudge_due(&fn));
    cr_assert_not(fetch_nudge_due(&fn), "one nudge per full queue");
    cr_assert_eq(fn.nudges, 1);
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, a_queue_short_of_the_threshold_by_one_turn_counts_as_full)
{
    /* The fetcher saw 10,000 queued and stopped; the turn then in progress took up to 2,064 of
     * them before the next turn looked. */
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 10000, 2064);
    fetch_nudge_consumed(&fn, READING_SOLAR, 1, 5);
    fetch_nudge_saw_queue(&fn, 7935);
    cr_assert_not(fetch_nudge_due(&fn), "short by more than a turn: the fetcher never stopped");
    fetch_nudge_saw_queue(&fn, 7936);
    cr_assert(fetch_nudge_due(&fn));
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, a_threshold_below_one_turn_counts_any_queue_as_full)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 500, 2064);
    fetch_nudge_consumed(&fn, READING_HOME, 0, 1);
    fetch_nudge_saw_queue(&fn, 0);
    cr_assert_not(fetch_nudge_due(&fn), "an empty queue stopped nothing");
    fetch_nudge_saw_queue(&fn, 1);
    cr_assert(fetch_nudge_due(&fn));
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, seeks_to_the_offset_after_the_last_consumed)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 100, 0);
    fetch_nudge_consumed(&fn, READING_BATTERY, 2, 7);
    fetch_nudge_consumed(&fn, READING_BATTERY, 2, 8);
    fetch_nudge_consumed(&fn, READING_SOLAR, 40, 0); /* the table grows to partition 40 */
    struct seen s = positions(&fn);
    cr_assert_eq(s.count, 2);
    cr_assert_eq(s.kind[0], READING_SOLAR);
    cr_assert_eq(s.partition[0], 40);
    cr_assert_eq(s.next[0], 1);
    cr_assert_eq(s.kind[1], READING_BATTERY);
    cr_assert_eq(s.partition[1], 2);
    cr_assert_eq(s.next[1], 9);
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, a_rebalance_or_a_seek_forgets_positions_and_the_full_queue)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 100, 0);
    fetch_nudge_consumed(&fn, READING_HOME, 0, 10);
    fetch_nudge_consumed(&fn, READING_HOME, 1, 20);
    fetch_nudge_saw_queue(&fn, 100);
    fetch_nudge_forget(&fn, READING_HOME, 1); /* the owner sought partition 1 */
    cr_assert_not(fetch_nudge_due(&fn), "a seek of the owner's restarts the fetcher itself");
    struct seen s = positions(&fn);
    cr_assert_eq(s.count, 1);
    cr_assert_eq(s.partition[0], 0);

    fetch_nudge_forget(&fn, -1, -1); /* a rebalance */
    fetch_nudge_saw_queue(&fn, 100);
    cr_assert_not(fetch_nudge_due(&fn), "no known position: nothing to seek");
    cr_assert_eq(positions(&fn).count, 0);
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, disabled_on_librdkafka_with_a_queue_backoff)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, false, 100, 0);
    fetch_nudge_consumed(&fn, READING_HOME, 0, 10);
    fetch_nudge_saw_queue(&fn, 1000000);
    cr_assert_not(fetch_nudge_due(&fn));
    cr_assert_eq(positions(&fn).count, 0);
    fetch_nudge_free(&fn);
}

Test(fetch_nudge, ignores_what_is_not_a_partition_offset)
{
    struct fetch_nudge fn;
    fetch_nudge_init(&fn, true, 1, 0);
    fetch_nudge_consumed(&fn, READING_HOME, -1, 5);    /* RD_KAFKA_PARTITION_UA */
    fetch_nudge_consumed(&fn, READING_HOME, 0, -1001); /* a logical offset */
    cr_assert_eq(positions(&fn).count, 0);
    fetch_nudge_free(&fn);
}
