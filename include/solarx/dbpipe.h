/* How the flush sends its statements, and the pipeline that carries them to PostgreSQL.
 *
 * struct db_pipe is what a statement's sender sees: a query names its statement (statements.h),
 * gives its parameter values by the statement's P_ names, and carries the handler its result
 * goes to. dimsync.c and flush.c send through it; tests may implement it with a recording fake.
 *
 * struct db_pipeline (dbpipe.c) is the object that owns the conversation with PostgreSQL over a
 * borrowed connection, spoken to through struct pgwire (libpq, or a test's recording fake): the
 * FIFO of queries in flight with their handlers, the sync points that end each pipeline, reading
 * the results when the socket is readable (never blocking), handing each result to its query's
 * handler, COPY IN, pushing output when the socket is writable, and one error record. Like
 * PgBouncer's SBuf, it owns the socket's traffic and hands its owner typed events (enum db_io);
 * the owner decides what a statement means and what comes next. */
#ifndef SOLARX_DBPIPE_H
#define SOLARX_DBPIPE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/statements.h"

/* Takes the successful result of one query (read its columns by the statement's C_ names).
 * Returns false with errstr (a message naming what is wrong) when the result is unacceptable:
 * the flush fails. */
typedef bool (*db_result_fn)(void *ctx, PGresult *res, char *errstr, size_t errstr_size);

struct db_pipe {
    /* Queues stmt with values[0..nparams) (copied before it returns; NULL values are SQL NULL).
     * on_result (NULL: the result is not read) gets the result with ctx once it arrives.
     * Returns false when the query cannot be sent (the pipe records why). */
    bool (*send)(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                 db_result_fn on_result, void *ctx);
};

static inline __attribute__((warn_unused_result)) bool db_send(struct db_pipe *pipe,
                                                               enum stmt_id stmt,
                                                               const char *const *values,
                                                               db_result_fn on_result, void *ctx)
{
    return pipe->send(pipe, stmt, values, on_result, ctx);
}

/* ---- the pipeline object ------------------------------------------------------------------- */

struct pgwire;
struct db_pipeline;

/* What the pipeline has to tell its owner after it was given the socket's readiness. */
enum db_io {
    DB_IO_MORE,    /* waiting on the socket: call db_pipeline_on_io when it is readable (or
                      writable, while db_pipeline_wants_write) */
    DB_IO_SYNCED,  /* pipeline mode: every query before the sync point had its result handled,
                      and nothing failed; the pipeline is empty */
    DB_IO_DONE,    /* outside pipeline mode: the command in flight completed without error */
    DB_IO_COPY_IN, /* the COPY started by db_copy_start takes data: db_copy_put, db_copy_end */
    DB_IO_FAILED,  /* see db_pipeline_error. In pipeline mode once the sync point is read (the
                      results after the failure were skipped), outside it once the command
                      completed, at once when the connection itself failed */
};

/* The first failure since db_pipeline_clear_error: the only one (later ones are not recorded). */
struct db_error {
    bool failed;
    enum stmt_id stmt; /* the statement whose result failed or was refused; STMT_COUNT: none */
    char sqlstate[6];  /* the server's SQLSTATE, or one the owner gave; "" when none */
    char text[1024];   /* "postgres: <what>: <message>" (first line of the message) */
};

/* Names what a failed statement was doing, for the error record ("window merge"); stmt is
 * STMT_COUNT when a failed result belongs to no query in flight. NULL: the statement's name. */
typedef const char *(*db_failure_name_fn)(void *ctx, enum stmt_id stmt);

/* A pipeline with no connection; failure_name (and its ctx) name failed statements. NULL when
 * out of memory. */
struct db_pipeline *db_pipeline_new(db_failure_name_fn failure_name, void *ctx);
void db_pipeline_free(struct db_pipeline *p);

/* Lends conn (spoken to through wire, both borrowed: the pipeline never closes it) and puts it
 * in non-blocking pipeline mode unless it is already. Returns false, forgetting it, when that
 * fails (the error record says why; it replaces what the record held). */
bool db_pipeline_attach(struct db_pipeline *p, PGconn *conn, const struct pgwire *wire)
    __attribute__((warn_unused_result));
/* Forgets the connection and whatever was in flight on it (its owner closes it). */
void db_pipeline_detach(struct db_pipeline *p);
/* The connection lent, or NULL. */
PGconn *db_pipeline_conn(const struct db_pipeline *p);
/* The connection's socket (poll it for reading, and for writing while wants_write). */
int db_pipeline_socket(const struct db_pipeline *p);
/* Output is still buffered: call db_pipeline_on_io when the socket is writable. */
bool db_pipeline_wants_write(const struct db_pipeline *p);

