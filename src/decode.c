/* Decoding of Solar-X JSON messages into typed readings, with a precise reason for every
 * rejection (it becomes the dead letter's error). */
#include "solarx/decode.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decode_internal.h"

static const char *const error_names[DECODE_ERROR_COUNT] = {
    [DECODE_OK] = "ok",
    [DECODE_INVALID_JSON] = "invalid_json",
    [DECODE_INVALID_UTF8] = "invalid_utf8",
    [DECODE_DUPLICATE_KEY] = "duplicate_key",
    [DECODE_NOT_OBJECT] = "not_object",
    [DECODE_MISSING_FIELD] = "missing_field",
    [DECODE_WRONG_TYPE] = "wrong_type",
    [DECODE_OUT_OF_RANGE] = "out_of_range",
    [DECODE_BAD_TIMESTAMP] = "bad_timestamp",
    [DECODE_UNKNOWN_STATUS] = "unknown_status",
    [DECODE_BAD_BATTERY_ID] = "bad_battery_id",
    [DECODE_TOO_MANY_READINGS] = "too_many_readings",
    [DECODE_UNKNOWN_KIND] = "unknown_kind",
    [DECODE_FUTURE_TIMESTAMP] = "future_timestamp",
    [DECODE_TOO_LARGE] = "too_large",
    [DECODE_POSTGRES_REJECTED] = "postgres_rejected",
};

const char *decode_error_name(enum decode_error e)
{
    if ((int)e < 0 || (int)e >= DECODE_ERROR_COUNT)
        return "unknown";
    return error_names[e];
}

/* ---- Field rules, shared with the fast path (decode_internal.h) ---- */

bool decode_quantity_from_integer(long long i, fixed_t *out)
{
    if (i > FIXED_MAX_INPUT || i < -FIXED_MAX_INPUT)
        return false;
    *out = (fixed_t)i * FIXED_SCALE;
    return true;
}

bool decode_quantity_within(fixed_t v, enum decode_bound bound)
{
    return bound == DECODE_BOUND_POSITIVE ? v > 0 : v >= 0;
}

bool decode_id_in_range(long long i)
{
    return i > 0 && i <= INT32_MAX;
}

bool decode_is_charging_from_integer(long long i, uint8_t *out)
{
    if (i != 0 && i != 1)
        return false;
    *out = (uint8_t)i;
    return true;
}

bool decode_status_from_word(const char *text, size_t len, uint8_t *out)
{
    static const struct {
        const char *word;
        size_t len;
        enum battery_status status;
    } words[] = {
        {"ideal", 5, BATTERY_IDLE},
        {"charging", 8, BATTERY_CHARGING},
        {"discharging", 11, BATTERY_DISCHARGING},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (words[i].len == len && memcmp(text, words[i].word, len) == 0) {
            *out = (uint8_t)words[i].status;
            return true;
        }
    }
    return false;
}

bool decode_battery_id(const char *key, size_t len, int32_t *id)
{
    static const char prefix[] = "battery_";
    const size_t prefix_len = sizeof(prefix) - 1;
    if (len <= prefix_len || memcmp(key, prefix, prefix_len) != 0)
        return false;
    const char *p = key + prefix_len, *end = key + len;
    if (*p < '1' || *p > '9')
        return false;
    int64_t n = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (*p - '0');
        if (n > INT32_MAX)
            return false;
    }
    *id = (int32_t)n;
    return true;
}

bool decode_energy_within_capacity(fixed_t energy_wh, fixed_t capacity_kwh)
{
    /* energy_wh (Wh) <= capacity_kwh (kWh) * 1000, both in millionths; a capacity that large
     * cannot be exceeded by any accepted energy. */
    return capacity_kwh > INT64_MAX / 1000 || energy_wh <= capacity_kwh * 1000;
}

enum decode_error decode_timestamp_rule(const struct decode_config *cfg, int64_t ts)
{
    if (ts < 0)
        return DECODE_BAD_TIMESTAMP;
    /* Years have four digits, so ts and now + max_future_seconds stay far from overflow. */
    if (cfg->max_future_seconds > 0 && ts - cfg->now > cfg->max_future_seconds)
        return DECODE_FUTURE_TIMESTAMP;
    return DECODE_OK;
}

void decode_insert_by_device(struct reading *out, size_t *n, const struct reading *r)
{
    /* Insertion sort by battery id: output order is independent of key order. */
    size_t i = (*n)++;
    while (i > 0 && out[i - 1].device_id > r->device_id) {
        out[i] = out[i - 1];
        i--;
    }
    out[i] = *r;
}

/* ---- The jansson path: every rejection and its reason ---- */

/* Where a rejection is written; reasons are always printable ASCII so that they can be stored
 * as text whatever bytes the payload held. */
