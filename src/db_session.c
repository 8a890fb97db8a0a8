/* The service's PostgreSQL session: it owns the connection (non-blocking connect, pipeline mode,
 * close on loss or failure, reconnect with backoff), reads its socket between the owner's work,
 * and tells the owner the socket's readiness, the deadline of the work in flight and the loss of
 * the connection as typed events. */
#include "solarx/db_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/db.h"
#include "solarx/evtime.h"
#include "solarx/log.h"

/* ---- pure parts --------------------------------------------------------------------------- */

int db_backoff_retry(struct db_backoff *b, enum db_retry why)
{
    switch (why) {
    case DB_RETRY_LOST:
        break;
    case DB_RETRY_FAILED:
        b->failing = true;
        break;
    case DB_RETRY_AT_ONCE:
        b->failing = true;
        b->delay_ms = 0;
        break;
    case DB_RETRY_REFUSED:
        b->failing = false;
        break;
    }
    if (b->delay_ms <= 0)
        b->delay_ms = DB_BACKOFF_MIN_MS;
    else if (b->delay_ms >= DB_BACKOFF_MAX_MS / 2)
        b->delay_ms = DB_BACKOFF_MAX_MS;
    else
        b->delay_ms *= 2;
    return b->delay_ms;
}

void db_backoff_connected(struct db_backoff *b)
{
    if (!b->failing)
        b->delay_ms = 0;
}

void db_backoff_succeeded(struct db_backoff *b)
{
    b->delay_ms = 0;
    b->failing = false;
}

struct db_step db_session_step(enum db_state state, enum db_input input)
{
    struct db_step stay = {state, DB_EVENT_NONE};
    switch (input) {
    case DB_INPUT_TIMER:
        return state == DB_STATE_WAITING ? (struct db_step){DB_STATE_CONNECTING, DB_EVENT_NONE}
                                         : stay;
    case DB_INPUT_CONNECT_OK:
        return state == DB_STATE_CONNECTING ? (struct db_step){DB_STATE_IDLE, DB_EVENT_CONNECTED}
                                            : stay;
    case DB_INPUT_CONNECT_FAILED:
        return state == DB_STATE_CONNECTING
                   ? (struct db_step){DB_STATE_WAITING, DB_EVENT_CONNECT_FAILED}
                   : stay;
    case DB_INPUT_READABLE:
        if (state == DB_STATE_WORKING)
            return (struct db_step){state, DB_EVENT_READABLE};
        return stay; /* CONNECTING: the connect is polled again; IDLE: the session reads it */
    case DB_INPUT_WRITABLE:
        return state == DB_STATE_WORKING ? (struct db_step){state, DB_EVENT_WRITABLE} : stay;
    case DB_INPUT_DEADLINE:
        if (state == DB_STATE_WORKING)
            return (struct db_step){state, DB_EVENT_DEADLINE};
        if (state == DB_STATE_CONNECTING)
            return (struct db_step){DB_STATE_WAITING, DB_EVENT_CONNECT_FAILED};
        return stay;
    case DB_INPUT_WORK_BEGIN:
        return state == DB_STATE_IDLE ? (struct db_step){DB_STATE_WORKING, DB_EVENT_NONE} : stay;
    case DB_INPUT_WORK_END:
        return state == DB_STATE_WORKING ? (struct db_step){DB_STATE_IDLE, DB_EVENT_NONE} : stay;
    case DB_INPUT_LOST:
        return state == DB_STATE_IDLE ? (struct db_step){DB_STATE_WAITING, DB_EVENT_LOST} : stay;
    case DB_INPUT_CLOSED:
        return (struct db_step){DB_STATE_WAITING, DB_EVENT_NONE};
    }
    return stay;
}

const char *db_state_name(enum db_state state)
{
    switch (state) {
    case DB_STATE_WAITING:
        return "waiting";
    case DB_STATE_CONNECTING:
        return "connecting";
    case DB_STATE_IDLE:
        return "idle";
    case DB_STATE_WORKING:
        return "working";
    }
    return "unknown";
}

