/* Claiming partitions in solarx_meta.consumer_offsets: one upsert that increments the epochs. */
#include "solarx/ownership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/pgarray.h"

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
