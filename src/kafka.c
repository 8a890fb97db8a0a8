/* Kafka consumer on the libevent loop: io-event pipe, zero-timeout drains, incremental
 * (cooperative) rebalancing with owner-supplied start offsets, explicit commits. */
#include "solarx/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solarx/fetch_nudge.h"
#include "solarx/log.h"
#include "solarx/reading.h"

/* Most messages handled per loop turn before yielding to other events (PostgreSQL, timers). */
#define DRAIN_BUDGET 2000
/* Events a turn may serve besides its messages (commit results, rebalances, errors): with the
 * budget, the most a turn takes from the queue, which the fetcher nudge allows for. */
#define DRAIN_TURN_EVENTS 64
/* While paused the loop still polls this often, for rebalances and max.poll.interval.ms. */
#define PAUSED_POLL_MS 100
/* Backpressure first just stops draining (librdkafka's bounded queue then stops its fetcher);
 * held this long -- PostgreSQL is out -- the partitions are paused so that polling can go on. */
#define HOLD_BEFORE_PAUSE_MS 10000
/* Test-only: raises a fatal librdkafka error this many ms after the first assignment. */
#define TEST_FATAL_ENV "SOLARX_TEST_KAFKA_FATAL_AFTER_MS"

struct kafka_consumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    struct event_base *base;
    struct event *io_event;   /* the pipe librdkafka writes to when the queue turns non-empty */
    struct event *poll_event; /* re-drain: after a full budget, and periodically while paused */
    struct event *hold_timer; /* a hold that lasts becomes a pause */
    struct event *test_fatal_timer; /* TEST_FATAL_ENV */
    int pipe_fds[2];
    struct kafka_handlers handlers;
    char *topic[READING_KIND_COUNT];
    bool held;   /* backpressure: not draining */
    bool paused; /* partitions paused at the fetcher (a long hold, or stopping) */
    bool closing;
    bool fatal;       /* librdkafka raised a fatal error: the handle is unusable */
    bool cooperative; /* the group's rebalance protocol (the last one librdkafka named) */
    bool revoke_lost; /* its partitions were lost, not revoked */
    /* Revoked partitions still assigned until the owner says their data is written
     * (kafka_consumer_end_revoke); NULL when no revoke is deferred. */
    rd_kafka_topic_partition_list_t *revoking;
    int assigned;
    char instance_id[256];    /* group.instance.id in use, "" when dynamic */
    struct fetch_nudge nudge; /* librdkafka 2.0: wakes a fetcher that stopped on a full queue */
};

/* Wakes librdkafka 2.0's fetcher after a drained full queue (fetch_nudge.h says why): seeks the
 * partitions consumed from to their next offsets. Asynchronous (timeout 0); anything fetched
 * before the seek is dropped by librdkafka's version barrier, and the queue is empty anyway. */
struct seek_list {
    struct kafka_consumer *kc;
    rd_kafka_topic_partition_list_t *list;
};

static void add_position(void *ctx, enum reading_kind kind, int32_t partition, int64_t next)
{
    struct seek_list *sl = ctx;
    rd_kafka_topic_partition_list_add(sl->list, sl->kc->topic[kind], partition)->offset = next;
}