/* ---- the session -------------------------------------------------------------------------- */

struct db_session {
    struct event_base *base;
    const struct config *cfg;
    db_session_handler handler;
    void *owner;

    enum db_state state;
    struct db_backoff backoff;
    PGconn *conn;        /* connecting or connected: the session's, lent to the owner */
    struct event *timer; /* the reconnect delay */
    /* The connect's or the work's deadline. */
    struct event *deadline;
    /* While connecting: one-shot, on the socket PQconnectPoll waits for (it may change). */
    struct event *connect_io;
    /* While connected: the connection's socket (persistent read, one-shot write). */
    struct event *read, *write;
    char name[32]; /* db_session_set_name's, or "" */
    char tag[48];  /* " connection=<name>" in its log lines, or "" */
};

static void tell(struct db_session *s, enum db_event_kind kind, PGconn *conn)
{
    if (kind == DB_EVENT_NONE)
        return;
    struct db_event ev = {.kind = kind, .conn = conn};
    s->handler(s->owner, &ev);
}

/* The first line of libpq's message (it ends its messages with a newline). */
static void first_line(char *out, size_t size, const char *msg)
{
    snprintf(out, size, "%s", msg ? msg : "");
    out[strcspn(out, "\n")] = '\0';
}

/* Applies input; returns what the owner is to be told (the caller tells it last). */
static enum db_event_kind apply(struct db_session *s, enum db_input input)
{
    struct db_step step = db_session_step(s->state, input);
    s->state = step.next;
    return step.tell;
}

static void free_event(struct event **ev)
{
    if (*ev)
        event_free(*ev);
    *ev = NULL;
}

/* Closes the connection (the server rolls back a transaction left open) and its events. */
static void close_connection(struct db_session *s)
{
    free_event(&s->read);
    free_event(&s->write);
    free_event(&s->connect_io);
    evtimer_del(s->deadline);
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
}

static void schedule_reconnect(struct db_session *s, enum db_retry why)
{
    close_connection(s);
    struct timeval tv = evtime_from_ms(db_backoff_retry(&s->backoff, why));
    evtimer_add(s->timer, &tv);
    log_info("event=postgres_reconnect_scheduled in_ms=%d%s", s->backoff.delay_ms, s->tag);
}

/* The connect failed (msg: why, when libpq has no message): logged, told, retried. */
static void connect_failed(struct db_session *s, const char *msg)
{
    char text[512];
    first_line(text, sizeof(text), s->conn ? PQerrorMessage(s->conn) : "");
    if (!text[0] || msg)
        snprintf(text, sizeof(text), "%s", msg ? msg : "out of memory");
    char server[256];
    log_warn("event=postgres_connect_failed server=\"%s\" msg=\"%s\"%s",
             db_describe(s->conn, server, sizeof(server)), text, s->tag);
    schedule_reconnect(s, DB_RETRY_LOST);
    tell(s, DB_EVENT_CONNECT_FAILED, NULL);
}

/* Between the owner's work the connection is gone (why: libpq's message): logged, closed, told
 * as DB_EVENT_LOST, and connected again after the backoff. */
static void connection_lost(struct db_session *s, const char *why)
{
    char reason[512];
    first_line(reason, sizeof(reason), why);
    log_warn("event=postgres_connection_lost msg=\"postgres: connection: %s\"%s", reason, s->tag);
    enum db_event_kind kind = apply(s, DB_INPUT_LOST);
    schedule_reconnect(s, DB_RETRY_LOST);
    struct db_event ev = {.kind = kind, .reason = reason};
    s->handler(s->owner, &ev);
}

/* No work in flight, yet the server sent something: a notice (libpq's notice processor takes
 * it), a parameter change, or the end of the connection (an error, then end of file). */
