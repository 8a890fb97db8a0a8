/* freshness_probe: measures how long a reading takes from its producer to PostgreSQL. It reads
 * the home topic itself (a fresh group) to learn each message's produce time (Kafka CreateTime,
 * set by the producer) and its home and second, and polls PostgreSQL every --interval-ms for the
 * newest second each home's facts hold. A message is visible at the first poll whose frontier
 * for its home reaches its second; freshness = that poll's wall time - the produce time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "bench_common.h"
#include "solarx/clock.h"
#include "solarx/decode.h"

#define MAX_HOMES 100000

static const char usage_text[] =
    "usage: freshness_probe --brokers LIST --group G --topic-home T --conninfo C --query SQL\n"
    "                       [--interval-ms MS] [--drain-s S] [--since-ms T]\n"
    "Messages produced before T (ms since the epoch, default 0) are left out.\n"
    "SQL returns rows (home_id integer, newest second of the home's facts as epoch bigint).\n"
    "Runs until SIGTERM, then drains for up to S seconds (default 30) until every message seen\n"
    "is visible, and prints \"messages=N visible=V p50_ms=.. p99_ms=.. max_ms=..\".\n";

struct pending {
    int64_t ts;
    long long produced_ms;
};

/* One frontier advance of a home: at wall time polled_ms its facts reached second frontier. */
struct advance {
    long long polled_ms;
    int64_t frontier;
};

struct home {
    struct pending *queue; /* messages not yet visible, oldest first */
    size_t head, n, cap;
    struct advance *history;
    size_t n_history, cap_history;
};

struct latencies {
    long long *ms;
    size_t n, cap;
};

static struct home homes[MAX_HOMES + 1];

static void *grow(void *p, size_t *cap, size_t elem)
{
    size_t next = *cap ? 2 * *cap : 256;
    void *q = realloc(p, next * elem);
    if (q == NULL) {
        fputs("freshness_probe: out of memory\n", stderr);
        exit(1);
    }
    *cap = next;
    return q;
}

static void home_push(struct home *h, int64_t ts, long long produced_ms)
{
    if (h->head > 0 && h->head == h->n) {
        h->head = h->n = 0;
    }
    if (h->n == h->cap)
        h->queue = grow(h->queue, &h->cap, sizeof(*h->queue));
    h->queue[h->n++] = (struct pending){ts, produced_ms};
}

static void latencies_add(struct latencies *l, long long ms)
{
    if (l->n == l->cap)
        l->ms = grow(l->ms, &l->cap, sizeof(*l->ms));
    l->ms[l->n++] = ms;
}

/* The wall time of the first poll at which h's frontier reached ts, or -1. */
static long long visible_at(const struct home *h, int64_t ts)
{
    size_t lo = 0, hi = h->n_history;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->history[mid].frontier >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < h->n_history ? h->history[lo].polled_ms : -1;
}

/* Moves h's messages that its frontier covers from the queue to the latencies. */
static void home_settle(struct home *h, struct latencies *l)
{
    while (h->head < h->n) {
        const struct pending *p = &h->queue[h->head];
        long long at = visible_at(h, p->ts);
        if (at < 0)
            break;
        latencies_add(l, at > p->produced_ms ? at - p->produced_ms : 0);
        h->head++;
    }
}

static int poll_frontiers(PGconn *pg, const char *query, struct latencies *l)
{
    PGresult *res = PQexec(pg, query);
    long long now_ms = bench_wall_ms();
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "freshness_probe: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        long home_id = atol(PQgetvalue(res, r, 0));
        if (home_id <= 0 || home_id > MAX_HOMES || PQgetisnull(res, r, 1))
            continue;
        int64_t frontier = atoll(PQgetvalue(res, r, 1));
        struct home *h = &homes[home_id];
        if (h->n_history > 0 && h->history[h->n_history - 1].frontier >= frontier)
            continue;
        if (h->n_history == h->cap_history)
            h->history = grow(h->history, &h->cap_history, sizeof(*h->history));
        h->history[h->n_history++] = (struct advance){now_ms, frontier};
    }
    PQclear(res);
    for (long i = 1; i <= MAX_HOMES; i++)
        if (homes[i].head < homes[i].n)
            home_settle(&homes[i], l);
    return 0;
}

