/* Unit tests of the pipeline object alone (dbpipe.h), over a fake of the connection calls
 * (pgwire.h) whose results the test queues itself: results go to their queries' handlers in
 * order, with their ctx; a failed statement is named in the error record with its SQLSTATE and
 * the results after it reach no handler; a refused result fails with its handler's message; the
 * sync point ends a pipeline and the next one starts empty; a COPY takes its chunks and its end;
 * output the socket did not take makes the pipeline want the socket writable. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/dbpipe.h"
#include "solarx/pgwire.h"
#include "solarx/statements.h"

/* ---- the fake -------------------------------------------------------------------------------- */

#define MAX_CALLS 128
#define MAX_RESULTS 128

struct fake {
    char calls[MAX_CALLS][48]; /* "send begin", "sync", "flush", "copy 5", "copy end", ... */
    int call_count;
    PGresult *results[MAX_RESULTS]; /* what get_result returns, in order (NULL: a query's end) */
    int head, tail;
    bool copy_on_send; /* a sent statement answers PGRES_COPY_IN at once */
    int flush_rc;      /* what flush returns (1: output left for when the socket is writable) */
    int copy_rc;       /* what put_copy_data returns */
    char copied[256];
    size_t copied_len;
};

static struct fake *fake_of(const PGconn *conn)
{
    return (struct fake *)conn;
}

static void call(struct fake *k, const char *what)
{
    cr_assert_lt(k->call_count, MAX_CALLS);
    snprintf(k->calls[k->call_count++], sizeof(k->calls[0]), "%s", what);
}

static void arrive(struct fake *k, PGresult *res)
{
    cr_assert_lt(k->tail, MAX_RESULTS);
    k->results[k->tail++] = res;
}

static PGresult *status(ExecStatusType st)
{
    return PQmakeEmptyPGresult(NULL, st);
}

/* One row of one text column. */
static PGresult *row(const char *value)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc col = {.name = "c", .typid = 25, .typlen = -1};
    cr_assert(PQsetResultAttrs(res, 1, &col));
    cr_assert(PQsetvalue(res, 0, 0, (char *)value, (int)strlen(value)));
    return res;
}

/* An error result: its SQLSTATE and message travel as its row. */
static PGresult *error(const char *sqlstate, const char *message)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    PGresAttDesc cols[2] = {{.name = "sqlstate", .typid = 25, .typlen = -1},
                            {.name = "message", .typid = 25, .typlen = -1}};
    cr_assert(PQsetResultAttrs(res, 2, cols));
    cr_assert(PQsetvalue(res, 0, 0, (char *)sqlstate, (int)strlen(sqlstate)));
    cr_assert(PQsetvalue(res, 0, 1, (char *)message, (int)strlen(message)));
    return res;
}

static int fake_send_query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
    struct fake *k = fake_of(conn);
    for (int id = 0; id < STMT_COUNT; id++)
        if (strcmp(stmt_get(id)->sql, sql) == 0) {
            char what[48];
            snprintf(what, sizeof(what), "send %s", stmt_get(id)->name);
            call(k, what);
            cr_assert_eq((size_t)nparams, stmt_get(id)->nparams);
            if (k->copy_on_send)
                arrive(k, status(PGRES_COPY_IN));
            return 1;
        }
    cr_assert_fail("a statement not in the table: %s", sql);
    return 0;
}

static int fake_pipeline_sync(PGconn *conn)
{
    call(fake_of(conn), "sync");
    return 1;
}

static int fake_flush(PGconn *conn)
{
    call(fake_of(conn), "flush");
    return fake_of(conn)->flush_rc;
}

static int fake_put_copy_data(PGconn *conn, const char *buf, int len)
{
    struct fake *k = fake_of(conn);
    char what[48];
    snprintf(what, sizeof(what), "copy %d", len);
    call(k, what);
    if (k->copy_rc != 1)
        return k->copy_rc;
    cr_assert_leq(k->copied_len + (size_t)len, sizeof(k->copied));
    memcpy(k->copied + k->copied_len, buf, (size_t)len);
    k->copied_len += (size_t)len;
    return 1;
}

static int fake_put_copy_end(PGconn *conn, const char *errormsg)
{
    call(fake_of(conn), "copy end");
    return 1;
}

static int fake_enter_pipeline(PGconn *conn)
{
    call(fake_of(conn), "enter pipeline");
    return 1;
}

static int fake_exit_pipeline(PGconn *conn)
{
    call(fake_of(conn), "exit pipeline");
    return 1;
}

static int fake_set_nonblocking(PGconn *conn, int on)
{
    return 0;
}

static int fake_consume_input(PGconn *conn)
{
    return 1;
}

/* Busy while no result has arrived (the server has not answered yet). */
static int fake_is_busy(PGconn *conn)
{
    return fake_of(conn)->head >= fake_of(conn)->tail;
}