static void read_idle(struct db_session *s)
{
    if (PQconsumeInput(s->conn) && PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *res;
        while (!PQisBusy(s->conn) && (res = PQgetResult(s->conn)) != NULL)
            PQclear(res);
        return;
    }
    connection_lost(s, PQerrorMessage(s->conn));
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct db_session *s = arg;
    (void)fd;
    enum db_input input = what & EV_WRITE ? DB_INPUT_WRITABLE : DB_INPUT_READABLE;
    if (input == DB_INPUT_READABLE && s->state == DB_STATE_IDLE) {
        read_idle(s);
        return;
    }
    tell(s, apply(s, input), NULL);
}

/* Non-blocking pipeline mode, as the flusher speaks to the server. */
static bool enter_pipeline_mode(struct db_session *s)
{
    if (PQsetnonblocking(s->conn, 1) == 0 && PQenterPipelineMode(s->conn) == 1)
        return true;
    char text[512];
    first_line(text, sizeof(text), PQerrorMessage(s->conn));
    log_warn("event=postgres_connect_failed msg=\"postgres: cannot enter pipeline mode: %s\"%s",
             text, s->tag);
    apply(s, DB_INPUT_CONNECT_FAILED);
    schedule_reconnect(s, DB_RETRY_FAILED);
    tell(s, DB_EVENT_CONNECT_FAILED, NULL);
    return false;
}

/* The connection is established: the session watches its socket and lends it to the owner. */
static void connected(struct db_session *s)
{
    int sock = PQsocket(s->conn);
    free_event(&s->connect_io);
    s->read = event_new(s->base, sock, EV_READ | EV_PERSIST, on_socket, s);
    s->write = event_new(s->base, sock, EV_WRITE, on_socket, s);
    if (!s->read || !s->write || event_add(s->read, NULL) != 0) {
        apply(s, DB_INPUT_CONNECT_FAILED); /* unwatched, the connection would be useless */
        connect_failed(s, "cannot watch the connection's socket");
        return;
    }
    evtimer_del(s->deadline);
    if (!enter_pipeline_mode(s))
        return;
    db_backoff_connected(&s->backoff);
    log_info("event=postgres_connected%s", s->tag);
    tell(s, apply(s, DB_INPUT_CONNECT_OK), s->conn);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);

/* One step of PQconnectPoll; waits on the socket for the next. */
static void poll_connect(struct db_session *s)
{
    PostgresPollingStatusType st = PQconnectPoll(s->conn);
    if (st == PGRES_POLLING_FAILED) {
        apply(s, DB_INPUT_CONNECT_FAILED);
        connect_failed(s, NULL);
        return;
    }
    if (st == PGRES_POLLING_OK) {
        connected(s);
        return;
    }
    /* The socket may be another one after each poll (another host, another attempt). */
    free_event(&s->connect_io);
    short wait = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
    s->connect_io = event_new(s->base, PQsocket(s->conn), wait, on_connect_io, s);
    if (!s->connect_io || event_add(s->connect_io, NULL) != 0) {
        apply(s, DB_INPUT_CONNECT_FAILED);
        connect_failed(s, "cannot watch the connection's socket");
    }
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
    struct db_session *s = arg;
    (void)fd, (void)what;
    if (s->state == DB_STATE_CONNECTING && s->conn)
        poll_connect(s);
}

/* The connect's deadline in ms from conn's connect_timeout (libpq: seconds, at least 2; 0 or
 * less: none), -1 for none. */
