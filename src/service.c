/* The service loop: Kafka messages -> decode -> batch; a timer or the size bound starts a flush
 * of the batch while the next one fills; COMMIT -> Kafka commit. PostgreSQL down: the batch waits
 * and is retried with backoff, consumption pauses when the next batch is full (P7). */
#include "solarx/service.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "solarx/archive.h"
#include "solarx/batch.h"
#include "solarx/claims.h"
#include "solarx/clock.h"
#include "solarx/db_session.h"
#include "solarx/decode.h"
#include "solarx/decode_pool.h"
#include "solarx/evtime.h"
#include "solarx/flush_lanes.h"
#include "solarx/flush.h"
#include "solarx/kafka.h"
#include "solarx/log.h"
#include "solarx/metrics.h"
#include "solarx/migrate.h"
#include "solarx/ownership.h"
#include "solarx/readiness.h"
#include "solarx/registry.h"
#include "solarx/status_http.h"

/* A batch PostgreSQL rejects this many times in a row (not transiently) is split (see
 * isolate_rejected). */
#define REJECTED_ATTEMPTS 3
/* Halves waiting during an isolation: one per level, so log2 of a batch's messages. */
#define ISOLATION_DEPTH 64
/* Exit status when SIGTERM's stop_timeout_s passes with a batch still unwritten (EX_TEMPFAIL:
 * nothing is lost, the batch's offsets were not committed and it is consumed again). */
#define EXIT_STOP_TIMEOUT 75
/* Exit status after a fatal librdkafka error (EX_SOFTWARE): systemd restarts the service. */
#define EXIT_KAFKA_FATAL EX_SOFTWARE

struct service {
    struct config *cfg;
    struct clock_zone *zone;
    struct decode_config decode;
    /* Decodes consumed messages on its worker thread; the loop applies them in order. */
    struct decode_pool *decoder;
    struct event *decoded_event; /* the decoder's eventfd */
    uint64_t fences;             /* drop_fenced_batches calls: an apply in progress stops */
    bool applying; /* apply_decoded_chunks runs (a flush it starts may come back to a join) */
    struct event_base *base;
    struct kafka_consumer *kc;
    struct flusher *flusher;
    struct registry *registry;      /* in use by the flusher */
    struct registry *next_registry; /* loaded by SIGHUP while a flush was running */
    struct archive_worker *archive; /* raw_archive_dir set: archives, then drops, old days */
    struct batch *pending;          /* filling */
    struct batch *inflight;         /* being written, or waiting to be retried */
    bool flushing;                  /* the flusher works on inflight */
    /* Partitions revoked but still assigned: consumption is held while what was consumed is
     * written through the loop; the partitions go when it is (end_revoke). */
    bool revoking;
    /* Isolation of what PostgreSQL rejects: inflight is a part of a rejected batch, the rest of
     * which waits in halves[] (the next one on top), in message order. */
    struct batch *halves[ISOLATION_DEPTH];
    int half_count;
    bool isolating;
    bool inflight_rejected;        /* inflight holds the dead letters of a rejected message */
    int rejected_failures;         /* consecutive non-transient failures of inflight */
    struct claims *claims;         /* the partitions this instance owns, and their epochs */
    char owner[320];               /* who claims: group.instance.id or host, and pid */
    char kafka_fatal[700];         /* the fatal librdkafka error, "" while there is none */
    struct timespec last_progress; /* last message consumed or flush committed */

    struct event *flush_timer;
    struct event *revoke_deadline;
    struct event *stop_timer;
    struct event *signals[3];
    struct db_session *db;     /* connects; its connections are the flusher's */
    struct flush_lanes *lanes; /* the flusher's raw lanes (flush_connections - 1 sessions) */

    bool stopping;
    int exit_code;
    struct metrics m;
    struct readiness *readiness; /* READY, watchdog, STATUS, /healthz's verdict */
    struct status_http *http;    /* /metrics and /healthz */
};

static void start_flush(struct service *s);
static void resume_applying(struct service *s);
static void next_half(struct service *s);
static bool isolate_rejected(struct service *s);
static void try_finish_stop(struct service *s);
static void reload_registry(struct service *s);
static void continue_revoke(struct service *s, enum flush_progress p);

static void note_progress(struct service *s)
{
    clock_gettime(CLOCK_MONOTONIC_COARSE, &s->last_progress);
}

/* ---- PostgreSQL connection ---------------------------------------------------------------- */

/* The flusher's output that libpq could not send yet goes when the socket takes more; the raw
 * lanes it gave work are watched. */
static void arm_pg_write(struct service *s)
{
    if (flusher_wants_write(s->flusher))
        db_session_want_write(s->db);
    flush_lanes_follow(s->lanes);
}

/* ---- flushing ----------------------------------------------------------------------------- */

static void log_flush(struct service *s, const struct flush_stats *st)
{
    log_info("event=flush_committed readings=%zu merged=%zu duplicates=%zu raw_home=%zu "
             "raw_solar=%zu raw_battery=%zu windows=%zu dead_letters=%zu offsets=%zu "
             "dimension_histories=%zu partitions_created=%zu partitions_dropped=%zu "
             "raw_expired=%zu ms=%.1f windows_cached=%zu",
             st->readings, st->accepted, st->duplicates, st->raw_inserted[READING_HOME],
             st->raw_inserted[READING_SOLAR], st->raw_inserted[READING_BATTERY],
             st->windows_written, st->dead_letters, st->offsets, st->dimension_versions_rewritten,
             st->partitions_created, st->partitions_dropped, st->raw_expired, st->elapsed_ms,
             st->windows_cached);
}

