/* Shared by the benchmark's C programs: a plain librdkafka consumer of a fresh group, reading
 * the topics from the beginning, and a monotonic clock. */
#ifndef SOLARX_BENCH_COMMON_H
#define SOLARX_BENCH_COMMON_H

#include <stddef.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Milliseconds since the epoch on CLOCK_REALTIME (comparable with Kafka's CreateTime). */
long long bench_wall_ms(void);

/* A consumer of group in brokers, auto.offset.reset=earliest, no commits, subscribed to
 * topics[0 .. n_topics); extra "key=value" properties (may be NULL) are applied last.
 * Returns the handle (destroy with bench_consumer_close), or NULL with errstr set. */
rd_kafka_t *bench_consumer_new(const char *brokers, const char *group, const char *const *topics,
                               size_t n_topics, const char *const *extra, size_t n_extra,
                               char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Closes and destroys rk; NULL is a no-op. */
void bench_consumer_close(rd_kafka_t *rk);

/* Installs SIGINT/SIGTERM handlers that set the flag bench_stop_requested() reads. */
void bench_catch_stop_signals(void);
int bench_stop_requested(void);

/* Reads ppid, utime+stime (clock ticks), start time and RSS (pages) of pid from /proc/<pid>/stat.
 * Returns 0, or -1 when the process is gone or the line does not parse. */
int bench_proc_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks, unsigned long long *start,
                    long *rss_pages);

#endif
