/* Unit tests of src/clock.c's own zone rules (TZif + footer) against glibc: offsets, local
 * breakdown and window starts for many zones and instants, naive-time resolution around every
 * transition against the documented rules, footers with every POSIX rule form (TZif files
 * written here), corrupt files, and two threads using two zones at once.
 * Only this test touches libc's zone state (setenv("TZ") + tzset + localtime_r), as a reference. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "solarx/clock.h"

static struct clock_zone *zone_or_die(const char *name)
{
    char err[256] = "";
    struct clock_zone *zone = clock_zone_new(name, err, sizeof(err));
    cr_assert_not_null(zone, "clock_zone_new(\"%s\") failed: %s", name, err);
    return zone;
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    return clock_epoch_from_utc(y, mo, d, h, mi, s);
}

/* libc's reference zone: TZ is a zone name or a POSIX TZ string. */
static void libc_use(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int32_t libc_offset(int64_t ts)
{
    time_t t = (time_t)ts;
    struct tm tm;
    cr_assert_not_null(localtime_r(&t, &tm));
    return (int32_t)tm.tm_gmtoff;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t m = a % b;
    return m < 0 ? m + b : m;
}

/* Checks offset, local breakdown and window starts at ts; returns libc's offset. */
static int32_t check_instant(const struct clock_zone *zone, const char *what, int64_t ts)
{
    time_t t = (time_t)ts;
    struct tm tm;
    cr_assert_not_null(localtime_r(&t, &tm));
    int32_t want = (int32_t)tm.tm_gmtoff;
    int32_t got = clock_utc_offset(zone, ts);
    cr_assert_eq(got, want, "%s at %lld: offset %d, libc %d", what, (long long)ts, got, want);
    struct clock_civil c;
    clock_to_local(zone, ts, &c);
    cr_assert(c.year == tm.tm_year + 1900 && c.month == tm.tm_mon + 1 && c.day == tm.tm_mday &&
                  c.hour == tm.tm_hour && c.minute == tm.tm_min && c.second == tm.tm_sec &&
                  c.yday == tm.tm_yday && c.weekday == (tm.tm_wday == 0 ? 7 : tm.tm_wday),
              "%s at %lld: local time differs from libc", what, (long long)ts);
    cr_assert_eq(clock_window_start(zone, ts, 900), ts - floor_mod(ts + want, 900), "%s at %lld",
                 what, (long long)ts);
    return want;
}

/* The documented rule for a naive local time, from libc: the earliest instant t with
 * t + offset(t) == local among the offsets in effect within two days, or false (skipped). */
static bool reference_resolve(int64_t local, int64_t *out)
{
    int32_t seen[64];
    int n = 0;
    for (int64_t t = local - 2 * 86400; t <= local + 2 * 86400; t += 1800) {
        int32_t o = libc_offset(t);
        bool dup = false;
        for (int i = 0; i < n; i++)
            dup = dup || seen[i] == o;
        if (!dup && n < 64)
            seen[n++] = o;
    }
    bool found = false;
    for (int i = 0; i < n; i++) {
        int64_t t = local - seen[i];
        if (libc_offset(t) == seen[i] && (!found || t < *out)) {
            *out = t;
            found = true;
        }
    }
    return found;
}

static void check_naive(const struct clock_zone *zone, const char *what, int64_t local)
{
    if (local < 0 || local >= utc(10000, 1, 1, 0, 0, 0))
        return;
    time_t lt = (time_t)local;
    struct tm tm;
    cr_assert_not_null(gmtime_r(&lt, &tm));
    char text[40];
    snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int64_t want = 0, got = 0;
    bool exists = reference_resolve(local, &want);
    char reason[256] = "";
    bool ok = clock_parse_timestamp(zone, text, &got, reason, sizeof(reason));
    if (exists) {
        cr_assert(ok, "%s: \"%s\" rejected: %s", what, text, reason);
        cr_assert_eq(got, want, "%s: \"%s\" parsed to %lld, the earliest instant is %lld", what,
                     text, (long long)got, (long long)want);
    } else {
        cr_assert_not(ok, "%s: skipped time \"%s\" accepted as %lld", what, text, (long long)got);
        char fragment[200];
        snprintf(fragment, sizeof(fragment), "local time %s does not exist in %s", text,
                 clock_zone_name(zone));
        cr_assert_not_null(strstr(reason, fragment), "%s: reason \"%s\"", what, reason);
    }
}

/* Samples [from, to) every step seconds; at each change of libc's offset, finds the exact
 * transition and checks it +-1 s, and naive times around it. Returns the transitions seen. */
static int compare_span(const struct clock_zone *zone, const char *what, int64_t from, int64_t to,
                        int64_t step)
{
    int transitions = 0;
    int64_t prev_ts = from;
    int32_t prev = check_instant(zone, what, from);
    for (int64_t ts = from + step; ts < to; ts += step) {
        int32_t off = check_instant(zone, what, ts);
        if (off != prev) {
            /* First second of the new offset in (prev_ts, ts]. */
            int64_t lo = prev_ts, hi = ts;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (libc_offset(mid) == prev)
                    lo = mid;
                else
                    hi = mid;
            }
            for (int64_t d = -1; d <= 1; d++)
                check_instant(zone, what, hi + d);
            int32_t before = libc_offset(hi - 1), after = libc_offset(hi);
            static const int64_t ks[] = {-3601, -1801, -1, 0, 1, 59, 1799, 3599, 3600, 5400};
            for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
                check_naive(zone, what, hi + before + ks[i]);
                check_naive(zone, what, hi + after + ks[i]);
            }
            transitions++;
        }
        prev = off;
        prev_ts = ts;
    }
    return transitions;
}

