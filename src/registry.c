/* Loads the appliances and panels registries (jansson), validates every field strictly and
 * names the file and entry of the first problem. */
#include "solarx/registry.h"

#include "solarx/clock.h"
#include "solarx/config.h"
#include "solarx/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

struct registry {
    struct registry_home *homes;
    size_t home_count;
    struct registry_panel *panels;
    size_t panel_count;
};

/* Where the loader is, for error messages: "registry: PATH: WHERE: problem". */
struct load_ctx {
    const char *path;
    const struct registry_options *opt;
    char where[256]; /* "" or "entry 2 (home 1): appliance \"Iron\": " */
    char *errstr;
    size_t errstr_size;
};

static bool fail(struct load_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the error and returns false, so callers can `return fail(...)`. */
static bool fail(struct load_ctx *c, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->errstr != NULL && c->errstr_size > 0)
        snprintf(c->errstr, c->errstr_size, "registry: %s: %s%s", c->path, c->where, what);
    return false;
}

/* --- the built-in effective_from parser ----------------------------------------------------- */

/* Reads exactly n digits at *p; returns -1 when they are not there. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    return v;
}

/* Consumes ch at *p if it is there. */
static bool take(const char **p, char ch)
{
    if (**p != ch)
        return false;
    (*p)++;
    return true;
}

static bool builtin_parse_time(void *ctx, const char *text, int64_t *epoch_out, char *reason,
                               size_t reason_size)
{
    const char *p = text;
    int y = -1, mo = -1, d = -1, h = -1, mi = -1, s = -1;
    bool ok = (y = digits(&p, 4)) >= 0 && take(&p, '-') && (mo = digits(&p, 2)) >= 0 &&
              take(&p, '-') && (d = digits(&p, 2)) >= 0 && (take(&p, ' ') || take(&p, 'T')) &&
              (h = digits(&p, 2)) >= 0 && take(&p, ':') && (mi = digits(&p, 2)) >= 0 &&
              take(&p, ':') && (s = digits(&p, 2)) >= 0;
    if (!ok) {
        snprintf(reason, reason_size, "expected \"YYYY-MM-DD HH:MM:SS\" or ISO 8601");
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > clock_days_in_month(y, mo) || h > 23 || mi > 59 ||
        s > 59) {
        snprintf(reason, reason_size, "no such date or time of day");
        return false;
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2), om = 0;
        if (oh >= 0 && (take(&p, ':') || *p != '\0'))
            om = digits(&p, 2); /* "+HH:MM", "+HHMM" or just "+HH" */
        if (oh < 0 || om < 0 || oh > 23 || om > 59) {
            snprintf(reason, reason_size, "bad UTC offset");
            return false;
        }
        offset = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0') {
        snprintf(reason, reason_size, "unexpected text after the time");
        return false;
    }
    *epoch_out = clock_epoch_from_utc(y, mo, d, h, mi, s) - offset;
    return true;
}

/* --- field helpers -------------------------------------------------------------------------- */

static bool json_to_fixed(const json_t *v, fixed_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > FIXED_MAX_INPUT || i < -FIXED_MAX_INPUT)
            return false;
        *out = (fixed_t)i * FIXED_SCALE;
        return true;
    }
    return json_is_real(v) && fixed_from_double(json_real_value(v), out);
}

static bool json_to_id(const json_t *v, int32_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < 1 || i > INT32_MAX)
        return false;
    *out = (int32_t)i;
    return true;
}

/* Rejects keys outside allowed (a NULL-terminated list). */
static bool check_keys(struct load_ctx *c, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            return fail(c, "unknown key \"%s\"", key);
    }
    return true;
}

/* Reads the optional "effective_from" of obj into *out, or the load time. */
static bool read_effective_from(struct load_ctx *c, json_t *obj, int64_t *out, bool *given)
{
    json_t *v = json_object_get(obj, "effective_from");
    *given = v != NULL;
    if (v == NULL) {
        *out = c->opt->load_time;
        return true;
    }
    if (!json_is_string(v))
        return fail(c, "\"effective_from\" must be a timestamp string");
    char reason[128] = "";
    registry_parse_time_fn parse = c->opt->parse_time ? c->opt->parse_time : builtin_parse_time;
    if (!parse(c->opt->parse_time_ctx, json_string_value(v), out, reason, sizeof(reason)))
        return fail(c, "\"effective_from\" \"%s\": %s", json_string_value(v), reason);
    return true;
}

