/* ingest and replay: decode -> batch -> the flush transaction, driven to completion one batch
 * at a time (no event loop: a one-shot command), then exit. */
#include "solarx/backfill.h"

#include <dirent.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "solarx/archive.h"
#include "solarx/batch.h"
#include "solarx/clock.h"
#include "solarx/db.h"
#include "solarx/decode.h"
#include "solarx/dumpname.h"
#include "solarx/flush.h"
#include "solarx/kafka.h"
#include "solarx/log.h"
#include "solarx/progress.h"
#include "solarx/registry.h"

#define FLUSH_ATTEMPTS 6
#define REJECTED_ATTEMPTS 3
#define REPLAY_IDLE_TIMEOUT_MS 60000

/* Where decoded messages go: a batch, flushed when full and at the end. */
struct sink {
    const struct config *cfg;
    struct clock_zone *zone;
    struct decode_config decode;
    struct flusher *flusher;
    PGconn *conn; /* lent to the flusher; closed here, after a flush that did not commit too */
    PGconn *lanes[FLUSH_LANES_MAX]; /* the flusher's raw lanes (flush_connections - 1), the same */
    struct batch *batch;
    struct registry *registry; /* the flusher's, from the same files as `run` */
    struct archiver *archiver; /* raw_archive_dir set: archives, then drops, old partitions */
    bool flush_lines_debug;    /* a live progress line is on the terminal */
    struct backfill_result *result;
};

/* Closes the flusher's connection: after a flush that did not commit, this rolls its
 * transaction back (and releases its locks) at once. */
static void sink_disconnect(struct sink *k)
{
    if (k->flusher)
        flusher_detach(k->flusher);
    if (k->conn)
        PQfinish(k->conn);
    k->conn = NULL;
    for (int i = 0; i < FLUSH_LANES_MAX; i++) {
        if (k->flusher)
            flusher_detach_lane(k->flusher, i);
        if (k->lanes[i])
            PQfinish(k->lanes[i]);
        k->lanes[i] = NULL;
    }
}

/* The raw lanes: a lane that cannot connect is left out (the flusher writes its share itself). */
static void sink_connect_lanes(struct sink *k)
{
    for (int i = 0; i < k->cfg->flush_connections - 1 && i < FLUSH_LANES_MAX; i++) {
        char errstr[512];
        k->lanes[i] = db_connect_blocking(k->cfg, errstr, sizeof(errstr));
        if (k->lanes[i] && flusher_attach_lane(k->flusher, i, k->lanes[i]))
            continue;
        log_warn("event=postgres_connect_failed connection=raw_lane_%d msg=\"%s\"", i + 1,
                 k->lanes[i] ? flusher_error(k->flusher) : errstr);
        if (k->lanes[i])
            PQfinish(k->lanes[i]);
        k->lanes[i] = NULL;
    }
}

static void sink_close(struct sink *k)
{
    sink_disconnect(k);
    flusher_destroy(k->flusher);
    archiver_destroy(k->archiver);
    registry_destroy(k->registry);
    batch_destroy(k->batch);
    clock_zone_destroy(k->zone);
}

/* A new connection for the flusher, the previous one closed. */
static bool sink_connect(struct sink *k, char *errstr, size_t errstr_size)
{
    sink_disconnect(k);
    k->conn = db_connect_blocking(k->cfg, errstr, errstr_size);
    if (!k->conn)
        return false;
    if (!flusher_attach(k->flusher, k->conn)) {
        snprintf(errstr, errstr_size, "%s", flusher_error(k->flusher));
        PQfinish(k->conn);
        k->conn = NULL;
        return false;
    }
    sink_connect_lanes(k);
    return true;
}

/* The registries of the configuration, as `run` loads them, so a warehouse built by backfills
 * alone has the same dim_home / dim_solar_panel rows and fact keys; battery versions follow the
 * readings as in the service. No offsets are stored. */
