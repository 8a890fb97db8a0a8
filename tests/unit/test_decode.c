/* Unit tests of src/decode.c: the sample lines of every topic decode to exact fixed-point
 * readings; ids, offsets and ordering rules; and every kind of malformed message is rejected
 * with its exact error and a precise reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/decode.h"

static struct clock_zone *utc_zone;
static struct decode_config cfg;

static void setup(void)
{
    char err[256];
    utc_zone = clock_zone_new("UTC", err, sizeof(err));
    cr_assert_not_null(utc_zone, "%s", err);
    cfg = (struct decode_config){.default_home_id = 1, .default_panel_id = 4, .zone = utc_zone};
}

static void teardown(void)
{
    clock_zone_destroy(utc_zone);
}

TestSuite(decode, .init = setup, .fini = teardown);

static struct reading out[DECODE_MAX_READINGS + 1];
static char reason[DECODE_REASON_SIZE];

/* Decodes text expecting success; returns the number of readings. */
static size_t decode_ok(enum reading_kind kind, const char *text)
{
    size_t n = 999;
    reason[0] = '\0';
    enum decode_error e =
        decode_message(&cfg, kind, text, strlen(text), out, &n, reason, sizeof(reason));
    cr_assert_eq(e, DECODE_OK, "rejected (%s): %s\npayload: %s", decode_error_name(e), reason,
                 text);
    return n;
}

/* Decodes len bytes expecting error `want` whose reason contains fragment. */
static void decode_fails_len(enum reading_kind kind, const char *payload, size_t len,
                             enum decode_error want, const char *fragment)
{
    size_t n = 999;
    strcpy(reason, "untouched");
    enum decode_error e = decode_message(&cfg, kind, payload, len, out, &n, reason, sizeof(reason));
    cr_assert_eq(e, want, "got %s (%s), want %s\npayload: %.*s", decode_error_name(e), reason,
                 decode_error_name(want), (int)len, payload);
    cr_assert_eq(n, 0, "n_out must be 0 on rejection");
    const char *name = decode_error_name(want);
    cr_assert(strncmp(reason, name, strlen(name)) == 0 && reason[strlen(name)] == ':',
              "reason \"%s\" does not start with \"%s:\"", reason, name);
    cr_assert_not_null(strstr(reason, fragment), "reason \"%s\" lacks \"%s\"", reason, fragment);
    for (const char *p = reason; *p != '\0'; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                  "reason \"%s\" is not printable ASCII", reason);
}

static void decode_fails(enum reading_kind kind, const char *text, enum decode_error want,
                         const char *fragment)
{
    decode_fails_len(kind, text, strlen(text), want, fragment);
}

/* A battery message with one battery whose body is given. */
static const char *battery_msg(const char *key, const char *body)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {\"%s\": %s}}", key, body);
    return buf;
}

#define GOOD_BATTERY                                                                               \
    "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 9860, "              \
    "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3.33}"

/* ---- the samples ---- */

/* Reads line `index` (0-based) of a sample file into buf. */
static void sample_line(const char *file, int index, char *buf, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SOLARX_TEST_DATA, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    for (int i = 0; i <= index; i++)
        cr_assert_not_null(fgets(buf, (int)size, f), "%s has no line %d", path, index + 1);
    fclose(f);
}