struct sink {
    char *buf;
    size_t size;
};

static enum decode_error fail(const struct sink *s, enum decode_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum decode_error fail(const struct sink *s, enum decode_error e, const char *fmt, ...)
{
    if (s->buf == NULL || s->size == 0)
        return e;
    int n = snprintf(s->buf, s->size, "%s: ", decode_error_name(e));
    if (n >= 0 && (size_t)n < s->size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->buf + n, s->size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    for (char *p = s->buf; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            *p = '?';
    }
    return e;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Shortest decimal text of a fixed value: 13000, 12, 9993.67, -0.5. */
static const char *fixed_short(fixed_t v, char *buf, size_t size)
{
    fixed_format(v, buf, size);
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf);
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
    }
    return buf;
}

/* A field's name for reasons: "capacity_kwh" or "battery_3.capacity_kwh". Written only for a
 * reason: formatted for every field of every message, it was 13% of a battery message's
 * instructions (bench/README.md). */
static const char *field_path(const char *prefix, const char *name, char *buf, size_t size)
{
    if (prefix == NULL)
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%.40s.%s", prefix, name);
    return buf;
}

/* Reads required number obj[name] as fixed point, checking the bound. */
static enum decode_error get_quantity(const struct sink *s, const json_t *obj, const char *prefix,
                                      const char *name, enum decode_bound bound, fixed_t *out)
{
    char path[96];
    const json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return fail(s, DECODE_MISSING_FIELD, "\"%s\" is required",
                    field_path(prefix, name, path, sizeof(path)));
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (!decode_quantity_from_integer(i, out))
            return fail(s, DECODE_OUT_OF_RANGE, "%s %lld exceeds %lld in magnitude",
                        field_path(prefix, name, path, sizeof(path)), (long long)i,
                        (long long)FIXED_MAX_INPUT);
    } else if (json_is_real(v)) {
        if (!fixed_from_double(json_real_value(v), out))
            return fail(s, DECODE_OUT_OF_RANGE, "%s %.17g exceeds %lld in magnitude",
                        field_path(prefix, name, path, sizeof(path)), json_real_value(v),
                        (long long)FIXED_MAX_INPUT);
    } else {
        return fail(s, DECODE_WRONG_TYPE, "\"%s\" must be a number, got %s",
                    field_path(prefix, name, path, sizeof(path)), json_type_name(v));
    }
    if (decode_quantity_within(*out, bound))
        return DECODE_OK;
    char text[FIXED_TEXT_SIZE];
    return fail(s, DECODE_OUT_OF_RANGE,
                bound == DECODE_BOUND_POSITIVE ? "%s %s must be positive" : "%s %s is negative",
                field_path(prefix, name, path, sizeof(path)),
                fixed_short(*out, text, sizeof(text)));
}

/* Reads optional positive int32 id obj[name], or dflt when absent. */
static enum decode_error get_id(const struct sink *s, const json_t *obj, const char *name,
                                int32_t dflt, int32_t *out)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL) {
        *out = dflt;
        return DECODE_OK;
    }
    if (!json_is_integer(v))
        return fail(s, DECODE_WRONG_TYPE, "\"%s\" must be an integer, got %s", name,
                    json_type_name(v));
    json_int_t i = json_integer_value(v);
    if (!decode_id_in_range(i))
        return fail(s, DECODE_OUT_OF_RANGE, "%s %lld out of range 1..%d", name, (long long)i,
                    INT32_MAX);
    *out = (int32_t)i;
    return DECODE_OK;
}

static enum decode_error get_timestamp(const struct sink *s, const struct decode_config *cfg,
                                       const json_t *root, int64_t *ts)
{
    const json_t *v = json_object_get(root, "time_stamp");
    if (v == NULL)
        return fail(s, DECODE_MISSING_FIELD, "\"time_stamp\" is required");
    if (!json_is_string(v))
        return fail(s, DECODE_WRONG_TYPE, "\"time_stamp\" must be a string, got %s",
                    json_type_name(v));
    const char *text = json_string_value(v);
    char why[160];
    if (strlen(text) != json_string_length(v))
        return fail(s, DECODE_BAD_TIMESTAMP, "\"time_stamp\" contains a NUL character");
    if (!clock_parse_timestamp(cfg->zone, text, ts, why, sizeof(why)))
        return fail(s, DECODE_BAD_TIMESTAMP, "\"%.40s\": %s", text, why);
    switch (decode_timestamp_rule(cfg, *ts)) {
    case DECODE_OK:
        return DECODE_OK;
    case DECODE_BAD_TIMESTAMP:
        return fail(s, DECODE_BAD_TIMESTAMP, "\"%.40s\" is before 1970-01-01 00:00:00 UTC", text);
    default:
        return fail(s, DECODE_FUTURE_TIMESTAMP,
                    "\"%.40s\" is %lld s ahead of the clock (max_future_seconds = %lld)", text,
                    (long long)(*ts - cfg->now), (long long)cfg->max_future_seconds);
    }
}