static bool sink_open(struct sink *k, const struct config *cfg, struct backfill_result *result,
                      char *errstr, size_t errstr_size)
{
    memset(k, 0, sizeof(*k));
    k->cfg = cfg;
    k->result = result;
    k->zone = clock_zone_new(cfg->source_timezone, errstr, errstr_size);
    if (!k->zone)
        return false;
    k->decode = (struct decode_config){
        .default_home_id = cfg->default_home_id,
        .default_panel_id = cfg->default_panel_id,
        .zone = k->zone,
        .max_future_seconds = cfg->max_future_seconds,
    };
    k->batch = batch_new(cfg->window_minutes * 60, k->zone);
    k->flusher = flusher_new(cfg, k->zone, NULL);
    if (!k->batch || !k->flusher) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    k->registry = registry_load_configured(cfg, k->zone, (int64_t)time(NULL), errstr, errstr_size);
    if (!k->registry)
        return false;
    flusher_set_registry(k->flusher, k->registry);
    if (cfg->raw_archive_dir[0] && !(k->archiver = archiver_new(cfg, errstr, errstr_size)))
        return false;
    return sink_connect(k, errstr, errstr_size);
}

/* A one-shot command may block: the raw days the flush put behind the retention horizon are
 * archived (and only then dropped) right away, on the archiver's own connection. */
static bool sink_archive(struct sink *k, char *errstr, size_t errstr_size)
{
    if (!k->archiver)
        return true;
    return archiver_run(k->archiver, flusher_raw_horizon(k->flusher), NULL, errstr, errstr_size) >=
           0;
}

/* How a batch is being written: as consumed, as a part of a batch PostgreSQL rejected (split
 * again at the first rejection), or with no isolation at all (the dead letters of one rejected
 * message, or the registry's writes alone). */
enum write_mode { WRITE_BATCH, WRITE_PART, WRITE_FINAL };

static bool sink_write(struct sink *k, struct batch *b, enum write_mode mode, char *errstr,
                       size_t errstr_size);

/* b was rejected by PostgreSQL (see service.c's isolate_rejected): the registry's pending writes
 * alone first (never blamed on a message), then b's halves in message order, or, for a single
 * message, its postgres_rejected dead letter. */
static bool sink_isolate(struct sink *k, struct batch *b, char *errstr, size_t errstr_size)
{
    int32_t window_seconds = k->cfg->window_minutes * 60;
    struct batch *first = batch_new(window_seconds, k->zone);
    struct batch *second = batch_new(window_seconds, k->zone);
    bool ok;
    if (flusher_registry_dirty(k->flusher)) {
        log_warn("event=flush_isolating messages=%zu first=registry second=%zu",
                 batch_message_count(b), batch_message_count(b));
        ok = sink_write(k, first, WRITE_FINAL, errstr, errstr_size) &&
             sink_write(k, b, WRITE_PART, errstr, errstr_size);
    } else if (batch_split(b, first, second)) {
        log_warn("event=flush_isolating messages=%zu first=%zu second=%zu", batch_message_count(b),
                 batch_message_count(first), batch_message_count(second));
        ok = sink_write(k, first, WRITE_PART, errstr, errstr_size) &&
             sink_write(k, second, WRITE_PART, errstr, errstr_size);
    } else {
        char error[1100];
        snprintf(error, sizeof(error), "postgres_rejected: sqlstate %s: %s",
                 flusher_sqlstate(k->flusher), flusher_error(k->flusher));
        batch_to_dead_letters(b, first, decode_error_name(DECODE_POSTGRES_REJECTED), error);
        for (size_t i = 0; i < first->dead_count; i++) {
            char quoted[1200];
            log_error("event=message_rejected topic=%s partition=%d offset=%lld msg=%s",
                      k->cfg->topic[first->dead[i].kind], (int)first->dead[i].partition,
                      (long long)first->dead[i].offset,
                      log_quote(first->dead[i].error, quoted, sizeof(quoted)));
        }
        k->result->dead_letters += first->dead_count;
        ok = sink_write(k, first, WRITE_FINAL, errstr, errstr_size);
    }
    batch_destroy(first);
    batch_destroy(second);
    return ok;
}