static json_t *load_json(struct load_ctx *c)
{
    FILE *f = fopen(c->path, "r");
    if (f == NULL) {
        fail(c, "%s", strerror(errno));
        return NULL;
    }
    json_error_t err;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    fclose(f);
    if (root == NULL)
        fail(c, "line %d column %d: %s", err.line, err.column, err.text);
    return root;
}

/* --- time-of-use ranges --------------------------------------------------------------------- */

/* Reads "H:MM" or "HH:MM" at *p into minutes of the day (0..1440). */
static bool read_clock(const char **p, int *minutes, char *reason, size_t reason_size)
{
    const char *s = *p;
    int h = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 3) {
        h = h * 10 + (*s++ - '0');
        nd++;
    }
    if (nd < 1 || nd > 2 || *s != ':') {
        snprintf(reason, reason_size, "expected H:MM at \"%s\"", *p);
        return false;
    }
    s++;
    int m = digits(&s, 2);
    if (m < 0) {
        snprintf(reason, reason_size, "expected two digits of minutes at \"%s\"", *p);
        return false;
    }
    if (m > 59 || h > 24 || (h == 24 && m != 0)) {
        snprintf(reason, reason_size, "no such time of day \"%.*s\"", (int)(s - *p), *p);
        return false;
    }
    *minutes = h * 60 + m;
    *p = s;
    return true;
}

static bool parse_ranges(const char *text, struct registry_time_range **out, size_t *count,
                         char *reason, size_t reason_size)
{
    size_t cap = 1;
    for (const char *q = text; *q; q++)
        cap += *q == ',';
    struct registry_time_range *r = calloc(cap, sizeof(*r));
    if (r == NULL) {
        snprintf(reason, reason_size, "out of memory");
        return false;
    }
    size_t n = 0;
    const char *p = text;
    for (;;) {
        const char *range_text = p;
        int start, end;
        if (!read_clock(&p, &start, reason, reason_size))
            goto bad;
        if (*p != '-') {
            snprintf(reason, reason_size, "expected '-' at \"%s\"", p);
            goto bad;
        }
        p++;
        if (!read_clock(&p, &end, reason, reason_size))
            goto bad;
        int len = (int)(p - range_text);
        if (start >= end) {
            snprintf(reason, reason_size,
                     "range \"%.*s\" must end after it starts (split a range that crosses "
                     "midnight in two)",
                     len, range_text);
            goto bad;
        }
        if (n > 0 && start < r[n - 1].end_min) {
            snprintf(reason, reason_size, "range \"%.*s\" overlaps or precedes the one before it",
                     len, range_text);
            goto bad;
        }
        r[n].start_min = (uint16_t)start;
        r[n].end_min = (uint16_t)end;
        n++;
        if (*p == '\0')
            break;
        if (*p != ',') {
            snprintf(reason, reason_size, "expected ',' at \"%s\"", p);
            goto bad;
        }
        p++;
        while (*p == ' ')
            p++;
    }
    *out = r;
    *count = n;
    return true;
bad:
    free(r);
    return false;
}

/* --- appliances ----------------------------------------------------------------------------- */

static void appliance_free(struct registry_appliance *a)
{
    free(a->name);
    free(a->usage_time);
    free(a->ranges);
}

static void home_free(struct registry_home *h)
{
    for (size_t i = 0; i < h->appliance_count; i++)
        appliance_free(&h->appliances[i]);
    free(h->appliances);
}

