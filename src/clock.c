/* Event time: zone lookup, strict timestamp parsing, window alignment on the local wall clock.
 * Pure: a zone's rules are read once from its TZif file (RFC 8536) into the zone object, and every
 * conversion is computed from that object and proleptic Gregorian arithmetic. Nothing here reads
 * or changes libc's zone state (the TZ variable, libc's local-time conversions), and there is no
 * mutable file-scope state, so zones can be shared between threads. */
#include "solarx/clock.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS_PER_DAY 86400
#define MAX_UTC_OFFSET (18 * 3600)

/* A zone's footer rules (RFC 8536 section 3.3, POSIX TZ string) are expanded into the transition
 * table up to this year at load time, so that lookups before it are a binary search; later
 * instants evaluate the footer directly. */
#define TABLE_HORIZON_YEAR 2200

/* Instants after this (about a million years) take the footer's standard offset, so that the
 * calendar arithmetic cannot overflow. */
#define FOOTER_MAX_TS ((int64_t)1 << 45)

/* Largest TZif file read (the biggest in tzdata are a few kB). */
#define TZIF_MAX_SIZE (1 << 20)

/* The date of one POSIX TZ rule: 'J' Julian day 1..365 without Feb 29, 'N' zero-based day
 * 0..365 counting Feb 29, 'M' day d (0 = Sunday) of week w (1..5, 5 = last) of month m. */
struct tz_rule {
    char kind;
    int32_t m, w, d; /* 'M' only */
    int32_t day;     /* 'J' and 'N' */
    int32_t time;    /* seconds after local midnight, -167 h..167 h (RFC 8536 extension) */
};

/* A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3"; offsets east-positive seconds. */
struct tz_posix {
    bool present;
    bool has_dst;
    int32_t std_offset, dst_offset;
    struct tz_rule start, end; /* DST starts at start (std local time), ends at end (DST local) */
};

struct clock_zone {
    bool is_utc; /* offset 0 always: no tables, every lookup returns 0 */
    char name[CLOCK_ZONE_NAME_MAX + 1];
    /* times[i] (ascending) begins offsets[i], until times[i + 1]. */
    size_t count;
    int64_t *times;
    int32_t *offsets;
    int32_t before_offset; /* before times[0]: time type 0 */
    int32_t tail_offset;   /* from times[count - 1] on, when the footer has no DST */
    int64_t table_end;     /* with a DST footer: from here on, the footer is evaluated */
    int32_t min_offset, max_offset;
    struct tz_posix footer;
};

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

/* ---- POSIX TZ strings (TZif footers) ---- */

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static bool posix_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *begin = ++s;
        while (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-')
            s++;
        if (*s != '>' || s - begin < 3)
            return false;
        *p = s + 1;
        return true;
    }
    while (is_alpha(*s))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

/* Up to max_digits digits with a value <= max. */
static bool posix_number(const char **p, int max_digits, int32_t max, int32_t *out)
{
    const char *s = *p;
    int32_t v = 0;
    int n = 0;
    while (is_digit(*s) && n < max_digits) {
        v = v * 10 + (*s - '0');
        s++;
        n++;
    }
    if (n == 0 || v > max)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours, in seconds (the sign as written). */
static bool posix_hms(const char **p, int32_t max_hours, int32_t *out)
{
    const char *s = *p;
    int32_t sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    int32_t h, m = 0, sec = 0;
    if (!posix_number(&s, 3, max_hours, &h))
        return false;
    if (*s == ':') {
        s++;
        if (!posix_number(&s, 2, 59, &m))
            return false;
        if (*s == ':') {
            s++;
            if (!posix_number(&s, 2, 59, &sec))
                return false;
        }
    }
    *p = s;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

/* date[/time]: Jn, n or Mm.w.d; the time defaults to 02:00. */
static bool posix_rule(const char **p, struct tz_rule *r)
{
    const char *s = *p;
    memset(r, 0, sizeof(*r));
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!posix_number(&s, 3, 365, &r->day) || r->day < 1)
            return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!posix_number(&s, 2, 12, &r->m) || r->m < 1 || *s++ != '.' ||
            !posix_number(&s, 1, 5, &r->w) || r->w < 1 || *s++ != '.' ||
            !posix_number(&s, 1, 6, &r->d))
            return false;
    } else {
        r->kind = 'N';
        if (!posix_number(&s, 3, 365, &r->day))
            return false;
    }
    r->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (!posix_hms(&s, 167, &r->time))
            return false;
    }
    *p = s;
    return true;
}