/* Writes b (or, b empty, the registry's pending writes), retrying a failed transaction on a new
 * connection with backoff; a batch PostgreSQL rejects REJECTED_ATTEMPTS times in a row (once,
 * for a part) is isolated. */
static bool sink_write(struct sink *k, struct batch *b, enum write_mode mode, char *errstr,
                       size_t errstr_size)
{
    if (batch_is_empty(b) && !flusher_registry_dirty(k->flusher))
        return true;
    int delay_ms = 200, rejected = 0;
    for (int attempt = 1;; attempt++) {
        enum flush_progress p = flusher_start(k->flusher, b);
        if (p == FLUSH_BUSY)
            p = flusher_run_blocking(k->flusher);
        if (p == FLUSH_COMMITTED)
            break;
        sink_disconnect(k);
        if (flusher_failure(k->flusher) == FLUSH_FAILURE_REJECTED && mode != WRITE_FINAL &&
            !batch_is_empty(b) && (mode == WRITE_PART || ++rejected >= REJECTED_ATTEMPTS)) {
            if (!sink_connect(k, errstr, errstr_size))
                return false;
            return sink_isolate(k, b, errstr, errstr_size);
        }
        if (attempt == FLUSH_ATTEMPTS) {
            snprintf(errstr, errstr_size, "%s", flusher_error(k->flusher));
            return false;
        }
        log_warn("event=flush_failed attempt=%d sqlstate=%s msg=\"%s\" retry_in_ms=%d", attempt,
                 flusher_sqlstate(k->flusher)[0] ? flusher_sqlstate(k->flusher) : "none",
                 flusher_error(k->flusher), delay_ms);
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms *= 2;
        if (!sink_connect(k, errstr, errstr_size))
            log_warn("event=postgres_unavailable msg=\"%s\"", errstr);
    }
    const struct flush_stats *st = flusher_stats(k->flusher);
    k->result->merged += st->accepted;
    k->result->duplicates += st->duplicates;
    k->result->flushes++;
    log_write(k->flush_lines_debug ? CONFIG_LOG_DEBUG : CONFIG_LOG_INFO,
              "event=flush_committed readings=%zu merged=%zu duplicates=%zu dead_letters=%zu "
              "ms=%.1f",
              st->readings, st->accepted, st->duplicates, st->dead_letters, st->elapsed_ms);
    return sink_archive(k, errstr, errstr_size);
}

/* Writes the batch (see sink_write) and empties it. */
static bool sink_flush(struct sink *k, char *errstr, size_t errstr_size)
{
    if (!sink_write(k, k->batch, WRITE_BATCH, errstr, errstr_size))
        return false;
    batch_clear(k->batch);
    return true;
}

static bool sink_add(struct sink *k, enum reading_kind kind, int32_t partition, int64_t offset,
                     const void *key, size_t key_len, const char *payload, size_t len, char *errstr,
                     size_t errstr_size)
{
    struct reading out[DECODE_MAX_READINGS];
    size_t n = 0;
    char reason[DECODE_REASON_SIZE];
    k->result->messages++;
    k->decode.now = (int64_t)time(NULL);
    enum decode_error e =
        decode_check_size(len, (size_t)k->cfg->max_message_bytes, reason, sizeof(reason));
    if (e == DECODE_OK)
        e = decode_message(&k->decode, kind, payload, len, out, &n, reason, sizeof(reason));
    if (e == DECODE_OK) {
        for (size_t i = 0; i < n; i++)
            batch_add_reading(k->batch, &out[i], partition, offset);
        k->result->readings += n;
    } else if (e == DECODE_TOO_LARGE) {
        batch_add_truncated_dead_letter(k->batch, kind, partition, offset, key, key_len, payload,
                                        len, DECODE_TOO_LARGE_KEEP_BYTES, decode_error_name(e),
                                        reason);
        k->result->dead_letters++;
    } else {
        batch_add_dead_letter(k->batch, kind, partition, offset, key, key_len, payload, len,
                              decode_error_name(e), reason);
        k->result->dead_letters++;
    }
    if (batch_is_full(k->batch, (size_t)k->cfg->flush_max_readings, (size_t)k->cfg->flush_max_bytes,
                      (size_t)k->cfg->flush_max_windows))
        return sink_flush(k, errstr, errstr_size);
    return true;
}