static void nudge_fetcher(struct kafka_consumer *kc)
{
    struct seek_list sl = {kc, rd_kafka_topic_partition_list_new(16)};
    fetch_nudge_each(&kc->nudge, add_position, &sl);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(kc->rk, sl.list, 0);
    if (error) {
        log_debug("event=fetch_nudge_failed msg=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        log_debug("event=fetch_nudged partitions=%d nudges=%llu", sl.list->cnt, kc->nudge.nudges);
    }
    rd_kafka_topic_partition_list_destroy(sl.list);
}

static void log_from_kafka(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char quoted[1024];
    log_quote(buf, quoted, sizeof(quoted));
    if (level <= 3)
        log_error("event=kafka_log facility=%s msg=%s", fac, quoted);
    else if (level <= 5)
        log_warn("event=kafka_log facility=%s msg=%s", fac, quoted);
    else
        log_debug("event=kafka_log facility=%s msg=%s", fac, quoted);
}

/* The consumer is dead for good (a fenced static member, an authentication failure...): tells
 * the owner once. librdkafka reports it through the error callback or, on the consumer queue, as
 * a message error _FATAL. */
static void note_fatal(struct kafka_consumer *kc)
{
    char cause[512], full[700], quoted[1024];
    if (kc->fatal)
        return;
    kc->fatal = true;
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(kc->rk, cause, sizeof(cause));
    snprintf(full, sizeof(full), "%s: %s", rd_kafka_err2name(orig), cause);
    log_quote(full, quoted, sizeof(quoted));
    log_error("event=kafka_fatal code=%s msg=%s", rd_kafka_err2name(orig), quoted);
    if (kc->handlers.on_fatal)
        kc->handlers.on_fatal(kc->handlers.opaque, full);
}

static void error_from_kafka(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_consumer *kc = opaque;
    char quoted[1024];
    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        log_quote(reason, quoted, sizeof(quoted));
        log_warn("event=kafka_error code=%s fatal=0 msg=%s", rd_kafka_err2name(err), quoted);
        return;
    }
    note_fatal(kc);
}

static void on_test_fatal_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_consumer *kc = arg;
    log_warn("event=test_hook hook=%s msg=\"raising a fatal librdkafka error\"", TEST_FATAL_ENV);
    rd_kafka_test_fatal_error(kc->rk, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
                              "test hook " TEST_FATAL_ENV);
}

/* Arms the test-only fatal error hook once, at the first assignment. */
static void arm_test_fatal(struct kafka_consumer *kc)
{
    const char *after = getenv(TEST_FATAL_ENV);
    if (!after || !*after || kc->test_fatal_timer)
        return;
    long ms = strtol(after, NULL, 10);
    kc->test_fatal_timer = evtimer_new(kc->base, on_test_fatal_timer, kc);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (kc->test_fatal_timer)
        evtimer_add(kc->test_fatal_timer, &tv);
}

static void commit_result(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("event=kafka_commit_failed error=%s msg=\"PostgreSQL holds the offsets; Kafka's "
                 "copy lags until the next commit\"",
                 rd_kafka_err2name(err));
}

static void log_rebalance_error(rd_kafka_error_t *error, rd_kafka_resp_err_t eager_err)
{
    if (error) {
        log_error("event=rebalance_failed msg=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (eager_err) {
        log_error("event=rebalance_failed msg=\"%s\"", rd_kafka_err2str(eager_err));
    }
}

/* Gives up the partitions of the revoke in progress: the owner releases them
 * (handlers.on_unassigned), then librdkafka's assignment loses them and the group goes on. */
static void end_revoke(struct kafka_consumer *kc)
{
    rd_kafka_topic_partition_list_t *partitions = kc->revoking;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t eager_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!partitions)
        return;
    fetch_nudge_forget(&kc->nudge, -1, -1);
    kc->handlers.on_unassigned(kc->handlers.opaque, partitions);
    if (kc->cooperative)
        error = rd_kafka_incremental_unassign(kc->rk, partitions);
    else
        eager_err = rd_kafka_assign(kc->rk, NULL);
    kc->assigned = kc->cooperative ? kc->assigned - partitions->cnt : 0;
    log_info("event=partitions_revoked count=%d lost=%d total=%d", partitions->cnt, kc->revoke_lost,
             kc->assigned);
    log_rebalance_error(error, eager_err);
    kc->revoking = NULL;
    rd_kafka_topic_partition_list_destroy(partitions);
}

