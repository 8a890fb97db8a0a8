/* The Kafka side: a consumer-group member (cooperative-sticky, no auto commit) joined to the
 * libevent loop through rd_kafka_queue_io_event_enable on a non-blocking pipe, drained with zero
 * timeouts; partitions start at the offsets the owner supplies; offsets are committed only when
 * told. */
#ifndef SOLARX_KAFKA_H
#define SOLARX_KAFKA_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/batch.h"
#include "solarx/config.h"
#include "solarx/metrics.h"

struct kafka_consumer;

/* A librdkafka configuration: cfg's [kafka] keys as written, then overrides (key, value, ...,
 * NULL; may be NULL itself), with librdkafka's logs going to the service's log. Returns NULL
 * with errstr naming the key at fault (a secret's value is never shown). */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, const char *const *overrides,
                                char *errstr, size_t errstr_size);

/* The first librdkafka with fetch.queue.backoff.ms (2.1.0, as rd_kafka_version() gives it). */
#define KAFKA_FETCH_QUEUE_BACKOFF_SINCE 0x020100ff
#define KAFKA_DEFAULTS_MAX 8

/* One librdkafka setting the consumer applies unless [kafka] sets the key. */
struct kafka_default {
    const char *key, *value;
};

/* The consumer's defaults for the librdkafka it runs on (rdkafka_version as rd_kafka_version()
 * gives it): cooperative-sticky rebalancing and fetch sizes for level memory, with
 * queued.min.messages 10000 on librdkafka 2.0 (whose fetcher the consumer wakes itself after a
 * full queue) and, from 2.1 on, 5000 with a short fetch.queue.backoff.ms. Writes at most max to
 * out; returns how many.
 */
size_t kafka_consumer_defaults(int rdkafka_version, struct kafka_default *out, size_t max);

struct kafka_handlers {
    /* One message of a configured topic (kind resolved); msg is destroyed after the call. */
    void (*on_message)(void *opaque, enum reading_kind kind, const rd_kafka_message_t *msg);
    /* A drain turn that delivered messages ended (the queue is empty, the turn's budget is spent,
     * or a message set a hold): what on_message staged may be handed on. May be NULL. */
    void (*on_drained)(void *opaque);
    /* Partitions being assigned: set each element's offset to where consumption must start
     * (RD_KAFKA_OFFSET_INVALID: Kafka's committed offset, else auto.offset.reset). */
    void (*on_assign)(void *opaque, rd_kafka_topic_partition_list_t *partitions);
    /* Partitions being revoked (or lost: then nothing may be committed). Returns true when they
     * may go at once; false to keep them assigned (fetching is up to the owner) until what was
     * consumed from them is written and kafka_consumer_end_revoke is called, from the loop. */
    bool (*on_revoke)(void *opaque, const rd_kafka_topic_partition_list_t *partitions, bool lost);
    /* The revoked partitions go now (at once, at kafka_consumer_end_revoke, or earlier when
     * another rebalance or the close overtakes a deferred revoke): forget them. */
    void (*on_unassigned)(void *opaque, const rd_kafka_topic_partition_list_t *partitions);
    void *opaque;
    /* librdkafka raised a fatal error (reason: "CODE: text"): the consumer can neither consume
     * nor commit any more. May be NULL. */
    void (*on_fatal)(void *opaque, const char *reason);
};

/* The group.instance.id derived for static membership: "<group>-<host>-<http_listen>" with every
 * character Kafka does not allow in it replaced by '_'. Returns false (no static membership)
 * when http_listen is empty or the id does not fit in buf. */
bool kafka_static_instance_id(const char *group, const char *host, const char *http_listen,
                              char *buf, size_t size) __attribute__((warn_unused_result));

/* Creates the consumer from cfg's [kafka] keys (passed unchanged; the service's own settings
 * enable.auto.commit=false, enable.auto.offset.store=false and, unless configured,
 * partition.assignment.strategy=cooperative-sticky and a group.instance.id derived by
 * kafka_static_instance_id from the host name and http_listen are added) and subscribes to the
 * three topics. Test-only: SOLARX_TEST_KAFKA_FATAL_AFTER_MS=N raises a fatal error (as a fenced
 * static member would get) N ms after the first assignment.
 * Returns NULL with errstr ("kafka: No such configuration property: \"bootstrap.server\"…"). */
struct kafka_consumer *kafka_consumer_new(const struct config *cfg, struct event_base *base,
                                          const struct kafka_handlers *handlers, char *errstr,
                                          size_t errstr_size);

/* Backpressure: while held, no message is taken from librdkafka (whose bounded queue then stops
 * its fetcher); a hold that lasts 10 s pauses the partitions so that polling, and
 * so rebalances and max.poll.interval.ms, go on. Releasing resumes and drains at once. */
void kafka_consumer_hold(struct kafka_consumer *kc, bool held);
/* Stops fetching for good (stopping): pauses every assigned partition, keeps serving events. */
void kafka_consumer_pause(struct kafka_consumer *kc);
/* True while held or paused. */
bool kafka_consumer_held(const struct kafka_consumer *kc);

/* Commits the batch's next offsets to Kafka (asynchronously unless sync). Returns false when the
 * commit could not even be requested; an asynchronous failure is logged. */
bool kafka_consumer_commit(struct kafka_consumer *kc, const struct batch *b, bool sync);

/* The lag of every assigned partition from librdkafka's cached watermarks (no broker round
 * trip): a new array of *count entries the caller frees, topic names owned by kc. */
struct metrics_lag *kafka_consumer_lags(struct kafka_consumer *kc, size_t *count);

/* Ends the revoke handlers.on_revoke deferred: handlers.on_unassigned, then librdkafka's
 * (incremental) unassign. Nothing when no revoke is deferred. */
void kafka_consumer_end_revoke(struct kafka_consumer *kc);

/* Leaves the subscription and subscribes again: every partition is revoked (handlers.on_revoke)
 * and the group assigns anew (handlers.on_assign). Returns false (logged) when librdkafka
 * refuses. */
bool kafka_consumer_rejoin(struct kafka_consumer *kc);

/* Reports a fatal error (handlers.on_fatal) that librdkafka raised while the queue was not being
 * drained (held): call periodically. */
void kafka_consumer_check_fatal(struct kafka_consumer *kc);

/* Moves the partition's fetch position to offset (asynchronously); queued messages before it are
 * discarded. Returns false (logged) when librdkafka refuses, e.g. the partition is not assigned. */
bool kafka_consumer_seek(struct kafka_consumer *kc, enum reading_kind kind, int32_t partition,
                         int64_t offset);

/* The group.instance.id in use, "" for dynamic membership. */
const char *kafka_consumer_instance_id(const struct kafka_consumer *kc);

/* Number of partitions currently assigned. */
int kafka_consumer_assigned(const struct kafka_consumer *kc);

/* How often the fetcher was woken after a full queue (librdkafka 2.0 only; kafka.c). */
unsigned long long kafka_consumer_fetch_nudges(const struct kafka_consumer *kc);

/* Leaves the group (revoke handlers run) and destroys the consumer. */
void kafka_consumer_close(struct kafka_consumer *kc);

/* Destroys the consumer without leaving the group and without revoke handlers (an exit that
 * gives up pending work: nothing more is flushed or committed). */
void kafka_consumer_abandon(struct kafka_consumer *kc);

/* The librdkafka handle, for lag queries. */
rd_kafka_t *kafka_consumer_handle(struct kafka_consumer *kc);

#endif
