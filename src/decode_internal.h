/* Internal to the decoder (src/decode.c, src/decode_fast.c) and its tests: the Solar-X field
 * rules both decoding paths share, the fast scanner, and the jansson path on its own. */
#ifndef SOLARX_DECODE_INTERNAL_H
#define SOLARX_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/decode.h"

/* ---- Field rules (pure; decode.c adds the reasons, decode_fast.c only asks) ---- */

/* Which values a quantity may take once converted. */
enum decode_bound {
    DECODE_BOUND_NON_NEGATIVE, /* >= 0 */
    DECODE_BOUND_POSITIVE,     /* > 0 */
};

/* A JSON integer as a quantity: true with *out = i millionths-scaled, false when
 * |i| > FIXED_MAX_INPUT. */
bool decode_quantity_from_integer(long long i, fixed_t *out) __attribute__((warn_unused_result));

/* Whether a converted quantity satisfies bound. */
bool decode_quantity_within(fixed_t v, enum decode_bound bound);

/* Whether a JSON integer is a valid home_id / panel_id: 1..INT32_MAX. */
bool decode_id_in_range(long long i);

/* is_charging given as a JSON integer: true with *out for 0 or 1, false for anything else. */
bool decode_is_charging_from_integer(long long i, uint8_t *out) __attribute__((warn_unused_result));

/* The producers' status word text[0 .. len) (may hold NULs): true with *out set for "ideal",
 * "charging", "discharging", false for anything else. */
bool decode_status_from_word(const char *text, size_t len, uint8_t *out)
    __attribute__((warn_unused_result));

/* The N of a "battery_N" key key[0 .. len): a positive int32 in plain decimal (no sign, no
 * leading zero). Returns false for anything else. */
bool decode_battery_id(const char *key, size_t len, int32_t *id)
    __attribute__((warn_unused_result));

/* Whether a battery's current_energy_wh (Wh) fits its capacity_kwh (kWh), both validated. */
bool decode_energy_within_capacity(fixed_t energy_wh, fixed_t capacity_kwh);

/* The checks of a parsed time stamp ts against the epoch and cfg's clock: DECODE_OK,
 * DECODE_BAD_TIMESTAMP (before 1970-01-01 UTC) or DECODE_FUTURE_TIMESTAMP. */
enum decode_error decode_timestamp_rule(const struct decode_config *cfg, int64_t ts);

/* Adds r to out[0 .. *n) kept sorted by device_id (battery id), increments *n. The caller
 * guarantees room. */
void decode_insert_by_device(struct reading *out, size_t *n, const struct reading *r);

/* ---- The two paths ---- */

/* The fast path: one scan of payload[0 .. len), no allocation. Returns true when it decoded the
 * message, with out[0 .. *n_out) exactly what decode_jansson would return (memcmp-equal, same
 * count) for a message that decode_jansson accepts. Returns false ("not sure") for anything it
 * does not handle or that is invalid in any way (rejections all come from decode_jansson), with
 * out and *n_out unspecified. kind must be a reading_kind. */
bool decode_fast(const struct decode_config *cfg, enum reading_kind kind, const char *payload,
                 size_t len, struct reading *out, size_t *n_out)
    __attribute__((warn_unused_result));

/* decode_message without the fast path: jansson's tree and every rule, with the reasons. Same
 * contract as decode_message. */
enum decode_error decode_jansson(const struct decode_config *cfg, enum reading_kind kind,
                                 const char *payload, size_t len, struct reading *out,
                                 size_t *n_out, char *reason, size_t reason_size)
    __attribute__((warn_unused_result));

#endif
