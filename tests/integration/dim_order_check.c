/* Property test driver for issue 4 (test_dim_order.sh): one fixed set of readings is written
 * through the real flush path in many orders and batchings, and every table must come out the
 * same, with dim_battery and the facts' keys exactly what the sorted readings define. */
#include <getopt.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "solarx/batch.h"
#include "solarx/clock.h"
#include "solarx/config.h"
#include "solarx/dim.h"
#include "solarx/fixed.h"
#include "solarx/flush.h"
#include "solarx/reading.h"
#include "solarx/registry.h"

#define HOMES 2
#define BATTERIES 3
#define SPAN 7200 /* seconds of event time from T0 */
#define MAX_VERSIONS 16
#define LOAD_TIME_OFFSET 5400 /* registry entries without effective_from: T0 + 1:30 */

/* --- reading set --------------------------------------------------------------------------- */

/* [from, to) seconds after T0 during which a battery reports these attributes; seconds no
 * segment covers are missing (gaps). */
struct segment {
    int32_t home, battery;
    int32_t from, to;
    const char *capacity, *speed, *output;
};

static const struct segment segments[] = {
    /* home 1, battery 1: 12 -> 15 -> 12 -> 15 (one reading) -> 12 -> 20 kWh */
    {1, 1, 0, 1800, "12", "1", "3.33"},
    {1, 1, 1800, 2700, "15", "1", "5"},    /* a change exactly on a window boundary */
    {1, 1, 2760, 4000, "12", "1", "3.33"}, /* after a gap of 60 s at the change */
    {1, 1, 4000, 4001, "15", "1", "5"},    /* a single-reading version inside a run */
    {1, 1, 4001, 4400, "12", "1", "3.33"},
    {1, 1, 4650, 5300, "20", "2", "6.66"}, /* a change across a 250 s gap */
    {1, 1, 6400, 7200, "20", "2", "6.66"}, /* same version across a gap with a whole empty
                                              window (5400..6300) */
    {1, 2, 0, 100, "12", "1", "3.33"},
    {1, 2, 400, 2700, "12", "1", "3.33"},
    {1, 2, 2700, 2701, "15", "1", "5"}, /* single readings on a window's first second */
    {1, 2, 2701, 3599, "12", "1", "3.33"},
    {1, 2, 3599, 3600, "15", "1", "5"}, /* ... and on its last */
    {1, 2, 3600, 7200, "12", "1", "3.33"},
    {1, 3, 500, 501, "12", "1", "3.33"}, /* starts late, with a single-reading version */
    {1, 3, 501, 7200, "10", "0.5", "2.5"},
    /* home 2, battery 1: 12 -> 15 -> 12 -> 20 -> 20 with another charge speed */
    {2, 1, 0, 1000, "12", "1", "3.33"},
    {2, 1, 1000, 3333, "15", "1", "5"}, /* changes in the middle of windows */
    {2, 1, 3333, 3500, "12", "1", "3.33"},
    {2, 1, 3520, 6000, "12", "1", "3.33"}, /* a gap inside a version */
    {2, 1, 6000, 6500, "20", "1", "6.66"},
    {2, 1, 6500, 7200, "20", "2", "6.66"}, /* only max_charge_speed_w changes */
    {2, 2, 0, 1700, "12", "1", "3.33"},
    {2, 2, 3000, 3001, "15", "1", "5"}, /* right after a gap with an empty window */
    {2, 2, 3001, 7200, "12", "1", "3.33"},
    {2, 3, 0, 6999, "12", "1", "3.33"},
    {2, 3, 6999, 7000, "15", "1", "5"}, /* ends early, on a single-reading version */
};

#define NSEGMENTS (sizeof(segments) / sizeof(segments[0]))

/* Panels with readings: panel 4 at home 1, panel 2 at home 2. */
static const int32_t panel_of_home[HOMES + 1] = {0, 4, 2};

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = a * 1000003u ^ b * 7919u ^ c * 104729u;
    return splitmix(&s);
}

static fixed_t fx(const char *text)
{
    fixed_t v;
    if (!fixed_parse(text, &v)) {
        fprintf(stderr, "dim_order_check: bad constant %s\n", text);
        exit(EX_SOFTWARE);
    }
    return v;
}

struct reading_set {
    struct reading *r; /* unique readings, sorted by kind, home, device, ts */
    size_t n;
    struct reading *all; /* r plus exact duplicates, in the canonical (time) order */
    size_t all_n;
};

static void push(struct reading **v, size_t *n, size_t *cap, const struct reading *r)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = realloc(*v, *cap * sizeof(**v));
        if (!*v) {
            perror("realloc");
            exit(EX_OSERR);
        }
    }
    (*v)[(*n)++] = *r;
}

/* A second is missing from a device's stream at random (1 in 89); batteries keep the first and
 * last second of every segment, so that version boundaries are where the table says. */
static bool randomly_missing(int kind, int32_t home, int32_t device, int64_t t)
{
    return hash3((uint64_t)kind << 32 | (uint32_t)home, (uint64_t)device, (uint64_t)t) % 89 == 0;
}

