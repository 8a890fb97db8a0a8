/* floor_copy: the fetch + COPY floor of the benchmark. Reads N messages with a fresh consumer
 * group, decodes them with the service's decoder (libsolarx) and writes the readings into the
 * raw tables with COPY, one transaction per batch: no windows, no dimensions, no dead letters,
 * no offsets. What the hardware allows for "the readings reach PostgreSQL". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench_common.h"
#include "solarx/clock.h"
#include "solarx/copybinary.h"
#include "solarx/copytext.h"
#include "solarx/decode.h"
#include "solarx/fixed.h"

static const char usage_text[] =
    "usage: floor_copy --brokers LIST --group G --conninfo C --messages N\n"
    "                  --topic-home T --topic-solar T --topic-battery T\n"
    "                  [--batch-readings R] [--timeout S] [--format printf|text|binary]\n"
    "Consumes N messages from the beginning, COPYs their readings into solarx_raw.* of C\n"
    "(migrated) in transactions of up to R readings (default 50000) or 1 s, then prints\n"
    "\"messages=N readings=R dead_letters=D batches=B seconds=S cpu_s=C pg_backend_cpu_s=P\" and\n"
    "exits 0: C its own CPU (user + system), P its PostgreSQL backend's (from /proc, when the\n"
    "server runs on this machine; -1 otherwise).\n"
    "--format: printf (default) COPY text, a line at a time formatted with snprintf; text: COPY\n"
    "text built by copytext.c, binary: COPY (FORMAT binary) built by copybinary.c, both sent in\n"
    "256 KB chunks as the service's flusher sends them.\n";

struct options {
    const char *brokers;
    const char *group;
    const char *conninfo;
    long long messages;
    size_t batch_readings;
    double timeout_s;
    const char *topics[READING_KIND_COUNT];
    enum copy_format { FORMAT_PRINTF, FORMAT_TEXT, FORMAT_BINARY } format;
};

/* One decoded reading with where it came from. */
struct sourced_reading {
    struct reading r;
    int32_t partition;
    int64_t offset;
};

struct batch {
    struct sourced_reading *rows;
    size_t n, cap;
    int64_t min_ts, max_ts;
};

/* What one COPY writes: a raw table, its columns, and a row formatter. */
struct raw_table {
    const char *name;
    const char *columns;
    int (*format)(const struct sourced_reading *s, char *buf, size_t size);
};

static int format_home(const struct sourced_reading *s, char *buf, size_t size)
{
    char ts[CLOCK_TEXT_SIZE], e[FIXED_TEXT_SIZE], a[FIXED_TEXT_SIZE];
    return snprintf(
        buf, size, "%d\t%s\t%s\t%s\t%d\t%lld\n", s->r.home_id,
        clock_format_utc(s->r.ts, ts, sizeof(ts)), fixed_format(s->r.energy_wh, e, sizeof(e)),
        fixed_format(s->r.accumulated_wh, a, sizeof(a)), s->partition, (long long)s->offset);
}

static int format_solar(const struct sourced_reading *s, char *buf, size_t size)
{
    char ts[CLOCK_TEXT_SIZE], e[FIXED_TEXT_SIZE], a[FIXED_TEXT_SIZE];
    return snprintf(buf, size, "%d\t%s\t%d\t%s\t%s\t%d\t%lld\n", s->r.device_id,
                    clock_format_utc(s->r.ts, ts, sizeof(ts)), s->r.home_id,
                    fixed_format(s->r.energy_wh, e, sizeof(e)),
                    fixed_format(s->r.accumulated_wh, a, sizeof(a)), s->partition,
                    (long long)s->offset);
}

static int format_battery(const struct sourced_reading *s, char *buf, size_t size)
{
    char ts[CLOCK_TEXT_SIZE], cap[FIXED_TEXT_SIZE], speed[FIXED_TEXT_SIZE], e[FIXED_TEXT_SIZE],
        out[FIXED_TEXT_SIZE];
    return snprintf(buf, size, "%d\t%d\t%s\tbattery_%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%lld\n",
                    s->r.home_id, s->r.device_id, clock_format_utc(s->r.ts, ts, sizeof(ts)),
                    s->r.device_id, fixed_format(s->r.capacity_kwh, cap, sizeof(cap)),
                    fixed_format(s->r.max_charge_speed_w, speed, sizeof(speed)),
                    fixed_format(s->r.energy_wh, e, sizeof(e)), s->r.is_charging ? "t" : "f",
                    reading_status_name((enum battery_status)s->r.status),
                    fixed_format(s->r.max_output_w, out, sizeof(out)), s->partition,
                    (long long)s->offset);
}

