/* Window state: exact, order-independent merging of readings into one device's window, with a
 * bitmap of counted seconds so that duplicates and replays change nothing. */
#include "solarx/window.h"

#include <string.h>

_Static_assert(sizeof(struct window_key) == 24, "window_key must have no implicit padding");
_Static_assert(sizeof(struct window_state) == offsetof(struct window_state, reserved_zero) +
                                                  sizeof(((struct window_state *)0)->reserved_zero),
               "window_state must have no implicit tail padding");
_Static_assert(offsetof(struct window_state, seen) ==
                   offsetof(struct window_state, last_status) + 1,
               "window_state must have no implicit padding before seen");

struct window_key window_key_make(enum reading_kind kind, int32_t home_id, int32_t device_id,
                                  int64_t start)
{
    struct window_key key;
    memset(&key, 0, sizeof(key));
    key.start = start;
    key.home_id = home_id;
    key.device_id = device_id;
    key.kind = (int32_t)kind;
    return key;
}

static int compare_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

int window_key_compare(const struct window_key *a, const struct window_key *b)
{
    int c = compare_i64(a->kind, b->kind);
    if (c == 0)
        c = compare_i64(a->home_id, b->home_id);
    if (c == 0)
        c = compare_i64(a->device_id, b->device_id);
    if (c == 0)
        c = compare_i64(a->start, b->start);
    return c;
}

void window_state_init(struct window_state *w, const struct window_key *key, int32_t seconds)
{
    memset(w, 0, sizeof(*w));
    w->key = *key;
    w->key.pad_zero = 0;
    w->seconds = seconds >= 1 && seconds <= WINDOW_MAX_SECONDS ? seconds : 0;
}

size_t window_seen_bytes(const struct window_state *w)
{
    return ((size_t)w->seconds + 7) / 8;
}

static bool bit_is_set(const uint8_t *bits, int64_t i)
{
    return (bits[i / 8] >> (i % 8)) & 1u;
}

bool window_contains(const struct window_state *w, const struct reading *r)
{
    return (int32_t)r->kind == w->key.kind && r->home_id == w->key.home_id &&
           r->device_id == w->key.device_id && r->ts >= w->key.start &&
           r->ts - w->key.start < w->seconds;
}

/* a + b, clamped to the int64 range. For the non-negative energies decode accepts, the clamped
 * sum min(true sum, INT64_MAX) is still independent of the order of the terms. */
static fixed_t add_saturating(fixed_t a, fixed_t b)
{
    fixed_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return sum;
}

bool window_apply(struct window_state *w, const struct reading *r)
{
    if (!window_contains(w, r))
        return false;
    int64_t i = r->ts - w->key.start;
    if (bit_is_set(w->seen, i))
        return false;
    w->seen[i / 8] |= (uint8_t)(1u << (i % 8));

    bool first = w->readings_count == 0;
    w->readings_count++;
    fixed_t v = r->energy_wh;
    if (r->kind != READING_BATTERY)
        w->sum_wh = add_saturating(w->sum_wh, v);
    if (first || v < w->min_wh)
        w->min_wh = v;
    if (first || v > w->max_wh)
        w->max_wh = v;
    if (first || r->ts < w->first_ts)
        w->first_ts = r->ts;
    /* Each second is applied at most once, so there is never a tie on last_ts. */
    if (first || r->ts > w->last_ts) {
        w->last_ts = r->ts;
        w->last_energy_wh = r->energy_wh;
        if (r->kind == READING_BATTERY) {
            w->last_capacity_kwh = r->capacity_kwh;
            w->last_max_charge_speed_w = r->max_charge_speed_w;
            w->last_max_output_w = r->max_output_w;
            w->last_is_charging = r->is_charging;
            w->last_status = r->status;
        } else {
            w->last_accumulated_wh = r->accumulated_wh;
        }
    }
    return true;
}

bool window_second_seen(const struct window_state *w, int64_t ts)
{
    if (ts < w->key.start || ts - w->key.start >= w->seconds)
        return false;
    return bit_is_set(w->seen, ts - w->key.start);
}

/* Index of the first set bit at index >= from, or -1. */
static int64_t first_set_from(const struct window_state *w, int64_t from)
{
    for (int64_t i = from; i < w->seconds;) {
        uint8_t byte = (uint8_t)(w->seen[i / 8] >> (i % 8));
        if (byte != 0) {
            int64_t found = i + __builtin_ctz(byte);
            return found < w->seconds ? found : -1;
        }
        i = (i / 8 + 1) * 8;
    }
    return -1;
}

