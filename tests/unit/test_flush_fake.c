/* Unit tests of the flusher driven through a recording fake of its connection (pgwire.h): the
 * statements a batch sends, in order, with their key parameters; stored state read back -> only
 * new seconds merged; a fenced offsets store -> FLUSH_FENCED; a raw COPY meeting a stored row ->
 * the INSERT ... ON CONFLICT fallback; the window cache: a second flush reads no stored state for
 * the windows it holds, a fact row changed by another writer fails the flush and its retry reads
 * the row again; a failed flush forgets the connection it was lent and never closes it (the wire
 * cannot: its owner does). No PostgreSQL: the fake answers every statement itself. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/batch.h"
#include "solarx/config.h"
#include "solarx/flush.h"
#include "solarx/pgwire.h"
#include "solarx/statements.h"

#define T0 1739491200 /* 2025-02-14 00:00:00 UTC */

/* ---- the fake -------------------------------------------------------------------------------- */

#define FAKE_MAX_SENT 64
#define FAKE_MAX_QUEUED 256

struct sent {
    int seq; /* order among the statements of every fake (a flush with raw lanes has several) */
    enum stmt_id stmt;
    int nparams;
    char *values[STMT_MAX_PARAMS];
    char *copy_data; /* a COPY's rows (binary: copy_len bytes) */
    size_t copy_len;
};

/* Answers a statement: a result (PQmakeEmptyPGresult...) or NULL for an empty success. */
typedef PGresult *(*fake_responder)(const struct sent *q, void *ctx);

struct fake {
    struct sent sent[FAKE_MAX_SENT];
    int sent_count;
    PGresult *queue[FAKE_MAX_QUEUED]; /* results to return; NULL entries end a query's results */
    int head, tail;
    bool pipeline, aborted;
    struct sent *copying; /* the COPY whose rows are arriving */
    bool slow_socket;     /* during a COPY, every other flush leaves data unsent */
    bool stalled;         /* the server does not answer: is_busy until it is cleared */
    int flushes, copy_puts;
    size_t largest_put;
    fake_responder respond;
    void *ctx;
};

static struct fake *fake_of(const PGconn *conn)
{
    return (struct fake *)conn;
}

static void push(struct fake *k, PGresult *res)
{
    cr_assert_lt(k->tail, FAKE_MAX_QUEUED);
    k->queue[k->tail++] = res;
}

/* An error result: its SQLSTATE and message travel as its (only) row. */
static PGresult *fake_error(const char *sqlstate, const char *message)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    PGresAttDesc cols[2] = {{.name = "sqlstate", .format = 0, .typid = 25, .typlen = -1},
                            {.name = "message", .format = 0, .typid = 25, .typlen = -1}};
    cr_assert(PQsetResultAttrs(res, 2, cols));
    cr_assert(PQsetvalue(res, 0, 0, (char *)sqlstate, (int)strlen(sqlstate)));
    cr_assert(PQsetvalue(res, 0, 1, (char *)message, (int)strlen(message)));
    return res;
}

/* A result of rows x columns text values (row-major; NULL pointers are SQL NULL). */
static PGresult *fake_rows(int rows, int columns, const char *const *values)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc *cols = calloc((size_t)columns, sizeof(*cols));
    for (int c = 0; c < columns; c++)
        cols[c] = (PGresAttDesc){.name = "c", .typid = 25, .typlen = -1};
    cr_assert(PQsetResultAttrs(res, columns, cols));
    free(cols);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < columns; c++) {
            const char *v = values[r * columns + c];
            cr_assert(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1));
        }
    return res;
}

static enum stmt_id stmt_of_sql(const char *sql)
{
    for (int id = 0; id < STMT_COUNT; id++)
        if (strcmp(stmt_get(id)->sql, sql) == 0)
            return id;
    cr_assert_fail("a statement not in the table: %s", sql);
    return STMT_COUNT;
}

/* Elements of an array parameter ("{}" has none). */
static int array_length(const char *value)
{
    if (!value || strcmp(value, "{}") == 0)
        return 0;
    int n = 1;
    for (const char *c = value; *c; c++)
        n += *c == ',';
    return n;
}

/* A fact upsert's answer by default: every row written with the version expected. */
static PGresult *all_facts_written(const struct sent *q)
{
    static const int versions[READING_KIND_COUNT] = {
        [READING_HOME] = P_HOME_FACT_VERSIONS,
        [READING_SOLAR] = P_SOLAR_FACT_VERSIONS,
        [READING_BATTERY] = P_BATTERY_FACT_VERSIONS,
    };
    char written[16];
    snprintf(written, sizeof(written), "%d",
             array_length(q->values[versions[q->stmt - STMT_UPSERT_HOME_FACTS]]));
    const char *row[C_FACTS_COUNT] = {[C_FACTS_WRITTEN] = written};
    return fake_rows(1, C_FACTS_COUNT, row);
}

/* The statement's result as the responder (or an empty success) gives it. */
static void answer(struct fake *k, struct sent *q)
{
    PGresult *res = k->pipeline && k->aborted ? PQmakeEmptyPGresult(NULL, PGRES_PIPELINE_ABORTED)
                    : k->respond              ? k->respond(q, k->ctx)
                                              : NULL;
    if (!res && q->stmt >= STMT_UPSERT_HOME_FACTS && q->stmt <= STMT_UPSERT_BATTERY_FACTS)
        res = all_facts_written(q);
    if (!res && stmt_get(q->stmt)->ncolumns == 1) { /* a function's count: one */
        const char *one[1] = {"1"};
        res = fake_rows(1, 1, one);
    }
    if (!res) /* no stored rows; a command done */
        res = PQmakeEmptyPGresult(NULL,
                                  stmt_get(q->stmt)->ncolumns ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR)
        k->aborted = true;
    push(k, res);
    push(k, NULL);
}

static int fake_send_query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
    struct fake *k = fake_of(conn);
    cr_assert_lt(k->sent_count, FAKE_MAX_SENT);
    struct sent *q = &k->sent[k->sent_count++];
    static int sequence;
    q->seq = ++sequence;
    q->stmt = stmt_of_sql(sql);
    q->nparams = nparams;
    cr_assert_eq((size_t)nparams, stmt_get(q->stmt)->nparams, "%s", stmt_get(q->stmt)->name);
    for (int i = 0; i < nparams; i++)
        q->values[i] = values[i] ? strdup(values[i]) : NULL;
    if (strncmp(sql, "COPY ", 5) == 0) {
        cr_assert_not(k->pipeline, "COPY in pipeline mode");
        k->copying = q;
        push(k, PQmakeEmptyPGresult(NULL, PGRES_COPY_IN));
        return 1;
    }
    answer(k, q);
    return 1;
}