static void build_readings(int64_t t0, struct reading_set *set)
{
    size_t cap = 0;
    memset(set, 0, sizeof(*set));
    for (size_t s = 0; s < NSEGMENTS; s++) {
        const struct segment *g = &segments[s];
        for (int32_t i = g->from; i < g->to; i++) {
            int64_t t = t0 + i;
            if (i != g->from && i != g->to - 1 &&
                randomly_missing(READING_BATTERY, g->home, g->battery, t))
                continue;
            uint64_t h = hash3(g->home, (uint64_t)g->battery, (uint64_t)t);
            struct reading r = {
                .kind = READING_BATTERY,
                .home_id = g->home,
                .device_id = g->battery,
                .ts = t,
                .energy_wh = 4000 * FIXED_SCALE + (fixed_t)(h % 6000000000ULL),
                .capacity_kwh = fx(g->capacity),
                .max_charge_speed_w = fx(g->speed),
                .max_output_w = fx(g->output),
                .is_charging = (uint8_t)((i / 300) % 2),
            };
            r.status = r.is_charging   ? BATTERY_CHARGING
                       : (i / 600) % 2 ? BATTERY_DISCHARGING
                                       : BATTERY_IDLE;
            push(&set->r, &set->n, &cap, &r);
        }
    }
    for (int kind = READING_HOME; kind <= READING_SOLAR; kind++) {
        for (int32_t home = 1; home <= HOMES; home++) {
            int32_t device = kind == READING_HOME ? home : panel_of_home[home];
            fixed_t accumulated = 0;
            for (int32_t i = 0; i < SPAN; i++) {
                int64_t t = t0 + i;
                if (randomly_missing(kind, home, device, t))
                    continue;
                fixed_t e = (fixed_t)(hash3((uint64_t)kind, (uint64_t)device, (uint64_t)t) %
                                      2500001ULL); /* 0 .. 2.5 Wh, all six decimals */
                accumulated += e;
                struct reading r = {.kind = kind,
                                    .home_id = home,
                                    .device_id = device,
                                    .ts = t,
                                    .energy_wh = e,
                                    .accumulated_wh = accumulated};
                push(&set->r, &set->n, &cap, &r);
            }
        }
    }
    /* Exact duplicates of about 1 % of the readings: the set stays the same. */
    size_t all_cap = 0;
    for (size_t i = 0; i < set->n; i++) {
        push(&set->all, &set->all_n, &all_cap, &set->r[i]);
        if (hash3(77, i, 5) % 100 == 0)
            push(&set->all, &set->all_n, &all_cap, &set->r[i]);
    }
}

/* --- expectations -------------------------------------------------------------------------- */

struct expected_version {
    int64_t key, start, last_seen, end; /* end DIM_NONE: open */
    bool current;
    struct dim_attrs attrs;
};

struct expected_history {
    enum dim_kind kind;
    int32_t home_id, device_id; /* as in dim_version_key */
    size_t n;
    struct expected_version v[MAX_VERSIONS];
};

struct expectations {
    struct expected_history battery[HOMES + 1][BATTERIES + 1];
    struct expected_history *homes, *panels; /* registry histories */
    size_t home_count, panel_count;
    size_t unique[READING_KIND_COUNT];
    size_t windows[READING_KIND_COUNT];
    fixed_t sum[READING_KIND_COUNT]; /* home / solar energy */
};

static void fail_setup(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_setup(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dim_order_check: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_FAILURE);
}

static void add_version(struct expected_history *h, int64_t start, int64_t last_seen,
                        const struct dim_attrs *a)
{
    if (h->n == MAX_VERSIONS)
        fail_setup("too many versions");
    struct expected_version *v = &h->v[h->n++];
    memset(v, 0, sizeof(*v));
    v->start = start;
    v->last_seen = last_seen;
    v->attrs = *a;
}

static void close_history(struct expected_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        h->v[i].key = dim_version_key(h->kind, h->home_id, h->device_id, h->v[i].start);
        h->v[i].current = i + 1 == h->n;
        h->v[i].end = h->v[i].current ? DIM_NONE : h->v[i + 1].start;
    }
}

/* The key of the version in effect at ts: the last starting at or before it, else the first. */
static int64_t expected_key_at(const struct expected_history *h, int64_t ts)
{
    if (h->n == 0)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].start <= ts)
            k = i;
    return h->v[k].key;
}

/* The battery histories from the sorted unique readings: maximal runs of equal attributes,
 * computed here naively and cross-checked against dim_history_from_readings. */
static void expect_batteries(const struct reading_set *set, struct expectations *ex)
{
    for (int32_t home = 1; home <= HOMES; home++) {
        for (int32_t bat = 1; bat <= BATTERIES; bat++) {
            struct expected_history *h = &ex->battery[home][bat];
            *h = (struct expected_history){.kind = DIM_BATTERY, .home_id = home, .device_id = bat};
            struct dim_observation *obs = calloc(SPAN, sizeof(*obs));
            size_t n = 0;
            for (size_t i = 0; i < set->n; i++) {
                const struct reading *r = &set->r[i];
                if (r->kind != READING_BATTERY || r->home_id != home || r->device_id != bat)
                    continue;
                obs[n].t = r->ts;
                dim_battery_attrs_of(r, &obs[n].attrs);
                if (h->n > 0 && dim_attrs_equal(&h->v[h->n - 1].attrs, &obs[n].attrs))
                    h->v[h->n - 1].last_seen = r->ts;
                else
                    add_version(h, r->ts, r->ts, &obs[n].attrs);
                n++;
            }
            close_history(h);
            struct dim_history *ref = dim_history_from_readings(DIM_BATTERY, home, bat, obs, n);
            if (!ref || dim_history_count(ref) != h->n)
                fail_setup("dim_history_from_readings disagrees on battery %d/%d", home, bat);
            for (size_t i = 0; i < h->n; i++) {
                struct dim_row row;
                const struct dim_version *v = dim_history_version(ref, i);
                if (!dim_history_row(ref, i, &row) || row.key != h->v[i].key ||
                    row.end != h->v[i].end || row.current != h->v[i].current ||
                    v->start != h->v[i].start || v->last_seen != h->v[i].last_seen ||
                    !dim_attrs_equal(&v->attrs, &h->v[i].attrs))
                    fail_setup("dim_history_from_readings disagrees on battery %d/%d version %zu",
                               home, bat, i);
            }
            dim_history_destroy(ref);
            free(obs);
        }
    }
}

