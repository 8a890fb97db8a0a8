/* Dimensions in the flush: histories read under lock, fed with new battery readings and the
 * registries, written back when changed, with the facts they re-point. */
#include "solarx/dimsync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

/* Advisory lock of the registry dimensions: pg_advisory_xact_lock[_shared](LOCK, 0). */
#define REGISTRY_LOCK_CLASS "735810"
/* dim_battery histories are serialised per home: (BATTERY_LOCK_CLASS, home_id). */
#define BATTERY_LOCK_CLASS "735811"

enum read_tag { TAG_BATTERY, TAG_NEIGHBOURS, TAG_HOME, TAG_PANEL, TAG_LOCK };

struct device_id {
    int32_t kind; /* enum dim_kind */
    int32_t home_id;
    int32_t device_id;
};

struct device {
    struct device_id id;
    struct dim_history *h;
    struct dim_history *before; /* as read, to see what changed */
    UT_hash_handle hh;
};

struct dimsync {
    struct batch_window *const *windows;
    struct window_state *states;
    size_t n;
    const struct registry *reg;
    bool registry_dirty;
    struct device *devices;
    int64_t *stored_prev, *stored_next; /* per battery window: nearest stored reading around it */
    size_t changed;
};

static struct device *find_device(const struct dimsync *d, enum dim_kind kind, int32_t home_id,
                                  int32_t device_id)
{
    struct device_id id = {kind, kind == DIM_PANEL ? 0 : home_id, device_id};
    struct device *dev;
    HASH_FIND(hh, d->devices, &id, sizeof(id), dev);
    return dev;
}

static struct device *add_device(struct dimsync *d, enum dim_kind kind, int32_t home_id,
                                 int32_t device_id)
{
    struct device *dev = find_device(d, kind, home_id, device_id);
    if (dev)
        return dev;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    dev->id = (struct device_id){kind, kind == DIM_PANEL ? 0 : home_id, device_id};
    dev->h = dim_history_new(kind, dev->id.home_id, device_id);
    if (!dev->h) {
        free(dev);
        return NULL;
    }
    HASH_ADD(hh, d->devices, id, sizeof(dev->id), dev);
    return dev;
}

static enum dim_kind dim_kind_of(int reading_kind)
{
    return reading_kind == READING_HOME    ? DIM_HOME
           : reading_kind == READING_SOLAR ? DIM_PANEL
                                           : DIM_BATTERY;
}

struct dimsync *dimsync_new(struct batch_window *const *windows, struct window_state *states,
                            size_t n, const struct registry *reg, bool registry_dirty)
{
    struct dimsync *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    *d = (struct dimsync){windows, states, n, reg, registry_dirty && reg, NULL, NULL, NULL, 0};
    d->stored_prev = malloc((n ? n : 1) * sizeof(int64_t));
    d->stored_next = malloc((n ? n : 1) * sizeof(int64_t));
    if (!d->stored_prev || !d->stored_next)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        d->stored_prev[i] = d->stored_next[i] = DIM_NONE;
        const struct window_key *k = &windows[i]->key;
        if (!add_device(d, dim_kind_of(k->kind), k->home_id, k->device_id))
            goto fail;
    }
    for (size_t i = 0; d->registry_dirty && i < registry_home_count(reg); i++) {
        const struct registry_home *home = registry_home(reg, i);
        if (!add_device(d, DIM_HOME, home->home_id, home->home_id))
            goto fail;
    }
    for (size_t i = 0; d->registry_dirty && i < registry_panel_count(reg); i++)
        if (!add_device(d, DIM_PANEL, 0, registry_panel(reg, i)->panel_id))
            goto fail;
    return d;
fail:
    dimsync_destroy(d);
    return NULL;
}

void dimsync_destroy(struct dimsync *d)
{
    if (!d)
        return;
    struct device *dev, *tmp;
    HASH_ITER(hh, d->devices, dev, tmp)
    {
        HASH_DEL(d->devices, dev);
        dim_history_destroy(dev->h);
        dim_history_destroy(dev->before);
        free(dev);
    }
    free(d->stored_prev);
    free(d->stored_next);
    free(d);
}

size_t dimsync_changed(const struct dimsync *d)
{
    return d->changed;
}

