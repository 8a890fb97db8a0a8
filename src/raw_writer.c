/* One connection's share of a flush's raw rows: COPY per kind under a savepoint, the INSERT ...
 * ON CONFLICT DO NOTHING fallback, and, for a raw lane, its own transaction (raw_writer.h). */
#include "solarx/raw_writer.h"

#include <stdio.h>
#include <string.h>

#include "solarx/log.h"

/* The raw COPY is written in chunks of about this size, the next one when the socket has taken
 * the last: neither the writer nor libpq holds more of it (a kind's rows were ~8 MB). */
#define COPY_CHUNK (256 * 1024)

#define UNIQUE_VIOLATION_SQLSTATE "23505"

void raw_writer_free(struct raw_writer *w)
{
    copybinary_free(&w->copy);
    for (size_t i = 0; i < STMT_MAX_PARAMS; i++)
        pgarray_free(&w->arrays[i]);
    w->active = false;
}

void raw_writer_clear_counts(struct raw_writer *w)
{
    memset(w->inserted, 0, sizeof(w->inserted));
    w->expired = 0;
}

bool raw_writer_busy(const struct raw_writer *w)
{
    return w->active;
}

/* The rows a raw COPY or INSERT stored. */
static bool take_inserted(void *ctx, PGresult *res, char *errstr, size_t size)
{
    (void)errstr;
    (void)size;
    struct raw_writer *w = ctx;
    const char *tuples = PQcmdTuples(res);
    w->inserted[w->kind] += tuples[0] ? (size_t)strtoull(tuples, NULL, 10) : 0;
    return true;
}

/* Sends the command of step (a COPY starts: its rows follow on DB_IO_COPY_IN). */
static bool send_step(struct raw_writer *w, enum raw_step step, enum stmt_id stmt,
                      const char *const *values)
{
    bool sent = step == RAW_COPY     ? db_copy_start(w->db, stmt, take_inserted, w)
                : step == RAW_INSERT ? db_command(w->db, stmt, values, take_inserted, w)
                                     : db_command(w->db, stmt, values, NULL, NULL);
    if (sent)
        w->step = step;
    return sent;
}

const char *raw_writer_step_name(struct raw_writer *w)
{
    static const char *const names[] = {
        [RAW_BEGIN] = "raw lane begin",         [RAW_LOCK_TIMEOUT] = "raw lane lock timeout",
        [RAW_SAVEPOINT] = "raw rows savepoint", [RAW_COPY] = "raw copy",
        [RAW_ROLLBACK] = "raw rows rollback",   [RAW_INSERT] = "raw insert",
        [RAW_COMMIT] = "raw lane commit",
    };
    if (w->step == RAW_BEGIN || w->step == RAW_LOCK_TIMEOUT || w->step == RAW_COMMIT)
        return names[w->step];
    snprintf(w->what, sizeof(w->what), "%s %s", names[w->step],
             reading_kind_name((enum reading_kind)w->kind));
    return w->what;
}

/* One raw row in COPY binary form (copybinary.h). */
static void add_copy_row(void *ctx, int kind, const struct batch_reading *item)
{
    struct raw_writer *w = ctx;
    copybinary_add_raw_reading(&w->copy, (enum reading_kind)kind, &item->r, item->partition,
                               item->offset);
}

/* The next rows of the share into w->copy (after what it holds): rows until it holds COPY_CHUNK
 * bytes or the kind has no more, then the COPY's trailer. */
static void fill_copy_chunk(struct raw_writer *w)
{
    while (w->copy.len < COPY_CHUNK && !w->rows.done)
        (void)flush_plan_raw_rows(w->plan, w->horizon, &w->rows, 512, add_copy_row, w);
    if (w->rows.done)
        copybinary_add_trailer(&w->copy);
    w->expired += w->rows.expired;
    w->rows.expired = 0;
}

/* The next kind with raw rows in the share, under a savepoint (its first chunk ready, the
 * COPY's header first); after the last, COMMIT in its own transaction, else the end. */
static bool next_kind(struct raw_writer *w)
{
    while (++w->kind < READING_KIND_COUNT) {
        flush_raw_cursor_start_share(&w->rows, w->kind, &w->share);
        copybinary_reset(&w->copy);
        copybinary_add_header(&w->copy);
        fill_copy_chunk(w);
        if (w->copy.rows > 0)
            return send_step(w, RAW_SAVEPOINT, STMT_SAVEPOINT_RAW, NULL);
    }
    if (w->own_transaction)
        return send_step(w, RAW_COMMIT, STMT_COMMIT, NULL);
    return true; /* the caller sees kind == READING_KIND_COUNT: done */
}

