/* Unit tests of the /healthz verdict and of the derived group.instance.id. */
#include <criterion/criterion.h>
#include <string.h>

#include "solarx/health.h"
#include "solarx/kafka.h"

static struct health_facts healthy(void)
{
    return (struct health_facts){
        .postgres_connected = true, .ready = true, .lag = 0, .idle_s = 0, .stall_timeout_s = 300};
}

Test(health, a_working_service_is_healthy)
{
    char buf[256];
    struct health_facts h = healthy();
    cr_assert_null(health_problem(&h, buf, sizeof(buf)));
    h.idle_s = 1000; /* idle without lag: nothing to consume */
    cr_assert_null(health_problem(&h, buf, sizeof(buf)));
    h.lag = 5;
    h.idle_s = 299;
    cr_assert_null(health_problem(&h, buf, sizeof(buf)));
}

Test(health, consumption_stalled_with_lag_is_unhealthy)
{
    char buf[256];
    struct health_facts h = healthy();
    h.lag = 1200;
    h.idle_s = 312;
    cr_assert_str_eq(health_problem(&h, buf, sizeof(buf)),
                     "consumption stalled for 312 s with lag 1200 (stall_timeout_s = 300)");
    h.lag = -1; /* unknown lag: not called a stall */
    cr_assert_null(health_problem(&h, buf, sizeof(buf)));
}

Test(health, a_fatal_kafka_error_comes_first)
{
    char buf[256];
    struct health_facts h = healthy();
    h.stopping = true;
    h.postgres_connected = false;
    h.kafka_fatal = "FENCED_INSTANCE_ID: fenced";
    cr_assert_str_eq(health_problem(&h, buf, sizeof(buf)),
                     "kafka fatal error: FENCED_INSTANCE_ID: fenced");
    h.kafka_fatal = NULL;
    cr_assert_str_eq(health_problem(&h, buf, sizeof(buf)), "stopping");
    h.stopping = false;
    cr_assert_str_eq(health_problem(&h, buf, sizeof(buf)), "postgres unavailable");
    h.postgres_connected = true;
    h.ready = false;
    cr_assert_str_eq(health_problem(&h, buf, sizeof(buf)), "waiting for partitions");
}

Test(static_membership, the_instance_id_is_stable_and_unique_per_http_listen)
{
    char a[256], b[256], again[256];
    cr_assert(kafka_static_instance_id("solarx-stream", "host1", "127.0.0.1:9187", a, sizeof(a)));
    cr_assert(kafka_static_instance_id("solarx-stream", "host1", "127.0.0.1:9188", b, sizeof(b)));
    cr_assert(
        kafka_static_instance_id("solarx-stream", "host1", "127.0.0.1:9187", again, sizeof(again)));
    cr_assert_str_eq(a, "solarx-stream-host1-127.0.0.1_9187");
    cr_assert_str_eq(a, again, "stable across restarts");
    cr_assert_str_neq(a, b, "two instances on one host differ");
    cr_assert(kafka_static_instance_id("g", "h", "[::1]:80", a, sizeof(a)));
    cr_assert_str_eq(a, "g-h-___1__80", "only characters Kafka accepts");
}

Test(static_membership, no_http_listen_means_dynamic_membership)
{
    char a[16];
    cr_assert_not(kafka_static_instance_id("g", "h", "", a, sizeof(a)));
    cr_assert_not(
        kafka_static_instance_id("a-long-group", "a-long-host", "127.0.0.1:9187", a, sizeof(a)),
        "too long for the buffer");
}
