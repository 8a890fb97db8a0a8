/* Event time: zone lookup, strict timestamp parsing, window alignment on the local wall clock.
 * Calendar arithmetic is done here (proleptic Gregorian); only UTC offsets come from libc. */
#include "solarx/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct clock_zone {
    bool is_utc;
    char name[CLOCK_ZONE_NAME_MAX + 1];
};

/* The zone libc currently converts with (what TZ was last set to), "" when none yet. */
static char current_tz[CLOCK_ZONE_NAME_MAX + 1];

#define SECONDS_PER_DAY 86400
#define MAX_UTC_OFFSET (18 * 3600)

static void set_message(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_message(char *buf, size_t size, const char *fmt, ...)
{
    if (buf == NULL || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    /* Messages may quote input: keep them printable ASCII so they can be logged and stored. */
    for (char *p = buf; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            *p = '?';
    }
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *year, int32_t *month, int32_t *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = yoe + era * 400 + (m <= 2);
    *month = (int32_t)m;
    *day = (int32_t)d;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static bool is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int clock_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

int64_t clock_epoch_from_utc(int32_t year, int32_t month, int32_t day, int32_t hour, int32_t minute,
                             int32_t second)
{
    return days_from_civil(year, month, day) * SECONDS_PER_DAY + (int64_t)hour * 3600 +
           (int64_t)minute * 60 + second;
}

static bool zone_name_is_safe(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > CLOCK_ZONE_NAME_MAX || name[0] == '/' || name[0] == '.')
        return false;
    if (strstr(name, "..") != NULL || strstr(name, "/.") != NULL)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '+' || c == '-' || c == '/' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* True when the zoneinfo file for name exists and is a TZif file. */
static bool zoneinfo_file_exists(const char *name)
{
    const char *dir = getenv("TZDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/zoneinfo";
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return false;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char magic[4];
    bool ok = fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

/* Makes zone libc's current zone unless it already is. */
static void make_current(const struct clock_zone *zone)
{
    if (strcmp(current_tz, zone->name) == 0)
        return;
    setenv("TZ", zone->name, 1);
    tzset();
    snprintf(current_tz, sizeof(current_tz), "%s", zone->name);
}

struct clock_zone *clock_zone_new(const char *iana_name, char *errstr, size_t errstr_size)
{
    if (iana_name == NULL || !zone_name_is_safe(iana_name)) {
        set_message(errstr, errstr_size, "invalid time zone name \"%.*s\"", CLOCK_ZONE_NAME_MAX,
                    iana_name != NULL ? iana_name : "(null)");
        return NULL;
    }
    bool is_utc = strcmp(iana_name, "UTC") == 0;
    if (!is_utc && !zoneinfo_file_exists(iana_name)) {
        set_message(errstr, errstr_size, "unknown time zone \"%s\"", iana_name);
        return NULL;
    }
    struct clock_zone *zone = calloc(1, sizeof(*zone));
    if (zone == NULL) {
        set_message(errstr, errstr_size, "out of memory");
        return NULL;
    }
    zone->is_utc = is_utc;
    snprintf(zone->name, sizeof(zone->name), "%s", iana_name);
    make_current(zone);
    return zone;
}

void clock_zone_destroy(struct clock_zone *zone)
{
    free(zone);
}

const char *clock_zone_name(const struct clock_zone *zone)
{
    return zone->name;
}

/* Offset and (optionally) the broken-down local time of instant ts. */
static int32_t local_time(const struct clock_zone *zone, int64_t ts, struct tm *tm_out)
{
    if (zone->is_utc)
        return 0;
    make_current(zone);
    time_t t = (time_t)ts;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return 0; /* beyond what libc can represent: no zone rules there anyway */
    if (tm_out != NULL)
        *tm_out = tm;
    return (int32_t)tm.tm_gmtoff;
}

int32_t clock_utc_offset(const struct clock_zone *zone, int64_t ts)
{
    return local_time(zone, ts, NULL);
}

void clock_to_local(const struct clock_zone *zone, int64_t ts, struct clock_civil *out)
{
    int32_t offset = clock_utc_offset(zone, ts);
    int64_t local = ts + offset;
    int64_t days = floor_div(local, SECONDS_PER_DAY);
    int64_t secs = local - days * SECONDS_PER_DAY;
    int64_t year;
    civil_from_days(days, &year, &out->month, &out->day);
    out->year = (int32_t)year;
    out->hour = (int32_t)(secs / 3600);
    out->minute = (int32_t)(secs / 60 % 60);
    out->second = (int32_t)(secs % 60);
    /* 1970-01-01 was a Thursday (ISO 4). */
    out->weekday = (int32_t)(floor_mod(days + 3, 7) + 1);
    out->yday = (int32_t)(days - days_from_civil(year, 1, 1));
    out->utc_offset = offset;
}

int64_t clock_window_start(const struct clock_zone *zone, int64_t ts, int32_t window_seconds)
{
    if (window_seconds <= 0)
        return ts; /* caller bug; a one-second window rather than a division by zero */
    int64_t offset = clock_utc_offset(zone, ts);
    return ts - floor_mod(ts + offset, window_seconds);
}

char *clock_format_utc(int64_t epoch, char *buf, size_t size)
{
    int64_t days = floor_div(epoch, SECONDS_PER_DAY);
    int64_t secs = epoch - days * SECONDS_PER_DAY;
    int64_t year;
    int32_t month, day;
    civil_from_days(days, &year, &month, &day);
    snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d+00:00", (long long)year, month, day,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    return buf;
}

/* ---- parsing ---- */

struct cursor {
    const char *start;
    const char *p;
};

/* Reads exactly n decimal digits; on failure the cursor is left on the offending character. */
static bool read_digits(struct cursor *c, int n, int *value)
{
    const char *p = c->p;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            c->p = p + i;
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    c->p = p + n;
    *value = v;
    return true;
}

/* Describes the character at the cursor for error messages: 'x' or "end of text". */
static const char *describe_at(const struct cursor *c, char *buf, size_t size)
{
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '\0')
        snprintf(buf, size, "end of text");
    else if (ch >= 0x20 && ch < 0x7f)
        snprintf(buf, size, "'%c'", ch);
    else
        snprintf(buf, size, "byte 0x%02x", ch);
    return buf;
}

static bool expect_digits(struct cursor *c, int n, int *value, const char *what, char *reason,
                          size_t reason_size)
{
    if (read_digits(c, n, value))
        return true;
    char seen[32];
    set_message(reason, reason_size, "expected %d-digit %s, found %s at position %d", n, what,
                describe_at(c, seen, sizeof(seen)), (int)(c->p - c->start));
    return false;
}

static bool expect_char(struct cursor *c, char want, const char *what, char *reason,
                        size_t reason_size)
{
    if (*c->p == want) {
        c->p++;
        return true;
    }
    char seen[32];
    set_message(reason, reason_size, "expected %s at position %d, found %s", what,
                (int)(c->p - c->start), describe_at(c, seen, sizeof(seen)));
    return false;
}

static bool check_range(int value, int lo, int hi, const char *what, char *reason,
                        size_t reason_size)
{
    if (value >= lo && value <= hi)
        return true;
    set_message(reason, reason_size, "%s %02d out of range %02d..%02d", what, value, lo, hi);
    return false;
}

/* Parses an optional UTC designator at the cursor; *has_offset false when there is none. */
static bool parse_designator(struct cursor *c, bool *has_offset, int32_t *offset, char *reason,
                             size_t reason_size)
{
    *has_offset = false;
    *offset = 0;
    if (*c->p == '\0')
        return true;
    if (*c->p == 'Z') {
        c->p++;
        *has_offset = true;
        return true;
    }
    if (*c->p != '+' && *c->p != '-') {
        char seen[32];
        set_message(reason, reason_size,
                    "unexpected %s at position %d (expected end, fraction, 'Z' or +HH:MM)",
                    describe_at(c, seen, sizeof(seen)), (int)(c->p - c->start));
        return false;
    }
    int sign = *c->p == '-' ? -1 : 1;
    c->p++;
    int hh, mm = 0;
    if (!expect_digits(c, 2, &hh, "offset hour", reason, reason_size))
        return false;
    if (*c->p == ':') {
        c->p++;
        if (!expect_digits(c, 2, &mm, "offset minute", reason, reason_size))
            return false;
    } else if (*c->p >= '0' && *c->p <= '9') {
        if (!expect_digits(c, 2, &mm, "offset minute", reason, reason_size))
            return false;
    }
    if (!check_range(mm, 0, 59, "offset minute", reason, reason_size))
        return false;
    int32_t total = hh * 3600 + mm * 60;
    if (total > MAX_UTC_OFFSET) {
        set_message(reason, reason_size, "UTC offset %02d:%02d beyond 18:00", hh, mm);
        return false;
    }
    *has_offset = true;
    *offset = sign * total;
    return true;
}

/* Resolves a naive wall-clock time (as seconds of "local epoch") to an instant in zone.
 * Probes the offsets in effect a day either side and at the point itself, and keeps each
 * candidate instant whose own offset agrees; the earliest wins (a repeated hour). Returns false
 * when no candidate agrees: the time was skipped by a DST change. */
static bool resolve_local(const struct clock_zone *zone, int64_t local, int64_t *epoch_out)
{
    if (zone->is_utc) {
        *epoch_out = local;
        return true;
    }
    int32_t probes[3] = {
        clock_utc_offset(zone, local - SECONDS_PER_DAY),
        clock_utc_offset(zone, local),
        clock_utc_offset(zone, local + SECONDS_PER_DAY),
    };
    bool found = false;
    int64_t best = 0;
    for (int i = 0; i < 3; i++) {
        bool repeat = false;
        for (int j = 0; j < i; j++)
            repeat = repeat || probes[j] == probes[i];
        if (repeat)
            continue;
        int64_t candidate = local - probes[i];
        if (clock_utc_offset(zone, candidate) != probes[i])
            continue;
        if (!found || candidate < best)
            best = candidate;
        found = true;
    }
    if (!found)
        return false;
    *epoch_out = best;
    return true;
}

bool clock_parse_timestamp(const struct clock_zone *zone, const char *text, int64_t *epoch_out,
                           char *reason, size_t reason_size)
{
    if (text == NULL || *text == '\0') {
        set_message(reason, reason_size, "empty timestamp");
        return false;
    }
    struct cursor c = {.start = text, .p = text};
    int year, month, day, hour, minute, second;

    if (!expect_digits(&c, 4, &year, "year", reason, reason_size) ||
        !expect_char(&c, '-', "'-' after year", reason, reason_size) ||
        !expect_digits(&c, 2, &month, "month", reason, reason_size) ||
        !expect_char(&c, '-', "'-' after month", reason, reason_size) ||
        !expect_digits(&c, 2, &day, "day", reason, reason_size))
        return false;
    if (*c.p == ' ' || *c.p == 'T') {
        c.p++;
    } else {
        char seen[32];
        set_message(reason, reason_size,
                    "expected ' ' or 'T' between date and time at position %d, found %s",
                    (int)(c.p - c.start), describe_at(&c, seen, sizeof(seen)));
        return false;
    }
    if (!expect_digits(&c, 2, &hour, "hour", reason, reason_size) ||
        !expect_char(&c, ':', "':' after hour", reason, reason_size) ||
        !expect_digits(&c, 2, &minute, "minute", reason, reason_size) ||
        !expect_char(&c, ':', "':' after minute", reason, reason_size) ||
        !expect_digits(&c, 2, &second, "second", reason, reason_size))
        return false;

    if (*c.p == '.') {
        c.p++;
        int digits = 0;
        while (*c.p >= '0' && *c.p <= '9') {
            c.p++;
            digits++;
        }
        if (digits == 0 || digits > 9) {
            set_message(reason, reason_size, "fractional seconds must have 1 to 9 digits, found %d",
                        digits);
            return false;
        }
    }

    bool has_offset;
    int32_t offset;
    if (!parse_designator(&c, &has_offset, &offset, reason, reason_size))
        return false;
    if (*c.p != '\0') {
        set_message(reason, reason_size, "trailing characters \"%.20s\" at position %d", c.p,
                    (int)(c.p - c.start));
        return false;
    }

    if (year < 1970) {
        set_message(reason, reason_size, "year %04d out of range 1970..9999", year);
        return false;
    }
    if (!check_range(month, 1, 12, "month", reason, reason_size))
        return false;
    int mdays = clock_days_in_month(year, month);
    if (day < 1 || day > mdays) {
        set_message(reason, reason_size, "day %02d out of range for %04d-%02d (01..%02d)", day,
                    year, month, mdays);
        return false;
    }
    if (!check_range(hour, 0, 23, "hour", reason, reason_size) ||
        !check_range(minute, 0, 59, "minute", reason, reason_size) ||
        !check_range(second, 0, 59, "second", reason, reason_size))
        return false;

    int64_t wall = clock_epoch_from_utc(year, month, day, hour, minute, second);
    if (has_offset) {
        *epoch_out = wall - offset;
        return true;
    }
    if (!resolve_local(zone, wall, epoch_out)) {
        set_message(reason, reason_size,
                    "local time %04d-%02d-%02d %02d:%02d:%02d does not exist in %s "
                    "(skipped by a DST change)",
                    year, month, day, hour, minute, second, zone->name);
        return false;
    }
    return true;
}
