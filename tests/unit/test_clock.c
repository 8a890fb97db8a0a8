/* Unit tests of src/clock.c: zone lookup, strict timestamp parsing (naive and ISO forms, every
 * rejection with its reason), DST gaps and overlaps, and local-wall-clock window alignment. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int64_t parse_ok(const struct clock_zone *zone, const char *text)
{
    char reason[256] = "";
    int64_t epoch = 0;
    cr_assert(clock_parse_timestamp(zone, text, &epoch, reason, sizeof(reason)),
              "\"%s\" rejected in %s: %s", text, clock_zone_name(zone), reason);
    return epoch;
}

/* Parsing must fail and the reason must contain fragment. */
static void parse_fails(const struct clock_zone *zone, const char *text, const char *fragment)
{
    char reason[256] = "";
    int64_t epoch = 12345;
    bool ok = clock_parse_timestamp(zone, text, &epoch, reason, sizeof(reason));
    cr_assert_not(ok, "\"%s\" accepted (epoch %lld), expected \"%s\"", text, (long long)epoch,
                  fragment);
    cr_assert_not_null(strstr(reason, fragment), "\"%s\": reason \"%s\" lacks \"%s\"", text, reason,
                       fragment);
    for (const char *p = reason; *p != '\0'; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                  "reason \"%s\" is not printable ASCII", reason);
}

/* ---- zones ---- */

Test(clock_zone, utc_and_iana_names_are_accepted_and_keep_their_name)
{
    struct clock_zone *u = zone_or_die("UTC");
    struct clock_zone *b = zone_or_die("Europe/Berlin");
    cr_assert_str_eq(clock_zone_name(u), "UTC");
    cr_assert_str_eq(clock_zone_name(b), "Europe/Berlin");
    clock_zone_destroy(u);
    clock_zone_destroy(b);
    clock_zone_destroy(NULL);
}

Test(clock_zone, unknown_zone_is_rejected_with_its_name)
{
    char err[256] = "";
    cr_assert_null(clock_zone_new("Mars/Base", err, sizeof(err)));
    cr_assert_str_eq(err, "unknown time zone \"Mars/Base\"");
}

Test(clock_zone, unsafe_or_non_zone_names_are_rejected)
{
    static const char *const bad[] = {
        "",       "../../etc/passwd", "/etc/localtime", "Europe/../UTC",  "Europe/.hidden",
        "Europe", "zone.tab",         "Europe/Berlin ", "Europe\\Berlin", "Europe/Berlin\n",
        "utc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        struct clock_zone *zone = clock_zone_new(bad[i], err, sizeof(err));
        cr_expect_null(zone, "zone name \"%s\" accepted", bad[i]);
        clock_zone_destroy(zone);
        cr_expect(strstr(err, "time zone") != NULL, "\"%s\": error \"%s\"", bad[i], err);
    }
    char err[256] = "";
    cr_assert_null(clock_zone_new(NULL, err, sizeof(err)));
    cr_assert_null(clock_zone_new("Mars/Base", NULL, 0), "NULL errstr must be allowed");
}

Test(clock_zone, offsets_of_several_zones_used_alternately_stay_right)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    struct clock_zone *kathmandu = zone_or_die("Asia/Kathmandu");
    struct clock_zone *ny = zone_or_die("America/New_York");
    struct clock_zone *u = zone_or_die("UTC");
    int64_t winter = utc(2025, 1, 15, 12, 0, 0), summer = utc(2025, 7, 15, 12, 0, 0);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(clock_utc_offset(berlin, winter), 3600);
        cr_assert_eq(clock_utc_offset(kathmandu, winter), 20700);
        cr_assert_eq(clock_utc_offset(berlin, summer), 7200);
        cr_assert_eq(clock_utc_offset(ny, summer), -4 * 3600);
        cr_assert_eq(clock_utc_offset(u, summer), 0);
        cr_assert_eq(clock_utc_offset(ny, winter), -5 * 3600);
    }
    clock_zone_destroy(berlin);
    clock_zone_destroy(kathmandu);
    clock_zone_destroy(ny);
    clock_zone_destroy(u);
}

/* ---- calendar arithmetic and formatting ---- */

