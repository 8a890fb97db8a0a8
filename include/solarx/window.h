/* Window state: the aggregates of one device's tumbling window plus a bitmap of the seconds
 * already counted, merged reading by reading with exact fixed-point arithmetic. Pure. */
#ifndef SOLARX_WINDOW_H
#define SOLARX_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/fixed.h"
#include "solarx/reading.h"

/* Longest window a state can track (one bit per second). */
#define WINDOW_MAX_SECONDS 3600

/* Identity of a window: one device's window starting at `start`. Build it with window_key_make
 * so that pad_zero is 0 and keys can be hashed and compared as bytes. */
struct window_key {
    int64_t start; /* epoch seconds of the window's first second */
    int32_t home_id;
    int32_t device_id; /* see struct reading */
    int32_t kind;      /* enum reading_kind */
    int32_t pad_zero;  /* always 0 */
};

/* Persistent state of one device's window: the in-memory form of a fact row. Its bytes are
 * fully deterministic (zeroed at init, no implicit padding), so two states built from the same
 * set of readings compare equal with memcmp, whatever the order of application. */
struct window_state {
    struct window_key key;
    int32_t seconds;           /* window length, 1..WINDOW_MAX_SECONDS */
    int32_t readings_count;    /* number of distinct seconds counted (bits set in seen) */
    fixed_t sum_wh;            /* home/solar: sum of energy_wh over counted seconds; battery: 0 */
    fixed_t min_wh, max_wh;    /* home/solar: min/max per-second energy_wh; battery: min/max
                                  current_energy_wh; 0 while readings_count is 0 */
    int64_t first_ts, last_ts; /* earliest / latest counted second; 0 while readings_count is 0 */
    /* Values of the reading at last_ts (battery fields 0 for home/solar, accumulated 0 for
     * battery). */
    fixed_t last_energy_wh, last_accumulated_wh, last_capacity_kwh, last_max_charge_speed_w,
        last_max_output_w;
    uint8_t last_is_charging, last_status;
    uint8_t seen[WINDOW_MAX_SECONDS / 8]; /* bit i (byte i/8, bit i%8, LSB first, like
                                             PostgreSQL's get_bit): second key.start+i counted */
    uint8_t reserved_zero[4];             /* explicit tail padding, always 0 */
};

/* Builds a key with its padding zeroed. */
struct window_key window_key_make(enum reading_kind kind, int32_t home_id, int32_t device_id,
                                  int64_t start);

/* Total order on keys: kind, home_id, device_id, start (the order flushes lock fact rows in).
 * Returns <0, 0 or >0, like memcmp; usable with qsort through a wrapper. */
int window_key_compare(const struct window_key *a, const struct window_key *b);

/* Sets w to the empty state of the window key of `seconds` seconds (all bytes zeroed first).
 * A seconds value outside 1..WINDOW_MAX_SECONDS is a caller bug: it is stored as 0, and such a
 * state accepts no reading. */
void window_state_init(struct window_state *w, const struct window_key *key, int32_t seconds);

/* True when r belongs to w: same kind, home_id and device_id, and ts inside the window. */
bool window_contains(const struct window_state *w, const struct reading *r);

/* Counts r into w unless its second is already counted. Returns true when applied (a new
 * second), false for a duplicate second and for a reading that does not belong to w (see
 * window_contains; a caller bug, w is then unchanged). For home/solar, adds energy_wh to sum_wh;
 * for all kinds updates min/max, first/last ts and, when r is the latest second so far, the
 * last_* values. The result depends only on the set of seconds applied, not on their order. */
bool window_apply(struct window_state *w, const struct reading *r);

/* True when second ts is inside the window and counted. */
bool window_second_seen(const struct window_state *w, int64_t ts);

/* Smallest counted second > ts, or -1 when there is none (ts may lie outside the window). */
int64_t window_next_seen_after(const struct window_state *w, int64_t ts);

/* Largest counted second < ts, or -1 when there is none (ts may lie outside the window). */
int64_t window_prev_seen_before(const struct window_state *w, int64_t ts);

/* Number of bytes of `seen` that are significant: seconds / 8 rounded up. */
size_t window_seen_bytes(const struct window_state *w);

/* Writes `seen` as PostgreSQL bytea hex text: a backslash, 'x', then two lowercase hex digits
 * per significant byte ("\x0f00..."), NUL-terminated. buf needs WINDOW_SEEN_HEX_SIZE bytes
 * (truncated, still terminated, if smaller). */
#define WINDOW_SEEN_HEX_SIZE (2 + 2 * (WINDOW_MAX_SECONDS / 8) + 1)
void window_seen_to_hex(const struct window_state *w, char *buf, size_t size);

/* Loads `seen` from bytea hex text as written by window_seen_to_hex (hex digits in either case).
 * Strict: returns false, leaving w unchanged, unless hex is "\x" followed by exactly
 * 2 * window_seen_bytes(w) hex digits with no bit set beyond w->seconds. Other fields are not
 * touched: set them from the stored row, then check with window_state_is_consistent. */
bool window_seen_from_hex(struct window_state *w, const char *hex)
    __attribute__((warn_unused_result));

/* True when w's fields agree with its bitmap: readings_count equals the number of bits set,
 * first_ts/last_ts are the first/last set seconds (0 when none), key.pad_zero and the
 * padding are 0, and seconds is valid. Use it to detect a corrupt stored row. */
bool window_state_is_consistent(const struct window_state *w);

#endif
