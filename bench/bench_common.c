/* The benchmark programs' consumer set-up and clocks (see bench_common.h). */
#include "bench_common.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void bench_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int bench_stop_requested(void)
{
    return stop_flag;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long bench_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_property(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                        size_t errstr_size)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property %s: %s", key, why);
        return -1;
    }
    return 0;
}

static int set_extra(rd_kafka_conf_t *conf, const char *kv, char *errstr, size_t errstr_size)
{
    char key[256];
    const char *eq = strchr(kv, '=');
    if (eq == NULL || (size_t)(eq - kv) >= sizeof(key)) {
        snprintf(errstr, errstr_size, "kafka property \"%s\": expected key=value", kv);
        return -1;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    return set_property(conf, key, eq + 1, errstr, errstr_size);
}

rd_kafka_t *bench_consumer_new(const char *brokers, const char *group, const char *const *topics,
                               size_t n_topics, const char *const *extra, size_t n_extra,
                               char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *subscription = NULL;

    if (set_property(conf, "bootstrap.servers", brokers, errstr, errstr_size) ||
        set_property(conf, "group.id", group, errstr, errstr_size) ||
        set_property(conf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        set_property(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        set_property(conf, "enable.auto.offset.store", "false", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < n_extra; i++)
        if (set_extra(conf, extra[i], errstr, errstr_size))
            goto fail;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (rk == NULL)
        goto fail;
    conf = NULL; /* owned by rk */
    rd_kafka_poll_set_consumer(rk);
    subscription = rd_kafka_topic_partition_list_new((int)n_topics);
    for (size_t i = 0; i < n_topics; i++)
        rd_kafka_topic_partition_list_add(subscription, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subscription);
    rd_kafka_topic_partition_list_destroy(subscription);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return NULL;
}

void bench_consumer_close(rd_kafka_t *rk)
{
    if (rk == NULL)
        return;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

int bench_proc_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks, unsigned long long *start,
                    long *rss_pages)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (p == NULL)
        return -1;
    char state;
    int pp;
    unsigned long long utime, stime, starttime;
    long rss;
    /* fields 3.. after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss */
    if (sscanf(p + 2,
               "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %*u %ld",
               &state, &pp, &utime, &stime, &starttime, &rss) != 6)
        return -1;
    *ppid = pp;
    *ticks = utime + stime;
    *start = starttime;
    *rss_pages = rss;
    return 0;
}
