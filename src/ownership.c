/* Claiming partitions in solarx_meta.consumer_offsets: one upsert that increments the epochs, on a
 * short-lived blocking connection; releasing them in the claims when they go. */
#include "solarx/ownership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solarx/db.h"
#include "solarx/log.h"
#include "solarx/pgarray.h"
#include "solarx/reading.h"

/* Rows are created and locked in key order, as solarx_meta.store_offsets locks them: a claim and
 * a flush wait for each other instead of deadlocking. */
static const char claim_sql[] =
    "INSERT INTO solarx_meta.consumer_offsets AS o"
    " (consumer_group, topic, \"partition\", next_offset, owner_epoch, owner, claimed_at)"
    " SELECT $1, t, p, NULL, 1, $2, now() FROM unnest($3::text[], $4::int[]) AS u(t, p)"
    " ORDER BY t, p"
    " ON CONFLICT (consumer_group, topic, \"partition\") DO UPDATE"
    " SET owner_epoch = o.owner_epoch + 1, owner = EXCLUDED.owner, claimed_at = EXCLUDED.claimed_at"
    " RETURNING topic, \"partition\", next_offset, owner_epoch";

static struct ownership_partition *find_part(const struct config *cfg,
                                             struct ownership_partition *parts, size_t n,
                                             const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].partition == partition && strcmp(cfg->topic[parts[i].kind], topic) == 0)
            return &parts[i];
    return NULL;
}

bool ownership_claim(PGconn *conn, const struct config *cfg, const char *group, const char *owner,
                     struct ownership_partition *parts, size_t n, struct claims *claims,
                     char *errstr, size_t errstr_size)
{
    struct pgarray topics = {0}, partitions = {0};
    PGresult *res = NULL;
    bool ok = false;
    pgarray_reset(&topics);
    pgarray_reset(&partitions);
    for (size_t i = 0; i < n; i++) {
        const char *topic = cfg->topic[parts[i].kind];
        pgarray_add_text(&topics, topic, strlen(topic));
        pgarray_add_int(&partitions, parts[i].partition);
        parts[i].next_offset = -1;
        parts[i].epoch = CLAIMS_NONE;
    }
    const char *params[4] = {group, owner, pgarray_finish(&topics), pgarray_finish(&partitions)};
    res = PQexecParams(conn, claim_sql, 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(errstr, errstr_size, "postgres: claiming partitions: %s", msg);
        goto out;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        struct ownership_partition *p = find_part(cfg, parts, n, PQgetvalue(res, row, 0),
                                                  (int32_t)atoi(PQgetvalue(res, row, 1)));
        if (!p)
            continue;
        p->next_offset = PQgetisnull(res, row, 2) ? -1 : atoll(PQgetvalue(res, row, 2));
        p->epoch = atoll(PQgetvalue(res, row, 3));
    }
    for (size_t i = 0; i < n; i++) {
        int64_t known = claims_resume(claims, parts[i].kind, parts[i].partition);
        int64_t resume = parts[i].next_offset >= 0 ? parts[i].next_offset : known;
        if (parts[i].epoch == CLAIMS_NONE ||
            !claims_set(claims, parts[i].kind, parts[i].partition, parts[i].epoch, resume)) {
            snprintf(errstr, errstr_size, "claiming partitions: %s [%d] not claimed",
                     cfg->topic[parts[i].kind], (int)parts[i].partition);
            goto out;
        }
    }
    ok = true;
out:
    PQclear(res);
    pgarray_free(&topics);
    pgarray_free(&partitions);
    return ok;
}

void ownership_label(const char *instance_id, char *buf, size_t size)
{
    char host[128] = "";
    const char *id = instance_id;
    if (!id[0]) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "unknown-host");
        host[sizeof(host) - 1] = '\0';
        id = host;
    }
    snprintf(buf, size, "%s/pid-%ld", id, (long)getpid());
}

/* Claims parts[0..n) on a connection of its own (see ownership_claim_assigned) and logs the
 * outcome. Returns false, leaving them as claims had them, when PostgreSQL cannot be asked. */
