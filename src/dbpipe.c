/* The pipeline object (dbpipe.h): the queries in flight on a borrowed connection, their results
 * handed to the handlers they carry, COPY IN, output pushed when the socket takes it, and the
 * first failure. It decides nothing about what the statements mean: its owner (flush.c) is told
 * DB_IO_SYNCED / DB_IO_DONE / DB_IO_COPY_IN / DB_IO_FAILED and chooses what to send next.
 *
 * The FIFO holds, in the order they were sent, the queries whose results have not all been read
 * and the sync points after them. libpq ends each query's results with a NULL from PQgetResult
 * and a sync point with a PGRES_PIPELINE_SYNC result; after a failed query, the server skips the
 * rest of its pipeline, which libpq reports as PGRES_PIPELINE_ABORTED (not handed to anyone). */
#include "solarx/dbpipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/pgwire.h"

/* Queries and sync points in flight at once (a flush's pipelines hold about 25). */
#define DB_IN_FLIGHT_MAX 48

struct db_entry {
    bool sync; /* a sync point; else a query */
    enum stmt_id stmt;
    db_result_fn on_result; /* NULL: the result is not read */
    void *ctx;
    const char *what; /* names a refused result, or NULL: the statement's name */
};

struct db_pipeline {
    PGconn *conn;              /* borrowed; NULL: none */
    const struct pgwire *wire; /* how conn is spoken to */
    db_failure_name_fn failure_name;
    void *failure_name_ctx;
    bool pipelined;     /* the connection is in pipeline mode */
    bool want_write;    /* libpq holds output the socket did not take */
    bool copy_expected; /* the command in flight is a COPY ... FROM STDIN */
    bool copying;       /* the COPY takes data until db_copy_end */
    struct db_entry fifo[DB_IN_FLIGHT_MAX];
    size_t head, count;
    int stray_ends; /* query ends no query accounts for since the last sync point */
    struct db_error error;
};

struct db_pipeline *db_pipeline_new(db_failure_name_fn failure_name, void *ctx)
{
    struct db_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->failure_name = failure_name;
    p->failure_name_ctx = ctx;
    db_pipeline_clear_error(p);
    return p;
}

void db_pipeline_free(struct db_pipeline *p)
{
    free(p);
}

/* ---- the error record ---------------------------------------------------------------------- */

static bool record_failure(struct db_pipeline *p, enum stmt_id stmt, const char *sqlstate,
                           const char *what, const char *detail)
{
    struct db_error *e = &p->error;
    if (e->failed)
        return false;
    e->failed = true;
    e->stmt = stmt;
    snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate ? sqlstate : "");
    char clean[768];
    snprintf(clean, sizeof(clean), "%s", detail ? detail : "");
    clean[strcspn(clean, "\n")] = '\0';
    snprintf(e->text, sizeof(e->text), "postgres: %s: %s", what ? what : "error", clean);
    return true;
}

bool db_pipeline_fail(struct db_pipeline *p, const char *sqlstate, const char *what,
                      const char *detail)
{
    return record_failure(p, STMT_COUNT, sqlstate, what, detail);
}

bool db_pipeline_fail_as(struct db_pipeline *p, const struct db_error *e)
{
    if (p->error.failed || !e->failed)
        return false;
    p->error = *e;
    return true;
}

bool db_pipeline_failed(const struct db_pipeline *p)
{
    return p->error.failed;
}

const struct db_error *db_pipeline_error(const struct db_pipeline *p)
{
    return &p->error;
}

void db_pipeline_clear_error(struct db_pipeline *p)
{
    p->error = (struct db_error){.failed = false, .stmt = STMT_COUNT};
}

/* A libpq call on the connection failed: its message, under what. */
static bool fail_wire(struct db_pipeline *p, const char *what)
{
    (void)db_pipeline_fail(p, NULL, what, p->wire->error_message(p->conn));
    return false;
}

/* What a failed statement was doing, as the owner names it. */
static const char *failure_name(struct db_pipeline *p, enum stmt_id stmt)
{
    if (p->failure_name)
        return p->failure_name(p->failure_name_ctx, stmt);
    return stmt < STMT_COUNT ? stmt_get(stmt)->name : "pipeline";
}

/* ---- the connection ------------------------------------------------------------------------ */

bool db_pipeline_attach(struct db_pipeline *p, PGconn *conn, const struct pgwire *wire)
{
    db_pipeline_detach(p);
    p->conn = conn;
    p->wire = wire;
    /* Both are no-ops on a connection already in non-blocking pipeline mode (the db session's). */
    if (wire->set_nonblocking(conn, 1) != 0 || wire->enter_pipeline_mode(conn) != 1) {
        db_pipeline_clear_error(p);
        (void)fail_wire(p, "cannot enter pipeline mode");
        p->conn = NULL;
        return false;
    }
    p->pipelined = true;
    return true;
}

