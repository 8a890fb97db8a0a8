/* Dimensions in the flush: histories read under lock, fed with new battery readings and the
 * registries, written back when changed, with the facts they re-point. */
#include "solarx/dimsync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "solarx/statements.h"

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
    size_t changed;                     /* devices whose history changed */
    size_t rows_written;                /* version rows upserted */
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
    *d = (struct dimsync){windows, states, n, reg, registry_dirty && reg, NULL, NULL, NULL, 0, 0};
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

size_t dimsync_rows_written(const struct dimsync *d)
{
    return d->rows_written;
}

bool dimsync_send_lock(struct dimsync *d, struct db_pipe *pipe)
{
    return db_send(pipe,
                   d->registry_dirty ? STMT_LOCK_REGISTRY_EXCLUSIVE : STMT_LOCK_REGISTRY_SHARED,
                   NULL, NULL, NULL);
}

static bool fixed_at(PGresult *res, int row, int col, fixed_t *out)
{
    return fixed_parse(PQgetvalue(res, row, col), out);
}

static int64_t int_at(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? DIM_NONE : atoll(PQgetvalue(res, row, col));
}

/* A stored version of dev (NULL: a device this flush does not involve) into its history. */
static bool restore_version(struct device *dev, int64_t start, int64_t last_seen,
                            const struct dim_attrs *a, bool parsed, char *errstr,
                            size_t errstr_size)
{
    if (!dev)
        return true;
    if (!parsed || dim_history_restore(dev->h, start, last_seen, a) != 0) {
        snprintf(errstr, errstr_size,
                 "stored dimension version of device %d/%d starting at %lld is invalid",
                 dev->id.home_id, dev->id.device_id, (long long)start);
        return false;
    }
    return true;
}

static bool take_battery_versions(void *ctx, PGresult *res, char *errstr, size_t errstr_size)
{
    struct dimsync *d = ctx;
    for (int row = 0; row < PQntuples(res); row++) {
        struct dim_attrs a;
        fixed_t capacity = 0, charge = 0, output = 0;
        struct device *dev =
            find_device(d, DIM_BATTERY, atoi(PQgetvalue(res, row, C_BATTERY_VERSION_HOME_ID)),
                        atoi(PQgetvalue(res, row, C_BATTERY_VERSION_BATTERY_ID)));
        bool ok = fixed_at(res, row, C_BATTERY_VERSION_CAPACITY_KWH, &capacity) &&
                  fixed_at(res, row, C_BATTERY_VERSION_MAX_CHARGE_SPEED_W, &charge) &&
                  fixed_at(res, row, C_BATTERY_VERSION_MAX_OUTPUT_W, &output);
        dim_battery_attrs(capacity, charge, output, &a);
        if (!restore_version(dev, int_at(res, row, C_BATTERY_VERSION_START),
                             int_at(res, row, C_BATTERY_VERSION_LAST_SEEN), &a, ok, errstr,
                             errstr_size))
            return false;
    }
    return true;
}

static bool take_battery_neighbours(void *ctx, PGresult *res, char *errstr, size_t errstr_size)
{
    struct dimsync *d = ctx;
    for (int row = 0; row < PQntuples(res); row++) {
        struct window_key key =
            window_key_make(READING_BATTERY, atoi(PQgetvalue(res, row, C_NEIGHBOURS_HOME_ID)),
                            atoi(PQgetvalue(res, row, C_NEIGHBOURS_BATTERY_ID)),
                            atoll(PQgetvalue(res, row, C_NEIGHBOURS_START)));
        long i = batch_find_window(d->windows, d->n, &key);
        if (i >= 0) {
            d->stored_prev[i] = int_at(res, row, C_NEIGHBOURS_PREV_LAST_TS);
            d->stored_next[i] = int_at(res, row, C_NEIGHBOURS_NEXT_FIRST_TS);
        }
    }
    return true;
}

static bool take_home_versions(void *ctx, PGresult *res, char *errstr, size_t errstr_size)
{
    struct dimsync *d = ctx;
    for (int row = 0; row < PQntuples(res); row++) {
        struct dim_attrs a;
        fixed_t min_w = 0, max_w = 0;
        int32_t home_id = atoi(PQgetvalue(res, row, C_HOME_VERSION_HOME_ID));
        int64_t start = int_at(res, row, C_HOME_VERSION_START);
        bool ok = fixed_at(res, row, C_HOME_VERSION_MIN_W, &min_w) &&
                  fixed_at(res, row, C_HOME_VERSION_MAX_W, &max_w);
        dim_home_attrs(min_w, max_w, &a);
        if (!restore_version(find_device(d, DIM_HOME, home_id, home_id), start, start, &a, ok,
                             errstr, errstr_size))
            return false;
    }
    return true;
}

