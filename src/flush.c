/* The flush transaction: window locks, stored state, exact merge, bulk writes, offsets, COMMIT.
 *
 * Phase A (one pipeline): BEGIN; advisory locks on every (kind, window start) touched, in sorted
 * order so that concurrent writers serialise without deadlock, even on windows no row exists for
 * yet (after the registry lock, before the battery-history locks: dimsync.c); SELECT the stored
 * state of those windows the window cache does not hold (window_cache.h), and the dimension
 * histories they involve. Then, in C, every reading of
 * the batch is applied to its window's stored state; only readings whose second was not yet
 * counted become raw rows and feed the battery histories.
 * Phase B (one pipeline): changed dimension versions, raw retention, day partitions, dim_date,
 * the merged window states with their dimension keys (each fact row only if it still carries the
 * version read or cached, else the flush fails as transient: take_facts_written),
 * re-pointed facts, dead letters, offsets
 * (never moved backwards, and only under the epochs the partitions were claimed with:
 * solarx_meta.store_offsets raises SXFEN otherwise).
 * Phase C (no pipeline mode: it does not allow COPY): per kind, the raw rows by binary COPY
 * under a savepoint; when one meets a row already stored (an operator deleted facts and replays
 * while raw rows remain) the savepoint is rolled back and the kind's rows go through INSERT ...
 * ON CONFLICT DO NOTHING instead. Then COMMIT. Any error fails the flush: the flusher forgets the
 * connection it was lent, and its owner (the db session, backfill) closes it, which rolls back.
 * The window cache learns the flush's window states only after COMMIT; a failed flush forgets
 * its windows from it, so that the retry reads them from PostgreSQL.
 * What is decided without PostgreSQL (lock order, the merge, raw rows, retention, partition
 * days) is flush_plan.c; every statement is declared in statements.c; the queries in flight, their
 * results and the COPY go through the db pipeline (dbpipe.h), over pgwire.h (libpq, or a test's
 * recording fake): this file reads only the columns of the results its handlers are given. */
#include "solarx/flush.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solarx/claims.h"
#include "solarx/copybinary.h"
#include "solarx/dbpipe.h"
#include "solarx/dimsync.h"
#include "solarx/flush_plan.h"
#include "solarx/log.h"
#include "solarx/pgarray.h"
#include "solarx/pgwire.h"
#include "solarx/raw_writer.h"
#include "solarx/statements.h"
#include "solarx/window_cache.h"

enum phase {
    PHASE_IDLE,
    PHASE_LOCK_AND_READ,
    PHASE_WRITE,
    PHASE_RAW,         /* the flush's own share of the raw rows (raw_writer.h) */
    PHASE_AWAIT_LANES, /* its share is written; raw lanes are still writing theirs */
    PHASE_COMMIT,
};

#define FACT_SLICES (READING_KIND_COUNT * FLUSH_PLAN_SLICES_MAX)

struct flusher;

/* One fact upsert statement (flush_plan_slice_rows windows of one kind) and its row count. */
struct fact_slice {
    struct flusher *f;
    int kind;
    size_t sent; /* fact rows in the statement */
};
#define SCRATCH_ARRAYS (2 * STMT_MAX_PARAMS)

/* A raw lane: another connection lent to the flusher, which writes a share of a flush's raw
 * rows in a transaction of its own, committed before the flush's (raw_writer.h). */
struct flush_lane {
    int index;
    struct db_pipeline *db; /* its connection, when one is lent */
    struct raw_writer w;    /* its share of this flush */
    char what[80];          /* failure names: "raw lane 1: raw copy battery" */
};

struct flusher {
    struct db_pipeline *db;  /* the connection lent, its queries in flight, the flush's error */
    struct db_pipe pipe;     /* the flusher's own queries */
    struct db_pipe dim_pipe; /* dimsync's queries */
    const struct config *cfg;
    const struct clock_zone *zone;
    char *offsets_group;
    const struct claims *claims; /* borrowed: epochs the offsets are stored under */
    bool stale; /* this flush failed because windows it held were written by another writer */
    const struct registry *registry; /* borrowed; NULL: no registries */
    bool registry_dirty;             /* not yet written since it was set */
    bool flushing_registry;          /* this flush writes it */
    struct dimsync *dims;            /* the flush's dimensions */

    enum phase phase;
    const struct batch *batch;
    struct flush_plan plan;     /* the flush's windows, merged states, accepted readings */
    struct window_cache *cache; /* committed fact rows of recent windows */
    struct fact_slice fact_slices[FACT_SLICES]; /* this flush's fact upserts */
    size_t fact_slice_count;
    int64_t new_row_version; /* the version the fact rows this flush inserts start at */
    int cache_bypass;        /* flushes left that read every window (after a stale one) */

    /* Days whose raw partitions are known to exist. Forgetting one only costs asking again. */
    struct flush_known_days known_days;
    struct flush_retention retention;
    int32_t *pending_days; /* the days this flush ensures partitions for, sorted, distinct */
    size_t pending_day_count, pending_days_cap;

    bool dropping_partitions; /* this flush drops raw partitions (retention) */
    struct raw_writer raw;    /* phase C: the flush's own share of the raw rows */
    struct flush_raw_share shares[1 + FLUSH_LANES_MAX]; /* phase C: [0] its own, then lanes' */
    struct flush_lane lanes[FLUSH_LANES_MAX];

    struct pgarray arrays[SCRATCH_ARRAYS];
    struct timespec started;
    struct flush_stats stats;
};

/* A fact row's version was not the one read or cached: another writer changed the row. */
#define STALE_SQLSTATE "40001"

/* After a flush met a stale window, this many flushes read every window from PostgreSQL, so that
 * writers that keep taking each other's windows fail about once per this many flushes, not once
 * every other flush (they still publish: the cache is warm when the bypass ends). */
#define CACHE_BYPASS_FLUSHES 128

/* New fact rows start at a multiple of this (see next_new_row_version); a row is updated at most
 * once per flush that counts a new second in it: fewer than WINDOW_MAX_SECONDS times. */
#define FACT_VERSION_STRIDE 65536

/* STMT_STORE_OFFSETS raises it when a partition is no longer held under its epoch. */
#define FENCED_SQLSTATE "SXFEN"

static bool pipe_send(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                      db_result_fn on_result, void *ctx);
static bool dim_pipe_send(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                          db_result_fn on_result, void *ctx);
static const char *failure_name(void *ctx, enum stmt_id stmt);
static const char *lane_failure_name(void *ctx, enum stmt_id stmt);
static bool start_lanes(struct flusher *f);

struct flusher *flusher_new(const struct config *cfg, const struct clock_zone *zone,
                            const char *offsets_group)
{
    struct flusher *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->cfg = cfg;
    f->zone = zone;
    f->cache =
        window_cache_new(cfg->window_cache_windows > 0 ? (size_t)cfg->window_cache_windows : 0);
    if (!f->cache) {
        free(f);
        return NULL;
    }
    f->db = db_pipeline_new(failure_name, f);
    if (!f->db) {
        window_cache_free(f->cache);
        free(f);
        return NULL;
    }
    f->offsets_group = offsets_group ? strdup(offsets_group) : NULL;
    f->pipe.send = pipe_send;
    f->dim_pipe.send = dim_pipe_send;
    return f;
}