static const struct raw_table raw_tables[READING_KIND_COUNT] = {
    [READING_HOME] = {"home_power_readings",
                      "home_id, ts, consumption_wh, accumulated_wh, src_partition, src_offset",
                      format_home},
    [READING_SOLAR] = {"solar_panel_readings",
                       "panel_id, ts, home_id, generation_wh, accumulated_wh, src_partition, "
                       "src_offset",
                       format_solar},
    [READING_BATTERY] = {"battery_readings",
                         "home_id, battery_id, ts, battery_name, capacity_kwh, "
                         "max_charge_speed_w, current_energy_wh, is_charging, status, "
                         "max_output_w, src_partition, src_offset",
                         format_battery},
};

/* The service's encoders, as its flusher uses them (flush.c add_copy_row). */
#define COPY_CHUNK (256 * 1024)

static void encode_text(struct copytext *c, const struct sourced_reading *s)
{
    const struct reading *r = &s->r;
    if (r->kind == READING_HOME) {
        copytext_add_int(c, r->home_id);
        copytext_add_timestamp(c, r->ts);
        copytext_add_fixed(c, r->energy_wh);
        copytext_add_fixed(c, r->accumulated_wh);
    } else if (r->kind == READING_SOLAR) {
        copytext_add_int(c, r->device_id);
        copytext_add_timestamp(c, r->ts);
        copytext_add_int(c, r->home_id);
        copytext_add_fixed(c, r->energy_wh);
        copytext_add_fixed(c, r->accumulated_wh);
    } else {
        const char *status = reading_status_name((enum battery_status)r->status);
        copytext_add_int(c, r->home_id);
        copytext_add_int(c, r->device_id);
        copytext_add_timestamp(c, r->ts);
        copytext_add_text_int(c, "battery_", r->device_id);
        copytext_add_fixed(c, r->capacity_kwh);
        copytext_add_fixed(c, r->max_charge_speed_w);
        copytext_add_fixed(c, r->energy_wh);
        copytext_add_bool(c, r->is_charging);
        copytext_add_text(c, status, strlen(status));
        copytext_add_fixed(c, r->max_output_w);
    }
    copytext_add_int(c, s->partition);
    copytext_add_int(c, s->offset);
    copytext_end_row(c);
}

static void encode_binary(struct copybinary *c, const struct sourced_reading *s)
{
    copybinary_add_raw_reading(c, s->r.kind, &s->r, s->partition, s->offset);
}

static struct copytext copy_text;
static struct copybinary copy_binary;

/* CPU seconds (user + system) of process pid, or -1. */
static double process_cpu_s(int pid)
{
    pid_t ppid;
    unsigned long long ticks, start;
    long rss;
    if (bench_proc_stat((pid_t)pid, &ppid, &ticks, &start, &rss) != 0)
        return -1;
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.batch_readings = 50000, .timeout_s = 1800};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--brokers") == 0)
            o->brokers = v;
        else if (strcmp(a, "--group") == 0)
            o->group = v;
        else if (strcmp(a, "--conninfo") == 0)
            o->conninfo = v;
        else if (strcmp(a, "--messages") == 0)
            o->messages = atoll(v);
        else if (strcmp(a, "--batch-readings") == 0)
            o->batch_readings = (size_t)atoll(v);
        else if (strcmp(a, "--timeout") == 0)
            o->timeout_s = atof(v);
        else if (strcmp(a, "--format") == 0 && strcmp(v, "printf") == 0)
            o->format = FORMAT_PRINTF;
        else if (strcmp(a, "--format") == 0 && strcmp(v, "text") == 0)
            o->format = FORMAT_TEXT;
        else if (strcmp(a, "--format") == 0 && strcmp(v, "binary") == 0)
            o->format = FORMAT_BINARY;
        else if (strcmp(a, "--topic-home") == 0)
            o->topics[READING_HOME] = v;
        else if (strcmp(a, "--topic-solar") == 0)
            o->topics[READING_SOLAR] = v;
        else if (strcmp(a, "--topic-battery") == 0)
            o->topics[READING_BATTERY] = v;
        else
            return -1;
    }
    if (argc % 2 == 0)
        return -1;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (o->topics[k] == NULL)
            return -1;
    return o->brokers && o->group && o->conninfo && o->messages > 0 && o->batch_readings > 0 ? 0
                                                                                             : -1;
}

static int kind_of_topic(const struct options *o, const char *topic)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (strcmp(o->topics[k], topic) == 0)
            return k;
    return -1;
}