/* A revoke need not end in this callback: librdkafka waits for the (incremental_)unassign call
 * as long as it is polled, so the owner may write what it consumed from the partitions through
 * the loop first (handlers.on_revoke returns false) and end it with kafka_consumer_end_revoke.
 * The group does not rebalance again meanwhile; should it anyway, or the consumer close, the
 * revoke deferred ends first. */
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    struct kafka_consumer *kc = opaque;
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    if (protocol) /* NULL once the consumer closes: the last one known holds */
        kc->cooperative = strcmp(protocol, "COOPERATIVE") == 0;
    bool cooperative = kc->cooperative;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t eager_err = RD_KAFKA_RESP_ERR_NO_ERROR;

    fetch_nudge_forget(&kc->nudge, -1, -1);
    if (kc->revoking) {
        log_warn("event=revoke_overtaken count=%d msg=\"a rebalance came before the revoked "
                 "partitions' data was written: they go now\"",
                 kc->revoking->cnt);
        end_revoke(kc);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kc->handlers.on_assign(kc->handlers.opaque, partitions);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, partitions);
        else
            eager_err = rd_kafka_assign(rk, partitions);
        kc->assigned += partitions->cnt;
        if (kc->paused)
            rd_kafka_pause_partitions(rk, partitions);
        log_info("event=partitions_assigned count=%d total=%d protocol=%s", partitions->cnt,
                 kc->assigned, cooperative ? "COOPERATIVE" : "EAGER");
        arm_test_fatal(kc);
        log_rebalance_error(error, eager_err);
        return;
    }
    bool lost = rd_kafka_assignment_lost(rk);
    kc->revoking = rd_kafka_topic_partition_list_copy(partitions);
    kc->revoke_lost = lost;
    bool done = kc->handlers.on_revoke(kc->handlers.opaque, partitions, lost);
    if (!done && !kc->closing && kc->revoking) {
        log_info("event=revoke_deferred count=%d lost=%d msg=\"the partitions go once what was "
                 "consumed from them is written\"",
                 partitions->cnt, lost);
        return;
    }
    end_revoke(kc); /* nothing when the handler ended it already */
}

void kafka_consumer_end_revoke(struct kafka_consumer *kc)
{
    end_revoke(kc);
}

/* Handles up to DRAIN_BUDGET queued messages and events with zero timeouts; *delivered counts
 * the messages handed to handlers.on_message. */
static void drain_turn(struct kafka_consumer *kc, int *delivered)
{
    if (kc->held && !kc->paused)
        return; /* kafka_consumer_hold(false) drains again */
    if (kc->nudge.enabled && !kc->paused)
        fetch_nudge_saw_queue(&kc->nudge, rd_kafka_queue_length(kc->queue));
    for (int n = 0; n < DRAIN_BUDGET; n++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(kc->rk, 0);
        if (!msg) {
            if (!kc->paused && !kc->closing && fetch_nudge_due(&kc->nudge))
                nudge_fetcher(kc);
            return;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
            note_fatal(kc);
        } else if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("event=kafka_consume_error error=%s topic=%s partition=%d msg=\"%s\"",
                         rd_kafka_err2name(msg->err),
                         msg->rkt ? rd_kafka_topic_name(msg->rkt) : "-", (int)msg->partition,
                         rd_kafka_message_errstr(msg));
        } else {
            int kind = reading_kind_of_topic(kc->topic, rd_kafka_topic_name(msg->rkt));
            if (kind >= 0) {
                kc->handlers.on_message(kc->handlers.opaque, (enum reading_kind)kind, msg);
                fetch_nudge_consumed(&kc->nudge, kind, msg->partition, msg->offset);
                (*delivered)++;
            }
        }
        rd_kafka_message_destroy(msg);
        if (kc->closing || (kc->held && !kc->paused))
            return; /* a hold set by that message: kafka_consumer_hold(false) drains again */
    }
    /* Budget spent: more may be queued, and the pipe will not fire again for it. */
    struct timeval now = {0, 0};
    event_add(kc->poll_event, &now);
}

/* One drain turn, then handlers.on_drained when it delivered messages. */
static void drain(struct kafka_consumer *kc)
{
    int delivered = 0;
    drain_turn(kc, &delivered);
    if (delivered > 0 && !kc->closing && kc->handlers.on_drained)
        kc->handlers.on_drained(kc->handlers.opaque);
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_consumer *kc = arg;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    drain(kc);
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_consumer *kc = arg;
    drain(kc);
    if (kc->paused && !event_pending(kc->poll_event, EV_TIMEOUT, NULL)) {
        struct timeval tv = {0, PAUSED_POLL_MS * 1000};
        event_add(kc->poll_event, &tv);
    }
}

static void set_paused_on_assignment(struct kafka_consumer *kc, bool paused);