static int fake_put_copy_data(PGconn *conn, const char *buf, int len)
{
    fake_of(conn)->copy_puts++;
    if ((size_t)len > fake_of(conn)->largest_put)
        fake_of(conn)->largest_put = (size_t)len;
    struct sent *q = fake_of(conn)->copying;
    q->copy_data = realloc(q->copy_data, q->copy_len + (size_t)len);
    memcpy(q->copy_data + q->copy_len, buf, (size_t)len);
    q->copy_len += (size_t)len;
    return 1;
}

static int fake_put_copy_end(PGconn *conn, const char *errormsg)
{
    struct fake *k = fake_of(conn);
    answer(k, k->copying);
    k->copying = NULL;
    return 1;
}

static int fake_pipeline_sync(PGconn *conn)
{
    struct fake *k = fake_of(conn);
    push(k, PQmakeEmptyPGresult(NULL, PGRES_PIPELINE_SYNC));
    k->aborted = false;
    return 1;
}

static PGresult *fake_get_result(PGconn *conn)
{
    struct fake *k = fake_of(conn);
    cr_assert_lt(k->head, k->tail, "a result asked for that no statement produces");
    return k->queue[k->head++];
}

static int fake_set_nonblocking(PGconn *conn, int on)
{
    return 0;
}

static int fake_enter_pipeline(PGconn *conn)
{
    fake_of(conn)->pipeline = true;
    return 1;
}

static int fake_exit_pipeline(PGconn *conn)
{
    struct fake *k = fake_of(conn);
    cr_assert_eq(k->head, k->tail, "leaving pipeline mode with results unread");
    k->pipeline = false;
    return 1;
}

static int fake_ok(PGconn *conn)
{
    return 1;
}

static int fake_is_busy(PGconn *conn)
{
    return fake_of(conn)->stalled;
}

static int fake_flushed(PGconn *conn)
{
    struct fake *k = fake_of(conn);
    if (k->slow_socket && k->copying && k->flushes++ % 2 == 0)
        return 1; /* part of it is still queued: the rest when the socket is writable */
    return 0;
}

static char *fake_error_message(const PGconn *conn)
{
    return "";
}

static int fake_socket(const PGconn *conn)
{
    return -1;
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
    .flush = fake_flushed,
    .consume_input = fake_ok,
    .is_busy = fake_is_busy,
    .get_result = fake_get_result,
    .put_copy_data = fake_put_copy_data,
    .put_copy_end = fake_put_copy_end,
    .error_message = fake_error_message,
    .socket = fake_socket,
    .result_error_field = fake_result_error_field,
    .result_error_message = fake_result_error_message,
};

static void fake_free(struct fake *k)
{
    for (int i = 0; i < k->sent_count; i++) {
        for (int p = 0; p < k->sent[i].nparams; p++)
            free(k->sent[i].values[p]);
        free(k->sent[i].copy_data);
    }
    while (k->head < k->tail)
        PQclear(k->queue[k->head++]);
    free(k);
}

/* ---- fixtures -------------------------------------------------------------------------------- */

static struct clock_zone *zone;
static struct config cfg;
static struct batch *batch;
static struct flusher *flusher;
static struct fake *fake;

static void setup(void)
{
    char err[128];
    zone = clock_zone_new("UTC", err, sizeof(err));
    cr_assert_not_null(zone, "%s", err);
    cfg = (struct config){.raw_retention_days = 10000, .raw_archive_dir = ""};
    cfg.topic[READING_HOME] = "home_energy_consumption";
    cfg.topic[READING_SOLAR] = "solar_energy_data";
    cfg.topic[READING_BATTERY] = "battery_data";
    batch = batch_new(900, zone);
    flusher = flusher_new(&cfg, zone, "solarx");
    fake = calloc(1, sizeof(*fake));
    cr_assert(flusher_attach_wire(flusher, (PGconn *)fake, &fake_wire));
}

static void teardown(void)
{
    flusher_destroy(flusher);
    fake_free(fake);
    batch_destroy(batch);
    clock_zone_destroy(zone);
}

TestSuite(flush_fake, .init = setup, .fini = teardown);

static void add_home(int32_t home_id, int64_t ts, int32_t partition, int64_t offset)
{
    struct reading r = {.kind = READING_HOME,
                        .home_id = home_id,
                        .device_id = home_id,
                        .ts = ts,
                        .energy_wh = 1000000,
                        .accumulated_wh = 7000000};
    batch_add_reading(batch, &r, partition, offset);
    batch_note_offset(batch, READING_HOME, partition, offset);
}

static enum flush_progress run_flush(void)
{
    enum flush_progress p = flusher_start(flusher, batch);
    for (int rounds = 0; p == FLUSH_BUSY && rounds < 100; rounds++)
        p = flusher_on_io(flusher);
    return p;
}

static const struct sent *find_sent(enum stmt_id stmt, int nth)
{
    for (int i = 0; i < fake->sent_count; i++)
        if (fake->sent[i].stmt == stmt && nth-- == 0)
            return &fake->sent[i];
    return NULL;
}

/* ---- reading a binary COPY back (the format of copybinary.h) ------------------------------- */

#define PG_EPOCH_UNIX 946684800LL