struct entry {
    int64_t t;
    struct dim_attrs a;
};

static int compare_entry(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    return (a->t > b->t) - (a->t < b->t);
}

/* A registry history: entries sorted by effective_from; an entry opens a version only when its
 * attributes differ from the version in effect before it. */
static void expect_registry_history(struct expected_history *h, struct entry *e, size_t n)
{
    qsort(e, n, sizeof(*e), compare_entry);
    for (size_t i = 0; i < n; i++)
        if (h->n == 0 || !dim_attrs_equal(&h->v[h->n - 1].attrs, &e[i].a))
            add_version(h, e[i].t, e[i].t, &e[i].a);
    close_history(h);
}

/* Every order starts from an empty warehouse, where an entry without effective_from opens the
 * device's first version at the epoch (src/dimsync.c, registry_time). */
static int64_t entry_start(int64_t effective_from, bool given)
{
    return given ? effective_from : 0;
}

static void expect_registry(const struct registry *reg, struct expectations *ex)
{
    size_t nh = registry_home_count(reg), np = registry_panel_count(reg);
    struct entry *e = calloc(nh + np + 1, sizeof(*e));
    ex->homes = calloc(nh + 1, sizeof(*ex->homes));
    ex->panels = calloc(np + 1, sizeof(*ex->panels));
    if (!e || !ex->homes || !ex->panels)
        fail_setup("out of memory");
    for (size_t i = 0; i < nh;) { /* sorted by (home_id, effective_from) */
        int32_t id = registry_home(reg, i)->home_id;
        size_t n = 0;
        for (; i < nh && registry_home(reg, i)->home_id == id; i++, n++) {
            e[n].t = entry_start(registry_home(reg, i)->effective_from,
                                 registry_home(reg, i)->has_effective_from);
            registry_home_attrs(registry_home(reg, i), &e[n].a);
        }
        struct expected_history *h = &ex->homes[ex->home_count++];
        *h = (struct expected_history){.kind = DIM_HOME, .home_id = id, .device_id = id};
        expect_registry_history(h, e, n);
    }
    for (size_t i = 0; i < np;) {
        int32_t id = registry_panel(reg, i)->panel_id;
        size_t n = 0;
        for (; i < np && registry_panel(reg, i)->panel_id == id; i++, n++) {
            e[n].t = entry_start(registry_panel(reg, i)->effective_from,
                                 registry_panel(reg, i)->has_effective_from);
            registry_panel_attrs(registry_panel(reg, i), &e[n].a);
        }
        struct expected_history *h = &ex->panels[ex->panel_count++];
        *h = (struct expected_history){.kind = DIM_PANEL, .home_id = 0, .device_id = id};
        expect_registry_history(h, e, n);
    }
    free(e);
}

static const struct expected_history *registry_history(const struct expectations *ex,
                                                       enum dim_kind kind, int32_t id)
{
    const struct expected_history *v = kind == DIM_HOME ? ex->homes : ex->panels;
    size_t n = kind == DIM_HOME ? ex->home_count : ex->panel_count;
    for (size_t i = 0; i < n; i++)
        if (v[i].device_id == id)
            return &v[i];
    return NULL;
}

static void expect_counts(const struct reading_set *set, int32_t window_seconds,
                          struct expectations *ex)
{
    int64_t last_window = INT64_MIN;
    int32_t last_kind = -1, last_device = -1, last_home = -1;
    for (size_t i = 0; i < set->n; i++) { /* sorted by kind, home, device, ts */
        const struct reading *r = &set->r[i];
        int64_t w = r->ts - r->ts % window_seconds;
        ex->unique[r->kind]++;
        if (r->kind != READING_BATTERY)
            ex->sum[r->kind] += r->energy_wh;
        if ((int32_t)r->kind != last_kind || r->device_id != last_device ||
            r->home_id != last_home || w != last_window)
            ex->windows[r->kind]++;
        last_kind = r->kind;
        last_device = r->device_id;
        last_home = r->home_id;
        last_window = w;
    }
}

/* --- PostgreSQL ---------------------------------------------------------------------------- */

static PGconn *connect_db(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_setup("cannot connect: %s", PQerrorMessage(c));
    return c;
}

static PGresult *query(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_setup("query failed: %s\n  %s", PQresultErrorMessage(res), sql);
    return res;
}

static void exec_sql(PGconn *c, const char *sql)
{
    PQclear(query(c, sql));
}

/* A difference found by a check; silent while the mutation self-test provokes them. */
static bool quiet;
static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int64_t int_or_none(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? DIM_NONE : atoll(PQgetvalue(res, row, col));
}

static const char *const digest_tables[] = {
    "solarx_wh.dim_battery",
    "solarx_wh.dim_home",
    "solarx_wh.dim_solar_panel",
    "solarx_wh.dim_home_appliances",
    "solarx_wh.fact_battery_power_readings",
    "solarx_wh.fact_home_power_readings",
    "solarx_wh.fact_solar_panel_power_readings",
    "solarx_raw.battery_readings",
    "solarx_raw.home_power_readings",
    "solarx_raw.solar_panel_readings",
};
#define NDIGESTS (sizeof(digest_tables) / sizeof(digest_tables[0]))