/* flush_max_readings, flush_max_bytes or flush_max_windows reached. */
static bool batch_full(const struct service *s, const struct batch *b)
{
    return batch_is_full(b, (size_t)s->cfg->flush_max_readings, (size_t)s->cfg->flush_max_bytes,
                         (size_t)s->cfg->flush_max_windows);
}

static void update_backpressure(struct service *s)
{
    if (!s->kc)
        return;
    bool full = batch_full(s, s->pending) || decode_pool_is_full(s->decoder);
    if (!s->stopping)
        kafka_consumer_hold(s->kc, full || s->revoking);
}

/* After a commit during an isolation: the next waiting half becomes inflight. */
static void next_half(struct service *s)
{
    if (!s->isolating)
        return;
    if (s->half_count == 0) {
        s->isolating = false;
        log_info("event=isolation_done msg=\"the rejected batch is written; consumption goes on\"");
        return;
    }
    struct batch *half = s->halves[--s->half_count];
    s->halves[s->half_count] = NULL;
    batch_absorb(s->inflight, half);
    batch_destroy(half);
}

static void log_rejected_messages(struct service *s, const struct batch *letters)
{
    for (size_t i = 0; i < letters->dead_count; i++) {
        const struct batch_dead_letter *d = &letters->dead[i];
        char quoted[1200];
        log_error("event=message_rejected topic=%s partition=%d offset=%lld reason=%s msg=%s",
                  s->cfg->topic[d->kind], (int)d->partition, (long long)d->offset, d->reason,
                  log_quote(d->error, quoted, sizeof(quoted)));
        s->m.dead_letters[DECODE_POSTGRES_REJECTED]++;
    }
}

/* The inflight batch failed for a reason PostgreSQL gives about its content. After
 * REJECTED_ATTEMPTS such failures in a row, it is split in halves by message (batch_split), the
 * first half is written next and the second waits; a part that fails again is split again, at
 * once; a single message that still fails becomes a postgres_rejected dead letter. Every part
 * that commits commits its offsets, so the stream goes on. Returns true when inflight changed
 * and should be written at once; false to retry it with backoff (too few failures yet, or
 * inflight is already the dead letters of one message). */
static bool isolate_rejected(struct service *s)
{
    s->rejected_failures++;
    if (s->inflight_rejected || batch_is_empty(s->inflight) ||
        (!s->isolating && s->rejected_failures < REJECTED_ATTEMPTS))
        return false; /* an empty inflight: the registry's writes alone are refused */
    int32_t window_seconds = s->cfg->window_minutes * 60;
    if (flusher_registry_dirty(s->flusher) && s->half_count < ISOLATION_DEPTH) {
        /* The registry's writes ride along with every flush until one commits: try them alone
         * first, so that a registry PostgreSQL refuses is never blamed on the messages. */
        struct batch *rest = batch_new(window_seconds, s->zone);
        batch_absorb(rest, s->inflight);
        s->halves[s->half_count++] = rest; /* owned by halves[] now */
        size_t messages = batch_message_count(rest);
        log_warn("event=flush_isolating messages=%zu first=registry second=%zu", messages,
                 messages);
        s->isolating = true;
        s->rejected_failures = 0;
        return true;
    }
    struct batch *first = batch_new(window_seconds, s->zone);
    struct batch *second = batch_new(window_seconds, s->zone);
    if (s->half_count < ISOLATION_DEPTH && batch_split(s->inflight, first, second)) {
        log_warn("event=flush_isolating messages=%zu first=%zu second=%zu",
                 batch_message_count(s->inflight), batch_message_count(first),
                 batch_message_count(second));
        s->halves[s->half_count++] = second; /* owned by halves[] now */
        second = NULL;
    } else {
        char error[1100];
        snprintf(error, sizeof(error), "postgres_rejected: sqlstate %s: %s",
                 flusher_sqlstate(s->flusher), flusher_error(s->flusher));
        batch_to_dead_letters(s->inflight, first, decode_error_name(DECODE_POSTGRES_REJECTED),
                              error);
        log_rejected_messages(s, first);
        s->inflight_rejected = true;
    }
    batch_clear(s->inflight);
    batch_absorb(s->inflight, first);
    batch_destroy(first);
    batch_destroy(second);
    s->isolating = true;
    s->rejected_failures = 0;
    return true;
}

/* A committed flush moved these partitions' stored offsets: a rewind would start there. */
static void note_stored_offsets(struct service *s, const struct batch *b)
{
    note_progress(s);
    for (const struct batch_offset *o = b->offsets; o; o = o->hh.next)
        claims_note_stored(s->claims, o->id.kind, o->id.partition, o->next_offset);
}

static void rewind_partition(void *ctx, int kind, int32_t partition, int64_t epoch, int64_t resume)
{
    struct service *s = ctx;
    (void)epoch;
    if (resume >= 0 && kafka_consumer_seek(s->kc, (enum reading_kind)kind, partition, resume))
        log_info("event=partition_rewound topic=%s partition=%d offset=%lld", s->cfg->topic[kind],
                 (int)partition, (long long)resume);
}

/* Another instance claimed a partition of the batch (this one is a zombie for it, or lost it):
 * the flush was rolled back and is not retried, so that this instance never moves that
 * partition's offset. Both batches go; the partitions still held are consumed again from where
 * their stored offsets are (or from the first message of this assignment), so none of their
 * readings is lost; the lost ones are their new owner's. Then the group is asked for the
 * assignment anew: a zombie learns what it still owns, and an owner whose claim was overtaken
 * (claimed late by a zombie) claims again, instead of being fenced at every flush. */
