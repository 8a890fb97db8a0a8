/* Unit tests of the pure parts of claiming partitions (ownership.c): which partitions of an
 * assignment are claimed, where each starts after the claim, what a release removes; the owner
 * label; the topic -> kind lookup they share with kafka.c; and evtime_from_ms. No PostgreSQL,
 * no broker: librdkafka's partition lists are plain data. */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "solarx/claims.h"
#include "solarx/config.h"
#include "solarx/evtime.h"
#include "solarx/ownership.h"
#include "solarx/reading.h"

static struct config cfg;

static void setup(void)
{
    cfg = (struct config){0};
    cfg.topic[READING_HOME] = "home_energy_consumption";
    cfg.topic[READING_SOLAR] = "solar_energy_data";
    cfg.topic[READING_BATTERY] = "battery_data";
}

TestSuite(ownership, .init = setup);

Test(ownership, a_topic_names_its_kind_and_others_none)
{
    cr_assert_eq(reading_kind_of_topic(cfg.topic, "home_energy_consumption"), READING_HOME);
    cr_assert_eq(reading_kind_of_topic(cfg.topic, "solar_energy_data"), READING_SOLAR);
    cr_assert_eq(reading_kind_of_topic(cfg.topic, "battery_data"), READING_BATTERY);
    cr_assert_eq(reading_kind_of_topic(cfg.topic, "battery_data2"), -1);
    cr_assert_eq(reading_kind_of_topic(cfg.topic, ""), -1);
}

/* home [0], an unconfigured topic [0], battery [3], with offsets a broker might have set. */
static rd_kafka_topic_partition_list_t *assignment(void)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    rd_kafka_topic_partition_list_add(l, "home_energy_consumption", 0)->offset = 17;
    rd_kafka_topic_partition_list_add(l, "other_topic", 0)->offset = 5;
    rd_kafka_topic_partition_list_add(l, "battery_data", 3)->offset = 9;
    return l;
}

Test(ownership, the_configured_partitions_of_an_assignment_are_pending_claims)
{
    rd_kafka_topic_partition_list_t *l = assignment();
    struct claims *c = claims_new();
    struct ownership_partition parts[3];
    size_t n = ownership_assigned_parts(&cfg, l, c, parts);
    cr_assert_eq(n, 2, "the unconfigured topic is left out");
    cr_assert_eq(parts[0].kind, READING_HOME);
    cr_assert_eq(parts[0].partition, 0);
    cr_assert_eq(parts[1].kind, READING_BATTERY);
    cr_assert_eq(parts[1].partition, 3);
    cr_assert_eq(claims_pending(c), 2);
    cr_assert_eq(claims_epoch(c, READING_HOME, 0), CLAIMS_PENDING);
    cr_assert_eq(claims_epoch(c, READING_BATTERY, 3), CLAIMS_PENDING);
    for (int i = 0; i < l->cnt; i++)
        cr_assert_eq(l->elems[i].offset, RD_KAFKA_OFFSET_INVALID,
                     "Kafka's committed offset unless PostgreSQL stores one");
    /* Without room for parts (out of memory), the claims are still pending. */
    struct claims *c2 = claims_new();
    cr_assert_eq(ownership_assigned_parts(&cfg, l, c2, NULL), 0);
    cr_assert_eq(claims_pending(c2), 2);
    claims_destroy(c2);
    claims_destroy(c);
    rd_kafka_topic_partition_list_destroy(l);
}

Test(ownership, a_claimed_partition_starts_at_the_offset_postgres_stores)
{
    rd_kafka_topic_partition_list_t *l = assignment();
    struct claims *c = claims_new();
    struct ownership_partition parts[3];
    size_t n = ownership_assigned_parts(&cfg, l, c, parts);
    parts[0].next_offset = 1234, parts[0].epoch = 7; /* home [0]: stored */
    parts[1].next_offset = -1, parts[1].epoch = 1;   /* battery [3]: nothing stored yet */
    ownership_start_at_stored(&cfg, parts, n, l);
    cr_assert_eq(l->elems[0].offset, 1234);
    cr_assert_eq(l->elems[1].offset, RD_KAFKA_OFFSET_INVALID);
    cr_assert_eq(l->elems[2].offset, RD_KAFKA_OFFSET_INVALID);
    claims_destroy(c);
    rd_kafka_topic_partition_list_destroy(l);
}

Test(ownership, a_release_removes_the_claims_of_the_partitions_that_went)
{
    struct claims *c = claims_new();
    cr_assert(claims_set(c, READING_HOME, 0, 4, 100));
    cr_assert(claims_set(c, READING_BATTERY, 3, CLAIMS_PENDING, -1));
    cr_assert(claims_set(c, READING_SOLAR, 1, 2, -1));
    rd_kafka_topic_partition_list_t *l = assignment(); /* home [0], other [0], battery [3] */
    ownership_release(&cfg, c, l);
    cr_assert_eq(claims_epoch(c, READING_HOME, 0), CLAIMS_NONE);
    cr_assert_eq(claims_epoch(c, READING_BATTERY, 3), CLAIMS_NONE);
    cr_assert_eq(claims_pending(c), 0);
    cr_assert_eq(claims_epoch(c, READING_SOLAR, 1), 2, "a partition still held keeps its claim");
    cr_assert_eq(claims_count(c), 1);
    claims_destroy(c);
    rd_kafka_topic_partition_list_destroy(l);
}

Test(ownership, nothing_pending_is_claimed_without_asking_postgres)
{
    /* No conninfo at all: asking PostgreSQL would fail, so true proves nothing was asked. */
    struct claims *c = claims_new();
    cr_assert(claims_set(c, READING_HOME, 0, 3, -1));
    cr_assert(ownership_claim_pending(&cfg, "me/pid-1", c));
    claims_destroy(c);
}

Test(ownership, the_label_is_the_instance_id_or_the_host_and_the_pid)
{
    char label[320], expected[320], host[128] = "";
    ownership_label("solarx-host-127.0.0.1_9187", label, sizeof(label));
    snprintf(expected, sizeof(expected), "solarx-host-127.0.0.1_9187/pid-%ld", (long)getpid());
    cr_assert_str_eq(label, expected);
    ownership_label("", label, sizeof(label));
    cr_assert_eq(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    snprintf(expected, sizeof(expected), "%s/pid-%ld", host, (long)getpid());
    cr_assert_str_eq(label, expected);
}

Test(ownership, milliseconds_become_a_timeval)
{
    struct timeval tv = evtime_from_ms(1234);
    cr_assert_eq(tv.tv_sec, 1);
    cr_assert_eq(tv.tv_usec, 234000);
    tv = evtime_from_ms(999);
    cr_assert_eq(tv.tv_sec, 0);
    cr_assert_eq(tv.tv_usec, 999000);
    tv = evtime_from_ms(300000);
    cr_assert_eq(tv.tv_sec, 300);
    cr_assert_eq(tv.tv_usec, 0);
}