struct digest {
    char md5[NDIGESTS][33];
    long rows[NDIGESTS];
};

/* md5 over the rows of every table in text form, sorted, leaving out what legitimately depends
 * on the run: update times, ingestion times, source coordinates and the facts' write counts. */
static void digest_all(PGconn *c, struct digest *d)
{
    for (size_t t = 0; t < NDIGESTS; t++) {
        char sql[1024];
        const char *dot = strchr(digest_tables[t], '.');
        snprintf(sql, sizeof(sql),
                 "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)"
                 " FROM information_schema.columns WHERE table_schema = '%.*s'"
                 " AND table_name = '%s' AND column_name NOT IN"
                 " ('updated_at', 'ingested_at', 'src_partition', 'src_offset', 'version')",
                 (int)(dot - digest_tables[t]), digest_tables[t], dot + 1);
        PGresult *res = query(c, sql);
        if (PQgetisnull(res, 0, 0))
            fail_setup("table %s not found", digest_tables[t]);
        char *cols = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"
                 " FROM (SELECT %s FROM %s) AS r",
                 cols, digest_tables[t]);
        free(cols);
        res = query(c, sql);
        d->rows[t] = atol(PQgetvalue(res, 0, 0));
        snprintf(d->md5[t], sizeof(d->md5[t]), "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
    }
}

static void reset_tables(PGconn *c)
{
    exec_sql(c,
             "TRUNCATE solarx_wh.fact_battery_power_readings, solarx_wh.fact_home_power_readings,"
             " solarx_wh.fact_solar_panel_power_readings, solarx_wh.dim_battery,"
             " solarx_wh.dim_home, solarx_wh.dim_solar_panel, solarx_wh.dim_home_appliances,"
             " solarx_raw.battery_readings, solarx_raw.home_power_readings,"
             " solarx_raw.solar_panel_readings, solarx_raw.dead_letters,"
             " solarx_meta.consumer_offsets");
}

/* Compares the stored versions of one kind with the expected histories. Returns the number of
 * problems (each printed). */
static int check_versions(PGconn *c, enum dim_kind kind, const struct expected_history *const *hs,
                          size_t nh, const char *label)
{
    static const char *const sql[3] = {
        [DIM_HOME] =
            "SELECT home_key, home_id, home_id, extract(epoch FROM start_date)::bigint,"
            " extract(epoch FROM start_date)::bigint, extract(epoch FROM end_date)::bigint,"
            " current_flag, min_consumption_power_wh, max_consumption_power_wh, NULL, '',"
            " NULL FROM solarx_wh.dim_home ORDER BY home_id, start_date",
        [DIM_PANEL] = "SELECT solar_panel_key, 0, solar_panel_id,"
                      " extract(epoch FROM start_date)::bigint,"
                      " extract(epoch FROM start_date)::bigint,"
                      " extract(epoch FROM end_date)::bigint, current_flag, capacity_kwh,"
                      " intensity_power_rating_wh, temperature_power_rating_c, name, home_id"
                      " FROM solarx_wh.dim_solar_panel ORDER BY solar_panel_id, start_date",
        [DIM_BATTERY] = "SELECT battery_key, home_id, battery_id,"
                        " extract(epoch FROM start_date)::bigint,"
                        " extract(epoch FROM last_seen)::bigint,"
                        " extract(epoch FROM end_date)::bigint, current_flag, capacity_kwh,"
                        " max_charge_speed_w, max_output_w, name, NULL"
                        " FROM solarx_wh.dim_battery ORDER BY home_id, battery_id, start_date",
    };
    PGresult *res = query(c, sql[kind]);
    int problems = 0, row = 0, rows = PQntuples(res);
    for (size_t k = 0; k < nh; k++) {
        const struct expected_history *h = hs[k];
        for (size_t i = 0; i < h->n; i++, row++) {
            const struct expected_version *v = &h->v[i];
            if (row >= rows) {
                complain("%s: %s %d/%d: version starting %lld missing\n", label,
                         kind == DIM_HOME    ? "dim_home"
                         : kind == DIM_PANEL ? "dim_solar_panel"
                                             : "dim_battery",
                         h->home_id, h->device_id, (long long)v->start);
                problems++;
                continue;
            }
            struct dim_attrs a;
            fixed_t x[3] = {0, 0, 0};
            bool ok = fixed_parse(PQgetvalue(res, row, 7), &x[0]) &&
                      fixed_parse(PQgetvalue(res, row, 8), &x[1]);
            if (kind == DIM_HOME) {
                dim_home_attrs(x[0], x[1], &a);
            } else {
                ok = ok && fixed_parse(PQgetvalue(res, row, 9), &x[2]);
                if (kind == DIM_BATTERY) {
                    char name[32];
                    snprintf(name, sizeof(name), "battery_%d", h->device_id);
                    ok = ok && strcmp(PQgetvalue(res, row, 10), name) == 0;
                    dim_battery_attrs(x[0], x[1], x[2], &a);
                } else {
                    ok = ok && dim_panel_attrs(PQgetvalue(res, row, 10), x[0], x[1], x[2],
                                               atoi(PQgetvalue(res, row, 11)), &a);
                }
            }
            bool current = PQgetvalue(res, row, 6)[0] == 't';
            if (!ok || atoll(PQgetvalue(res, row, 0)) != v->key ||
                atoi(PQgetvalue(res, row, 1)) != h->home_id ||
                atoi(PQgetvalue(res, row, 2)) != h->device_id ||
                atoll(PQgetvalue(res, row, 3)) != v->start ||
                atoll(PQgetvalue(res, row, 4)) != v->last_seen ||
                int_or_none(res, row, 5) != v->end || current != v->current ||
                !dim_attrs_equal(&a, &v->attrs)) {
                complain("%s: version %d/%d #%zu: stored key=%s start=%s last=%s end=%s current=%s"
                         " attrs=%s/%s/%s; expected key=%lld start=%lld last=%lld end=%lld"
                         " current=%d\n",
                         label, h->home_id, h->device_id, i, PQgetvalue(res, row, 0),
                         PQgetvalue(res, row, 3), PQgetvalue(res, row, 4), PQgetvalue(res, row, 5),
                         PQgetvalue(res, row, 6), PQgetvalue(res, row, 7), PQgetvalue(res, row, 8),
                         PQgetvalue(res, row, 9), (long long)v->key, (long long)v->start,
                         (long long)v->last_seen, (long long)v->end, v->current);
                problems++;
            }
        }
    }
    if (row < rows) {
        complain("%s: %d unexpected stored versions of kind %d\n", label, rows - row, kind);
        problems++;
    }
    PQclear(res);
    return problems;
}