/* Orders by device and second, then by offset, so the first delivery of a duplicate wins. */
static int compare_rows(const void *pa, const void *pb)
{
    const struct sourced_reading *a = pa, *b = pb;
    if (a->r.kind != b->r.kind)
        return a->r.kind < b->r.kind ? -1 : 1;
    if (a->r.home_id != b->r.home_id)
        return a->r.home_id < b->r.home_id ? -1 : 1;
    if (a->r.device_id != b->r.device_id)
        return a->r.device_id < b->r.device_id ? -1 : 1;
    if (a->r.ts != b->r.ts)
        return a->r.ts < b->r.ts ? -1 : 1;
    if (a->partition != b->partition)
        return a->partition < b->partition ? -1 : 1;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int same_second(const struct sourced_reading *a, const struct sourced_reading *b)
{
    return a->r.kind == b->r.kind && a->r.home_id == b->r.home_id &&
           a->r.device_id == b->r.device_id && a->r.ts == b->r.ts;
}

/* Sorts the batch and drops later copies of a device's second. */
static void batch_dedupe(struct batch *b)
{
    qsort(b->rows, b->n, sizeof(*b->rows), compare_rows);
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++)
        if (kept == 0 || !same_second(&b->rows[kept - 1], &b->rows[i]))
            b->rows[kept++] = b->rows[i];
    b->n = kept;
}

static int batch_add(struct batch *b, const struct reading *r, int32_t partition, int64_t offset)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        struct sourced_reading *rows = realloc(b->rows, cap * sizeof(*rows));
        if (rows == NULL)
            return -1;
        b->rows = rows;
        b->cap = cap;
    }
    b->rows[b->n++] = (struct sourced_reading){*r, partition, offset};
    if (b->n == 1 || r->ts < b->min_ts)
        b->min_ts = r->ts;
    if (b->n == 1 || r->ts > b->max_ts)
        b->max_ts = r->ts;
    return 0;
}

