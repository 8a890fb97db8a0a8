/* SCD2 version algebra for dim_home, dim_solar_panel and dim_battery: pure functions that keep
 * one device's version history a function of the SET of observations, never of their order. */
#ifndef SOLARX_DIM_H
#define SOLARX_DIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/fixed.h"
#include "solarx/reading.h"

/* The three SCD2 dimensions. dim_battery is driven by the battery stream (dim_history_observe);
 * dim_home and dim_solar_panel by the registries (dim_history_apply_registry). */
enum dim_kind {
    DIM_HOME = 0,
    DIM_PANEL = 1,
    DIM_BATTERY = 2,
};

/* "No such instant": no reading before/after, or an open end. */
#define DIM_NONE INT64_MIN

/* The attributes whose change opens a new version: up to DIM_ATTR_MAX integers (fixed_t
 * quantities, or plain integers such as a panel's home_id) and one optional text (a panel's
 * name). Two attribute sets are equal when n, v[0..n) and text are equal. The history stores a
 * canonical copy (unused values and text bytes zeroed), so stored versions compare with memcmp. */
#define DIM_ATTR_MAX 4
#define DIM_TEXT_MAX 64 /* bytes including the NUL */
struct dim_attrs {
    int n;
    int64_t v[DIM_ATTR_MAX];
    char text[DIM_TEXT_MAX];
};

/* Slots of v[] per kind. */
enum {
    DIM_HOME_MIN_W = 0, /* sum over the home's appliances, fixed_t */
    DIM_HOME_MAX_W = 1,
    DIM_HOME_NATTR = 2,

    DIM_PANEL_CAPACITY_KWH = 0,  /* fixed_t */
    DIM_PANEL_INTENSITY_W = 1,   /* intensity_power_rating, fixed_t */
    DIM_PANEL_TEMPERATURE_C = 2, /* temperature_power_rating, fixed_t */
    DIM_PANEL_HOME_ID = 3,       /* plain integer: panel ids are global, the home an attribute */
    DIM_PANEL_NATTR = 4,         /* text = the panel's name */

    DIM_BATTERY_CAPACITY_KWH = 0, /* fixed_t */
    DIM_BATTERY_MAX_CHARGE_W = 1,
    DIM_BATTERY_MAX_OUTPUT_W = 2,
    DIM_BATTERY_NATTR = 3,
};

/* Fill *out (entirely, canonical) with the attributes of a kind. dim_panel_attrs returns false,
 * leaving *out zeroed, when name is NULL or does not fit in DIM_TEXT_MAX - 1 bytes. */
void dim_home_attrs(fixed_t min_w, fixed_t max_w, struct dim_attrs *out);
bool dim_panel_attrs(const char *name, fixed_t capacity_kwh, fixed_t intensity_w,
                     fixed_t temperature_c, int32_t home_id, struct dim_attrs *out)
    __attribute__((warn_unused_result));
void dim_battery_attrs(fixed_t capacity_kwh, fixed_t max_charge_speed_w, fixed_t max_output_w,
                       struct dim_attrs *out);
/* The dim_battery attributes a battery reading carries (r->kind must be READING_BATTERY). */
void dim_battery_attrs_of(const struct reading *r, struct dim_attrs *out);

/* True when a and b are the same attributes (see struct dim_attrs). */
bool dim_attrs_equal(const struct dim_attrs *a, const struct dim_attrs *b);

/* Surrogate key of a version: a 63-bit positive hash (never 0, never negative) of its natural key
 * (kind, home_id, device_id, start), the same on every machine and in every run, so a replay in
 * any order assigns the same keys, and a key is never reused by another version (start is part
 * of it). For DIM_HOME device_id = home_id; for DIM_PANEL home_id = 0 (panel ids are global; the
 * panel's home is an attribute). Collisions: the mixer is a bijection of each 64-bit chaining
 * state, so a collision is a 2^-63 event per pair; among N versions in the warehouse the chance of
 * any collision is about N^2 / 2^64 (1e6 versions: 5e-8). The warehouse keeps the key UNIQUE, so
 * a collision would fail a flush loudly, never merge two versions silently. */