static int cmp_appliance_name(const void *pa, const void *pb)
{
    const struct registry_appliance *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

static bool read_appliance(struct load_ctx *c, const char *name, json_t *obj,
                           struct registry_appliance *out)
{
    static const char *const keys[] = {"consumption", "time", NULL};
    if (!json_is_object(obj))
        return fail(c, "appliance \"%s\": expected an object with \"consumption\" and \"time\"",
                    name);
    if (name[0] == '\0')
        return fail(c, "an appliance name must not be empty");
    size_t where_len = strlen(c->where);
    snprintf(c->where + where_len, sizeof(c->where) - where_len, "appliance \"%s\": ", name);
    if (!check_keys(c, obj, keys))
        return false;

    json_t *cons = json_object_get(obj, "consumption");
    json_t *time = json_object_get(obj, "time");
    if (cons == NULL)
        return fail(c, "missing \"consumption\"");
    if (time == NULL)
        return fail(c, "missing \"time\"");
    fixed_t min_w, max_w;
    if (!json_is_array(cons) || json_array_size(cons) != 2 ||
        !json_to_fixed(json_array_get(cons, 0), &min_w) ||
        !json_to_fixed(json_array_get(cons, 1), &max_w) || min_w < 0 || min_w > max_w)
        return fail(c, "\"consumption\" must be [min, max] in W with 0 <= min <= max");
    if (!json_is_string(time))
        return fail(c, "\"time\" must be a string of H:MM-H:MM ranges");

    char reason[256];
    const char *text = json_string_value(time);
    if (text[0] == '\0')
        return fail(c, "\"time\" must not be empty");
    if (!parse_ranges(text, &out->ranges, &out->range_count, reason, sizeof(reason)))
        return fail(c, "\"time\" \"%s\": %s", text, reason);
    out->min_w = min_w;
    out->max_w = max_w;
    out->name = strdup(name);
    out->usage_time = strdup(text);
    if (out->name == NULL || out->usage_time == NULL)
        return fail(c, "out of memory");
    c->where[where_len] = '\0';
    return true;
}

/* Reads an appliances object (the Solar-X form) into *home. */
static bool read_appliances(struct load_ctx *c, json_t *obj, struct registry_home *home)
{
    if (!json_is_object(obj))
        return fail(c, "\"appliances\" must be an object of appliances");
    size_t n = json_object_size(obj);
    if (n == 0)
        return fail(c, "no appliances");
    home->appliances = calloc(n, sizeof(*home->appliances));
    if (home->appliances == NULL)
        return fail(c, "out of memory");
    const char *name;
    json_t *value;
    json_object_foreach(obj, name, value)
    {
        struct registry_appliance *a = &home->appliances[home->appliance_count++];
        if (!read_appliance(c, name, value, a))
            return false;
        if (__builtin_add_overflow(home->min_w, a->min_w, &home->min_w) ||
            __builtin_add_overflow(home->max_w, a->max_w, &home->max_w))
            return fail(c, "the sum of \"consumption\" over the appliances is too large");
    }
    qsort(home->appliances, home->appliance_count, sizeof(*home->appliances), cmp_appliance_name);
    return true;
}

/* The multi-home form: [{"home_id": N, "effective_from": "...", "appliances": {...}}, ...]. */
static bool read_home_entry(struct load_ctx *c, size_t entry, json_t *obj,
                            struct registry_home *home)
{
    static const char *const keys[] = {"home_id", "effective_from", "appliances", NULL};
    snprintf(c->where, sizeof(c->where), "entry %zu: ", entry);
    if (!json_is_object(obj))
        return fail(c, "expected an object with \"home_id\" and \"appliances\"");
    if (!check_keys(c, obj, keys))
        return false;
    json_t *id = json_object_get(obj, "home_id");
    if (id == NULL)
        return fail(c, "missing \"home_id\"");
    if (!json_to_id(id, &home->home_id))
        return fail(c, "\"home_id\" must be a positive integer");
    if (!read_effective_from(c, obj, &home->effective_from, &home->has_effective_from))
        return false;
    json_t *appliances = json_object_get(obj, "appliances");
    if (appliances == NULL)
        return fail(c, "missing \"appliances\"");
    snprintf(c->where, sizeof(c->where), "entry %zu (home %d): ", entry, (int)home->home_id);
    return read_appliances(c, appliances, home);
}

struct sort_slot {
    int32_t id;
    int64_t effective_from;
    size_t entry; /* 1-based position in the file, the tie-break */
};

static int cmp_slot(const void *pa, const void *pb)
{
    const struct sort_slot *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    if (a->effective_from != b->effective_from)
        return a->effective_from < b->effective_from ? -1 : 1;
    return (a->entry > b->entry) - (a->entry < b->entry);
}

/* Sorts n entries by (id, effective_from) through slots, and rejects a device listed twice
 * at one time, or listed more than once without effective_from on every entry. On success
 * slots[k].entry - 1 is the file index of the k-th entry in sorted order. */
static bool sort_and_check(struct load_ctx *c, struct sort_slot *slots, const bool *has_eff,
                           size_t n, const char *what)
{
    qsort(slots, n, sizeof(*slots), cmp_slot);
    c->where[0] = '\0';
    for (size_t k = 1; k < n; k++) {
        if (slots[k].id != slots[k - 1].id)
            continue;
        size_t later = slots[k].entry > slots[k - 1].entry ? slots[k].entry : slots[k - 1].entry;
        if (!has_eff[slots[k].entry - 1] || !has_eff[slots[k - 1].entry - 1])
            return fail(c,
                        "entry %zu: %s %d appears more than once, so each of its entries needs "
                        "\"effective_from\"",
                        later, what, (int)slots[k].id);
        if (slots[k].effective_from == slots[k - 1].effective_from)
            return fail(c, "entry %zu: %s %d appears twice with the same \"effective_from\"", later,
                        what, (int)slots[k].id);
    }
    return true;
}

static bool load_appliances(struct load_ctx *c, struct registry *reg)
{
    bool ok = false;
    struct registry_home *homes = NULL;
    struct sort_slot *slots = NULL;
    bool *has_eff = NULL;
    size_t n = 0;
    json_t *root = load_json(c);
    if (root == NULL)
        return false;

    if (json_is_object(root)) {
        n = 1;
        homes = calloc(1, sizeof(*homes));
        if (homes == NULL) {
            fail(c, "out of memory");
            goto out;
        }
        homes[0].home_id = c->opt->default_home_id;
        homes[0].effective_from = c->opt->load_time;
        if (c->opt->default_home_id < 1) {
            fail(c, "the default home id must be positive");
            goto out;
        }
        if (!read_appliances(c, root, &homes[0]))
            goto out;
    } else if (json_is_array(root)) {
        size_t total = json_array_size(root);
        if (total == 0) {
            fail(c, "no homes");
            goto out;
        }
        homes = calloc(total, sizeof(*homes));
        slots = calloc(total, sizeof(*slots));
        has_eff = calloc(total, sizeof(*has_eff));
        if (homes == NULL || slots == NULL || has_eff == NULL) {
            fail(c, "out of memory");
            goto out;
        }
        for (n = 0; n < total;) {
            struct registry_home *h = &homes[n++];
            if (!read_home_entry(c, n, json_array_get(root, n - 1), h))
                goto out;
            slots[n - 1] = (struct sort_slot){h->home_id, h->effective_from, n};
            has_eff[n - 1] = h->has_effective_from;
        }
        if (!sort_and_check(c, slots, has_eff, n, "home"))
            goto out;
        struct registry_home *sorted = calloc(n, sizeof(*sorted));
        if (sorted == NULL) {
            fail(c, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < n; k++)
            sorted[k] = homes[slots[k].entry - 1];
        free(homes);
        homes = sorted;
    } else {
        fail(c, "expected an object of appliances or an array of homes");
        goto out;
    }
    reg->homes = homes; /* ownership moves to reg */
    reg->home_count = n;
    homes = NULL;
    ok = true;
out:
    if (homes != NULL) {
        for (size_t k = 0; k < n; k++)
            home_free(&homes[k]);
        free(homes);
    }
    free(slots);
    free(has_eff);
    json_decref(root);
    return ok;
}

/* --- panels --------------------------------------------------------------------------------- */

static bool read_positive(struct load_ctx *c, json_t *obj, const char *key, fixed_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fail(c, "missing \"%s\"", key);
    if (!json_to_fixed(v, out) || *out <= 0)
        return fail(c, "\"%s\" must be a positive number", key);
    return true;
}

static bool read_panel(struct load_ctx *c, size_t entry, json_t *obj, struct registry_panel *p)
{
    static const char *const keys[] = {"id",
                                       "name",
                                       "capacity_kwh",
                                       "intensity_power_rating",
                                       "temperature_power_rating",
                                       "home_id",
                                       "effective_from",
                                       NULL};
    snprintf(c->where, sizeof(c->where), "entry %zu: ", entry);
    if (!json_is_object(obj))
        return fail(c, "expected an object");
    if (!check_keys(c, obj, keys))
        return false;
    json_t *id = json_object_get(obj, "id");
    if (id == NULL)
        return fail(c, "missing \"id\"");
    if (!json_to_id(id, &p->panel_id))
        return fail(c, "\"id\" must be a positive integer");
    json_t *name = json_object_get(obj, "name");
    if (name == NULL)
        return fail(c, "missing \"name\"");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) >= DIM_TEXT_MAX)
        return fail(c, "\"name\" must be a non-empty string of at most %d bytes", DIM_TEXT_MAX - 1);
    if (!read_positive(c, obj, "capacity_kwh", &p->capacity_kwh) ||
        !read_positive(c, obj, "intensity_power_rating", &p->intensity_power_rating))
        return false;
    json_t *temp = json_object_get(obj, "temperature_power_rating");
    if (temp == NULL)
        return fail(c, "missing \"temperature_power_rating\"");
    if (!json_to_fixed(temp, &p->temperature_power_rating))
        return fail(c, "\"temperature_power_rating\" must be a number");
    json_t *home = json_object_get(obj, "home_id");
    p->home_id = c->opt->default_home_id;
    if (home != NULL && !json_to_id(home, &p->home_id))
        return fail(c, "\"home_id\" must be a positive integer");
    if (home == NULL && p->home_id < 1)
        return fail(c, "no \"home_id\", and the default home id is not positive");
    if (!read_effective_from(c, obj, &p->effective_from, &p->has_effective_from))
        return false;
    p->name = strdup(json_string_value(name));
    if (p->name == NULL)
        return fail(c, "out of memory");
    return true;
}