static bool claim_on_own_connection(const struct config *cfg, const char *owner,
                                    struct claims *claims, struct ownership_partition *parts,
                                    size_t n)
{
    char err[512];
    if (n == 0)
        return true;
    PGconn *conn = db_connect_blocking(cfg, err, sizeof(err));
    /* The loop waits for this: it must never wait on a lock that only the loop can release
     * (this instance's own flush in flight, storing offsets of a partition assigned again), or
     * on a zombie's flush. A claim that times out stays pending and is tried before the next
     * flush. */
    if (conn)
        PQclear(PQexec(conn, "SET lock_timeout = '2s'; SET statement_timeout = '5s'"));
    bool ok = conn && ownership_claim(conn, cfg, config_kafka_get(cfg, "group.id"), owner, parts, n,
                                      claims, err, sizeof(err));
    if (conn)
        PQfinish(conn);
    if (!ok) {
        char quoted[600];
        log_warn("event=claim_failed partitions=%zu msg=%s retry=before_next_flush", n,
                 log_quote(err, quoted, sizeof(quoted)));
        return false;
    }
    for (size_t i = 0; i < n; i++)
        log_info("event=partition_claimed topic=%s partition=%d epoch=%lld stored=%lld owner=%s",
                 cfg->topic[parts[i].kind], (int)parts[i].partition, (long long)parts[i].epoch,
                 (long long)parts[i].next_offset, owner);
    return true;
}

size_t ownership_assigned_parts(const struct config *cfg,
                                rd_kafka_topic_partition_list_t *partitions, struct claims *claims,
                                struct ownership_partition *parts)
{
    size_t n = 0;
    for (int i = 0; i < partitions->cnt; i++) {
        rd_kafka_topic_partition_t *p = &partitions->elems[i];
        int kind = reading_kind_of_topic(cfg->topic, p->topic);
        p->offset = RD_KAFKA_OFFSET_INVALID;
        if (kind < 0)
            continue;
        if (!claims_set(claims, kind, p->partition, CLAIMS_PENDING, -1))
            log_error("event=claim_failed msg=\"out of memory\"");
        if (parts)
            parts[n++] = (struct ownership_partition){.kind = kind, .partition = p->partition};
    }
    return n;
}

void ownership_start_at_stored(const struct config *cfg, const struct ownership_partition *parts,
                               size_t n, rd_kafka_topic_partition_list_t *partitions)
{
    for (size_t j = 0; j < n; j++) {
        if (parts[j].next_offset < 0)
            continue;
        for (int i = 0; i < partitions->cnt; i++) {
            rd_kafka_topic_partition_t *p = &partitions->elems[i];
            if (p->partition == parts[j].partition &&
                strcmp(p->topic, cfg->topic[parts[j].kind]) == 0) {
                p->offset = parts[j].next_offset;
                log_info("event=partition_start topic=%s partition=%d offset=%lld "
                         "source=postgres epoch=%lld",
                         p->topic, (int)p->partition, (long long)p->offset,
                         (long long)parts[j].epoch);
            }
        }
    }
}

void ownership_claim_assigned(const struct config *cfg, const char *owner, struct claims *claims,
                              rd_kafka_topic_partition_list_t *partitions)
{
    struct ownership_partition *parts = calloc((size_t)partitions->cnt + 1, sizeof(*parts));
    size_t n = ownership_assigned_parts(cfg, partitions, claims, parts);
    if (parts && claim_on_own_connection(cfg, owner, claims, parts, n))
        ownership_start_at_stored(cfg, parts, n, partitions);
    free(parts);
}

static void collect_pending(void *ctx, int kind, int32_t partition, int64_t epoch, int64_t resume)
{
    struct ownership_partition **next = ctx;
    (void)resume;
    if (epoch == CLAIMS_PENDING)
        *(*next)++ = (struct ownership_partition){.kind = kind, .partition = partition};
}

bool ownership_claim_pending(const struct config *cfg, const char *owner, struct claims *claims)
{
    size_t n = claims_pending(claims);
    if (n == 0)
        return true;
    struct ownership_partition *parts = calloc(n, sizeof(*parts)), *next = parts;
    if (!parts)
        return false;
    claims_each(claims, collect_pending, &next);
    bool ok = claim_on_own_connection(cfg, owner, claims, parts, n);
    free(parts);
    return ok;
}

void ownership_release(const struct config *cfg, struct claims *claims,
                       const rd_kafka_topic_partition_list_t *partitions)
{
    for (int i = 0; i < partitions->cnt; i++) {
        int kind = reading_kind_of_topic(cfg->topic, partitions->elems[i].topic);
        if (kind >= 0)
            claims_remove(claims, kind, partitions->elems[i].partition);
    }
}