static int count_lines(const char *file)
{
    char path[512], buf[8192];
    snprintf(path, sizeof(path), "%s/%s", SOLARX_TEST_DATA, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    int n = 0;
    while (fgets(buf, sizeof(buf), f) != NULL)
        n++;
    fclose(f);
    return n;
}

Test(decode, home_sample_lines_decode_to_exact_values)
{
    static const struct {
        int64_t ts;
        fixed_t energy, accumulated;
    } want[] = {
        {1739498939LL, 930000, 5121330000LL},
        {1739498940LL, 950000, 5122280000LL},
        {1739498941LL, 910000, 5123190000LL},
    };
    cr_assert_eq(count_lines("home_energy_consumption.jsonl"), 3);
    for (int i = 0; i < 3; i++) {
        char line[8192];
        sample_line("home_energy_consumption.jsonl", i, line, sizeof(line));
        cr_assert_eq(decode_ok(READING_HOME, line), 1);
        struct reading expect;
        memset(&expect, 0, sizeof(expect));
        expect.kind = READING_HOME;
        expect.home_id = 1;
        expect.device_id = 1;
        expect.ts = want[i].ts;
        expect.energy_wh = want[i].energy;
        expect.accumulated_wh = want[i].accumulated;
        cr_assert_eq(out[0].ts, expect.ts, "line %d", i + 1);
        cr_assert_eq(out[0].energy_wh, expect.energy_wh, "line %d", i + 1);
        cr_assert_eq(out[0].accumulated_wh, expect.accumulated_wh, "line %d", i + 1);
        cr_assert(memcmp(&out[0], &expect, sizeof(expect)) == 0,
                  "line %d: some other byte differs (unused fields must be zero)", i + 1);
    }
}

Test(decode, solar_sample_lines_decode_to_panel_readings)
{
    static const struct {
        int64_t ts;
        fixed_t energy, accumulated;
    } want[] = {
        {1739498939LL, 0, 0},
        {1739498940LL, 0, 0},
        {1739498941LL, 0, 0},
        {1739536200LL, 2310000, 20877300000LL}, /* 2025-02-14 12:30:00, 2.31, 20877.3 */
    };
    cr_assert_eq(count_lines("solar_energy_data.jsonl"), 4);
    for (int i = 0; i < 4; i++) {
        char line[8192];
        sample_line("solar_energy_data.jsonl", i, line, sizeof(line));
        cr_assert_eq(decode_ok(READING_SOLAR, line), 1);
        cr_assert_eq(out[0].kind, READING_SOLAR);
        cr_assert_eq(out[0].home_id, 1);
        cr_assert_eq(out[0].device_id, 4, "default panel_id");
        cr_assert_eq(out[0].ts, want[i].ts, "line %d", i + 1);
        cr_assert_eq(out[0].energy_wh, want[i].energy, "line %d", i + 1);
        cr_assert_eq(out[0].accumulated_wh, want[i].accumulated, "line %d", i + 1);
    }
}

Test(decode, battery_sample_lines_decode_to_three_sorted_batteries)
{
    static const fixed_t battery3_energy[] = {9993670000LL, 9992870000LL, 9992130000LL};
    cr_assert_eq(count_lines("battery_data.jsonl"), 3);
    for (int i = 0; i < 3; i++) {
        char line[8192];
        sample_line("battery_data.jsonl", i, line, sizeof(line));
        cr_assert_eq(decode_ok(READING_BATTERY, line), 3);
        for (int b = 0; b < 3; b++) {
            const struct reading *r = &out[b];
            cr_assert_eq(r->kind, READING_BATTERY);
            cr_assert_eq(r->home_id, 1);
            cr_assert_eq(r->device_id, b + 1, "battery ids 1..3 in order");
            cr_assert_eq(r->ts, 1739498939LL + i);
            cr_assert_eq(r->capacity_kwh, 12000000LL);
            cr_assert_eq(r->max_charge_speed_w, 1000000LL);
            cr_assert_eq(r->max_output_w, 3330000LL);
            cr_assert_eq(r->is_charging, 0);
            cr_assert_eq(r->accumulated_wh, 0);
        }
        cr_assert_eq(out[0].energy_wh, 9860000000LL);
        cr_assert_eq(out[1].energy_wh, 8600000000LL);
        cr_assert_eq(out[2].energy_wh, battery3_energy[i], "line %d: 9993.67 etc.", i + 1);
        cr_assert_eq(out[0].status, BATTERY_IDLE);
        cr_assert_eq(out[1].status, BATTERY_IDLE);
        cr_assert_eq(out[2].status, BATTERY_DISCHARGING);
    }
}

Test(decode, design_document_examples_decode)
{
    cr_assert_eq(decode_ok(READING_HOME,
                           "{\"time_stamp\": \"2025-02-14 02:09:00\", \"current_consumption_w\": "
                           "0.93, \"consumption_accumulated_w\": 5120.4, "
                           "\"current_consumption_w_accumulated_hourly\": {\"0\": 1200.5, \"1\": "
                           "1100.2, \"2\": 98.1, \"...\": 0}}"),
                 1);
    cr_assert_eq(out[0].accumulated_wh, 5120400000LL);
    cr_assert_eq(decode_ok(READING_BATTERY,
                           "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {"
                           "\"battery_1\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                           "\"current_energy_wh\": 9860, \"is_charging\": 0, \"status\": "
                           "\"ideal\", \"max_output_w\": 3.33},"
                           "\"battery_3\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                           "\"current_energy_wh\": 9993.67, \"is_charging\": 0, \"status\": "
                           "\"discharging\", \"max_output_w\": 3.33}},"
                           "\"hourly_discharging\": {\"0\": 0, \"1\": 0, \"2\": 12.5}}"),
                 2);
    cr_assert_eq(out[1].device_id, 3);
    cr_assert_eq(out[1].energy_wh, 9993670000LL);
}

/* ---- accepted variations ---- */

Test(decode, iso_timestamps_with_offsets_are_accepted)
{
    static const char *const stamps[] = {"2025-02-14T03:08:59+01:00", "2025-02-14T02:08:59Z",
                                         "2025-02-14 07:53:59+0545", "2025-02-13T21:08:59-05",
                                         "2025-02-14T02:08:59.75Z"};
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "{\"time_stamp\": \"%s\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 stamps[i]);
        decode_ok(READING_HOME, msg);
        cr_assert_eq(out[0].ts, 1739498939LL, "%s", stamps[i]);
    }
}