static void compare_zone(const char *name, int min_transitions)
{
    struct clock_zone *zone = zone_or_die(name);
    libc_use(name);
    const int64_t step = 37 * 60;
    int n = compare_span(zone, name, utc(1970, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0), step);
    cr_assert_geq(n, min_transitions, "%s: only %d transitions seen", name, n);
    /* Across the end of the expanded table (2200) and far beyond it: the footer itself. */
    compare_span(zone, name, utc(2195, 1, 1, 0, 0, 0), utc(2205, 1, 1, 0, 0, 0), step);
    compare_span(zone, name, utc(2497, 1, 1, 0, 0, 0), utc(2503, 1, 1, 0, 0, 0), step);
    compare_span(zone, name, utc(9996, 1, 1, 0, 0, 0), utc(9999, 12, 31, 0, 0, 0), step);
    clock_zone_destroy(zone);
}

Test(clock_zones_vs_libc, europe_berlin)
{
    compare_zone("Europe/Berlin", 230);
    /* Extreme instants are defined (the sanitizer build checks for overflow). */
    struct clock_zone *zone = zone_or_die("Europe/Berlin");
    cr_assert_eq(clock_utc_offset(zone, INT64_MIN), 3208, "LMT before the first transition");
    cr_assert_eq(clock_utc_offset(zone, INT64_MAX), 3600);
    cr_assert_eq(clock_utc_offset(zone, utc(100000, 7, 1, 0, 0, 0)), 7200, "CEST in 100000");
    cr_assert_eq(clock_utc_offset(zone, utc(100000, 12, 1, 0, 0, 0)), 3600, "CET in 100000");
    clock_zone_destroy(zone);
}
Test(clock_zones_vs_libc, america_new_york)
{
    compare_zone("America/New_York", 250);
}
Test(clock_zones_vs_libc, australia_lord_howe)
{
    compare_zone("Australia/Lord_Howe", 200);
}
Test(clock_zones_vs_libc, asia_kathmandu)
{
    compare_zone("Asia/Kathmandu", 1);
}
Test(clock_zones_vs_libc, america_sao_paulo)
{
    compare_zone("America/Sao_Paulo", 50);
}
Test(clock_zones_vs_libc, pacific_apia)
{
    compare_zone("Pacific/Apia", 10);
}
Test(clock_zones_vs_libc, africa_casablanca)
{
    compare_zone("Africa/Casablanca", 50);
}
Test(clock_zones_vs_libc, antarctica_troll)
{
    compare_zone("Antarctica/Troll", 100);
}
Test(clock_zones_vs_libc, america_st_johns)
{
    compare_zone("America/St_Johns", 250);
}
Test(clock_zones_vs_libc, europe_dublin)
{
    compare_zone("Europe/Dublin", 250);
}
Test(clock_zones_vs_libc, utc_and_aliases)
{
    compare_zone("UTC", 0);
    compare_zone("Etc/UTC", 0);
    compare_zone("Etc/GMT-14", 0);
}
Test(clock_zones_vs_libc, rules_with_negative_and_late_times)
{
    compare_zone("America/Nuuk", 50);      /* M3.5.0/-1 */
    compare_zone("Asia/Jerusalem", 100);   /* M3.4.4/26 */
    compare_zone("America/Santiago", 100); /* M9.1.6/24 */
}

