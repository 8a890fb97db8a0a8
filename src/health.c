/* /healthz's verdict from the loop's facts. */
#include "solarx/health.h"

#include <stdio.h>

const char *health_problem(const struct health_facts *h, char *buf, size_t size)
{
    if (h->kafka_fatal)
        snprintf(buf, size, "kafka fatal error: %s", h->kafka_fatal);
    else if (h->stopping)
        snprintf(buf, size, "stopping");
    else if (!h->postgres_connected)
        snprintf(buf, size, "postgres unavailable");
    else if (!h->ready)
        snprintf(buf, size, "waiting for partitions");
    else if (h->lag > 0 && h->idle_s > h->stall_timeout_s)
        snprintf(buf, size, "consumption stalled for %.0f s with lag %lld (stall_timeout_s = %d)",
                 h->idle_s, (long long)h->lag, (int)h->stall_timeout_s);
    else
        return NULL;
    return buf;
}
