/* Partition ownership in PostgreSQL (fencing): claiming the partitions Kafka assigned, which
 * bumps their epoch in solarx_meta.consumer_offsets and so fences every earlier owner's flushes
 * (solarx_meta.store_offsets, migrations/0006); releasing them when they go. The service makes
 * one call per decision (claim these, claim what is pending, release these); the connection and
 * the SQL stay here. */
#ifndef SOLARX_OWNERSHIP_H
#define SOLARX_OWNERSHIP_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/claims.h"
#include "solarx/config.h"

/* One partition to claim, and what the claim found. */
struct ownership_partition {
    int kind; /* enum reading_kind: the topic is cfg->topic[kind] */
    int32_t partition;
    int64_t next_offset; /* out: the offset PostgreSQL stores, -1 when none */
    int64_t epoch;       /* out: the epoch it is now owned under */
};

/* Claims parts[0..n) for owner (a label for operators) in group, in one statement on conn (a
 * blocking connection): creates missing rows, increments every epoch, and records the epochs in
 * claims (resume: the stored offset, else what claims already knew). Returns false with errstr,
 * having claimed nothing. */
bool ownership_claim(PGconn *conn, const struct config *cfg, const char *group, const char *owner,
                     struct ownership_partition *parts, size_t n, struct claims *claims,
                     char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* The label claims carry (solarx_meta.consumer_offsets.owner): instance_id (the static member's
 * group.instance.id), else the host name ("unknown-host" when it has none), then "/pid-N" with
 * this process's id. Written to buf (truncated to size). */
void ownership_label(const char *instance_id, char *buf, size_t size);

/* Claims the partitions assigned (those of a configured topic; others are left out) for owner in
 * cfg's group, on a blocking connection of its own that gives up after lock_timeout 2 s and
 * statement_timeout 5 s: the loop waits for it, so it must never wait on a lock only the loop
 * can release (this instance's own flush in flight) or on a zombie's flush. Every offset of
 * partitions is set to where consumption starts: PostgreSQL's stored offset when it has one
 * (event=partition_start source=postgres), else RD_KAFKA_OFFSET_INVALID (Kafka's committed
 * offset). A claim that fails (PostgreSQL unavailable, the timeouts; logged as
 * event=claim_failed) leaves the partitions CLAIMS_PENDING in claims, for
 * ownership_claim_pending before the next flush. */
void ownership_claim_assigned(const struct config *cfg, const char *owner, struct claims *claims,
                              rd_kafka_topic_partition_list_t *partitions);

/* Claims the partitions claims holds as CLAIMS_PENDING (assigned while PostgreSQL was
 * unavailable), like ownership_claim_assigned. Returns true when none is left pending; false
 * when PostgreSQL cannot be asked (logged) or out of memory: they stay pending, and no flush may
 * store their offsets yet. */
bool ownership_claim_pending(const struct config *cfg, const char *owner, struct claims *claims)
    __attribute__((warn_unused_result));

/* The partitions went (revoked or lost): their claims are removed from claims. Partitions of
 * topics that are not configured are ignored. Pure. */
void ownership_release(const struct config *cfg, struct claims *claims,
                       const rd_kafka_topic_partition_list_t *partitions);

/* ---- the pure steps of ownership_claim_assigned, for tests ---- */

/* The partitions of a configured topic in partitions, written to parts (room for
 * partitions->cnt; NULL: none written) and marked CLAIMS_PENDING in claims (out of memory there:
 * logged); every offset of partitions is reset to RD_KAFKA_OFFSET_INVALID. Returns how many. */
size_t ownership_assigned_parts(const struct config *cfg,
                                rd_kafka_topic_partition_list_t *partitions, struct claims *claims,
                                struct ownership_partition *parts);

/* After a claim: each partition of partitions that PostgreSQL stores an offset for (parts[i]
 * .next_offset >= 0) starts there (event=partition_start). */
void ownership_start_at_stored(const struct config *cfg, const struct ownership_partition *parts,
                               size_t n, rd_kafka_topic_partition_list_t *partitions);

#endif