void db_pipeline_detach(struct db_pipeline *p)
{
    p->conn = NULL;
    p->pipelined = false;
    p->want_write = false;
    p->copy_expected = false;
    p->copying = false;
    p->head = p->count = 0;
    p->stray_ends = 0;
}

PGconn *db_pipeline_conn(const struct db_pipeline *p)
{
    return p->conn;
}

int db_pipeline_socket(const struct db_pipeline *p)
{
    return p->conn ? p->wire->socket(p->conn) : -1;
}

bool db_pipeline_wants_write(const struct db_pipeline *p)
{
    return p->want_write;
}

/* Pushes what libpq buffered; the rest when the socket is writable (want_write). */
static bool push(struct db_pipeline *p)
{
    int rc = p->wire->flush(p->conn);
    if (rc < 0)
        return fail_wire(p, "sending");
    p->want_write = rc == 1;
    return true;
}

/* ---- sending ------------------------------------------------------------------------------- */

static bool enqueue(struct db_pipeline *p, struct db_entry entry)
{
    if (p->count >= DB_IN_FLIGHT_MAX) {
        (void)db_pipeline_fail(p, NULL, "internal", "too many queries in one pipeline");
        return false;
    }
    p->fifo[(p->head + p->count++) % DB_IN_FLIGHT_MAX] = entry;
    return true;
}

static bool send_stmt(struct db_pipeline *p, enum stmt_id stmt, const char *const *values,
                      db_result_fn on_result, void *ctx, const char *what)
{
    if (p->count >= DB_IN_FLIGHT_MAX) {
        (void)db_pipeline_fail(p, NULL, "internal", "too many queries in one pipeline");
        return false;
    }
    const struct stmt_def *s = stmt_get(stmt);
    if (!p->wire->send_query(p->conn, s->sql, (int)s->nparams, values))
        return fail_wire(p, "sending a query");
    return enqueue(
        p, (struct db_entry){.stmt = stmt, .on_result = on_result, .ctx = ctx, .what = what});
}

bool db_pipeline_send(struct db_pipeline *p, enum stmt_id stmt, const char *const *values,
                      db_result_fn on_result, void *ctx, const char *what)
{
    return send_stmt(p, stmt, values, on_result, ctx, what);
}

bool db_sync(struct db_pipeline *p)
{
    if (p->wire->pipeline_sync(p->conn) != 1)
        return fail_wire(p, "pipeline sync");
    if (!enqueue(p, (struct db_entry){.sync = true, .stmt = STMT_COUNT}))
        return false;
    p->stray_ends = 0;
    return push(p);
}

bool db_leave_pipeline(struct db_pipeline *p)
{
    if (p->wire->exit_pipeline_mode(p->conn) != 1)
        return fail_wire(p, "leaving pipeline mode");
    p->pipelined = false;
    return true;
}

bool db_enter_pipeline(struct db_pipeline *p)
{
    if (p->wire->enter_pipeline_mode(p->conn) != 1)
        return fail_wire(p, "entering pipeline mode");
    p->pipelined = true;
    return true;
}

bool db_command(struct db_pipeline *p, enum stmt_id stmt, const char *const *values,
                db_result_fn on_result, void *ctx)
{
    return send_stmt(p, stmt, values, on_result, ctx, NULL) && push(p);
}

bool db_copy_start(struct db_pipeline *p, enum stmt_id stmt, db_result_fn on_result, void *ctx)
{
    if (!db_command(p, stmt, NULL, on_result, ctx))
        return false;
    p->copy_expected = true;
    return true;
}

bool db_pipeline_push(struct db_pipeline *p)
{
    return push(p);
}

/* The COPY's statement, for naming its failures. */
static enum stmt_id command_stmt(const struct db_pipeline *p)
{
    return p->count > 0 ? p->fifo[p->head].stmt : STMT_COUNT;
}

enum db_copy db_copy_put(struct db_pipeline *p, const void *buf, size_t len)
{
    int rc = p->wire->put_copy_data(p->conn, buf, (int)len);
    if (rc == 0) { /* libpq's buffer cannot grow now: when the socket is writable */
        p->want_write = true;
        return DB_COPY_FULL;
    }
    if (rc < 0) {
        (void)fail_wire(p, failure_name(p, command_stmt(p)));
        return DB_COPY_FAILED;
    }
    return DB_COPY_TAKEN;
}