static void drop_fenced_batches(struct service *s)
{
    char quoted[1200];
    s->m.flush_failures++;
    log_quote(flusher_error(s->flusher), quoted, sizeof(quoted));
    log_warn("event=flush_fenced readings=%zu dead_letters=%zu msg=%s action=dropped",
             s->inflight->reading_count + s->pending->reading_count,
             s->inflight->dead_count + s->pending->dead_count, quoted);
    batch_clear(s->inflight);
    batch_clear(s->pending);
    decode_pool_discard(s->decoder); /* consumed later than pending: rewound too */
    s->fences++;
    while (s->half_count > 0) { /* an isolation in progress: its halves were consumed too */
        batch_destroy(s->halves[--s->half_count]);
        s->halves[s->half_count] = NULL;
    }
    s->isolating = false;
    s->inflight_rejected = false;
    s->rejected_failures = 0;
    if (s->kc) {
        claims_each(s->claims, rewind_partition, s);
        if (!s->revoking && !s->stopping)       /* a revoke ends in a new assignment anyway */
            (void)kafka_consumer_rejoin(s->kc); /* logged when refused */
    }
    /* The session closes the connection, which rolls the transaction back. */
    db_session_retry(s->db, DB_RETRY_REFUSED);
}

static void flush_finished(struct service *s, enum flush_progress p)
{
    s->flushing = false;
    db_session_work_end(s->db);
    flush_lanes_flush_ended(s->lanes, p == FLUSH_COMMITTED);
    if (p == FLUSH_COMMITTED) {
        const struct flush_stats *st = flusher_stats(s->flusher);
        s->m.flushes++;
        s->m.last_flush_unix = (int64_t)time(NULL);
        s->m.duplicates += st->duplicates;
        for (int k = 0; k < READING_KIND_COUNT; k++) {
            s->m.merged[k] += st->merged[k];
            s->m.raw_rows[k] += st->raw_inserted[k];
        }
        metrics_observe_flush(&s->m, st->elapsed_ms, st->readings);
        log_flush(s, st);
        if (s->archive)
            archive_worker_request(s->archive, flusher_raw_horizon(s->flusher));
        note_stored_offsets(s, s->inflight);
        /* Only now may Kafka learn of these offsets (P4). */
        if (s->kc)
            kafka_consumer_commit(s->kc, s->inflight, s->stopping || s->revoking);
        batch_clear(s->inflight);
        db_session_succeeded(s->db);
        s->rejected_failures = 0;
        s->inflight_rejected = false;
        next_half(s);
    } else if (p == FLUSH_FENCED) {
        drop_fenced_batches(s);
    } else if (flusher_stale(s->flusher)) {
        /* Another writer wrote windows this one held: the retry reads them again, at once. */
        s->m.flush_failures++;
        log_info("event=flush_retried readings=%zu reason=window_cache_stale retry=at_once",
                 s->inflight->reading_count);
        db_session_retry(s->db, DB_RETRY_AT_ONCE);
    } else {
        char quoted[1200];
        enum flush_failure failure = flusher_failure(s->flusher);
        size_t readings = s->inflight->reading_count; /* before an isolation changes inflight */
        s->m.flush_failures++;
        s->m.postgres_errors++;
        log_quote(flusher_error(s->flusher), quoted, sizeof(quoted));
        bool isolated = failure == FLUSH_FAILURE_REJECTED && isolate_rejected(s);
        log_error("event=flush_failed readings=%zu sqlstate=%s failure=%s msg=%s retry=%s",
                  readings, flusher_sqlstate(s->flusher)[0] ? flusher_sqlstate(s->flusher) : "none",
                  flush_failure_name(failure), quoted, isolated ? "isolating" : "backoff");
        /* A batch that keeps failing on fresh connections is retried ever more slowly (to 30 s):
         * the backoff is reset by the next commit, not by the next connection. The next part of
         * an isolation goes at once, on a new connection. */
        db_session_retry(s->db, isolated ? DB_RETRY_AT_ONCE : DB_RETRY_FAILED);
    }
    continue_revoke(s, p);
    update_backpressure(s);
    if (s->stopping)
        try_finish_stop(s);
}

/* Starts writing the inflight batch (or the pending one, when nothing waits) if possible. */
static void start_flush(struct service *s)
{
    if (s->flushing || !flusher_conn(s->flusher))
        return;
    if (s->next_registry) {
        registry_destroy(s->registry);
        s->registry = s->next_registry;
        s->next_registry = NULL;
        flusher_set_registry(s->flusher, s->registry);
    }
    if (s->isolating) {
        /* inflight is the next part (or, empty, the registry's writes alone): in order. */
    } else if (batch_is_empty(s->inflight)) {
        if (batch_is_empty(s->pending) && !flusher_registry_dirty(s->flusher))
            return;
        struct batch *t = s->inflight;
        s->inflight = s->pending;
        s->pending = t;
    } else if (!batch_is_empty(s->pending) &&
               batch_size(s->inflight) + batch_size(s->pending) <=
                   2 * (size_t)s->cfg->flush_max_readings &&
               batch_bytes(s->inflight) + batch_bytes(s->pending) <=
                   2 * (size_t)s->cfg->flush_max_bytes &&
               batch_window_count(s->inflight) + batch_window_count(s->pending) <=
                   2 * (size_t)s->cfg->flush_max_windows) {
        batch_absorb(s->inflight, s->pending); /* a retry takes what arrived meanwhile */
    }
    update_backpressure(s);
    if (!ownership_claim_pending(s->cfg, s->owner, s->claims))
        return; /* its offsets could not be stored: the next timer tries again */
    enum flush_progress p = flusher_start(s->flusher, s->inflight);
    if (p == FLUSH_FAILED) {
        flush_finished(s, p);
        return;
    }
    s->flushing = true;
    if (!db_session_work_begin(s->db, FLUSH_DEADLINE_MS)) { /* not connected: cannot be */
        flush_finished(s, flusher_abort(s->flusher, "the connection is not established"));
        return;
    }
    arm_pg_write(s);
    resume_applying(s); /* the chunks decoded while pending was full go into the new pending */
}