/* Index of the last set bit at index <= from, or -1. */
static int64_t last_set_upto(const struct window_state *w, int64_t from)
{
    for (int64_t i = from; i >= 0;) {
        unsigned shift = 7 - (unsigned)(i % 8);
        uint8_t byte = (uint8_t)(w->seen[i / 8] << shift);
        if (byte != 0)
            return i - (__builtin_clz(byte) - 24);
        i = i / 8 * 8 - 1;
    }
    return -1;
}

int64_t window_next_seen_after(const struct window_state *w, int64_t ts)
{
    if (ts >= w->key.start + w->seconds - 1)
        return -1;
    int64_t from = ts < w->key.start ? 0 : ts - w->key.start + 1;
    int64_t i = first_set_from(w, from);
    return i < 0 ? -1 : w->key.start + i;
}

int64_t window_prev_seen_before(const struct window_state *w, int64_t ts)
{
    if (ts <= w->key.start)
        return -1;
    int64_t from = ts - w->key.start - 1;
    if (from >= w->seconds)
        from = w->seconds - 1;
    int64_t i = last_set_upto(w, from);
    return i < 0 ? -1 : w->key.start + i;
}

void window_seen_to_hex(const struct window_state *w, char *buf, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    if (size == 0)
        return;
    size_t n = window_seen_bytes(w);
    size_t pos = 0;
    const char prefix[2] = {'\\', 'x'};
    for (size_t i = 0; i < 2 && pos + 1 < size; i++)
        buf[pos++] = prefix[i];
    for (size_t i = 0; i < n && pos + 2 < size; i++) {
        buf[pos++] = digits[w->seen[i] >> 4];
        buf[pos++] = digits[w->seen[i] & 0xf];
    }
    buf[pos] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Mask of the bits of the last significant byte that lie inside the window. */
static uint8_t last_byte_mask(const struct window_state *w)
{
    int rem = w->seconds % 8;
    return rem == 0 ? 0xff : (uint8_t)((1u << rem) - 1);
}

bool window_seen_from_hex(struct window_state *w, const char *hex)
{
    size_t n = window_seen_bytes(w);
    if (n == 0 || hex == NULL || hex[0] != '\\' || hex[1] != 'x' || strlen(hex) != 2 + 2 * n)
        return false;
    uint8_t bits[sizeof(w->seen)];
    memset(bits, 0, sizeof(bits));
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 + 2 * i]);
        int lo = hex_value(hex[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        bits[i] = (uint8_t)(hi << 4 | lo);
    }
    if ((bits[n - 1] & (uint8_t)~last_byte_mask(w)) != 0)
        return false;
    memcpy(w->seen, bits, sizeof(w->seen));
    return true;
}

bool window_state_is_consistent(const struct window_state *w)
{
    if (w->seconds < 1 || w->seconds > WINDOW_MAX_SECONDS || w->key.pad_zero != 0)
        return false;
    if (w->key.kind < 0 || w->key.kind >= READING_KIND_COUNT)
        return false;
    for (size_t i = 0; i < sizeof(w->reserved_zero); i++)
        if (w->reserved_zero[i] != 0)
            return false;
    size_t n = window_seen_bytes(w);
    if ((w->seen[n - 1] & (uint8_t)~last_byte_mask(w)) != 0)
        return false;
    for (size_t i = n; i < sizeof(w->seen); i++)
        if (w->seen[i] != 0)
            return false;
    /* Bits counted a word at a time over the significant bytes only: a stored state is checked
     * for every window a flush reads back. */
    int64_t count = 0;
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, &w->seen[i], sizeof(word));
        count += __builtin_popcountll(word);
    }
    for (; i < n; i++)
        count += __builtin_popcount(w->seen[i]);
    if (count != w->readings_count)
        return false;
    if (count == 0)
        return w->first_ts == 0 && w->last_ts == 0 && w->sum_wh == 0 && w->min_wh == 0 &&
               w->max_wh == 0;
    if (w->key.kind == READING_BATTERY && w->sum_wh != 0)
        return false;
    return w->min_wh <= w->max_wh && w->first_ts == w->key.start + first_set_from(w, 0) &&
           w->last_ts == w->key.start + last_set_upto(w, w->seconds - 1);
}
