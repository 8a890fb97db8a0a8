/* The service's raw lanes: one db session per lane, lending its connection to the flusher
 * (flush_lanes.h). */
#include "solarx/flush_lanes.h"

#include <stdio.h>
#include <stdlib.h>

#include "solarx/db_session.h"
#include "solarx/log.h"

struct lane {
    struct flush_lanes *owner;
    int index;
    struct db_session *session;
};

struct flush_lanes {
    struct flusher *flusher;
    struct flush_lanes_handlers handlers;
    int count;
    struct lane lanes[FLUSH_LANES_MAX];
};

static void on_lane_event(void *arg, const struct db_event *ev)
{
    struct lane *lane = arg;
    struct flush_lanes *l = lane->owner;
    switch (ev->kind) {
    case DB_EVENT_CONNECTED:
        if (!flusher_attach_lane(l->flusher, lane->index, ev->conn)) {
            log_warn("event=postgres_connect_failed connection=raw_lane_%d msg=\"%s\"",
                     lane->index + 1, flusher_error(l->flusher));
            db_session_retry(lane->session, DB_RETRY_FAILED);
        }
        return;
    case DB_EVENT_LOST: /* while the lane had no work (logged by the session) */
        flusher_detach_lane(l->flusher, lane->index);
        return;
    case DB_EVENT_READABLE:
    case DB_EVENT_WRITABLE:
        l->handlers.on_ready(l->handlers.owner);
        return;
    case DB_EVENT_DEADLINE:
        l->handlers.on_deadline(l->handlers.owner);
        return;
    default: /* DB_EVENT_CONNECT_FAILED: logged by the session, which retries */
        return;
    }
}

struct flush_lanes *flush_lanes_new(struct event_base *base, const struct config *cfg,
                                    struct flusher *f, const struct flush_lanes_handlers *h)
{
    struct flush_lanes *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->flusher = f;
    l->handlers = *h;
    int count = cfg->flush_connections - 1;
    for (int i = 0; i < count && i < FLUSH_LANES_MAX; i++) {
        struct lane *lane = &l->lanes[i];
        lane->owner = l;
        lane->index = i;
        lane->session = db_session_new(base, cfg, on_lane_event, lane);
        if (!lane->session) {
            flush_lanes_destroy(l);
            return NULL;
        }
        char name[24];
        snprintf(name, sizeof(name), "raw_lane_%d", i + 1);
        db_session_set_name(lane->session, name);
        l->count++;
    }
    return l;
}

void flush_lanes_destroy(struct flush_lanes *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->count; i++) {
        flusher_detach_lane(l->flusher, i);
        db_session_destroy(l->lanes[i].session);
    }
    free(l);
}

void flush_lanes_start(struct flush_lanes *l)
{
    for (int i = 0; i < l->count; i++)
        db_session_start(l->lanes[i].session);
}

void flush_lanes_follow(struct flush_lanes *l)
{
    for (int i = 0; i < l->count; i++) {
        struct db_session *s = l->lanes[i].session;
        bool busy = flusher_lane_busy(l->flusher, i);
        bool watched = db_session_state(s) == DB_STATE_WORKING;
        if (busy && !watched && !db_session_work_begin(s, FLUSH_DEADLINE_MS))
            continue; /* not connected: the flusher finds its connection gone */
        if (!busy && watched)
            db_session_work_end(s);
        if (busy && flusher_lane_wants_write(l->flusher, i))
            db_session_want_write(s);
    }
}

void flush_lanes_flush_ended(struct flush_lanes *l, bool committed)
{
    for (int i = 0; i < l->count; i++) {
        struct db_session *s = l->lanes[i].session;
        db_session_work_end(s);
        PGconn *conn = db_session_conn(s);
        if (conn && flusher_lane_conn(l->flusher, i) != conn)
            db_session_retry(s, DB_RETRY_FAILED); /* the flusher forgot it: close it */
        else if (committed && conn)
            db_session_succeeded(s);
    }
}
