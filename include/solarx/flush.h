/* One batch -> one PostgreSQL transaction: lock the windows it touches, read their stored state,
 * merge only the seconds not yet counted, then write window (fact) state, dim_date rows, dead
 * letters and consumer offsets (libpq's non-blocking pipeline mode), then the raw rows by COPY
 * (out of pipeline mode), and COMMIT. A state machine driven by readiness of the connection's
 * socket (or by flusher_run_blocking). */
#ifndef SOLARX_FLUSH_H
#define SOLARX_FLUSH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/batch.h"
#include "solarx/clock.h"
#include "solarx/config.h"
#include "solarx/registry.h"

/* What the last committed flush did. */
struct flush_stats {
    size_t readings;                   /* readings in the batch */
    size_t accepted;                   /* new seconds counted into windows */
    size_t merged[READING_KIND_COUNT]; /* accepted, by kind */
    size_t duplicates;                 /* readings whose second was already counted */
    size_t raw_inserted[READING_KIND_COUNT];
    size_t windows_written;
    size_t windows_cached; /* windows whose stored state came from the window cache */
    size_t dead_letters;   /* dead letters newly stored */
    size_t offsets;        /* partitions whose offsets were stored */
    size_t partitions_created;
    size_t partitions_dropped;           /* raw day partitions past raw_retention_days */
    size_t raw_expired;                  /* counted readings older than the retention: no raw row */
    size_t dimension_versions_rewritten; /* devices whose SCD2 history changed */
    double elapsed_ms;                   /* from start to COMMIT */
};

/* A flush that takes longer than this is abandoned (the server or the network hangs). */
#define FLUSH_DEADLINE_MS (5 * 60 * 1000)

enum flush_progress {
    FLUSH_BUSY,      /* waiting on the socket */
    FLUSH_COMMITTED, /* the transaction committed: stats are valid, the batch may be dropped */
    FLUSH_FAILED,    /* see flusher_error(); the batch is intact. The flusher forgot the
                        connection: its owner closes it, which rolls the transaction back */
    FLUSH_FENCED,    /* a partition of the batch is no longer held under the epoch claims gave
                        for it (another instance claimed it). Not to be retried: see
                        flusher_error() for the partitions. The connection is forgotten as for
                        FLUSH_FAILED: its owner closes it, which rolls the transaction back. */
};

struct flusher;
struct claims;

/* A flusher for cfg's settings and zone (both borrowed; cfg's fields are read at every flush).
 * offsets_group is the consumer group the offsets are stored under, or NULL to store none
 * (replay and ingest). */
struct flusher *flusher_new(const struct config *cfg, const struct clock_zone *zone,
                            const char *offsets_group);
void flusher_destroy(struct flusher *f);

/* Makes reg (borrowed; NULL for none) the registry of the following flushes, which bring
 * dim_home_appliances, dim_home and dim_solar_panel up to date with it. Call only while no flush
 * is in progress. The next flush writes it even with an empty batch (flusher_registry_dirty). */
void flusher_set_registry(struct flusher *f, const struct registry *reg);
bool flusher_registry_dirty(const struct flusher *f);

/* The claims (borrowed; NULL: none) whose epochs the stored offsets are conditional on: a
 * partition not held under its epoch -- or not claimed at all -- makes the flush FLUSH_FENCED.
 * Only flushes with an offsets_group store offsets. */
void flusher_set_claims(struct flusher *f, const struct claims *claims);

/* Lends an established connection to the flusher for its following flushes. The caller keeps
 * owning it and closes it (the flusher never does): after a flush that did not commit, which the
 * flusher forgets it at, or after flusher_detach. Puts it in non-blocking pipeline mode unless it
 * is already. Returns false, forgetting it, when that fails (flusher_error says why). */
bool flusher_attach(struct flusher *f, PGconn *conn) __attribute__((warn_unused_result));
/* flusher_attach over another implementation of the connection calls (borrowed; a test's
 * recording fake, see pgwire.h): conn is whatever that implementation takes. */
struct pgwire;
bool flusher_attach_wire(struct flusher *f, PGconn *conn, const struct pgwire *wire)
    __attribute__((warn_unused_result));
/* The owner closes the connection it lent (it was lost between flushes): the flusher forgets
 * it. Call only while no flush is in progress. */
void flusher_detach(struct flusher *f);
/* The connection lent, or NULL when there is none (never lent, detached, or forgotten after a
 * flush that did not commit). */