Test(decode, naive_timestamps_follow_the_configured_zone)
{
    char err[256];
    struct clock_zone *berlin = clock_zone_new("Europe/Berlin", err, sizeof(err));
    cr_assert_not_null(berlin, "%s", err);
    cfg.zone = berlin;
    decode_ok(READING_HOME, "{\"time_stamp\": \"2025-02-14 02:08:59\", "
                            "\"current_consumption_w\": 1, \"consumption_accumulated_w\": 2}");
    cr_assert_eq(out[0].ts, 1739498939LL - 3600);
    decode_ok(READING_HOME, "{\"time_stamp\": \"2025-10-26 02:30:00\", "
                            "\"current_consumption_w\": 1, \"consumption_accumulated_w\": 2}");
    cr_assert_eq(out[0].ts, 1761438600LL, "repeated hour: the earlier instant");
    decode_fails(READING_HOME,
                 "{\"time_stamp\": \"2025-03-30 02:30:00\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_BAD_TIMESTAMP, "does not exist in Europe/Berlin");
    cfg.zone = utc_zone;
    clock_zone_destroy(berlin);
}

Test(decode, home_id_and_panel_id_override_the_defaults)
{
    static const char *const flow = "\"time_stamp\": \"2025-02-14 02:08:59\", "
                                    "\"current_consumption_w\": 1, "
                                    "\"consumption_accumulated_w\": 2";
    char msg[512];

    snprintf(msg, sizeof(msg), "{%s, \"home_id\": 7}", flow);
    decode_ok(READING_HOME, msg);
    cr_assert_eq(out[0].home_id, 7);
    cr_assert_eq(out[0].device_id, 7, "a home reading's device is the home");

    snprintf(msg, sizeof(msg), "{%s, \"home_id\": 7, \"panel_id\": 9}", flow);
    decode_ok(READING_SOLAR, msg);
    cr_assert_eq(out[0].home_id, 7);
    cr_assert_eq(out[0].device_id, 9);

    snprintf(msg, sizeof(msg), "{%s, \"panel_id\": 2147483647}", flow);
    decode_ok(READING_SOLAR, msg);
    cr_assert_eq(out[0].home_id, 1);
    cr_assert_eq(out[0].device_id, 2147483647);

    snprintf(msg, sizeof(msg), "{%s, \"panel_id\": \"not checked for home\"}", flow);
    decode_ok(READING_HOME, msg);
    cr_assert_eq(out[0].device_id, 1, "panel_id is not a field of the home topic");

    cfg.default_home_id = 42;
    cfg.default_panel_id = 43;
    snprintf(msg, sizeof(msg), "{%s}", flow);
    decode_ok(READING_SOLAR, msg);
    cr_assert_eq(out[0].home_id, 42);
    cr_assert_eq(out[0].device_id, 43);

    cr_assert_eq(decode_ok(READING_BATTERY,
                           "{\"home_id\": 3, \"time_stamp\": \"2025-02-14 02:08:59\", "
                           "\"batteries\": {\"battery_2\": " GOOD_BATTERY
                           ", \"battery_1\": " GOOD_BATTERY "}}"),
                 2);
    cr_assert_eq(out[0].home_id, 3);
    cr_assert_eq(out[1].home_id, 3);
    cr_assert_eq(decode_ok(READING_BATTERY, battery_msg("battery_5", GOOD_BATTERY)), 1);
    cr_assert_eq(out[0].home_id, 42, "battery default home");
    cr_assert_eq(out[0].device_id, 5);
}

Test(decode, batteries_come_out_sorted_by_id_whatever_the_key_order)
{
    cr_assert_eq(decode_ok(READING_BATTERY,
                           "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {"
                           "\"battery_10\": " GOOD_BATTERY ", \"battery_2\": " GOOD_BATTERY
                           ", \"battery_2147483647\": " GOOD_BATTERY
                           ", \"battery_1\": " GOOD_BATTERY "}}"),
                 4);
    cr_assert_eq(out[0].device_id, 1);
    cr_assert_eq(out[1].device_id, 2);
    cr_assert_eq(out[2].device_id, 10);
    cr_assert_eq(out[3].device_id, 2147483647);
}

Test(decode, battery_flags_accept_booleans_and_all_statuses)
{
    decode_ok(READING_BATTERY,
              battery_msg("battery_1", "{\"capacity_kwh\": 13.5, \"max_charge_speed_w\": 0, "
                                       "\"current_energy_wh\": 13500, \"is_charging\": true, "
                                       "\"status\": \"charging\", \"max_output_w\": 0, "
                                       "\"extra\": [1, 2]}"));
    cr_assert_eq(out[0].is_charging, 1);
    cr_assert_eq(out[0].status, BATTERY_CHARGING);
    cr_assert_eq(out[0].capacity_kwh, 13500000LL);
    cr_assert_eq(out[0].energy_wh, 13500000000LL, "energy equal to capacity is allowed");
    decode_ok(READING_BATTERY,
              battery_msg("battery_1", "{\"capacity_kwh\": 1, \"max_charge_speed_w\": 0, "
                                       "\"current_energy_wh\": 0, \"is_charging\": false, "
                                       "\"status\": \"discharging\", \"max_output_w\": 0}"));
    cr_assert_eq(out[0].is_charging, 0);
    cr_assert_eq(out[0].status, BATTERY_DISCHARGING);
    decode_ok(READING_BATTERY,
              battery_msg("battery_1", "{\"capacity_kwh\": 1, \"max_charge_speed_w\": 0, "
                                       "\"current_energy_wh\": 0, \"is_charging\": 1, "
                                       "\"status\": \"ideal\", \"max_output_w\": 0}"));
    cr_assert_eq(out[0].is_charging, 1);
    cr_assert_eq(out[0].status, BATTERY_IDLE);
}

Test(decode, numbers_convert_exactly_to_millionths)
{
    static const struct {
        const char *json;
        fixed_t want;
    } cases[] = {
        {"0", 0},
        {"0.0", 0},
        {"-0", 0},
        {"0.000001", 1},
        {"0.000278", 278},
        {"9993.67", 9993670000LL},
        {"1e3", 1000000000LL},
        {"2.5E-1", 250000},
        {"0.0000004", 0},
        {"1000000000", 1000000000000000LL},
        {"123456.789012", 123456789012LL},
        {"5120.4", 5120400000LL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "{\"time_stamp\": \"2025-02-14 02:08:59\", \"current_consumption_w\": %s, "
                 "\"consumption_accumulated_w\": %s}",
                 cases[i].json, cases[i].json);
        decode_ok(READING_HOME, msg);
        cr_expect_eq(out[0].energy_wh, cases[i].want, "%s -> %lld", cases[i].json,
                     (long long)out[0].energy_wh);
        cr_expect_eq(out[0].accumulated_wh, cases[i].want, "%s", cases[i].json);
    }
}

Test(decode, surrounding_whitespace_and_unknown_keys_are_ignored)
{
    decode_ok(READING_SOLAR,
              " \n\t{\"time_stamp\": \"2025-02-14 02:08:59\", \"current_consumption_w\": 1.5, "
              "\"consumption_accumulated_w\": 2, \"firmware\": {\"v\": [1, null]}, "
              "\"batteries\": 5}\r\n ");
    cr_assert_eq(out[0].energy_wh, 1500000);
}

Test(decode, payload_need_not_be_nul_terminated)
{
    const char text[] = "{\"time_stamp\": \"2025-02-14 02:08:59\", \"current_consumption_w\": 1, "
                        "\"consumption_accumulated_w\": 2}GARBAGE";
    size_t len = strlen(text) - strlen("GARBAGE");
    size_t n = 0;
    cr_assert_eq(decode_message(&cfg, READING_HOME, text, len, out, &n, reason, sizeof(reason)),
                 DECODE_OK, "%s", reason);
    cr_assert_eq(n, 1);
}

Test(decode, sixty_four_batteries_fit_and_sixty_five_are_too_many)
{
    static char msg[32768];
    for (int count = 64; count <= 65; count++) {
        size_t pos = (size_t)snprintf(msg, sizeof(msg),
                                      "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {");
        for (int b = count; b >= 1; b--)
            pos += (size_t)snprintf(msg + pos, sizeof(msg) - pos, "%s\"battery_%d\": %s",
                                    b == count ? "" : ", ", b, GOOD_BATTERY);
        snprintf(msg + pos, sizeof(msg) - pos, "}}");
        if (count == 64) {
            cr_assert_eq(decode_ok(READING_BATTERY, msg), 64);
            for (int b = 0; b < 64; b++)
                cr_assert_eq(out[b].device_id, b + 1);
        } else {
            decode_fails(READING_BATTERY, msg, DECODE_TOO_MANY_READINGS,
                         "\"batteries\" has 65 entries, at most 64");
        }
    }
}

/* ---- rejections ---- */

Test(decode, error_names_are_stable_snake_case_labels)
{
    static const char *const names[DECODE_ERROR_COUNT] = {
        "ok",
        "invalid_json",
        "invalid_utf8",
        "duplicate_key",
        "not_object",
        "missing_field",
        "wrong_type",
        "out_of_range",
        "bad_timestamp",
        "unknown_status",
        "bad_battery_id",
        "too_many_readings",
        "unknown_kind",
        "future_timestamp",
        "too_large",
        "postgres_rejected",
    };
    for (int e = 0; e < DECODE_ERROR_COUNT; e++)
        cr_assert_str_eq(decode_error_name((enum decode_error)e), names[e]);
    cr_assert_str_eq(decode_error_name((enum decode_error)DECODE_ERROR_COUNT), "unknown");
    cr_assert_str_eq(decode_error_name((enum decode_error) - 1), "unknown");
}

Test(decode, reasons_match_the_documented_examples_exactly)
{
    decode_fails(READING_HOME, "{\"current_consumption_w\": 1, \"consumption_accumulated_w\": 2}",
                 DECODE_MISSING_FIELD, "");
    cr_assert_str_eq(reason, "missing_field: \"time_stamp\" is required");
    decode_fails(
        READING_BATTERY,
        "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {\"battery_1\": " GOOD_BATTERY
        ", \"battery_3\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": "
        "1, \"current_energy_wh\": 13000, \"is_charging\": 0, \"status\": \"ideal\", "
        "\"max_output_w\": 3.33}}}",
        DECODE_OUT_OF_RANGE, "");
    cr_assert_str_eq(reason,
                     "out_of_range: battery_3.current_energy_wh 13000 exceeds capacity 12 kWh");
}

#define FLOW_TS "\"time_stamp\": \"2025-02-14 02:08:59\""
#define FLOW_OK FLOW_TS ", \"current_consumption_w\": 1, \"consumption_accumulated_w\": 2"

Test(decode, malformed_json_is_invalid_json)
{
    decode_fails(READING_HOME, "", DECODE_INVALID_JSON, "empty payload");
    decode_fails(READING_HOME, " \r\n\t ", DECODE_INVALID_JSON, "empty payload");
    decode_fails_len(READING_HOME, NULL, 0, DECODE_INVALID_JSON, "empty payload");
    decode_fails(READING_HOME, "{", DECODE_INVALID_JSON, "line 1");
    decode_fails(READING_HOME, "{" FLOW_OK, DECODE_INVALID_JSON, "'}' expected");
    decode_fails(READING_HOME, "{" FLOW_OK "} trailing", DECODE_INVALID_JSON,
                 "end of file expected");
    decode_fails(READING_HOME, "{" FLOW_OK "}{" FLOW_OK "}", DECODE_INVALID_JSON,
                 "end of file expected");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": NaN, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_INVALID_JSON, "invalid token near 'NaN'");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": Infinity, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_INVALID_JSON, "invalid token");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": 1e999, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_INVALID_JSON, "real number overflow");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": 99999999999999999999, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_INVALID_JSON, "too big integer");
    decode_fails(READING_HOME, "{" FLOW_OK ",}", DECODE_INVALID_JSON, "line 1 column");
    decode_fails(READING_HOME, "{'time_stamp': 1}", DECODE_INVALID_JSON, "string or '}' expected");
    decode_fails(READING_HOME, "{\"time_stamp\": \"2025-02-14 02:08:59\\u0000\"}",
                 DECODE_INVALID_JSON, "\\u0000 is not allowed");
    static const char with_nul[] = "{\"time_stamp\": \"x\"}\0";
    decode_fails_len(READING_HOME, with_nul, sizeof(with_nul) - 1, DECODE_INVALID_JSON,
                     "end of file expected");
}