/* Parses a TZif footer; "" is valid and means no footer. */
static bool posix_parse(const char *text, struct tz_posix *out)
{
    memset(out, 0, sizeof(*out));
    if (*text == '\0')
        return true;
    const char *p = text;
    int32_t v;
    if (!posix_name(&p) || !posix_hms(&p, 24, &v))
        return false;
    out->present = true;
    out->std_offset = -v; /* POSIX offsets are west-positive */
    out->dst_offset = out->std_offset;
    if (*p == '\0')
        return true;
    if (!posix_name(&p))
        return false;
    out->has_dst = true;
    out->dst_offset = out->std_offset + 3600;
    if (*p != ',' && *p != '\0') {
        if (!posix_hms(&p, 24, &v))
            return false;
        out->dst_offset = -v;
    }
    if (*p == '\0') {
        /* No rules: the US rules since 2007, as glibc assumes (zic always writes rules). */
        const char *dflt = "M3.2.0,M11.1.0";
        bool ok = posix_rule(&dflt, &out->start) && *dflt++ == ',' && posix_rule(&dflt, &out->end);
        return ok;
    }
    if (*p++ != ',' || !posix_rule(&p, &out->start) || *p++ != ',' || !posix_rule(&p, &out->end))
        return false;
    return *p == '\0';
}

/* Days since the epoch of a rule's date in year y. */
static int64_t rule_day(const struct tz_rule *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    switch (r->kind) {
    case 'J':
        return jan1 + r->day - 1 + (is_leap_year(y) && r->day >= 60 ? 1 : 0);
    case 'N':
        return jan1 + r->day;
    default: {
        int64_t first = days_from_civil(y, r->m, 1);
        int64_t weekday = floor_mod(first + 4, 7); /* 1970-01-01 was a Thursday (4) */
        int64_t day = first + floor_mod(r->d - weekday, 7) + (int64_t)(r->w - 1) * 7;
        int64_t month_end = first + clock_days_in_month(y, r->m);
        while (day >= month_end)
            day -= 7;
        return day;
    }
    }
}

/* A change of offset at an instant. */
struct tz_event {
    int64_t at;
    int32_t offset;
};

/* The DST start and end of year y, in that order. */
static void posix_year(const struct tz_posix *f, int64_t y, struct tz_event ev[2])
{
    ev[0].at = rule_day(&f->start, y) * SECONDS_PER_DAY + f->start.time - f->std_offset;
    ev[0].offset = f->dst_offset;
    ev[1].at = rule_day(&f->end, y) * SECONDS_PER_DAY + f->end.time - f->dst_offset;
    ev[1].offset = f->std_offset;
}

/* Stable sort by instant: of two changes at the same instant the later listed (later year)
 * wins, which makes "DST all year" rules (start Jan 1 00:00, end Dec 31 24:00 + save) work. */
static void sort_events(struct tz_event *ev, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct tz_event e = ev[i];
        size_t j = i;
        while (j > 0 && ev[j - 1].at > e.at) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = e;
    }
}

static int64_t utc_year_of(int64_t ts)
{
    int64_t year;
    int32_t month, day;
    civil_from_days(floor_div(ts, SECONDS_PER_DAY), &year, &month, &day);
    return year;
}

/* Offset at ts under a footer with DST, and the next change after ts. The changes of the years
 * around ts's UTC year are enough: a rule's time moves it at most 167 h from its date. */
static int32_t posix_offset(const struct tz_posix *f, int64_t ts, int64_t *next)
{
    struct tz_event ev[10];
    int64_t y = utc_year_of(ts);
    for (int i = 0; i < 5; i++)
        posix_year(f, y - 2 + i, &ev[2 * i]);
    sort_events(ev, 10);
    int32_t offset = ev[0].offset;
    *next = INT64_MAX;
    for (size_t i = 0; i < 10; i++) {
        if (ev[i].at <= ts) {
            offset = ev[i].offset;
        } else {
            *next = ev[i].at;
            break;
        }
    }
    return offset;
}