static uint64_t be_at(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Checks the whole stream of a COPY ... (FORMAT binary): the header, rows of `columns` fields,
 * the trailer as its last two bytes. Returns how many rows; the field `column` of row `row` (an
 * integer, bigint or timestamptz) into *value when row is one of them. */
static size_t copy_binary_rows(const struct sent *q, int columns, size_t row, int column,
                               int64_t *value)
{
    static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n'};
    const unsigned char *p = (const unsigned char *)q->copy_data, *end = p + q->copy_len;
    cr_assert_geq(q->copy_len, sizeof(header) + 2, "a COPY of %zu bytes", q->copy_len);
    cr_assert(memcmp(p, header, sizeof(header)) == 0, "the stream starts with the header");
    p += sizeof(header);
    size_t rows = 0;
    for (;;) {
        cr_assert_leq(p + 2, end, "row %zu: cut short", rows);
        int16_t fields = (int16_t)be_at(p, 2);
        p += 2;
        if (fields == -1)
            break;
        cr_assert_eq(fields, columns, "row %zu has %d fields", rows, fields);
        for (int c = 0; c < fields; c++) {
            cr_assert_leq(p + 4, end, "row %zu field %d: cut short", rows, c);
            uint32_t len = (uint32_t)be_at(p, 4);
            cr_assert_leq(p + 4 + len, end, "row %zu field %d: %u bytes", rows, c, len);
            if (rows == row && c == column && value != NULL) {
                cr_assert(len == 4 || len == 8, "row %zu field %d is %u bytes", rows, c, len);
                *value = len == 4 ? (int32_t)be_at(p + 4, 4) : (int64_t)be_at(p + 4, 8);
            }
            p += 4 + len;
        }
        rows++;
    }
    cr_assert_eq(p, end, "the trailer ends the stream");
    return rows;
}

static const char *param(enum stmt_id stmt, int p)
{
    const struct sent *q = find_sent(stmt, 0);
    cr_assert_not_null(q, "%s was not sent", stmt_get(stmt)->name);
    return q->values[p];
}

static int sequence_index(enum stmt_id stmt)
{
    for (int i = 0; i < fake->sent_count; i++)
        if (fake->sent[i].stmt == stmt)
            return i;
    return -1;
}

static const struct sent *find_sent_in(const struct fake *k, enum stmt_id stmt, int nth)
{
    for (int i = 0; i < k->sent_count; i++)
        if (k->sent[i].stmt == stmt && nth-- == 0)
            return &k->sent[i];
    return NULL;
}

/* ---- tests ----------------------------------------------------------------------------------- */

Test(flush_fake, a_batch_sends_its_statements_in_order_with_their_parameters)
{
    add_home(1, T0 + 1, 0, 10);
    add_home(1, T0 + 2, 0, 11);
    add_home(2, T0 + 900, 1, 5);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));

    static const enum stmt_id phase_a[] = {
        STMT_BEGIN,
        STMT_LOCK_REGISTRY_SHARED,
        STMT_LOCK_WINDOWS,
        STMT_LOCK_BATTERY_HOMES,
        STMT_READ_BATTERY_VERSIONS,
        STMT_READ_BATTERY_NEIGHBOURS,
        STMT_READ_HOME_VERSIONS,
        STMT_READ_PANEL_VERSIONS,
        STMT_STORED_HOME_WINDOWS, /* only kinds with windows to read */
    };
    for (size_t i = 0; i < sizeof(phase_a) / sizeof(phase_a[0]); i++)
        cr_assert_eq(fake->sent[i].stmt, phase_a[i], "statement %zu is %s, expected %s", i,
                     stmt_get(fake->sent[i].stmt)->name, stmt_get(phase_a[i])->name);
    /* Phase B then C, in this order (the dimension writes, if any, come first). */
    static const enum stmt_id then[] = {
        STMT_ENSURE_RAW_PARTITIONS,
        STMT_ENSURE_DATES,
        STMT_UPSERT_HOME_FACTS,
        STMT_STORE_OFFSETS,
        STMT_SAVEPOINT_RAW,
        STMT_COPY_HOME_RAW,
        STMT_COMMIT,
    };
    int last = (int)(sizeof(phase_a) / sizeof(phase_a[0])) - 1;
    for (size_t i = 0; i < sizeof(then) / sizeof(then[0]); i++) {
        int at = sequence_index(then[i]);
        cr_assert_gt(at, last, "%s is sent out of order", stmt_get(then[i])->name);
        last = at;
    }
    cr_assert_eq(last, fake->sent_count - 1, "COMMIT is the last statement");
    cr_assert_null(find_sent(STMT_UPSERT_BATTERY_FACTS, 0), "no battery window: no battery facts");
    cr_assert_null(find_sent(STMT_INSERT_HOME_RAW, 0), "no conflict: no fallback");

    /* two home windows: (home 1, T0) and (home 2, T0 + 900), locked in order */
    char classes[64], objects[64];
    snprintf(classes, sizeof(classes), "{735800,735800}");
    snprintf(objects, sizeof(objects), "{%d,%d}", T0 / 60, (T0 + 900) / 60);
    cr_assert_str_eq(param(STMT_LOCK_WINDOWS, P_LOCK_WINDOWS_CLASSES), classes);
    cr_assert_str_eq(param(STMT_LOCK_WINDOWS, P_LOCK_WINDOWS_OBJECTS), objects);
    cr_assert_str_eq(param(STMT_STORED_HOME_WINDOWS, P_WINDOW_KEYS_HOME_IDS), "{1,2}");
    cr_assert_null(find_sent(STMT_STORED_BATTERY_WINDOWS, 0), "no battery window: no SELECT");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_HOME_IDS), "{1,2}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_READINGS_COUNTS), "{2,1}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_SUMS_WH), "{2.000000,1.000000}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_WINDOW_SECONDS), "900");
    cr_assert_str_eq(param(STMT_ENSURE_RAW_PARTITIONS, P_ENSURE_PARTITIONS_DAYS), "{20133}");
    cr_assert_str_eq(param(STMT_STORE_OFFSETS, P_OFFSETS_GROUP), "solarx");
    cr_assert_not_null(strstr(param(STMT_STORE_OFFSETS, P_OFFSETS_NEXT_OFFSETS), "12"));
    cr_assert_not_null(strstr(param(STMT_STORE_OFFSETS, P_OFFSETS_NEXT_OFFSETS), "6"));
    cr_assert_not_null(find_sent(STMT_COPY_HOME_RAW, 0));
    cr_assert_eq(copy_binary_rows(find_sent(STMT_COPY_HOME_RAW, 0), 6, 0, 0, NULL), 3,
                 "one raw row per accepted reading");

    const struct flush_stats *st = flusher_stats(flusher);
    cr_assert_eq(st->readings, 3);
    cr_assert_eq(st->accepted, 3);
    cr_assert_eq(st->duplicates, 0);
}

