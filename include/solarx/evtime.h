/* libevent timeouts from the millisecond settings the service is configured in. */
#ifndef SOLARX_EVTIME_H
#define SOLARX_EVTIME_H

#include <sys/time.h>

/* ms (>= 0) as the struct timeval event_add and evtimer_add take. Pure. */
static inline struct timeval evtime_from_ms(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

#endif