static enum decode_error get_is_charging(const struct sink *s, const json_t *obj,
                                         const char *prefix, uint8_t *out)
{
    char path[96];
    const json_t *v = json_object_get(obj, "is_charging");
    if (v == NULL)
        return fail(s, DECODE_MISSING_FIELD, "\"%s\" is required",
                    field_path(prefix, "is_charging", path, sizeof(path)));
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1 : 0;
        return DECODE_OK;
    }
    if (!json_is_integer(v))
        return fail(s, DECODE_WRONG_TYPE, "\"%s\" must be 0, 1, true or false, got %s",
                    field_path(prefix, "is_charging", path, sizeof(path)), json_type_name(v));
    json_int_t i = json_integer_value(v);
    if (!decode_is_charging_from_integer(i, out))
        return fail(s, DECODE_OUT_OF_RANGE, "%s %lld must be 0 or 1",
                    field_path(prefix, "is_charging", path, sizeof(path)), (long long)i);
    return DECODE_OK;
}

static enum decode_error get_status(const struct sink *s, const json_t *obj, const char *prefix,
                                    uint8_t *out)
{
    char path[96];
    const json_t *v = json_object_get(obj, "status");
    if (v == NULL)
        return fail(s, DECODE_MISSING_FIELD, "\"%s\" is required",
                    field_path(prefix, "status", path, sizeof(path)));
    if (!json_is_string(v))
        return fail(s, DECODE_WRONG_TYPE, "\"%s\" must be a string, got %s",
                    field_path(prefix, "status", path, sizeof(path)), json_type_name(v));
    const char *text = json_string_value(v);
    if (decode_status_from_word(text, json_string_length(v), out))
        return DECODE_OK;
    return fail(s, DECODE_UNKNOWN_STATUS,
                "%s \"%.40s\" is not one of \"ideal\", \"charging\", \"discharging\"",
                field_path(prefix, "status", path, sizeof(path)), text);
}

/* Decodes the value of one "battery_N" entry into r (kind, ids and ts already set). */
static enum decode_error decode_battery(const struct sink *s, const char *key, const json_t *v,
                                        struct reading *r)
{
    enum decode_error e;
    if (!json_is_object(v))
        return fail(s, DECODE_WRONG_TYPE, "\"%s\" must be an object, got %s", key,
                    json_type_name(v));
    if ((e = get_quantity(s, v, key, "capacity_kwh", DECODE_BOUND_POSITIVE, &r->capacity_kwh)) ||
        (e = get_quantity(s, v, key, "max_charge_speed_w", DECODE_BOUND_NON_NEGATIVE,
                          &r->max_charge_speed_w)) ||
        (e = get_quantity(s, v, key, "current_energy_wh", DECODE_BOUND_NON_NEGATIVE,
                          &r->energy_wh)))
        return e;
    if (!decode_energy_within_capacity(r->energy_wh, r->capacity_kwh)) {
        char energy[FIXED_TEXT_SIZE], capacity[FIXED_TEXT_SIZE];
        return fail(s, DECODE_OUT_OF_RANGE, "%s.current_energy_wh %s exceeds capacity %s kWh", key,
                    fixed_short(r->energy_wh, energy, sizeof(energy)),
                    fixed_short(r->capacity_kwh, capacity, sizeof(capacity)));
    }
    if ((e = get_is_charging(s, v, key, &r->is_charging)) ||
        (e = get_status(s, v, key, &r->status)) ||
        (e = get_quantity(s, v, key, "max_output_w", DECODE_BOUND_NON_NEGATIVE, &r->max_output_w)))
        return e;
    return DECODE_OK;
}

static enum decode_error decode_batteries(const struct sink *s, const json_t *root,
                                          const struct reading *base, struct reading *out,
                                          size_t *n_out)
{
    const json_t *batteries = json_object_get(root, "batteries");
    if (batteries == NULL)
        return fail(s, DECODE_MISSING_FIELD, "\"batteries\" is required");
    if (!json_is_object(batteries))
        return fail(s, DECODE_WRONG_TYPE, "\"batteries\" must be an object, got %s",
                    json_type_name(batteries));
    size_t count = json_object_size(batteries);
    if (count == 0)
        return fail(s, DECODE_MISSING_FIELD, "\"batteries\" has no battery");
    if (count > DECODE_MAX_READINGS)
        return fail(s, DECODE_TOO_MANY_READINGS, "\"batteries\" has %zu entries, at most %d", count,
                    DECODE_MAX_READINGS);

    size_t n = 0;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)batteries, key, value)
    {
        struct reading r = *base;
        if (!decode_battery_id(key, strlen(key), &r.device_id))
            return fail(s, DECODE_BAD_BATTERY_ID,
                        "key \"%.40s\" is not battery_<N> with N a positive integer", key);
        enum decode_error e = decode_battery(s, key, value, &r);
        if (e != DECODE_OK)
            return e;
        decode_insert_by_device(out, &n, &r);
    }
    *n_out = n;
    return DECODE_OK;
}

