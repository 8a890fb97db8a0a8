/* Raw archive before retention: day partitions out to gzip'd Solar-X topic dumps, made durable
 * (temporary name, fsync, rename, fsync of the directory), then dropped. Its own blocking
 * PostgreSQL connection; in the service it runs on a thread of its own. */
#include "solarx/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "solarx/db.h"
#include "solarx/dumpname.h"
#include "solarx/log.h"

#define WORKER_RETRY_S 30

struct archiver {
    const struct config *cfg; /* borrowed */
    PGconn *conn;             /* NULL until the first run, and after a failure */
};

/* The partition days (UTC, "YYYY-MM-DD") of the raw tables that end at or before $1. */
static const char days_sql[] =
    "SELECT DISTINCT to_char(to_date(right(c.relname, 8), 'YYYYMMDD'), 'YYYY-MM-DD') AS day"
    "  FROM pg_inherits i"
    "  JOIN pg_class c ON c.oid = i.inhrelid"
    "  JOIN pg_class p ON p.oid = i.inhparent"
    "  JOIN pg_namespace n ON n.oid = p.relnamespace"
    " WHERE n.nspname = 'solarx_raw'"
    "   AND p.relname IN ('home_power_readings', 'solar_panel_readings', 'battery_readings')"
    "   AND c.relname ~ '_[0-9]{8}$'"
    "   AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'"
    "       <= to_timestamp($1::bigint)"
    " ORDER BY 1";

/* The producers' time stamp: naive local time of source_timezone ($2); an instant that naive
 * text would not name (the second pass of a DST overlap) is written in UTC with "Z". */
#define LOCAL_TS                                                                                   \
    "CASE WHEN to_char(ts AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI:SS')::timestamp AT TIME ZONE $2"    \
    " = ts THEN to_char(ts AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI:SS')"                              \
    " ELSE to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END"
#define DAY_RANGE                                                                                  \
    " ts >= $1::date::timestamp AT TIME ZONE 'UTC'"                                                \
    " AND ts < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'"

/* One message per line, in the producers' shapes, indexed by enum reading_kind. */
static const char *const topic_sql[READING_KIND_COUNT] = {
    [READING_HOME] =
        "SELECT jsonb_build_object('time_stamp', " LOCAL_TS
        ", 'current_consumption_w', trim_scale(consumption_wh),"
        " 'consumption_accumulated_w', trim_scale(accumulated_wh), 'home_id', home_id)::text"
        " FROM solarx_raw.home_power_readings WHERE" DAY_RANGE " ORDER BY ts, home_id",
    [READING_SOLAR] =
        "SELECT jsonb_build_object('time_stamp', " LOCAL_TS
        ", 'current_consumption_w', trim_scale(generation_wh),"
        " 'consumption_accumulated_w', trim_scale(accumulated_wh), 'home_id', home_id,"
        " 'panel_id', panel_id)::text"
        " FROM solarx_raw.solar_panel_readings WHERE" DAY_RANGE " ORDER BY ts, panel_id",
    [READING_BATTERY] =
        "SELECT jsonb_build_object('time_stamp', " LOCAL_TS ", 'home_id', home_id, 'batteries',"
        " jsonb_object_agg(battery_name, jsonb_build_object('capacity_kwh', "
        "trim_scale(capacity_kwh),"
        " 'max_charge_speed_w', trim_scale(max_charge_speed_w), 'current_energy_wh', "
        "trim_scale(current_energy_wh),"
        " 'is_charging', is_charging::int, 'status', status, 'max_output_w', "
        "trim_scale(max_output_w))"
        " ORDER BY battery_id))::text"
        " FROM solarx_raw.battery_readings WHERE" DAY_RANGE " GROUP BY home_id, ts"
        " ORDER BY ts, home_id",
};

static bool make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return false;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(buf, 0750) == 0 || errno == EEXIST;
}

struct archiver *archiver_new(const struct config *cfg, char *errstr, size_t errstr_size)
{
    const char *dir = cfg->raw_archive_dir;
    if (!make_dirs(dir) || access(dir, W_OK | X_OK) != 0) {
        snprintf(errstr, errstr_size, "archive: [solarx] raw_archive_dir %s: %s", dir,
                 strerror(errno));
        return NULL;
    }
    struct archiver *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(errstr, errstr_size, "archive: out of memory");
        return NULL;
    }
    a->cfg = cfg;
    return a;
}

void archiver_destroy(struct archiver *a)
{
    if (!a)
        return;
    PQfinish(a->conn);
    free(a);
}

static void pg_error(char *errstr, size_t errstr_size, const char *what, const char *msg)
{
    snprintf(errstr, errstr_size, "archive: %s: %s", what, msg);
    errstr[strcspn(errstr, "\n")] = '\0';
}

