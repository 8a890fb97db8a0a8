/* SCD2 version algebra: maximal runs of equal attributes in event time (battery stream) and
 * "from t on" registry entries (homes, panels). Pure: no I/O, no clock. */
#include "solarx/dim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dim_history {
    enum dim_kind kind;
    int32_t home_id;
    int32_t device_id;
    size_t count;
    size_t capacity;
    struct dim_version *versions;
};

/* --- attributes ----------------------------------------------------------------------------- */

static bool attrs_valid(const struct dim_attrs *a)
{
    return a != NULL && a->n >= 0 && a->n <= DIM_ATTR_MAX;
}

/* Canonical copy: unused values and the bytes after the text's NUL are zero. */
static void attrs_canonical(const struct dim_attrs *a, struct dim_attrs *out)
{
    struct dim_attrs c;
    memset(&c, 0, sizeof(c));
    c.n = a->n;
    for (int i = 0; i < a->n; i++)
        c.v[i] = a->v[i];
    size_t len = strnlen(a->text, DIM_TEXT_MAX - 1);
    memcpy(c.text, a->text, len);
    memcpy(out, &c, sizeof(c)); /* memcpy, not assignment: padding bytes stay zero */
}

bool dim_attrs_equal(const struct dim_attrs *a, const struct dim_attrs *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->v[i] != b->v[i])
            return false;
    return strncmp(a->text, b->text, DIM_TEXT_MAX - 1) == 0;
}

void dim_home_attrs(fixed_t min_w, fixed_t max_w, struct dim_attrs *out)
{
    memset(out, 0, sizeof(*out));
    out->n = DIM_HOME_NATTR;
    out->v[DIM_HOME_MIN_W] = min_w;
    out->v[DIM_HOME_MAX_W] = max_w;
}

bool dim_panel_attrs(const char *name, fixed_t capacity_kwh, fixed_t intensity_w,
                     fixed_t temperature_c, int32_t home_id, struct dim_attrs *out)
{
    memset(out, 0, sizeof(*out));
    if (name == NULL)
        return false;
    size_t len = strlen(name);
    if (len >= DIM_TEXT_MAX)
        return false;
    out->n = DIM_PANEL_NATTR;
    out->v[DIM_PANEL_CAPACITY_KWH] = capacity_kwh;
    out->v[DIM_PANEL_INTENSITY_W] = intensity_w;
    out->v[DIM_PANEL_TEMPERATURE_C] = temperature_c;
    out->v[DIM_PANEL_HOME_ID] = home_id;
    memcpy(out->text, name, len);
    return true;
}

void dim_battery_attrs(fixed_t capacity_kwh, fixed_t max_charge_speed_w, fixed_t max_output_w,
                       struct dim_attrs *out)
{
    memset(out, 0, sizeof(*out));
    out->n = DIM_BATTERY_NATTR;
    out->v[DIM_BATTERY_CAPACITY_KWH] = capacity_kwh;
    out->v[DIM_BATTERY_MAX_CHARGE_W] = max_charge_speed_w;
    out->v[DIM_BATTERY_MAX_OUTPUT_W] = max_output_w;
}

void dim_battery_attrs_of(const struct reading *r, struct dim_attrs *out)
{
    dim_battery_attrs(r->capacity_kwh, r->max_charge_speed_w, r->max_output_w, out);
}

/* --- keys ----------------------------------------------------------------------------------- */

/* splitmix64's finalizer: a bijection of 64-bit words with full avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t dim_version_key(enum dim_kind kind, int32_t home_id, int32_t device_id, int64_t start)
{
    /* Chain the words of the tuple; unsigned arithmetic only, so the value is the same on
     * every platform. The domain tag keeps the keys of this scheme apart from any other. */
    uint64_t h = mix64(0x736f6c6172782d64ULL /* "solarx-d" */ ^ (uint64_t)kind);
    h = mix64(h ^ (uint64_t)(uint32_t)home_id);
    h = mix64(h + 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uint32_t)device_id;
    h = mix64(h + 0x9e3779b97f4a7c15ULL) ^ (uint64_t)start;
    h = mix64(h);
    int64_t key = (int64_t)(h & (uint64_t)INT64_MAX);
    return key == 0 ? 1 : key;
}