/* ---- TZif files (RFC 8536) ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

#define TZIF_HEADER_SIZE 44

static bool tzif_read_header(const unsigned char *buf, size_t len, size_t at, struct tzif_header *h)
{
    if (len < TZIF_HEADER_SIZE || at > len - TZIF_HEADER_SIZE || memcmp(buf + at, "TZif", 4) != 0)
        return false;
    h->version = (char)buf[at + 4];
    const unsigned char *c = buf + at + 20;
    h->isutcnt = be32(c);
    h->isstdcnt = be32(c + 4);
    h->leapcnt = be32(c + 8);
    h->timecnt = be32(c + 12);
    h->typecnt = be32(c + 16);
    h->charcnt = be32(c + 20);
    return true;
}

/* Size of the data block after a header; time_size 4 (v1) or 8 (v2+). */
static uint64_t tzif_block_size(const struct tzif_header *h, uint64_t time_size)
{
    return (uint64_t)h->timecnt * time_size + h->timecnt + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads the whole file at path; NULL when it cannot be opened or read. */
static unsigned char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = malloc(TZIF_MAX_SIZE);
    size_t len = 0;
    if (buf != NULL) {
        len = fread(buf, 1, TZIF_MAX_SIZE, f);
        if (ferror(f) || len == 0) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    *len_out = len;
    return buf;
}

static void note_offset(struct clock_zone *z, int32_t offset)
{
    if (offset < z->min_offset)
        z->min_offset = offset;
    if (offset > z->max_offset)
        z->max_offset = offset;
}

/* Appends the footer's changes after the last transition up to TABLE_HORIZON_YEAR. */
static bool extend_table(struct clock_zone *z)
{
    const struct tz_posix *f = &z->footer;
    int64_t last = z->count > 0 ? z->times[z->count - 1] : INT64_MIN;
    int64_t first_year = z->count > 0 ? utc_year_of(last) - 1 : 1900;
    if (first_year > TABLE_HORIZON_YEAR) {
        z->table_end = last;
        return true;
    }
    size_t n = (size_t)(TABLE_HORIZON_YEAR - first_year + 1) * 2;
    struct tz_event *ev = malloc(n * sizeof(*ev));
    int64_t *times = realloc(z->times, (z->count + n) * sizeof(*times));
    if (times != NULL)
        z->times = times;
    int32_t *offsets = realloc(z->offsets, (z->count + n) * sizeof(*offsets));
    if (offsets != NULL)
        z->offsets = offsets;
    if (ev == NULL || times == NULL || offsets == NULL) {
        free(ev);
        return false;
    }
    for (int64_t y = first_year; y <= TABLE_HORIZON_YEAR; y++)
        posix_year(f, y, &ev[(y - first_year) * 2]);
    sort_events(ev, n);
    int32_t current = z->count > 0 ? z->offsets[z->count - 1] : z->before_offset;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].at <= last)
            continue;
        if (z->count > 0 && ev[i].at == z->times[z->count - 1] && ev[i].at > last) {
            z->offsets[z->count - 1] = ev[i].offset; /* same instant: the later change wins */
            current = ev[i].offset;
            continue;
        }
        if (ev[i].offset == current)
            continue;
        z->times[z->count] = ev[i].at;
        z->offsets[z->count] = ev[i].offset;
        z->count++;
        current = ev[i].offset;
    }
    free(ev);
    z->table_end = days_from_civil(TABLE_HORIZON_YEAR, 1, 1) * SECONDS_PER_DAY;
    return true;
}

/* Fills z from a TZif image. Returns NULL on success, else what is wrong with it. Leap-second
 * records ("right/" zones) are skipped: their transition times are then read as POSIX times. */