static void on_hold_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_consumer *kc = arg;
    if (!kc->held || kc->paused)
        return;
    kc->paused = true;
    set_paused_on_assignment(kc, true);
    log_info("event=consumption_paused partitions=%d reason=backpressure held_ms=%d", kc->assigned,
             HOLD_BEFORE_PAUSE_MS);
    struct timeval tv = {0, 0};
    event_add(kc->poll_event, &tv);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, bool secret,
                     char *errstr, size_t errstr_size)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka: [kafka] %s = %s: %s", key,
                 secret ? "(secret)" : value, err);
        return false;
    }
    return true;
}

bool kafka_static_instance_id(const char *group, const char *host, const char *http_listen,
                              char *buf, size_t size)
{
    if (!http_listen || !*http_listen || size == 0)
        return false;
    int n = snprintf(buf, size, "%s-%s-%s", group, host, http_listen);
    if (n < 0 || (size_t)n >= size)
        return false;
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    return true;
}

/* Static membership (KIP-345): a restarted instance takes its partitions back at once instead of
 * waiting for its old self's session to time out. Configured, or derived from the host and
 * http_listen, which two instances on one host cannot share; without either: dynamic. */
static bool set_instance_id(struct kafka_consumer *kc, const struct config *cfg,
                            rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    const char *configured = config_kafka_get(cfg, "group.instance.id");
    char host[128] = "localhost";
    if (configured) {
        snprintf(kc->instance_id, sizeof(kc->instance_id), "%s", configured);
        return true; /* already in conf */
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    if (!kafka_static_instance_id(config_kafka_get(cfg, "group.id"), host, cfg->http_listen,
                                  kc->instance_id, sizeof(kc->instance_id))) {
        kc->instance_id[0] = '\0';
        log_info("event=static_membership enabled=0 msg=\"http_listen is empty and "
                 "group.instance.id is not set: a restarted instance waits for "
                 "session.timeout.ms\"");
        return true;
    }
    return conf_set(conf, "group.instance.id", kc->instance_id, false, errstr, errstr_size);
}

const char *kafka_consumer_instance_id(const struct kafka_consumer *kc)
{
    return kc->instance_id;
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, const char *const *overrides,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (!conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, cfg->kafka[i].secret, errstr,
                      errstr_size))
            goto fail;
    for (size_t i = 0; overrides && overrides[i]; i += 2)
        if (!conf_set(conf, overrides[i], overrides[i + 1], false, errstr, errstr_size))
            goto fail;
    rd_kafka_conf_set_log_cb(conf, log_from_kafka);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_resp_err_t subscribe_topics(struct kafka_consumer *kc)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(READING_KIND_COUNT);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        rd_kafka_topic_partition_list_add(topics, kc->topic[k], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(kc->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    return err;
}

bool kafka_consumer_rejoin(struct kafka_consumer *kc)
{
    rd_kafka_resp_err_t err = rd_kafka_unsubscribe(kc->rk);
    if (!err)
        err = subscribe_topics(kc);
    if (err) {
        log_error("event=group_rejoin_failed msg=\"%s\"", rd_kafka_err2str(err));
        return false;
    }
    log_info("event=group_rejoin msg=\"partitions are revoked and assigned anew\"");
    return true;
}

/* Fetching sized for level memory. Measured on a 1M-message backlog, 9 partitions: librdkafka's
 * defaults held ~325 MB of fetch and decompression buffers. One fetch must cover every partition
 * (else the broker serves a few partitions first and memory rises when the others run). A
 * partition's fetch is 64 KB: a queued message pins its whole (decompressed) fetch buffer, so
 * this size, more than the queue's, sets the peak (192 KB: ~100 MiB for the service, 64 KB: ~69
 * MiB, at the same speed). The local queue must hold what one fetch of every partition
 * decompresses to (~3,000 messages): below that, librdkafka backs off after each fetch, and
 * 4 MB / 500 messages made fetching alone take 32 s instead of 0.8 s.
 *
 * Once the queue holds queued.min.messages, librdkafka 2.0 looks at it again only when its broker
 * thread wakes for another reason, in a catch-up about once a second, while the service drains
 * the queue in a fraction of that: the service wakes it itself (nudge_fetcher), which took a
 * 1.08M-message catch-up from ~22 s to ~9 s at the same memory. librdkafka 2.1 made that wait
 * fetch.queue.backoff.ms: there, 10 ms lets a small queue keep up (bench/README.md). */
size_t kafka_consumer_defaults(int rdkafka_version, struct kafka_default *out, size_t max)
{
    const bool queue_backoff = rdkafka_version >= KAFKA_FETCH_QUEUE_BACKOFF_SINCE;
    const struct kafka_default all[] = {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"queued.min.messages", queue_backoff ? "5000" : "10000"},
        {"queued.max.messages.kbytes", "32768"},
        {"fetch.max.bytes", "4194304"},
        {"max.partition.fetch.bytes", "65536"},
        {"fetch.queue.backoff.ms", "10"},
    };
    size_t n = sizeof(all) / sizeof(all[0]) - (queue_backoff ? 0 : 1);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof(*out));
    return n;
}