/* The stored state of (home 1, T0): seconds T0 + 1 and T0 + 2 counted, 2 Wh. */
static PGresult *stored_home_window(const struct sent *q, void *ctx)
{
    if (q->stmt != STMT_STORED_HOME_WINDOWS)
        return NULL;
    char start[24], first[24], last[24];
    snprintf(start, sizeof(start), "%d", T0);
    snprintf(first, sizeof(first), "%d", T0 + 1);
    snprintf(last, sizeof(last), "%d", T0 + 2);
    /* seconds_seen: bits 1 and 2 of the first byte (bit i = second i of the window) */
    static char seen[256];
    snprintf(seen, sizeof(seen), "\\x06%0*d", 2 * (900 / 8 + 1) - 2, 0);
    const char *row[C_STORED_COUNT] = {
        [C_STORED_HOME_ID] = "1",
        [C_STORED_DEVICE_ID] = "1",
        [C_STORED_START] = start,
        [C_STORED_SUM_WH] = "2.000000",
        [C_STORED_READINGS_COUNT] = "2",
        [C_STORED_MIN_WH] = "1.000000",
        [C_STORED_MAX_WH] = "1.000000",
        [C_STORED_FIRST_TS] = first,
        [C_STORED_LAST_TS] = last,
        [C_STORED_LAST_ENERGY_WH] = "0",
        [C_STORED_LAST_ACCUMULATED_WH] = "7.000000",
        [C_STORED_CAPACITY_KWH] = "0",
        [C_STORED_MAX_CHARGE_SPEED_W] = "0",
        [C_STORED_MAX_OUTPUT_W] = "0",
        [C_STORED_IS_CHARGING] = "f",
        [C_STORED_STATUS] = "ideal",
        [C_STORED_SECONDS_SEEN] = seen,
        [C_STORED_WINDOW_SECONDS] = "900",
        [C_STORED_VERSION] = "4",
    };
    return fake_rows(1, C_STORED_COUNT, row);
}

Test(flush_fake, only_seconds_not_stored_are_merged_and_become_raw_rows)
{
    add_home(1, T0 + 2, 0, 20); /* stored already */
    add_home(1, T0 + 3, 0, 21); /* new */
    add_home(1, T0 + 3, 0, 22); /* the same second again */
    fake->respond = stored_home_window;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    const struct flush_stats *st = flusher_stats(flusher);
    cr_assert_eq(st->readings, 3);
    cr_assert_eq(st->accepted, 1);
    cr_assert_eq(st->duplicates, 2);
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_READINGS_COUNTS), "{3}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_SUMS_WH), "{3.000000}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_VERSIONS), "{4}",
                     "written only if the row still carries the version read");
    int64_t src_offset = -1;
    cr_assert_eq(copy_binary_rows(find_sent(STMT_COPY_HOME_RAW, 0), 6, 0, 5, &src_offset), 1,
                 "one raw row");
    cr_assert_eq(src_offset, 21, "the raw row is the new reading's");
}

static PGresult *fail_offsets(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_STORE_OFFSETS ? fake_error("40001", "could not serialize access") : NULL;
}

static PGresult *fence_offsets(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_STORE_OFFSETS
               ? fake_error("SXFEN", "partition home_energy_consumption/0 is held by another")
               : NULL;
}

Test(flush_fake, a_fenced_offsets_store_fails_the_flush_as_fenced)
{
    add_home(1, T0 + 1, 0, 10);
    fake->respond = fence_offsets;
    cr_assert_eq(run_flush(), FLUSH_FENCED);
    cr_assert_str_eq(flusher_sqlstate(flusher), "SXFEN");
    cr_assert_not_null(strstr(flusher_error(flusher), "postgres: offsets: partition"), "%s",
                       flusher_error(flusher));
    cr_assert_null(find_sent(STMT_COMMIT, 0));
    cr_assert_null(flusher_conn(flusher), "forgotten: its owner closes it, which rolls back");
}

/* A failed flush forgot the connection: its owner lends one again (the same fake), as a new
 * connection is: nothing unread, no aborted pipeline. */
static void reconnect(void)
{
    while (fake->head < fake->tail)
        PQclear(fake->queue[fake->head++]);
    fake->aborted = false;
    cr_assert(flusher_attach_wire(flusher, (PGconn *)fake, &fake_wire));
}

Test(flush_fake, a_failed_flush_leaves_the_connection_to_its_owner)
{
    add_home(1, T0 + 1, 0, 10);
    fake->respond = fail_offsets;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    cr_assert_not(flusher_stale(flusher), "a serialization failure is not a stale cache");
    cr_assert_null(flusher_conn(flusher), "the flusher forgot the connection");
    int sent = fake->sent_count;
    cr_assert_eq(flusher_start(flusher, batch), FLUSH_FAILED, "no connection lent");
    cr_assert_str_eq(flusher_error(flusher), "postgres: connection: not connected");
    cr_assert_eq(fake->sent_count, sent, "nothing is sent without a connection");
    /* The owner still has it (the flusher cannot close it: the wire has no such call): lent
     * again, as a new one would be, the same batch commits. */
    fake->respond = NULL;
    reconnect();
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_eq(flusher_conn(flusher), (PGconn *)fake, "a committed flush keeps it");
}

Test(flush_fake, a_detached_connection_is_not_used)
{
    add_home(1, T0 + 1, 0, 10);
    flusher_detach(flusher);
    cr_assert_null(flusher_conn(flusher));
    cr_assert_eq(flusher_start(flusher, batch), FLUSH_FAILED);
    cr_assert_str_eq(flusher_error(flusher), "postgres: connection: not connected");
    cr_assert_eq(fake->sent_count, 0);
}

static PGresult *conflict_on_copy(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_COPY_HOME_RAW
               ? fake_error("23505", "duplicate key value violates unique constraint")
               : NULL;
}

Test(flush_fake, a_copy_meeting_a_stored_row_falls_back_to_insert_on_conflict)
{
    add_home(1, T0 + 1, 0, 10);
    add_home(1, T0 + 2, 0, 11);
    fake->respond = conflict_on_copy;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    int copy = sequence_index(STMT_COPY_HOME_RAW);
    cr_assert_eq(fake->sent[copy + 1].stmt, STMT_ROLLBACK_TO_RAW);
    cr_assert_eq(fake->sent[copy + 2].stmt, STMT_INSERT_HOME_RAW);
    cr_assert_eq(fake->sent[copy + 3].stmt, STMT_COMMIT);
    cr_assert_str_eq(param(STMT_INSERT_HOME_RAW, P_HOME_RAW_HOME_IDS), "{1,1}");
    cr_assert_str_eq(param(STMT_INSERT_HOME_RAW, P_HOME_RAW_OFFSETS), "{10,11}");
    cr_assert_str_eq(flusher_sqlstate(flusher), "");
}

static PGresult *fail_window_merge(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_UPSERT_HOME_FACTS ? fake_error("22003", "numeric field overflow") : NULL;
}