static int connect_deadline_ms(PGconn *conn)
{
    int ms = DB_CONNECT_TIMEOUT_MS;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") != 0 || !o->val || !o->val[0])
            continue;
        int seconds = atoi(o->val);
        ms = seconds <= 0 ? -1 : (seconds < 2 ? 2 : seconds > 86400 ? 86400 : seconds) * 1000;
    }
    PQconninfoFree(opts);
    return ms;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct db_session *s = arg;
    (void)fd, (void)what;
    if (apply(s, DB_INPUT_TIMER) != DB_EVENT_NONE || s->state != DB_STATE_CONNECTING)
        return;
    s->conn = db_connect_start(s->cfg, s->name[0] ? s->name : NULL);
    if (!s->conn) {
        apply(s, DB_INPUT_CONNECT_FAILED);
        connect_failed(s, "out of memory");
        return;
    }
    int deadline_ms = connect_deadline_ms(s->conn);
    struct timeval limit = evtime_from_ms(deadline_ms);
    if (deadline_ms >= 0)
        evtimer_add(s->deadline, &limit);
    if (PQstatus(s->conn) == CONNECTION_BAD) { /* failed before any I/O */
        apply(s, DB_INPUT_CONNECT_FAILED);
        connect_failed(s, NULL);
        return;
    }
    /* libpq: after PQconnectStart, wait until the socket is writable, then poll. */
    s->connect_io = event_new(s->base, PQsocket(s->conn), EV_WRITE, on_connect_io, s);
    if (!s->connect_io || event_add(s->connect_io, NULL) != 0) {
        apply(s, DB_INPUT_CONNECT_FAILED);
        connect_failed(s, "cannot watch the connection's socket");
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct db_session *s = arg;
    (void)fd, (void)what;
    enum db_state before = s->state;
    enum db_event_kind kind = apply(s, DB_INPUT_DEADLINE);
    if (before == DB_STATE_CONNECTING && kind == DB_EVENT_CONNECT_FAILED) {
        char msg[80];
        snprintf(msg, sizeof(msg), "not connected within connect_timeout (%d ms)",
                 s->conn ? connect_deadline_ms(s->conn) : DB_CONNECT_TIMEOUT_MS);
        connect_failed(s, msg);
        return;
    }
    tell(s, kind, NULL);
}

struct db_session *db_session_new(struct event_base *base, const struct config *cfg,
                                  db_session_handler handler, void *owner)
{
    struct db_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    *s = (struct db_session){.base = base, .cfg = cfg, .handler = handler, .owner = owner};
    s->timer = evtimer_new(base, on_timer, s);
    s->deadline = evtimer_new(base, on_deadline, s);
    if (!s->timer || !s->deadline) {
        db_session_destroy(s);
        return NULL;
    }
    return s;
}

void db_session_destroy(struct db_session *s)
{
    if (!s)
        return;
    free_event(&s->read);
    free_event(&s->write);
    free_event(&s->connect_io);
    free_event(&s->timer);
    free_event(&s->deadline);
    if (s->conn)
        PQfinish(s->conn);
    free(s);
}

void db_session_set_name(struct db_session *s, const char *name)
{
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->tag, sizeof(s->tag), " connection=%s", s->name);
}

void db_session_start(struct db_session *s)
{
    struct timeval now = {0, 0};
    evtimer_add(s->timer, &now);
}

bool db_session_work_begin(struct db_session *s, int deadline_ms)
{
    if (db_session_step(s->state, DB_INPUT_WORK_BEGIN).next != DB_STATE_WORKING)
        return false;
    apply(s, DB_INPUT_WORK_BEGIN);
    struct timeval tv = evtime_from_ms(deadline_ms);
    evtimer_add(s->deadline, &tv);
    return true;
}

void db_session_want_write(struct db_session *s)
{
    if (s->state == DB_STATE_WORKING && s->write)
        event_add(s->write, NULL);
}

void db_session_work_end(struct db_session *s)
{
    if (s->state != DB_STATE_WORKING)
        return;
    apply(s, DB_INPUT_WORK_END);
    evtimer_del(s->deadline);
    if (s->write)
        event_del(s->write);
}

void db_session_succeeded(struct db_session *s)
{
    db_backoff_succeeded(&s->backoff);
}

void db_session_retry(struct db_session *s, enum db_retry why)
{
    if (s->state == DB_STATE_WAITING)
        return;
    apply(s, DB_INPUT_CLOSED);
    schedule_reconnect(s, why);
}

enum db_state db_session_state(const struct db_session *s)
{
    return s->state;
}

PGconn *db_session_conn(const struct db_session *s)
{
    return s->state == DB_STATE_IDLE || s->state == DB_STATE_WORKING ? s->conn : NULL;
}