/* Every fact row's key is the version in effect at its last reading. */
static int check_fact_keys(PGconn *c, const struct expectations *ex, const char *label)
{
    static const char *const sql[READING_KIND_COUNT] = {
        [READING_HOME] = "SELECT home_id, home_id, extract(epoch FROM last_ts)::bigint, home_key"
                         " FROM solarx_wh.fact_home_power_readings",
        [READING_SOLAR] = "SELECT 0, solar_panel_id, extract(epoch FROM last_ts)::bigint,"
                          " solar_panel_key FROM solarx_wh.fact_solar_panel_power_readings",
        [READING_BATTERY] = "SELECT home_id, battery_id, extract(epoch FROM last_ts)::bigint,"
                            " battery_key FROM solarx_wh.fact_battery_power_readings",
    };
    int problems = 0;
    for (int kind = 0; kind < READING_KIND_COUNT; kind++) {
        PGresult *res = query(c, sql[kind]);
        for (int row = 0; row < PQntuples(res); row++) {
            int32_t home = atoi(PQgetvalue(res, row, 0)), device = atoi(PQgetvalue(res, row, 1));
            int64_t last_ts = atoll(PQgetvalue(res, row, 2));
            const struct expected_history *h =
                kind == READING_BATTERY
                    ? (home >= 1 && home <= HOMES && device >= 1 && device <= BATTERIES
                           ? &ex->battery[home][device]
                           : NULL)
                    : registry_history(ex, kind == READING_HOME ? DIM_HOME : DIM_PANEL, device);
            int64_t want = h ? expected_key_at(h, last_ts) : 0;
            int64_t got = PQgetisnull(res, row, 3) ? 0 : atoll(PQgetvalue(res, row, 3));
            if (got != want || want == 0) {
                if (problems < 10)
                    complain("%s: %s fact %d/%d last_ts %lld: key %lld, expected %lld\n", label,
                             reading_kind_name(kind), home, device, (long long)last_ts,
                             (long long)got, (long long)want);
                problems++;
            }
        }
        PQclear(res);
    }
    return problems;
}

/* Totals of the facts and raw rows against the reading set. */
static int check_totals(PGconn *c, const struct expectations *ex, const char *label)
{
    static const char *const sql[READING_KIND_COUNT] = {
        [READING_HOME] =
            "SELECT count(*), coalesce(sum(readings_count), 0), coalesce(sum("
            "consumption_wh), 0), (SELECT count(*) FROM solarx_raw.home_power_readings)"
            " FROM solarx_wh.fact_home_power_readings",
        [READING_SOLAR] = "SELECT count(*), coalesce(sum(readings_count), 0), coalesce(sum("
                          "generation_power_wh), 0), (SELECT count(*) FROM"
                          " solarx_raw.solar_panel_readings)"
                          " FROM solarx_wh.fact_solar_panel_power_readings",
        [READING_BATTERY] = "SELECT count(*), coalesce(sum(readings_count), 0), 0, (SELECT count(*)"
                            " FROM solarx_raw.battery_readings)"
                            " FROM solarx_wh.fact_battery_power_readings",
    };
    int problems = 0;
    for (int kind = 0; kind < READING_KIND_COUNT; kind++) {
        PGresult *res = query(c, sql[kind]);
        fixed_t sum = 0;
        if (!fixed_parse(PQgetvalue(res, 0, 2), &sum))
            sum = -1;
        if ((size_t)atoll(PQgetvalue(res, 0, 0)) != ex->windows[kind] ||
            (size_t)atoll(PQgetvalue(res, 0, 1)) != ex->unique[kind] ||
            (size_t)atoll(PQgetvalue(res, 0, 3)) != ex->unique[kind] ||
            (kind != READING_BATTERY && sum != ex->sum[kind])) {
            char want[FIXED_TEXT_SIZE];
            complain(
                "%s: %s totals: windows %s readings %s sum %s raw %s; expected %zu %zu %s %zu\n",
                label, reading_kind_name(kind), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), ex->windows[kind], ex->unique[kind],
                fixed_format(ex->sum[kind], want, sizeof(want)), ex->unique[kind]);
            problems++;
        }
        PQclear(res);
    }
    return problems;
}