static bool load_panels(struct load_ctx *c, struct registry *reg)
{
    bool ok = false;
    struct registry_panel *panels = NULL;
    struct sort_slot *slots = NULL;
    bool *has_eff = NULL;
    size_t n = 0;
    json_t *root = load_json(c);
    if (root == NULL)
        return false;
    if (!json_is_array(root)) {
        fail(c, "expected an array of panels");
        goto out;
    }
    size_t total = json_array_size(root);
    panels = calloc(total ? total : 1, sizeof(*panels));
    slots = calloc(total ? total : 1, sizeof(*slots));
    has_eff = calloc(total ? total : 1, sizeof(*has_eff));
    if (panels == NULL || slots == NULL || has_eff == NULL) {
        fail(c, "out of memory");
        goto out;
    }
    for (n = 0; n < total;) {
        struct registry_panel *p = &panels[n++];
        if (!read_panel(c, n, json_array_get(root, n - 1), p))
            goto out;
        slots[n - 1] = (struct sort_slot){p->panel_id, p->effective_from, n};
        has_eff[n - 1] = p->has_effective_from;
    }
    if (!sort_and_check(c, slots, has_eff, n, "panel"))
        goto out;
    struct registry_panel *sorted = calloc(n ? n : 1, sizeof(*sorted));
    if (sorted == NULL) {
        fail(c, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        sorted[k] = panels[slots[k].entry - 1];
    free(panels);
    reg->panels = sorted; /* ownership moves to reg */
    reg->panel_count = n;
    panels = NULL;
    ok = true;
out:
    if (panels != NULL) {
        for (size_t k = 0; k < n; k++)
            free(panels[k].name);
        free(panels);
    }
    free(slots);
    free(has_eff);
    json_decref(root);
    return ok;
}

/* --- public --------------------------------------------------------------------------------- */

struct registry *registry_load(const char *appliances_path, const char *panels_path,
                               const struct registry_options *opt, char *errstr, size_t errstr_size)
{
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    struct registry *reg = calloc(1, sizeof(*reg));
    struct load_ctx c = {.opt = opt, .errstr = errstr, .errstr_size = errstr_size};
    if (reg == NULL) {
        c.path = "(registry)";
        fail(&c, "out of memory");
        return NULL;
    }
    if (appliances_path != NULL) {
        c.path = appliances_path;
        if (!load_appliances(&c, reg))
            goto fail;
    }
    if (panels_path != NULL) {
        c.path = panels_path;
        c.where[0] = '\0';
        if (!load_panels(&c, reg))
            goto fail;
    }
    return reg;
fail:
    registry_destroy(reg);
    return NULL;
}

static bool parse_zone_time(void *ctx, const char *text, int64_t *epoch_out, char *reason,
                            size_t reason_size)
{
    return clock_parse_timestamp(ctx, text, epoch_out, reason, reason_size);
}

/* The path to load for [solarx] key: path, or NULL for none (empty, or a default that is
 * missing). False with errstr when an explicitly configured file is missing. */
static bool configured_path(const struct config *cfg, const char *key, const char *path,
                            const char **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (!path[0])
        return true;
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        *out = path; /* present, or unreadable: registry_load names the problem */
        return true;
    }
    if (config_key_explicit(cfg, "solarx", key)) {
        snprintf(errstr, errstr_size,
                 "registry: %s: no such file (configured as [solarx] %s in %s or the "
                 "environment)",
                 path, key, cfg->path);
        return false;
    }
    log_warn("event=registry_missing key=%s file=%s msg=\"the default file does not exist; "
             "loading no entries from it\"",
             key, path);
    return true;
}

struct registry *registry_load_configured(const struct config *cfg, struct clock_zone *zone,
                                          int64_t load_time, char *errstr, size_t errstr_size)
{
    const char *appliances, *panels;
    if (!configured_path(cfg, "appliances_file", cfg->appliances_file, &appliances, errstr,
                         errstr_size) ||
        !configured_path(cfg, "panels_file", cfg->panels_file, &panels, errstr, errstr_size))
        return NULL;
    struct registry_options opt = {
        .default_home_id = cfg->default_home_id,
        .load_time = load_time,
        .parse_time = zone ? parse_zone_time : NULL,
        .parse_time_ctx = zone,
    };
    return registry_load(appliances, panels, &opt, errstr, errstr_size);
}

void registry_destroy(struct registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->home_count; i++)
        home_free(&reg->homes[i]);
    free(reg->homes);
    for (size_t i = 0; i < reg->panel_count; i++)
        free(reg->panels[i].name);
    free(reg->panels);
    free(reg);
}

