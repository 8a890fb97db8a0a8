/* The service's raw lanes: [solarx] flush_connections - 1 PostgreSQL sessions (db_session.h),
 * named raw_lane_1, raw_lane_2, ... in their log lines, whose connections are lent to the flusher
 * as raw lanes (flush.h). They connect, back off and reconnect on their own; a flush uses those
 * lent when it writes its raw rows and goes on without the others. The service tells this module
 * after every call into the flusher (flush_lanes_follow) and when a flush ends. */
#ifndef SOLARX_FLUSH_LANES_H
#define SOLARX_FLUSH_LANES_H

#include <event2/event.h>
#include <stdbool.h>

#include "solarx/config.h"
#include "solarx/flush.h"

struct flush_lanes;

/* What a lane tells the service: a busy lane's socket is ready (call flusher_on_io), or the
 * flush in progress passed its deadline on a lane. */
struct flush_lanes_handlers {
    void (*on_ready)(void *owner);
    void (*on_deadline)(void *owner);
    void *owner;
};

/* cfg->flush_connections - 1 lanes (none for 1) lending their connections to f (all borrowed).
 * NULL when out of memory. */
struct flush_lanes *flush_lanes_new(struct event_base *base, const struct config *cfg,
                                    struct flusher *f, const struct flush_lanes_handlers *h);
/* Closes the lanes' connections (before the flusher is destroyed). */
void flush_lanes_destroy(struct flush_lanes *l);
/* Starts connecting. */
void flush_lanes_start(struct flush_lanes *l);

/* After every call into the flusher: a lane the flush gave work is watched under the flush's
 * deadline (its readiness goes to on_ready), one it no longer works on is not; output libpq
 * could not send yet waits for the socket. */
void flush_lanes_follow(struct flush_lanes *l);
/* The flush ended: the lanes' work ends; a lane whose connection the flusher forgot (it failed,
 * or its transaction was open when the flush failed) is closed -- that rolls it back -- and
 * connected again after the backoff. committed: the flush committed. */
void flush_lanes_flush_ended(struct flush_lanes *l, bool committed);

#endif
