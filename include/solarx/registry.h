/* The dimension registries: the home appliances file (-> dim_home_appliances, dim_home) and the
 * solar panels file (-> dim_solar_panel), loaded and validated strictly with jansson.
 *
 * Appliances file, two accepted forms:
 *  1. Solar-X single-home form (config/home_appliances_consumption.json), for the default home:
 *       {"Refrigerator": {"consumption": [300, 1500], "time": "0:00-24:00"}, ...}
 *  2. Multi-home form: an array of homes, each with its own appliances object (form 1):
 *       [{"home_id": 1, "effective_from": "2025-01-01 00:00:00", "appliances": {...}}, ...]
 *     "effective_from" is optional; one home may appear several times with distinct
 *     effective_from values to state its history.
 *  Per appliance: "consumption" = [min, max] in W (numbers, 0 <= min <= max), and "time" = one
 *  or more "H:MM-H:MM" ranges of the day separated by commas (spaces allowed after a comma),
 *  each start < end, 24:00 allowed only as an end, ranges ascending and not overlapping.
 *
 * Panels file: an array of {"id", "name", "capacity_kwh", "intensity_power_rating",
 *  "temperature_power_rating"} with optional "home_id" (default: the default home) and
 *  "effective_from". One panel may appear several times with distinct effective_from values.
 *
 * Unknown keys are rejected (a misspelt "effective_from" must not silently date a version by
 * load time). effective_from is "YYYY-MM-DD HH:MM:SS" (UTC) or ISO 8601 with "T" and an optional
 * "Z" / "+HH:MM" offset, unless the caller supplies its own parser. */
#ifndef SOLARX_REGISTRY_H
#define SOLARX_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/dim.h"
#include "solarx/fixed.h"

/* Parses an effective_from text into seconds since the epoch (UTC). Returns false with a short
 * reason (NUL-terminated, fits reason_size) when the text is not a valid timestamp. An adapter
 * around clock_parse_timestamp fits here: ctx would be the struct clock_zone. */
typedef bool (*registry_parse_time_fn)(void *ctx, const char *text, int64_t *epoch_out,
                                       char *reason, size_t reason_size);

struct registry_options {
    int32_t default_home_id; /* home of the single-home form and of panels without "home_id" */
    int64_t load_time;       /* effective_from of entries that carry none (epoch seconds) */
    registry_parse_time_fn parse_time; /* NULL: the built-in parser (naive times are UTC) */
    void *parse_time_ctx;
};

/* A time-of-use range, minutes of the day: [start_min, end_min), 0 <= start < end <= 1440. */
struct registry_time_range {
    uint16_t start_min;
    uint16_t end_min;
};

struct registry_appliance {
    char *name;
    fixed_t min_w;
    fixed_t max_w;
    char *usage_time; /* the "time" text, verbatim */
    struct registry_time_range *ranges;
    size_t range_count;
};

/* One home entry (one version of a home in the multi-home form). */
struct registry_home {
    int32_t home_id;
    int64_t effective_from;                /* as given, or options.load_time */
    bool has_effective_from;               /* false: effective_from is the load time */
    fixed_t min_w;                         /* sum of the appliances' min_w */
    fixed_t max_w;                         /* sum of the appliances' max_w */
    struct registry_appliance *appliances; /* sorted by name (bytewise) */
    size_t appliance_count;
};

struct registry_panel {
    int32_t panel_id;
    int32_t home_id;
    char *name; /* at most DIM_TEXT_MAX - 1 bytes */
    fixed_t capacity_kwh;
    fixed_t intensity_power_rating;
    fixed_t temperature_power_rating;
    int64_t effective_from;
    bool has_effective_from;
};

struct registry;

/* Loads and validates both files; either path may be NULL (no homes / no panels); opt must not
 * be NULL and is not kept. Returns a new registry (free with registry_destroy), or NULL with a
 * one-line reason in errstr naming the file and the problem, e.g.
 *   registry: /etc/solarx/solar_panels.json: entry 3: "capacity_kwh" must be a positive number
 * (entries are numbered from 1). */
struct registry *registry_load(const char *appliances_path, const char *panels_path,
                               const struct registry_options *opt, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));
void registry_destroy(struct registry *reg); /* NULL is fine */

struct config;
struct clock_zone;

/* Loads the registries cfg names ([solarx] appliances_file and panels_file), the one rule for
 * `run` and the backfills: effective_from texts are read in zone (borrowed), entries without
 * one take load_time. An empty path means none. A missing file is a warning (logged) and no
 * entries when the key holds its compiled-in default, an error naming the file and the key when
 * the file or the environment set it. zone NULL: naive times are UTC. Returns a registry
 * (possibly empty), or NULL with errstr. */
struct registry *registry_load_configured(const struct config *cfg, struct clock_zone *zone,
                                          int64_t load_time, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Home entries sorted by (home_id, effective_from); panels by (panel_id, effective_from). The
 * pointers are owned by reg and live as long as it. Out-of-range indexes return NULL. */
size_t registry_home_count(const struct registry *reg);
const struct registry_home *registry_home(const struct registry *reg, size_t i);
size_t registry_panel_count(const struct registry *reg);
const struct registry_panel *registry_panel(const struct registry *reg, size_t i);

/* The entry of home_id in effect at instant at: its last entry with effective_from <= at, or its
 * first when all are later (as dim_history_version_at). Returns NULL when the registry has no
 * such home. Use it for the type-1 dim_home_appliances rows (at = now). */
const struct registry_home *registry_home_in_effect(const struct registry *reg, int32_t home_id,
                                                    int64_t at);

/* The dim_home / dim_solar_panel attributes of an entry (filled entirely). */
void registry_home_attrs(const struct registry_home *home, struct dim_attrs *out);
void registry_panel_attrs(const struct registry_panel *panel, struct dim_attrs *out);

/* True when a and b hold the same entries as written: effective_from is compared only where the
 * files gave one, so two loads of an unchanged file at different load times are equal. */
bool registry_equal(const struct registry *a, const struct registry *b);

#endif