static const char *tzif_load(struct clock_zone *z, const unsigned char *buf, size_t len)
{
    struct tzif_header h;
    if (!tzif_read_header(buf, len, 0, &h))
        return "no TZif header";
    uint64_t time_size = 4;
    size_t at = TZIF_HEADER_SIZE;
    if (h.version >= '2') {
        uint64_t skip = tzif_block_size(&h, 4);
        if (skip > len - at || !tzif_read_header(buf, len, at + (size_t)skip, &h))
            return "truncated version 1 data";
        at += (size_t)skip + TZIF_HEADER_SIZE;
        time_size = 8;
    }
    if (h.typecnt == 0 || h.typecnt > 256)
        return "bad local time type count";
    if (tzif_block_size(&h, time_size) > len - at)
        return "truncated data";
    const unsigned char *times = buf + at;
    const unsigned char *indices = times + h.timecnt * time_size;
    const unsigned char *types = indices + h.timecnt;
    size_t footer_at = at + (size_t)tzif_block_size(&h, time_size);

    int32_t type_offsets[256];
    for (uint32_t i = 0; i < h.typecnt; i++) {
        int64_t off = (int32_t)be32(types + 6 * i);
        if (off < -89999 || off > 93599) /* RFC 8536: utoff in -25:59:59 .. 25:59:59 */
            return "UTC offset out of range";
        type_offsets[i] = (int32_t)off;
    }
    z->before_offset = type_offsets[0];
    z->min_offset = z->max_offset = type_offsets[0];
    for (uint32_t i = 0; i < h.typecnt; i++)
        note_offset(z, type_offsets[i]);

    z->count = h.timecnt;
    z->times = malloc((h.timecnt > 0 ? h.timecnt : 1) * sizeof(*z->times));
    z->offsets = malloc((h.timecnt > 0 ? h.timecnt : 1) * sizeof(*z->offsets));
    if (z->times == NULL || z->offsets == NULL)
        return "out of memory";
    for (uint32_t i = 0; i < h.timecnt; i++) {
        z->times[i] = time_size == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (i > 0 && z->times[i] <= z->times[i - 1])
            return "transition times not ascending";
        if (indices[i] >= h.typecnt)
            return "transition to an undefined local time type";
        z->offsets[i] = type_offsets[indices[i]];
    }

    if (time_size == 8) {
        /* The footer: a TZ string between two newlines. */
        if (footer_at >= len || buf[footer_at] != '\n')
            return "missing footer";
        const unsigned char *s = buf + footer_at + 1;
        const unsigned char *nl = memchr(s, '\n', len - footer_at - 1);
        if (nl == NULL || nl - s > 255)
            return "unterminated footer";
        char tz[256];
        memcpy(tz, s, (size_t)(nl - s));
        tz[nl - s] = '\0';
        if (!posix_parse(tz, &z->footer))
            return "unsupported TZ string in footer";
    }
    z->tail_offset = z->count > 0 ? z->offsets[z->count - 1] : z->before_offset;
    z->table_end = INT64_MAX;
    if (z->footer.present) {
        note_offset(z, z->footer.std_offset);
        note_offset(z, z->footer.dst_offset);
        z->tail_offset = z->footer.std_offset;
        if (z->footer.has_dst && !extend_table(z))
            return "out of memory";
    }
    z->is_utc = z->min_offset == 0 && z->max_offset == 0;
    return NULL;
}

/* Offset of zone at ts, and the first instant after ts at which it may change (INT64_MAX when
 * never). */
static int32_t zone_offset(const struct clock_zone *z, int64_t ts, int64_t *next)
{
    if (z->is_utc) {
        *next = INT64_MAX;
        return 0;
    }
    if (z->count == 0 || ts >= z->times[z->count - 1]) {
        if (z->footer.has_dst) {
            if (ts >= z->table_end) {
                if (ts > FOOTER_MAX_TS) { /* beyond any calendar in use: no overflow */
                    *next = INT64_MAX;
                    return z->footer.std_offset;
                }
                return posix_offset(&z->footer, ts, next);
            }
            *next = z->table_end;
            return z->count > 0 ? z->offsets[z->count - 1] : z->before_offset;
        }
        *next = INT64_MAX;
        return z->tail_offset;
    }
    if (ts < z->times[0]) {
        *next = z->times[0];
        return z->before_offset;
    }
    /* times[lo] <= ts < times[hi] */
    size_t lo = 0, hi = z->count - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= ts)
            lo = mid;
        else
            hi = mid;
    }
    *next = z->times[hi];
    return z->offsets[lo];
}