static int compare_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long percentile(const struct latencies *l, double q)
{
    if (l->n == 0)
        return -1;
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    return l->ms[i];
}

static size_t pending_total(void)
{
    size_t n = 0;
    for (long i = 1; i <= MAX_HOMES; i++)
        n += homes[i].n - homes[i].head;
    return n;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *topic = NULL, *conninfo = NULL, *query = NULL;
    long interval_ms = 100;
    double drain_s = 30;
    long long since_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--brokers") == 0)
            brokers = v;
        else if (strcmp(a, "--group") == 0)
            group = v;
        else if (strcmp(a, "--topic-home") == 0)
            topic = v;
        else if (strcmp(a, "--conninfo") == 0)
            conninfo = v;
        else if (strcmp(a, "--query") == 0)
            query = v;
        else if (strcmp(a, "--interval-ms") == 0)
            interval_ms = atol(v);
        else if (strcmp(a, "--drain-s") == 0)
            drain_s = atof(v);
        else if (strcmp(a, "--since-ms") == 0)
            since_ms = atoll(v);
        else
            brokers = NULL;
    }
    if (!brokers || !group || !topic || !conninfo || !query || interval_ms <= 0 || argc % 2 == 0) {
        fputs(usage_text, stderr);
        return 64;
    }
    char errstr[512];
    bench_catch_stop_signals();
    struct clock_zone *utc = clock_zone_new("UTC", errstr, sizeof(errstr));
    if (utc == NULL) {
        fprintf(stderr, "freshness_probe: %s\n", errstr);
        return 1;
    }
    struct decode_config dc = {.default_home_id = 1, .default_panel_id = 4, .zone = utc};
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "freshness_probe: postgres: %s", PQerrorMessage(pg));
        return 1;
    }
    const char *topics[] = {topic};
    rd_kafka_t *rk = bench_consumer_new(brokers, group, topics, 1, NULL, 0, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "freshness_probe: %s\n", errstr);
        return 1;
    }
    struct latencies l = {0};
    struct reading readings[DECODE_MAX_READINGS];
    char reason[DECODE_REASON_SIZE];
    long long seen = 0;
    double next_poll = bench_now(), drain_until = 0, last_message = bench_now();
    for (;;) {
        if (bench_stop_requested() && drain_until == 0)
            drain_until = bench_now() + drain_s;
        if (drain_until > 0 && (bench_now() > drain_until ||
                                (pending_total() == 0 && bench_now() - last_message > 2.0)))
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10);
        if (m != NULL) {
            size_t n = 0;
            rd_kafka_timestamp_type_t type;
            long long produced_ms = rd_kafka_message_timestamp(m, &type);
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && produced_ms > 0 &&
                produced_ms >= since_ms &&
                decode_message(&dc, READING_HOME, m->payload, m->len, readings, &n, reason,
                               sizeof(reason)) == DECODE_OK &&
                n == 1 && readings[0].home_id > 0 && readings[0].home_id <= MAX_HOMES) {
                home_push(&homes[readings[0].home_id], readings[0].ts, produced_ms);
                seen++;
                last_message = bench_now();
            }
            rd_kafka_message_destroy(m);
        }
        if (bench_now() >= next_poll) {
            if (poll_frontiers(pg, query, &l) != 0)
                return 1;
            next_poll = bench_now() + (double)interval_ms / 1000.0;
        }
    }
    qsort(l.ms, l.n, sizeof(*l.ms), compare_ll);
    printf("messages=%lld visible=%zu p50_ms=%lld p90_ms=%lld p99_ms=%lld max_ms=%lld "
           "interval_ms=%ld\n",
           seen, l.n, percentile(&l, 0.50), percentile(&l, 0.90), percentile(&l, 0.99),
           percentile(&l, 1.0), interval_ms);
    bench_consumer_close(rk);
    PQfinish(pg);
    clock_zone_destroy(utc);
    for (long i = 0; i <= MAX_HOMES; i++) {
        free(homes[i].queue);
        free(homes[i].history);
    }
    free(l.ms);
    return 0;
}