bool raw_writer_start(struct raw_writer *w, struct db_pipeline *db, const struct flush_plan *plan,
                      int64_t horizon, const struct flush_raw_share *share, bool own_transaction)
{
    w->db = db;
    w->plan = plan;
    w->horizon = horizon;
    w->share = *share;
    w->own_transaction = own_transaction;
    w->copy_streaming = false;
    w->conflict = false;
    w->kind = -1;
    raw_writer_clear_counts(w);
    if (!db_leave_pipeline(db))
        return false;
    bool sent = own_transaction ? send_step(w, RAW_BEGIN, STMT_BEGIN, NULL) : next_kind(w);
    /* In the flush's transaction, a share without rows sends nothing: it is done already. */
    w->active = sent && w->kind < READING_KIND_COUNT;
    return sent;
}

/* One raw row as elements of STMT_INSERT_*_RAW's array parameters. */
static void add_array_row(void *ctx, int kind, const struct batch_reading *item)
{
    struct raw_writer *w = ctx;
    struct pgarray *a = w->arrays;
    const struct reading *r = &item->r;
    if (kind == READING_HOME) {
        pgarray_add_int(&a[P_HOME_RAW_HOME_IDS], r->home_id);
        pgarray_add_int(&a[P_HOME_RAW_TS], r->ts);
        pgarray_add_fixed(&a[P_HOME_RAW_CONSUMPTIONS_WH], r->energy_wh);
        pgarray_add_fixed(&a[P_HOME_RAW_ACCUMULATED_WH], r->accumulated_wh);
        pgarray_add_int(&a[P_HOME_RAW_PARTITIONS], item->partition);
        pgarray_add_int(&a[P_HOME_RAW_OFFSETS], item->offset);
    } else if (kind == READING_SOLAR) {
        pgarray_add_int(&a[P_SOLAR_RAW_PANEL_IDS], r->device_id);
        pgarray_add_int(&a[P_SOLAR_RAW_TS], r->ts);
        pgarray_add_int(&a[P_SOLAR_RAW_HOME_IDS], r->home_id);
        pgarray_add_fixed(&a[P_SOLAR_RAW_GENERATIONS_WH], r->energy_wh);
        pgarray_add_fixed(&a[P_SOLAR_RAW_ACCUMULATED_WH], r->accumulated_wh);
        pgarray_add_int(&a[P_SOLAR_RAW_PARTITIONS], item->partition);
        pgarray_add_int(&a[P_SOLAR_RAW_OFFSETS], item->offset);
    } else {
        const char *status = reading_status_name(r->status);
        pgarray_add_int(&a[P_BATTERY_RAW_HOME_IDS], r->home_id);
        pgarray_add_int(&a[P_BATTERY_RAW_BATTERY_IDS], r->device_id);
        pgarray_add_int(&a[P_BATTERY_RAW_TS], r->ts);
        pgarray_add_fixed(&a[P_BATTERY_RAW_CAPACITIES_KWH], r->capacity_kwh);
        pgarray_add_fixed(&a[P_BATTERY_RAW_MAX_CHARGE_SPEEDS_W], r->max_charge_speed_w);
        pgarray_add_fixed(&a[P_BATTERY_RAW_ENERGIES_WH], r->energy_wh);
        pgarray_add_bool(&a[P_BATTERY_RAW_IS_CHARGING], r->is_charging);
        pgarray_add_text(&a[P_BATTERY_RAW_STATUSES], status, strlen(status));
        pgarray_add_fixed(&a[P_BATTERY_RAW_MAX_OUTPUTS_W], r->max_output_w);
        pgarray_add_int(&a[P_BATTERY_RAW_PARTITIONS], item->partition);
        pgarray_add_int(&a[P_BATTERY_RAW_OFFSETS], item->offset);
    }
}

/* The kind's rows of the share through INSERT ... ON CONFLICT DO NOTHING, after a conflicting
 * COPY. The parameters are freed once libpq holds the command (a fallback is rare: its arrays
 * are not kept for the next one). */
static bool send_insert(struct raw_writer *w)
{
    enum stmt_id stmt = STMT_INSERT_HOME_RAW + w->kind;
    size_t nparams = stmt_get(stmt)->nparams;
    for (size_t i = 0; i < nparams; i++)
        pgarray_reset(&w->arrays[i]);
    struct flush_raw_cursor c;
    flush_raw_cursor_start_share(&c, w->kind, &w->share);
    (void)flush_plan_raw_rows(w->plan, w->horizon, &c, SIZE_MAX, add_array_row, w);
    const char *values[STMT_MAX_PARAMS];
    for (size_t i = 0; i < nparams; i++)
        values[i] = pgarray_finish(&w->arrays[i]);
    bool sent = send_step(w, RAW_INSERT, stmt, values);
    for (size_t i = 0; i < nparams; i++)
        pgarray_free(&w->arrays[i]);
    return sent;
}