Test(decode, non_utf8_is_invalid_utf8_and_duplicates_are_duplicate_key)
{
    decode_fails(READING_HOME, "{\"time_stamp\": \"2025-02-14 02:08:59\xff\"}", DECODE_INVALID_UTF8,
                 "unable to decode byte 0xff");
    decode_fails(READING_HOME, "{\"\xc3\x28\": 1}", DECODE_INVALID_UTF8, "unable to decode");
    decode_fails(READING_HOME, "{" FLOW_OK ", \"time_stamp\": \"2025-02-14 02:09:00\"}",
                 DECODE_DUPLICATE_KEY, "duplicate object key near '\"time_stamp\"'");
    decode_fails(READING_BATTERY,
                 "{" FLOW_TS ", \"batteries\": {\"battery_1\": " GOOD_BATTERY
                 ", \"battery_1\": " GOOD_BATTERY "}}",
                 DECODE_DUPLICATE_KEY, "duplicate object key");
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": 12, \"capacity_kwh\": 13}"),
                 DECODE_DUPLICATE_KEY, "duplicate object key");
}

Test(decode, top_level_must_be_an_object)
{
    decode_fails(READING_HOME, "[1, 2]", DECODE_NOT_OBJECT, "top level is array, not an object");
    decode_fails(READING_HOME, "42", DECODE_NOT_OBJECT, "top level is integer");
    decode_fails(READING_SOLAR, "\"2025-02-14 02:08:59\"", DECODE_NOT_OBJECT,
                 "top level is string");
    decode_fails(READING_BATTERY, "null", DECODE_NOT_OBJECT, "top level is null");
    decode_fails(READING_BATTERY, "true", DECODE_NOT_OBJECT, "top level is boolean");
}