static bool fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Streams the query's rows (single-row mode: memory stays flat) into gz, a line each. */
static bool stream_rows(struct archiver *a, enum reading_kind kind, const char *day, gzFile gz,
                        uint64_t *rows, const atomic_bool *stop, char *errstr, size_t errstr_size)
{
    const char *params[2] = {day, a->cfg->source_timezone};
    if (!PQsendQueryParams(a->conn, topic_sql[kind], 2, NULL, params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(a->conn)) {
        pg_error(errstr, errstr_size, "query", PQerrorMessage(a->conn));
        return false;
    }
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(a->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (ok && st == PGRES_SINGLE_TUPLE) {
            const char *line = PQgetvalue(res, 0, 0);
            unsigned len = (unsigned)PQgetlength(res, 0, 0);
            if ((unsigned)gzwrite(gz, line, len) != len || gzputc(gz, '\n') < 0) {
                int err;
                const char *msg = gzerror(gz, &err);
                snprintf(errstr, errstr_size, "archive: write: %s",
                         err == Z_ERRNO ? strerror(errno) : msg);
                ok = false;
            }
            (*rows)++;
            if (ok && stop && atomic_load(stop)) {
                snprintf(errstr, errstr_size, "archive: stopped");
                ok = false;
            }
            if (!ok) {
                PQclear(res);
                PQfinish(a->conn); /* abandons the rest of the rows */
                a->conn = NULL;
                return false;
            }
        } else if (ok && st != PGRES_TUPLES_OK) {
            pg_error(errstr, errstr_size, "query", PQresultErrorMessage(res));
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

/* Copies an earlier archive of the same name (if any) to fd: an archive is only ever extended by
 * a new gzip member, never replaced, so a day archived twice (a crash between the rename and
 * the drop, or late rows another instance stored after the first archive) loses nothing. */
static bool copy_earlier_archive(const char *final_path, int fd)
{
    int in = open(final_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT;
    char buf[1 << 16];
    ssize_t n;
    bool ok = true;
    while (ok && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            ok = errno == EINTR;
            continue;
        }
        for (ssize_t off = 0; ok && off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            ok = w > 0 || (w < 0 && errno == EINTR);
            off += w > 0 ? w : 0;
        }
    }
    close(in);
    return ok;
}

/* Writes the day of one topic to <dir>/kafka_log_<topic>_<day>.log.gz, durably, after whatever an
 * earlier archive of that name holds; no file when the day holds no row of it. *rows: the lines
 * written. */
static bool archive_topic_day(struct archiver *a, enum reading_kind kind, const char *day,
                              uint64_t *rows, const atomic_bool *stop, char *errstr,
                              size_t errstr_size)
{
    const char *dir = a->cfg->raw_archive_dir;
    char name[512], final_path[4096], tmp_path[4096];
    if (!dumpname_format_daily(name, sizeof(name), a->cfg->topic[kind], day) ||
        snprintf(final_path, sizeof(final_path), "%s/%s", dir, name) >= (int)sizeof(final_path) ||
        snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp_path)) {
        snprintf(errstr, errstr_size, "archive: %s: path too long", dir);
        return false;
    }
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd >= 0 && !copy_earlier_archive(final_path, fd)) {
        snprintf(errstr, errstr_size, "archive: %s: cannot copy: %s", final_path, strerror(errno));
        close(fd);
        unlink(tmp_path);
        return false;
    }
    int gz_fd = fd < 0 ? -1 : dup(fd); /* shares the offset: the new member goes at the end */
    gzFile gz = gz_fd < 0 ? NULL : gzdopen(gz_fd, "wb6");
    if (!gz) {
        snprintf(errstr, errstr_size, "archive: %s: %s", tmp_path, strerror(errno));
        if (gz_fd >= 0)
            close(gz_fd);
        if (fd >= 0) {
            close(fd);
            unlink(tmp_path);
        }
        return false;
    }
    gzbuffer(gz, 1 << 18);
    *rows = 0;
    bool ok = stream_rows(a, kind, day, gz, rows, stop, errstr, errstr_size);
    int zrc = gzclose(gz); /* closes gz_fd */
    if (ok && zrc != Z_OK) {
        snprintf(errstr, errstr_size, "archive: %s: cannot write (zlib %d)", tmp_path, zrc);
        ok = false;
    }
    if (ok && fsync(fd) != 0) {
        snprintf(errstr, errstr_size, "archive: %s: fsync: %s", tmp_path, strerror(errno));
        ok = false;
    }
    close(fd);
    if (ok && *rows == 0) {
        unlink(tmp_path);
        return true;
    }
    if (ok && (rename(tmp_path, final_path) != 0 || !fsync_dir(dir))) {
        snprintf(errstr, errstr_size, "archive: %s: %s", final_path, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(tmp_path);
    return ok;
}

static bool exec_ok(PGconn *conn, const char *sql, ExecStatusType want, char *errstr,
                    size_t errstr_size)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == want;
    if (!ok)
        pg_error(errstr, errstr_size, sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/* Drops the raw partitions of day and of every earlier day (all archived by now). A short lock
 * wait: a flush holding the tables makes it fail and be tried again, never wait long. */
static bool drop_through(struct archiver *a, const char *day, int *dropped, char *errstr,
                         size_t errstr_size)
{
    if (!exec_ok(a->conn, "BEGIN", PGRES_COMMAND_OK, errstr, errstr_size))
        return false;
    const char *params[1] = {day};
    bool ok =
        exec_ok(a->conn, "SET LOCAL lock_timeout = '10s'", PGRES_COMMAND_OK, errstr, errstr_size);
    if (ok) {
        PGresult *res = PQexecParams(a->conn,
                                     "SELECT solarx_raw.drop_partitions_before("
                                     "($1::date + 1)::timestamp AT TIME ZONE 'UTC')",
                                     1, NULL, params, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        if (ok)
            *dropped = atoi(PQgetvalue(res, 0, 0));
        else
            pg_error(errstr, errstr_size, "drop partitions", PQresultErrorMessage(res));
        PQclear(res);
    }
    if (ok)
        return exec_ok(a->conn, "COMMIT", PGRES_COMMAND_OK, errstr, errstr_size);
    PQclear(PQexec(a->conn, "ROLLBACK"));
    return false;
}

static bool archive_day(struct archiver *a, const char *day, const atomic_bool *stop, char *errstr,
                        size_t errstr_size)
{
    uint64_t rows[READING_KIND_COUNT] = {0};
    int dropped = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (!archive_topic_day(a, (enum reading_kind)k, day, &rows[k], stop, errstr, errstr_size))
            return false;
    if (!drop_through(a, day, &dropped, errstr, errstr_size))
        return false;
    log_info("event=raw_archived day=%s home_lines=%llu solar_lines=%llu battery_lines=%llu "
             "partitions_dropped=%d dir=%s",
             day, (unsigned long long)rows[READING_HOME], (unsigned long long)rows[READING_SOLAR],
             (unsigned long long)rows[READING_BATTERY], dropped, a->cfg->raw_archive_dir);
    return true;
}

int archiver_run(struct archiver *a, int64_t horizon, const atomic_bool *stop, char *errstr,
                 size_t errstr_size)
{
    if (horizon <= 0)
        return 0;
    if (!a->conn && !(a->conn = db_connect_blocking(a->cfg, errstr, errstr_size)))
        return -1;
    char h[24];
    snprintf(h, sizeof(h), "%lld", (long long)horizon);
    const char *params[1] = {h};
    PGresult *res = PQexecParams(a->conn, days_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_error(errstr, errstr_size, "list partitions", PQresultErrorMessage(res));
        PQclear(res);
        goto fail;
    }
    int done = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (stop && atomic_load(stop))
            break;
        if (!archive_day(a, PQgetvalue(res, i, 0), stop, errstr, errstr_size)) {
            PQclear(res);
            goto fail;
        }
        done++;
    }
    PQclear(res);
    return done;
fail:
    PQfinish(a->conn); /* a fresh connection next time */
    a->conn = NULL;
    return -1;
}

/* ---- the service's thread ---- */

struct archive_worker {
    struct archiver *archiver;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int64_t requested; /* under mu */
    int64_t archived;  /* horizon of the last successful run; thread only */
    atomic_bool stop;
};

static void *worker_main(void *arg)
{
    struct archive_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop)) {
        if (w->requested <= w->archived) {
            pthread_cond_wait(&w->wake, &w->mu);
            continue;
        }
        int64_t horizon = w->requested;
        pthread_mutex_unlock(&w->mu);
        char err[1024];
        int rc = archiver_run(w->archiver, horizon, &w->stop, err, sizeof(err));
        pthread_mutex_lock(&w->mu);
        if (rc >= 0) {
            w->archived = horizon;
            continue;
        }
        if (atomic_load(&w->stop))
            break;
        char quoted[1100];
        log_error("event=raw_archive_failed msg=%s partitions=kept retry_in_s=%d",
                  log_quote(err, quoted, sizeof(quoted)), WORKER_RETRY_S);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WORKER_RETRY_S;
        while (!atomic_load(&w->stop) &&
               pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct archive_worker *archive_worker_start(const struct config *cfg, char *errstr,
                                            size_t errstr_size)
{
    struct archive_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(errstr, errstr_size, "archive: out of memory");
        return NULL;
    }
    if (!(w->archiver = archiver_new(cfg, errstr, errstr_size))) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    atomic_init(&w->stop, false);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "archive: cannot start its thread: %s", strerror(rc));
        archiver_destroy(w->archiver);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->wake);
        free(w);
        return NULL;
    }
    return w;
}

void archive_worker_request(struct archive_worker *w, int64_t horizon)
{
    pthread_mutex_lock(&w->mu);
    if (horizon > w->requested) {
        w->requested = horizon;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
}

void archive_worker_stop(struct archive_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, true);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    archiver_destroy(w->archiver);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    free(w);
}
