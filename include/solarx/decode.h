/* Decoding of Solar-X messages: one JSON payload -> typed readings, or a dead-letter reason.
 * Pure: no I/O, no global state beyond the clock's zone (see clock.h). */
#ifndef SOLARX_DECODE_H
#define SOLARX_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/clock.h"
#include "solarx/reading.h"

struct decode_config {
    int32_t default_home_id;       /* used when a message has no "home_id" (> 0) */
    int32_t default_panel_id;      /* solar: used when a message has no "panel_id" (> 0) */
    const struct clock_zone *zone; /* zone of naive timestamps; borrowed, must outlive use */
    /* A reading more than max_future_seconds after now (both Unix seconds, set by the caller
     * from the wall clock per message or batch) is a future_timestamp. max_future_seconds <= 0
     * disables the check (tools that decode without a clock). */
    int64_t now;
    int64_t max_future_seconds;
};

/* Most batteries one battery_data message may carry (so the most readings of any message). */
#define DECODE_MAX_READINGS 64

/* Why a message was rejected. The numbering is not a contract; the names are (metrics labels). */
enum decode_error {
    DECODE_OK = 0,
    DECODE_INVALID_JSON,      /* not JSON: syntax, empty payload, trailing data, NaN, overflow */
    DECODE_INVALID_UTF8,      /* payload is not UTF-8 */
    DECODE_DUPLICATE_KEY,     /* an object repeats a key */
    DECODE_NOT_OBJECT,        /* valid JSON, but the top level is not an object */
    DECODE_MISSING_FIELD,     /* a required field is absent (or "batteries" is empty) */
    DECODE_WRONG_TYPE,        /* a field has the wrong JSON type */
    DECODE_OUT_OF_RANGE,      /* a number is negative, too large, or violates a bound */
    DECODE_BAD_TIMESTAMP,     /* time_stamp does not parse or does not exist in the zone */
    DECODE_UNKNOWN_STATUS,    /* battery status is not ideal / charging / discharging */
    DECODE_BAD_BATTERY_ID,    /* a key of "batteries" is not battery_<positive int32> */
    DECODE_TOO_MANY_READINGS, /* more than DECODE_MAX_READINGS batteries */
    DECODE_UNKNOWN_KIND,      /* the kind argument is not a reading_kind (caller bug) */
    DECODE_FUTURE_TIMESTAMP,  /* more than max_future_seconds ahead of the caller's clock */
    DECODE_TOO_LARGE,         /* not decoded: the payload exceeds max_message_bytes (callers) */
    DECODE_POSTGRES_REJECTED, /* decoded, but PostgreSQL rejects it (assigned by the flush policy)
                               */
};
#define DECODE_ERROR_COUNT (DECODE_POSTGRES_REJECTED + 1)

/* Stable snake_case label of e, used in metrics and in reasons: "ok", "invalid_json",
 * "invalid_utf8", "duplicate_key", "not_object", "missing_field", "wrong_type", "out_of_range",
 * "bad_timestamp", "unknown_status", "bad_battery_id", "too_many_readings", "unknown_kind",
 * "future_timestamp", "too_large", "postgres_rejected";
 * "unknown" for a value outside the enum. Static storage. */
const char *decode_error_name(enum decode_error e);

/* Longest reason decode_message writes (a reason_size of this fits every reason unclipped). */
#define DECODE_REASON_SIZE 256

/* Decodes one message of topic kind (payload of len bytes, need not be NUL-terminated) into
 * out[0 .. *n_out), which must have room for DECODE_MAX_READINGS readings.
 *   home / solar: one reading; energy_wh = current_consumption_w,
 *                 accumulated_wh = consumption_accumulated_w; device_id = home_id (home) or
 *                 panel_id (solar).
 *   battery:      one reading per battery, sorted by battery id; device_id = N of battery_N,
 *                 energy_wh = current_energy_wh.
 * All readings of one message share home_id and ts. A time stamp before 1970-01-01 UTC (after
 * its offset or zone) is bad_timestamp; one beyond cfg->now + cfg->max_future_seconds is
 * future_timestamp. Every field of out is written (unused
 * fields zero), so readings can be compared with memcmp.
 * Returns DECODE_OK, or the error with *n_out = 0 and "<name>: <detail>" in reason, e.g.
 * `missing_field: "time_stamp" is required`. One bad battery rejects the whole message.
 * Does not retain payload. */
enum decode_error decode_message(const struct decode_config *cfg, enum reading_kind kind,
                                 const char *payload, size_t len, struct reading *out,
                                 size_t *n_out, char *reason, size_t reason_size)
    __attribute__((warn_unused_result));

/* How much of a too_large payload a dead letter keeps. */
#define DECODE_TOO_LARGE_KEEP_BYTES 65536

/* Whether a payload of len bytes may be decoded at all: DECODE_OK when len <= max_bytes, else
 * DECODE_TOO_LARGE with "too_large: ..." in reason (callers keep DECODE_TOO_LARGE_KEEP_BYTES of
 * it, with its length and digest, and do not decode it). */
enum decode_error decode_check_size(size_t len, size_t max_bytes, char *reason, size_t reason_size)
    __attribute__((warn_unused_result));

#endif