bool dimsync_send_lock(struct dimsync *d, dimsync_send_fn send, void *ctx, int base)
{
    const char *sql = d->registry_dirty ? "SELECT pg_advisory_xact_lock(" REGISTRY_LOCK_CLASS ", 0)"
                                        : "SELECT pg_advisory_xact_lock_shared(" REGISTRY_LOCK_CLASS
                                          ", 0)";
    return send(ctx, base + TAG_LOCK, sql, 0, NULL);
}

bool dimsync_send_reads(struct dimsync *d, dimsync_send_fn send, void *ctx, int base,
                        struct pgarray *scratch)
{
    struct pgarray *homes = &scratch[0], *devices = &scratch[1], *starts = &scratch[2];
    const char *params[3];

    /* Battery histories, locked per home in ascending order (after the registry lock). */
    pgarray_reset(homes);
    pgarray_reset(devices);
    for (size_t i = 0; i < d->n; i++) {
        const struct window_key *k = &d->windows[i]->key;
        if (k->kind != READING_BATTERY)
            continue;
        if (i > 0 && d->windows[i - 1]->key.kind == READING_BATTERY &&
            d->windows[i - 1]->key.home_id == k->home_id &&
            d->windows[i - 1]->key.device_id == k->device_id)
            continue;
        pgarray_add_int(homes, k->home_id);
        pgarray_add_int(devices, k->device_id);
    }
    params[0] = pgarray_finish(homes);
    params[1] = pgarray_finish(devices);
    if (!send(ctx, base + TAG_LOCK,
              "SELECT count(pg_advisory_xact_lock(" BATTERY_LOCK_CLASS ", h))"
              " FROM (SELECT DISTINCT h FROM unnest($1::int[]) AS h ORDER BY h) AS s",
              1, params) ||
        !send(ctx, base + TAG_BATTERY,
              "SELECT d.home_id, d.battery_id, extract(epoch FROM d.start_date)::bigint,"
              " extract(epoch FROM d.last_seen)::bigint, d.capacity_kwh, d.max_charge_speed_w,"
              " d.max_output_w"
              " FROM unnest($1::int[], $2::int[]) AS k(home_id, battery_id)"
              " JOIN solarx_wh.dim_battery d USING (home_id, battery_id)"
              " ORDER BY d.home_id, d.battery_id, d.start_date",
              2, params))
        return false;

    /* Around every battery window: the nearest stored reading before and after it. */
    pgarray_reset(homes);
    pgarray_reset(devices);
    pgarray_reset(starts);
    for (size_t i = 0; i < d->n; i++) {
        const struct window_key *k = &d->windows[i]->key;
        if (k->kind != READING_BATTERY)
            continue;
        pgarray_add_int(homes, k->home_id);
        pgarray_add_int(devices, k->device_id);
        pgarray_add_int(starts, k->start);
    }
    params[0] = pgarray_finish(homes);
    params[1] = pgarray_finish(devices);
    params[2] = pgarray_finish(starts);
    if (!send(ctx, base + TAG_NEIGHBOURS,
              "SELECT k.home_id, k.battery_id, k.start,"
              " (SELECT extract(epoch FROM f.last_ts)::bigint"
              "    FROM solarx_wh.fact_battery_power_readings f"
              "   WHERE f.home_id = k.home_id AND f.battery_id = k.battery_id"
              "     AND f.date_key < to_timestamp(k.start) ORDER BY f.date_key DESC LIMIT 1),"
              " (SELECT extract(epoch FROM f.first_ts)::bigint"
              "    FROM solarx_wh.fact_battery_power_readings f"
              "   WHERE f.home_id = k.home_id AND f.battery_id = k.battery_id"
              "     AND f.date_key > to_timestamp(k.start) ORDER BY f.date_key LIMIT 1)"
              " FROM unnest($1::int[], $2::int[], $3::bigint[]) AS k(home_id, battery_id, start)",
              3, params))
        return false;

