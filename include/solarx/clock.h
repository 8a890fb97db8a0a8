/* Event time: the source's time zone, strict timestamp parsing, and the local-wall-clock
 * alignment of tumbling windows. Pure: apart from clock_zone_new reading the zone's TZif file,
 * nothing here touches global state (not libc's TZ either), so it is thread-safe. */
#ifndef SOLARX_CLOCK_H
#define SOLARX_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IANA time zone ("UTC", "Europe/Berlin"). Opaque.
 *
 * clock_zone_new loads the zone's rules once from its TZif file (RFC 8536: the transitions and
 * the footer's POSIX TZ rule for later instants) into the object, and every clock_ function
 * computes from that object alone: it never reads or sets libc's zone (TZ, tzset, localtime_r),
 * so the process's localtime() is not affected. A zone is immutable after clock_zone_new and
 * may be used by any number of threads at once (destroy it only when none uses it). "UTC", and
 * any zone whose offset is always zero ("Etc/UTC"), takes a fast path that reads no tables. */
struct clock_zone;

/* Longest zone name clock_zone_new accepts. */
#define CLOCK_ZONE_NAME_MAX 128

/* Looks up iana_name: "UTC", or a TZif file under $TZDIR (default /usr/share/zoneinfo). Names
 * with "..", a leading '/', or characters outside [A-Za-z0-9_+-./] are refused.
 * Returns a zone owned by the caller (free with clock_zone_destroy), or NULL with errstr set,
 * e.g. `unknown time zone "Mars/Base"` (no such file, or not TZif), or
 * `time zone "X": invalid TZif file (...)` for a corrupt file or a footer it cannot read. */
struct clock_zone *clock_zone_new(const char *iana_name, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Frees zone; NULL is a no-op. */
void clock_zone_destroy(struct clock_zone *zone);

/* The name the zone was created with; owned by the zone. */
const char *clock_zone_name(const struct clock_zone *zone);

/* Offset of the zone's local wall clock from UTC at instant ts, in seconds (east positive:
 * Europe/Berlin in winter is 3600, Asia/Kathmandu 20700). */
int32_t clock_utc_offset(const struct clock_zone *zone, int64_t ts);

/* Parses an event timestamp into seconds since the epoch:
 *   "YYYY-MM-DD HH:MM:SS"                 naive wall-clock time in zone;
 *   "YYYY-MM-DDTHH:MM:SS" + designator    ISO 8601, designator one of "Z", "+HH:MM", "+HHMM",
 *                                         "+HH" (or '-'), |offset| <= 18:00; the space separator
 *                                         is accepted with a designator too, 'T' without one means
 *                                         naive local time.
 * Optional fractional seconds (".1" to ".123456789") may follow the seconds; they are TRUNCATED
 * to the whole second (one reading per device per second). Strict: exact digit counts, year
 * 1970..9999, every field range-checked against the calendar (2025-02-30 is rejected), seconds
 * 00..59 (no leap second), nothing after the timestamp (not even whitespace).
 * Naive times that a DST change skips (do not exist) are rejected; naive times a DST change
 * repeats (happen twice) resolve to the EARLIER of the two instants.
 * Returns true with *epoch_out set, or false with a one-line reason in reason (which may be NULL
 * when reason_size is 0), e.g. `day 30 out of range for 2025-02 (01..28)`. */
bool clock_parse_timestamp(const struct clock_zone *zone, const char *text, int64_t *epoch_out,
                           char *reason, size_t reason_size) __attribute__((warn_unused_result));

/* Start (epoch seconds) of the tumbling window of window_seconds (> 0) that contains ts, aligned
 * on the zone's local wall clock: ts - floor_mod(ts + clock_utc_offset(zone, ts), window_seconds).
 * Local midnight is a boundary whenever window_seconds divides 86400. The result is always
 * <= ts and > ts - window_seconds. Around a DST change the offset of ts itself is used, so with
 * 15-minute windows and whole-quarter-hour offsets, starts stay on local quarter hours and are
 * strictly increasing with ts's window. When a DST shift is not a multiple of window_seconds
 * (hourly windows across Lord Howe's 30-minute shift), the first window after the change starts
 * before it, so two windows overlap nominally; each second still maps to exactly one window.
 * A window_seconds <= 0 (a caller bug) returns ts. */
int64_t clock_window_start(const struct clock_zone *zone, int64_t ts, int32_t window_seconds);

/* A point on a wall clock, broken down. */
struct clock_civil {
    int32_t year;       /* e.g. 2025 */
    int32_t month;      /* 1..12 */
    int32_t day;        /* 1..31 */
    int32_t hour;       /* 0..23 */
    int32_t minute;     /* 0..59 */
    int32_t second;     /* 0..59 */
    int32_t weekday;    /* ISO: 1 = Monday .. 7 = Sunday */
    int32_t yday;       /* 0..365, day of the year */
    int32_t utc_offset; /* seconds east of UTC in effect at that instant */
};

/* Breaks instant ts down on the zone's wall clock (for dim_date attributes and logs). */
void clock_to_local(const struct clock_zone *zone, int64_t ts, struct clock_civil *out);

/* The same on UTC's, without a zone (utc_offset 0). */
void clock_to_utc(int64_t ts, struct clock_civil *out);

/* Days in month m (1..12) of year y, proleptic Gregorian. */
int clock_days_in_month(int64_t y, int m);

/* Seconds since the epoch of a UTC calendar date and time (no range checks: fields are taken
 * as given, like timegm). */
int64_t clock_epoch_from_utc(int32_t year, int32_t month, int32_t day, int32_t hour, int32_t minute,
                             int32_t second);

/* Formats epoch as UTC text "YYYY-MM-DD HH:MM:SS+00:00", which PostgreSQL reads as timestamptz,
 * into buf (needs CLOCK_TEXT_SIZE bytes; truncated if smaller). Returns buf. */
#define CLOCK_TEXT_SIZE 40
char *clock_format_utc(int64_t epoch, char *buf, size_t size);

#endif