/* Ends a flush; the per-flush arrays stay allocated for the next one (memory stays level). */
static void release_flush(struct flusher *f)
{
    dimsync_destroy(f->dims);
    f->dims = NULL;
    f->plan.windows = NULL;
    f->plan.window_count = 0;
    f->batch = NULL;
    f->phase = PHASE_IDLE;
}

void flusher_destroy(struct flusher *f)
{
    if (!f)
        return;
    release_flush(f);
    flush_plan_free(&f->plan);
    window_cache_free(f->cache);
    free(f->pending_days);
    for (int i = 0; i < SCRATCH_ARRAYS; i++)
        pgarray_free(&f->arrays[i]);
    raw_writer_free(&f->raw);
    for (int i = 0; i < FLUSH_LANES_MAX; i++) {
        raw_writer_free(&f->lanes[i].w);
        db_pipeline_free(f->lanes[i].db);
    }
    db_pipeline_free(f->db);
    free(f->offsets_group);
    free(f);
}

void flusher_set_registry(struct flusher *f, const struct registry *reg)
{
    f->registry = reg;
    f->registry_dirty = reg != NULL;
}

void flusher_set_claims(struct flusher *f, const struct claims *claims)
{
    f->claims = claims;
}

bool flusher_registry_dirty(const struct flusher *f)
{
    return f->registry_dirty;
}

bool flusher_attach(struct flusher *f, PGconn *conn)
{
    return flusher_attach_wire(f, conn, &pgwire_libpq);
}

bool flusher_attach_wire(struct flusher *f, PGconn *conn, const struct pgwire *wire)
{
    return db_pipeline_attach(f->db, conn, wire);
}

void flusher_detach(struct flusher *f)
{
    db_pipeline_detach(f->db);
}

PGconn *flusher_conn(const struct flusher *f)
{
    return db_pipeline_conn(f->db);
}

bool flusher_wants_write(const struct flusher *f)
{
    return db_pipeline_wants_write(f->db);
}

bool flusher_attach_lane(struct flusher *f, int lane, PGconn *conn)
{
    return flusher_attach_lane_wire(f, lane, conn, &pgwire_libpq);
}

bool flusher_attach_lane_wire(struct flusher *f, int lane, PGconn *conn, const struct pgwire *wire)
{
    if (lane < 0 || lane >= FLUSH_LANES_MAX)
        return false;
    struct flush_lane *l = &f->lanes[lane];
    if (!l->db) {
        l->index = lane;
        l->db = db_pipeline_new(lane_failure_name, l);
        if (!l->db)
            return false;
    }
    if (!db_pipeline_attach(l->db, conn, wire)) {
        (void)db_pipeline_fail_as(f->db, db_pipeline_error(l->db));
        return false;
    }
    return true;
}

void flusher_detach_lane(struct flusher *f, int lane)
{
    if (lane >= 0 && lane < FLUSH_LANES_MAX && f->lanes[lane].db)
        db_pipeline_detach(f->lanes[lane].db);
}

PGconn *flusher_lane_conn(const struct flusher *f, int lane)
{
    if (lane < 0 || lane >= FLUSH_LANES_MAX || !f->lanes[lane].db)
        return NULL;
    return db_pipeline_conn(f->lanes[lane].db);
}

bool flusher_lane_busy(const struct flusher *f, int lane)
{
    return lane >= 0 && lane < FLUSH_LANES_MAX && raw_writer_busy(&f->lanes[lane].w);
}

bool flusher_lane_wants_write(const struct flusher *f, int lane)
{
    return flusher_lane_busy(f, lane) && db_pipeline_wants_write(f->lanes[lane].db);
}

int64_t flusher_raw_horizon(const struct flusher *f)
{
    return f->retention.raw_horizon;
}

const struct flush_stats *flusher_stats(const struct flusher *f)
{
    return &f->stats;
}

const char *flusher_error(const struct flusher *f)
{
    return db_pipeline_error(f->db)->text;
}

const char *flusher_sqlstate(const struct flusher *f)
{
    return db_pipeline_error(f->db)->sqlstate;
}

enum flush_failure flush_classify_sqlstate(const char *sqlstate)
{
    static const char *const transient[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available (lock_timeout) */
        "57P01", /* admin_shutdown */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now (starting up, recovering) */
        "53300", /* too_many_connections */
    };
    /* Classes no message's content can cause with the flush's fixed statements: privileges and
     * missing objects (42), transaction state such as read-only (25), authorisation (28),
     * catalogue / schema names (3D, 3F), system and internal errors (58, XX); and disk full. */
    static const char *const systemic_classes[] = {"42", "25", "28", "3D", "3F", "58", "XX"};
    if (sqlstate == NULL || strlen(sqlstate) != 5 || strncmp(sqlstate, "08", 2) == 0)
        return FLUSH_FAILURE_TRANSIENT; /* no answer, or the connection is gone */
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strcmp(sqlstate, transient[i]) == 0)
            return FLUSH_FAILURE_TRANSIENT;
    if (strcmp(sqlstate, "53100") == 0) /* disk_full */
        return FLUSH_FAILURE_SYSTEMIC;
    for (size_t i = 0; i < sizeof(systemic_classes) / sizeof(systemic_classes[0]); i++)
        if (strncmp(sqlstate, systemic_classes[i], 2) == 0)
            return FLUSH_FAILURE_SYSTEMIC;
    return FLUSH_FAILURE_REJECTED;
}

bool flusher_stale(const struct flusher *f)
{
    return f->stale;
}

enum flush_failure flusher_failure(const struct flusher *f)
{
    return flush_classify_sqlstate(flusher_sqlstate(f));
}

const char *flush_failure_name(enum flush_failure failure)
{
    switch (failure) {
    case FLUSH_FAILURE_TRANSIENT:
        return "transient";
    case FLUSH_FAILURE_SYSTEMIC:
        return "systemic";
    case FLUSH_FAILURE_REJECTED:
        return "rejected";
    }
    return "unknown";
}

/* Records the first error of this flush in the pipeline's error record (which also holds the
 * failures of its statements). */
static void set_error(struct flusher *f, const char *what, const char *detail)
{
    (void)db_pipeline_fail(f->db, NULL, what, detail);
}

/* The flush's windows leave the cache: what it holds of them may be what made the flush fail
 * (another writer changed a row), and after a failed COMMIT nobody knows which state is stored. */
static void forget_cached_windows(struct flusher *f)
{
    for (size_t i = 0; i < f->plan.window_count; i++)
        window_cache_forget(f->cache, &f->plan.windows[i]->key);
}

/* The flush ends without COMMIT: its connection is in an unknown state, and forgotten. Its owner
 * closes it, and the server rolls the transaction back. */
