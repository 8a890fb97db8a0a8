/* systemd's view of the service (READY, WATCHDOG, STATUS, STOPPING) and the verdict of /healthz,
 * from the view the service exposes. */
#include "solarx/readiness.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "solarx/log.h"

struct readiness {
    struct readiness_view view;
    struct event *watchdog_timer; /* NULL when systemd's watchdog is off */
    bool ready;                   /* partitions were assigned at least once */
};

/* The total lag of the assigned partitions (metrics_total_lag), -1 when unknown. */
static int64_t total_lag(const struct readiness_view *view)
{
    size_t count = 0;
    struct metrics_lag *lags = view->lags(view->ctx, &count);
    int64_t lag = lags ? metrics_total_lag(lags, count) : -1;
    free(lags);
    return lag;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct readiness *r = arg;
    sd_notify(0, "WATCHDOG=1");
    char status[320];
    metrics_format_status(r->view.metrics, total_lag(&r->view), (int64_t)time(NULL), status,
                          sizeof(status));
    sd_notify(0, status);
}

struct readiness *readiness_new(struct event_base *base, const struct readiness_view *view,
                                char *errstr, size_t errstr_size)
{
    struct readiness *r = calloc(1, sizeof(*r));
    if (!r)
        goto oom;
    r->view = *view;
    uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
        r->watchdog_timer = event_new(base, -1, EV_PERSIST, on_watchdog, r);
        if (!r->watchdog_timer)
            goto oom;
        struct timeval half = {(time_t)(watchdog_usec / 2 / 1000000),
                               (suseconds_t)(watchdog_usec / 2 % 1000000)};
        event_add(r->watchdog_timer, &half);
    }
    return r;
oom:
    readiness_destroy(r);
    snprintf(errstr, errstr_size, "out of memory");
    return NULL;
}

void readiness_destroy(struct readiness *r)
{
    if (!r)
        return;
    if (r->watchdog_timer)
        event_free(r->watchdog_timer);
    free(r);
}

void readiness_mark_ready(struct readiness *r)
{
    if (r->ready)
        return;
    r->ready = true;
    sd_notify(0, "READY=1\nSTATUS=consuming");
    log_info("event=ready");
}

void readiness_mark_stopping(struct readiness *r)
{
    (void)r;
    sd_notify(0, "STOPPING=1");
}

struct health_facts readiness_health_facts(const struct readiness_state *state, bool ready,
                                           int64_t lag, struct timespec now,
                                           int32_t stall_timeout_s)
{
    return (struct health_facts){
        .kafka_fatal = state->kafka_fatal,
        .stopping = state->stopping,
        .postgres_connected = state->postgres_connected,
        .ready = ready,
        .lag = lag,
        .idle_s = (double)(now.tv_sec - state->last_progress.tv_sec) +
                  (double)(now.tv_nsec - state->last_progress.tv_nsec) / 1e9,
        .stall_timeout_s = stall_timeout_s,
    };
}

const char *readiness_problem_observed(struct readiness *r, const struct readiness_state *state,
                                       int64_t lag, char *buf, size_t size)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    struct health_facts facts =
        readiness_health_facts(state, r->ready, lag, now, r->view.stall_timeout_s);
    return health_problem(&facts, buf, size);
}

const char *readiness_problem(struct readiness *r, char *buf, size_t size)
{
    struct readiness_state state = {0};
    r->view.observe(r->view.ctx, &state);
    return readiness_problem_observed(r, &state, total_lag(&r->view), buf, size);
}