Test(clock_calendar, epoch_from_utc_matches_known_instants_and_timegm)
{
    cr_assert_eq(utc(1970, 1, 1, 0, 0, 0), 0);
    cr_assert_eq(utc(2025, 2, 14, 2, 8, 59), 1739498939LL);
    cr_assert_eq(utc(2024, 2, 29, 12, 0, 0), 1709208000LL);
    cr_assert_eq(utc(2025, 1, 1, 0, 0, 0), 1735689600LL);
    /* Every 7th day from 1970 to 2200 against glibc's timegm. */
    for (int64_t day = 0; day < 84000; day += 7) {
        time_t t = (time_t)(day * 86400 + 3723);
        struct tm tm;
        cr_assert_not_null(gmtime_r(&t, &tm));
        int64_t got =
            utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cr_assert_eq(got, (int64_t)t, "day %lld", (long long)day);
    }
}

Test(clock_calendar, format_utc_writes_postgres_timestamptz_text)
{
    char buf[CLOCK_TEXT_SIZE];
    cr_assert_str_eq(clock_format_utc(1739498939LL, buf, sizeof(buf)), "2025-02-14 02:08:59+00:00");
    cr_assert_str_eq(clock_format_utc(0, buf, sizeof(buf)), "1970-01-01 00:00:00+00:00");
    cr_assert_str_eq(clock_format_utc(-1, buf, sizeof(buf)), "1969-12-31 23:59:59+00:00");
    cr_assert_str_eq(clock_format_utc(utc(2024, 2, 29, 23, 59, 59), buf, sizeof(buf)),
                     "2024-02-29 23:59:59+00:00");
    cr_assert_str_eq(clock_format_utc(utc(9999, 12, 31, 23, 59, 59), buf, sizeof(buf)),
                     "9999-12-31 23:59:59+00:00");
    char small[11];
    cr_assert_str_eq(clock_format_utc(0, small, sizeof(small)), "1970-01-01");
}

Test(clock_calendar, to_local_breaks_down_wall_clock_with_weekday_and_offset)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    struct clock_civil c;
    clock_to_local(berlin, utc(2025, 7, 1, 22, 30, 15), &c);
    cr_assert_eq(c.year, 2025);
    cr_assert_eq(c.month, 7);
    cr_assert_eq(c.day, 2);
    cr_assert_eq(c.hour, 0);
    cr_assert_eq(c.minute, 30);
    cr_assert_eq(c.second, 15);
    cr_assert_eq(c.weekday, 3, "2025-07-02 is a Wednesday");
    cr_assert_eq(c.yday, 182);
    cr_assert_eq(c.utc_offset, 7200);

    struct clock_zone *kathmandu = zone_or_die("Asia/Kathmandu");
    clock_to_local(kathmandu, utc(2024, 12, 31, 18, 15, 0), &c);
    cr_assert_eq(c.year, 2025);
    cr_assert_eq(c.month, 1);
    cr_assert_eq(c.day, 1);
    cr_assert_eq(c.hour, 0);
    cr_assert_eq(c.minute, 0);
    cr_assert_eq(c.weekday, 3, "2025-01-01 is a Wednesday");
    cr_assert_eq(c.yday, 0);
    cr_assert_eq(c.utc_offset, 20700);

    struct clock_zone *u = zone_or_die("UTC");
    clock_to_local(u, utc(2025, 3, 2, 0, 0, 0), &c);
    cr_assert_eq(c.weekday, 7, "2025-03-02 is a Sunday");
    clock_zone_destroy(berlin);
    clock_zone_destroy(kathmandu);
    clock_zone_destroy(u);
}

/* ---- parsing ---- */

Test(clock_parse, naive_sample_timestamp_in_utc_and_berlin)
{
    struct clock_zone *u = zone_or_die("UTC");
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    cr_assert_eq(parse_ok(u, "2025-02-14 02:08:59"), 1739498939LL);
    cr_assert_eq(parse_ok(berlin, "2025-02-14 02:08:59"), 1739498939LL - 3600);
    cr_assert_eq(parse_ok(berlin, "2025-07-14 02:08:59"), utc(2025, 7, 14, 0, 8, 59));
    cr_assert_eq(parse_ok(u, "2025-02-14T02:08:59"), 1739498939LL, "'T' without designator");
    cr_assert_eq(parse_ok(u, "2024-02-29 00:00:00"), utc(2024, 2, 29, 0, 0, 0));
    cr_assert_eq(parse_ok(u, "2000-02-29 00:00:00"), utc(2000, 2, 29, 0, 0, 0));
    cr_assert_eq(parse_ok(u, "1970-01-01 00:00:00"), 0);
    cr_assert_eq(parse_ok(u, "9999-12-31 23:59:59"), utc(9999, 12, 31, 23, 59, 59));
    clock_zone_destroy(u);
    clock_zone_destroy(berlin);
}

