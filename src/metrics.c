/* Prometheus text exposition of the service's counters, histograms and gauges. */
#include "solarx/metrics.h"

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {5,   10,   25,   50,   100,   250,
                                                               500, 1000, 2500, 5000, 10000, 30000};
static const double rows_bounds[METRICS_ROWS_BUCKETS] = {10,    100,   1000,   5000,   10000,
                                                         25000, 50000, 100000, 250000, 1000000};

static void observe(struct metrics_histogram *h, const double *bounds, int n, double value)
{
    for (int i = 0; i < n; i++)
        if (value <= bounds[i])
            h->bucket[i]++;
    h->count++;
    h->sum += value;
}

void metrics_observe_flush(struct metrics *m, double ms, uint64_t rows)
{
    observe(&m->flush_ms, latency_bounds, METRICS_LATENCY_BUCKETS, ms);
    observe(&m->flush_rows, rows_bounds, METRICS_ROWS_BUCKETS, (double)rows);
}

int64_t metrics_total_lag(const struct metrics_lag *lags, size_t n)
{
    int64_t total = -1;
    for (size_t i = 0; i < n; i++)
        if (lags[i].lag >= 0)
            total = (total < 0 ? 0 : total) + lags[i].lag;
    return total;
}

unsigned long long metrics_sum(const uint64_t *values, int n)
{
    unsigned long long sum = 0;
    for (int i = 0; i < n; i++)
        sum += values[i];
    return sum;
}

void metrics_format_status(const struct metrics *m, int64_t total_lag, int64_t now, char *buf,
                           size_t size)
{
    char lag[32], age[32];
    if (total_lag >= 0)
        snprintf(lag, sizeof(lag), "%lld", (long long)total_lag);
    else
        snprintf(lag, sizeof(lag), "unknown");
    if (m->last_flush_unix > 0)
        snprintf(age, sizeof(age), "%lld",
                 (long long)(now > m->last_flush_unix ? now - m->last_flush_unix : 0));
    else
        snprintf(age, sizeof(age), "never");
    snprintf(buf, size,
             "STATUS=lag=%s last_flush_age_s=%s consumed=%llu merged=%llu duplicates=%llu "
             "dead_letters=%llu flushes=%llu flush_failures=%llu",
             lag, age, metrics_sum(m->consumed, READING_KIND_COUNT),
             metrics_sum(m->merged, READING_KIND_COUNT), (unsigned long long)m->duplicates,
             metrics_sum(m->dead_letters, DECODE_ERROR_COUNT), (unsigned long long)m->flushes,
             (unsigned long long)m->flush_failures);
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_topic(FILE *out, const char *name, const char *help, const uint64_t *values,
                      const char *const *topics)
{
    header(out, name, "counter", help);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        fprintf(out, "%s{topic=\"%s\"} %llu\n", name, topics[k], (unsigned long long)values[k]);
}

static void histogram(FILE *out, const char *name, const char *help,
                      const struct metrics_histogram *h, const double *bounds, int n)
{
    header(out, name, "histogram", help);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                (unsigned long long)h->bucket[i]);
    fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name,
            (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

void metrics_render(const struct metrics *m, const struct metrics_live *live, FILE *out)
{
    per_topic(out, "solarx_messages_consumed_total", "Messages consumed from Kafka.", m->consumed,
              live->topics);
    per_topic(out, "solarx_readings_decoded_total", "Readings decoded from valid messages.",
              m->readings, live->topics);
    per_topic(out, "solarx_readings_merged_total",
              "Readings that counted a new second in their window.", m->merged, live->topics);
    per_topic(out, "solarx_raw_rows_inserted_total", "Raw rows inserted.", m->raw_rows,
              live->topics);
    header(out, "solarx_duplicate_readings_total", "counter",
           "Readings of a device-second already counted (not stored twice).");
    fprintf(out, "solarx_duplicate_readings_total %llu\n", (unsigned long long)m->duplicates);
    header(out, "solarx_dead_letters_total", "counter", "Messages rejected, by reason.");
    for (int e = 1; e < DECODE_ERROR_COUNT; e++)
        fprintf(out, "solarx_dead_letters_total{reason=\"%s\"} %llu\n", decode_error_name(e),
                (unsigned long long)m->dead_letters[e]);
    header(out, "solarx_flushes_total", "counter", "Flush transactions committed.");
    fprintf(out, "solarx_flushes_total %llu\n", (unsigned long long)m->flushes);
    header(out, "solarx_flush_failures_total", "counter", "Flush transactions that failed.");
    fprintf(out, "solarx_flush_failures_total %llu\n", (unsigned long long)m->flush_failures);
    header(out, "solarx_postgres_errors_total", "counter",
           "PostgreSQL errors: failed flushes, connects and lost connections.");
    fprintf(out, "solarx_postgres_errors_total %llu\n", (unsigned long long)m->postgres_errors);
    histogram(out, "solarx_flush_duration_milliseconds", "Flush transaction latency.", &m->flush_ms,
              latency_bounds, METRICS_LATENCY_BUCKETS);
    histogram(out, "solarx_flush_readings", "Readings per committed flush.", &m->flush_rows,
              rows_bounds, METRICS_ROWS_BUCKETS);
    header(out, "solarx_pending_readings", "gauge", "Readings consumed, not yet committed.");
    fprintf(out, "solarx_pending_readings %zu\n", live->pending_readings);
    header(out, "solarx_open_windows", "gauge", "Windows held in memory.");
    fprintf(out, "solarx_open_windows %zu\n", live->open_windows);
    header(out, "solarx_last_flush_timestamp_seconds", "gauge",
           "Unix time of the last committed flush (0: none yet).");
    fprintf(out, "solarx_last_flush_timestamp_seconds %lld\n", (long long)m->last_flush_unix);
    header(out, "solarx_healthy", "gauge", "1 when /healthz answers 200, 0 when 503.");
    fprintf(out, "solarx_healthy %d\n", live->healthy);
    header(out, "solarx_postgres_connected", "gauge", "1 when the flush connection is up.");
    fprintf(out, "solarx_postgres_connected %d\n", live->postgres_connected);
    header(out, "solarx_consumption_paused", "gauge", "1 while backpressure pauses Kafka.");
    fprintf(out, "solarx_consumption_paused %d\n", live->paused);
    header(out, "solarx_kafka_fetch_nudges_total", "counter",
           "Times librdkafka 2.0's fetcher was woken after the service drained a full queue.");
    fprintf(out, "solarx_kafka_fetch_nudges_total %llu\n", (unsigned long long)m->fetch_nudges);
    header(out, "solarx_assigned_partitions", "gauge", "Partitions assigned to this instance.");
    fprintf(out, "solarx_assigned_partitions %d\n", live->assigned_partitions);
    header(out, "solarx_partition_lag", "gauge",
           "Messages between the consumer position and the high watermark.");
    for (size_t i = 0; i < live->lag_count; i++)
        if (live->lags[i].lag >= 0)
            fprintf(out, "solarx_partition_lag{topic=\"%s\",partition=\"%d\"} %lld\n",
                    live->lags[i].topic, (int)live->lags[i].partition,
                    (long long)live->lags[i].lag);
}