int64_t dim_appliance_key(int32_t home_id, const char *appliance)
{
    uint64_t fnv = 0xcbf29ce484222325ULL; /* FNV-1a over the name, then mixed like the above */
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)appliance; *p; p++, len++)
        fnv = (fnv ^ *p) * 0x100000001b3ULL;
    uint64_t h = mix64(0x736f6c6172782d61ULL /* "solarx-a" */ ^ (uint64_t)(uint32_t)home_id);
    h = mix64(h + 0x9e3779b97f4a7c15ULL) ^ fnv;
    h = mix64(mix64(h + 0x9e3779b97f4a7c15ULL) ^ (uint64_t)len);
    int64_t key = (int64_t)(h & (uint64_t)INT64_MAX);
    return key == 0 ? 1 : key;
}

/* --- history basics ------------------------------------------------------------------------- */

struct dim_history *dim_history_new(enum dim_kind kind, int32_t home_id, int32_t device_id)
{
    struct dim_history *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->kind = kind;
    h->home_id = home_id;
    h->device_id = device_id;
    return h;
}

void dim_history_destroy(struct dim_history *h)
{
    if (h == NULL)
        return;
    free(h->versions);
    free(h);
}

static int reserve(struct dim_history *h, size_t want)
{
    if (want <= h->capacity)
        return 0;
    size_t cap = h->capacity ? h->capacity : 1; /* most histories hold one version */
    while (cap < want)
        cap *= 2;
    struct dim_version *v = realloc(h->versions, cap * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    h->versions = v;
    h->capacity = cap;
    return 0;
}

struct dim_history *dim_history_clone(const struct dim_history *h)
{
    struct dim_history *c = dim_history_new(h->kind, h->home_id, h->device_id);
    if (c == NULL)
        return NULL;
    if (reserve(c, h->count) != 0) {
        dim_history_destroy(c);
        return NULL;
    }
    if (h->count > 0)
        memcpy(c->versions, h->versions, h->count * sizeof(*h->versions));
    c->count = h->count;
    return c;
}

static bool versions_equal(const struct dim_version *a, size_t na, const struct dim_version *b,
                           size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].start != b[i].start || a[i].last_seen != b[i].last_seen ||
            !dim_attrs_equal(&a[i].attrs, &b[i].attrs))
            return false;
    return true;
}

bool dim_history_equal(const struct dim_history *a, const struct dim_history *b)
{
    if (a->kind != b->kind || a->home_id != b->home_id || a->device_id != b->device_id ||
        a->count != b->count)
        return false;
    return versions_equal(a->versions, a->count, b->versions, b->count);
}

size_t dim_history_count(const struct dim_history *h)
{
    return h->count;
}

const struct dim_version *dim_history_version(const struct dim_history *h, size_t i)
{
    return i < h->count ? &h->versions[i] : NULL;
}

bool dim_history_row(const struct dim_history *h, size_t i, struct dim_row *row)
{
    if (i >= h->count)
        return false;
    const struct dim_version *v = &h->versions[i];
    row->key = dim_version_key(h->kind, h->home_id, h->device_id, v->start);
    row->start = v->start;
    row->current = i + 1 == h->count;
    row->end = row->current ? DIM_NONE : h->versions[i + 1].start;
    row->attrs = &v->attrs;
    return true;
}