/* The value of a librdkafka key in use: [kafka]'s, else the default's, else NULL. */
static const char *fetch_setting(const struct config *cfg, const struct kafka_default *defaults,
                                 size_t n, const char *key)
{
    const char *set = config_kafka_get(cfg, key);
    for (size_t i = 0; !set && i < n; i++)
        if (strcmp(defaults[i].key, key) == 0)
            set = defaults[i].value;
    return set;
}

/* What the fetcher runs with, configured or by default: an operator comparing speed or memory
 * needs these and the library's version. */
static void log_fetch_settings(const struct config *cfg, const struct kafka_default *defaults,
                               size_t n, const struct fetch_nudge *fn)
{
    const char *min = fetch_setting(cfg, defaults, n, "queued.min.messages");
    const char *kbytes = fetch_setting(cfg, defaults, n, "queued.max.messages.kbytes");
    const char *backoff = fetch_setting(cfg, defaults, n, "fetch.queue.backoff.ms");
    log_info("event=kafka_fetch librdkafka=%s queued_min_messages=%s queued_max_kbytes=%s "
             "fetch_queue_backoff_ms=%s full_queue=%s",
             rd_kafka_version_str(), min ? min : "library-default",
             kbytes ? kbytes : "library-default", backoff ? backoff : "unsupported",
             fn->enabled ? "nudge" : "backoff");
}