size_t registry_home_count(const struct registry *reg)
{
    return reg->home_count;
}

const struct registry_home *registry_home(const struct registry *reg, size_t i)
{
    return i < reg->home_count ? &reg->homes[i] : NULL;
}

size_t registry_panel_count(const struct registry *reg)
{
    return reg->panel_count;
}

const struct registry_panel *registry_panel(const struct registry *reg, size_t i)
{
    return i < reg->panel_count ? &reg->panels[i] : NULL;
}

const struct registry_home *registry_home_in_effect(const struct registry *reg, int32_t home_id,
                                                    int64_t at)
{
    size_t lo = 0, hi = reg->home_count; /* first entry with home_id >= the one sought */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg->homes[mid].home_id < home_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == reg->home_count || reg->homes[lo].home_id != home_id)
        return NULL;
    const struct registry_home *found = &reg->homes[lo];
    for (size_t i = lo + 1; i < reg->home_count && reg->homes[i].home_id == home_id; i++)
        if (reg->homes[i].effective_from <= at)
            found = &reg->homes[i];
    return found;
}

void registry_home_attrs(const struct registry_home *home, struct dim_attrs *out)
{
    dim_home_attrs(home->min_w, home->max_w, out);
}

void registry_panel_attrs(const struct registry_panel *panel, struct dim_attrs *out)
{
    /* The loader limits names to DIM_TEXT_MAX - 1 bytes, so this cannot fail. */
    if (!dim_panel_attrs(panel->name, panel->capacity_kwh, panel->intensity_power_rating,
                         panel->temperature_power_rating, panel->home_id, out))
        memset(out, 0, sizeof(*out));
}