Test(decode, missing_required_fields_are_named)
{
    decode_fails(READING_HOME, "{}", DECODE_MISSING_FIELD, "\"time_stamp\" is required");
    decode_fails(READING_HOME, "{" FLOW_TS ", \"consumption_accumulated_w\": 2}",
                 DECODE_MISSING_FIELD, "\"current_consumption_w\" is required");
    decode_fails(READING_SOLAR, "{" FLOW_TS ", \"current_consumption_w\": 2}", DECODE_MISSING_FIELD,
                 "\"consumption_accumulated_w\" is required");
    decode_fails(READING_BATTERY, "{" FLOW_TS "}", DECODE_MISSING_FIELD,
                 "\"batteries\" is required");
    decode_fails(READING_BATTERY, "{" FLOW_TS ", \"batteries\": {}}", DECODE_MISSING_FIELD,
                 "\"batteries\" has no battery");
    static const char *const fields[] = {
        "capacity_kwh", "max_charge_speed_w", "current_energy_wh", "is_charging",
        "status",       "max_output_w"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        /* GOOD_BATTERY with one field renamed away. */
        char body[512], want[96];
        snprintf(body, sizeof(body), "%s", GOOD_BATTERY);
        char *at = strstr(body, fields[i]);
        cr_assert_not_null(at);
        at[0] = 'X';
        snprintf(want, sizeof(want), "\"battery_2.%s\" is required", fields[i]);
        decode_fails(READING_BATTERY, battery_msg("battery_2", body), DECODE_MISSING_FIELD, want);
    }
}