static enum flush_progress fail_flush(struct flusher *f)
{
    bool fenced = strcmp(flusher_sqlstate(f), FENCED_SQLSTATE) == 0;
    forget_cached_windows(f);
    db_pipeline_detach(f->db);
    f->raw.active = false;
    for (int i = 0; i < FLUSH_LANES_MAX; i++) {
        struct flush_lane *lane = &f->lanes[i];
        if (!raw_writer_busy(&lane->w))
            continue; /* unused, or its transaction committed */
        lane->w.active = false;
        db_pipeline_detach(lane->db); /* its owner closes it: the transaction rolls back */
    }
    /* Partitions may have been dropped meanwhile (retention, an operator): ask again. */
    f->known_days.count = 0;
    release_flush(f);
    return fenced ? FLUSH_FENCED : FLUSH_FAILED;
}

static void add_key(struct pgarray *a, int64_t key)
{
    if (key)
        pgarray_add_int(a, key);
    else
        pgarray_add_null(a);
}

static struct pgarray *arr(struct flusher *f, int i)
{
    pgarray_reset(&f->arrays[i]);
    return &f->arrays[i];
}

/* The flusher's queries and dimsync's go into the same pipeline; a result dimsync refuses is
 * named "dimensions" in the error. */
static bool pipe_send(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                      db_result_fn on_result, void *ctx)
{
    struct flusher *f = (struct flusher *)((char *)pipe - offsetof(struct flusher, pipe));
    return db_pipeline_send(f->db, stmt, values, on_result, ctx, NULL);
}

static bool dim_pipe_send(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                          db_result_fn on_result, void *ctx)
{
    struct flusher *f = (struct flusher *)((char *)pipe - offsetof(struct flusher, dim_pipe));
    return db_pipeline_send(f->db, stmt, values, on_result, ctx, "dimensions");
}

static bool parse_fixed(PGresult *res, int row, int col, fixed_t *out)
{
    return fixed_parse(PQgetvalue(res, row, col), out);
}

/* Loads the stored rows of one kind (STMT_STORED_*_WINDOWS) into f->plan.states. */
static bool load_stored_states(struct flusher *f, PGresult *res, int kind)
{
    for (int row = 0; row < PQntuples(res); row++) {
        int32_t home_id = atoi(PQgetvalue(res, row, C_STORED_HOME_ID));
        int32_t device_id = atoi(PQgetvalue(res, row, C_STORED_DEVICE_ID));
        int64_t start = atoll(PQgetvalue(res, row, C_STORED_START));
        /* Solar windows are keyed by panel alone (the fact's key), see merge_batch. */
        struct window_key key = window_key_make(
            (enum reading_kind)kind, kind == READING_SOLAR ? 0 : home_id, device_id, start);
        long i = batch_find_window(f->plan.windows, f->plan.window_count, &key);
        if (i < 0)
            continue;
        if (atoi(PQgetvalue(res, row, C_STORED_WINDOW_SECONDS)) != f->batch->window_seconds) {
            set_error(f, "stored window",
                      "a fact row has a different window_seconds than window_minutes configures; "
                      "the grain of an existing warehouse cannot change");
            return false;
        }
        struct window_state *w = &f->plan.states[i];
        bool ok = parse_fixed(res, row, C_STORED_SUM_WH, &w->sum_wh) &&
                  parse_fixed(res, row, C_STORED_MIN_WH, &w->min_wh) &&
                  parse_fixed(res, row, C_STORED_MAX_WH, &w->max_wh) &&
                  parse_fixed(res, row, C_STORED_LAST_ENERGY_WH, &w->last_energy_wh) &&
                  parse_fixed(res, row, C_STORED_LAST_ACCUMULATED_WH, &w->last_accumulated_wh) &&
                  parse_fixed(res, row, C_STORED_CAPACITY_KWH, &w->last_capacity_kwh) &&
                  parse_fixed(res, row, C_STORED_MAX_CHARGE_SPEED_W, &w->last_max_charge_speed_w) &&
                  parse_fixed(res, row, C_STORED_MAX_OUTPUT_W, &w->last_max_output_w) &&
                  window_seen_from_hex(w, PQgetvalue(res, row, C_STORED_SECONDS_SEEN));
        w->readings_count = atoi(PQgetvalue(res, row, C_STORED_READINGS_COUNT));
        w->first_ts = atoll(PQgetvalue(res, row, C_STORED_FIRST_TS));
        w->last_ts = atoll(PQgetvalue(res, row, C_STORED_LAST_TS));
        w->last_is_charging = PQgetvalue(res, row, C_STORED_IS_CHARGING)[0] == 't';
        f->plan.versions[i] = atoll(PQgetvalue(res, row, C_STORED_VERSION));
        const char *status = PQgetvalue(res, row, C_STORED_STATUS);
        w->last_status = strcmp(status, "charging") == 0      ? BATTERY_CHARGING
                         : strcmp(status, "discharging") == 0 ? BATTERY_DISCHARGING
                                                              : BATTERY_IDLE;
        if (kind == READING_SOLAR)
            f->plan.solar_home[i] = home_id;
        if (!ok || !window_state_is_consistent(w)) {
            char what[160];
            snprintf(what, sizeof(what), "stored %s window %d/%d at %lld", reading_kind_name(kind),
                     home_id, device_id, (long long)start);
            set_error(f, what, "row is inconsistent with its seconds_seen bitmap");
            return false;
        }
    }
    return true;
}

/* Result handlers of the phase's queries (each records its own error with set_error). */
static bool take_stored_home_windows(void *ctx, PGresult *res, char *errstr, size_t size)
{
    return load_stored_states(ctx, res, READING_HOME);
}

static bool take_stored_solar_windows(void *ctx, PGresult *res, char *errstr, size_t size)
{
    return load_stored_states(ctx, res, READING_SOLAR);
}

static bool take_stored_battery_windows(void *ctx, PGresult *res, char *errstr, size_t size)
{
    return load_stored_states(ctx, res, READING_BATTERY);
}

static size_t command_rows(PGresult *res)
{
    return strtoul(PQcmdTuples(res), NULL, 10);
}

static size_t first_value(PGresult *res, int column)
{
    return strtoul(PQgetvalue(res, 0, column), NULL, 10);
}

/* The fact rows of one upsert written with the version expected; any other was changed by
 * another writer since this flusher read or cached it: the flush fails as transient, and the
 * failure forgets the batch's windows from the cache (fail_flush), so its retry reads them. */
static bool take_facts_written(void *ctx, PGresult *res, char *errstr, size_t size)
{
    const struct fact_slice *slice = ctx;
    struct flusher *f = slice->f;
    int kind = slice->kind;
    size_t written = first_value(res, C_FACTS_WRITTEN);
    f->stats.windows_written += written;
    if (written == slice->sent)
        return true;
    size_t stale = slice->sent > written ? slice->sent - written : 0;
    f->cache_bypass = CACHE_BYPASS_FLUSHES;
    log_warn("event=window_cache_stale kind=%s windows=%zu bypass_flushes=%d msg=\"fact rows "
             "changed by another writer since this flusher read or cached them; the flush is "
             "retried with them read again, and the next flushes read every window\"",
             reading_kind_name(kind), stale, CACHE_BYPASS_FLUSHES);
    char detail[160];
    snprintf(detail, sizeof(detail),
             "%zu %s fact rows were changed by another writer (version mismatch)", stale,
             reading_kind_name(kind));
    if (db_pipeline_fail(f->db, STALE_SQLSTATE, "window merge", detail))
        f->stale = true;
    return true;
}