/* The COPY takes rows: the chunk in hand, then the next ones while the socket takes them (the
 * rest when it is writable again), then the end. An error of the server (such as a stored row)
 * waits in libpq's input until the end: it is the COPY's result. */
static bool stream_copy_rows(struct raw_writer *w)
{
    while (!db_pipeline_wants_write(w->db)) {
        if (w->copy.len > 0) {
            enum db_copy rc = db_copy_put(w->db, w->copy.buf, w->copy.len);
            if (rc != DB_COPY_TAKEN)
                return rc == DB_COPY_FULL; /* full: the chunk when the socket is writable */
            copybinary_reset(&w->copy);    /* libpq has it */
        }
        if (w->rows.done) {
            enum db_copy rc = db_copy_end(w->db);
            if (rc != DB_COPY_TAKEN)
                return rc == DB_COPY_FULL; /* the same: the end when the socket is writable */
            w->copy_streaming = false;
            return true;
        }
        fill_copy_chunk(w);
        if (!db_pipeline_push(w->db))
            return false;
    }
    return true;
}

/* The command of step completed without error (or with a COPY conflict): the next one. */
static bool advance(struct raw_writer *w)
{
    switch (w->step) {
    case RAW_BEGIN:
        return send_step(w, RAW_LOCK_TIMEOUT, STMT_RAW_LANE_LOCK_TIMEOUT, NULL);
    case RAW_LOCK_TIMEOUT:
        return next_kind(w);
    case RAW_SAVEPOINT:
        w->conflict = false;
        return send_step(w, RAW_COPY, STMT_COPY_HOME_RAW + w->kind, NULL);
    case RAW_COPY:
        if (!w->conflict)
            return next_kind(w);
        log_info("event=raw_copy_conflict kind=%s msg=\"a raw row of this batch is already stored "
                 "(facts deleted and replayed, or a retried flush); writing the kind's rows with "
                 "ON CONFLICT DO NOTHING\"",
                 reading_kind_name((enum reading_kind)w->kind));
        return send_step(w, RAW_ROLLBACK, STMT_ROLLBACK_TO_RAW, NULL);
    case RAW_ROLLBACK:
        return send_insert(w);
    case RAW_INSERT:
        return next_kind(w);
    case RAW_COMMIT:
        break;
    }
    (void)db_pipeline_fail(w->db, NULL, "internal", "raw rows out of step");
    return false;
}

/* The COPY failed because a raw row of the kind is already stored: not a failure, the kind's
 * rows go through INSERT ... ON CONFLICT DO NOTHING (advance). */
static bool copy_met_stored_row(struct raw_writer *w)
{
    const struct db_error *e = db_pipeline_error(w->db);
    if (w->step != RAW_COPY || e->stmt != (enum stmt_id)(STMT_COPY_HOME_RAW + w->kind) ||
        strcmp(e->sqlstate, UNIQUE_VIOLATION_SQLSTATE) != 0)
        return false;
    db_pipeline_clear_error(w->db);
    w->conflict = true; /* rolled back to the savepoint by advance */
    return true;
}

static enum raw_progress fail(struct raw_writer *w)
{
    w->active = false;
    w->copy_streaming = false;
    return RAW_WRITER_FAILED;
}

/* The share is written: done, unless the COMMIT of its own transaction is still to come. */
static bool finished(const struct raw_writer *w)
{
    return w->own_transaction ? w->step == RAW_COMMIT : w->kind >= READING_KIND_COUNT;
}

enum raw_progress raw_writer_take(struct raw_writer *w, enum db_io io)
{
    if (!w->active)
        return RAW_WRITER_FAILED;
    for (;;) {
        switch (io) {
        case DB_IO_MORE:
            return RAW_WRITER_BUSY;
        case DB_IO_COPY_IN:
            w->copy_streaming = true;
            if (!stream_copy_rows(w))
                return fail(w);
            if (w->copy_streaming)
                return RAW_WRITER_BUSY; /* the rest of the rows when the socket is writable */
            break;
        case DB_IO_FAILED:
            if (!copy_met_stored_row(w) || !advance(w))
                return fail(w);
            break;
        case DB_IO_DONE:
            if (finished(w)) {
                w->active = false;
                return RAW_WRITER_DONE;
            }
            if (!advance(w))
                return fail(w);
            if (finished(w) && !w->own_transaction) {
                w->active = false; /* nothing more was sent: the caller commits */
                return RAW_WRITER_DONE;
            }
            break;
        case DB_IO_SYNCED:
            (void)db_pipeline_fail(w->db, NULL, "internal", "raw rows out of step");
            return fail(w);
        }
        io = db_pipeline_read(w->db);
    }
}