/* The flush in progress, told of its socket's readiness. */
static void continue_flush(struct service *s)
{
    enum flush_progress p = flusher_on_io(s->flusher);
    if (p == FLUSH_BUSY) {
        arm_pg_write(s);
        return;
    }
    flush_finished(s, p);
    if (p == FLUSH_COMMITTED && !s->stopping && (s->isolating || batch_full(s, s->pending)))
        start_flush(s); /* a full batch, or the next part of an isolation, does not wait */
}

/* A socket of the flush (its own connection's or a raw lane's) is ready: the flush reads it. */
static void on_flush_socket(void *owner)
{
    struct service *s = owner;
    if (s->flushing)
        continue_flush(s);
}

/* The flush passed its deadline on one of its connections. */
static void on_flush_deadline(void *owner)
{
    struct service *s = owner;
    if (s->flushing)
        flush_finished(s, flusher_abort(s->flusher, "no answer from PostgreSQL within the "
                                                    "flush deadline"));
}

static void on_db_event(void *owner, const struct db_event *ev)
{
    struct service *s = owner;
    switch (ev->kind) {
    case DB_EVENT_CONNECT_FAILED:
        s->m.postgres_errors++;
        return;
    case DB_EVENT_CONNECTED:
        /* Lent to the flusher; the session keeps it, and closes it when a flush fails. */
        if (!flusher_attach(s->flusher, ev->conn)) {
            log_warn("event=postgres_connect_failed msg=\"%s\"", flusher_error(s->flusher));
            db_session_retry(s->db, DB_RETRY_FAILED);
            return;
        }
        start_flush(s);
        return;
    case DB_EVENT_LOST: /* between flushes (logged by the session, which reconnects) */
        flusher_detach(s->flusher);
        s->m.postgres_errors++;
        return;
    case DB_EVENT_READABLE:
    case DB_EVENT_WRITABLE:
        on_flush_socket(s);
        return;
    case DB_EVENT_DEADLINE:
        on_flush_deadline(s);
        return;
    default: /* DB_EVENT_NONE: never told (db_session_handler) */
        return;
    }
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    struct service *s = arg;
    if (s->kc)
        kafka_consumer_check_fatal(s->kc); /* also while held, when no message is taken */
    start_flush(s);
}

/* ---- Kafka -------------------------------------------------------------------------------- */

/* Files one decoded message into the pending batch: its readings, or a dead letter; then its
 * offset. A full batch starts a flush. */
static void apply_decoded(struct service *s, const struct decode_pool_result *r)
{
    enum decode_error e = r->error;
    enum reading_kind kind = r->kind;
    if (e == DECODE_OK) {
        for (size_t i = 0; i < r->reading_count; i++)
            batch_add_reading(s->pending, &r->readings[i], r->partition, r->offset);
        s->m.readings[kind] += r->reading_count;
    } else if (e == DECODE_TOO_LARGE) {
        batch_add_truncated_dead_letter(s->pending, kind, r->partition, r->offset, r->key,
                                        r->key_len, r->payload, r->len, DECODE_TOO_LARGE_KEEP_BYTES,
                                        decode_error_name(e), r->reason);
        s->m.dead_letters[e]++;
        log_warn("event=dead_letter topic=%s partition=%d offset=%lld reason=%s bytes=%zu",
                 s->cfg->topic[kind], (int)r->partition, (long long)r->offset, decode_error_name(e),
                 r->len);
    } else {
        batch_add_dead_letter(s->pending, kind, r->partition, r->offset, r->key, r->key_len,
                              r->payload, r->len, decode_error_name(e), r->reason);
        s->m.dead_letters[e]++;
        log_debug("event=dead_letter topic=%s partition=%d offset=%lld reason=%s",
                  s->cfg->topic[kind], (int)r->partition, (long long)r->offset,
                  decode_error_name(e));
    }
    batch_note_offset(s->pending, kind, r->partition, r->offset);
    if (batch_full(s, s->pending)) {
        start_flush(s);
        update_backpressure(s);
    }
}

/* Applies decoded chunks, oldest first, while the oldest is decoded; wait: until none is left
 * submitted (decoding is CPU work only: a chunk takes a few ms). A fence during an apply drops
 * the rest (drop_fenced_batches discarded it). */
static void apply_decoded_chunks(struct service *s, bool wait)
{
    struct decode_pool_chunk *c;
    if (s->applying)
        return; /* the apply below us goes on, in order */
    s->applying = true;
    /* A full pending batch takes no further chunk (they wait, decoded, in the pool, and hold
     * consumption) until start_flush has made it the inflight one: so a batch passes its
     * bounds by at most the rest of the chunk that filled it. A join takes everything. */
    while ((wait || !batch_full(s, s->pending)) && (c = decode_pool_take(s->decoder, wait))) {
        uint64_t fences = s->fences;
        size_t n = decode_pool_chunk_count(c);
        for (size_t i = 0; i < n && s->fences == fences; i++) {
            struct decode_pool_result r;
            decode_pool_chunk_result(c, i, &r);
            apply_decoded(s, &r);
        }
        decode_pool_release(s->decoder, c);
    }
    s->applying = false;
}

