/* The consumer's librdkafka defaults follow the library it runs on: fetch.queue.backoff.ms only
 * where librdkafka knows it (2.1 and later), with the smaller queue it allows. */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "solarx/kafka.h"

static const char *lookup(const struct kafka_default *d, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].key, key) == 0)
            return d[i].value;
    return NULL;
}

/* Every default must be a property the given librdkafka accepts. */
static void cr_assert_all_accepted(const struct kafka_default *d, size_t n)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(rd_kafka_conf_set(conf, d[i].key, d[i].value, err, sizeof(err)),
                     RD_KAFKA_CONF_OK, "%s=%s: %s", d[i].key, d[i].value, err);
    rd_kafka_conf_destroy(conf);
}

Test(kafka_defaults, librdkafka_2_0_has_no_queue_backoff_and_the_larger_queue)
{
    struct kafka_default d[KAFKA_DEFAULTS_MAX];
    size_t n = kafka_consumer_defaults(0x020002ff, d, KAFKA_DEFAULTS_MAX);
    cr_assert_null(lookup(d, n, "fetch.queue.backoff.ms"));
    cr_assert_str_eq(lookup(d, n, "queued.min.messages"), "10000");
    cr_assert_str_eq(lookup(d, n, "partition.assignment.strategy"), "cooperative-sticky");
    cr_assert_str_eq(lookup(d, n, "max.partition.fetch.bytes"), "65536");
}

Test(kafka_defaults, librdkafka_2_1_and_later_back_off_briefly_on_a_small_queue)
{
    const int versions[] = {KAFKA_FETCH_QUEUE_BACKOFF_SINCE, 0x020a00ff, 0x021000ff};
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        struct kafka_default d[KAFKA_DEFAULTS_MAX];
        size_t n = kafka_consumer_defaults(versions[v], d, KAFKA_DEFAULTS_MAX);
        cr_assert_str_eq(lookup(d, n, "fetch.queue.backoff.ms"), "10");
        cr_assert_str_eq(lookup(d, n, "queued.min.messages"), "5000");
        cr_assert_str_eq(lookup(d, n, "queued.max.messages.kbytes"), "32768");
    }
    /* just below 2.1.0 */
    struct kafka_default d[KAFKA_DEFAULTS_MAX];
    size_t n =
        kafka_consumer_defaults(KAFKA_FETCH_QUEUE_BACKOFF_SINCE - 0x100, d, KAFKA_DEFAULTS_MAX);
    cr_assert_null(lookup(d, n, "fetch.queue.backoff.ms"));
}

Test(kafka_defaults, the_linked_librdkafka_accepts_its_defaults)
{
    struct kafka_default d[KAFKA_DEFAULTS_MAX];
    size_t n = kafka_consumer_defaults(rd_kafka_version(), d, KAFKA_DEFAULTS_MAX);
    cr_assert_gt(n, 4);
    cr_assert_all_accepted(d, n);
}

Test(kafka_defaults, never_writes_past_max)
{
    struct kafka_default d[3];
    cr_assert_eq(kafka_consumer_defaults(0x021000ff, d, 3), 3);
}