static PGresult *fake_get_result(PGconn *conn)
{
    struct fake *k = fake_of(conn);
    cr_assert_lt(k->head, k->tail, "a result read that has not arrived");
    return k->results[k->head++];
}

static char *fake_error_message(const PGconn *conn)
{
    return "server closed the connection\n";
}

static int fake_socket(const PGconn *conn)
{
    return 7;
}

static char *fake_result_error_field(const PGresult *res, int fieldcode)
{
    if (PQresultStatus(res) != PGRES_FATAL_ERROR || fieldcode != PG_DIAG_SQLSTATE)
        return NULL;
    return PQgetvalue(res, 0, 0);
}

static char *fake_result_error_message(const PGresult *res)
{
    return PQresultStatus(res) == PGRES_FATAL_ERROR ? PQgetvalue(res, 0, 1) : "";
}

static const struct pgwire fake_wire = {
    .set_nonblocking = fake_set_nonblocking,
    .enter_pipeline_mode = fake_enter_pipeline,
    .exit_pipeline_mode = fake_exit_pipeline,
    .pipeline_sync = fake_pipeline_sync,
    .send_query = fake_send_query,
    .flush = fake_flush,
    .consume_input = fake_consume_input,
    .is_busy = fake_is_busy,
    .get_result = fake_get_result,
    .put_copy_data = fake_put_copy_data,
    .put_copy_end = fake_put_copy_end,
    .error_message = fake_error_message,
    .socket = fake_socket,
    .result_error_field = fake_result_error_field,
    .result_error_message = fake_result_error_message,
};

/* ---- handlers: each call is logged as "<ctx>=<first value>" ------------------------------------
 */

static char handled[8][32];
static int handled_count;

static bool log_result(void *ctx, PGresult *res, char *errstr, size_t size)
{
    cr_assert_lt(handled_count, 8);
    snprintf(handled[handled_count++], sizeof(handled[0]), "%s=%s", (const char *)ctx,
             PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    return true;
}

static bool refuse_result(void *ctx, PGresult *res, char *errstr, size_t size)
{
    snprintf(errstr, size, "a row that makes no sense");
    return false;
}

/* ---- fixtures -------------------------------------------------------------------------------- */

static struct fake *fake;
static struct db_pipeline *pipe_;

static void setup(void)
{
    fake = calloc(1, sizeof(*fake));
    fake->copy_rc = 1;
    handled_count = 0;
    pipe_ = db_pipeline_new(NULL, NULL);
    cr_assert_not_null(pipe_);
    cr_assert(db_pipeline_attach(pipe_, (PGconn *)fake, &fake_wire));
}

static void teardown(void)
{
    db_pipeline_free(pipe_);
    while (fake->head < fake->tail)
        PQclear(fake->results[fake->head++]);
    free(fake);
}

TestSuite(dbpipe, .init = setup, .fini = teardown);

static bool called(const char *what)
{
    for (int i = 0; i < fake->call_count; i++)
        if (strcmp(fake->calls[i], what) == 0)
            return true;
    return false;
}

/* ---- tests ----------------------------------------------------------------------------------- */

Test(dbpipe, results_go_to_their_handlers_in_order_and_the_sync_ends_the_pipeline)
{
    cr_assert(db_pipeline_send(pipe_, STMT_BEGIN, NULL, NULL, NULL, NULL));
    cr_assert(db_pipeline_send(pipe_, STMT_ENSURE_DATES, (const char *[3]){"{}", "UTC", "15"},
                               log_result, "dates", NULL));
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"}, log_result,
                               "drop", NULL));
    cr_assert(db_sync(pipe_));
    cr_assert_str_eq(fake->calls[0], "enter pipeline"); /* attach */
    cr_assert_str_eq(fake->calls[1], "send begin");
    cr_assert_str_eq(fake->calls[4], "sync");
    cr_assert_str_eq(fake->calls[5], "flush");

    /* Nothing has arrived yet, then the first two queries' results: the pipeline waits. */
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_MORE);
    arrive(fake, status(PGRES_COMMAND_OK));
    arrive(fake, NULL);
    arrive(fake, row("a"));
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_MORE);
    cr_assert_eq(handled_count, 1);
    cr_assert_str_eq(handled[0], "dates=a");

    arrive(fake, row("b"));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_SYNCED);
    cr_assert_eq(handled_count, 2);
    cr_assert_str_eq(handled[1], "drop=b");
    cr_assert_not(db_pipeline_failed(pipe_));

    /* The next pipeline starts empty: its first result goes to its first query. */
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"}, log_result,
                               "again", NULL));
    cr_assert(db_sync(pipe_));
    arrive(fake, row("c"));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_SYNCED);
    cr_assert_str_eq(handled[2], "again=c");
}