static int check_all(PGconn *c, const struct expectations *ex, const char *label)
{
    const struct expected_history *bats[HOMES * BATTERIES];
    const struct expected_history *homes[64], *panels[64];
    size_t nb = 0;
    for (int32_t home = 1; home <= HOMES; home++)
        for (int32_t bat = 1; bat <= BATTERIES; bat++)
            bats[nb++] = &ex->battery[home][bat];
    for (size_t i = 0; i < ex->home_count && i < 64; i++)
        homes[i] = &ex->homes[i]; /* sorted by home_id as the registry is */
    for (size_t i = 0; i < ex->panel_count && i < 64; i++)
        panels[i] = &ex->panels[i];
    return check_versions(c, DIM_BATTERY, bats, nb, label) +
           check_versions(c, DIM_HOME, homes, ex->home_count, label) +
           check_versions(c, DIM_PANEL, panels, ex->panel_count, label) +
           check_fact_keys(c, ex, label) + check_totals(c, ex, label);
}

/* --- writing through the flush path -------------------------------------------------------- */

struct run_env {
    const struct config *cfg;
    const struct clock_zone *zone;
    const struct registry *reg;
    const char *conninfo;
};

/* Writes readings[0..n) in batches of the given sizes (sizes[0..nb), summing to n) through
 * `writers` flushers at once (each its own connection, like instances of one consumer group),
 * every one starting its next batch as soon as its previous one committed. A failed flush (a
 * deadlock between writers would be one) is retried on a new connection, as the service does;
 * retries are counted in *retries, dimension histories rewritten in *rewrites. */
/* Closes the connection f was lent (a failed flush's: its transaction rolls back) and lends it a
 * new one. */
static bool lend_new_connection(struct flusher *f, PGconn **conn, const char *conninfo)
{
    flusher_detach(f);
    if (*conn)
        PQfinish(*conn);
    *conn = connect_db(conninfo);
    return flusher_attach(f, *conn);
}

static void write_batches(const struct run_env *env, const struct reading *readings,
                          const size_t *sizes, size_t nb, int writers, int64_t *offset,
                          size_t *retries, size_t *rewrites)
{
    struct flusher *f[2];
    PGconn *conn[2] = {NULL, NULL}; /* lent to f[w]; closed here */
    struct batch *b[2];
    bool busy[2] = {false, false};
    if (writers < 1 || writers > 2)
        fail_setup("1 or 2 writers");
    for (int w = 0; w < writers; w++) {
        f[w] = flusher_new(env->cfg, env->zone, NULL);
        if (!f[w])
            fail_setup("out of memory");
        flusher_set_registry(f[w], env->reg);
        if (!lend_new_connection(f[w], &conn[w], env->conninfo))
            fail_setup("flusher_attach: %s", flusher_error(f[w]));
        b[w] = batch_new(env->cfg->window_minutes * 60, env->zone);
    }
    size_t next_batch = 0, next_reading = 0, done = 0;
    while (done < nb) {
        for (int w = 0; w < writers; w++) {
            if (busy[w] || next_batch == nb)
                continue;
            batch_clear(b[w]);
            for (size_t i = 0; i < sizes[next_batch]; i++, next_reading++)
                batch_add_reading(b[w], &readings[next_reading], -1, (*offset)++);
            next_batch++;
            for (;;) {
                enum flush_progress p = flusher_start(f[w], b[w]);
                if (p == FLUSH_BUSY)
                    break;
                if (++*retries > 100)
                    fail_setup("flush cannot start: %s", flusher_error(f[w]));
                if (!lend_new_connection(f[w], &conn[w], env->conninfo))
                    fail_setup("flusher_attach: %s", flusher_error(f[w]));
            }
            busy[w] = true;
        }
        struct pollfd pfd[2];
        int nfds = 0, which[2];
        for (int w = 0; w < writers; w++) {
            if (!busy[w])
                continue;
            pfd[nfds] =
                (struct pollfd){.fd = PQsocket(flusher_conn(f[w])),
                                .events = POLLIN | (flusher_wants_write(f[w]) ? POLLOUT : 0)};
            which[nfds++] = w;
        }
        if (poll(pfd, (nfds_t)nfds, 10000) < 0)
            fail_setup("poll failed");
        for (int k = 0; k < nfds; k++) {
            int w = which[k];
            if (!pfd[k].revents)
                continue;
            enum flush_progress p = flusher_on_io(f[w]);
            if (p == FLUSH_BUSY)
                continue;
            if (p == FLUSH_COMMITTED) {
                *rewrites += flusher_stats(f[w])->dimension_versions_rewritten;
                busy[w] = false;
                done++;
                continue;
            }
            /* FLUSH_FAILED: the batch is intact; retry it on a new connection. */
            if (++*retries > 100)
                fail_setup("flush keeps failing: %s", flusher_error(f[w]));
            if (writers == 1)
                fail_setup("flush of %zu readings failed: %s", b[w]->reading_count,
                           flusher_error(f[w]));
            if (!lend_new_connection(f[w], &conn[w], env->conninfo) ||
                flusher_start(f[w], b[w]) != FLUSH_BUSY)
                fail_setup("flush retry: %s", flusher_error(f[w]));
        }
    }
    for (int w = 0; w < writers; w++) {
        batch_destroy(b[w]);
        flusher_destroy(f[w]);
        PQfinish(conn[w]);
    }
}

static void shuffle(struct reading *v, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix(rng) % i);
        struct reading t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Orders 0..2 are structured (reversed; odd seconds then even; the late hour first), the others
 * uniformly random. Returns a name for the log. */