Test(decode, wrong_json_types_are_named_with_what_was_found)
{
    decode_fails(READING_HOME,
                 "{\"time_stamp\": 1739498939, \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_WRONG_TYPE, "\"time_stamp\" must be a string, got integer");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": \"0.93\", "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_WRONG_TYPE, "\"current_consumption_w\" must be a number, got string");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": null, \"consumption_accumulated_w\": 2}",
                 DECODE_WRONG_TYPE, "must be a number, got null");
    decode_fails(READING_SOLAR,
                 "{" FLOW_TS ", \"current_consumption_w\": 1, \"consumption_accumulated_w\": true}",
                 DECODE_WRONG_TYPE, "\"consumption_accumulated_w\" must be a number, got boolean");
    decode_fails(READING_HOME, "{" FLOW_OK ", \"home_id\": \"1\"}", DECODE_WRONG_TYPE,
                 "\"home_id\" must be an integer, got string");
    decode_fails(READING_HOME, "{" FLOW_OK ", \"home_id\": 1.0}", DECODE_WRONG_TYPE,
                 "\"home_id\" must be an integer, got real");
    decode_fails(READING_SOLAR, "{" FLOW_OK ", \"panel_id\": null}", DECODE_WRONG_TYPE,
                 "\"panel_id\" must be an integer, got null");
    decode_fails(READING_BATTERY, "{" FLOW_TS ", \"batteries\": [1]}", DECODE_WRONG_TYPE,
                 "\"batteries\" must be an object, got array");
    decode_fails(READING_BATTERY, battery_msg("battery_1", "3"), DECODE_WRONG_TYPE,
                 "\"battery_1\" must be an object, got integer");
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": [12], \"max_charge_speed_w\": 1}"),
                 DECODE_WRONG_TYPE, "\"battery_1.capacity_kwh\" must be a number, got array");
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                                          "\"current_energy_wh\": 5, \"is_charging\": \"0\"}"),
                 DECODE_WRONG_TYPE, "\"battery_1.is_charging\" must be 0, 1, true or false");
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                                          "\"current_energy_wh\": 5, \"is_charging\": 1.0}"),
                 DECODE_WRONG_TYPE, "got real");
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                                          "\"current_energy_wh\": 5, \"is_charging\": 0, "
                                          "\"status\": 0}"),
                 DECODE_WRONG_TYPE, "\"battery_1.status\" must be a string, got integer");
}

Test(decode, out_of_range_numbers_and_ids_are_rejected)
{
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": -0.5, \"consumption_accumulated_w\": 2}",
                 DECODE_OUT_OF_RANGE, "current_consumption_w -0.5 is negative");
    decode_fails(READING_SOLAR,
                 "{" FLOW_TS ", \"current_consumption_w\": 0, \"consumption_accumulated_w\": -1}",
                 DECODE_OUT_OF_RANGE, "consumption_accumulated_w -1 is negative");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": 1e13, \"consumption_accumulated_w\": 2}",
                 DECODE_OUT_OF_RANGE,
                 "current_consumption_w 10000000000000 exceeds "
                 "1000000000 in magnitude");
    decode_fails(READING_HOME,
                 "{" FLOW_TS ", \"current_consumption_w\": 1000000000001, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_OUT_OF_RANGE, "current_consumption_w 1000000000001 exceeds");
    decode_fails(READING_HOME, "{" FLOW_OK ", \"home_id\": 0}", DECODE_OUT_OF_RANGE,
                 "home_id 0 out of range 1..2147483647");
    decode_fails(READING_HOME, "{" FLOW_OK ", \"home_id\": -4}", DECODE_OUT_OF_RANGE,
                 "home_id -4 out of range");
    decode_fails(READING_BATTERY,
                 "{" FLOW_TS
                 ", \"home_id\": 2147483648, \"batteries\": {\"battery_1\": " GOOD_BATTERY "}}",
                 DECODE_OUT_OF_RANGE, "home_id 2147483648 out of range");
    decode_fails(READING_SOLAR, "{" FLOW_OK ", \"panel_id\": 0}", DECODE_OUT_OF_RANGE,
                 "panel_id 0 out of range");
}

