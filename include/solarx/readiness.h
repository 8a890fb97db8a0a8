/* The service as systemd and its probes see it: READY=1 once, WATCHDOG=1 and a STATUS= line on
 * the watchdog's timer, STOPPING=1, and whether the service can make progress (/healthz), all
 * read from a small view the service exposes; this module never sees the service itself. */
#ifndef SOLARX_READINESS_H
#define SOLARX_READINESS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "solarx/health.h"
#include "solarx/metrics.h"

/* The loop's state at the time it is asked (readiness_view.observe). */
struct readiness_state {
    const char *kafka_fatal; /* the fatal librdkafka error, NULL while there is none */
    bool stopping;           /* SIGTERM or a fatal error: the last batches are being written */
    bool postgres_connected; /* the flush connection is up */
    bool paused;             /* backpressure holds consumption */
    int assigned_partitions;
    size_t pending_readings;       /* consumed, not yet in a committed flush */
    size_t open_windows;           /* windows those readings belong to */
    struct timespec last_progress; /* CLOCK_MONOTONIC_COARSE: last consumed message or commit */
};

/* What the service shows: read-only, asked for on demand, on the loop's thread. */
struct readiness_view {
    const struct metrics *metrics; /* the service's counters, live; owned by the service */
    const char *const *topics;     /* topic names by enum reading_kind; owned by the service */
    int32_t stall_timeout_s;
    void *ctx; /* passed to the callbacks */
    /* Fills *out with the state now. */
    void (*observe)(void *ctx, struct readiness_state *out);
    /* The assigned partitions' lags (count in *count), malloc'd: the caller frees them. NULL
     * while there is no consumer (or no memory): the lag is unknown. */
    struct metrics_lag *(*lags)(void *ctx, size_t *count);
};

struct readiness;

/* Keeps a copy of *view. When systemd's watchdog is enabled (WATCHDOG_USEC), pings it with
 * WATCHDOG=1 and the STATUS= line at half its interval on base. Returns NULL with errstr when out
 * of memory. */
struct readiness *readiness_new(struct event_base *base, const struct readiness_view *view,
                                char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Stops the watchdog timer and frees r. NULL is ignored. */
void readiness_destroy(struct readiness *r);

/* The first assignment: READY=1 (with STATUS=consuming) and event=ready, once; later calls do
 * nothing. */
void readiness_mark_ready(struct readiness *r);

/* The graceful stop begins: STOPPING=1. */
void readiness_mark_stopping(struct readiness *r);

/* NULL while the service can make progress; otherwise the reason (health_problem), written to
 * buf and returned. Observes the service and asks for its lags. */
const char *readiness_problem(struct readiness *r, char *buf, size_t size);

/* The same verdict from a state and a total lag (metrics_total_lag, -1 unknown) the caller has
 * just observed: for a caller that needs them itself (/metrics), so that one request asks Kafka
 * for the lags once. */
const char *readiness_problem_observed(struct readiness *r, const struct readiness_state *state,
                                       int64_t lag, char *buf, size_t size);

/* Pure: the facts health_problem judges, from a state observed at now (both on
 * CLOCK_MONOTONIC_COARSE), whether partitions were ever assigned, the total lag
 * (metrics_total_lag, -1 unknown) and stall_timeout_s. kafka_fatal points into state. */
struct health_facts readiness_health_facts(const struct readiness_state *state, bool ready,
                                           int64_t lag, struct timespec now,
                                           int32_t stall_timeout_s);

#endif