static bool take_dead_letters(void *ctx, PGresult *res, char *errstr, size_t size)
{
    ((struct flusher *)ctx)->stats.dead_letters += command_rows(res);
    return true;
}

static bool take_offsets(void *ctx, PGresult *res, char *errstr, size_t size)
{
    ((struct flusher *)ctx)->stats.offsets += first_value(res, C_OFFSETS_STORED);
    return true;
}

static bool take_partitions_created(void *ctx, PGresult *res, char *errstr, size_t size)
{
    ((struct flusher *)ctx)->stats.partitions_created +=
        first_value(res, C_ENSURE_PARTITIONS_CREATED);
    return true;
}

static bool take_partitions_dropped(void *ctx, PGresult *res, char *errstr, size_t size)
{
    ((struct flusher *)ctx)->stats.partitions_dropped +=
        first_value(res, C_DROP_PARTITIONS_DROPPED);
    return true;
}

/* Phase A: BEGIN, the window locks, and the stored state of every window of the batch. */
static bool send_lock_and_read(struct flusher *f)
{
    size_t n = f->plan.window_count;
    int64_t *locks = calloc(n ? n : 1, sizeof(*locks));
    if (!locks) {
        set_error(f, "internal", "out of memory");
        return false;
    }
    size_t lock_count = flush_plan_window_locks(&f->plan, locks);
    struct pgarray *classes = arr(f, 0), *objects = arr(f, 1);
    for (size_t i = 0; i < lock_count; i++) {
        pgarray_add_int(classes, locks[i] >> 32);
        pgarray_add_int(objects, (int32_t)(uint32_t)locks[i]);
    }
    free(locks);

    const char *locks_values[P_LOCK_WINDOWS_COUNT] = {
        [P_LOCK_WINDOWS_CLASSES] = pgarray_finish(classes),
        [P_LOCK_WINDOWS_OBJECTS] = pgarray_finish(objects),
    };
    /* Lock order, the same in every writer: registry, windows (sorted), battery homes (sorted). */
    if (!db_send(&f->pipe, STMT_BEGIN, NULL, NULL, NULL) ||
        !dimsync_send_lock(f->dims, &f->dim_pipe) ||
        !db_send(&f->pipe, STMT_LOCK_WINDOWS, locks_values, NULL, NULL) ||
        !dimsync_send_reads(f->dims, &f->dim_pipe, &f->arrays[5]))
        return false;
    static db_result_fn const take_stored[READING_KIND_COUNT] = {
        [READING_HOME] = take_stored_home_windows,
        [READING_SOLAR] = take_stored_solar_windows,
        [READING_BATTERY] = take_stored_battery_windows,
    };
    for (int kind = 0; kind < READING_KIND_COUNT; kind++) {
        size_t uncached = 0;
        for (size_t i = 0; i < n; i++)
            uncached += f->plan.windows[i]->key.kind == kind && !f->plan.cached[i];
        if (uncached == 0)
            continue; /* every window of the kind is cached (or the batch has none) */
        /* In slices: each result is taken and freed before the next one is parsed. */
        size_t per_slice = flush_plan_slice_rows(uncached), i = 0;
        while (uncached > 0) {
            struct pgarray *homes = arr(f, 2), *devices = arr(f, 3), *starts = arr(f, 4);
            size_t rows = 0;
            for (; i < n && rows < per_slice; i++) {
                const struct window_key *k = &f->plan.windows[i]->key;
                if (k->kind != kind || f->plan.cached[i])
                    continue;
                pgarray_add_int(homes, k->home_id);
                pgarray_add_int(devices, k->device_id);
                pgarray_add_int(starts, k->start);
                rows++;
            }
            uncached -= rows;
            const char *keys[P_WINDOW_KEYS_COUNT] = {
                [P_WINDOW_KEYS_HOME_IDS] = pgarray_finish(homes),
                [P_WINDOW_KEYS_DEVICE_IDS] = pgarray_finish(devices),
                [P_WINDOW_KEYS_STARTS] = pgarray_finish(starts),
            };
            if (!db_send(&f->pipe, STMT_STORED_HOME_WINDOWS + kind, keys, take_stored[kind], f))
                return false;
        }
    }
    return db_sync(f->db);
}

static bool observe_battery(void *ctx, size_t index, const struct reading *r, char *errstr,
                            size_t errstr_size)
{
    return dimsync_observe_battery(ctx, index, r, errstr, errstr_size);
}

/* Applies every reading of the batch to its window's stored state (flush_plan_merge). */
static bool merge_batch(struct flusher *f, int64_t *max_ts)
{
    struct flush_merge_counts counts = {0};
    char error[512];
    bool ok = flush_plan_merge(&f->plan, &counts, observe_battery, f->dims, error, sizeof(error));
    struct flush_stats *st = &f->stats;
    st->readings += counts.readings;
    st->accepted += counts.accepted;
    st->duplicates += counts.duplicates;
    for (int kind = 0; kind < READING_KIND_COUNT; kind++)
        st->merged[kind] += counts.merged[kind];
    *max_ts = counts.max_ts;
    if (!ok)
        set_error(f, "dim_battery", error);
    return ok;
}

/* Raw retention (flush_retention_advance): drops whole day partitions when the horizon passes a
 * day boundary. */
static bool retention(struct flusher *f, int64_t max_ts)
{
    if (!flush_retention_advance(&f->retention, max_ts, (int64_t)time(NULL),
                                 f->cfg->raw_retention_days))
        return true;
    if (f->cfg->raw_archive_dir[0])
        return true; /* the archiver drops each day once its archive is durable (archive.c) */
    f->dropping_partitions = true;
    char horizon[24];
    snprintf(horizon, sizeof(horizon), "%lld", (long long)f->retention.raw_horizon);
    const char *values[P_DROP_PARTITIONS_COUNT] = {[P_DROP_PARTITIONS_HORIZON] = horizon};
    return db_send(&f->pipe, STMT_DROP_RAW_PARTITIONS, values, take_partitions_dropped, f);
}

/* Day partitions for exactly the days of the raw rows (unless known to exist), and dim_date rows
 * for the windows. */