/* A [topics] name, or one of home/solar/battery; -1 when neither. */
static int topic_kind(const struct config *cfg, const char *name)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (strcmp(cfg->topic[k], name) == 0 || strcmp(reading_kind_name(k), name) == 0)
            return k;
    return -1;
}

/* One dump file of an ingest: where it is, what its name says, the topic it is read as. */
struct dump_file {
    struct dumpname_file named; /* first: dumpname_compare sorts these */
    char *path;                 /* owned; named.path points here */
    int kind;                   /* enum reading_kind */
    uint64_t size;              /* bytes on disk (compressed for .gz) */
};

struct dump_list {
    struct dump_file *files;
    size_t count, cap;
    uint64_t total_bytes;
};

static void dump_list_free(struct dump_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->files[i].path);
    free(l->files);
}

static bool dump_list_add(struct dump_list *l, const char *path, const struct dumpname *name,
                          int kind, uint64_t size, char *errstr, size_t errstr_size)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct dump_file *grown = realloc(l->files, cap * sizeof(*grown));
        if (!grown) {
            snprintf(errstr, errstr_size, "out of memory");
            return false;
        }
        l->files = grown;
        l->cap = cap;
    }
    struct dump_file *f = &l->files[l->count];
    if (!(f->path = strdup(path))) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    f->named = (struct dumpname_file){f->path, *name};
    f->kind = kind;
    f->size = size;
    l->count++;
    l->total_bytes += size;
    return true;
}

/* The topic a file is read as: the [topics] name its file name gives, else --topic (forced),
 * else -1. */
static int dump_kind(const struct config *cfg, const struct dumpname *name, int forced)
{
    int kind = name->form != DUMPNAME_UNKNOWN ? topic_kind(cfg, name->topic) : -1;
    return kind >= 0 ? kind : forced;
}

/* The dump files directly inside dir (not below): those whose name gives a [topics] name. Other
 * entries are skipped with a log line; hidden files silently. */
static bool collect_directory(const struct config *cfg, const char *dir, struct dump_list *l,
                              char *errstr, size_t errstr_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errstr_size, "ingest: %s: %s", dir, strerror(errno));
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        struct dumpname name;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
            snprintf(errstr, errstr_size, "ingest: %s/%s: path too long", dir, e->d_name);
            ok = false;
            break;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        int kind = dumpname_parse(path, &name) ? topic_kind(cfg, name.topic) : -1;
        if (kind < 0) {
            log_info("event=ingest_skipped file=%s reason=%s", path,
                     name.form == DUMPNAME_UNKNOWN ? "not_a_dump_name" : "topic_not_configured");
            continue;
        }
        ok = dump_list_add(l, path, &name, kind, (uint64_t)st.st_size, errstr, errstr_size);
    }
    closedir(d);
    return ok;
}

static int compare_dump_files(const void *a, const void *b)
{
    return dumpname_compare(&((const struct dump_file *)a)->named,
                            &((const struct dump_file *)b)->named);
}

/* Every file to ingest, in the order they are read: by date (undated first), topic, path; a file
 * named twice is read once. */