/* Index of the last version with start <= t, or -1 when t precedes them all (or none exist). */
static ptrdiff_t last_starting_at_or_before(const struct dim_history *h, int64_t t)
{
    size_t lo = 0, hi = h->count; /* answer is lo - 1 once lo == hi */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->versions[mid].start <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

/* Index of the version starting exactly at start, or -1. */
static ptrdiff_t version_starting_at(const struct dim_history *h, int64_t start)
{
    ptrdiff_t i = last_starting_at_or_before(h, start);
    return i >= 0 && h->versions[i].start == start ? i : -1;
}

bool dim_history_row_unchanged(const struct dim_history *stored, const struct dim_history *h,
                               size_t i)
{
    if (i >= h->count || stored->kind != h->kind || stored->home_id != h->home_id ||
        stored->device_id != h->device_id)
        return false;
    ptrdiff_t j = version_starting_at(stored, h->versions[i].start);
    if (j < 0)
        return false;
    const struct dim_version *a = &h->versions[i], *b = &stored->versions[j];
    bool a_current = i + 1 == h->count, b_current = (size_t)j + 1 == stored->count;
    if (a->last_seen != b->last_seen || !dim_attrs_equal(&a->attrs, &b->attrs) ||
        a_current != b_current)
        return false;
    return a_current || h->versions[i + 1].start == stored->versions[j + 1].start; /* end_date */
}

bool dim_history_drops_rows(const struct dim_history *stored, const struct dim_history *h)
{
    for (size_t j = 0; j < stored->count; j++)
        if (version_starting_at(h, stored->versions[j].start) < 0)
            return true;
    return false;
}

ptrdiff_t dim_history_version_at(const struct dim_history *h, int64_t ts)
{
    if (h->count == 0)
        return -1;
    ptrdiff_t i = last_starting_at_or_before(h, ts);
    return i < 0 ? 0 : i;
}

int64_t dim_history_key_at(const struct dim_history *h, int64_t ts)
{
    ptrdiff_t i = dim_history_version_at(h, ts);
    if (i < 0)
        return 0;
    return dim_version_key(h->kind, h->home_id, h->device_id, h->versions[i].start);
}

/* Inserts v at index i (capacity must already be reserved). */
static void insert_at(struct dim_history *h, size_t i, const struct dim_version *v)
{
    memmove(&h->versions[i + 1], &h->versions[i], (h->count - i) * sizeof(*v));
    memcpy(&h->versions[i], v, sizeof(*v));
    h->count++;
}

static void make_version(struct dim_version *v, int64_t start, int64_t last_seen,
                         const struct dim_attrs *a)
{
    memset(v, 0, sizeof(*v));
    v->start = start;
    v->last_seen = last_seen;
    attrs_canonical(a, &v->attrs);
}

/* --- stream-driven -------------------------------------------------------------------------- */

static bool is_stream_kind(enum dim_kind kind)
{
    return kind == DIM_BATTERY;
}

bool dim_history_needs_neighbours(const struct dim_history *h, int64_t t, const struct dim_attrs *a,
                                  int64_t *lo, int64_t *hi)
{
    ptrdiff_t i = last_starting_at_or_before(h, t);
    if (i < 0)
        return false;
    const struct dim_version *v = &h->versions[i];
    if (!(v->start < t && t < v->last_seen) || dim_attrs_equal(&v->attrs, a))
        return false;
    if (lo != NULL)
        *lo = v->start;
    if (hi != NULL)
        *hi = v->last_seen;
    return true;
}

int dim_history_observe(struct dim_history *h, int64_t t, const struct dim_attrs *a, int64_t prev,
                        int64_t next)
{
    if (!attrs_valid(a) || !is_stream_kind(h->kind))
        return -EINVAL;
    if ((prev != DIM_NONE && prev >= t) || (next != DIM_NONE && next <= t))
        return -EINVAL;

    struct dim_version nv;
    make_version(&nv, t, t, a);
    ptrdiff_t i = last_starting_at_or_before(h, t);

    if (i >= 0 && t <= h->versions[i].last_seen) {
        /* t within [start, last_seen] of version i. */
        struct dim_version *v = &h->versions[i];
        bool same = dim_attrs_equal(&v->attrs, a);
        if (t == v->start || t == v->last_seen)
            return same ? 0 : -EEXIST;
        if (same)
            return 0;
        /* Split: [start, prev] + [t, t] + [next, last_seen]. prev and next are readings of
         * this version, so they must lie within it. */
        if (prev == DIM_NONE || next == DIM_NONE || prev < v->start || next > v->last_seen)
            return -EINVAL;
        if (reserve(h, h->count + 2) != 0)
            return -ENOMEM;
        v = &h->versions[i]; /* reserve may have moved the array */
        struct dim_version right;
        memcpy(&right, v, sizeof(right));
        right.start = next;
        v->last_seen = prev;
        insert_at(h, (size_t)i + 1, &nv);
        insert_at(h, (size_t)i + 2, &right);
        return 1;
    }

    /* t in the gap after version i (i == -1: before the first) and before version i + 1. */
    struct dim_version *left = i >= 0 ? &h->versions[i] : NULL;
    struct dim_version *right = (size_t)(i + 1) < h->count ? &h->versions[i + 1] : NULL;
    if ((prev != DIM_NONE && (left == NULL || prev != left->last_seen)) ||
        (next != DIM_NONE && (right == NULL || next != right->start)))
        return -EINVAL;

    if (left != NULL && dim_attrs_equal(&left->attrs, a)) {
        left->last_seen = t;
        if (right != NULL && dim_attrs_equal(&right->attrs, a)) {
            /* Cannot happen while the invariants hold; merge anyway. */
            left->last_seen = right->last_seen;
            memmove(right, right + 1, (h->count - (size_t)i - 2) * sizeof(*right));
            h->count--;
        }
        return 1;
    }
    if (right != NULL && dim_attrs_equal(&right->attrs, a)) {
        right->start = t;
        return 1;
    }
    if (reserve(h, h->count + 1) != 0)
        return -ENOMEM;
    insert_at(h, (size_t)(i + 1), &nv);
    return 1;
}

struct dim_history *dim_history_from_readings(enum dim_kind kind, int32_t home_id,
                                              int32_t device_id, const struct dim_observation *obs,
                                              size_t n)
{
    if (!is_stream_kind(kind)) {
        errno = EINVAL;
        return NULL;
    }
    struct dim_history *h = dim_history_new(kind, home_id, device_id);
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if (!attrs_valid(&obs[k].attrs) || (k > 0 && obs[k].t <= obs[k - 1].t)) {
            dim_history_destroy(h);
            errno = EINVAL;
            return NULL;
        }
        struct dim_version *last = h->count ? &h->versions[h->count - 1] : NULL;
        if (last != NULL && dim_attrs_equal(&last->attrs, &obs[k].attrs)) {
            last->last_seen = obs[k].t;
            continue;
        }
        if (reserve(h, h->count + 1) != 0) {
            dim_history_destroy(h);
            errno = ENOMEM;
            return NULL;
        }
        make_version(&h->versions[h->count++], obs[k].t, obs[k].t, &obs[k].attrs);
    }
    return h;
}