Test(dbpipe, a_failed_statement_is_named_and_the_aborted_results_after_it_reach_no_handler)
{
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"}, log_result,
                               "before", NULL));
    cr_assert(db_pipeline_send(pipe_, STMT_BEGIN, NULL, log_result, "failing", NULL));
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"}, log_result,
                               "after", NULL));
    cr_assert(db_sync(pipe_));
    arrive(fake, row("1"));
    arrive(fake, NULL);
    arrive(fake, error("22003", "numeric field overflow\nDETAIL: more"));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_ABORTED));
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_MORE, "failed, yet the sync is still to come");
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);

    cr_assert_eq(handled_count, 1);
    cr_assert_str_eq(handled[0], "before=1");
    const struct db_error *e = db_pipeline_error(pipe_);
    cr_assert(e->failed);
    cr_assert_eq(e->stmt, STMT_BEGIN);
    cr_assert_str_eq(e->sqlstate, "22003");
    cr_assert_str_eq(e->text, "postgres: begin: numeric field overflow");

    db_pipeline_clear_error(pipe_);
    cr_assert_not(db_pipeline_failed(pipe_));
    cr_assert_str_eq(db_pipeline_error(pipe_)->text, "");
}

static const char *name_failure(void *ctx, enum stmt_id stmt)
{
    cr_assert_str_eq(ctx, "owner");
    return stmt == STMT_COUNT ? "nobody's" : "window merge";
}

Test(dbpipe, the_owner_names_what_a_failed_statement_was_doing)
{
    struct db_pipeline *named = db_pipeline_new(name_failure, "owner");
    cr_assert(db_pipeline_attach(named, (PGconn *)fake, &fake_wire));
    cr_assert(db_pipeline_send(named, STMT_UPSERT_HOME_FACTS, (const char *[STMT_MAX_PARAMS]){0},
                               NULL, NULL, NULL));
    cr_assert(db_sync(named));
    arrive(fake, error("23514", "check violation"));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(named), DB_IO_FAILED);
    cr_assert_str_eq(db_pipeline_error(named)->text, "postgres: window merge: check violation");
    cr_assert_eq(db_pipeline_error(named)->stmt, STMT_UPSERT_HOME_FACTS);
    db_pipeline_free(named);
}

Test(dbpipe, a_refused_result_fails_with_the_handlers_message_and_stops_later_handlers)
{
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"},
                               refuse_result, NULL, "dimensions"));
    cr_assert(db_pipeline_send(pipe_, STMT_DROP_RAW_PARTITIONS, (const char *[1]){"0"}, log_result,
                               "after", NULL));
    cr_assert(db_sync(pipe_));
    arrive(fake, row("1"));
    arrive(fake, NULL);
    arrive(fake, row("2"));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);
    cr_assert_eq(handled_count, 0);
    cr_assert_str_eq(db_pipeline_error(pipe_)->text,
                     "postgres: dimensions: a row that makes no sense");
    cr_assert_str_eq(db_pipeline_error(pipe_)->sqlstate, "");
}

Test(dbpipe, only_the_first_failure_is_recorded)
{
    cr_assert(db_pipeline_fail(pipe_, "40001", "window merge", "3 rows changed"));
    cr_assert_not(db_pipeline_fail(pipe_, NULL, "internal", "later"));
    cr_assert_str_eq(db_pipeline_error(pipe_)->text, "postgres: window merge: 3 rows changed");
    cr_assert_str_eq(db_pipeline_error(pipe_)->sqlstate, "40001");
    cr_assert_eq(db_pipeline_error(pipe_)->stmt, STMT_COUNT);
}

Test(dbpipe, query_ends_no_query_accounts_for_fail_the_pipeline)
{
    cr_assert(db_sync(pipe_));
    arrive(fake, NULL); /* one is tolerated (libpq's idle pipeline) */
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);
    cr_assert_str_eq(db_pipeline_error(pipe_)->text, "postgres: connection: pipeline out of step");
}

Test(dbpipe, a_copy_takes_its_chunks_and_its_end_then_completes)
{
    cr_assert(db_leave_pipeline(pipe_));
    fake->copy_on_send = true;
    cr_assert(db_copy_start(pipe_, STMT_COPY_HOME_RAW, log_result, "copy"));
    fake->copy_on_send = false;
    cr_assert(called("send copy_home_raw"));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_COPY_IN);
    cr_assert_eq(db_pipeline_read(pipe_), DB_IO_COPY_IN, "still taking data");

    cr_assert_eq(db_copy_put(pipe_, "abc", 3), DB_COPY_TAKEN);
    cr_assert(db_pipeline_push(pipe_));
    cr_assert_eq(db_copy_put(pipe_, "defg", 4), DB_COPY_TAKEN);
    cr_assert_eq(db_copy_end(pipe_), DB_COPY_TAKEN);
    cr_assert_eq(fake->copied_len, 7);
    cr_assert_eq(memcmp(fake->copied, "abcdefg", 7), 0);
    cr_assert_str_eq(fake->calls[fake->call_count - 2], "copy end");
    cr_assert_str_eq(fake->calls[fake->call_count - 1], "flush");

    cr_assert_eq(db_pipeline_read(pipe_), DB_IO_MORE, "the server has not answered the COPY");
    arrive(fake, status(PGRES_COMMAND_OK));
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_DONE);
    cr_assert_eq(handled_count, 1);
    cr_assert_str_eq(handled[0], "copy=");

    /* One command at a time after it: its completion is DB_IO_DONE too. */
    cr_assert(db_command(pipe_, STMT_COMMIT, NULL, NULL, NULL));
    arrive(fake, status(PGRES_COMMAND_OK));
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_DONE);
    cr_assert(db_enter_pipeline(pipe_));
}