static enum decode_error decode_flow(const struct sink *s, const json_t *root,
                                     const struct reading *base, struct reading *out, size_t *n_out)
{
    struct reading r = *base;
    enum decode_error e;
    if ((e = get_quantity(s, root, NULL, "current_consumption_w", DECODE_BOUND_NON_NEGATIVE,
                          &r.energy_wh)) ||
        (e = get_quantity(s, root, NULL, "consumption_accumulated_w", DECODE_BOUND_NON_NEGATIVE,
                          &r.accumulated_wh)))
        return e;
    out[0] = r;
    *n_out = 1;
    return DECODE_OK;
}

/* Maps a jansson load failure to an error and reason. */
static enum decode_error load_failure(const struct sink *s, const json_error_t *err)
{
    enum decode_error e = DECODE_INVALID_JSON;
    switch (json_error_code(err)) {
    case json_error_invalid_utf8:
        e = DECODE_INVALID_UTF8;
        break;
    case json_error_duplicate_key:
        e = DECODE_DUPLICATE_KEY;
        break;
    default:
        break;
    }
    return fail(s, e, "%s at line %d column %d", err->text, err->line, err->column);
}

static bool is_blank(const char *payload, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = payload[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return true;
}

enum decode_error decode_jansson(const struct decode_config *cfg, enum reading_kind kind,
                                 const char *payload, size_t len, struct reading *out,
                                 size_t *n_out, char *reason, size_t reason_size)
{
    const struct sink s = {.buf = reason, .size = reason_size};
    *n_out = 0;
    if (kind != READING_HOME && kind != READING_SOLAR && kind != READING_BATTERY)
        return fail(&s, DECODE_UNKNOWN_KIND, "reading kind %d", (int)kind);
    if (payload == NULL || is_blank(payload, len))
        return fail(&s, DECODE_INVALID_JSON, "empty payload");

    json_error_t err;
    json_t *root = json_loadb(payload, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return load_failure(&s, &err);

    enum decode_error e = DECODE_OK;
    struct reading base;
    memset(&base, 0, sizeof(base));
    base.kind = kind;
    size_t n = 0;

    if (!json_is_object(root)) {
        e = fail(&s, DECODE_NOT_OBJECT, "top level is %s, not an object", json_type_name(root));
        goto out;
    }
    if ((e = get_timestamp(&s, cfg, root, &base.ts)) ||
        (e = get_id(&s, root, "home_id", cfg->default_home_id, &base.home_id)))
        goto out;
    switch (kind) {
    case READING_HOME:
        base.device_id = base.home_id;
        e = decode_flow(&s, root, &base, out, &n);
        break;
    case READING_SOLAR:
        if ((e = get_id(&s, root, "panel_id", cfg->default_panel_id, &base.device_id)))
            goto out;
        e = decode_flow(&s, root, &base, out, &n);
        break;
    case READING_BATTERY:
        e = decode_batteries(&s, root, &base, out, &n);
        break;
    }
out:
    json_decref(root);
    if (e == DECODE_OK)
        *n_out = n;
    return e;
}

enum decode_error decode_message(const struct decode_config *cfg, enum reading_kind kind,
                                 const char *payload, size_t len, struct reading *out,
                                 size_t *n_out, char *reason, size_t reason_size)
{
    /* The fast path decodes the well-formed messages of the three schemas; everything it is not
     * sure of, every rejection included, is decided by jansson. */
    bool known_kind = kind == READING_HOME || kind == READING_SOLAR || kind == READING_BATTERY;
    if (known_kind && payload != NULL && decode_fast(cfg, kind, payload, len, out, n_out))
        return DECODE_OK;
    return decode_jansson(cfg, kind, payload, len, out, n_out, reason, reason_size);
}

enum decode_error decode_check_size(size_t len, size_t max_bytes, char *reason, size_t reason_size)
{
    if (len <= max_bytes)
        return DECODE_OK;
    const struct sink s = {.buf = reason, .size = reason_size};
    return fail(&s, DECODE_TOO_LARGE,
                "payload of %zu bytes exceeds max_message_bytes = %zu; its first %d bytes, length "
                "and SHA-256 are kept",
                len, max_bytes, DECODE_TOO_LARGE_KEEP_BYTES);
}