static bool send_partitions_and_dates(struct flusher *f)
{
    if (!flush_plan_unknown_days(&f->plan, f->retention.raw_horizon, &f->known_days,
                                 &f->pending_days, &f->pending_day_count, &f->pending_days_cap)) {
        set_error(f, "internal", "out of memory");
        return false;
    }
    if (f->pending_day_count > 0) {
        struct pgarray *days = arr(f, 0);
        for (size_t i = 0; i < f->pending_day_count; i++)
            pgarray_add_int(days, f->pending_days[i]);
        const char *values[P_ENSURE_PARTITIONS_COUNT] = {[P_ENSURE_PARTITIONS_DAYS] =
                                                             pgarray_finish(days)};
        if (!db_send(&f->pipe, STMT_ENSURE_RAW_PARTITIONS, values, take_partitions_created, f))
            return false;
    }
    struct pgarray *starts = arr(f, 0);
    for (size_t i = 0; i < f->plan.window_count; i++)
        if (f->plan.changed[i])
            pgarray_add_int(starts, f->plan.windows[i]->key.start);
    char minutes[16];
    snprintf(minutes, sizeof(minutes), "%d", f->batch->window_seconds / 60);
    const char *values[P_ENSURE_DATES_COUNT] = {
        [P_ENSURE_DATES_STARTS] = pgarray_finish(starts),
        [P_ENSURE_DATES_ZONE] = clock_zone_name(f->zone),
        [P_ENSURE_DATES_MINUTES] = minutes,
    };
    return db_send(&f->pipe, STMT_ENSURE_DATES, values, NULL, NULL);
}

/* One changed window as elements of its kind's STMT_UPSERT_*_FACTS parameters (f->arrays). */
static void add_home_fact(struct flusher *f, const struct window_state *w, int64_t key,
                          int64_t version)
{
    struct pgarray *a = f->arrays;
    pgarray_add_int(&a[P_HOME_FACT_VERSIONS], version);
    pgarray_add_int(&a[P_HOME_FACT_HOME_IDS], w->key.home_id);
    pgarray_add_int(&a[P_HOME_FACT_STARTS], w->key.start);
    pgarray_add_fixed(&a[P_HOME_FACT_SUMS_WH], w->sum_wh);
    pgarray_add_int(&a[P_HOME_FACT_READINGS_COUNTS], w->readings_count);
    pgarray_add_fixed(&a[P_HOME_FACT_MINS_WH], w->min_wh);
    pgarray_add_fixed(&a[P_HOME_FACT_MAXS_WH], w->max_wh);
    pgarray_add_fixed(&a[P_HOME_FACT_LAST_ACCUMULATED_WH], w->last_accumulated_wh);
    pgarray_add_int(&a[P_HOME_FACT_FIRST_TS], w->first_ts);
    pgarray_add_int(&a[P_HOME_FACT_LAST_TS], w->last_ts);
    pgarray_add_bytea(&a[P_HOME_FACT_SECONDS_SEEN], w->seen, window_seen_bytes(w));
    add_key(&a[P_HOME_FACT_HOME_KEYS], key);
}

static void add_solar_fact(struct flusher *f, const struct window_state *w, int32_t home_id,
                           int64_t key, int64_t version)
{
    struct pgarray *a = f->arrays;
    pgarray_add_int(&a[P_SOLAR_FACT_VERSIONS], version);
    pgarray_add_int(&a[P_SOLAR_FACT_PANEL_IDS], w->key.device_id);
    pgarray_add_int(&a[P_SOLAR_FACT_STARTS], w->key.start);
    pgarray_add_int(&a[P_SOLAR_FACT_HOME_IDS], home_id);
    pgarray_add_fixed(&a[P_SOLAR_FACT_SUMS_WH], w->sum_wh);
    pgarray_add_int(&a[P_SOLAR_FACT_READINGS_COUNTS], w->readings_count);
    pgarray_add_fixed(&a[P_SOLAR_FACT_MINS_WH], w->min_wh);
    pgarray_add_fixed(&a[P_SOLAR_FACT_MAXS_WH], w->max_wh);
    pgarray_add_fixed(&a[P_SOLAR_FACT_LAST_ACCUMULATED_WH], w->last_accumulated_wh);
    pgarray_add_int(&a[P_SOLAR_FACT_FIRST_TS], w->first_ts);
    pgarray_add_int(&a[P_SOLAR_FACT_LAST_TS], w->last_ts);
    pgarray_add_bytea(&a[P_SOLAR_FACT_SECONDS_SEEN], w->seen, window_seen_bytes(w));
    add_key(&a[P_SOLAR_FACT_PANEL_KEYS], key);
}

static void add_battery_fact(struct flusher *f, const struct window_state *w, int64_t key,
                             int64_t version)
{
    struct pgarray *a = f->arrays;
    pgarray_add_int(&a[P_BATTERY_FACT_VERSIONS], version);
    const char *status = reading_status_name(w->last_status);
    pgarray_add_int(&a[P_BATTERY_FACT_HOME_IDS], w->key.home_id);
    pgarray_add_int(&a[P_BATTERY_FACT_BATTERY_IDS], w->key.device_id);
    pgarray_add_int(&a[P_BATTERY_FACT_STARTS], w->key.start);
    pgarray_add_fixed(&a[P_BATTERY_FACT_ENERGIES_WH], w->last_energy_wh);
    pgarray_add_bool(&a[P_BATTERY_FACT_IS_CHARGING], w->last_is_charging);
    pgarray_add_text(&a[P_BATTERY_FACT_STATUSES], status, strlen(status));
    pgarray_add_fixed(&a[P_BATTERY_FACT_CAPACITIES_KWH], w->last_capacity_kwh);
    pgarray_add_fixed(&a[P_BATTERY_FACT_MAX_CHARGE_SPEEDS_W], w->last_max_charge_speed_w);
    pgarray_add_fixed(&a[P_BATTERY_FACT_MAX_OUTPUTS_W], w->last_max_output_w);
    pgarray_add_fixed(&a[P_BATTERY_FACT_MINS_WH], w->min_wh);
    pgarray_add_fixed(&a[P_BATTERY_FACT_MAXS_WH], w->max_wh);
    pgarray_add_int(&a[P_BATTERY_FACT_READINGS_COUNTS], w->readings_count);
    pgarray_add_int(&a[P_BATTERY_FACT_FIRST_TS], w->first_ts);
    pgarray_add_int(&a[P_BATTERY_FACT_LAST_TS], w->last_ts);
    pgarray_add_bytea(&a[P_BATTERY_FACT_SECONDS_SEEN], w->seen, window_seen_bytes(w));
    add_key(&a[P_BATTERY_FACT_BATTERY_KEYS], key);
}

/* One fact upsert of the changed windows of one kind from windows[*next] on: up to rows of them.
 * *next moves past the windows taken. */