struct kafka_consumer *kafka_consumer_new(const struct config *cfg, struct event_base *base,
                                          const struct kafka_handlers *handlers, char *errstr,
                                          size_t errstr_size)
{
    /* The service's own settings: offsets are stored and committed by the service alone. */
    static const char *const service_settings[] = {
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "enable.partition.eof",
        "false",
        NULL,
    };
    struct kafka_consumer *kc = calloc(1, sizeof(*kc));
    rd_kafka_conf_t *conf = NULL;
    if (!kc) {
        snprintf(errstr, errstr_size, "kafka: out of memory");
        goto fail;
    }
    kc->pipe_fds[0] = kc->pipe_fds[1] = -1;
    kc->base = base;
    kc->handlers = *handlers;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        kc->topic[k] = strdup(cfg->topic[k]);

    struct kafka_default defaults[KAFKA_DEFAULTS_MAX];
    size_t ndefaults = kafka_consumer_defaults(rd_kafka_version(), defaults, KAFKA_DEFAULTS_MAX);
    conf = kafka_conf_new(cfg, service_settings, errstr, errstr_size);
    if (!conf)
        goto fail;
    for (size_t i = 0; i < ndefaults; i++)
        if (!config_kafka_get(cfg, defaults[i].key) &&
            !conf_set(conf, defaults[i].key, defaults[i].value, false, errstr, errstr_size))
            goto fail;
    /* Without a queue backoff (librdkafka 2.0) the service wakes the fetcher itself. */
    const char *min = fetch_setting(cfg, defaults, ndefaults, "queued.min.messages");
    fetch_nudge_init(&kc->nudge, !fetch_setting(cfg, defaults, ndefaults, "fetch.queue.backoff.ms"),
                     min ? (size_t)strtoul(min, NULL, 10) : 100000, /* 2.0's own default */
                     DRAIN_BUDGET + DRAIN_TURN_EVENTS);
    log_fetch_settings(cfg, defaults, ndefaults, &kc->nudge);
    if (!set_instance_id(kc, cfg, conf, errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_error_cb(conf, error_from_kafka);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_result);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, kc);

    char err[512];
    kc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!kc->rk) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(kc->rk);
    kc->queue = rd_kafka_queue_get_consumer(kc->rk);

    if (pipe2(kc->pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(errstr, errstr_size, "kafka: pipe: %s", strerror(errno));
        goto fail;
    }
    rd_kafka_queue_io_event_enable(kc->queue, kc->pipe_fds[1], "1", 1);
    if (kc->instance_id[0])
        log_info("event=static_membership enabled=1 group_instance_id=%s", kc->instance_id);
    kc->io_event = event_new(base, kc->pipe_fds[0], EV_READ | EV_PERSIST, on_pipe, kc);
    kc->poll_event = evtimer_new(base, on_poll_timer, kc);
    kc->hold_timer = evtimer_new(base, on_hold_timer, kc);
    if (!kc->io_event || !kc->poll_event || !kc->hold_timer || event_add(kc->io_event, NULL) != 0) {
        snprintf(errstr, errstr_size, "kafka: cannot register loop events");
        goto fail;
    }

    rd_kafka_resp_err_t sub = subscribe_topics(kc);
    if (sub) {
        snprintf(errstr, errstr_size, "kafka: subscribe: %s", rd_kafka_err2str(sub));
        goto fail;
    }
    /* Anything already queued before the pipe was armed. */
    struct timeval now = {0, 0};
    event_add(kc->poll_event, &now);
    return kc;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (kc) {
        kc->closing = true;
        kafka_consumer_close(kc);
    }
    return NULL;
}

static void set_paused_on_assignment(struct kafka_consumer *kc, bool paused)
{
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(kc->rk, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (paused)
        rd_kafka_pause_partitions(kc->rk, assignment);
    else
        rd_kafka_resume_partitions(kc->rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
}

void kafka_consumer_hold(struct kafka_consumer *kc, bool held)
{
    if (kc->held == held || kc->closing)
        return; /* closing: the loop's events are gone (a revoke ended by the close) */
    kc->held = held;
    if (held) {
        struct timeval tv = {HOLD_BEFORE_PAUSE_MS / 1000, (HOLD_BEFORE_PAUSE_MS % 1000) * 1000};
        evtimer_add(kc->hold_timer, &tv);
        return;
    }
    evtimer_del(kc->hold_timer);
    if (kc->paused) {
        kc->paused = false;
        set_paused_on_assignment(kc, false);
        log_info("event=consumption_resumed partitions=%d", kc->assigned);
    }
    struct timeval now = {0, 0};
    event_add(kc->poll_event, &now);
}

void kafka_consumer_pause(struct kafka_consumer *kc)
{
    evtimer_del(kc->hold_timer);
    kc->held = false;
    if (kc->paused)
        return;
    kc->paused = true;
    set_paused_on_assignment(kc, true);
    log_info("event=consumption_paused partitions=%d reason=stopping", kc->assigned);
    struct timeval tv = {0, PAUSED_POLL_MS * 1000};
    event_add(kc->poll_event, &tv);
}

bool kafka_consumer_held(const struct kafka_consumer *kc)
{
    return kc->held || kc->paused;
}

bool kafka_consumer_commit(struct kafka_consumer *kc, const struct batch *b, bool sync)
{
    if (b->offset_count == 0)
        return true;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)b->offset_count);
    for (const struct batch_offset *o = b->offsets; o; o = o->hh.next) {
        if (o->id.partition < 0)
            continue; /* not from Kafka */
        rd_kafka_topic_partition_list_add(list, kc->topic[o->id.kind], o->id.partition)->offset =
            o->next_offset;
    }
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (list->cnt > 0)
        err = rd_kafka_commit(kc->rk, list, sync ? 0 : 1);
    rd_kafka_topic_partition_list_destroy(list);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        log_warn("event=kafka_commit_failed error=%s", rd_kafka_err2name(err));
        return false;
    }
    return true;
}