static bool same_time(bool has_a, int64_t a, bool has_b, int64_t b)
{
    return has_a == has_b && (!has_a || a == b);
}

static bool appliance_equal(const struct registry_appliance *a, const struct registry_appliance *b)
{
    return strcmp(a->name, b->name) == 0 && a->min_w == b->min_w && a->max_w == b->max_w &&
           strcmp(a->usage_time, b->usage_time) == 0;
    /* ranges are a function of usage_time */
}

static bool home_equal(const struct registry_home *a, const struct registry_home *b)
{
    if (a->home_id != b->home_id || a->appliance_count != b->appliance_count ||
        !same_time(a->has_effective_from, a->effective_from, b->has_effective_from,
                   b->effective_from))
        return false;
    for (size_t i = 0; i < a->appliance_count; i++)
        if (!appliance_equal(&a->appliances[i], &b->appliances[i]))
            return false;
    return true;
}

static bool panel_equal(const struct registry_panel *a, const struct registry_panel *b)
{
    return a->panel_id == b->panel_id && a->home_id == b->home_id &&
           strcmp(a->name, b->name) == 0 && a->capacity_kwh == b->capacity_kwh &&
           a->intensity_power_rating == b->intensity_power_rating &&
           a->temperature_power_rating == b->temperature_power_rating &&
           same_time(a->has_effective_from, a->effective_from, b->has_effective_from,
                     b->effective_from);
}

bool registry_equal(const struct registry *a, const struct registry *b)
{
    if (a->home_count != b->home_count || a->panel_count != b->panel_count)
        return false;
    for (size_t i = 0; i < a->home_count; i++)
        if (!home_equal(&a->homes[i], &b->homes[i]))
            return false;
    for (size_t i = 0; i < a->panel_count; i++)
        if (!panel_equal(&a->panels[i], &b->panels[i]))
            return false;
    return true;
}