static bool send_fact_slice(struct flusher *f, int kind, size_t *next, size_t rows)
{
    static const int window_seconds_param[READING_KIND_COUNT] = {
        [READING_HOME] = P_HOME_FACT_WINDOW_SECONDS,
        [READING_SOLAR] = P_SOLAR_FACT_WINDOW_SECONDS,
        [READING_BATTERY] = P_BATTERY_FACT_WINDOW_SECONDS,
    };
    static const int new_row_version_param[READING_KIND_COUNT] = {
        [READING_HOME] = P_HOME_FACT_NEW_ROW_VERSION,
        [READING_SOLAR] = P_SOLAR_FACT_NEW_ROW_VERSION,
        [READING_BATTERY] = P_BATTERY_FACT_NEW_ROW_VERSION,
    };
    if (f->fact_slice_count >= FACT_SLICES) {
        set_error(f, "internal", "too many fact upserts in one flush");
        return false;
    }
    enum stmt_id stmt = STMT_UPSERT_HOME_FACTS + kind;
    size_t nparams = stmt_get(stmt)->nparams;
    for (size_t i = 0; i < nparams; i++)
        pgarray_reset(&f->arrays[i]);
    size_t taken = 0, i = *next;
    for (; i < f->plan.window_count && taken < rows; i++) {
        const struct window_state *w = &f->plan.states[i];
        if (w->key.kind != kind || !f->plan.changed[i])
            continue;
        taken++;
        int64_t key = dimsync_key_at(f->dims, kind, w->key.home_id, w->key.device_id, w->last_ts);
        int64_t version = f->plan.versions[i];
        if (kind == READING_HOME)
            add_home_fact(f, w, key, version);
        else if (kind == READING_SOLAR)
            add_solar_fact(f, w, f->plan.solar_home[i], key, version);
        else
            add_battery_fact(f, w, key, version);
    }
    *next = i;
    struct fact_slice *slice = &f->fact_slices[f->fact_slice_count++];
    *slice = (struct fact_slice){f, kind, taken};
    char window_seconds[16];
    snprintf(window_seconds, sizeof(window_seconds), "%d", f->batch->window_seconds);
    const char *values[STMT_MAX_PARAMS];
    for (size_t p = 0; p < nparams; p++)
        values[p] = pgarray_finish(&f->arrays[p]);
    values[window_seconds_param[kind]] = window_seconds; /* a scalar, not an array */
    char new_row_version[24];
    snprintf(new_row_version, sizeof(new_row_version), "%lld", (long long)f->new_row_version);
    values[new_row_version_param[kind]] = new_row_version;
    return db_send(&f->pipe, stmt, values, take_facts_written, slice);
}

/* The merged state of every changed window of one kind, in slices (flush_plan_slice_rows). */
static bool send_window_states(struct flusher *f, int kind)
{
    size_t changed = 0;
    for (size_t i = 0; i < f->plan.window_count; i++)
        changed += f->plan.states[i].key.kind == kind && f->plan.changed[i];
    size_t per_slice = flush_plan_slice_rows(changed), next = 0;
    for (size_t sent = 0; sent < changed; sent += per_slice)
        if (!send_fact_slice(f, kind, &next, per_slice))
            return false;
    return true;
}

static bool send_dead_letters(struct flusher *f)
{
    const struct batch *b = f->batch;
    if (b->dead_count == 0)
        return true;
    struct pgarray *a[P_DEAD_COUNT];
    for (int i = 0; i < P_DEAD_COUNT; i++)
        a[i] = arr(f, i);
    for (size_t i = 0; i < b->dead_count; i++) {
        const struct batch_dead_letter *d = &b->dead[i];
        const char *topic = f->cfg->topic[d->kind];
        pgarray_add_text(a[P_DEAD_TOPICS], topic, strlen(topic));
        pgarray_add_int(a[P_DEAD_PARTITIONS], d->partition);
        pgarray_add_int(a[P_DEAD_OFFSETS], d->offset);
        if (d->key)
            pgarray_add_bytea(a[P_DEAD_KEYS], d->key, d->key_len);
        else
            pgarray_add_null(a[P_DEAD_KEYS]);
        pgarray_add_bytea(a[P_DEAD_PAYLOADS], d->payload, d->payload_len);
        pgarray_add_text(a[P_DEAD_REASONS], d->reason, strlen(d->reason));
        pgarray_add_text(a[P_DEAD_ERRORS], d->error, strlen(d->error));
        if (d->source)
            pgarray_add_text(a[P_DEAD_SOURCES], d->source, strlen(d->source));
        else
            pgarray_add_null(a[P_DEAD_SOURCES]);
        pgarray_add_int(a[P_DEAD_PAYLOAD_BYTES], (int64_t)d->payload_bytes);
        pgarray_add_bytea(a[P_DEAD_PAYLOAD_SHA256], d->payload_sha256, sizeof(d->payload_sha256));
    }
    const char *values[P_DEAD_COUNT];
    for (int i = 0; i < P_DEAD_COUNT; i++)
        values[i] = pgarray_finish(a[i]);
    return db_send(&f->pipe, STMT_INSERT_DEAD_LETTERS, values, take_dead_letters, f);
}

static bool send_offsets(struct flusher *f)
{
    const struct batch *b = f->batch;
    if (!f->offsets_group || b->offset_count == 0)
        return true;
    struct pgarray *topics = arr(f, 0), *partitions = arr(f, 1), *nexts = arr(f, 2),
                   *epochs = arr(f, 3);
    for (const struct batch_offset *o = b->offsets; o; o = o->hh.next) {
        const char *topic = f->cfg->topic[o->id.kind];
        pgarray_add_text(topics, topic, strlen(topic));
        pgarray_add_int(partitions, o->id.partition);
        pgarray_add_int(nexts, o->next_offset);
        /* A partition without a claim (lost, or its claim still pending) fences the flush. */
        pgarray_add_int(epochs, f->claims ? claims_epoch(f->claims, o->id.kind, o->id.partition)
                                          : CLAIMS_NONE);
    }
    const char *values[P_OFFSETS_COUNT] = {
        [P_OFFSETS_GROUP] = f->offsets_group,
        [P_OFFSETS_TOPICS] = pgarray_finish(topics),
        [P_OFFSETS_PARTITIONS] = pgarray_finish(partitions),
        [P_OFFSETS_NEXT_OFFSETS] = pgarray_finish(nexts),
        [P_OFFSETS_EPOCHS] = pgarray_finish(epochs),
    };
    return db_send(&f->pipe, STMT_STORE_OFFSETS, values, take_offsets, f);
}

/* Phase B: everything the batch writes but its raw rows, in one pipeline. */
static bool send_writes(struct flusher *f)
{
    int64_t max_ts;
    char error[512];
    if (!dimsync_apply_registry(f->dims, error, sizeof(error))) {
        set_error(f, "registry", error);
        return false;
    }
    if (!merge_batch(f, &max_ts))
        return false;
    f->fact_slice_count = 0;
    bool ok = dimsync_send_dimension_writes(f->dims, &f->dim_pipe, f->arrays);
    if (ok && f->stats.accepted > 0) {
        ok = retention(f, max_ts) && send_partitions_and_dates(f);
        for (int kind = 0; ok && kind < READING_KIND_COUNT; kind++)
            ok = send_window_states(f, kind);
    }
    ok = ok && dimsync_send_repoints(f->dims, &f->dim_pipe, f->arrays) && send_dead_letters(f) &&
         send_offsets(f);
    return ok && db_sync(f->db) && start_lanes(f);
}

/* ---- phase C: raw rows, raw lanes and COMMIT ----------------------------------------------- */