Test(dbpipe, a_copy_meeting_a_stored_row_fails_naming_the_copy)
{
    cr_assert(db_leave_pipeline(pipe_));
    fake->copy_on_send = true;
    cr_assert(db_copy_start(pipe_, STMT_COPY_SOLAR_RAW, log_result, "copy"));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_COPY_IN);
    cr_assert_eq(db_copy_end(pipe_), DB_COPY_TAKEN);
    arrive(fake, error("23505", "duplicate key value violates unique constraint"));
    arrive(fake, NULL);
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);
    cr_assert_eq(handled_count, 0);
    cr_assert_eq(db_pipeline_error(pipe_)->stmt, STMT_COPY_SOLAR_RAW);
    cr_assert_str_eq(db_pipeline_error(pipe_)->sqlstate, "23505");
}

Test(dbpipe, copy_data_nobody_asked_for_fails)
{
    cr_assert(db_leave_pipeline(pipe_));
    fake->copy_on_send = true;
    cr_assert(db_command(pipe_, STMT_COMMIT, NULL, NULL, NULL));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);
    cr_assert_str_eq(db_pipeline_error(pipe_)->text, "postgres: internal: COPY out of step");
}

Test(dbpipe, output_the_socket_did_not_take_wants_it_writable)
{
    fake->flush_rc = 1;
    cr_assert(db_pipeline_send(pipe_, STMT_BEGIN, NULL, NULL, NULL, NULL));
    cr_assert(db_sync(pipe_));
    cr_assert(db_pipeline_wants_write(pipe_));
    cr_assert_eq(db_pipeline_socket(pipe_), 7);

    /* Writable: the rest is pushed before anything is read. */
    fake->flush_rc = 0;
    int before = fake->call_count;
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_MORE);
    cr_assert_str_eq(fake->calls[before], "flush");
    cr_assert_not(db_pipeline_wants_write(pipe_));

    /* A COPY chunk libpq cannot take now: offered again once the socket is writable. */
    arrive(fake, status(PGRES_COMMAND_OK));
    arrive(fake, NULL);
    arrive(fake, status(PGRES_PIPELINE_SYNC));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_SYNCED);
    cr_assert(db_leave_pipeline(pipe_));
    fake->copy_on_send = true;
    cr_assert(db_copy_start(pipe_, STMT_COPY_HOME_RAW, NULL, NULL));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_COPY_IN);
    fake->copy_rc = 0;
    cr_assert_eq(db_copy_put(pipe_, "abc", 3), DB_COPY_FULL);
    cr_assert(db_pipeline_wants_write(pipe_));
    fake->copy_rc = -1;
    cr_assert_eq(db_copy_put(pipe_, "abc", 3), DB_COPY_FAILED);
    cr_assert_str_eq(db_pipeline_error(pipe_)->text,
                     "postgres: copy_home_raw: server closed the connection");
}

Test(dbpipe, a_pipeline_holds_a_bounded_number_of_queries)
{
    int sent = 0;
    while (sent < 100 && db_pipeline_send(pipe_, STMT_BEGIN, NULL, NULL, NULL, NULL))
        sent++;
    cr_assert_lt(sent, 100);
    cr_assert_geq(sent, 40, "a flush's pipelines hold about 25 queries");
    cr_assert_str_eq(db_pipeline_error(pipe_)->text,
                     "postgres: internal: too many queries in one pipeline");
}

Test(dbpipe, a_detached_pipeline_reads_nothing)
{
    cr_assert(db_pipeline_send(pipe_, STMT_BEGIN, NULL, NULL, NULL, NULL));
    db_pipeline_detach(pipe_);
    cr_assert_null(db_pipeline_conn(pipe_));
    cr_assert_not(db_pipeline_wants_write(pipe_));
    cr_assert_eq(db_pipeline_on_io(pipe_), DB_IO_FAILED);
    cr_assert_str_eq(db_pipeline_error(pipe_)->text, "postgres: connection: not connected");
}