static const char *make_order(int order, const struct reading_set *set, int64_t t0,
                              struct reading *out, uint64_t *rng)
{
    size_t n = 0;
    switch (order) {
    case 0:
        for (size_t i = set->all_n; i-- > 0;)
            out[n++] = set->all[i];
        return "reversed";
    case 1:
        for (int pass = 1; pass >= 0; pass--)
            for (size_t i = 0; i < set->all_n; i++)
                if (set->all[i].ts % 2 == pass)
                    out[n++] = set->all[i];
        return "odd-then-even";
    case 2:
        for (int pass = 1; pass >= 0; pass--)
            for (size_t i = 0; i < set->all_n; i++)
                if ((set->all[i].ts >= t0 + SPAN / 2) == pass)
                    out[n++] = set->all[i];
        return "late-half-first";
    default:
        memcpy(out, set->all, set->all_n * sizeof(*out));
        shuffle(out, set->all_n, rng);
        return "random";
    }
}

/* Batch sizes 1..max_batch, log-uniform (small and large batches alike), summing to n. */
static size_t make_batches(size_t n, size_t max_batch, uint64_t *rng, size_t *sizes)
{
    size_t nb = 0;
    while (n > 0) {
        double u = (double)(splitmix(rng) >> 11) / 9007199254740992.0;
        size_t s = (size_t)exp(u * log((double)max_batch + 1));
        if (s < 1)
            s = 1;
        if (s > max_batch)
            s = max_batch;
        if (s > n)
            s = n;
        sizes[nb++] = s;
        n -= s;
    }
    return nb;
}