static size_t lanes_lent(const struct flusher *f)
{
    size_t n = 0;
    for (int i = 0; i < FLUSH_LANES_MAX; i++)
        n += f->lanes[i].db && db_pipeline_conn(f->lanes[i].db);
    return n;
}

/* Splits the raw rows between the flush's own connection (shares[0]) and the raw lanes lent,
 * and starts the lanes on theirs, while phase B's pipeline is on its way. A flush that creates or
 * drops raw partitions writes every raw row itself: its DDL is not visible to (and would wait
 * for) a lane's transaction until the flush commits. */
static bool start_lanes(struct flusher *f)
{
    int64_t horizon = f->retention.raw_horizon;
    size_t lanes = lanes_lent(f);
    size_t shares = 0;
    if (lanes > 0 && f->pending_day_count == 0 && !f->dropping_partitions)
        shares = flush_plan_raw_shares(&f->plan, horizon, 1 + lanes, f->shares);
    if (shares < 2) {
        f->shares[0] = flush_plan_whole_share(&f->plan, horizon);
        return true;
    }
    size_t next = 1;
    for (int i = 0; i < FLUSH_LANES_MAX && next < shares; i++) {
        struct flush_lane *lane = &f->lanes[i];
        if (!lane->db || !db_pipeline_conn(lane->db))
            continue;
        db_pipeline_clear_error(lane->db);
        if (!raw_writer_start(&lane->w, lane->db, &f->plan, horizon, &f->shares[next++], true)) {
            (void)db_pipeline_fail_as(f->db, db_pipeline_error(lane->db));
            db_pipeline_detach(lane->db); /* in an unknown state: its owner closes it */
            return false;
        }
    }
    return true;
}

/* The flush's own share of the raw rows, in its transaction. */
static bool start_raw(struct flusher *f)
{
    f->phase = PHASE_RAW;
    return raw_writer_start(&f->raw, f->db, &f->plan, f->retention.raw_horizon, &f->shares[0],
                            false);
}

static bool lanes_writing(const struct flusher *f)
{
    for (int i = 0; i < FLUSH_LANES_MAX; i++)
        if (raw_writer_busy(&f->lanes[i].w))
            return true;
    return false;
}

/* The flush's share is written: COMMIT once every lane committed its own, never before: the
 * COMMIT stores the offsets past every raw row of the batch, so the lanes' rows must be in first
 * (a lane that fails fails the flush, and the retry writes its rows). */
static bool commit_when_lanes_done(struct flusher *f)
{
    if (lanes_writing(f)) {
        f->phase = PHASE_AWAIT_LANES;
        return true;
    }
    f->phase = PHASE_COMMIT;
    return db_command(f->db, STMT_COMMIT, NULL, NULL, NULL);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The version of the fact rows this flush inserts: the wall clock's milliseconds times
 * FACT_VERSION_STRIDE, and above every such version this flusher used before. A row deleted and
 * inserted again by any writer starts at another multiple of the stride than it had, so that
 * nobody holding its old version can write over it (statements.c, VERSION_CHECK). */
static int64_t next_new_row_version(int64_t previous)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t version = ms * FACT_VERSION_STRIDE;
    return version > previous ? version : previous + FACT_VERSION_STRIDE;
}

/* The windows the cache holds start from its state and version instead of a stored row (unless
 * the cache is bypassed after a stale window: CACHE_BYPASS_FLUSHES). */
static void take_cached_states(struct flusher *f)
{
    struct flush_plan *p = &f->plan;
    if (f->cache_bypass > 0) {
        f->cache_bypass--;
        return;
    }
    for (size_t i = 0; i < p->window_count; i++) {
        const struct window_cache_row *row = window_cache_get(f->cache, &p->windows[i]->key);
        if (!row || row->state.seconds != f->batch->window_seconds)
            continue;
        p->states[i] = row->state;
        p->versions[i] = row->version;
        p->solar_home[i] = row->solar_home;
        p->cached[i] = true;
        f->stats.windows_cached++;
    }
}

/* After COMMIT: every window of the flush as its fact row now stands (a written row's version
 * moved on by one). Evicts the least recently published beyond the cache's bound. */
static void publish_windows(struct flusher *f)
{
    const struct flush_plan *p = &f->plan;
    for (size_t i = 0; i < p->window_count; i++) {
        struct window_cache_row row = {
            .state = p->states[i],
            .version = !p->changed[i]        ? p->versions[i]
                       : p->versions[i] == 0 ? f->new_row_version
                                             : p->versions[i] + 1,
            .solar_home = p->solar_home[i],
        };
        if (!window_cache_publish(f->cache, &row)) {
            log_warn("event=window_cache_full msg=\"out of memory: the window is read from "
                     "PostgreSQL next time\"");
            return;
        }
    }
}

enum flush_progress flusher_start(struct flusher *f, struct batch *b)
{
    if (f->phase != PHASE_IDLE) {
        set_error(f, "internal", "a flush is already in progress");
        return FLUSH_FAILED;
    }
    db_pipeline_clear_error(f->db);
    f->stale = false;
    memset(&f->stats, 0, sizeof(f->stats));
    clock_gettime(CLOCK_MONOTONIC, &f->started);
    if (!db_pipeline_conn(f->db)) {
        set_error(f, "connection", "not connected");
        return FLUSH_FAILED;
    }
    f->batch = b;
    f->dropping_partitions = false;
    f->pending_day_count = 0; /* those of a flush that failed were not ensured */
    raw_writer_clear_counts(&f->raw);
    for (int i = 0; i < FLUSH_LANES_MAX; i++)
        raw_writer_clear_counts(&f->lanes[i].w); /* a lane this flush leaves out adds nothing */
    if (!flush_plan_start(&f->plan, batch_sorted_windows(b), b->window_count, b->reading_count,
                          b->window_seconds)) {
        set_error(f, "internal", "out of memory");
        return fail_flush(f);
    }
    take_cached_states(f);
    f->new_row_version = next_new_row_version(f->new_row_version);
    f->flushing_registry = f->registry_dirty;
    f->dims = dimsync_new(f->plan.windows, f->plan.states, f->plan.window_count, f->registry,
                          f->registry_dirty);
    if (!f->dims) {
        set_error(f, "internal", "out of memory");
        return fail_flush(f);
    }
    f->phase = PHASE_LOCK_AND_READ;
    if (!send_lock_and_read(f))
        return fail_flush(f);
    return FLUSH_BUSY;
}

/* What a failed statement of phases A and B was doing, for the error. */
static const char *failure_context(enum stmt_id stmt)
{
    switch (stmt) {
    case STMT_UPSERT_HOME_FACTS:
    case STMT_UPSERT_SOLAR_FACTS:
    case STMT_UPSERT_BATTERY_FACTS:
        return "window merge";
    case STMT_INSERT_DEAD_LETTERS:
        return "dead letters";
    case STMT_STORE_OFFSETS:
        return "offsets";
    default:
        return stmt_get(stmt)->name; /* "ensure_raw_partitions", "lock_windows", ... */
    }
}

/* Names a failed statement for the pipeline's error record: the raw step in phase C, else what
 * the statement was doing (STMT_COUNT: a failure no query accounts for). */