/* After start_flush emptied the pending batch: the chunks that waited for room are applied, and
 * the staged one handed on. */
static void resume_applying(struct service *s)
{
    apply_decoded_chunks(s, false);
    if (!s->stopping)
        (void)decode_pool_submit(s->decoder); /* refused: still full, the next chunk frees one */
    update_backpressure(s);
}

/* Everything consumed is applied to the batches: the join before a revoke's flush and a stop. */
static void join_decoding(struct service *s)
{
    while (!s->applying && !decode_pool_idle(s->decoder)) {
        (void)decode_pool_submit(s->decoder); /* refused when full: the wait below makes room */
        apply_decoded_chunks(s, true);
    }
}

/* The decoder finished a chunk: apply what is decoded in order, hand on what waited for room. */
static void on_decoded(evutil_socket_t fd, short what, void *arg)
{
    struct service *s = arg;
    decode_pool_ack(s->decoder);
    apply_decoded_chunks(s, false);
    if (!s->stopping)
        (void)decode_pool_submit(s->decoder); /* refused: still full, the next chunk frees one */
    update_backpressure(s);
}

/* The end of a Kafka drain turn: what was staged goes to the decoder (or waits for room, with
 * consumption held). */
static void on_drained(void *opaque)
{
    struct service *s = opaque;
    if (!decode_pool_submit(s->decoder))
        update_backpressure(s);
}

/* A message is copied to the decoder's staging chunk (librdkafka's message must not outlive this
 * callback, and keeping it would pin its whole fetch buffer); decoded on the worker thread, it
 * is applied by apply_decoded, in consumption order. */
static void on_message(void *opaque, enum reading_kind kind, const rd_kafka_message_t *msg)
{
    struct service *s = opaque;
    if (s->stopping)
        return; /* not noted: consumed again after the restart */
    s->m.consumed[kind]++;
    note_progress(s);
    claims_note_consumed(s->claims, kind, msg->partition, msg->offset);
    struct decode_pool_message m = {
        .kind = kind,
        .partition = msg->partition,
        .offset = msg->offset,
        .key = msg->key,
        .key_len = msg->key_len,
        .payload = msg->payload,
        .len = msg->len,
        .now = (int64_t)time(NULL),
    };
    if (decode_pool_staged_full(s->decoder) && !decode_pool_submit(s->decoder)) {
        /* Held, yet delivered (a paused consumer serves what it had queued): the oldest chunk is
         * applied to make room. */
        apply_decoded_chunks(s, true);
        (void)decode_pool_submit(s->decoder);
    }
    if (!decode_pool_stage(s->decoder, &m)) {
        /* Out of memory for the copy: decode it here, after everything consumed before it. */
        struct reading out[DECODE_MAX_READINGS];
        char reason[DECODE_REASON_SIZE] = "";
        struct decode_pool_result r = {.kind = kind,
                                       .partition = msg->partition,
                                       .offset = msg->offset,
                                       .key = msg->key,
                                       .key_len = msg->key_len,
                                       .payload = msg->payload ? msg->payload : "",
                                       .len = msg->len,
                                       .readings = out,
                                       .reason = reason};
        join_decoding(s);
        r.error = decode_pool_decode_one(
            &(struct decode_pool_settings){.max_message_bytes = (size_t)s->cfg->max_message_bytes,
                                           .decode = s->decode},
            &m, out, &r.reading_count, reason, sizeof(reason));
        apply_decoded(s, &r);
        return;
    }
    if (decode_pool_staged_full(s->decoder) && !decode_pool_submit(s->decoder))
        update_backpressure(s); /* the bound: held until a chunk is applied (on_decoded) */
}

/* Claims the assigned partitions (fencing every earlier owner's flushes) and starts each where
 * PostgreSQL's offset says, when it has one (P4). PostgreSQL unavailable: Kafka's committed
 * offsets, which never run ahead of PostgreSQL's (resuming there only redelivers readings the
 * merges ignore), and the claims are made before the first flush. */
static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *partitions)
{
    struct service *s = opaque;
    ownership_claim_assigned(s->cfg, s->owner, s->claims, partitions);
    note_progress(s);
    readiness_mark_ready(s->readiness);
}

/* Nothing consumed waits to be written. */
static bool all_written(const struct service *s)
{
    return !s->flushing && batch_is_empty(s->inflight) && batch_is_empty(s->pending) &&
           s->half_count == 0 && decode_pool_idle(s->decoder);
}

/* The revoke deferred ends: the partitions go (on_unassigned releases their claims). */
static void end_revoke(struct service *s)
{
    if (s->revoking && s->kc)
        kafka_consumer_end_revoke(s->kc);
}

/* After a flush during a revoke: what is left is written next, while flushes commit; the
 * partitions go once everything is written, or at the first flush that did not commit (as the
 * old owner's last flush, it is fenced when retried: the new owner consumes those readings
 * again from the stored offsets). */
static void continue_revoke(struct service *s, enum flush_progress p)
{
    if (!s->revoking)
        return;
    join_decoding(s); /* held, yet a paused consumer may have delivered what it had queued */
    if (p == FLUSH_COMMITTED && !all_written(s))
        start_flush(s);
    if (!s->flushing)
        end_revoke(s);
}