Test(clock_parse, iso_forms_with_offsets_ignore_the_source_zone)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    const int64_t want = 1739498939LL; /* 2025-02-14 02:08:59 UTC */
    static const char *const same_instant[] = {
        "2025-02-14T02:08:59Z",           "2025-02-14 02:08:59Z",      "2025-02-14T03:08:59+01:00",
        "2025-02-14T03:08:59+0100",       "2025-02-14T03:08:59+01",    "2025-02-13T21:23:59-04:45",
        "2025-02-14T07:53:59+05:45",      "2025-02-14 03:08:59+01:00", "2025-02-14T02:08:59+00:00",
        "2025-02-14T02:08:59-00:00",      "2025-02-14T02:08:59.999Z",  "2025-02-14T02:08:59.1+00",
        "2025-02-14T02:08:59.123456789Z", "2025-02-14T16:08:59+14:00", "2025-02-13T14:08:59-12:00",
    };
    for (size_t i = 0; i < sizeof(same_instant) / sizeof(same_instant[0]); i++)
        cr_expect_eq(parse_ok(berlin, same_instant[i]), want, "%s", same_instant[i]);
    cr_assert_eq(parse_ok(berlin, "2025-02-14T20:08:59+18:00"), want, "18:00 is the limit");
    clock_zone_destroy(berlin);
}

Test(clock_parse, fractional_seconds_truncate_to_the_second)
{
    struct clock_zone *u = zone_or_die("UTC");
    cr_assert_eq(parse_ok(u, "2025-02-14 02:08:59.999999"), 1739498939LL);
    cr_assert_eq(parse_ok(u, "2025-02-14 02:08:59.000"), 1739498939LL);
    cr_assert_eq(parse_ok(u, "2024-12-31 23:59:59.9"), utc(2024, 12, 31, 23, 59, 59));
    clock_zone_destroy(u);
}