/* Pipeline mode: queues stmt with values; on_result (NULL: not read) gets its successful result
 * with ctx, unless an earlier query failed. what names a refused result in the error record
 * (NULL: the statement's name). Returns false, recording why, when it cannot be sent. */
bool db_pipeline_send(struct db_pipeline *p, enum stmt_id stmt, const char *const *values,
                      db_result_fn on_result, void *ctx, const char *what)
    __attribute__((warn_unused_result));
/* Pipeline mode: ends the queries queued so far with a sync point and pushes them: their results
 * come as DB_IO_SYNCED or DB_IO_FAILED. */
bool db_sync(struct db_pipeline *p) __attribute__((warn_unused_result));

/* Leaves pipeline mode (every queued result read), for commands one at a time and COPY. */
bool db_leave_pipeline(struct db_pipeline *p) __attribute__((warn_unused_result));
/* Enters pipeline mode again (no command in flight). */
bool db_enter_pipeline(struct db_pipeline *p) __attribute__((warn_unused_result));

/* Outside pipeline mode: sends stmt and pushes it; its completion is DB_IO_DONE or
 * DB_IO_FAILED, its successful result goes to on_result as in db_pipeline_send. */
bool db_command(struct db_pipeline *p, enum stmt_id stmt, const char *const *values,
                db_result_fn on_result, void *ctx) __attribute__((warn_unused_result));
/* Outside pipeline mode: starts the COPY ... FROM STDIN statement stmt; DB_IO_COPY_IN when the
 * server takes data. Its final result is the command's (DB_IO_DONE / DB_IO_FAILED). */
bool db_copy_start(struct db_pipeline *p, enum stmt_id stmt, db_result_fn on_result, void *ctx)
    __attribute__((warn_unused_result));

enum db_copy {
    DB_COPY_TAKEN,  /* the data (or the end) is with libpq */
    DB_COPY_FULL,   /* libpq cannot take it now: offer it again when the socket is writable */
    DB_COPY_FAILED, /* see db_pipeline_error */
};
/* During DB_IO_COPY_IN: one chunk of the COPY's data, handed to libpq (db_pipeline_push sends
 * it; libpq keeps only what the socket did not take). */
enum db_copy db_copy_put(struct db_pipeline *p, const void *buf, size_t len)
    __attribute__((warn_unused_result));
/* Ends the COPY's data and pushes it; then db_pipeline_read gives the COPY's completion. */
enum db_copy db_copy_end(struct db_pipeline *p) __attribute__((warn_unused_result));

/* Pushes what libpq buffered as far as the socket takes it; the rest when it is writable
 * (db_pipeline_wants_write). */
bool db_pipeline_push(struct db_pipeline *p) __attribute__((warn_unused_result));

/* The socket is readable (or writable while wants_write): pushes buffered output, reads the
 * input and the results that are complete (db_pipeline_read). */
enum db_io db_pipeline_on_io(struct db_pipeline *p) __attribute__((warn_unused_result));
/* Nothing in flight, yet the socket may be readable (a notice, the server going away): reads
 * it. Returns false (the error record says why) when the connection is gone. */
bool db_pipeline_check_idle(struct db_pipeline *p) __attribute__((warn_unused_result));
/* Reads the results that are complete without touching the socket, handing each to its
 * query's handler, until one of the events of enum db_io. DB_IO_COPY_IN while a COPY takes
 * data. */
enum db_io db_pipeline_read(struct db_pipeline *p) __attribute__((warn_unused_result));

/* The error record; what is NULL for a failure that is no statement's. Records only the first
 * failure since db_pipeline_clear_error; returns whether this one was recorded. */
bool db_pipeline_fail(struct db_pipeline *p, const char *sqlstate, const char *what,
                      const char *detail);
/* Records another pipeline's failure e as this one's (a raw lane's as its flush's), unless this
 * one holds a failure already. */
bool db_pipeline_fail_as(struct db_pipeline *p, const struct db_error *e);
bool db_pipeline_failed(const struct db_pipeline *p);
const struct db_error *db_pipeline_error(const struct db_pipeline *p);
/* Forgets the error record: before a new unit of work, or when the owner handled the failure
 * of the command in flight (a COPY's unique violation it falls back from). */
void db_pipeline_clear_error(struct db_pipeline *p);

#endif