static bool take_panel_versions(void *ctx, PGresult *res, char *errstr, size_t errstr_size)
{
    struct dimsync *d = ctx;
    for (int row = 0; row < PQntuples(res); row++) {
        struct dim_attrs a;
        fixed_t capacity = 0, intensity = 0, temperature = 0;
        struct device *dev =
            find_device(d, DIM_PANEL, 0, atoi(PQgetvalue(res, row, C_PANEL_VERSION_PANEL_ID)));
        int64_t start = int_at(res, row, C_PANEL_VERSION_START);
        bool ok =
            fixed_at(res, row, C_PANEL_VERSION_CAPACITY_KWH, &capacity) &&
            fixed_at(res, row, C_PANEL_VERSION_INTENSITY_W, &intensity) &&
            fixed_at(res, row, C_PANEL_VERSION_TEMPERATURE_C, &temperature) &&
            dim_panel_attrs(PQgetvalue(res, row, C_PANEL_VERSION_NAME), capacity, intensity,
                            temperature, atoi(PQgetvalue(res, row, C_PANEL_VERSION_HOME_ID)), &a);
        if (!restore_version(dev, start, start, &a, ok, errstr, errstr_size))
            return false;
    }
    return true;
}

bool dimsync_send_reads(struct dimsync *d, struct db_pipe *pipe, struct pgarray *scratch)
{
    struct pgarray *homes = &scratch[0], *devices = &scratch[1], *starts = &scratch[2];

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
    const char *lock[P_BATTERY_LOCKS_COUNT] = {[P_BATTERY_LOCKS_HOME_IDS] = pgarray_finish(homes)};
    const char *batteries[P_BATTERY_DEVICES_COUNT] = {
        [P_BATTERY_DEVICES_HOME_IDS] = lock[P_BATTERY_LOCKS_HOME_IDS],
        [P_BATTERY_DEVICES_BATTERY_IDS] = pgarray_finish(devices),
    };
    if (!db_send(pipe, STMT_LOCK_BATTERY_HOMES, lock, NULL, NULL) ||
        !db_send(pipe, STMT_READ_BATTERY_VERSIONS, batteries, take_battery_versions, d))
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
    const char *windows[P_WINDOW_KEYS_COUNT] = {
        [P_WINDOW_KEYS_HOME_IDS] = pgarray_finish(homes),
        [P_WINDOW_KEYS_DEVICE_IDS] = pgarray_finish(devices),
        [P_WINDOW_KEYS_STARTS] = pgarray_finish(starts),
    };
    if (!db_send(pipe, STMT_READ_BATTERY_NEIGHBOURS, windows, take_battery_neighbours, d))
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
    const char *home_ids[P_HOME_VERSIONS_COUNT] = {[P_HOME_VERSIONS_HOME_IDS] =
                                                       pgarray_finish(homes)};
    const char *panel_ids[P_PANEL_VERSIONS_COUNT] = {[P_PANEL_VERSIONS_PANEL_IDS] =
                                                         pgarray_finish(devices)};
    return db_send(pipe, STMT_READ_HOME_VERSIONS, home_ids, take_home_versions, d) &&
           db_send(pipe, STMT_READ_PANEL_VERSIONS, panel_ids, take_panel_versions, d);
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

/* One version of a changed device into the columns of its kind's upsert. */
static void add_home_version(struct pgarray *v, const struct device *dev, const struct dim_row *row)
{
    pgarray_add_int(&v[P_HOME_VERSION_KEYS], row->key);
    pgarray_add_int(&v[P_HOME_VERSION_HOME_IDS], dev->id.device_id);
    pgarray_add_fixed(&v[P_HOME_VERSION_MINS_W], row->attrs->v[DIM_HOME_MIN_W]);
    pgarray_add_fixed(&v[P_HOME_VERSION_MAXS_W], row->attrs->v[DIM_HOME_MAX_W]);
    pgarray_add_int(&v[P_HOME_VERSION_STARTS], row->start);
    add_end(&v[P_HOME_VERSION_ENDS], row);
    pgarray_add_bool(&v[P_HOME_VERSION_CURRENT], row->current);
}

static void add_panel_version(struct pgarray *v, const struct device *dev,
                              const struct dim_row *row)
{
    const int64_t *attr = row->attrs->v;
    pgarray_add_int(&v[P_PANEL_VERSION_KEYS], row->key);
    pgarray_add_int(&v[P_PANEL_VERSION_PANEL_IDS], dev->id.device_id);
    pgarray_add_int(&v[P_PANEL_VERSION_HOME_IDS], attr[DIM_PANEL_HOME_ID]);
    pgarray_add_text(&v[P_PANEL_VERSION_NAMES], row->attrs->text, strlen(row->attrs->text));
    pgarray_add_fixed(&v[P_PANEL_VERSION_CAPACITIES_KWH], attr[DIM_PANEL_CAPACITY_KWH]);
    pgarray_add_fixed(&v[P_PANEL_VERSION_INTENSITIES_W], attr[DIM_PANEL_INTENSITY_W]);
    pgarray_add_fixed(&v[P_PANEL_VERSION_TEMPERATURES_C], attr[DIM_PANEL_TEMPERATURE_C]);
    pgarray_add_int(&v[P_PANEL_VERSION_STARTS], row->start);
    add_end(&v[P_PANEL_VERSION_ENDS], row);
    pgarray_add_bool(&v[P_PANEL_VERSION_CURRENT], row->current);
}

static void add_battery_version(struct pgarray *v, const struct device *dev,
                                const struct dim_row *row, int64_t last_seen)
{
    const int64_t *attr = row->attrs->v;
    pgarray_add_int(&v[P_BATTERY_VERSION_KEYS], row->key);
    pgarray_add_int(&v[P_BATTERY_VERSION_HOME_IDS], dev->id.home_id);
    pgarray_add_int(&v[P_BATTERY_VERSION_BATTERY_IDS], dev->id.device_id);
    pgarray_add_fixed(&v[P_BATTERY_VERSION_CAPACITIES_KWH], attr[DIM_BATTERY_CAPACITY_KWH]);
    pgarray_add_fixed(&v[P_BATTERY_VERSION_MAX_CHARGE_SPEEDS_W], attr[DIM_BATTERY_MAX_CHARGE_W]);
    pgarray_add_fixed(&v[P_BATTERY_VERSION_MAX_OUTPUTS_W], attr[DIM_BATTERY_MAX_OUTPUT_W]);
    pgarray_add_int(&v[P_BATTERY_VERSION_STARTS], row->start);
    pgarray_add_int(&v[P_BATTERY_VERSION_LAST_SEEN], last_seen);
    add_end(&v[P_BATTERY_VERSION_ENDS], row);
    pgarray_add_bool(&v[P_BATTERY_VERSION_CURRENT], row->current);
}

static const enum stmt_id delete_versions_stmt[3] = {
    [DIM_HOME] = STMT_DELETE_HOME_VERSIONS,
    [DIM_PANEL] = STMT_DELETE_PANEL_VERSIONS,
    [DIM_BATTERY] = STMT_DELETE_BATTERY_VERSIONS,
};
static const enum stmt_id upsert_versions_stmt[3] = {
    [DIM_HOME] = STMT_UPSERT_HOME_VERSIONS,
    [DIM_PANEL] = STMT_UPSERT_PANEL_VERSIONS,
    [DIM_BATTERY] = STMT_UPSERT_BATTERY_VERSIONS,
};

/* The changed histories of one kind: of each, the rows that differ from the stored ones are
 * upserted by key (usually one: the current version's last_seen moved), and only a history that
 * lost a stored row (a version's start moved, or a version was split or merged away) has its
 * other stored versions deleted. */
static bool send_versions(struct dimsync *d, enum dim_kind kind, struct db_pipe *pipe,
                          struct pgarray *versions, struct pgarray *gone)
{
    const struct stmt_def *upsert = stmt_get(upsert_versions_stmt[kind]);
    const struct stmt_def *delete = stmt_get(delete_versions_stmt[kind]);
    for (size_t i = 0; i < upsert->nparams; i++)
        pgarray_reset(&versions[i]);
    for (size_t i = 0; i < delete->nparams; i++)
        pgarray_reset(&gone[i]);
    /* The delete's last parameter is the keys that remain; before it, the devices. */
    struct pgarray *kept = &gone[kind == DIM_BATTERY ? P_DELETE_BATTERY_VERSIONS_KEPT_KEYS
                                                     : P_DELETE_VERSIONS_KEPT_KEYS];
    size_t devices = 0, pruned = 0, rows = 0;
    for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
        if (dev->id.kind != (int32_t)kind || !history_changed(dev))
            continue;
        devices++;
        bool prune = dim_history_drops_rows(dev->before, dev->h);
        if (prune && kind == DIM_BATTERY) {
            pgarray_add_int(&gone[P_DELETE_BATTERY_VERSIONS_HOME_IDS], dev->id.home_id);
            pgarray_add_int(&gone[P_DELETE_BATTERY_VERSIONS_BATTERY_IDS], dev->id.device_id);
        } else if (prune) {
            pgarray_add_int(&gone[P_DELETE_VERSIONS_DEVICE_IDS], dev->id.device_id);
        }
        pruned += prune;
        struct dim_row row;
        for (size_t i = 0; dim_history_row(dev->h, i, &row); i++) {
            if (prune)
                pgarray_add_int(kept, row.key);
            if (dim_history_row_unchanged(dev->before, dev->h, i))
                continue;
            rows++;
            if (kind == DIM_HOME)
                add_home_version(versions, dev, &row);
            else if (kind == DIM_PANEL)
                add_panel_version(versions, dev, &row);
            else
                add_battery_version(versions, dev, &row, dim_history_version(dev->h, i)->last_seen);
        }
    }
    d->changed += devices;
    d->rows_written += rows;
    const char *gone_values[STMT_MAX_PARAMS], *version_values[STMT_MAX_PARAMS];
    for (size_t i = 0; i < delete->nparams; i++)
        gone_values[i] = pgarray_finish(&gone[i]);
    for (size_t i = 0; i < upsert->nparams; i++)
        version_values[i] = pgarray_finish(&versions[i]);
    return (pruned == 0 || db_send(pipe, delete_versions_stmt[kind], gone_values, NULL, NULL)) &&
           (rows == 0 || db_send(pipe, upsert_versions_stmt[kind], version_values, NULL, NULL));
}