Test(flush_fake, a_refused_statement_fails_the_flush_with_its_context)
{
    add_home(1, T0 + 1, 0, 10);
    fake->respond = fail_window_merge;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    cr_assert_str_eq(flusher_error(flusher), "postgres: window merge: numeric field overflow");
    cr_assert_eq(flusher_failure(flusher), FLUSH_FAILURE_REJECTED);
    cr_assert_null(find_sent(STMT_COPY_HOME_RAW, 0), "phase C never starts");
}

static void add_battery(int32_t home_id, int32_t battery_id, int64_t ts, int64_t offset)
{
    struct reading r = {.kind = READING_BATTERY,
                        .home_id = home_id,
                        .device_id = battery_id,
                        .ts = ts,
                        .energy_wh = 2000000,
                        .capacity_kwh = 10000000,
                        .max_charge_speed_w = 3000000000,
                        .max_output_w = 4000000000};
    batch_add_reading(batch, &r, 2, offset);
    batch_note_offset(batch, READING_BATTERY, 2, offset);
}

Test(flush_fake, a_new_battery_gets_its_first_version_and_its_facts_the_key)
{
    add_battery(3, 1, T0 + 5, 40);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_str_eq(param(STMT_LOCK_BATTERY_HOMES, P_BATTERY_LOCKS_HOME_IDS), "{3}");
    cr_assert_str_eq(param(STMT_READ_BATTERY_VERSIONS, P_BATTERY_DEVICES_BATTERY_IDS), "{1}");
    cr_assert_str_eq(param(STMT_UPSERT_BATTERY_VERSIONS, P_BATTERY_VERSION_HOME_IDS), "{3}");
    cr_assert_str_eq(param(STMT_UPSERT_BATTERY_VERSIONS, P_BATTERY_VERSION_CAPACITIES_KWH),
                     "{10.000000}");
    cr_assert_str_eq(param(STMT_UPSERT_BATTERY_VERSIONS, P_BATTERY_VERSION_CURRENT), "{t}");
    const char *key = param(STMT_UPSERT_BATTERY_VERSIONS, P_BATTERY_VERSION_KEYS);
    cr_assert_str_eq(param(STMT_UPSERT_BATTERY_FACTS, P_BATTERY_FACT_BATTERY_KEYS), key,
                     "the fact row points at the version written");
    cr_assert_str_eq(param(STMT_REPOINT_BATTERY_FACTS, P_REPOINT_BATTERY_HOME_IDS), "{3}");
    cr_assert_lt(sequence_index(STMT_UPSERT_BATTERY_VERSIONS),
                 sequence_index(STMT_UPSERT_BATTERY_FACTS), "versions before the facts");
    cr_assert_lt(sequence_index(STMT_UPSERT_BATTERY_FACTS),
                 sequence_index(STMT_REPOINT_BATTERY_FACTS), "re-pointing after the facts");
    cr_assert_eq(flusher_stats(flusher)->dimension_versions_rewritten, 1);
}

static PGresult *corrupt_battery_version(const struct sent *q, void *ctx)
{
    if (q->stmt != STMT_READ_BATTERY_VERSIONS)
        return NULL;
    char start[24];
    snprintf(start, sizeof(start), "%d", T0);
    const char *row[C_BATTERY_VERSION_COUNT] = {
        [C_BATTERY_VERSION_HOME_ID] = "3",
        [C_BATTERY_VERSION_BATTERY_ID] = "1",
        [C_BATTERY_VERSION_START] = start,
        [C_BATTERY_VERSION_LAST_SEEN] = start,
        [C_BATTERY_VERSION_CAPACITY_KWH] = "not a number",
        [C_BATTERY_VERSION_MAX_CHARGE_SPEED_W] = "3000",
        [C_BATTERY_VERSION_MAX_OUTPUT_W] = "4000",
    };
    return fake_rows(1, C_BATTERY_VERSION_COUNT, row);
}

Test(flush_fake, a_stored_version_that_does_not_parse_fails_the_flush_naming_it)
{
    add_battery(3, 1, T0 + 5, 40);
    fake->respond = corrupt_battery_version;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    char expected[160];
    snprintf(expected, sizeof(expected),
             "postgres: dimensions: stored dimension version of device 3/1 starting at %d is "
             "invalid",
             T0);
    cr_assert_str_eq(flusher_error(flusher), expected);
    cr_assert_null(find_sent(STMT_UPSERT_BATTERY_FACTS, 0), "nothing is written");
}

/* A kind's raw rows go in chunks, the next one only once the socket took the last (the flusher
 * waits for writability in between): every row arrives, in order, and no chunk is large. */
