/* One connection's share of a flush's raw rows (flush_plan.h, struct flush_raw_share), written
 * kind by kind: each kind's rows by binary COPY under a savepoint; when one meets a row already
 * stored (an operator deleted facts and replays while raw rows remain, or a flush whose raw lane
 * committed failed before its own COMMIT and is retried) the savepoint is rolled back and the
 * kind's rows of the share go through INSERT ... ON CONFLICT DO NOTHING instead.
 *
 * The flush's own connection writes its share inside the flush's transaction, which the flusher
 * then commits. A raw lane -- another connection lent to the flusher -- writes its share in a
 * transaction of its own (BEGIN, a lock timeout, the kinds, COMMIT), which the flusher commits
 * before its own: raw rows are idempotent, so a lane's rows committed for a flush that then
 * fails are met again by its retry and kept once.
 *
 * Commands go one at a time outside pipeline mode (COPY is not allowed in it) through the db
 * pipeline (dbpipe.h); the writer is driven by that pipeline's events. */
#ifndef SOLARX_RAW_WRITER_H
#define SOLARX_RAW_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "solarx/copybinary.h"
#include "solarx/dbpipe.h"
#include "solarx/flush_plan.h"
#include "solarx/pgarray.h"
#include "solarx/reading.h"
#include "solarx/statements.h"

/* The command in flight. */
enum raw_step {
    RAW_BEGIN,        /* own transaction only */
    RAW_LOCK_TIMEOUT, /* own transaction only: STMT_RAW_LANE_LOCK_TIMEOUT */
    RAW_SAVEPOINT,
    RAW_COPY,
    RAW_ROLLBACK,
    RAW_INSERT,
    RAW_COMMIT, /* own transaction only */
};

enum raw_progress {
    RAW_WRITER_BUSY,   /* waiting on the socket */
    RAW_WRITER_DONE,   /* the share is written (and, in its own transaction, committed); the
                          connection is outside pipeline mode */
    RAW_WRITER_FAILED, /* see the pipeline's error record */
};

struct raw_writer {
    struct db_pipeline *db;        /* borrowed */
    const struct flush_plan *plan; /* borrowed */
    int64_t horizon;               /* raw rows before it are not written (retention) */
    struct flush_raw_share share;
    bool own_transaction;
    bool active; /* started, not yet done or failed */

    struct copybinary copy;       /* the next chunk of the COPY of kind */
    struct flush_raw_cursor rows; /* the rows of kind not yet in a chunk */
    bool copy_streaming;          /* the COPY takes chunks (until rows is done) */
    int kind;                     /* the kind being written */
    enum raw_step step;
    bool conflict;                          /* the COPY met a stored row (unique violation) */
    char what[48];                          /* raw_writer_step_name's answer */
    struct pgarray arrays[STMT_MAX_PARAMS]; /* the INSERT fallback's parameters, while sent */

    size_t inserted[READING_KIND_COUNT]; /* rows the COPYs or INSERTs stored */
    size_t expired;                      /* accepted readings older than the horizon: no row */
};

/* Releases the writer's buffers (it may be started again afterwards). */
void raw_writer_free(struct raw_writer *w);

/* Starts writing share of plan (both borrowed until it ends) on db: leaves pipeline mode and
 * sends the first command. own_transaction: in a transaction of its own, committed at the end;
 * else in the transaction open on db, left open. Returns false (db's error record says why)
 * when it cannot be sent. */
bool raw_writer_start(struct raw_writer *w, struct db_pipeline *db, const struct flush_plan *plan,
                      int64_t horizon, const struct flush_raw_share *share, bool own_transaction)
    __attribute__((warn_unused_result));

/* What db_pipeline_on_io (or _read) said: sends the next command, the next COPY chunk. */
enum raw_progress raw_writer_take(struct raw_writer *w, enum db_io io);

/* Forgets inserted[] and expired (raw_writer_start does too). */
void raw_writer_clear_counts(struct raw_writer *w);

/* Whether the writer is between raw_writer_start and its end. */
bool raw_writer_busy(const struct raw_writer *w);

/* What the command in flight is, for errors: "raw copy battery", "raw lane commit", ... */
const char *raw_writer_step_name(struct raw_writer *w);

#endif