PGconn *flusher_conn(const struct flusher *f);

/* Raw lanes: more connections lent to the flusher ([solarx] flush_connections - 1 of them). A
 * flush splits its raw rows between its own connection and the lanes lent when it writes them
 * (flush_plan_raw_shares); each lane writes its share in a transaction of its own, which commits
 * before the flush's (raw rows are idempotent: raw_writer.h). A flush that creates or drops raw
 * partitions, or finds no lane lent, writes every raw row itself. A lane's failure fails the
 * flush; the flusher then forgets the lane's connection (flusher_lane_conn is NULL) as it does
 * its own, and the owner closes both. */
#define FLUSH_LANES_MAX (CONFIG_FLUSH_CONNECTIONS_MAX - 1)
bool flusher_attach_lane(struct flusher *f, int lane, PGconn *conn)
    __attribute__((warn_unused_result));
bool flusher_attach_lane_wire(struct flusher *f, int lane, PGconn *conn, const struct pgwire *wire)
    __attribute__((warn_unused_result));
/* The owner closes lane's connection (it was lost while the lane had no work). */
void flusher_detach_lane(struct flusher *f, int lane);
PGconn *flusher_lane_conn(const struct flusher *f, int lane);
/* The lane has work in flight in the flush in progress: its socket's readiness goes to
 * flusher_on_io (which may start a lane's work: ask again after each call). */
bool flusher_lane_busy(const struct flusher *f, int lane);
bool flusher_lane_wants_write(const struct flusher *f, int lane);

/* Starts writing b (borrowed until FLUSH_COMMITTED or FLUSH_FAILED; only its readings are
 * grouped by window, nothing is added or removed). Returns
 * FLUSH_BUSY once the first queries are on their way, FLUSH_FAILED when they cannot be sent. */
enum flush_progress flusher_start(struct flusher *f, struct batch *b);

/* Call when the socket is readable (or writable while flusher_wants_write), or a busy lane's. */
enum flush_progress flusher_on_io(struct flusher *f);
bool flusher_wants_write(const struct flusher *f);

/* Gives up the flush in progress (a hung server): forgets the connection, which its owner
 * closes (that rolls the transaction back). Returns FLUSH_FAILED; the batch is intact. */
enum flush_progress flusher_abort(struct flusher *f, const char *why);

/* Drives the flush in progress to its end with poll(2), for programs without an event loop
 * (backfill, tests). The service never calls it: its loop must keep running (watchdog). */
enum flush_progress flusher_run_blocking(struct flusher *f);

/* The raw retention horizon of the last flush (epoch seconds, a UTC midnight; 0 before any):
 * raw rows before it are not kept. With [solarx] raw_archive_dir set the flusher drops no
 * partition: the archiver (archive.h) drops each day behind this horizon once it is archived. */
int64_t flusher_raw_horizon(const struct flusher *f);

const struct flush_stats *flusher_stats(const struct flusher *f);
const char *flusher_error(const struct flusher *f);

/* What a failed flush means for the batch (pure classification of its SQLSTATE). */
enum flush_failure {
    FLUSH_FAILURE_TRANSIENT, /* retry the same batch with backoff: connection lost (class 08, or
                              * no SQLSTATE at all), 40001, 40P01, 55P03, 57P01-03, 53300 */
    FLUSH_FAILURE_SYSTEMIC,  /* the server or schema refuses any batch (42, 25, 28, 3D, 3F, 58,
                              * XX, 53100 disk full): retry with backoff; splitting cannot help */
    FLUSH_FAILURE_REJECTED,  /* anything else (data exceptions 22, constraints 23, limits 54, out
                              * of memory 53200, raised errors P0, ...): some content of the batch
                              * is refused; after retries, isolate it by splitting */
};
enum flush_failure flush_classify_sqlstate(const char *sqlstate);
const char *flush_failure_name(enum flush_failure failure);

/* The SQLSTATE of the last failed flush ("" when it failed without one) and its class. */
const char *flusher_sqlstate(const struct flusher *f);
enum flush_failure flusher_failure(const struct flusher *f);

/* Whether the last flush failed only because windows it held in its cache had been written by
 * another writer (logged as event=window_cache_stale): nothing is wrong, and its retry, which
 * reads them again, need not wait. */
bool flusher_stale(const struct flusher *f);

#endif