static bool collect_dumps(const struct config *cfg, char *const *args, size_t arg_count, int forced,
                          struct dump_list *l, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < arg_count; i++) {
        struct stat st;
        if (stat(args[i], &st) != 0) {
            snprintf(errstr, errstr_size, "ingest: %s: %s", args[i], strerror(errno));
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            if (!collect_directory(cfg, args[i], l, errstr, errstr_size))
                return false;
            continue;
        }
        struct dumpname name;
        dumpname_parse(args[i], &name);
        int kind = dump_kind(cfg, &name, forced);
        if (kind < 0) {
            snprintf(errstr, errstr_size,
                     "ingest: %s: cannot tell its topic from the name (expected "
                     "kafka_log_<topic>_<YYYY-MM-DD>.log[.gz] or <topic>.jsonl[.gz] with <topic> "
                     "one of %s, %s, %s); give --topic",
                     args[i], cfg->topic[0], cfg->topic[1], cfg->topic[2]);
            return false;
        }
        if (!dump_list_add(l, args[i], &name, kind, (uint64_t)st.st_size, errstr, errstr_size))
            return false;
    }
    qsort(l->files, l->count, sizeof(*l->files), compare_dump_files);
    size_t kept = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (kept > 0 && strcmp(l->files[kept - 1].path, l->files[i].path) == 0) {
            l->total_bytes -= l->files[i].size;
            free(l->files[i].path);
            continue;
        }
        l->files[kept++] = l->files[i];
    }
    l->count = kept;
    return true;
}

/* Reads one line (without its "\n") into *buf, growing it. Returns 1, 0 at the end of the file,
 * -1 on a read or decompression error. A last line without a newline is still a line. */
static int read_dump_line(gzFile f, char **buf, size_t *cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        if (*cap - n < 2) {
            size_t grown_cap = *cap ? 2 * *cap : 65536;
            char *grown = realloc(*buf, grown_cap);
            if (!grown)
                return -1;
            *buf = grown;
            *cap = grown_cap;
        }
        if (!gzgets(f, *buf + n, (int)(*cap - n))) {
            int err;
            gzerror(f, &err);
            if (err != Z_OK)
                return -1;
            if (n == 0)
                return 0;
            break; /* the file ended after a piece of a long line */
        }
        size_t got = strlen(*buf + n);
        n += got;
        if (n > 0 && (*buf)[n - 1] == '\n')
            break;
        if (n < *cap - 1)
            break; /* not full, no newline: the last line of the file */
    }
    if (n > 0 && (*buf)[n - 1] == '\n')
        n--;
    if (n > 0 && (*buf)[n - 1] == '\r')
        n--;
    (*buf)[n] = '\0';
    *len = n;
    return 1;
}

/* Reads one dump file (plain or gzip'd: zlib reads both) into the sink, a message per line. */
static bool ingest_file(struct sink *k, const struct dump_file *df, struct progress *progress,
                        uint64_t bytes_before, char **line, size_t *cap, char *errstr,
                        size_t errstr_size)
{
    gzFile f = gzopen(df->path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "ingest: %s: %s", df->path,
                 errno ? strerror(errno) : "cannot open");
        return false;
    }
    gzbuffer(f, 1 << 18);
    batch_set_source(k->batch, df->path);
    int64_t line_no = 0;
    size_t len;
    int got;
    bool ok = true;
    while (ok && (got = read_dump_line(f, line, cap, &len)) > 0) {
        line_no++;
        if (len > 0)
            ok = sink_add(k, (enum reading_kind)df->kind, -1, line_no, NULL, 0, *line, len, errstr,
                          errstr_size);
        progress_update(progress, bytes_before + (uint64_t)gzoffset(f));
    }
    if (ok && got < 0) {
        int err;
        const char *msg = gzerror(f, &err);
        snprintf(errstr, errstr_size, "ingest: %s: read error after line %lld: %s", df->path,
                 (long long)line_no, err == Z_ERRNO ? strerror(errno) : msg);
        ok = false;
    }
    gzclose(f);
    /* One file's dead letters, one source. */
    if (!ok || !sink_flush(k, errstr, errstr_size))
        return false;
    log_write(k->flush_lines_debug ? CONFIG_LOG_DEBUG : CONFIG_LOG_INFO,
              "event=file_ingested file=%s lines=%lld topic=%s", df->path, (long long)line_no,
              k->cfg->topic[df->kind]);
    return true;
}