int64_t dim_version_key(enum dim_kind kind, int32_t home_id, int32_t device_id, int64_t start);

/* Key of a dim_home_appliances row (type 1): a 63-bit positive hash of (home_id, appliance name
 * bytes), stable across machines and runs; same collision argument as dim_version_key. */
int64_t dim_appliance_key(int32_t home_id, const char *appliance);

/* One version. Stream histories: [start, last_seen] are the first and last readings of a maximal
 * run of readings with equal attributes. Registry histories: last_seen == start. In both, the
 * version is in effect from start until the next version's start (the last version: open). */
struct dim_version {
    int64_t start;
    int64_t last_seen;
    struct dim_attrs attrs;
};

/* One observation: at event time t the device had attrs (a reading, or a registry entry whose
 * effective_from is t). */
struct dim_observation {
    int64_t t;
    struct dim_attrs attrs;
};

/* One version as the warehouse stores it. */
struct dim_row {
    int64_t key;                   /* dim_version_key of (kind, home_id, device_id, start) */
    int64_t start;                 /* start_date */
    int64_t end;                   /* end_date: the next version's start, or DIM_NONE when open */
    bool current;                  /* current_flag: the last version */
    const struct dim_attrs *attrs; /* owned by the history, valid until it next changes */
};

/* The version history of one device. Invariants, after every successful call:
 *   versions are sorted by start, start <= last_seen < next.start (so they never overlap),
 *   adjacent versions have different attributes (equal neighbours always merge).
 * Opaque; read it with the accessors below. */
struct dim_history;

/* Returns a new empty history for device (kind, home_id, device_id) (see dim_version_key for
 * the conventions), or NULL when out of memory. Free it with dim_history_destroy. */
struct dim_history *dim_history_new(enum dim_kind kind, int32_t home_id, int32_t device_id);
void dim_history_destroy(struct dim_history *h); /* NULL is fine */

/* Returns a deep copy (for diffing before/after a batch), or NULL when out of memory. */
struct dim_history *dim_history_clone(const struct dim_history *h);

/* True when both have the same natural key and byte-identical version lists. */
bool dim_history_equal(const struct dim_history *a, const struct dim_history *b);

size_t dim_history_count(const struct dim_history *h);
/* The i-th version, oldest first (i < count), owned by h and valid until h next changes. */
const struct dim_version *dim_history_version(const struct dim_history *h, size_t i);
/* Fills *row with version i as a warehouse row; returns false when i >= count. */
bool dim_history_row(const struct dim_history *h, size_t i, struct dim_row *row);

/* What a flush writes of a device whose rows are stored as `stored` and whose history is now h
 * (the same device): only the rows that differ, and deletes only when a stored row is gone.
 * dim_history_row_unchanged: true when h's row i (dim_history_row) is stored exactly -- the same
 * key (start), end, current flag, attributes and last_seen --, so it need not be written again;
 * false when i >= count or the histories are of different devices.
 * dim_history_drops_rows: true when a stored row's key (its start) is no version of h any more:
 * that row must be deleted. Pure; O(log n) and O(n log n). */
bool dim_history_row_unchanged(const struct dim_history *stored, const struct dim_history *h,
                               size_t i);
bool dim_history_drops_rows(const struct dim_history *stored, const struct dim_history *h);

/* Index of the version in effect at instant ts: the last version with start <= ts. An instant
 * before the first version maps to the first version (the earliest known attributes are the
 * best description of the device before then, and every fact row gets a key). Returns -1 only
 * when the history is empty. */
ptrdiff_t dim_history_version_at(const struct dim_history *h, int64_t ts);
/* Key of the version in effect at ts (as above), or 0 when the history is empty. */
int64_t dim_history_key_at(const struct dim_history *h, int64_t ts);

/* --- Stream-driven histories (DIM_BATTERY) ---------------------------------------------- */