Test(decode, battery_bounds_are_checked_per_field)
{
    static const struct {
        const char *body;
        const char *reason;
    } cases[] = {
        {"{\"capacity_kwh\": 0, \"max_charge_speed_w\": 1, \"current_energy_wh\": 0, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.capacity_kwh 0 must be positive"},
        {"{\"capacity_kwh\": -12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 0, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.capacity_kwh -12 must be positive"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": -1, \"current_energy_wh\": 0, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.max_charge_speed_w -1 is negative"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": -0.01, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.current_energy_wh -0.01 is negative"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 12000.000001, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.current_energy_wh 12000.000001 exceeds capacity 12 kWh"},
        {"{\"capacity_kwh\": 0.5, \"max_charge_speed_w\": 1, \"current_energy_wh\": 501, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.current_energy_wh 501 exceeds capacity 0.5 kWh"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 1, "
         "\"is_charging\": 2, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.is_charging 2 must be 0 or 1"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 1, "
         "\"is_charging\": -1, \"status\": \"ideal\", \"max_output_w\": 1}",
         "battery_4.is_charging -1 must be 0 or 1"},
        {"{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 1, "
         "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": -3.33}",
         "battery_4.max_output_w -3.33 is negative"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        decode_fails(READING_BATTERY, battery_msg("battery_4", cases[i].body), DECODE_OUT_OF_RANGE,
                     cases[i].reason);
}

Test(decode, battery_status_must_be_a_producer_word)
{
    static const char *const bad[] = {"idle", "IDEAL", "Charging", "", "ideal ", "unknown"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[512], want[128];
        snprintf(body, sizeof(body),
                 "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 1, "
                 "\"is_charging\": 0, \"status\": \"%s\", \"max_output_w\": 1}",
                 bad[i]);
        snprintf(want, sizeof(want),
                 "battery_1.status \"%s\" is not one of \"ideal\", \"charging\", \"discharging\"",
                 bad[i]);
        decode_fails(READING_BATTERY, battery_msg("battery_1", body), DECODE_UNKNOWN_STATUS, want);
    }
    decode_fails(READING_BATTERY,
                 battery_msg("battery_1", "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                                          "\"current_energy_wh\": 1, \"is_charging\": 0, "
                                          "\"status\": \"\xc3\xa9t\xc3\xa9\"}"),
                 DECODE_UNKNOWN_STATUS, "battery_1.status \"??t??\"");
}

Test(decode, battery_keys_must_be_battery_and_a_positive_plain_integer)
{
    static const char *const bad[] = {
        "battery_0",
        "battery_01",
        "battery_-1",
        "battery_+1",
        "battery_1x",
        "battery_",
        "Battery_1",
        "bat_1",
        "battery_ 1",
        "battery_1.0",
        "battery_1e2",
        "battery_2147483648",
        "battery_99999999999999999999",
        "1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "key \"%s\" is not battery_<N>", bad[i]);
        decode_fails(READING_BATTERY, battery_msg(bad[i], GOOD_BATTERY), DECODE_BAD_BATTERY_ID,
                     want);
    }
}

Test(decode, one_bad_battery_rejects_the_whole_message)
{
    decode_fails(READING_BATTERY,
                 "{" FLOW_TS ", \"batteries\": {\"battery_1\": " GOOD_BATTERY
                 ", \"battery_2\": " GOOD_BATTERY
                 ", \"battery_3\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                 "\"current_energy_wh\": 1, \"is_charging\": 0, \"status\": \"on\", "
                 "\"max_output_w\": 1}}}",
                 DECODE_UNKNOWN_STATUS, "battery_3.status \"on\"");
    decode_fails(READING_BATTERY,
                 "{" FLOW_TS ", \"batteries\": {\"battery_1\": " GOOD_BATTERY
                 ", \"battery_x\": " GOOD_BATTERY "}}",
                 DECODE_BAD_BATTERY_ID, "battery_x");
}

Test(decode, bad_timestamps_quote_the_text_and_the_clock_reason)
{
    decode_fails(READING_HOME,
                 "{\"time_stamp\": \"2025-02-30 00:00:00\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_BAD_TIMESTAMP,
                 "bad_timestamp: \"2025-02-30 00:00:00\": day 30 out of range for 2025-02");
    decode_fails(READING_SOLAR,
                 "{\"time_stamp\": \"2025-02-14 02:08:59 junk\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_BAD_TIMESTAMP, "unexpected ' ' at position 19");
    decode_fails(READING_BATTERY,
                 "{\"time_stamp\": \"\", \"batteries\": {\"battery_1\": " GOOD_BATTERY "}}",
                 DECODE_BAD_TIMESTAMP, "empty timestamp");
    decode_fails(READING_HOME,
                 "{\"time_stamp\": \"14/02/2025 02:08:59\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_BAD_TIMESTAMP, "expected 4-digit year");
    decode_fails(READING_HOME,
                 "{\"time_stamp\": \"2025-02-14T02:08:59+19:00\", \"current_consumption_w\": 1, "
                 "\"consumption_accumulated_w\": 2}",
                 DECODE_BAD_TIMESTAMP, "UTC offset 19:00 beyond 18:00");
}

Test(decode, unknown_kind_is_a_caller_error)
{
    decode_fails(7, "{" FLOW_OK "}", DECODE_UNKNOWN_KIND, "reading kind 7");
}

Test(decode, tiny_or_null_reason_buffers_are_safe)
{
    size_t n;
    char tiny[6];
    cr_assert_eq(decode_message(&cfg, READING_HOME, "{}", 2, out, &n, tiny, sizeof(tiny)),
                 DECODE_MISSING_FIELD);
    cr_assert_str_eq(tiny, "missi");
    cr_assert_eq(decode_message(&cfg, READING_HOME, "[]", 2, out, &n, NULL, 0), DECODE_NOT_OBJECT);
}

/* Cheap fuzzing: every truncation and many byte flips of the sample battery line either decode
 * or fail with a labelled reason, and never crash or leak (run under ASan). */
Test(decode, truncations_and_byte_flips_never_crash)
{
    char line[8192];
    sample_line("battery_data.jsonl", 0, line, sizeof(line));
    size_t len = strlen(line);
    int accepted = 0, rejected = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        size_t n;
        enum decode_error e =
            decode_message(&cfg, READING_BATTERY, line, cut, out, &n, reason, sizeof(reason));
        if (e == DECODE_OK) {
            accepted++;
        } else {
            rejected++;
            cr_assert(strncmp(reason, decode_error_name(e), strlen(decode_error_name(e))) == 0);
        }
    }
    cr_assert_geq(accepted, 1, "the whole line (with or without its newline) decodes");
    cr_assert_gt(rejected, (int)len - 3);

    unsigned seed = 12345;
    static const char flips[] = "{}[]\",:0123456789.-eE \xff\x80tfn_x";
    for (int round = 0; round < 20000; round++) {
        char copy[8192];
        memcpy(copy, line, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            copy[pos] = flips[(seed >> 8) % (sizeof(flips) - 1)];
        }
        size_t n = 0;
        enum decode_error e =
            decode_message(&cfg, READING_BATTERY, copy, len, out, &n, reason, sizeof(reason));
        cr_assert(e == DECODE_OK ? n >= 1 && n <= 3 : n == 0);
        if (e != DECODE_OK)
            cr_assert(strncmp(reason, decode_error_name(e), strlen(decode_error_name(e))) == 0,
                      "%s", reason);
    }
}

/* ---- the wall clock: future and pre-1970 readings ---- */

static const char *home_at(const char *ts, char *buf, size_t size)
{
    snprintf(buf, size,
             "{\"time_stamp\": \"%s\", \"current_consumption_w\": 0.5,"
             " \"consumption_accumulated_w\": 10}",
             ts);
    return buf;
}

Test(decode, readings_beyond_max_future_seconds_are_future_timestamp)
{
    char msg[256];
    cfg.now = 1739498940; /* 2025-02-14 02:09:00 UTC */
    cfg.max_future_seconds = 86400;
    cr_assert_eq(decode_ok(READING_HOME, home_at("2025-02-15 02:09:00", msg, sizeof(msg))), 1);
    decode_fails(READING_HOME, home_at("2025-02-15 02:09:01", msg, sizeof(msg)),
                 DECODE_FUTURE_TIMESTAMP,
                 "is 86401 s ahead of the clock (max_future_seconds = 86400)");
    decode_fails(READING_HOME, home_at("2036-12-02 10:00:00", msg, sizeof(msg)),
                 DECODE_FUTURE_TIMESTAMP, "\"2036-12-02 10:00:00\"");
    decode_fails(READING_HOME, home_at("9999-12-31 23:59:59", msg, sizeof(msg)),
                 DECODE_FUTURE_TIMESTAMP, "\"9999-12-31 23:59:59\" is 251");
    decode_fails(READING_HOME, home_at("9999-12-31T23:59:59-14:00", msg, sizeof(msg)),
                 DECODE_FUTURE_TIMESTAMP, "ahead of the clock");
    decode_fails(READING_BATTERY,
                 "{\"time_stamp\": \"9999-12-31 23:59:59\", \"batteries\": {\"battery_1\":"
                 " {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 9860,"
                 " \"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3.33}}}",
                 DECODE_FUTURE_TIMESTAMP, "ahead of the clock");
    /* The past is never too far: late data merges. */
    cr_assert_eq(decode_ok(READING_HOME, home_at("1970-01-01 00:00:00", msg, sizeof(msg))), 1);
    cr_assert_eq(out[0].ts, 0);
}

Test(decode, no_clock_means_no_future_check)
{
    char msg[256];
    cfg.now = 0;
    cfg.max_future_seconds = 0;
    cr_assert_eq(decode_ok(READING_HOME, home_at("9999-12-31 23:59:59", msg, sizeof(msg))), 1);
    cr_assert_eq(out[0].ts, 253402300799LL);
}

Test(decode, readings_before_1970_utc_are_bad_timestamp)
{
    char msg[256];
    cfg.now = 1739498940;
    cfg.max_future_seconds = 86400;
    decode_fails(READING_HOME, home_at("1969-12-31 23:59:59", msg, sizeof(msg)),
                 DECODE_BAD_TIMESTAMP, "year 1969 out of range");
    decode_fails(READING_HOME, home_at("0001-01-01 00:00:00", msg, sizeof(msg)),
                 DECODE_BAD_TIMESTAMP, "out of range");
    /* 1970 local, 1969 in UTC once the offset is applied. */
    decode_fails(READING_HOME, home_at("1970-01-01T00:30:00+01:00", msg, sizeof(msg)),
                 DECODE_BAD_TIMESTAMP, "is before 1970-01-01 00:00:00 UTC");
    cr_assert_eq(decode_ok(READING_HOME, home_at("1970-01-01T01:00:00+01:00", msg, sizeof(msg))),
                 1);
    cr_assert_eq(out[0].ts, 0);
}

Test(decode, a_zone_east_of_utc_moves_early_1970_before_the_epoch)
{
    char err[256], msg[256];
    struct clock_zone *paris = clock_zone_new("Europe/Paris", err, sizeof(err));
    cr_assert_not_null(paris, "%s", err);
    cfg.zone = paris;
    decode_fails(READING_HOME, home_at("1970-01-01 00:59:59", msg, sizeof(msg)),
                 DECODE_BAD_TIMESTAMP, "before 1970-01-01");
    cr_assert_eq(decode_ok(READING_HOME, home_at("1970-01-01 01:00:00", msg, sizeof(msg))), 1);
    cfg.zone = utc_zone;
    clock_zone_destroy(paris);
}

Test(decode, oversized_payloads_are_too_large_before_any_parsing)
{
    char why[DECODE_REASON_SIZE];
    cr_assert_eq(decode_check_size(1048576, 1048576, why, sizeof(why)), DECODE_OK);
    cr_assert_eq(decode_check_size(1048577, 1048576, why, sizeof(why)), DECODE_TOO_LARGE);
    cr_assert_str_eq(why, "too_large: payload of 1048577 bytes exceeds max_message_bytes = "
                          "1048576; its first 65536 bytes, length and SHA-256 are kept");
}