int backfill_ingest(const struct config *cfg, char *const *files, size_t file_count,
                    const char *topic, struct backfill_result *result, char *errstr,
                    size_t errstr_size)
{
    struct sink k = {0};
    struct dump_list dumps = {0};
    struct progress progress;
    int rc = -1;
    char *line = NULL;
    size_t cap = 0;
    memset(result, 0, sizeof(*result));
    int forced = -1;
    if (topic && (forced = topic_kind(cfg, topic)) < 0) {
        snprintf(errstr, errstr_size, "ingest: --topic %s is none of the [topics] (%s, %s, %s)",
                 topic, cfg->topic[0], cfg->topic[1], cfg->topic[2]);
        return -1;
    }
    if (!collect_dumps(cfg, files, file_count, forced, &dumps, errstr, errstr_size))
        goto out;
    if (dumps.count == 0) {
        snprintf(errstr, errstr_size, "ingest: no dump file found in the paths given");
        goto out;
    }
    if (!sink_open(&k, cfg, result, errstr, errstr_size))
        goto out;
    log_info("event=ingest_start files=%zu bytes=%llu", dumps.count,
             (unsigned long long)dumps.total_bytes);
    progress_start(&progress, "ingest", PROGRESS_BYTES, dumps.total_bytes,
                   cfg->progress_interval_ms);
    k.flush_lines_debug = progress.terminal;
    uint64_t bytes_before = 0;
    for (size_t i = 0; i < dumps.count; i++) {
        if (!ingest_file(&k, &dumps.files[i], &progress, bytes_before, &line, &cap, errstr,
                         errstr_size)) {
            progress_finish(&progress, bytes_before);
            goto out;
        }
        bytes_before += dumps.files[i].size;
    }
    progress_finish(&progress, bytes_before);
    rc = 0;
out:
    free(line);
    dump_list_free(&dumps);
    sink_close(&k);
    return rc;
}

/* The partitions to replay with their start offsets and end (high watermark at the start). */
struct replay_plan {
    rd_kafka_topic_partition_list_t *assignment; /* .offset = start */
    int64_t *end;
    bool *done;
    uint64_t total; /* messages between the starts and the ends: the progress' 100% */
};

static bool plan_replay(rd_kafka_t *rk, const struct config *cfg,
                        const struct backfill_replay_options *opt, struct replay_plan *plan,
                        char *errstr, size_t errstr_size)
{
    plan->assignment = rd_kafka_topic_partition_list_new(16);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (opt->topic && topic_kind(cfg, opt->topic) != k)
            continue;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, cfg->topic[k], NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t, &md, 10000);
        rd_kafka_topic_destroy(t);
        if (err || md->topics[0].err) {
            snprintf(errstr, errstr_size, "replay: topic %s: %s", cfg->topic[k],
                     rd_kafka_err2str(err ? err : md->topics[0].err));
            if (md)
                rd_kafka_metadata_destroy(md);
            return false;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            int32_t p = md->topics[0].partitions[i].id;
            bool wanted = opt->partition_count == 0;
            for (size_t j = 0; j < opt->partition_count; j++)
                wanted |= opt->partitions[j] == p;
            if (!wanted)
                continue;
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_add(plan->assignment, cfg->topic[k], p);
            tp->offset = opt->from == BACKFILL_FROM_OFFSET      ? opt->offset
                         : opt->from == BACKFILL_FROM_TIMESTAMP ? opt->timestamp_ms
                                                                : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_metadata_destroy(md);
    }
    if (plan->assignment->cnt == 0) {
        snprintf(errstr, errstr_size, "replay: no partition matches");
        return false;
    }
    if (opt->from == BACKFILL_FROM_TIMESTAMP) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, plan->assignment, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "replay: offsets for the time: %s",
                     rd_kafka_err2str(err));
            return false;
        }
    }
    int n = plan->assignment->cnt;
    plan->end = calloc((size_t)n, sizeof(*plan->end));
    plan->done = calloc((size_t)n, sizeof(*plan->done));
    if (!plan->end || !plan->done) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_t *tp = &plan->assignment->elems[i];
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &low, &high, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "replay: %s [%d]: %s", tp->topic, (int)tp->partition,
                     rd_kafka_err2str(err));
            return false;
        }
        plan->end[i] = high;
        int64_t start = tp->offset == RD_KAFKA_OFFSET_BEGINNING ? low
                        : tp->offset == RD_KAFKA_OFFSET_END     ? high
                                                                : tp->offset;
        plan->done[i] = start >= high; /* nothing to read there */
        if (start < high)
            plan->total += (uint64_t)(high - (start > low ? start : low));
        log_info("event=replay_partition topic=%s partition=%d from=%lld to=%lld", tp->topic,
                 (int)tp->partition, (long long)start, (long long)high);
    }
    return true;
}