/* True when observing (t, a) would split a version, i.e. t lies strictly inside a version's
 * [start, last_seen] and a differs from its attributes. Then dim_history_observe needs the
 * neighbouring readings, which lie in [*lo, t) and (t, *hi] (*lo, *hi = that version's start and
 * last_seen; either pointer may be NULL). The caller searches its per-second bitmaps there. */
bool dim_history_needs_neighbours(const struct dim_history *h, int64_t t, const struct dim_attrs *a,
                                  int64_t *lo, int64_t *hi);

/* Adds a reading at event second t with attributes a. Precondition: t is a second of this device
 * not observed before (de-duplication happens upstream). prev / next are the latest reading
 * before t and the earliest after t among the readings of this device observed so far, or
 * DIM_NONE; they are REQUIRED only when dim_history_needs_neighbours says so, and otherwise may
 * be DIM_NONE (when given they are still checked against the history).
 *   t before the first version, after the last, or in a gap between two versions: the neighbour
 *     with equal attributes grows (its start moves earlier or its last_seen later); else a new
 *     single-reading version [t, t] is inserted.
 *   t strictly inside a version, equal attributes: nothing changes.
 *   t strictly inside a version, different attributes: the version splits into
 *     [start, prev] + [t, t] + [next, last_seen].
 * The result is always the maximal runs of the observed set, whatever the order of the calls.
 * Returns 1 when the history changed, 0 when not (also when t is already a known first/last
 * reading with equal attributes); -EINVAL when a->n is out of range, the history is not
 * DIM_BATTERY, or prev/next are needed but missing or inconsistent with the history; -EEXIST
 * when t is a known first/last reading of a version with different attributes; -ENOMEM. On
 * error the history is unchanged. */
int dim_history_observe(struct dim_history *h, int64_t t, const struct dim_attrs *a, int64_t prev,
                        int64_t next) __attribute__((warn_unused_result));

/* Rebuilds a stream history from ALL of a device's readings, sorted by strictly ascending t:
 * the reference definition of the version list. Returns a new history (free with
 * dim_history_destroy), or NULL with errno = EINVAL (unsorted, bad n, kind not DIM_BATTERY)
 * or ENOMEM. */
struct dim_history *dim_history_from_readings(enum dim_kind kind, int32_t home_id,
                                              int32_t device_id, const struct dim_observation *obs,
                                              size_t n);

/* --- Registry-driven histories (DIM_HOME, DIM_PANEL) ------------------------------------ */

/* Applies one registry snapshot's entries for this device (obs[0..n), any order, n >= 1): an
 * entry (t, a) states "from t on, the attributes are a, until the next entry". So: versions that
 * start at or after the earliest t are replaced by the entries (older versions are kept), and
 * an entry opens a version only when its attributes differ from those in effect just before it
 * (equal neighbours merge, keeping the earlier start). Consequences: reloading an unchanged
 * registry changes nothing, even when its entries carry no effective_from and t is the (later)
 * load time; an edit with a back-dated effective_from supersedes the versions it overlaps.
 * Versions get last_seen = start. Returns 1 when the version list changed, 0 when not; -EINVAL
 * when n == 0, an a->n is out of range, two entries share a t with different attributes, or the
 * history is DIM_BATTERY; -ENOMEM. On error the history is unchanged. */
int dim_history_apply_registry(struct dim_history *h, const struct dim_observation *obs, size_t n)
    __attribute__((warn_unused_result));

/* dim_history_apply_registry with a single entry. */
int dim_history_observe_registry(struct dim_history *h, int64_t effective_from,
                                 const struct dim_attrs *a) __attribute__((warn_unused_result));

/* --- Restoring from the warehouse --------------------------------------------------------- */

/* Appends a version read back from the warehouse (oldest first). Returns 0, or -EINVAL when it
 * would break the invariants (start <= last_seen, after the previous version's last_seen,
 * attributes different from the previous version's, a->n in range; registry kinds also need
 * last_seen == start), or -ENOMEM. On error the history is unchanged. */
int dim_history_restore(struct dim_history *h, int64_t start, int64_t last_seen,
                        const struct dim_attrs *a) __attribute__((warn_unused_result));

#endif