Test(clock_parse, malformed_timestamps_are_rejected_with_precise_reasons)
{
    struct clock_zone *u = zone_or_die("UTC");
    static const struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {"", "empty timestamp"},
        {"2025-02-30 00:00:00", "day 30 out of range for 2025-02 (01..28)"},
        {"2023-02-29 00:00:00", "day 29 out of range for 2023-02 (01..28)"},
        {"2100-02-29 00:00:00", "day 29 out of range for 2100-02 (01..28)"},
        {"2025-04-31 00:00:00", "day 31 out of range for 2025-04 (01..30)"},
        {"2025-01-00 00:00:00", "day 00 out of range for 2025-01 (01..31)"},
        {"2025-13-01 00:00:00", "month 13 out of range 01..12"},
        {"2025-00-10 00:00:00", "month 00 out of range 01..12"},
        {"2025-01-01 24:00:00", "hour 24 out of range 00..23"},
        {"2025-01-01 00:60:00", "minute 60 out of range 00..59"},
        {"2025-01-01 00:00:60", "second 60 out of range 00..59"},
        {"1969-12-31 23:59:59", "year 1969 out of range 1970..9999"},
        {"2025-1-01 00:00:00", "expected 2-digit month, found '-' at position 6"},
        {"25-01-01 00:00:00", "expected 4-digit year, found '-' at position 2"},
        {"2025/01/01 00:00:00", "expected '-' after year at position 4, found '/'"},
        {" 2025-01-01 00:00:00", "expected 4-digit year, found ' ' at position 0"},
        {"2025-01-01", "expected ' ' or 'T' between date and time at position 10, found end"},
        {"2025-01-01_00:00:00", "between date and time at position 10, found '_'"},
        {"2025-01-01t00:00:00", "between date and time at position 10, found 't'"},
        {"2025-01-01 00:00", "expected ':' after minute at position 16, found end of text"},
        {"2025-01-01 0:00:00", "expected 2-digit hour, found ':' at position 12"},
        {"2025-01-01 00:00:00 ", "unexpected ' ' at position 19"},
        {"2025-01-01 00:00:00x", "unexpected 'x' at position 19"},
        {"2025-01-01 00:00:00z", "unexpected 'z' at position 19"},
        {"2025-01-01 00:00:00Zjunk", "trailing characters \"junk\" at position 20"},
        {"2025-01-01 00:00:00+01:00:00", "trailing characters \":00\" at position 25"},
        {"2025-01-01 00:00:00+25:00", "UTC offset 25:00 beyond 18:00"},
        {"2025-01-01 00:00:00+18:01", "UTC offset 18:01 beyond 18:00"},
        {"2025-01-01 00:00:00+01:60", "offset minute 60 out of range 00..59"},
        {"2025-01-01 00:00:00+1", "expected 2-digit offset hour, found end of text at position 21"},
        {"2025-01-01 00:00:00+01:",
         "expected 2-digit offset minute, found end of text at position 23"},
        {"2025-01-01 00:00:00+013",
         "expected 2-digit offset minute, found end of text at position 23"},
        {"2025-01-01 00:00:00.", "fractional seconds must have 1 to 9 digits, found 0"},
        {"2025-01-01 00:00:00.1234567890", "fractional seconds must have 1 to 9 digits, found 10"},
        {"2025-01-01 00:00:00\xc3\xa9", "unexpected byte 0xc3 at position 19"},
        {"2025-01-01 00:00:00Z\xff", "trailing characters \"?\" at position 20"},
        {"1739498939", "expected '-' after year at position 4, found '4'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_fails(u, cases[i].text, cases[i].reason);
    clock_zone_destroy(u);
}

Test(clock_parse, null_reason_buffer_is_allowed)
{
    struct clock_zone *u = zone_or_die("UTC");
    int64_t epoch;
    cr_assert_not(clock_parse_timestamp(u, "garbage", &epoch, NULL, 0));
    char tiny[8];
    cr_assert_not(clock_parse_timestamp(u, "2025-02-30 00:00:00", &epoch, tiny, sizeof(tiny)));
    cr_assert_eq(strlen(tiny), sizeof(tiny) - 1, "reason is truncated and terminated");
    clock_zone_destroy(u);
}

Test(clock_parse, berlin_spring_forward_gap_times_are_rejected)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    /* 2025-03-30: 02:00 CET jumps to 03:00 CEST at 01:00 UTC. */
    parse_fails(berlin, "2025-03-30 02:30:00",
                "local time 2025-03-30 02:30:00 does not exist in Europe/Berlin");
    parse_fails(berlin, "2025-03-30 02:00:00", "does not exist");
    parse_fails(berlin, "2025-03-30 02:59:59", "does not exist");
    cr_assert_eq(parse_ok(berlin, "2025-03-30 01:59:59"), utc(2025, 3, 30, 0, 59, 59));
    cr_assert_eq(parse_ok(berlin, "2025-03-30 03:00:00"), utc(2025, 3, 30, 1, 0, 0));
    /* The same wall-clock text with an offset names a real instant. */
    cr_assert_eq(parse_ok(berlin, "2025-03-30T02:30:00+01:00"), utc(2025, 3, 30, 1, 30, 0));
    clock_zone_destroy(berlin);
}

Test(clock_parse, berlin_fall_back_overlap_resolves_to_the_earlier_instant)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    /* 2025-10-26: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:xx happens twice. */
    cr_assert_eq(parse_ok(berlin, "2025-10-26 02:30:00"), 1761438600LL, "00:30 UTC (CEST)");
    cr_assert_eq(parse_ok(berlin, "2025-10-26 02:00:00"), utc(2025, 10, 26, 0, 0, 0));
    cr_assert_eq(parse_ok(berlin, "2025-10-26 02:59:59"), utc(2025, 10, 26, 0, 59, 59));
    cr_assert_eq(parse_ok(berlin, "2025-10-26 01:59:59"), utc(2025, 10, 25, 23, 59, 59));
    cr_assert_eq(parse_ok(berlin, "2025-10-26 03:00:00"), utc(2025, 10, 26, 2, 0, 0));
    /* The later occurrence is reachable with an explicit offset. */
    cr_assert_eq(parse_ok(berlin, "2025-10-26T02:30:00+01:00"), 1761442200LL);
    clock_zone_destroy(berlin);
}