    /* Registry histories of the homes and panels involved. */
    pgarray_reset(homes);
    pgarray_reset(devices);
    for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
        if (dev->id.kind == DIM_HOME)
            pgarray_add_int(homes, dev->id.device_id);
        else if (dev->id.kind == DIM_PANEL)
            pgarray_add_int(devices, dev->id.device_id);
    }
    params[0] = pgarray_finish(homes);
    if (!send(ctx, base + TAG_HOME,
              "SELECT home_id, extract(epoch FROM start_date)::bigint, min_consumption_power_wh,"
              " max_consumption_power_wh FROM solarx_wh.dim_home"
              " WHERE home_id = ANY($1::int[]) ORDER BY home_id, start_date",
              1, params))
        return false;
    params[0] = pgarray_finish(devices);
    return send(ctx, base + TAG_PANEL,
                "SELECT solar_panel_id, home_id, name, extract(epoch FROM start_date)::bigint,"
                " capacity_kwh, intensity_power_rating_wh, temperature_power_rating_c"
                " FROM solarx_wh.dim_solar_panel"
                " WHERE solar_panel_id = ANY($1::int[]) ORDER BY solar_panel_id, start_date",
                1, params);
}

static bool fixed_at(PGresult *res, int row, int col, fixed_t *out)
{
    return fixed_parse(PQgetvalue(res, row, col), out);
}

static int64_t int_at(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? DIM_NONE : atoll(PQgetvalue(res, row, col));
}

bool dimsync_take_result(struct dimsync *d, int tag, int base, PGresult *res, char *errstr,
                         size_t errstr_size)
{
    for (int row = 0; row < PQntuples(res); row++) {
        struct dim_attrs a;
        fixed_t v[3] = {0, 0, 0};
        struct device *dev = NULL;
        int64_t start = 0, last_seen = 0;
        bool ok = true;
        switch (tag - base) {
        case TAG_BATTERY:
            dev = find_device(d, DIM_BATTERY, atoi(PQgetvalue(res, row, 0)),
                              atoi(PQgetvalue(res, row, 1)));
            start = int_at(res, row, 2);
            last_seen = int_at(res, row, 3);
            ok = fixed_at(res, row, 4, &v[0]) && fixed_at(res, row, 5, &v[1]) &&
                 fixed_at(res, row, 6, &v[2]);
            dim_battery_attrs(v[0], v[1], v[2], &a);
            break;
        case TAG_NEIGHBOURS: {
            struct window_key key =
                window_key_make(READING_BATTERY, atoi(PQgetvalue(res, row, 0)),
                                atoi(PQgetvalue(res, row, 1)), atoll(PQgetvalue(res, row, 2)));
            long i = batch_find_window(d->windows, d->n, &key);
            if (i >= 0) {
                d->stored_prev[i] = int_at(res, row, 3);
                d->stored_next[i] = int_at(res, row, 4);
            }
            continue;
        }
        case TAG_HOME:
            dev = find_device(d, DIM_HOME, atoi(PQgetvalue(res, row, 0)),
                              atoi(PQgetvalue(res, row, 0)));
            start = last_seen = int_at(res, row, 1);
            ok = fixed_at(res, row, 2, &v[0]) && fixed_at(res, row, 3, &v[1]);
            dim_home_attrs(v[0], v[1], &a);
            break;
        case TAG_PANEL:
            dev = find_device(d, DIM_PANEL, 0, atoi(PQgetvalue(res, row, 0)));
            start = last_seen = int_at(res, row, 3);
            ok = fixed_at(res, row, 4, &v[0]) && fixed_at(res, row, 5, &v[1]) &&
                 fixed_at(res, row, 6, &v[2]) &&
                 dim_panel_attrs(PQgetvalue(res, row, 2), v[0], v[1], v[2],
                                 atoi(PQgetvalue(res, row, 1)), &a);
            break;
        default:
            return true; /* locks */
        }
        if (!dev)
            continue;
        if (!ok || dim_history_restore(dev->h, start, last_seen, &a) != 0) {
            snprintf(errstr, errstr_size,
                     "stored dimension version of device %d/%d starting at %lld is invalid",
                     dev->id.home_id, dev->id.device_id, (long long)start);
            return false;
        }
    }
    return true;
}

/* Snapshots every history as read, so that changes can be found after the merge. */
static bool snapshot(struct dimsync *d)
{
    for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
        if (dev->before)
            continue;
        dev->before = dim_history_clone(dev->h);
        if (!dev->before)
            return false;
    }
    return true;
}

/* When a registry entry dates a version: its effective_from; without one, the load time -- except
 * for a device the warehouse has no version of yet, whose first version starts at the epoch
 * (the registry describes it from the beginning), so that fresh warehouses agree on it. */
static int64_t registry_time(const struct device *dev, int64_t effective_from, bool given)
{
    return given || dim_history_count(dev->h) > 0 ? effective_from : 0;
}

