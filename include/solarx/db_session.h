/* The service's PostgreSQL session: one object that owns the connection for its whole life. It
 * connects without blocking (PQconnectPoll on the socket's readiness, with a deadline), puts the
 * connection in non-blocking pipeline mode, watches its socket in the event loop, bounds the work
 * in flight with a deadline, reads the socket itself between the owner's work (notices, the
 * server closing the connection) and closes the connection on loss or when the owner's work
 * failed, then reconnects with backoff. It hands typed events to its owner through one callback;
 * the owner lends the connection to its work (the flusher), says when work is in flight and when
 * it wants write readiness. The state machine and the backoff are pure and unit-tested. */
#ifndef SOLARX_DB_SESSION_H
#define SOLARX_DB_SESSION_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "solarx/config.h"

/* Reconnect delays: from DB_BACKOFF_MIN_MS, doubling, capped at DB_BACKOFF_MAX_MS. */
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 30000
/* A connect not established within the connection's connect_timeout (db.c sets 10 s unless the
 * conninfo says otherwise; libpq itself applies it only to blocking connects) is abandoned; this
 * when libpq cannot say it. connect_timeout=0 (wait indefinitely) sets no deadline. */
#define DB_CONNECT_TIMEOUT_MS 10000

/* ---- pure parts --------------------------------------------------------------------------- */

/* Why the connection is to be made anew; each says what happens to the backoff. */
enum db_retry {
    DB_RETRY_LOST,    /* it went, or never came: the delay grows */
    DB_RETRY_FAILED,  /* the owner's work failed: the delay grows, and is kept by the next
                       * connection until some work succeeds (db_backoff_succeeded) */
    DB_RETRY_AT_ONCE, /* the work failed, its next part is ready: the minimum delay, and kept
                       * like DB_RETRY_FAILED */
    DB_RETRY_REFUSED, /* the work was refused for a reason that is not the server's state (it
                       * must not be retried): the delay grows, a new connection resets it */
};

struct db_backoff {
    int delay_ms; /* the last delay waited; 0: none since a success or a connection */
    bool failing; /* the owner's last work failed: a new connection keeps the delay */
};

/* Returns the delay before the next connect for why, and records it in b. */
int db_backoff_retry(struct db_backoff *b, enum db_retry why);
/* A connection was established: the delay starts over unless the owner's work is failing. */
void db_backoff_connected(struct db_backoff *b);
/* The owner's work succeeded: the delay starts over. */
void db_backoff_succeeded(struct db_backoff *b);

enum db_state {
    DB_STATE_WAITING,    /* no connection; the reconnect timer runs (or nothing, before start) */
    DB_STATE_CONNECTING, /* PQconnectPoll in progress, under the connect's deadline */
    DB_STATE_IDLE,       /* connected, no work in flight */
    DB_STATE_WORKING,    /* connected, the owner's work in flight, under its deadline */
};

/* What reaches a session: from the loop, from the connect, or from its owner. */
enum db_input {
    DB_INPUT_TIMER,          /* the reconnect delay passed */
    DB_INPUT_CONNECT_OK,     /* PQconnectPoll said PGRES_POLLING_OK */
    DB_INPUT_CONNECT_FAILED, /* PQconnectPoll said PGRES_POLLING_FAILED (or out of memory) */
    DB_INPUT_READABLE,       /* the socket is readable */
    DB_INPUT_WRITABLE,       /* the socket is writable */
    DB_INPUT_DEADLINE,       /* the connect's or the work's deadline passed */
    DB_INPUT_WORK_BEGIN,     /* the owner sent work (db_session_work_begin) */
    DB_INPUT_WORK_END,       /* the owner's work ended (db_session_work_end) */
    DB_INPUT_LOST,           /* no work in flight, the connection is gone (read by the session) */
    DB_INPUT_CLOSED,         /* the owner's work failed: the session closes it (db_session_retry) */
};