Test(flush_fake, raw_rows_are_copied_in_chunks_as_the_socket_takes_them)
{
    int64_t offset = 0;
    for (int32_t home_id = 1; home_id <= 10; home_id++)
        for (int s = 0; s < 600; s++)
            add_home(home_id, T0 + s, 0, offset++);
    fake->slow_socket = true;
    enum flush_progress p = flusher_start(flusher, batch);
    int waits = 0;
    for (int rounds = 0; p == FLUSH_BUSY && rounds < 1000; rounds++) {
        waits += flusher_wants_write(flusher);
        p = flusher_on_io(flusher);
    }
    cr_assert_eq(p, FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_geq(fake->copy_puts, 2, "6,000 rows (~400 KB) in more than one chunk");
    cr_assert_lt(fake->largest_put, 300 * 1024, "a chunk of %zu bytes", fake->largest_put);
    cr_assert_geq(waits, fake->copy_puts - 1, "a chunk waits for the socket to take the last");
    const struct sent *copy = find_sent(STMT_COPY_HOME_RAW, 0);
    int64_t home_id = 0, ts = 0, src_offset = -1;
    cr_assert_eq(copy_binary_rows(copy, 6, 0, 0, &home_id), 6000);
    (void)copy_binary_rows(copy, 6, 0, 1, &ts);
    cr_assert_eq(home_id, 1);
    cr_assert_eq(ts, (T0 - PG_EPOCH_UNIX) * 1000000, "microseconds since 2000-01-01");
    for (size_t row = 0; row < 6000; row += 599) {
        (void)copy_binary_rows(copy, 6, row, 5, &src_offset);
        cr_assert_eq(src_offset, (int64_t)row, "row %zu arrived in order, whole", row);
    }
}

/* Every kind's rows are one binary COPY of their own: the header once, at the start of the first
 * chunk; the trailer once, at the end of the last; a battery row's twelve fields; accepted
 * readings older than the retention horizon counted as expired, not copied. */
Test(flush_fake, each_kind_is_one_binary_copy_stream_across_its_chunks)
{
    flusher_destroy(flusher);
    cfg.raw_retention_days = 1;
    flusher = flusher_new(&cfg, zone, "solarx");
    cr_assert_not_null(flusher);
    cr_assert(flusher_attach_wire(flusher, (PGconn *)fake, &fake_wire));
    int64_t offset = 0;
    for (int32_t battery = 1; battery <= 4; battery++)
        for (int s = 0; s < 900; s++)
            add_battery(7, battery, T0 + s, offset++);
    add_home(1, T0, 0, offset++);
    add_home(2, T0 - 3 * 86400, 0, offset++); /* older than a day behind the newest reading */
    fake->slow_socket = true;
    enum flush_progress p = flusher_start(flusher, batch);
    for (int rounds = 0; p == FLUSH_BUSY && rounds < 1000; rounds++)
        p = flusher_on_io(flusher);
    cr_assert_eq(p, FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_geq(fake->copy_puts, 3, "3,600 battery rows (~500 KB) in two chunks, a home row");
    int64_t home_id = 0;
    cr_assert_eq(copy_binary_rows(find_sent(STMT_COPY_HOME_RAW, 0), 6, 0, 0, &home_id), 1);
    cr_assert_eq(home_id, 1, "the expired reading has no raw row");
    const struct sent *battery_copy = find_sent(STMT_COPY_BATTERY_RAW, 0);
    int64_t battery_id = 0, src_offset = -1;
    cr_assert_eq(copy_binary_rows(battery_copy, 12, 900, 1, &battery_id), 3600);
    (void)copy_binary_rows(battery_copy, 12, 3599, 11, &src_offset);
    cr_assert_eq(battery_id, 2);
    cr_assert_eq(src_offset, 3599);
    cr_assert_null(find_sent(STMT_INSERT_BATTERY_RAW, 0), "no conflict: no fallback");
    cr_assert_eq(flusher_stats(flusher)->raw_expired, 1);
    cr_assert_eq(flusher_stats(flusher)->accepted, 3602, "the expired reading counted");
}

/* ---- the window cache ------------------------------------------------------------------------ */

/* A flusher whose cache holds `windows` windows, on a fresh connection to the fake. */
static void use_window_cache(int windows)
{
    flusher_destroy(flusher);
    cfg.window_cache_windows = windows;
    flusher = flusher_new(&cfg, zone, "solarx");
    cr_assert_not_null(flusher);
    cr_assert(flusher_attach_wire(flusher, (PGconn *)fake, &fake_wire));
}

/* The nth statement stmt sent at or after index `from`. */
static const struct sent *sent_since(int from, enum stmt_id stmt)
{
    for (int i = from; i < fake->sent_count; i++)
        if (fake->sent[i].stmt == stmt)
            return &fake->sent[i];
    return NULL;
}

/* Forgets the statements sent so far (a long test would overflow the record). */
static void forget_sent(void)
{
    for (int i = 0; i < fake->sent_count; i++) {
        for (int p = 0; p < fake->sent[i].nparams; p++)
            free(fake->sent[i].values[p]);
        free(fake->sent[i].copy_data);
    }
    memset(fake->sent, 0, sizeof(fake->sent));
    fake->sent_count = 0;
    cr_assert_eq(fake->head, fake->tail, "every result was read");
    fake->head = fake->tail = 0;
}

static void next_batch(void)
{
    batch_clear(batch);
}

Test(flush_fake, a_second_flush_of_cached_windows_reads_no_stored_state)
{
    use_window_cache(16);
    add_home(1, T0 + 1, 0, 10);
    add_home(2, T0 + 1, 0, 11);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_str_eq(param(STMT_STORED_HOME_WINDOWS, P_WINDOW_KEYS_HOME_IDS), "{1,2}");
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_VERSIONS), "{0,0}",
                     "rows believed absent");
    /* the version the new rows start at */
    char inserted[32];
    snprintf(inserted, sizeof(inserted), "%s",
             param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_NEW_ROW_VERSION));
    cr_assert_gt(atoll(inserted), 0);
    cr_assert_eq(flusher_stats(flusher)->windows_cached, 0);

    next_batch();
    add_home(1, T0 + 2, 0, 12);
    add_home(1, T0 + 1, 0, 13); /* counted by the first flush: a duplicate */
    add_home(3, T0 + 2, 0, 14); /* not cached */
    int mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    const struct sent *read = sent_since(mark, STMT_STORED_HOME_WINDOWS);
    cr_assert_not_null(read);
    cr_assert_str_eq(read->values[P_WINDOW_KEYS_HOME_IDS], "{3}", "only the window not cached");
    cr_assert_null(sent_since(mark, STMT_STORED_SOLAR_WINDOWS), "no solar window: no SELECT");
    cr_assert_not_null(sent_since(mark, STMT_LOCK_WINDOWS), "the window locks are still taken");
    const struct sent *upsert = sent_since(mark, STMT_UPSERT_HOME_FACTS);
    cr_assert_str_eq(upsert->values[P_HOME_FACT_HOME_IDS], "{1,3}");
    cr_assert_str_eq(upsert->values[P_HOME_FACT_READINGS_COUNTS], "{2,1}",
                     "the cached state merged with the new second");
    char expected[64];
    snprintf(expected, sizeof(expected), "{%s,0}", inserted);
    cr_assert_str_eq(upsert->values[P_HOME_FACT_VERSIONS], expected,
                     "home 1's row as the first flush inserted it; home 3's believed absent");
    cr_assert_gt(atoll(upsert->values[P_HOME_FACT_NEW_ROW_VERSION]), atoll(inserted),
                 "every flush's new rows start at another version");
    const struct flush_stats *st = flusher_stats(flusher);
    cr_assert_eq(st->windows_cached, 1);
    cr_assert_eq(st->duplicates, 1);
    cr_assert_eq(st->accepted, 2);

    /* Home 2's window was not written by the second flush: its version is unchanged. */
    next_batch();
    add_home(2, T0 + 5, 0, 15);
    mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_null(sent_since(mark, STMT_STORED_HOME_WINDOWS));
    snprintf(expected, sizeof(expected), "{%s}", inserted);
    cr_assert_str_eq(sent_since(mark, STMT_UPSERT_HOME_FACTS)->values[P_HOME_FACT_VERSIONS],
                     expected);
}