bool dimsync_apply_registry(struct dimsync *d, char *errstr, size_t errstr_size)
{
    if (!snapshot(d)) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    if (!d->reg)
        return true;
    size_t homes = registry_home_count(d->reg), panels = registry_panel_count(d->reg);
    struct dim_observation *obs = calloc((homes > panels ? homes : panels) + 1, sizeof(*obs));
    if (!obs) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    bool ok = true;
    for (struct device *dev = d->devices; ok && dev; dev = dev->hh.next) {
        size_t n = 0;
        if (dev->id.kind == DIM_HOME) {
            for (size_t i = 0; i < homes; i++) {
                const struct registry_home *home = registry_home(d->reg, i);
                if (home->home_id != dev->id.device_id)
                    continue;
                obs[n].t = registry_time(dev, home->effective_from, home->has_effective_from);
                registry_home_attrs(home, &obs[n++].attrs);
            }
        } else if (dev->id.kind == DIM_PANEL) {
            for (size_t i = 0; i < panels; i++) {
                const struct registry_panel *panel = registry_panel(d->reg, i);
                if (panel->panel_id != dev->id.device_id)
                    continue;
                obs[n].t = registry_time(dev, panel->effective_from, panel->has_effective_from);
                registry_panel_attrs(panel, &obs[n++].attrs);
            }
        }
        if (n > 0 && dim_history_apply_registry(dev->h, obs, n) < 0) {
            snprintf(errstr, errstr_size, "registry entries of %s %d do not apply",
                     dev->id.kind == DIM_HOME ? "home" : "panel", dev->id.device_id);
            ok = false;
        }
    }
    free(obs);
    return ok;
}

/* The latest reading of this battery before t, among those its history has seen: stored
 * readings and the batch's readings applied so far (windows are merged in sorted order). */
static int64_t reading_before(const struct dimsync *d, size_t index, int64_t t)
{
    int64_t found = window_prev_seen_before(&d->states[index], t);
    if (found != -1)
        return found;
    int64_t best = d->stored_prev[index];
    const struct window_key *k = &d->windows[index]->key;
    for (size_t j = index; j-- > 0;) {
        const struct window_key *o = &d->windows[j]->key;
        if (o->kind != k->kind || o->home_id != k->home_id || o->device_id != k->device_id)
            break;
        if (d->states[j].readings_count > 0) {
            if (best == DIM_NONE || d->states[j].last_ts > best)
                best = d->states[j].last_ts;
            break;
        }
    }
    return best;
}

static int64_t reading_after(const struct dimsync *d, size_t index, int64_t t)
{
    int64_t found = window_next_seen_after(&d->states[index], t);
    if (found != -1)
        return found;
    int64_t best = d->stored_next[index];
    const struct window_key *k = &d->windows[index]->key;
    for (size_t j = index + 1; j < d->n; j++) {
        const struct window_key *o = &d->windows[j]->key;
        if (o->kind != k->kind || o->home_id != k->home_id || o->device_id != k->device_id)
            break;
        if (d->states[j].readings_count > 0) {
            if (best == DIM_NONE || d->states[j].first_ts < best)
                best = d->states[j].first_ts;
            break;
        }
    }
    return best;
}

bool dimsync_observe_battery(struct dimsync *d, size_t index, const struct reading *r, char *errstr,
                             size_t errstr_size)
{
    struct device *dev = find_device(d, DIM_BATTERY, r->home_id, r->device_id);
    if (!dev || (!dev->before && !snapshot(d))) {
        snprintf(errstr, errstr_size, "battery %d/%d: no history", r->home_id, r->device_id);
        return false;
    }
    struct dim_attrs a;
    dim_battery_attrs_of(r, &a);
    int64_t prev = DIM_NONE, next = DIM_NONE, lo, hi;
    if (dim_history_needs_neighbours(dev->h, r->ts, &a, &lo, &hi)) {
        prev = reading_before(d, index, r->ts);
        next = reading_after(d, index, r->ts);
    }
    int rc = dim_history_observe(dev->h, r->ts, &a, prev, next);
    if (rc < 0) {
        snprintf(errstr, errstr_size,
                 "battery %d/%d: the reading at %lld does not fit its stored history (%s)",
                 r->home_id, r->device_id, (long long)r->ts, strerror(-rc));
        return false;
    }
    return true;
}