/* A revoke waits no longer than one flush may take: the group's rebalance waits for it. */
static void on_revoke_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct service *s = arg;
    log_warn("event=revoke_deadline ms=%d msg=\"the revoked partitions go with data unwritten; "
             "their next owner consumes it again\"",
             FLUSH_DEADLINE_MS);
    if (s->flushing)
        flush_finished(s, flusher_abort(s->flusher, "the revoke's deadline passed"));
    end_revoke(s);
}

/* Before partitions go, what was consumed (from them and the others) is written and its offsets
 * stored under their claims, so that the next owner starts where this one stopped. Through the
 * loop, not a nested wait, so that the watchdog, /healthz and the timers go on: consumption is
 * held and the partitions stay assigned until the flushes end (continue_revoke). Lost partitions
 * go at once: another instance may own them already. */
static bool on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *partitions, bool lost)
{
    struct service *s = opaque;
    if (lost) {
        log_warn("event=partitions_lost count=%d msg=\"their claims are released: a flush with "
                 "their readings is fenced and dropped, the partitions still held are consumed "
                 "again\"",
                 partitions->cnt);
        return true;
    }
    join_decoding(s); /* what was consumed from them is in the batches before they are written */
    if (all_written(s) || (!s->flushing && !flusher_conn(s->flusher)))
        return true; /* nothing to write, or PostgreSQL is out: nothing written before they go */
    s->revoking = true;
    update_backpressure(s);
    struct timeval deadline = evtime_from_ms(FLUSH_DEADLINE_MS);
    evtimer_add(s->revoke_deadline, &deadline);
    if (!s->flushing)
        start_flush(s); /* a flush that fails at once ends the revoke (continue_revoke) */
    if (!s->flushing)
        end_revoke(s);
    return !s->revoking;
}

/* The revoked partitions are gone: their claims with them, and consumption resumes. */
static void on_unassigned(void *opaque, const rd_kafka_topic_partition_list_t *partitions)
{
    struct service *s = opaque;
    ownership_release(s->cfg, s->claims, partitions);
    if (!s->revoking)
        return;
    s->revoking = false;
    evtimer_del(s->revoke_deadline);
    update_backpressure(s);
}

/* ---- signals and stop --------------------------------------------------------------------- */

static void try_finish_stop(struct service *s)
{
    if (s->flushing)
        return; /* flush_finished comes back here */
    if (!batch_is_empty(s->inflight) || !batch_is_empty(s->pending) || s->half_count > 0) {
        if (flusher_conn(s->flusher))
            start_flush(s);
        else
            log_info("event=stop_waiting msg=\"PostgreSQL is unavailable; waiting to write the "
                     "last batch (signal again to exit without it)\"");
        return;
    }
    log_info("event=stopping consumed=%llu merged=%llu duplicates=%llu dead_letters=%llu",
             metrics_sum(s->m.consumed, READING_KIND_COUNT),
             metrics_sum(s->m.merged, READING_KIND_COUNT), (unsigned long long)s->m.duplicates,
             metrics_sum(s->m.dead_letters, DECODE_ERROR_COUNT));
    s->exit_code = s->kafka_fatal[0] ? EXIT_KAFKA_FATAL : 0;
    event_base_loopexit(s->base, NULL);
}

/* Loads the registry files; NULL with errstr when one is broken. Entries without effective_from
 * take the load time. */
static struct registry *load_registry(struct service *s, char *errstr, size_t errstr_size)
{
    return registry_load_configured(s->cfg, s->zone, (int64_t)time(NULL), errstr, errstr_size);
}

/* SIGHUP: parse, validate, swap; a broken file leaves the registry in use as it is. */
static void reload_registry(struct service *s)
{
    char err[1024];
    struct registry *fresh = load_registry(s, err, sizeof(err));
    if (!fresh) {
        char quoted[1100];
        log_error("event=registry_reload_failed msg=%s kept=previous",
                  log_quote(err, quoted, sizeof(quoted)));
        return;
    }
    /* Against what the next flush would apply: a pending reload, else the registry in use. */
    const struct registry *current = s->next_registry ? s->next_registry : s->registry;
    if (current && registry_equal(current, fresh)) {
        registry_destroy(fresh);
        log_info("event=registry_unchanged");
        return;
    }
    registry_destroy(s->next_registry);
    s->next_registry = fresh; /* taken by the next flush (start_flush) */
    log_info("event=registry_reloaded homes=%zu panels=%zu", registry_home_count(fresh),
             registry_panel_count(fresh));
    start_flush(s);
}