struct clock_zone *clock_zone_new(const char *iana_name, char *errstr, size_t errstr_size)
{
    if (iana_name == NULL || !zone_name_is_safe(iana_name)) {
        set_message(errstr, errstr_size, "invalid time zone name \"%.*s\"", CLOCK_ZONE_NAME_MAX,
                    iana_name != NULL ? iana_name : "(null)");
        return NULL;
    }
    struct clock_zone *zone = calloc(1, sizeof(*zone));
    if (zone == NULL) {
        set_message(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(zone->name, sizeof(zone->name), "%s", iana_name);
    if (strcmp(iana_name, "UTC") == 0) {
        zone->is_utc = true;
        return zone;
    }
    const char *dir = getenv("TZDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/zoneinfo";
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, iana_name);
    size_t len = 0;
    unsigned char *buf = n < 0 || (size_t)n >= sizeof(path) ? NULL : read_file(path, &len);
    if (buf == NULL || len < 4 || memcmp(buf, "TZif", 4) != 0) {
        free(buf);
        clock_zone_destroy(zone);
        set_message(errstr, errstr_size, "unknown time zone \"%s\"", iana_name);
        return NULL;
    }
    const char *bad = tzif_load(zone, buf, len);
    free(buf);
    if (bad != NULL) {
        clock_zone_destroy(zone);
        set_message(errstr, errstr_size, "time zone \"%s\": invalid TZif file (%s)", iana_name,
                    bad);
        return NULL;
    }
    return zone;
}

void clock_zone_destroy(struct clock_zone *zone)
{
    if (zone == NULL)
        return;
    free(zone->times);
    free(zone->offsets);
    free(zone);
}

const char *clock_zone_name(const struct clock_zone *zone)
{
    return zone->name;
}

int32_t clock_utc_offset(const struct clock_zone *zone, int64_t ts)
{
    if (zone->is_utc)
        return 0;
    int64_t next;
    return zone_offset(zone, ts, &next);
}

/* Breaks down ts on the wall clock offset seconds east of UTC. */
static void to_civil(int64_t ts, int32_t offset, struct clock_civil *out)
{
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

void clock_to_local(const struct clock_zone *zone, int64_t ts, struct clock_civil *out)
{
    to_civil(ts, clock_utc_offset(zone, ts), out);
}

void clock_to_utc(int64_t ts, struct clock_civil *out)
{
    to_civil(ts, 0, out);
}

int64_t clock_window_start(const struct clock_zone *zone, int64_t ts, int32_t window_seconds)
{
    if (window_seconds <= 0)
        return ts; /* caller bug; a one-second window rather than a division by zero */
    int64_t offset = clock_utc_offset(zone, ts);
    return ts - floor_mod(ts + offset, window_seconds);
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

char *clock_format_utc(int64_t epoch, char *buf, size_t size)
{
    int64_t days = floor_div(epoch, SECONDS_PER_DAY);
    int secs = (int)(epoch - days * SECONDS_PER_DAY);
    int64_t year;
    int32_t month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 0 || year > 9999 || size < sizeof("0000-00-00 00:00:00+00:00")) {
        snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d+00:00", (long long)year, month, day,
                 secs / 3600, secs / 60 % 60, secs % 60);
        return buf;
    }
    /* Without printf: the raw COPY formats one per row (copytext.c). */
    put2(buf, (int)(year / 100));
    put2(buf + 2, (int)(year % 100));
    buf[4] = '-';
    put2(buf + 5, month);
    buf[7] = '-';
    put2(buf + 8, day);
    buf[10] = ' ';
    put2(buf + 11, secs / 3600);
    buf[13] = ':';
    put2(buf + 14, secs / 60 % 60);
    buf[16] = ':';
    put2(buf + 17, secs % 60);
    memcpy(buf + 19, "+00:00", sizeof("+00:00"));
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

/* Resolves a naive wall-clock time (as seconds of "local epoch") to an instant in zone: the
 * earliest instant t with t + offset(t) == local. Each span of constant offset o between two
 * changes holds at most one such t (local - o); the spans that can hold one lie between
 * local - max_offset and local - min_offset and are walked in time order, so the first hit is
 * the earliest (a repeated time resolves to its earlier instant). Returns false when no span
 * holds one: the time was skipped by a change. */
static bool resolve_local(const struct clock_zone *zone, int64_t local, int64_t *epoch_out)
{
    if (zone->is_utc) {
        *epoch_out = local;
        return true;
    }
    int64_t t = local - zone->max_offset;
    int64_t last = local - zone->min_offset;
    while (t <= last) {
        int64_t next;
        int32_t offset = zone_offset(zone, t, &next);
        int64_t candidate = local - offset;
        if (candidate >= t && candidate < next) {
            *epoch_out = candidate;
            return true;
        }
        if (next <= t || next == INT64_MAX)
            break;
        t = next;
    }
    return false;
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