/* ---- footers with every rule form, in TZif files written here ---- */

static void put32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* A version 2 TZif file with no transitions, one time type (offset type0) and footer. */
static void write_tzif(const char *dir, const char *name, int32_t type0, const char *footer)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int part = 0; part < 2; part++) {
        fwrite("TZif2", 1, 5, f);
        fwrite("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 1, 15, f);
        put32(f, 0); /* isutcnt */
        put32(f, 0); /* isstdcnt */
        put32(f, 0); /* leapcnt */
        put32(f, 0); /* timecnt */
        put32(f, 1); /* typecnt */
        put32(f, 4); /* charcnt */
        put32(f, (uint32_t)type0);
        fwrite("\0\0XYZ\0", 1, 6, f); /* isdst 0, desigidx 0, "XYZ\0" */
    }
    fprintf(f, "\n%s\n", footer);
    fclose(f);
}

static char tzdir[256];

static void make_tzdir(void)
{
    snprintf(tzdir, sizeof(tzdir), "%s/solarx-tzdir-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tzdir));
}

static void remove_tzdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tzdir);
    cr_assert_eq(system(cmd), 0);
    unsetenv("TZDIR");
}

Test(clock_footer, every_rule_form_matches_libc_reading_the_same_tz_string)
{
    static const struct {
        const char *file;
        int32_t type0;
        const char *tz;
    } cases[] = {
        {"Nuukish", -7200, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"},
        {"Jerusalemish", 7200, "IST-2IDT,M3.4.4/26,M10.5.0"},
        {"Julian", 7200, "IST-2IDT,J80/26,J300/-3"},
        {"ZeroBased", -10800, "XXX3YYY,59/25,300/2"},
        {"Extremes", 3600, "ZZZ-1YYY,M3.5.0/-167,M10.5.0/167"},
        {"LordHowish", 37800, "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"},
        {"Seconds", -3 * 3600 - 1800, "NST3:30NDT,M3.2.0/0:01:30,M11.1.0/0:01"},
        {"Kathmanduish", 20700, "<+0545>-5:45"},
        {"Default", -5 * 3600, "EST5EDT"},
    };
    make_tzdir();
    setenv("TZDIR", tzdir, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_tzif(tzdir, cases[i].file, cases[i].type0, cases[i].tz);
        struct clock_zone *zone = zone_or_die(cases[i].file);
        libc_use(cases[i].tz);
        int n = compare_span(zone, cases[i].tz, utc(1970, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0),
                             3 * 3600 + 7);
        cr_assert(strchr(cases[i].tz, ',') == NULL || strstr(cases[i].tz, "EDT") != NULL ||
                      n >= 250,
                  "%s: %d transitions", cases[i].tz, n);
        compare_span(zone, cases[i].tz, utc(2195, 1, 1, 0, 0, 0), utc(2205, 1, 1, 0, 0, 0),
                     3 * 3600 + 7);
        clock_zone_destroy(zone);
    }
    remove_tzdir();
}

Test(clock_footer, dst_all_year_follows_rfc_8536)
{
    /* RFC 8536 section 3.3.1: DST all year in a zone 5 hours west (always -04:00). */
    make_tzdir();
    setenv("TZDIR", tzdir, 1);
    write_tzif(tzdir, "AllYear", -4 * 3600, "EST5EDT4,0/0,J365/25");
    struct clock_zone *zone = zone_or_die("AllYear");
    for (int64_t ts = utc(1970, 1, 1, 0, 0, 0); ts < utc(2300, 1, 1, 0, 0, 0); ts += 3 * 3600 + 1)
        cr_assert_eq(clock_utc_offset(zone, ts), -4 * 3600, "at %lld", (long long)ts);
    clock_zone_destroy(zone);
    remove_tzdir();
}

Test(clock_footer, corrupt_or_foreign_files_are_refused_with_a_reason)
{
    make_tzdir();
    setenv("TZDIR", tzdir, 1);
    write_tzif(tzdir, "BadFooter", 0, "CET-1CEST,M3.5.0");
    write_tzif(tzdir, "BadHours", 0, "CET-1CEST,M3.5.0/168,M10.5.0");
    char path[512];
    snprintf(path, sizeof(path), "%s/Truncated", tzdir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite("TZif2\0\0\0", 1, 8, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/NotTzif", tzdir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("hello\n", f);
    fclose(f);
    static const struct {
        const char *name;
        const char *error;
    } cases[] = {
        {"BadFooter", "time zone \"BadFooter\": invalid TZif file (unsupported TZ string"},
        {"BadHours", "time zone \"BadHours\": invalid TZif file (unsupported TZ string"},
        {"Truncated", "time zone \"Truncated\": invalid TZif file (no TZif header)"},
        {"NotTzif", "unknown time zone \"NotTzif\""},
        {"Missing", "unknown time zone \"Missing\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        struct clock_zone *zone = clock_zone_new(cases[i].name, err, sizeof(err));
        cr_expect_null(zone, "%s accepted", cases[i].name);
        clock_zone_destroy(zone);
        cr_expect_not_null(strstr(err, cases[i].error), "%s: \"%s\"", cases[i].name, err);
    }
    remove_tzdir();
}

/* ---- threads ---- */

struct worker {
    const char *zone_name;
    int64_t from;
    int count;
    int32_t *want_offset; /* libc's, computed before the threads start */
    int64_t *want_parse;  /* the naive local text of each instant parsed back (-1: rejected) */
    char (*text)[80];
    pthread_barrier_t *start; /* both threads begin their loops together */
    int errors;
};

#define WORK_STEP (3600 * 5 + 59)
#define WORK_COUNT 20000

static void *work(void *arg)
{
    struct worker *w = arg;
    char err[256];
    struct clock_zone *zone = clock_zone_new(w->zone_name, err, sizeof(err));
    if (zone == NULL) {
        w->errors++;
    }
    pthread_barrier_wait(w->start);
    if (zone == NULL)
        return NULL;
    /* At least 3 rounds and 2 s, so that the two threads overlap for long. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0;; round++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (round >= 3 && t.tv_sec - t0.tv_sec >= 2)
            break;
        for (int i = 0; i < w->count; i++) {
            int64_t ts = w->from + (int64_t)i * WORK_STEP;
            if (clock_utc_offset(zone, ts) != w->want_offset[i])
                w->errors++;
            int64_t got = -1;
            if (!clock_parse_timestamp(zone, w->text[i], &got, NULL, 0))
                got = -1;
            if (got != w->want_parse[i])
                w->errors++;
        }
    }
    clock_zone_destroy(zone);
    return NULL;
}

static void prepare(struct worker *w, const char *name)
{
    w->zone_name = name;
    w->from = utc(2000, 1, 1, 0, 0, 0);
    w->count = WORK_COUNT;
    w->want_offset = calloc(WORK_COUNT, sizeof(*w->want_offset));
    w->want_parse = calloc(WORK_COUNT, sizeof(*w->want_parse));
    w->text = calloc(WORK_COUNT, sizeof(*w->text));
    cr_assert(w->want_offset && w->want_parse && w->text);
    libc_use(name);
    for (int i = 0; i < WORK_COUNT; i++) {
        int64_t ts = w->from + (int64_t)i * WORK_STEP;
        w->want_offset[i] = libc_offset(ts);
        time_t lt = (time_t)(ts + w->want_offset[i]);
        struct tm tm;
        cr_assert_not_null(gmtime_r(&lt, &tm));
        snprintf(w->text[i], sizeof(w->text[i]), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        int64_t want;
        w->want_parse[i] = reference_resolve(ts + w->want_offset[i], &want) ? want : -1;
    }
}

Test(clock_threads, two_threads_with_two_zones_get_their_own_results)
{
    struct worker w[2] = {{0}};
    prepare(&w[0], "Europe/Berlin");
    prepare(&w[1], "America/New_York");
    /* libc's zone is left on a third zone: the workers must not depend on it. */
    libc_use("Asia/Kathmandu");
    pthread_barrier_t start;
    cr_assert_eq(pthread_barrier_init(&start, NULL, 2), 0);
    w[0].start = w[1].start = &start;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(w[i].errors, 0, "%s: %d wrong results", w[i].zone_name, w[i].errors);
        free(w[i].want_offset);
        free(w[i].want_parse);
        free(w[i].text);
    }
}