enum db_copy db_copy_end(struct db_pipeline *p)
{
    int rc = p->wire->put_copy_end(p->conn, NULL);
    if (rc == 0) { /* the same: the end when the socket is writable */
        p->want_write = true;
        return DB_COPY_FULL;
    }
    if (rc < 0) {
        (void)fail_wire(p, failure_name(p, command_stmt(p)));
        return DB_COPY_FAILED;
    }
    p->copying = false;
    return push(p) ? DB_COPY_TAKEN : DB_COPY_FAILED;
}

/* ---- results ------------------------------------------------------------------------------- */

/* The query whose results are being read, or NULL (a sync point is next, or nothing). */
static const struct db_entry *current_query(const struct db_pipeline *p)
{
    if (p->count == 0 || p->fifo[p->head].sync)
        return NULL;
    return &p->fifo[p->head];
}

static void pop(struct db_pipeline *p)
{
    p->head = (p->head + 1) % DB_IN_FLIGHT_MAX;
    if (--p->count == 0)
        p->head = 0;
}

/* One result of the current query: an error is recorded (the first one's SQLSTATE with it); a
 * success goes to the query's handler, unless something failed before. */
static void take_result(struct db_pipeline *p, PGresult *res)
{
    const struct db_entry *q = current_query(p);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        enum stmt_id stmt = q ? q->stmt : STMT_COUNT;
        (void)record_failure(p, stmt, p->wire->result_error_field(res, PG_DIAG_SQLSTATE),
                             failure_name(p, stmt), p->wire->result_error_message(res));
        return;
    }
    if (p->error.failed || !q || !q->on_result)
        return;
    char error[512] = "";
    if (!q->on_result(q->ctx, res, error, sizeof(error)))
        (void)record_failure(p, q->stmt, NULL, q->what ? q->what : stmt_get(q->stmt)->name, error);
}

/* Pipeline mode: results until the sync point. */
static enum db_io read_pipeline(struct db_pipeline *p)
{
    for (;;) {
        if (p->wire->is_busy(p->conn))
            return DB_IO_MORE;
        PGresult *res = p->wire->get_result(p->conn);
        if (!res) { /* the end of one query's results */
            if (current_query(p))
                pop(p);
            else if (++p->stray_ends > 1) {
                (void)db_pipeline_fail(p, NULL, "connection", "pipeline out of step");
                return DB_IO_FAILED;
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            while (p->count > 0 && !p->fifo[p->head].sync)
                pop(p); /* queries a broken pipeline never answered */
            if (p->count > 0)
                pop(p);
            p->stray_ends = 0;
            return p->error.failed ? DB_IO_FAILED : DB_IO_SYNCED;
        }
        if (st != PGRES_PIPELINE_ABORTED)
            take_result(p, res);
        PQclear(res);
    }
}

/* Outside pipeline mode: the results of the command in flight until it completes. */
static enum db_io read_command(struct db_pipeline *p)
{
    for (;;) {
        if (p->copying)
            return DB_IO_COPY_IN;
        if (p->wire->is_busy(p->conn))
            return DB_IO_MORE;
        PGresult *res = p->wire->get_result(p->conn);
        if (!res) { /* the command is complete */
            if (p->count > 0)
                pop(p);
            p->copy_expected = false;
            return p->error.failed ? DB_IO_FAILED : DB_IO_DONE;
        }
        if (PQresultStatus(res) == PGRES_COPY_IN) {
            PQclear(res);
            if (!p->copy_expected) {
                (void)db_pipeline_fail(p, NULL, "internal", "COPY out of step");
                return DB_IO_FAILED;
            }
            p->copy_expected = false;
            p->copying = true;
            continue;
        }
        take_result(p, res);
        PQclear(res);
    }
}

enum db_io db_pipeline_read(struct db_pipeline *p)
{
    if (!p->conn) {
        (void)db_pipeline_fail(p, NULL, "connection", "not connected");
        return DB_IO_FAILED;
    }
    return p->pipelined ? read_pipeline(p) : read_command(p);
}

bool db_pipeline_check_idle(struct db_pipeline *p)
{
    if (!p->conn) {
        (void)db_pipeline_fail(p, NULL, "connection", "not connected");
        return false;
    }
    if (!p->wire->consume_input(p->conn))
        return fail_wire(p, "connection");
    return true;
}

enum db_io db_pipeline_on_io(struct db_pipeline *p)
{
    if (!p->conn) {
        (void)db_pipeline_fail(p, NULL, "connection", "not connected");
        return DB_IO_FAILED;
    }
    if (p->want_write && !push(p))
        return DB_IO_FAILED;
    if (!p->wire->consume_input(p->conn)) {
        (void)fail_wire(p, "connection");
        return DB_IO_FAILED;
    }
    return db_pipeline_read(p);
}