static int exec_ok(PGconn *pg, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(errstr, errstr_size, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* COPYs the rows of one kind (the batch is sorted by kind) into table target. Returns 0, or -1
 * with errstr set and *unique_violation telling whether a row already existed. */
static int copy_kind(PGconn *pg, const struct batch *b, int kind, const char *target,
                     enum copy_format format, int *unique_violation, char *errstr,
                     size_t errstr_size)
{
    const struct raw_table *t = &raw_tables[kind];
    char sql[512], line[1024];
    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN%s", target, t->columns,
             format == FORMAT_BINARY ? " (FORMAT binary)" : "");
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        snprintf(errstr, errstr_size, "%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    copytext_reset(&copy_text);
    copybinary_reset(&copy_binary);
    if (format == FORMAT_BINARY)
        copybinary_add_header(&copy_binary);
    int sent = 1;
    for (size_t i = 0; i < b->n && sent == 1; i++) {
        if ((int)b->rows[i].r.kind != kind)
            continue;
        if (format == FORMAT_PRINTF) {
            int len = t->format(&b->rows[i], line, sizeof(line));
            sent = PQputCopyData(pg, line, len);
        } else if (format == FORMAT_TEXT) {
            encode_text(&copy_text, &b->rows[i]);
            if (copy_text.len >= COPY_CHUNK) {
                sent = PQputCopyData(pg, copy_text.buf, (int)copy_text.len);
                copytext_reset(&copy_text);
            }
        } else {
            encode_binary(&copy_binary, &b->rows[i]);
            if (copy_binary.len >= COPY_CHUNK) {
                sent = PQputCopyData(pg, (const char *)copy_binary.buf, (int)copy_binary.len);
                copybinary_reset(&copy_binary);
            }
        }
    }
    if (format == FORMAT_BINARY)
        copybinary_add_trailer(&copy_binary);
    if (sent == 1 && copy_text.len > 0)
        (void)PQputCopyData(pg, copy_text.buf, (int)copy_text.len);
    if (sent == 1 && copy_binary.len > 0)
        (void)PQputCopyData(pg, (const char *)copy_binary.buf, (int)copy_binary.len);
    PQputCopyEnd(pg, NULL);
    res = PQgetResult(pg);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        *unique_violation = state != NULL && strcmp(state, "23505") == 0;
        snprintf(errstr, errstr_size, "COPY %s: %s", target, PQresultErrorMessage(res));
    }
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    return rc;
}

/* Writes the batch in one transaction. fast: COPY straight into the raw tables; otherwise COPY
 * into a temporary table and INSERT ... ON CONFLICT DO NOTHING (the path taken when a reading
 * of this batch was already written by an earlier one). */
static int write_batch(PGconn *pg, const struct batch *b, int fast, enum copy_format format,
                       int *unique_violation, char *errstr, size_t errstr_size)
{
    char sql[512], from[CLOCK_TEXT_SIZE], to[CLOCK_TEXT_SIZE];
    *unique_violation = 0;
    snprintf(sql, sizeof(sql), "SELECT solarx_raw.ensure_day_partitions('%s', '%s')",
             clock_format_utc(b->min_ts, from, sizeof(from)),
             clock_format_utc(b->max_ts, to, sizeof(to)));
    if (exec_ok(pg, "BEGIN", errstr, errstr_size) || exec_ok(pg, sql, errstr, errstr_size))
        goto fail;
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        const char *name = raw_tables[k].name;
        char target[128];
        if (fast) {
            snprintf(target, sizeof(target), "solarx_raw.%s", name);
        } else {
            snprintf(target, sizeof(target), "pg_temp.stage_%s", name);
            snprintf(sql, sizeof(sql),
                     "CREATE TEMP TABLE IF NOT EXISTS stage_%s (LIKE solarx_raw.%s "
                     "INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                     name, name);
            if (exec_ok(pg, sql, errstr, errstr_size))
                goto fail;
        }
        if (copy_kind(pg, b, k, target, format, unique_violation, errstr, errstr_size))
            goto fail;
        if (!fast) {
            snprintf(sql, sizeof(sql),
                     "INSERT INTO solarx_raw.%s (%s) SELECT %s FROM pg_temp.stage_%s "
                     "ON CONFLICT DO NOTHING",
                     name, raw_tables[k].columns, raw_tables[k].columns, name);
            if (exec_ok(pg, sql, errstr, errstr_size))
                goto fail;
        }
    }
    if (exec_ok(pg, "COMMIT", errstr, errstr_size))
        goto fail;
    return 0;
fail:
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

static int flush_batch(PGconn *pg, struct batch *b, enum copy_format format, char *errstr,
                       size_t errstr_size)
{
    int unique_violation = 0;
    if (b->n == 0)
        return 0;
    batch_dedupe(b);
    if (write_batch(pg, b, 1, format, &unique_violation, errstr, errstr_size) != 0) {
        if (!unique_violation ||
            write_batch(pg, b, 0, format, &unique_violation, errstr, errstr_size) != 0)
            return -1;
    }
    b->n = 0;
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    char errstr[1024];
    if (parse_options(argc, argv, &o) != 0) {
        fputs(usage_text, stderr);
        return 64;
    }
    bench_catch_stop_signals();
    struct clock_zone *utc = clock_zone_new("UTC", errstr, sizeof(errstr));
    if (utc == NULL) {
        fprintf(stderr, "floor_copy: %s\n", errstr);
        return 1;
    }
    struct decode_config dc = {.default_home_id = 1, .default_panel_id = 4, .zone = utc};
    PGconn *pg = PQconnectdb(o.conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "floor_copy: postgres: %s", PQerrorMessage(pg));
        return 1;
    }
    rd_kafka_t *rk = bench_consumer_new(o.brokers, o.group, o.topics, READING_KIND_COUNT, NULL, 0,
                                        errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "floor_copy: %s\n", errstr);
        return 1;
    }
    struct batch b = {0};
    struct reading readings[DECODE_MAX_READINGS];
    char reason[DECODE_REASON_SIZE];
    long long seen = 0, n_readings = 0, dead = 0, batches = 0;
    int rc = 0;
    double t0 = bench_now(), last_flush = t0;
    while (seen < o.messages) {
        if (bench_stop_requested() || bench_now() - t0 > o.timeout_s) {
            fprintf(stderr, "floor_copy: stopped after %lld of %lld messages\n", seen, o.messages);
            rc = 1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 20);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            seen++;
            int kind = kind_of_topic(&o, rd_kafka_topic_name(m->rkt));
            size_t n = 0;
            if (kind < 0 || decode_message(&dc, (enum reading_kind)kind, m->payload, m->len,
                                           readings, &n, reason, sizeof(reason)) != DECODE_OK) {
                dead++;
            }
            for (size_t i = 0; i < n; i++)
                if (batch_add(&b, &readings[i], m->partition, m->offset) != 0) {
                    fprintf(stderr, "floor_copy: out of memory\n");
                    return 1;
                }
            n_readings += (long long)n;
        } else if (m != NULL && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "floor_copy: %s\n", rd_kafka_message_errstr(m));
        }
        if (m != NULL)
            rd_kafka_message_destroy(m);
        if (b.n >= o.batch_readings || seen == o.messages ||
            (b.n > 0 && bench_now() - last_flush >= 1.0)) {
            if (flush_batch(pg, &b, o.format, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "floor_copy: %s", errstr);
                rc = 1;
                break;
            }
            batches++;
            last_flush = bench_now();
        }
    }
    double seconds = bench_now() - t0;
    printf("messages=%lld readings=%lld dead_letters=%lld batches=%lld seconds=%.3f cpu_s=%.2f "
           "pg_backend_cpu_s=%.2f\n",
           seen, n_readings, dead, batches, seconds, own_cpu_s(), process_cpu_s(PQbackendPID(pg)));
    bench_consumer_close(rk);
    PQfinish(pg);
    free(b.rows);
    copytext_free(&copy_text);
    copybinary_free(&copy_binary);
    clock_zone_destroy(utc);
    return rc;
}