static const char *failure_name(void *ctx, enum stmt_id stmt)
{
    struct flusher *f = ctx;
    if (f->phase == PHASE_RAW)
        return raw_writer_step_name(&f->raw);
    if (f->phase == PHASE_COMMIT)
        return "commit";
    if (stmt == STMT_COUNT)
        return f->phase == PHASE_LOCK_AND_READ ? "locking windows" : "flush";
    return failure_context(stmt);
}

/* A lane's failed command, for the lane pipeline's error record (then the flush's). */
static const char *lane_failure_name(void *ctx, enum stmt_id stmt)
{
    (void)stmt;
    struct flush_lane *lane = ctx;
    snprintf(lane->what, sizeof(lane->what), "raw lane %d: %s", lane->index + 1,
             raw_writer_step_name(&lane->w));
    return lane->what;
}

static enum flush_progress finish_commit(struct flusher *f);

/* What the pipeline of the flush's own connection tells: the next phase once one is complete. */
static enum flush_progress take_io(struct flusher *f, enum db_io io)
{
    if (f->phase == PHASE_RAW) {
        enum raw_progress p = raw_writer_take(&f->raw, io);
        if (p == RAW_WRITER_FAILED)
            return fail_flush(f);
        if (p == RAW_WRITER_DONE && !commit_when_lanes_done(f))
            return fail_flush(f);
        return FLUSH_BUSY;
    }
    if (f->phase == PHASE_COMMIT) {
        if (io == DB_IO_MORE)
            return FLUSH_BUSY;
        return io == DB_IO_DONE ? finish_commit(f) : fail_flush(f);
    }
    if (io == DB_IO_MORE)
        return FLUSH_BUSY;
    if (io != DB_IO_SYNCED) {
        set_error(f, "connection", "pipeline out of step"); /* unless the pipeline said why */
        return fail_flush(f);
    }
    if (f->phase == PHASE_LOCK_AND_READ) {
        f->phase = PHASE_WRITE;
        if (!send_writes(f))
            return fail_flush(f);
        return FLUSH_BUSY;
    }
    if (!start_raw(f))
        return fail_flush(f);
    if (!raw_writer_busy(&f->raw) && !commit_when_lanes_done(f)) /* its share had no rows */
        return fail_flush(f);
    return FLUSH_BUSY;
}

/* The lanes writing: what their sockets brought. A lane that failed fails the flush (its error
 * becomes the flush's); one that committed is back in pipeline mode, idle. */
static bool take_lanes_io(struct flusher *f)
{
    for (int i = 0; i < FLUSH_LANES_MAX; i++) {
        struct flush_lane *lane = &f->lanes[i];
        if (!raw_writer_busy(&lane->w))
            continue;
        enum raw_progress p = raw_writer_take(&lane->w, db_pipeline_on_io(lane->db));
        if (p == RAW_WRITER_FAILED) {
            (void)db_pipeline_fail_as(f->db, db_pipeline_error(lane->db));
            db_pipeline_detach(lane->db); /* its owner closes it: the transaction rolls back */
            return false;
        }
        if (p == RAW_WRITER_DONE && !db_enter_pipeline(lane->db)) {
            /* committed, but the connection is gone: the flush goes on without it */
            log_warn("event=raw_lane_lost lane=%d msg=\"%s\"", i + 1,
                     db_pipeline_error(lane->db)->text);
            db_pipeline_detach(lane->db);
        }
    }
    return true;
}

enum flush_progress flusher_on_io(struct flusher *f)
{
    if (f->phase == PHASE_IDLE || !db_pipeline_conn(f->db))
        return FLUSH_FAILED;
    if (!take_lanes_io(f))
        return fail_flush(f);
    if (f->phase == PHASE_AWAIT_LANES) {
        /* nothing in flight on its own connection: only whether it is still there */
        if (!db_pipeline_check_idle(f->db))
            return fail_flush(f);
        if (!lanes_writing(f) && !commit_when_lanes_done(f))
            return fail_flush(f);
        return FLUSH_BUSY;
    }
    return take_io(f, db_pipeline_on_io(f->db));
}

/* COMMIT succeeded: what the flush learnt is kept; the connection is ready for the next one. */
static enum flush_progress finish_commit(struct flusher *f)
{
    if (!db_enter_pipeline(f->db)) {
        fail_flush(f);
        return FLUSH_FAILED; /* committed, yet the connection is gone: nothing is lost */
    }
    publish_windows(f);
    flush_known_days_add(&f->known_days, f->pending_days, f->pending_day_count);
    f->pending_day_count = 0;
    f->stats.elapsed_ms = ms_since(&f->started);
    f->stats.dimension_versions_rewritten = dimsync_changed(f->dims);
    for (int kind = 0; kind < READING_KIND_COUNT; kind++) {
        f->stats.raw_inserted[kind] += f->raw.inserted[kind];
        for (int i = 0; i < FLUSH_LANES_MAX; i++)
            f->stats.raw_inserted[kind] += f->lanes[i].w.inserted[kind];
    }
    f->stats.raw_expired += f->raw.expired;
    for (int i = 0; i < FLUSH_LANES_MAX; i++)
        f->stats.raw_expired += f->lanes[i].w.expired;
    struct flush_retention *r = &f->retention;
    if (f->stats.partitions_dropped > 0 || r->raw_horizon > r->dropped_horizon) {
        r->dropped_horizon = r->raw_horizon;
        /* those are gone */
        flush_known_days_forget_before(&f->known_days, (int32_t)flush_plan_day(r->raw_horizon));
    }
    if (f->flushing_registry)
        f->registry_dirty = false;
    release_flush(f);
    return FLUSH_COMMITTED;
}

enum flush_progress flusher_abort(struct flusher *f, const char *why)
{
    set_error(f, "flush abandoned", why);
    return fail_flush(f);
}

enum flush_progress flusher_run_blocking(struct flusher *f)
{
    enum flush_progress p = FLUSH_BUSY;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (p == FLUSH_BUSY) {
        if (ms_since(&t0) > FLUSH_DEADLINE_MS)
            return flusher_abort(f, "no answer from PostgreSQL within the flush deadline");
        struct pollfd pfd[1 + FLUSH_LANES_MAX];
        nfds_t n = 0;
        pfd[n++] =
            (struct pollfd){.fd = db_pipeline_socket(f->db),
                            .events = POLLIN | (db_pipeline_wants_write(f->db) ? POLLOUT : 0)};
        for (int i = 0; i < FLUSH_LANES_MAX; i++)
            if (flusher_lane_busy(f, i))
                pfd[n++] = (struct pollfd){
                    .fd = db_pipeline_socket(f->lanes[i].db),
                    .events = POLLIN | (flusher_lane_wants_write(f, i) ? POLLOUT : 0)};
        int rc = poll(pfd, n, 1000);
        if (rc < 0 && errno != EINTR) {
            set_error(f, "poll", strerror(errno));
            return fail_flush(f);
        }
        p = flusher_on_io(f);
    }
    return p;
}