/* What the owner is told. */
enum db_event_kind {
    DB_EVENT_NONE,           /* nothing (an input stale in this state) */
    DB_EVENT_CONNECTED,      /* a connection is established: ev->conn, lent to the owner */
    DB_EVENT_CONNECT_FAILED, /* a connect failed (logged); the session retries after backoff */
    DB_EVENT_READABLE,       /* work in flight: the socket is readable */
    DB_EVENT_WRITABLE,       /* work in flight: the socket is writable (db_session_want_write) */
    DB_EVENT_LOST,           /* no work in flight, and the connection is gone (ev->reason): the
                              * session closed it and reconnects after the backoff; the owner
                              * forgets the connection it was lent */
    DB_EVENT_DEADLINE,       /* the work in flight passed its deadline */
};

struct db_step {
    enum db_state next;
    enum db_event_kind tell;
};

/* What input does in state: the next state and what the owner is told. Inputs that make no
 * sense in a state (a stale readiness, work without a connection) leave it unchanged. A readable
 * socket without work in flight tells nothing: the session reads it (DB_INPUT_LOST when the
 * connection turns out to be gone). */
struct db_step db_session_step(enum db_state state, enum db_input input);

const char *db_state_name(enum db_state state);

/* ---- the session -------------------------------------------------------------------------- */

struct db_event {
    enum db_event_kind kind;
    PGconn *conn;       /* DB_EVENT_CONNECTED: the new connection, in non-blocking pipeline
                         * mode; the session's, lent (see db_session_new) */
    const char *reason; /* DB_EVENT_LOST: why, as libpq says it (valid during the call) */
};

/* Called for every event but DB_EVENT_NONE, which is never told; the owner may call any
 * db_session_ function from it except destroy. */
typedef void (*db_session_handler)(void *owner, const struct db_event *ev);

struct db_session;

/* A session connecting with cfg's settings (borrowed, as base is) and telling owner through
 * handler. The connection is the session's: it is lent to the owner on DB_EVENT_CONNECTED (the
 * owner may lend it on, to the flusher) until DB_EVENT_LOST, db_session_retry or
 * db_session_destroy, and only the session closes it. NULL when out of memory. */
struct db_session *db_session_new(struct event_base *base, const struct config *cfg,
                                  db_session_handler handler, void *owner);
/* Closes the connection (or an unfinished connect) and frees the session's events. */
void db_session_destroy(struct db_session *s);

/* Names the session's connection, one of several, in its log lines (connection=<name>) and in
 * PostgreSQL's pg_stat_activity (application_name "solarx-stream <name>"). */
void db_session_set_name(struct db_session *s, const char *name);

/* Starts the first connect, at once. */
void db_session_start(struct db_session *s);

/* The owner sent work on the connection: readiness is told as DB_EVENT_READABLE/WRITABLE, and
 * DB_EVENT_DEADLINE after deadline_ms. Returns false, changing nothing, without a connection
 * or with work already in flight. */
bool db_session_work_begin(struct db_session *s, int deadline_ms)
    __attribute__((warn_unused_result));
/* The owner has output libpq could not send yet: DB_EVENT_WRITABLE once the socket takes more. */
void db_session_want_write(struct db_session *s);
/* The work in flight ended (however): its deadline goes. No-op without work in flight. */
void db_session_work_end(struct db_session *s);
/* The owner's work succeeded: the next reconnect starts from the minimum delay. */
void db_session_succeeded(struct db_session *s);
/* The owner's work on the connection failed (or was fenced, or abandoned): the session closes
 * the connection, which rolls back a transaction left open, and connects again after the backoff
 * why says (logged as event=postgres_reconnect_scheduled). Ends work in flight. Ignored while a
 * reconnect is already waiting. */
void db_session_retry(struct db_session *s, enum db_retry why);

enum db_state db_session_state(const struct db_session *s);
/* The established connection (idle or working), or NULL. */
PGconn *db_session_conn(const struct db_session *s);

#endif