int64_t dimsync_key_at(const struct dimsync *d, enum reading_kind kind, int32_t home_id,
                       int32_t device_id, int64_t ts)
{
    const struct device *dev = find_device(d, dim_kind_of(kind), home_id, device_id);
    return dev ? dim_history_key_at(dev->h, ts) : 0;
}

static bool history_changed(const struct device *dev)
{
    return dev->before && !dim_history_equal(dev->before, dev->h);
}

/* True when the versions themselves changed (a start, hence a key, or attributes), not merely a
 * last_seen: only then do facts need re-pointing. */
static bool versions_changed(const struct device *dev)
{
    if (!history_changed(dev))
        return false;
    size_t n = dim_history_count(dev->h);
    if (n != dim_history_count(dev->before))
        return true;
    for (size_t i = 0; i < n; i++) {
        const struct dim_version *a = dim_history_version(dev->h, i);
        const struct dim_version *b = dim_history_version(dev->before, i);
        if (a->start != b->start || !dim_attrs_equal(&a->attrs, &b->attrs))
            return true;
    }
    return false;
}

static void add_end(struct pgarray *a, const struct dim_row *row)
{
    if (row->end == DIM_NONE)
        pgarray_add_null(a);
    else
        pgarray_add_int(a, row->end);
}

bool dimsync_send_dimension_writes(struct dimsync *d, dimsync_send_fn send, void *ctx,
                                   struct pgarray *a)
{
    /* Versions of the changed devices that are gone (the last parameter: the keys that remain). */
    static const char *const delete_sql[3] = {
        [DIM_HOME] = "DELETE FROM solarx_wh.dim_home WHERE home_id = ANY($1::int[])"
                     " AND home_key <> ALL($2::bigint[])",
        [DIM_PANEL] = "DELETE FROM solarx_wh.dim_solar_panel WHERE solar_panel_id = ANY($1::int[])"
                      " AND solar_panel_key <> ALL($2::bigint[])",
        [DIM_BATTERY] = "DELETE FROM solarx_wh.dim_battery WHERE (home_id, battery_id) IN"
                        " (SELECT * FROM unnest($1::int[], $2::int[]))"
                        " AND battery_key <> ALL($3::bigint[])",
    };
    static const char *const insert_sql[3] = {
        [DIM_HOME] = "INSERT INTO solarx_wh.dim_home (home_key, home_id, min_consumption_power_wh,"
                     " max_consumption_power_wh, start_date, end_date, current_flag)"
                     " SELECT k, h, mn, mx, to_timestamp(s), to_timestamp(e), c"
                     " FROM unnest($1::bigint[], $2::int[], $3::numeric[], $4::numeric[],"
                     "             $5::bigint[], $6::bigint[], $7::bool[])"
                     "      AS u(k, h, mn, mx, s, e, c)"
                     " ON CONFLICT (home_key) DO UPDATE SET"
                     " min_consumption_power_wh = EXCLUDED.min_consumption_power_wh,"
                     " max_consumption_power_wh = EXCLUDED.max_consumption_power_wh,"
                     " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
        [DIM_PANEL] =
            "INSERT INTO solarx_wh.dim_solar_panel (solar_panel_key, solar_panel_id, home_id,"
            " name, capacity_kwh, intensity_power_rating_wh, temperature_power_rating_c,"
            " start_date, end_date, current_flag)"
            " SELECT k, p, h, nm, cap, it, tp, to_timestamp(s), to_timestamp(e), c"
            " FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::numeric[],"
            "             $6::numeric[], $7::numeric[], $8::bigint[], $9::bigint[], $10::bool[])"
            "      AS u(k, p, h, nm, cap, it, tp, s, e, c)"
            " ON CONFLICT (solar_panel_key) DO UPDATE SET home_id = EXCLUDED.home_id,"
            " name = EXCLUDED.name, capacity_kwh = EXCLUDED.capacity_kwh,"
            " intensity_power_rating_wh = EXCLUDED.intensity_power_rating_wh,"
            " temperature_power_rating_c = EXCLUDED.temperature_power_rating_c,"
            " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
        [DIM_BATTERY] =
            "INSERT INTO solarx_wh.dim_battery (battery_key, home_id, battery_id, name,"
            " capacity_kwh, max_charge_speed_w, max_output_w, start_date, last_seen, end_date,"
            " current_flag)"
            " SELECT k, h, b, 'battery_' || b, cap, sp, mo, to_timestamp(s), to_timestamp(l),"
            "        to_timestamp(e), c"
            " FROM unnest($1::bigint[], $2::int[], $3::int[], $4::numeric[], $5::numeric[],"
            "             $6::numeric[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bool[])"
            "      AS u(k, h, b, cap, sp, mo, s, l, e, c)"
            " ON CONFLICT (battery_key) DO UPDATE SET capacity_kwh = EXCLUDED.capacity_kwh,"
            " max_charge_speed_w = EXCLUDED.max_charge_speed_w,"
            " max_output_w = EXCLUDED.max_output_w, last_seen = EXCLUDED.last_seen,"
            " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
    };
    static const int insert_params[3] = {[DIM_HOME] = 7, [DIM_PANEL] = 10, [DIM_BATTERY] = 10};