int backfill_replay(const struct config *cfg, const struct backfill_replay_options *opt,
                    struct backfill_result *result, char *errstr, size_t errstr_size)
{
    struct sink k;
    struct replay_plan plan = {0};
    rd_kafka_t *rk = NULL;
    int rc = -1;
    memset(result, 0, sizeof(*result));
    if (opt->topic && topic_kind(cfg, opt->topic) < 0) {
        snprintf(errstr, errstr_size, "replay: --topic %s is none of the [topics]", opt->topic);
        return -1;
    }
    if (!sink_open(&k, cfg, result, errstr, errstr_size))
        goto out;

    /* Its own group name, and no commits: the service's group is never touched. */
    char group[512], err[512];
    snprintf(group, sizeof(group), "%s.replay", config_kafka_get(cfg, "group.id"));
    const char *const replay_settings[] = {
        "group.id", group, "enable.auto.commit", "false", "enable.auto.offset.store",
        "false",    NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, replay_settings, errstr, errstr_size);
    if (!conf)
        goto out;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_poll_set_consumer(rk);
    if (!plan_replay(rk, cfg, opt, &plan, errstr, errstr_size))
        goto out;
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, plan.assignment);
    if (aerr) {
        snprintf(errstr, errstr_size, "replay: assign: %s", rd_kafka_err2str(aerr));
        goto out;
    }
    int remaining = 0;
    for (int i = 0; i < plan.assignment->cnt; i++)
        remaining += !plan.done[i];
    struct progress progress;
    progress_start(&progress, "replay", PROGRESS_MESSAGES, plan.total, cfg->progress_interval_ms);
    k.flush_lines_debug = progress.terminal;
    uint64_t replayed = 0;
    int idle_ms = 0;
    while (remaining > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
        progress_update(&progress, replayed);
        if (!msg) {
            idle_ms += 500;
            if (idle_ms >= REPLAY_IDLE_TIMEOUT_MS) {
                snprintf(errstr, errstr_size,
                         "replay: no message for %d s with %d partition(s) not at their end",
                         REPLAY_IDLE_TIMEOUT_MS / 1000, remaining);
                progress_finish(&progress, replayed);
                goto out;
            }
            continue;
        }
        idle_ms = 0;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("event=kafka_consume_error error=%s", rd_kafka_err2name(msg->err));
            rd_kafka_message_destroy(msg);
            continue;
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        int i;
        for (i = 0; i < plan.assignment->cnt; i++)
            if (plan.assignment->elems[i].partition == msg->partition &&
                strcmp(plan.assignment->elems[i].topic, topic) == 0)
                break;
        bool ok = true;
        if (i < plan.assignment->cnt && !plan.done[i] && msg->offset < plan.end[i]) {
            const char *payload = msg->payload ? msg->payload : "";
            replayed++;
            ok =
                sink_add(&k, (enum reading_kind)topic_kind(cfg, topic), msg->partition, msg->offset,
                         msg->key, msg->key_len, payload, msg->len, errstr, errstr_size);
            if (msg->offset + 1 >= plan.end[i]) {
                plan.done[i] = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(msg);
        if (!ok) {
            progress_finish(&progress, replayed);
            goto out;
        }
    }
    progress_finish(&progress, replayed);
    if (!sink_flush(&k, errstr, errstr_size))
        goto out;
    rc = 0;
out:
    if (plan.assignment)
        rd_kafka_topic_partition_list_destroy(plan.assignment);
    free(plan.end);
    free(plan.done);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    sink_close(&k);
    return rc;
}
