/* ingest and replay: decode -> batch -> the flush transaction, driven to completion one batch
 * at a time (no event loop: a one-shot command), then exit. */
#include "solarx/backfill.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solarx/batch.h"
#include "solarx/clock.h"
#include "solarx/db.h"
#include "solarx/decode.h"
#include "solarx/flush.h"
#include "solarx/kafka.h"
#include "solarx/log.h"

#define FLUSH_ATTEMPTS 6
#define REPLAY_IDLE_TIMEOUT_MS 60000

/* Where decoded messages go: a batch, flushed when full and at the end. */
struct sink {
    const struct config *cfg;
    struct clock_zone *zone;
    struct decode_config decode;
    struct flusher *flusher;
    struct batch *batch;
    struct backfill_result *result;
};

static void sink_close(struct sink *k)
{
    flusher_destroy(k->flusher);
    batch_destroy(k->batch);
    clock_zone_destroy(k->zone);
}

static bool sink_connect(struct sink *k, char *errstr, size_t errstr_size)
{
    PGconn *conn = db_connect_blocking(k->cfg, errstr, errstr_size);
    if (!conn)
        return false;
    if (!flusher_attach(k->flusher, conn)) {
        snprintf(errstr, errstr_size, "%s", flusher_error(k->flusher));
        return false;
    }
    return true;
}

/* No registry: home and panel versions are read from the warehouse (the service maintains them);
 * battery versions follow the readings as in the service. No offsets are stored. */
static bool sink_open(struct sink *k, const struct config *cfg, struct backfill_result *result,
                      char *errstr, size_t errstr_size)
{
    memset(k, 0, sizeof(*k));
    k->cfg = cfg;
    k->result = result;
    k->zone = clock_zone_new(cfg->source_timezone, errstr, errstr_size);
    if (!k->zone)
        return false;
    k->decode = (struct decode_config){cfg->default_home_id, cfg->default_panel_id, k->zone};
    k->batch = batch_new(cfg->window_minutes * 60, k->zone);
    k->flusher = flusher_new(cfg, k->zone, NULL);
    if (!k->batch || !k->flusher) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    return sink_connect(k, errstr, errstr_size);
}

/* Writes the batch; retries a failed transaction on a new connection with backoff. */
static bool sink_flush(struct sink *k, char *errstr, size_t errstr_size)
{
    if (batch_is_empty(k->batch))
        return true;
    int delay_ms = 200;
    for (int attempt = 1;; attempt++) {
        enum flush_progress p = flusher_start(k->flusher, k->batch);
        if (p == FLUSH_BUSY)
            p = flusher_run_blocking(k->flusher);
        if (p == FLUSH_COMMITTED)
            break;
        if (attempt == FLUSH_ATTEMPTS) {
            snprintf(errstr, errstr_size, "%s", flusher_error(k->flusher));
            return false;
        }
        log_warn("event=flush_failed attempt=%d msg=\"%s\" retry_in_ms=%d", attempt,
                 flusher_error(k->flusher), delay_ms);
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms *= 2;
        if (!flusher_conn(k->flusher) && !sink_connect(k, errstr, errstr_size))
            log_warn("event=postgres_unavailable msg=\"%s\"", errstr);
    }
    const struct flush_stats *st = flusher_stats(k->flusher);
    k->result->merged += st->accepted;
    k->result->duplicates += st->duplicates;
    k->result->flushes++;
    log_info("event=flush_committed readings=%zu merged=%zu duplicates=%zu dead_letters=%zu "
             "ms=%.1f",
             st->readings, st->accepted, st->duplicates, st->dead_letters, st->elapsed_ms);
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
    enum decode_error e =
        decode_message(&k->decode, kind, payload, len, out, &n, reason, sizeof(reason));
    if (e == DECODE_OK) {
        for (size_t i = 0; i < n; i++)
            batch_add_reading(k->batch, &out[i], partition, offset);
        k->result->readings += n;
    } else {
        batch_add_dead_letter(k->batch, kind, partition, offset, key, key_len, payload, len,
                              decode_error_name(e), reason);
        k->result->dead_letters++;
    }
    if (batch_size(k->batch) >= (size_t)k->cfg->flush_max_readings)
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

/* The topic a dump file holds, from its name: ".../battery_data.jsonl" -> battery_data. */
static int file_kind(const struct config *cfg, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[256];
    snprintf(name, sizeof(name), "%s", base);
    char *dot = strrchr(name, '.');
    if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json") || !strcmp(dot, ".txt")))
        *dot = '\0';
    return topic_kind(cfg, name);
}

int backfill_ingest(const struct config *cfg, char *const *files, size_t file_count,
                    const char *topic, struct backfill_result *result, char *errstr,
                    size_t errstr_size)
{
    struct sink k;
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
    for (size_t i = 0; i < file_count && forced < 0; i++) {
        if (file_kind(cfg, files[i]) < 0) {
            snprintf(errstr, errstr_size,
                     "ingest: %s: cannot tell its topic from the name (expected one of %s, %s, "
                     "%s with .jsonl); give --topic",
                     files[i], cfg->topic[0], cfg->topic[1], cfg->topic[2]);
            return -1;
        }
    }
    if (!sink_open(&k, cfg, result, errstr, errstr_size))
        goto out;
    for (size_t i = 0; i < file_count; i++) {
        int kind = forced >= 0 ? forced : file_kind(cfg, files[i]);
        FILE *f = fopen(files[i], "r");
        if (!f) {
            snprintf(errstr, errstr_size, "ingest: %s: %s", files[i], strerror(errno));
            goto out;
        }
        batch_set_source(k.batch, files[i]);
        ssize_t len;
        int64_t line_no = 0;
        bool ok = true;
        while (ok && (len = getline(&line, &cap, f)) >= 0) {
            line_no++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (len == 0)
                continue;
            ok = sink_add(&k, (enum reading_kind)kind, -1, line_no, NULL, 0, line, (size_t)len,
                          errstr, errstr_size);
        }
        bool read_error = ferror(f);
        fclose(f);
        if (!ok)
            goto out;
        if (read_error) {
            snprintf(errstr, errstr_size, "ingest: %s: read error after line %lld", files[i],
                     (long long)line_no);
            goto out;
        }
        if (!sink_flush(&k, errstr, errstr_size)) /* one file's dead letters, one source */
            goto out;
        log_info("event=file_ingested file=%s lines=%lld topic=%s", files[i], (long long)line_no,
                 cfg->topic[kind]);
    }
    rc = 0;
out:
    free(line);
    sink_close(&k);
    return rc;
}

/* The partitions to replay with their start offsets and end (high watermark at the start). */
struct replay_plan {
    rd_kafka_topic_partition_list_t *assignment; /* .offset = start */
    int64_t *end;
    bool *done;
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
    int idle_ms = 0;
    while (remaining > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
        if (!msg) {
            idle_ms += 500;
            if (idle_ms >= REPLAY_IDLE_TIMEOUT_MS) {
                snprintf(errstr, errstr_size,
                         "replay: no message for %d s with %d partition(s) not at their end",
                         REPLAY_IDLE_TIMEOUT_MS / 1000, remaining);
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
            ok =
                sink_add(&k, (enum reading_kind)topic_kind(cfg, topic), msg->partition, msg->offset,
                         msg->key, msg->key_len, payload, msg->len, errstr, errstr_size);
            if (msg->offset + 1 >= plan.end[i]) {
                plan.done[i] = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(msg);
        if (!ok)
            goto out;
    }
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