    for (int kind = 0; kind < 3; kind++) {
        struct pgarray *del_home = &a[10], *del_device = &a[11], *kept = &a[12];
        pgarray_reset(del_home);
        pgarray_reset(del_device);
        pgarray_reset(kept);
        for (int i = 0; i < insert_params[kind]; i++)
            pgarray_reset(&a[i]);
        size_t devices = 0;
        for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
            if (dev->id.kind != kind || !history_changed(dev))
                continue;
            devices++;
            if (kind == DIM_BATTERY) {
                pgarray_add_int(del_home, dev->id.home_id);
                pgarray_add_int(del_device, dev->id.device_id);
            } else {
                pgarray_add_int(del_home, dev->id.device_id);
            }
            struct dim_row row;
            for (size_t i = 0; dim_history_row(dev->h, i, &row); i++) {
                const int64_t *v = row.attrs->v;
                int n = 0;
                pgarray_add_int(&a[n++], row.key);
                pgarray_add_int(kept, row.key);
                if (kind == DIM_HOME) {
                    pgarray_add_int(&a[n++], dev->id.device_id);
                    pgarray_add_fixed(&a[n++], v[DIM_HOME_MIN_W]);
                    pgarray_add_fixed(&a[n++], v[DIM_HOME_MAX_W]);
                } else if (kind == DIM_PANEL) {
                    pgarray_add_int(&a[n++], dev->id.device_id);
                    pgarray_add_int(&a[n++], v[DIM_PANEL_HOME_ID]);
                    pgarray_add_text(&a[n++], row.attrs->text, strlen(row.attrs->text));
                    pgarray_add_fixed(&a[n++], v[DIM_PANEL_CAPACITY_KWH]);
                    pgarray_add_fixed(&a[n++], v[DIM_PANEL_INTENSITY_W]);
                    pgarray_add_fixed(&a[n++], v[DIM_PANEL_TEMPERATURE_C]);
                } else {
                    pgarray_add_int(&a[n++], dev->id.home_id);
                    pgarray_add_int(&a[n++], dev->id.device_id);
                    pgarray_add_fixed(&a[n++], v[DIM_BATTERY_CAPACITY_KWH]);
                    pgarray_add_fixed(&a[n++], v[DIM_BATTERY_MAX_CHARGE_W]);
                    pgarray_add_fixed(&a[n++], v[DIM_BATTERY_MAX_OUTPUT_W]);
                }
                pgarray_add_int(&a[n++], row.start);
                if (kind == DIM_BATTERY)
                    pgarray_add_int(&a[n++], dim_history_version(dev->h, i)->last_seen);
                add_end(&a[n++], &row);
                pgarray_add_bool(&a[n++], row.current);
            }
        }
        if (devices == 0)
            continue;
        d->changed += devices;
        const char *del_params[3] = {pgarray_finish(del_home), NULL, NULL};
        if (kind == DIM_BATTERY) {
            del_params[1] = pgarray_finish(del_device);
            del_params[2] = pgarray_finish(kept);
        } else {
            del_params[1] = pgarray_finish(kept);
        }
        const char *params[10];
        for (int i = 0; i < insert_params[kind]; i++)
            params[i] = pgarray_finish(&a[i]);
        if (!send(ctx, -1, delete_sql[kind], kind == DIM_BATTERY ? 3 : 2, del_params) ||
            !send(ctx, -1, insert_sql[kind], insert_params[kind], params))
            return false;
    }
    if (!d->registry_dirty)
        return true;

    /* dim_home_appliances is type 1: the registry as loaded last (the entries now in effect). */
    struct pgarray *homes = &a[10];
    pgarray_reset(homes);
    for (int i = 0; i < 6; i++)
        pgarray_reset(&a[i]);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < registry_home_count(d->reg); i++) {
        int32_t home_id = registry_home(d->reg, i)->home_id;
        const struct registry_home *home = registry_home_in_effect(d->reg, home_id, now);
        if (home != registry_home(d->reg, i))
            continue; /* another entry of that home is the one in effect */
        pgarray_add_int(homes, home_id);
        for (size_t j = 0; j < home->appliance_count; j++) {
            const struct registry_appliance *ap = &home->appliances[j];
            pgarray_add_int(&a[0], dim_appliance_key(home_id, ap->name));
            pgarray_add_int(&a[1], home_id);
            pgarray_add_text(&a[2], ap->name, strlen(ap->name));
            pgarray_add_fixed(&a[3], ap->min_w);
            pgarray_add_fixed(&a[4], ap->max_w);
            pgarray_add_text(&a[5], ap->usage_time, strlen(ap->usage_time));
        }
    }
    const char *del_params[1] = {pgarray_finish(homes)};
    const char *params[6];
    for (int i = 0; i < 6; i++)
        params[i] = pgarray_finish(&a[i]);
    return send(ctx, -1, "DELETE FROM solarx_wh.dim_home_appliances WHERE home_id = ANY($1::int[])",
                1, del_params) &&
           send(ctx, -1,
                "INSERT INTO solarx_wh.dim_home_appliances (home_appliance_key, home_id, appliance,"
                " min_consumption_power_wh, max_consumption_power_wh, usage_time)"
                " SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::numeric[],"
                "                      $5::numeric[], $6::text[])",
                6, params);
}