Test(clock_parse, southern_hemisphere_and_half_hour_dst_zones_resolve)
{
    /* Sydney: 2025-04-06 03:00 AEDT falls back to 02:00 AEST (16:00 UTC on the 5th). */
    struct clock_zone *sydney = zone_or_die("Australia/Sydney");
    cr_assert_eq(parse_ok(sydney, "2025-04-06 02:30:00"), utc(2025, 4, 5, 15, 30, 0));
    /* 2025-10-05 02:00 AEST jumps to 03:00 AEDT. */
    parse_fails(sydney, "2025-10-05 02:30:00", "does not exist in Australia/Sydney");
    /* Lord Howe shifts by 30 minutes: 2025-10-05 02:00 +10:30 becomes 02:30 +11:00. */
    struct clock_zone *lord_howe = zone_or_die("Australia/Lord_Howe");
    parse_fails(lord_howe, "2025-10-05 02:15:00", "does not exist");
    cr_assert_eq(parse_ok(lord_howe, "2025-10-05 02:30:00"), utc(2025, 10, 4, 15, 30, 0));
    clock_zone_destroy(sydney);
    clock_zone_destroy(lord_howe);
}

/* Every 7 minutes of 2025, the naive local text of an instant parses back to it, except in
 * the repeated hour, where it parses to the earlier instant (one hour before). */
Test(clock_parse, local_text_round_trips_through_a_whole_berlin_year)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    int64_t fall_back = utc(2025, 10, 26, 1, 0, 0);
    for (int64_t ts = utc(2025, 1, 1, 0, 0, 0); ts < utc(2026, 1, 1, 0, 0, 0); ts += 7 * 60 + 1) {
        struct clock_civil c;
        clock_to_local(berlin, ts, &c);
        char text[32];
        snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day,
                 c.hour, c.minute, c.second);
        int64_t want = ts >= fall_back && ts < fall_back + 3600 ? ts - 3600 : ts;
        cr_assert_eq(parse_ok(berlin, text), want, "%s", text);
    }
    clock_zone_destroy(berlin);
}

/* ---- windows ---- */

Test(clock_window, quarter_hours_across_utc_midnight)
{
    struct clock_zone *u = zone_or_die("UTC");
    cr_assert_eq(clock_window_start(u, utc(2025, 2, 14, 23, 59, 59), 900),
                 utc(2025, 2, 14, 23, 45, 0));
    cr_assert_eq(clock_window_start(u, utc(2025, 2, 15, 0, 0, 0), 900), utc(2025, 2, 15, 0, 0, 0));
    cr_assert_eq(clock_window_start(u, utc(2025, 2, 15, 0, 14, 59), 900),
                 utc(2025, 2, 15, 0, 0, 0));
    cr_assert_eq(clock_window_start(u, utc(2025, 2, 14, 2, 8, 59), 900), utc(2025, 2, 14, 2, 0, 0));
    cr_assert_eq(clock_window_start(u, utc(2025, 2, 14, 2, 8, 59), 60), utc(2025, 2, 14, 2, 8, 0));
    cr_assert_eq(clock_window_start(u, -1, 900), -900, "floor for times before the epoch");
    cr_assert_eq(clock_window_start(u, -900, 900), -900);
    clock_zone_destroy(u);
}

Test(clock_window, year_end_closes_the_2345_window_and_opens_a_new_one)
{
    struct clock_zone *u = zone_or_die("UTC");
    int64_t last = parse_ok(u, "2024-12-31 23:59:59");
    int64_t next = parse_ok(u, "2025-01-01 00:00:00");
    cr_assert_eq(clock_window_start(u, last, 900), 1735688700LL); /* 2024-12-31 23:45 */
    cr_assert_eq(clock_window_start(u, next, 900), next);
    cr_assert_eq(next, 1735689600LL);

    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    last = parse_ok(berlin, "2024-12-31 23:59:59");
    next = parse_ok(berlin, "2025-01-01 00:00:00");
    cr_assert_eq(clock_window_start(berlin, last, 900), utc(2024, 12, 31, 22, 45, 0));
    cr_assert_eq(clock_window_start(berlin, next, 900), utc(2024, 12, 31, 23, 0, 0));
    cr_assert_eq(clock_window_start(berlin, next, 86400), next, "local midnight is a boundary");
    cr_assert_eq(clock_window_start(berlin, last, 86400), utc(2024, 12, 30, 23, 0, 0));
    clock_zone_destroy(u);
    clock_zone_destroy(berlin);
}