struct metrics_lag *kafka_consumer_lags(struct kafka_consumer *kc, size_t *count)
{
    rd_kafka_topic_partition_list_t *assignment = NULL;
    *count = 0;
    if (rd_kafka_assignment(kc->rk, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    struct metrics_lag *lags = calloc((size_t)assignment->cnt + 1, sizeof(*lags));
    if (lags && rd_kafka_position(kc->rk, assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < assignment->cnt; i++) {
            rd_kafka_topic_partition_t *p = &assignment->elems[i];
            int kind = reading_kind_of_topic(kc->topic, p->topic);
            int64_t low = -1, high = -1;
            if (kind < 0)
                continue;
            rd_kafka_get_watermark_offsets(kc->rk, p->topic, p->partition, &low, &high);
            lags[*count] = (struct metrics_lag){
                .topic = kc->topic[kind],
                .partition = p->partition,
                .lag = high >= 0 && p->offset >= 0 ? high - p->offset : -1,
            };
            (*count)++;
        }
    }
    rd_kafka_topic_partition_list_destroy(assignment);
    return lags;
}

void kafka_consumer_check_fatal(struct kafka_consumer *kc)
{
    if (!kc->fatal && rd_kafka_fatal_error(kc->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        note_fatal(kc);
}

bool kafka_consumer_seek(struct kafka_consumer *kc, enum reading_kind kind, int32_t partition,
                         int64_t offset)
{
    fetch_nudge_forget(&kc->nudge, kind, partition);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kc->topic[kind], partition)->offset = offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(kc->rk, list, 0);
    /* Asynchronous (timeout 0): "in progress" is the answer when it was accepted. */
    bool ok =
        !error && (!list->elems[0].err || list->elems[0].err == RD_KAFKA_RESP_ERR__IN_PROGRESS);
    if (!ok)
        log_warn("event=kafka_seek_failed topic=%s partition=%d offset=%lld msg=\"%s\"",
                 kc->topic[kind], (int)partition, (long long)offset,
                 error ? rd_kafka_error_string(error) : rd_kafka_err2str(list->elems[0].err));
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    return ok;
}

int kafka_consumer_assigned(const struct kafka_consumer *kc)
{
    return kc->assigned;
}

unsigned long long kafka_consumer_fetch_nudges(const struct kafka_consumer *kc)
{
    return kc->nudge.nudges;
}

rd_kafka_t *kafka_consumer_handle(struct kafka_consumer *kc)
{
    return kc->rk;
}

/* Frees kc; leave_group: close the consumer first (revoke handlers run), else only destroy the
 * handle. */
static void consumer_free(struct kafka_consumer *kc, bool leave_group)
{
    if (!kc)
        return;
    kc->closing = true;
    if (kc->io_event)
        event_free(kc->io_event);
    if (kc->poll_event)
        event_free(kc->poll_event);
    if (kc->hold_timer)
        event_free(kc->hold_timer);
    if (kc->test_fatal_timer)
        event_free(kc->test_fatal_timer);
    if (kc->queue) {
        rd_kafka_queue_io_event_enable(kc->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(kc->queue);
    }
    if (kc->rk && leave_group) {
        end_revoke(kc);                  /* a revoke still deferred: its partitions go first */
        rd_kafka_consumer_close(kc->rk); /* runs the revoke handler */
        rd_kafka_destroy(kc->rk);
    } else if (kc->rk) {
        rd_kafka_destroy_flags(kc->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    for (int i = 0; i < 2; i++)
        if (kc->pipe_fds[i] >= 0)
            close(kc->pipe_fds[i]);
    if (kc->revoking)
        rd_kafka_topic_partition_list_destroy(kc->revoking);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        free(kc->topic[k]);
    fetch_nudge_free(&kc->nudge);
    free(kc);
}

void kafka_consumer_close(struct kafka_consumer *kc)
{
    consumer_free(kc, true);
}

void kafka_consumer_abandon(struct kafka_consumer *kc)
{
    consumer_free(kc, false);
}