/* SIGTERM, or a fatal Kafka error: no more consumption; the last batches are flushed. */
static void begin_stop(struct service *s)
{
    readiness_mark_stopping(s->readiness);
    s->stopping = true;
    struct timeval limit = {s->cfg->stop_timeout_s, 0};
    evtimer_add(s->stop_timer, &limit);
    if (s->kc)
        kafka_consumer_pause(s->kc);
    join_decoding(s); /* what was consumed is applied, and so written before the exit */
    try_finish_stop(s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct service *s = arg;
    if (sig == SIGHUP) {
        char err[1024];
        struct config *fresh = config_load(s->cfg->path, NULL, err, sizeof(err));
        if (!fresh) {
            log_error("event=reload_failed msg=\"%s\" kept=previous", err);
            return;
        }
        /* What can change without a restart; the rest needs one. */
        s->cfg->log_level = fresh->log_level;
        s->cfg->flush_interval_ms = fresh->flush_interval_ms;
        s->cfg->flush_max_readings = fresh->flush_max_readings;
        s->cfg->flush_max_bytes = fresh->flush_max_bytes;
        s->cfg->flush_max_windows = fresh->flush_max_windows;
        log_set_level(s->cfg->log_level);
        config_destroy(fresh);
        struct timeval tv = evtime_from_ms(s->cfg->flush_interval_ms);
        event_add(s->flush_timer, &tv);
        log_info("event=reloaded log_level=%s flush_interval_ms=%d flush_max_readings=%d "
                 "flush_max_bytes=%d flush_max_windows=%d",
                 config_log_level_name(s->cfg->log_level), s->cfg->flush_interval_ms,
                 s->cfg->flush_max_readings, s->cfg->flush_max_bytes, s->cfg->flush_max_windows);
        reload_registry(s);
        return;
    }
    if (s->stopping) {
        log_warn("event=exit_now msg=\"second signal: exiting without the final flush; the "
                 "unwritten readings are consumed again after a restart\"");
        s->exit_code = 1;
        event_base_loopbreak(s->base);
        return;
    }
    log_info("event=stop_requested signal=%s stop_timeout_s=%d", strsignal((int)sig),
             s->cfg->stop_timeout_s);
    begin_stop(s);
}

/* The consumer is dead (a fenced static member, an authentication failure...): /healthz says why,
 * what was consumed is flushed, and the process exits EXIT_KAFKA_FATAL for systemd to restart
 * it. */
static void on_kafka_fatal(void *opaque, const char *reason)
{
    struct service *s = opaque;
    snprintf(s->kafka_fatal, sizeof(s->kafka_fatal), "%s", reason);
    log_error("event=unhealthy reason=kafka_fatal exit_status=%d msg=\"flushing what was "
              "consumed, then exiting\"",
              EXIT_KAFKA_FATAL);
    if (!s->stopping)
        begin_stop(s);
}

/* SIGTERM's stop_timeout_s passed with a batch still unwritten (PostgreSQL down, or refusing it
 * without end): exit without it. Its offsets were never committed, so it is consumed again. */
static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct service *s = arg;
    log_error("event=stop_timeout stop_timeout_s=%d unwritten_readings=%zu exit_status=%d "
              "msg=\"exiting without the last batch; its offsets are not committed, it is "
              "consumed again after a restart\"",
              s->cfg->stop_timeout_s, s->inflight->reading_count + s->pending->reading_count,
              s->kafka_fatal[0] ? EXIT_KAFKA_FATAL : EXIT_STOP_TIMEOUT);
    s->exit_code = s->kafka_fatal[0] ? EXIT_KAFKA_FATAL : EXIT_STOP_TIMEOUT;
    event_base_loopbreak(s->base);
}

/* ---- what readiness and the HTTP endpoints see ------------------------------------------- */

static void observe_service(void *ctx, struct readiness_state *out)
{
    struct service *s = ctx;
    if (s->kc) /* a counter of the consumer's, copied for /metrics */
        s->m.fetch_nudges = kafka_consumer_fetch_nudges(s->kc);
    *out = (struct readiness_state){
        .kafka_fatal = s->kafka_fatal[0] ? s->kafka_fatal : NULL,
        .stopping = s->stopping,
        .postgres_connected = flusher_conn(s->flusher) != NULL,
        .paused = s->kc && kafka_consumer_held(s->kc),
        .assigned_partitions = s->kc ? kafka_consumer_assigned(s->kc) : 0,
        .pending_readings = s->pending->reading_count + s->inflight->reading_count,
        .open_windows = s->pending->window_count + s->inflight->window_count,
        .last_progress = s->last_progress,
    };
}

