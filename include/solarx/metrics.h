/* The service's counters and histograms, rendered as Prometheus text for /metrics. Pure: the
 * service updates a struct metrics and hands it to metrics_render with the live gauges. */
#ifndef SOLARX_METRICS_H
#define SOLARX_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "solarx/decode.h"
#include "solarx/reading.h"

/* Upper bounds (ms) of the flush latency histogram buckets; +Inf is implicit. */
#define METRICS_LATENCY_BUCKETS 12
/* Upper bounds of the rows-per-flush histogram buckets. */
#define METRICS_ROWS_BUCKETS 10

struct metrics_histogram {
    uint64_t bucket[METRICS_LATENCY_BUCKETS > METRICS_ROWS_BUCKETS ? METRICS_LATENCY_BUCKETS
                                                                   : METRICS_ROWS_BUCKETS];
    uint64_t count;
    double sum;
};

struct metrics {
    uint64_t consumed[READING_KIND_COUNT]; /* messages */
    uint64_t readings[READING_KIND_COUNT]; /* decoded readings */
    uint64_t merged[READING_KIND_COUNT];   /* new seconds counted */
    uint64_t duplicates;                   /* readings whose second was already counted */
    uint64_t dead_letters[DECODE_ERROR_COUNT];
    uint64_t flushes, flush_failures, postgres_errors;
    uint64_t raw_rows[READING_KIND_COUNT];
    uint64_t fetch_nudges; /* librdkafka 2.0's fetcher woken after a full queue (kafka.c) */
    struct metrics_histogram flush_ms;
    struct metrics_histogram flush_rows;
    int64_t last_flush_unix; /* wall clock (s) of the last committed flush; 0: none yet */
};

/* A partition's lag, for the gauges. */
struct metrics_lag {
    const char *topic;
    int32_t partition;
    int64_t lag; /* high watermark - position; -1 unknown */
};

/* What the service knows at render time. */
struct metrics_live {
    size_t pending_readings; /* consumed, not yet in a committed flush */
    size_t open_windows;     /* windows those readings belong to */
    int postgres_connected;  /* 0/1 */
    int paused;              /* 0/1: backpressure */
    int assigned_partitions;
    int healthy; /* 0/1: what /healthz answers (200 = 1) */
    const struct metrics_lag *lags;
    size_t lag_count;
    const char *const *topics; /* names by enum reading_kind */
};

void metrics_observe_flush(struct metrics *m, double ms, uint64_t rows);

/* Sum of n counters (per kind, per reason...). Pure. */
unsigned long long metrics_sum(const uint64_t *values, int n);

/* Sum of the known lags (lag >= 0) of n partitions; -1 when none is known. */
int64_t metrics_total_lag(const struct metrics_lag *lags, size_t n);

/* Writes the systemd STATUS= line ("STATUS=lag=N last_flush_age_s=N consumed=N ...") to buf:
 * total_lag from metrics_total_lag ("unknown" when -1), the age of m's last flush at now
 * (wall-clock seconds; "never" before the first one), then the counters. Truncated to size. */
void metrics_format_status(const struct metrics *m, int64_t total_lag, int64_t now, char *buf,
                           size_t size);

/* Writes the Prometheus text exposition of m and live to out. */
void metrics_render(const struct metrics *m, const struct metrics_live *live, FILE *out);

#endif