/* dim_home_appliances is type 1: the registry as loaded last (the entries now in effect). */
static bool send_appliances(struct dimsync *d, struct db_pipe *pipe, struct pgarray *a,
                            struct pgarray *homes)
{
    pgarray_reset(homes);
    for (int i = 0; i < P_APPLIANCE_COUNT; i++)
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
            pgarray_add_int(&a[P_APPLIANCE_KEYS], dim_appliance_key(home_id, ap->name));
            pgarray_add_int(&a[P_APPLIANCE_HOME_IDS], home_id);
            pgarray_add_text(&a[P_APPLIANCE_NAMES], ap->name, strlen(ap->name));
            pgarray_add_fixed(&a[P_APPLIANCE_MINS_W], ap->min_w);
            pgarray_add_fixed(&a[P_APPLIANCE_MAXS_W], ap->max_w);
            pgarray_add_text(&a[P_APPLIANCE_USAGE_TIMES], ap->usage_time, strlen(ap->usage_time));
        }
    }
    const char *delete[P_DELETE_APPLIANCES_COUNT] = {[P_DELETE_APPLIANCES_HOME_IDS] =
                                                         pgarray_finish(homes)};
    const char *insert[P_APPLIANCE_COUNT];
    for (int i = 0; i < P_APPLIANCE_COUNT; i++)
        insert[i] = pgarray_finish(&a[i]);
    return db_send(pipe, STMT_DELETE_APPLIANCES, delete, NULL, NULL) &&
           db_send(pipe, STMT_INSERT_APPLIANCES, insert, NULL, NULL);
}