Test(clock_window, kathmandu_windows_align_on_its_quarter_hour_offset)
{
    struct clock_zone *k = zone_or_die("Asia/Kathmandu"); /* +05:45 */
    int64_t ts = parse_ok(k, "2025-02-14 10:29:13");
    cr_assert_eq(ts, utc(2025, 2, 14, 4, 44, 13));
    cr_assert_eq(clock_window_start(k, ts, 900), parse_ok(k, "2025-02-14 10:15:00"));
    cr_assert_eq(clock_window_start(k, ts, 3600), parse_ok(k, "2025-02-14 10:00:00"));
    cr_assert_eq(clock_window_start(k, ts, 3600), utc(2025, 2, 14, 4, 15, 0));
    cr_assert_eq(clock_window_start(k, ts, 1800), parse_ok(k, "2025-02-14 10:00:00"));
    cr_assert_eq(clock_window_start(k, ts, 86400), utc(2025, 2, 13, 18, 15, 0),
                 "local midnight is 18:15 UTC");
    /* In UTC the hourly window of the same instant starts elsewhere. */
    struct clock_zone *u = zone_or_die("UTC");
    cr_assert_eq(clock_window_start(u, ts, 3600), utc(2025, 2, 14, 4, 0, 0));
    clock_zone_destroy(k);
    clock_zone_destroy(u);
}

/* Walks every second from `from` to `to`, checking each window start is a local boundary that
 * contains ts, and that starts never go back and change exactly at local boundaries. */
static void check_windows_walk(const struct clock_zone *zone, int64_t from, int64_t to,
                               int32_t seconds)
{
    int64_t prev_start = INT64_MIN;
    int starts_seen = 0;
    for (int64_t ts = from; ts <= to; ts++) {
        int64_t start = clock_window_start(zone, ts, seconds);
        cr_assert(start <= ts && ts - start < seconds, "ts %lld start %lld", (long long)ts,
                  (long long)start);
        struct clock_civil c;
        clock_to_local(zone, start, &c);
        cr_assert_eq((c.hour * 3600 + c.minute * 60 + c.second) % seconds, 0,
                     "start %lld is local %02d:%02d:%02d", (long long)start, c.hour, c.minute,
                     c.second);
        cr_assert(start >= prev_start, "window start went back at %lld", (long long)ts);
        if (start != prev_start) {
            if (ts != from)
                cr_assert_eq(start, ts, "a new window must begin at its own first second");
            starts_seen++;
        }
        prev_start = start;
    }
    cr_assert_gt(starts_seen, 1);
}

Test(clock_window, berlin_quarter_hours_around_spring_forward_are_local_and_increasing)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    int64_t change = utc(2025, 3, 30, 1, 0, 0);
    check_windows_walk(berlin, change - 3 * 3600, change + 3 * 3600, 900);
    cr_assert_eq(clock_window_start(berlin, change - 1, 900), change - 900, "01:45 CET");
    cr_assert_eq(clock_window_start(berlin, change, 900), change, "03:00 CEST");
    check_windows_walk(berlin, change - 3 * 3600, change + 3 * 3600, 3600);
    clock_zone_destroy(berlin);
}

Test(clock_window, berlin_quarter_hours_around_fall_back_are_local_and_increasing)
{
    struct clock_zone *berlin = zone_or_die("Europe/Berlin");
    int64_t change = utc(2025, 10, 26, 1, 0, 0);
    check_windows_walk(berlin, change - 3 * 3600, change + 3 * 3600, 900);
    cr_assert_eq(clock_window_start(berlin, change - 1, 900), change - 900, "02:45 CEST");
    cr_assert_eq(clock_window_start(berlin, change, 900), change, "02:00 CET");
    /* The repeated local hour 02:00-03:00 gets two distinct hourly windows. */
    cr_assert_eq(clock_window_start(berlin, change - 1, 3600), change - 3600);
    cr_assert_eq(clock_window_start(berlin, change, 3600), change);
    check_windows_walk(berlin, change - 3 * 3600, change + 3 * 3600, 3600);
    clock_zone_destroy(berlin);
}

Test(clock_window, kathmandu_quarter_hours_walk_a_local_day)
{
    struct clock_zone *k = zone_or_die("Asia/Kathmandu");
    check_windows_walk(k, utc(2025, 2, 13, 17, 0, 0), utc(2025, 2, 13, 20, 0, 0), 900);
    check_windows_walk(k, utc(2025, 2, 13, 17, 0, 0), utc(2025, 2, 13, 20, 0, 0), 3600);
    clock_zone_destroy(k);
}
