/* The status report: consumer offsets in PostgreSQL against Kafka's watermarks. */
#include "solarx/status.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/db.h"
#include "solarx/kafka.h"

#define KAFKA_TIMEOUT_MS 10000

/* A handle for metadata and watermarks only: it never joins the group, so the group keys of
 * [kafka] are harmless. */
static rd_kafka_t *kafka_handle(const struct config *cfg, char *errstr, size_t errstr_size)
{
    static const char *const quiet[] = {"log_level", "3", NULL};
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, quiet, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* PostgreSQL's next offset of (topic, partition), or -1. */
static long long stored_offset(PGresult *res, const char *topic, int partition)
{
    for (int row = 0; row < PQntuples(res); row++)
        if (atoi(PQgetvalue(res, row, 1)) == partition &&
            strcmp(PQgetvalue(res, row, 0), topic) == 0)
            return atoll(PQgetvalue(res, row, 2));
    return -1;
}

int status_report(const struct config *cfg, FILE *out, long long *total_lag_out, char *errstr,
                  size_t errstr_size)
{
    int rc = -1;
    PGresult *offsets = NULL, *last = NULL;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    long long total_lag = 0;
    int partitions = 0;

    PGconn *conn = db_connect_blocking(cfg, errstr, errstr_size);
    if (!conn)
        return -1;
    const char *group = config_kafka_get(cfg, "group.id");
    const char *params[1] = {group};
    offsets = PQexecParams(conn,
                           "SELECT topic, \"partition\", next_offset"
                           " FROM solarx_meta.consumer_offsets"
                           " WHERE consumer_group = $1 AND next_offset IS NOT NULL",
                           1, NULL, params, NULL, NULL, 0);
    last = PQexecParams(conn,
                        "SELECT coalesce(to_char(max(updated_at) AT TIME ZONE 'UTC',"
                        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'never')"
                        " FROM solarx_meta.consumer_offsets"
                        " WHERE consumer_group = $1 AND next_offset IS NOT NULL",
                        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(offsets) != PGRES_TUPLES_OK || PQresultStatus(last) != PGRES_TUPLES_OK) {
        snprintf(errstr, errstr_size, "postgres: reading offsets: %s",
                 PQresultErrorMessage(PQresultStatus(offsets) != PGRES_TUPLES_OK ? offsets : last));
        goto out;
    }
    rk = kafka_handle(cfg, errstr, errstr_size);
    if (!rk)
        goto out;
    fprintf(out, "%-28s %9s %14s %14s %12s\n", "topic", "partition", "postgres_next", "kafka_high",
            "lag");
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, cfg->topic[k], NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, topic, &md, KAFKA_TIMEOUT_MS);
        rd_kafka_topic_destroy(topic);
        if (err || md->topic_cnt != 1 || md->topics[0].err) {
            snprintf(errstr, errstr_size, "kafka: topic %s: %s", cfg->topic[k],
                     rd_kafka_err2str(err             ? err
                                      : md->topic_cnt ? md->topics[0].err
                                                      : err));
            goto out;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            int32_t p = md->topics[0].partitions[i].id;
            int64_t low = 0, high = 0;
            err = rd_kafka_query_watermark_offsets(rk, cfg->topic[k], p, &low, &high,
                                                   KAFKA_TIMEOUT_MS);
            if (err) {
                snprintf(errstr, errstr_size, "kafka: %s [%d]: %s", cfg->topic[k], (int)p,
                         rd_kafka_err2str(err));
                goto out;
            }
            long long next = stored_offset(offsets, cfg->topic[k], p);
            long long lag = (long long)high - (next >= 0 ? (next > low ? next : low) : low);
            if (lag < 0)
                lag = 0;
            total_lag += lag;
            partitions++;
            if (next >= 0)
                fprintf(out, "%-28s %9d %14lld %14lld %12lld\n", cfg->topic[k], (int)p, next,
                        (long long)high, lag);
            else
                fprintf(out, "%-28s %9d %14s %14lld %12lld\n", cfg->topic[k], (int)p, "-",
                        (long long)high, lag);
        }
        rd_kafka_metadata_destroy(md);
        md = NULL;
    }
    fprintf(out, "group=%s total_lag=%lld partitions=%d last_flush=%s\n", group, total_lag,
            partitions, PQgetvalue(last, 0, 0));
    *total_lag_out = total_lag;
    rc = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rk)
        rd_kafka_destroy(rk);
    PQclear(offsets);
    PQclear(last);
    PQfinish(conn);
    return rc;
}
