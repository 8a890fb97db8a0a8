/* What /healthz answers: the first reason the service cannot make progress, from facts the loop
 * gathers. Pure, no I/O. */
#ifndef SOLARX_HEALTH_H
#define SOLARX_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct health_facts {
    const char *kafka_fatal; /* the fatal librdkafka error, or NULL */
    bool stopping;
    bool postgres_connected;
    bool ready;    /* partitions were assigned at least once */
    int64_t lag;   /* messages behind the end of the assigned partitions, -1: unknown */
    double idle_s; /* since the last consumed message or committed flush */
    int32_t stall_timeout_s;
};

/* NULL when healthy; otherwise the reason, written to buf ("consumption stalled for 312 s with
 * lag 1200 (stall_timeout_s = 300)") and returned. In order: a fatal Kafka error, stopping,
 * PostgreSQL unavailable, no partitions yet, consumption stalled (idle longer than
 * stall_timeout_s while lag > 0). */
const char *health_problem(const struct health_facts *h, char *buf, size_t size);

#endif