static int compare_reading_time(const void *pa, const void *pb)
{
    const struct reading *a = pa, *b = pb;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The checks must be able to fail: corrupt the stored state in ways a wrong flush could, and
 * require each one to be noticed. Returns the number of mutations that went unnoticed. */
static int mutation_self_test(PGconn *c, const struct expectations *ex, const struct digest *ref)
{
    static const char *const mutations[] = {
        /* a fact keeps the key of the version before the one in effect at its last reading */
        "UPDATE solarx_wh.fact_battery_power_readings f SET battery_key = d.battery_key"
        " FROM solarx_wh.dim_battery d WHERE d.home_id = f.home_id AND d.battery_id ="
        " f.battery_id AND d.end_date IS NOT NULL AND d.end_date <= f.first_ts"
        " AND f.date_key = (SELECT max(date_key) FROM solarx_wh.fact_battery_power_readings)",
        /* a version ends one second late */
        "UPDATE solarx_wh.dim_battery SET end_date = end_date + interval '1 second'"
        " WHERE battery_key = (SELECT min(battery_key) FROM solarx_wh.dim_battery"
        "                      WHERE end_date IS NOT NULL)",
        /* two versions merged into one */
        "WITH gone AS (DELETE FROM solarx_wh.dim_battery WHERE current_flag AND home_id = 1"
        " AND battery_id = 1 RETURNING start_date)"
        " UPDATE solarx_wh.dim_battery SET end_date = NULL, current_flag = true"
        " WHERE home_id = 1 AND battery_id = 1 AND end_date = (SELECT start_date FROM gone)",
        /* a home fact points at the other registry version */
        "UPDATE solarx_wh.fact_home_power_readings SET home_key = (SELECT max(home_key) FROM"
        " solarx_wh.dim_home WHERE home_id = 1 AND home_key <> fact_home_power_readings.home_key)"
        " WHERE home_id = 1 AND date_key = (SELECT min(date_key) FROM"
        " solarx_wh.fact_home_power_readings)",
    };
    int unnoticed = 0;
    quiet = true;
    for (size_t m = 0; m < sizeof(mutations) / sizeof(mutations[0]); m++) {
        exec_sql(c, "BEGIN");
        PGresult *res = query(c, mutations[m]);
        long changed = atol(PQcmdTuples(res));
        PQclear(res);
        struct digest d;
        digest_all(c, &d);
        int problems = check_all(c, ex, "(mutation, expected to be noticed)");
        bool digest_differs = memcmp(d.md5, ref->md5, sizeof(d.md5)) != 0;
        exec_sql(c, "ROLLBACK");
        if (changed == 0 || problems == 0 || !digest_differs) {
            fprintf(stderr, "mutation %zu: changed %ld rows, %d problems found, digest %s\n", m,
                    changed, problems, digest_differs ? "differs" : "SAME");
            unnoticed++;
        }
    }
    quiet = false;
    return unnoticed;
}

static const char usage[] =
    "usage: dim_order_check -c CONFIG --conninfo CONNINFO --appliances FILE --panels FILE\n"
    "                       [--orders N] [--seed S] [--max-batch N]\n"
    "Writes one reading set through the flush path in N orders (default 20) and random batch\n"
    "sizes 1..max-batch (default 5000) and checks that every table ends up the same and as the\n"
    "sorted readings define. Exit 0: all equal; 1: a difference (printed); 64: bad arguments.\n";

int main(int argc, char **argv)
{
    const char *config_path = NULL, *conninfo = NULL, *appliances = NULL, *panels = NULL;
    long orders = 20, max_batch = 5000;
    unsigned long long seed = 1;
    static const struct option options[] = {
        {"conninfo", required_argument, NULL, 'd'}, {"appliances", required_argument, NULL, 'a'},
        {"panels", required_argument, NULL, 'p'},   {"orders", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},     {"max-batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            conninfo = optarg;
            break;
        case 'a':
            appliances = optarg;
            break;
        case 'p':
            panels = optarg;
            break;
        case 'n':
            orders = strtol(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            max_batch = strtol(optarg, NULL, 10);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return EX_USAGE;
        }
    }
    if (!config_path || !conninfo || !appliances || !panels || orders < 1 || max_batch < 1 ||
        optind != argc) {
        fputs(usage, stderr);
        return EX_USAGE;
    }

    char err[1024];
    char *no_env[] = {NULL}; /* the file alone: no SOLARX_* overrides from the test's shell */
    struct config *cfg = config_load(config_path, no_env, err, sizeof(err));
    if (!cfg)
        fail_setup("%s", err);
    struct clock_zone *zone = clock_zone_new(cfg->source_timezone, err, sizeof(err));
    if (!zone)
        fail_setup("%s", err);
    int64_t t0 = clock_epoch_from_utc(2025, 2, 14, 0, 0, 0);
    struct registry_options ropt = {.default_home_id = cfg->default_home_id,
                                    .load_time = t0 + LOAD_TIME_OFFSET};
    struct registry *reg = registry_load(appliances, panels, &ropt, err, sizeof(err));
    if (!reg)
        fail_setup("%s", err);

    struct reading_set set;
    struct expectations ex;
    memset(&ex, 0, sizeof(ex));
    build_readings(t0, &set);
    expect_batteries(&set, &ex);
    expect_registry(reg, &ex);
    expect_counts(&set, cfg->window_minutes * 60, &ex);
    qsort(set.all, set.all_n, sizeof(*set.all), compare_reading_time);
    size_t versions = 0;
    for (int32_t home = 1; home <= HOMES; home++)
        for (int32_t bat = 1; bat <= BATTERIES; bat++)
            versions += ex.battery[home][bat].n;
    printf("readings: %zu unique + %zu duplicates; battery versions %zu (home 1 battery 1: %zu,"
           " home 2 battery 1: %zu); windows home %zu solar %zu battery %zu\n",
           set.n, set.all_n - set.n, versions, ex.battery[1][1].n, ex.battery[2][1].n,
           ex.windows[READING_HOME], ex.windows[READING_SOLAR], ex.windows[READING_BATTERY]);

    struct run_env env = {cfg, zone, reg, conninfo};
    PGconn *c = connect_db(conninfo);
    struct reading *ordered = malloc(set.all_n * sizeof(*ordered));
    size_t *sizes = malloc(set.all_n * sizeof(*sizes));
    if (!ordered || !sizes)
        fail_setup("out of memory");
    int64_t offset = 0;
    int failures = 0;

    /* The reference: every reading in event-time order, in one batch. */
    double t_start = now_s();
    reset_tables(c);
    sizes[0] = set.all_n;
    size_t retries = 0, rewrites = 0;
    write_batches(&env, set.all, sizes, 1, 1, &offset, &retries, &rewrites);
    struct digest ref;
    digest_all(c, &ref);
    if (check_all(c, &ex, "in-order single batch") != 0)
        fail_setup("the in-order single-batch run is already wrong");
    printf("reference (in order, 1 batch): %.1f s; rows:", now_s() - t_start);
    for (size_t t = 0; t < NDIGESTS; t++)
        printf(" %s=%ld", strchr(digest_tables[t], '.') + 1, ref.rows[t]);
    printf("\n");

    size_t total_batches = 0, smallest = SIZE_MAX, largest = 0;
    for (long order = 0; order < orders; order++) {
        uint64_t rng = seed * 1000003ULL + (uint64_t)order;
        double t1 = now_s();
        const char *kind = make_order((int)order, &set, t0, ordered, &rng);
        size_t nb = make_batches(set.all_n, (size_t)max_batch, &rng, sizes);
        for (size_t k = 0; k < nb; k++) {
            if (sizes[k] < smallest)
                smallest = sizes[k];
            if (sizes[k] > largest)
                largest = sizes[k];
        }
        total_batches += nb;
        reset_tables(c);
        /* Every fourth order: two concurrent writers, as two instances of one group. */
        int writers = order % 4 == 3 ? 2 : 1;
        size_t rewrites_before = rewrites;
        write_batches(&env, ordered, sizes, nb, writers, &offset, &retries, &rewrites);
        char label[64];
        snprintf(label, sizeof(label), "order %ld (%s)", order, kind);
        int problems = check_all(c, &ex, label);
        struct digest d;
        digest_all(c, &d);
        for (size_t t = 0; t < NDIGESTS; t++) {
            if (strcmp(d.md5[t], ref.md5[t]) != 0 || d.rows[t] != ref.rows[t]) {
                fprintf(stderr, "%s: %s differs from the in-order run (%ld rows %s, want %ld %s)\n",
                        label, digest_tables[t], d.rows[t], d.md5[t], ref.rows[t], ref.md5[t]);
                problems++;
            }
        }
        printf("order %2ld %-16s writers %d batches %4zu history rewrites %5zu  %.1f s  %s\n",
               order, kind, writers, nb, rewrites - rewrites_before, now_s() - t1,
               problems ? "DIFFERS" : "same");
        fflush(stdout);
        failures += problems != 0;
    }

    int unnoticed = mutation_self_test(c, &ex, &ref);
    printf("orders %ld, batches %zu (sizes %zu..%zu), history rewrites %zu, retried flushes %zu,"
           " orders differing %d, mutations unnoticed %d, %.1f s\n",
           orders, total_batches, smallest, largest, rewrites, retries, failures, unnoticed,
           now_s() - t_start);

    PQfinish(c);
    free(ordered);
    free(sizes);
    free(set.r);
    free(set.all);
    free(ex.homes);
    free(ex.panels);
    registry_destroy(reg);
    clock_zone_destroy(zone);
    config_destroy(cfg);
    return failures || unnoticed ? EXIT_FAILURE : EXIT_SUCCESS;
}
