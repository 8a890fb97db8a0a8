/* floor_fetch: the fetch-only floor of the benchmark. Reads N messages of the given topics with
 * a fresh consumer group and librdkafka's defaults, touches nothing else, and says how long it
 * took. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define MAX_TOPICS 8
#define MAX_EXTRA 16

static const char usage_text[] =
    "usage: floor_fetch --brokers LIST --group G --messages N [--timeout S] [-X KEY=VALUE]...\n"
    "                   TOPIC...\n"
    "Consumes N messages of TOPIC... from the beginning, then prints\n"
    "\"messages=N bytes=B seconds=S\" and exits 0; exits 1 on a Kafka error or after S seconds\n"
    "(default 1800) without N messages. -X sets a librdkafka property (librdkafka's defaults\n"
    "otherwise), e.g. the service's fetch settings.\n";

struct options {
    const char *brokers;
    const char *group;
    long long messages;
    double timeout_s;
    const char *topics[MAX_TOPICS];
    size_t n_topics;
    const char *extra[MAX_EXTRA];
    size_t n_extra;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.timeout_s = 1800};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--brokers") == 0 && v) {
            o->brokers = v;
            i++;
        } else if (strcmp(a, "--group") == 0 && v) {
            o->group = v;
            i++;
        } else if (strcmp(a, "--messages") == 0 && v) {
            o->messages = atoll(v);
            i++;
        } else if (strcmp(a, "--timeout") == 0 && v) {
            o->timeout_s = atof(v);
            i++;
        } else if (strcmp(a, "-X") == 0 && v && o->n_extra < MAX_EXTRA) {
            o->extra[o->n_extra++] = v;
            i++;
        } else if (a[0] != '-' && o->n_topics < MAX_TOPICS) {
            o->topics[o->n_topics++] = a;
        } else {
            return -1;
        }
    }
    return o->brokers && o->group && o->messages > 0 && o->n_topics > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct options o;
    char errstr[512];
    if (parse_options(argc, argv, &o) != 0) {
        fputs(usage_text, stderr);
        return 64;
    }
    bench_catch_stop_signals();
    rd_kafka_t *rk = bench_consumer_new(o.brokers, o.group, o.topics, o.n_topics, o.extra,
                                        o.n_extra, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "floor_fetch: %s\n", errstr);
        return 1;
    }
    double t0 = bench_now();
    long long seen = 0, bytes = 0;
    int rc = 0;
    while (seen < o.messages) {
        if (bench_stop_requested() || bench_now() - t0 > o.timeout_s) {
            fprintf(stderr, "floor_fetch: stopped after %lld of %lld messages\n", seen, o.messages);
            rc = 1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            seen++;
            bytes += (long long)m->len;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "floor_fetch: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    double seconds = bench_now() - t0;
    printf("messages=%lld bytes=%lld seconds=%.3f\n", seen, bytes, seconds);
    bench_consumer_close(rk);
    return rc;
}