static struct metrics_lag *service_lags(void *ctx, size_t *count)
{
    struct service *s = ctx;
    return s->kc ? kafka_consumer_lags(s->kc, count) : NULL;
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* The decoder's worker thread, and its wake-up on the loop. Returns false with errstr. */
static bool start_decoder(struct service *s, char *errstr, size_t errstr_size)
{
    const struct decode_pool_settings settings = {
        .threads = 1,
        .chunk_messages = DECODE_POOL_CHUNK_MESSAGES,
        .chunk_bytes = DECODE_POOL_CHUNK_BYTES,
        .chunks_in_flight = DECODE_POOL_CHUNKS_IN_FLIGHT,
        .max_message_bytes = (size_t)s->cfg->max_message_bytes,
        .decode = s->decode,
    };
    s->decoder = decode_pool_new(&settings, errstr, errstr_size);
    if (!s->decoder)
        return false;
    s->decoded_event =
        event_new(s->base, decode_pool_fd(s->decoder), EV_READ | EV_PERSIST, on_decoded, s);
    if (!s->decoded_event || event_add(s->decoded_event, NULL) != 0) {
        snprintf(errstr, errstr_size, "decode_pool: cannot register its loop event");
        return false;
    }
    return true;
}

int service_run(struct config *cfg, char *errstr, size_t errstr_size)
{
    struct service s = {.cfg = cfg, .exit_code = 1};
    int rc = 1;
    static const int signal_numbers[3] = {SIGTERM, SIGINT, SIGHUP};

    signal(SIGPIPE, SIG_IGN);
    s.zone = clock_zone_new(cfg->source_timezone, errstr, errstr_size);
    if (!s.zone) {
        rc = EX_CONFIG;
        goto out;
    }
    s.decode = (struct decode_config){
        .default_home_id = cfg->default_home_id,
        .default_panel_id = cfg->default_panel_id,
        .zone = s.zone,
        .max_future_seconds = cfg->max_future_seconds,
    };
    s.registry = load_registry(&s, errstr, errstr_size);
    if (!s.registry) {
        rc = EX_CONFIG;
        goto out;
    }
    if (cfg->migrate_on_start && migrate_at_start(cfg, errstr, errstr_size) < 0)
        goto out;

    s.base = event_base_new();
    s.pending = batch_new(cfg->window_minutes * 60, s.zone);
    s.inflight = batch_new(cfg->window_minutes * 60, s.zone);
    s.flusher = flusher_new(cfg, s.zone, config_kafka_get(cfg, "group.id"));
    s.claims = claims_new();
    s.db = s.base ? db_session_new(s.base, cfg, on_db_event, &s) : NULL;
    const struct flush_lanes_handlers lane_handlers = {
        .on_ready = on_flush_socket, .on_deadline = on_flush_deadline, .owner = &s};
    s.lanes = s.db && s.flusher ? flush_lanes_new(s.base, cfg, s.flusher, &lane_handlers) : NULL;
    if (!s.base || !s.flusher || !s.claims || !s.db || !s.lanes) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    flusher_set_registry(s.flusher, s.registry);
    flusher_set_claims(s.flusher, s.claims);
    note_progress(&s);
    if (!start_decoder(&s, errstr, errstr_size))
        goto out;
    if (cfg->raw_archive_dir[0] && !(s.archive = archive_worker_start(cfg, errstr, errstr_size))) {
        rc = EX_CONFIG;
        goto out;
    }
    s.flush_timer = event_new(s.base, -1, EV_PERSIST, on_flush_timer, &s);
    s.revoke_deadline = evtimer_new(s.base, on_revoke_deadline, &s);
    s.stop_timer = evtimer_new(s.base, on_stop_timeout, &s);
    for (int i = 0; i < 3; i++) {
        s.signals[i] = evsignal_new(s.base, signal_numbers[i], on_signal, &s);
        event_add(s.signals[i], NULL);
    }
    struct timeval flush_tv = evtime_from_ms(cfg->flush_interval_ms);
    event_add(s.flush_timer, &flush_tv);
    const char *topics[READING_KIND_COUNT];
    for (int k = 0; k < READING_KIND_COUNT; k++)
        topics[k] = cfg->topic[k];
    const struct readiness_view view = {.metrics = &s.m,
                                        .topics = topics,
                                        .stall_timeout_s = cfg->stall_timeout_s,
                                        .ctx = &s,
                                        .observe = observe_service,
                                        .lags = service_lags};
    s.readiness = readiness_new(s.base, &view, errstr, errstr_size);
    if (!s.readiness)
        goto out;
    db_session_start(s.db);
    flush_lanes_start(s.lanes);

    s.http = status_http_new(s.base, cfg->path, cfg->http_listen, &view, s.readiness, errstr,
                             errstr_size);
    if (!s.http) {
        rc = EX_CONFIG;
        goto out;
    }
    struct kafka_handlers handlers = {.on_message = on_message,
                                      .on_assign = on_assign,
                                      .on_revoke = on_revoke,
                                      .on_unassigned = on_unassigned,
                                      .on_drained = on_drained,
                                      .opaque = &s,
                                      .on_fatal = on_kafka_fatal};
    s.kc = kafka_consumer_new(cfg, s.base, &handlers, errstr, errstr_size);
    if (!s.kc)
        goto out;
    ownership_label(kafka_consumer_instance_id(s.kc), s.owner, sizeof(s.owner));
    log_info("event=started version=%s topics=%s,%s,%s group=%s window_minutes=%d zone=%s",
             SOLARX_VERSION, cfg->topic[READING_HOME], cfg->topic[READING_SOLAR],
             cfg->topic[READING_BATTERY], config_kafka_get(cfg, "group.id"), cfg->window_minutes,
             cfg->source_timezone);

    event_base_dispatch(s.base);
    rc = s.exit_code;

out:
    if (s.kc) {
        if (rc == 0)
            kafka_consumer_close(s.kc); /* leaves the group; revoke finds nothing pending */
        else
            kafka_consumer_abandon(s.kc); /* nothing more is flushed or committed */
    }
    status_http_destroy(s.http);
    for (int i = 0; i < 3; i++)
        if (s.signals[i])
            event_free(s.signals[i]);
    db_session_destroy(s.db);     /* closes the connection it lent the flusher */
    flush_lanes_destroy(s.lanes); /* ... and the raw lanes theirs */
    if (s.flush_timer)
        event_free(s.flush_timer);
    if (s.revoke_deadline)
        event_free(s.revoke_deadline);
    if (s.stop_timer)
        event_free(s.stop_timer);
    for (int i = 0; i < s.half_count; i++)
        batch_destroy(s.halves[i]);
    readiness_destroy(s.readiness);
    if (s.decoded_event)
        event_free(s.decoded_event);
    decode_pool_destroy(s.decoder); /* after the consumer: its close may apply (on_revoke) */
    archive_worker_stop(s.archive);
    flusher_destroy(s.flusher);
    claims_destroy(s.claims);
    registry_destroy(s.registry);
    registry_destroy(s.next_registry);
    batch_destroy(s.pending);
    batch_destroy(s.inflight);
    if (s.base)
        event_base_free(s.base);
    clock_zone_destroy(s.zone);
    config_destroy(cfg);
    return rc;
}