/* --- registry-driven ------------------------------------------------------------------------ */

static int cmp_observation_t(const void *pa, const void *pb)
{
    const struct dim_observation *a = *(const struct dim_observation *const *)pa;
    const struct dim_observation *b = *(const struct dim_observation *const *)pb;
    return (a->t > b->t) - (a->t < b->t);
}

int dim_history_apply_registry(struct dim_history *h, const struct dim_observation *obs, size_t n)
{
    if (n == 0 || is_stream_kind(h->kind))
        return -EINVAL;
    for (size_t k = 0; k < n; k++)
        if (!attrs_valid(&obs[k].attrs))
            return -EINVAL;

    int rc = -ENOMEM;
    const struct dim_observation **sorted = malloc(n * sizeof(*sorted));
    struct dim_version *next = NULL;
    if (sorted == NULL)
        goto out;
    for (size_t k = 0; k < n; k++)
        sorted[k] = &obs[k];
    qsort(sorted, n, sizeof(*sorted), cmp_observation_t);
    for (size_t k = 1; k < n; k++) {
        if (sorted[k]->t == sorted[k - 1]->t &&
            !dim_attrs_equal(&sorted[k]->attrs, &sorted[k - 1]->attrs)) {
            rc = -EINVAL;
            goto out;
        }
    }

    /* Keep the versions that start before the earliest entry; the entries say everything
     * from there on. */
    size_t kept = 0;
    if (sorted[0]->t != INT64_MIN)
        kept = (size_t)(last_starting_at_or_before(h, sorted[0]->t - 1) + 1);
    next = malloc((kept + n) * sizeof(*next));
    if (next == NULL)
        goto out;
    if (kept > 0)
        memcpy(next, h->versions, kept * sizeof(*next));
    size_t count = kept;
    for (size_t k = 0; k < n; k++) {
        if (count > 0 && dim_attrs_equal(&next[count - 1].attrs, &sorted[k]->attrs))
            continue;
        make_version(&next[count++], sorted[k]->t, sorted[k]->t, &sorted[k]->attrs);
    }

    bool changed = !versions_equal(next, count, h->versions, h->count);
    if (changed) {
        free(h->versions);
        h->versions = next; /* ownership moves to h */
        h->count = count;
        h->capacity = kept + n;
        next = NULL;
    }
    rc = changed ? 1 : 0;
out:
    free(next);
    free(sorted);
    return rc;
}

int dim_history_observe_registry(struct dim_history *h, int64_t effective_from,
                                 const struct dim_attrs *a)
{
    if (!attrs_valid(a))
        return -EINVAL;
    struct dim_observation o;
    o.t = effective_from;
    attrs_canonical(a, &o.attrs);
    return dim_history_apply_registry(h, &o, 1);
}

/* --- restore -------------------------------------------------------------------------------- */

int dim_history_restore(struct dim_history *h, int64_t start, int64_t last_seen,
                        const struct dim_attrs *a)
{
    if (!attrs_valid(a) || start > last_seen)
        return -EINVAL;
    if (!is_stream_kind(h->kind) && last_seen != start)
        return -EINVAL;
    if (h->count > 0) {
        const struct dim_version *last = &h->versions[h->count - 1];
        if (start <= last->last_seen || dim_attrs_equal(&last->attrs, a))
            return -EINVAL;
    }
    if (reserve(h, h->count + 1) != 0)
        return -ENOMEM;
    make_version(&h->versions[h->count++], start, last_seen, a);
    return 0;
}