/* Another writer moved home 1's row on: the first upsert of home facts writes nothing. */
static int upserts_answered;
static PGresult *home_row_changed_once(const struct sent *q, void *ctx)
{
    if (q->stmt == STMT_UPSERT_HOME_FACTS && upserts_answered++ == 1) {
        const char *row[C_FACTS_COUNT] = {[C_FACTS_WRITTEN] = "0"};
        return fake_rows(1, C_FACTS_COUNT, row);
    }
    return stored_home_window(q, ctx);
}

Test(flush_fake, a_row_changed_by_another_writer_fails_the_flush_and_the_retry_reads_it)
{
    use_window_cache(16);
    fake->respond = home_row_changed_once;
    upserts_answered = 0;
    add_home(1, T0 + 1, 0, 10); /* stored (version 4): a duplicate */
    add_home(1, T0 + 3, 0, 11);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_str_eq(param(STMT_UPSERT_HOME_FACTS, P_HOME_FACT_VERSIONS), "{4}");

    next_batch();
    add_home(1, T0 + 4, 0, 12);
    int mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    cr_assert_null(sent_since(mark, STMT_STORED_HOME_WINDOWS), "the window was cached");
    cr_assert_str_eq(sent_since(mark, STMT_UPSERT_HOME_FACTS)->values[P_HOME_FACT_VERSIONS], "{5}");
    cr_assert_eq(flusher_failure(flusher), FLUSH_FAILURE_TRANSIENT, "retried, not split");
    cr_assert_str_eq(flusher_sqlstate(flusher), "40001");
    cr_assert(flusher_stale(flusher), "stale: the service retries at once");
    cr_assert_str_eq(flusher_error(flusher),
                     "postgres: window merge: 1 home fact rows were changed by another writer "
                     "(version mismatch)");
    cr_assert_null(sent_since(mark, STMT_COMMIT), "rolled back");
    cr_assert_null(flusher_conn(flusher), "forgotten: its owner closes it, which rolls back");

    /* The retry of the same batch reads the row again (here: the stored row of version 4 with
     * seconds 1 and 2) and merges into it, not into what the cache held. */
    reconnect();
    mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    const struct sent *read = sent_since(mark, STMT_STORED_HOME_WINDOWS);
    cr_assert_not_null(read, "the retry reads the window from PostgreSQL");
    cr_assert_str_eq(read->values[P_WINDOW_KEYS_HOME_IDS], "{1}");
    const struct sent *upsert = sent_since(mark, STMT_UPSERT_HOME_FACTS);
    cr_assert_str_eq(upsert->values[P_HOME_FACT_VERSIONS], "{4}");
    cr_assert_str_eq(upsert->values[P_HOME_FACT_READINGS_COUNTS], "{3}",
                     "seconds 1 and 2 stored, 4 new: the cached second 3 is not counted");
    cr_assert_eq(flusher_stats(flusher)->windows_cached, 0);

    /* After a stale window, the next flushes read every window (writers taking each other's
     * windows fail once per bypass, not every other flush); then the cache is used again. */
    fake->respond = NULL;
    int bypassed = 0;
    for (int round = 0; round < 200; round++) {
        forget_sent();
        next_batch();
        add_home(1, T0 + 5 + round, 0, 100 + round);
        cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
        if (flusher_stats(flusher)->windows_cached == 1)
            break;
        cr_assert_not_null(find_sent(STMT_STORED_HOME_WINDOWS, 0));
        bypassed++;
    }
    cr_assert_gt(bypassed, 10, "the cache was bypassed for a while");
    cr_assert_lt(bypassed, 200, "and used again after");
}

static PGresult *refuse_commit(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_COMMIT ? fake_error("08006", "connection lost") : NULL;
}

Test(flush_fake, a_failed_commit_leaves_the_cache_without_the_batch_windows)
{
    use_window_cache(16);
    add_home(1, T0 + 1, 0, 10);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));

    next_batch();
    add_home(1, T0 + 2, 0, 11);
    fake->respond = refuse_commit;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    reconnect();
    fake->respond = NULL;
    int mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_not_null(sent_since(mark, STMT_STORED_HOME_WINDOWS),
                       "whether the COMMIT happened is unknown: the window is read again");
}

Test(flush_fake, the_cache_keeps_at_most_its_bound_of_windows)
{
    use_window_cache(1);
    add_home(1, T0 + 1, 0, 10);
    add_home(2, T0 + 1, 0, 11);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));

    next_batch();
    add_home(1, T0 + 2, 0, 12);
    add_home(2, T0 + 2, 0, 13);
    int mark = fake->sent_count;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_str_eq(sent_since(mark, STMT_STORED_HOME_WINDOWS)->values[P_WINDOW_KEYS_HOME_IDS],
                     "{1}", "home 1 was evicted (published first), home 2 kept");
    cr_assert_eq(flusher_stats(flusher)->windows_cached, 1);
}

/* The last slice of a sliced upsert meets a row another writer changed. */
static PGresult *last_home_slice_stale(const struct sent *q, void *ctx)
{
    if (q->stmt != STMT_UPSERT_HOME_FACTS || array_length(q->values[P_HOME_FACT_VERSIONS]) != 452)
        return NULL;
    const char *row[C_FACTS_COUNT] = {[C_FACTS_WRITTEN] = "451"};
    return fake_rows(1, C_FACTS_COUNT, row);
}

Test(flush_fake, a_large_flush_reads_and_upserts_its_windows_in_slices)
{
    for (int32_t home = 1; home <= 2500; home++)
        add_home(home, T0 + 1, 0, home);
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    static const int want[] = {1024, 1024, 452};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(
            array_length(find_sent(STMT_STORED_HOME_WINDOWS, i)->values[P_WINDOW_KEYS_HOME_IDS]),
            want[i], "read slice %d", i);
        cr_assert_eq(
            array_length(find_sent(STMT_UPSERT_HOME_FACTS, i)->values[P_HOME_FACT_HOME_IDS]),
            want[i], "upsert slice %d", i);
    }
    cr_assert_null(find_sent(STMT_STORED_HOME_WINDOWS, 3));
    cr_assert_null(find_sent(STMT_UPSERT_HOME_FACTS, 3));
    cr_assert(strncmp(find_sent(STMT_UPSERT_HOME_FACTS, 2)->values[P_HOME_FACT_HOME_IDS], "{2049,",
                      6) == 0,
              "the slices follow each other");
    cr_assert_eq(flusher_stats(flusher)->windows_written, 2500);

    /* One slice short of its rows fails the flush as stale, naming that slice's count. */
    forget_sent();
    reconnect();
    fake->respond = last_home_slice_stale;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    cr_assert(flusher_stale(flusher));
    cr_assert_str_eq(flusher_error(flusher),
                     "postgres: window merge: 1 home fact rows were changed by another writer "
                     "(version mismatch)");
}