bool dimsync_send_dimension_writes(struct dimsync *d, struct db_pipe *pipe, struct pgarray *scratch)
{
    struct pgarray *versions = scratch, *gone = scratch + STMT_MAX_PARAMS;
    for (int kind = DIM_HOME; kind <= DIM_BATTERY; kind++)
        if (!send_versions(d, (enum dim_kind)kind, pipe, versions, gone))
            return false;
    return !d->registry_dirty || send_appliances(d, pipe, versions, gone);
}

bool dimsync_send_repoints(struct dimsync *d, struct db_pipe *pipe, struct pgarray *scratch)
{
    static const enum stmt_id repoint_stmt[3] = {
        [DIM_HOME] = STMT_REPOINT_HOME_FACTS,
        [DIM_PANEL] = STMT_REPOINT_PANEL_FACTS,
        [DIM_BATTERY] = STMT_REPOINT_BATTERY_FACTS,
    };
    for (int kind = DIM_HOME; kind <= DIM_BATTERY; kind++) {
        struct pgarray *homes = &scratch[0], *devices = &scratch[1];
        pgarray_reset(homes);
        pgarray_reset(devices);
        size_t count = 0;
        for (struct device *dev = d->devices; dev; dev = dev->hh.next) {
            if (dev->id.kind != kind || !versions_changed(dev))
                continue;
            count++;
            pgarray_add_int(homes, dev->id.home_id);
            pgarray_add_int(devices, dev->id.device_id);
        }
        if (count == 0)
            continue;
        const char *values[STMT_MAX_PARAMS];
        if (kind == DIM_BATTERY) {
            values[P_REPOINT_BATTERY_HOME_IDS] = pgarray_finish(homes);
            values[P_REPOINT_BATTERY_BATTERY_IDS] = pgarray_finish(devices);
        } else {
            values[P_REPOINT_DEVICE_IDS] = pgarray_finish(devices);
        }
        if (!db_send(pipe, repoint_stmt[kind], values, NULL, NULL))
            return false;
    }
    return true;
}