bool dimsync_send_repoints(struct dimsync *d, dimsync_send_fn send, void *ctx, struct pgarray *a)
{
    /* The version in effect at the window's last reading: the last one starting at or before
     * it, else (a reading older than every version) the first one -- dim_history_version_at. */
    static const char *const repoint_sql[3] = {
        [DIM_HOME] = "UPDATE solarx_wh.fact_home_power_readings f SET home_key ="
                     " (SELECT d.home_key FROM solarx_wh.dim_home d WHERE d.home_id = f.home_id"
                     "   ORDER BY d.start_date <= f.last_ts DESC,"
                     "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
                     "   d.start_date LIMIT 1)"
                     " WHERE f.home_id = ANY($1::int[])",
        [DIM_PANEL] =
            "UPDATE solarx_wh.fact_solar_panel_power_readings f SET solar_panel_key ="
            " (SELECT d.solar_panel_key FROM solarx_wh.dim_solar_panel d"
            "   WHERE d.solar_panel_id = f.solar_panel_id"
            "   ORDER BY d.start_date <= f.last_ts DESC,"
            "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
            "   d.start_date LIMIT 1)"
            " WHERE f.solar_panel_id = ANY($1::int[])",
        [DIM_BATTERY] =
            "UPDATE solarx_wh.fact_battery_power_readings f SET battery_key ="
            " (SELECT d.battery_key FROM solarx_wh.dim_battery d"
            "   WHERE d.home_id = f.home_id AND d.battery_id = f.battery_id"
            "   ORDER BY d.start_date <= f.last_ts DESC,"
            "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
            "   d.start_date LIMIT 1)"
            " WHERE (f.home_id, f.battery_id) IN (SELECT * FROM unnest($1::int[], $2::int[]))",
    };
    for (int kind = 0; kind < 3; kind++) {
        pgarray_reset(&a[0]);
        pgarray_reset(&a[1]);
        size_t devices = 0;
        for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
            if (dev->id.kind != kind || !versions_changed(dev))
                continue;
            devices++;
            pgarray_add_int(&a[0], kind == DIM_BATTERY ? dev->id.home_id : dev->id.device_id);
            pgarray_add_int(&a[1], dev->id.device_id);
        }
        if (devices == 0)
            continue;
        const char *params[2] = {pgarray_finish(&a[0]), pgarray_finish(&a[1])};
        if (!send(ctx, -1, repoint_sql[kind], kind == DIM_BATTERY ? 2 : 1, params))
            return false;
    }
    return true;
}