/* ---- raw lanes --------------------------------------------------------------------------------
 */

/* A flush that knows its raw partitions exist (an earlier flush ensured them) over 4 homes x 50
 * seconds, with a raw lane lent: the lane fake, which the caller frees. */
static struct fake *flush_with_a_lane_ready(void)
{
    add_home(9, T0 + 3000, 0, 1);
    struct fake *lane = calloc(1, sizeof(*lane));
    cr_assert(flusher_attach_lane_wire(flusher, 0, (PGconn *)lane, &fake_wire));
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_not_null(find_sent(STMT_ENSURE_RAW_PARTITIONS, 0));
    cr_assert_eq(lane->sent_count, 0, "a flush that creates partitions writes its raw rows itself");
    batch_clear(batch);
    int64_t offset = 100;
    for (int32_t home_id = 1; home_id <= 4; home_id++)
        for (int s = 0; s < 50; s++)
            add_home(home_id, T0 + s, 0, offset++);
    return lane;
}

static size_t copied_rows(const struct fake *k, int from_seq)
{
    size_t rows = 0;
    for (int i = 0; i < k->sent_count; i++)
        if (k->sent[i].stmt == STMT_COPY_HOME_RAW && k->sent[i].seq > from_seq)
            rows += copy_binary_rows(&k->sent[i], 6, 0, 0, NULL);
    return rows;
}

/* The raw rows are split between the flush's connection and the lane; the lane writes its share
 * in a transaction of its own, with a lock timeout, and the flush commits only after the lane's
 * COMMIT came back. */
Test(flush_fake, a_raw_lane_writes_a_share_and_commits_before_the_flush)
{
    struct fake *lane = flush_with_a_lane_ready();
    int first_seq = fake->sent[fake->sent_count - 1].seq;
    lane->stalled = true;
    enum flush_progress p = flusher_start(flusher, batch);
    for (int rounds = 0; p == FLUSH_BUSY && rounds < 100; rounds++)
        p = flusher_on_io(flusher);
    cr_assert_eq(p, FLUSH_BUSY, "the flush waits for its lane");
    cr_assert(flusher_lane_busy(flusher, 0));
    cr_assert_null(find_sent(STMT_COMMIT, 1), "no COMMIT while the lane has not committed");
    lane->stalled = false;
    for (int rounds = 0; p == FLUSH_BUSY && rounds < 100; rounds++)
        p = flusher_on_io(flusher);
    cr_assert_eq(p, FLUSH_COMMITTED, "%s", flusher_error(flusher));
    cr_assert_not(flusher_lane_busy(flusher, 0));

    static const enum stmt_id lane_steps[] = {STMT_BEGIN, STMT_RAW_LANE_LOCK_TIMEOUT,
                                              STMT_SAVEPOINT_RAW, STMT_COPY_HOME_RAW, STMT_COMMIT};
    cr_assert_eq(lane->sent_count, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(lane->sent[i].stmt, lane_steps[i], "lane statement %d is %s", i,
                     stmt_get(lane->sent[i].stmt)->name);
    const struct sent *commit = find_sent(STMT_COMMIT, 1);
    cr_assert_not_null(commit);
    cr_assert_gt(commit->seq, lane->sent[4].seq, "the flush commits after its lane");
    size_t own = copied_rows(fake, first_seq), lanes = copied_rows(lane, 0);
    cr_assert_eq(own + lanes, 200, "every raw row once: %zu + %zu", own, lanes);
    cr_assert_eq(own, 100, "two homes' windows each");
    cr_assert_eq(flusher_lane_conn(flusher, 0), (PGconn *)lane, "the lane stays lent");
    flusher_detach_lane(flusher, 0);
    fake_free(lane);
}

static PGresult *fail_copy(const struct sent *q, void *ctx)
{
    return q->stmt == STMT_COPY_HOME_RAW ? fake_error("22003", "numeric field overflow") : NULL;
}

/* A lane's failure is the flush's: nothing commits, and both connections are forgotten (their
 * owner closes them, which rolls both transactions back). */
Test(flush_fake, a_failed_raw_lane_fails_the_flush_and_both_connections_are_forgotten)
{
    struct fake *lane = flush_with_a_lane_ready();
    lane->respond = fail_copy;
    cr_assert_eq(run_flush(), FLUSH_FAILED);
    cr_assert_str_eq(flusher_error(flusher),
                     "postgres: raw lane 1: raw copy home: numeric field overflow");
    cr_assert_str_eq(flusher_sqlstate(flusher), "22003");
    cr_assert_null(find_sent(STMT_COMMIT, 1), "the flush does not commit");
    cr_assert_null(find_sent_in(lane, STMT_COMMIT, 0), "nor does the lane");
    cr_assert_null(flusher_conn(flusher));
    cr_assert_null(flusher_lane_conn(flusher, 0));
    cr_assert_not(flusher_lane_busy(flusher, 0));
    fake_free(lane);
}

/* A lane's COPY that meets a stored row (its rows committed for a flush that then failed, and
 * the retry) falls back to INSERT ... ON CONFLICT DO NOTHING for the rows of its share only. */
Test(flush_fake, a_raw_lane_meeting_stored_rows_inserts_its_share_on_conflict_do_nothing)
{
    struct fake *lane = flush_with_a_lane_ready();
    lane->respond = conflict_on_copy;
    cr_assert_eq(run_flush(), FLUSH_COMMITTED, "%s", flusher_error(flusher));
    const struct sent *insert = find_sent_in(lane, STMT_INSERT_HOME_RAW, 0);
    cr_assert_not_null(insert);
    cr_assert_eq(array_length(insert->values[P_HOME_RAW_OFFSETS]), 100, "its share alone");
    const char *homes = insert->values[P_HOME_RAW_HOME_IDS];
    cr_assert(strncmp(homes, "{3,", 3) == 0 && strcmp(homes + strlen(homes) - 3, ",4}") == 0,
              "homes 3 and 4: %s", homes);
    cr_assert_not_null(find_sent_in(lane, STMT_COMMIT, 0));
    flusher_detach_lane(flusher, 0);
    fake_free(lane);
}
