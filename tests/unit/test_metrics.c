/* Unit tests of the Prometheus rendering of the service's metrics. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/metrics.h"

static char *render(const struct metrics *m, const struct metrics_live *live)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(m, live, out);
    fclose(out);
    return text;
}

static const char *const topics[READING_KIND_COUNT] = {"home_t", "solar_t", "battery_t"};

Test(metrics, counters_by_topic_and_reason)
{
    struct metrics m = {0};
    m.consumed[READING_BATTERY] = 7;
    m.merged[READING_HOME] = 5;
    m.duplicates = 3;
    m.dead_letters[DECODE_BAD_TIMESTAMP] = 2;
    struct metrics_lag lags[] = {{"home_t", 2, 41}, {"solar_t", 0, -1}};
    struct metrics_live live = {.pending_readings = 9,
                                .open_windows = 4,
                                .postgres_connected = 1,
                                .assigned_partitions = 9,
                                .lags = lags,
                                .lag_count = 2,
                                .topics = topics};
    char *text = render(&m, &live);
    cr_assert(strstr(text, "solarx_messages_consumed_total{topic=\"battery_t\"} 7\n"));
    cr_assert(strstr(text, "solarx_readings_merged_total{topic=\"home_t\"} 5\n"));
    cr_assert(strstr(text, "solarx_duplicate_readings_total 3\n"));
    cr_assert(strstr(text, "solarx_dead_letters_total{reason=\"bad_timestamp\"} 2\n"));
    cr_assert(strstr(text, "solarx_open_windows 4\n"));
    cr_assert(strstr(text, "solarx_partition_lag{topic=\"home_t\",partition=\"2\"} 41\n"));
    cr_assert_null(strstr(text, "partition=\"0\""), "unknown lag is left out");
    cr_assert(strstr(text, "# TYPE solarx_duplicate_readings_total counter\n"));
    free(text);
}

Test(metrics, histograms_are_cumulative)
{
    struct metrics m = {0};
    metrics_observe_flush(&m, 3, 50);     /* <= 5 ms, <= 100 rows */
    metrics_observe_flush(&m, 700, 6000); /* <= 1000 ms, <= 10000 rows */
    metrics_observe_flush(&m, 99999, 2000000);
    struct metrics_live live = {.topics = topics};
    char *text = render(&m, &live);
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_bucket{le=\"5\"} 1\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_bucket{le=\"500\"} 1\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_bucket{le=\"1000\"} 2\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_bucket{le=\"30000\"} 2\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_bucket{le=\"+Inf\"} 3\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_count 3\n"));
    cr_assert(strstr(text, "solarx_flush_duration_milliseconds_sum 100702.000\n"));
    cr_assert(strstr(text, "solarx_flush_readings_bucket{le=\"100\"} 1\n"));
    cr_assert(strstr(text, "solarx_flush_readings_bucket{le=\"1e+06\"} 2\n"));
    free(text);
}

Test(metrics, health_and_last_flush_gauges)
{
    struct metrics m = {.last_flush_unix = 1700000000};
    struct metrics_live live = {.healthy = 1, .topics = topics};
    char *text = render(&m, &live);
    cr_assert(strstr(text, "solarx_last_flush_timestamp_seconds 1700000000\n"), "%s", text);
    cr_assert(strstr(text, "solarx_healthy 1\n"));
    cr_assert(strstr(text, "# TYPE solarx_healthy gauge\n"));
    free(text);
}

Test(metrics, a_sum_adds_every_counter)
{
    const uint64_t counts[3] = {7, 0, 35};
    cr_assert_eq(metrics_sum(counts, 3), 42);
    cr_assert_eq(metrics_sum(counts, 0), 0);
}

Test(metrics, total_lag_sums_the_known_partitions)
{
    struct metrics_lag lags[] = {{"a", 0, 41}, {"a", 1, -1}, {"b", 0, 1}};
    cr_assert_eq(metrics_total_lag(lags, 3), 42);
    cr_assert_eq(metrics_total_lag(lags + 1, 1), -1, "nothing known");
    cr_assert_eq(metrics_total_lag(NULL, 0), -1, "no partitions");
}

Test(metrics, status_line_carries_lag_and_last_flush_age)
{
    struct metrics m = {.flushes = 3, .last_flush_unix = 1000};
    m.consumed[READING_HOME] = 10;
    m.consumed[READING_SOLAR] = 5;
    m.merged[READING_HOME] = 9;
    m.dead_letters[DECODE_BAD_TIMESTAMP] = 1;
    char buf[320];
    metrics_format_status(&m, 42, 1007, buf, sizeof(buf));
    cr_assert_str_eq(buf, "STATUS=lag=42 last_flush_age_s=7 consumed=15 merged=9 duplicates=0 "
                          "dead_letters=1 flushes=3 flush_failures=0");
    struct metrics fresh = {0};
    metrics_format_status(&fresh, -1, 1007, buf, sizeof(buf));
    cr_assert(strncmp(buf, "STATUS=lag=unknown last_flush_age_s=never ", 42) == 0, "%s", buf);
}
