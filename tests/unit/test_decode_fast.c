/* Unit tests of src/decode_fast.c, against the jansson path (decode_jansson) as the oracle: every
 * sample and simulated message decodes fast to memcmp-equal readings; numbers convert to the same
 * millionths as through jansson's strtod; and every unusual or invalid input defers, so that
 * decode_message still returns exactly jansson's result and reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "sim.h"

static struct clock_zone *utc_zone, *berlin_zone;
static struct decode_config cfg;

static void setup(void)
{
    char err[256];
    utc_zone = clock_zone_new("UTC", err, sizeof(err));
    cr_assert_not_null(utc_zone, "%s", err);
    berlin_zone = clock_zone_new("Europe/Berlin", err, sizeof(err));
    cr_assert_not_null(berlin_zone, "%s", err);
    cfg = (struct decode_config){.default_home_id = 1, .default_panel_id = 4, .zone = utc_zone};
}

static void teardown(void)
{
    clock_zone_destroy(utc_zone);
    clock_zone_destroy(berlin_zone);
}

TestSuite(decode_fast, .init = setup, .fini = teardown);

/* What one path made of a payload. */
struct outcome {
    enum decode_error e;
    size_t n;
    struct reading out[DECODE_MAX_READINGS];
    char reason[DECODE_REASON_SIZE];
};

static void by_jansson(enum reading_kind kind, const char *p, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->e = decode_jansson(&cfg, kind, p, len, o->out, &o->n, o->reason, sizeof(o->reason));
}

static void by_message(enum reading_kind kind, const char *p, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->e = decode_message(&cfg, kind, p, len, o->out, &o->n, o->reason, sizeof(o->reason));
}

/* Whether the fast path decodes p; if so, its readings go to o (e = DECODE_OK). */
static bool by_fast(enum reading_kind kind, const char *p, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    /* An exact copy, so that a read past the payload's end is a sanitizer finding. */
    char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, p, len);
    bool fast = decode_fast(&cfg, kind, copy, len, o->out, &o->n);
    free(copy);
    o->e = DECODE_OK;
    return fast;
}

static void assert_same_readings(const struct outcome *got, const struct outcome *want,
                                 const char *p, size_t len)
{
    cr_assert_eq(got->n, want->n, "%zu readings, jansson %zu\npayload: %.*s", got->n, want->n,
                 (int)len, p);
    for (size_t i = 0; i < want->n; i++)
        cr_assert(memcmp(&got->out[i], &want->out[i], sizeof(struct reading)) == 0,
                  "reading %zu differs from jansson's (energy %lld vs %lld, accumulated %lld vs "
                  "%lld, device %d vs %d)\npayload: %.*s",
                  i, (long long)got->out[i].energy_wh, (long long)want->out[i].energy_wh,
                  (long long)got->out[i].accumulated_wh, (long long)want->out[i].accumulated_wh,
                  got->out[i].device_id, want->out[i].device_id, (int)len, p);
}

/* p must decode fast, to what jansson makes of it. */
static void fast_equals_jansson_len(enum reading_kind kind, const char *p, size_t len)
{
    struct outcome fast, jansson;
    by_jansson(kind, p, len, &jansson);
    cr_assert_eq(jansson.e, DECODE_OK, "jansson rejects (%s)\npayload: %.*s", jansson.reason,
                 (int)len, p);
    cr_assert(by_fast(kind, p, len, &fast), "deferred\npayload: %.*s", (int)len, p);
    assert_same_readings(&fast, &jansson, p, len);
}

static void fast_equals_jansson(enum reading_kind kind, const char *p)
{
    fast_equals_jansson_len(kind, p, strlen(p));
}

/* decode_message must return exactly what jansson alone returns (result, readings, reason). */
static void message_equals_jansson(enum reading_kind kind, const char *p, size_t len)
{
    struct outcome msg, jansson;
    by_jansson(kind, p, len, &jansson);
    by_message(kind, p, len, &msg);
    cr_assert_eq(msg.e, jansson.e, "decode_message %s, jansson %s\npayload: %.*s",
                 decode_error_name(msg.e), decode_error_name(jansson.e), (int)len, p);
    assert_same_readings(&msg, &jansson, p, len);
    cr_assert_str_eq(msg.reason, jansson.reason, "payload: %.*s", (int)len, p);
}

/* p must not decode fast, and decode_message must still return jansson's answer. */
static void defers_len(enum reading_kind kind, const char *p, size_t len)
{
    struct outcome fast;
    cr_assert_not(by_fast(kind, p, len, &fast), "decoded fast, should defer\npayload: %.*s",
                  (int)len, p);
    message_equals_jansson(kind, p, len);
}

static void defers(enum reading_kind kind, const char *p)
{
    defers_len(kind, p, strlen(p));
}

/* Every line of a data file: jansson's valid lines decode fast and equal, the others defer. */
static int check_file(const char *path, enum reading_kind kind)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int valid = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct outcome jansson;
        by_jansson(kind, line, (size_t)n, &jansson);
        if (jansson.e == DECODE_OK) {
            fast_equals_jansson_len(kind, line, (size_t)n);
            valid++;
        } else {
            defers_len(kind, line, (size_t)n);
        }
    }
    free(line);
    fclose(f);
    return valid;
}

Test(decode_fast, every_sample_line_decodes_fast_and_equals_jansson)
{
    static const struct {
        const char *file;
        enum reading_kind kind;
        int valid;
    } files[] = {
        {"home_energy_consumption.jsonl", READING_HOME, 3},
        {"solar_energy_data.jsonl", READING_SOLAR, 4},
        {"battery_data.jsonl", READING_BATTERY, 3},
        {"fixture/home_energy_consumption.jsonl", READING_HOME, 7},
        {"fixture/solar_energy_data.jsonl", READING_SOLAR, 5},
        {"fixture/battery_data.jsonl", READING_BATTERY, 5},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", SOLARX_TEST_DATA, files[i].file);
        cr_assert_eq(check_file(path, files[i].kind), files[i].valid, "%s", files[i].file);
    }
}

Test(decode_fast, simulated_messages_with_every_fault_match_jansson)
{
    struct sim_config c = {.seed = 7,
                           .homes = 3,
                           .start = 1739491200, /* 2025-02-14 00:00:00 */
                           .seconds = 600,
                           .duplicates = 0.05,
                           .malformed = 0.2,
                           .battery_upgrade = 1739491500};
    struct sim *sim;
    char err[256];
    cr_assert_eq(sim_new(&c, &sim, err, sizeof(err)), 0, "%s", err);
    struct sim_message m;
    int fast_count = 0, deferred = 0;
    while (sim_next(sim, &m)) {
        if (m.flags & SIM_MSG_MALFORMED) {
            defers_len(m.topic, m.payload, m.len);
            deferred++;
        } else {
            fast_equals_jansson_len(m.topic, m.payload, m.len);
            fast_count++;
        }
    }
    cr_assert_not(sim_failed(sim));
    sim_destroy(sim);
    cr_assert_gt(fast_count, 5000);
    cr_assert_gt(deferred, 1000);
}

Test(decode_fast, key_order_whitespace_and_unknown_values_do_not_matter)
{
    fast_equals_jansson(READING_BATTERY,
                        " \t\r\n{\"batteries\" : {\"battery_9\": {\"max_output_w\": 5, \"status\": "
                        "\"charging\", \"is_charging\": true, \"current_energy_wh\": 0, "
                        "\"max_charge_speed_w\": 0.5, \"capacity_kwh\": 0.000001, \"x\": [1, "
                        "{\"a\": null}, [], {}]}, \"battery_2\": {\"capacity_kwh\": 15, "
                        "\"max_charge_speed_w\": 1, \"current_energy_wh\": 15000, "
                        "\"is_charging\": false, \"status\": \"ideal\", \"max_output_w\": 0}}, "
                        "\"home_id\": 2147483647, \"time_stamp\": \"2025-02-14T02:08:59Z\", "
                        "\"hourly_discharging\": {\"0\": 0, \"1\": -1.5, \"2\": 12.5}} \n");
    fast_equals_jansson(READING_SOLAR,
                        "{\"panel_id\": 74, \"consumption_accumulated_w\": 0, \"extra\": "
                        "\"\", \"current_consumption_w\": 1000000000, \"time_stamp\": "
                        "\"2025-02-14 02:08:59.999\", \"home_id\": 7, \"batteries\": 1}");
    /* A home message ignores panel_id whatever it holds; a battery message ignores the flows. */
    fast_equals_jansson(READING_HOME,
                        "{\"time_stamp\": \"2025-02-14 02:08:59\", \"current_consumption_w\": "
                        "0.93, \"consumption_accumulated_w\": 2, \"panel_id\": \"x\", "
                        "\"batteries\": {\"battery_x\": -1}}");
}

Test(decode_fast, naive_timestamps_follow_the_zone)
{
    cfg.zone = berlin_zone;
    fast_equals_jansson(READING_HOME, "{\"time_stamp\": \"2025-03-30 01:59:59\", "
                                      "\"current_consumption_w\": 1, "
                                      "\"consumption_accumulated_w\": 2}");
    fast_equals_jansson(READING_HOME, "{\"time_stamp\": \"2025-10-26 02:30:00\", "
                                      "\"current_consumption_w\": 1, "
                                      "\"consumption_accumulated_w\": 2}");
    /* Skipped by the spring change: bad_timestamp, from jansson's path. */
    defers(READING_HOME, "{\"time_stamp\": \"2025-03-30 02:30:00\", \"current_consumption_w\": "
                         "1, \"consumption_accumulated_w\": 2}");
}

/* A home message whose current_consumption_w is the given number text. */
static const char *home_with(const char *number, char *buf, size_t size)
{
    snprintf(buf, size,
             "{\"time_stamp\": \"2025-02-14 02:08:59\", \"current_consumption_w\": %s, "
             "\"consumption_accumulated_w\": 1}",
             number);
    return buf;
}

Test(decode_fast, numbers_convert_to_the_same_millionths_as_through_jansson)
{
    static const char *const numbers[] = {
        "0",
        "0.0",
        "7",
        "1000000000",
        "999999999.999999",
        "999999999.9999995",
        "0.0000005",
        "0.0000015",
        "0.0000025",
        "0.00000049999999",
        "1.0000005",
        "2.675",
        "1.005",
        "9993.67",
        "5121.33",
        "0.1",
        "0.30000000000000004",
        "123456789.123456",
        "100.000000000000000000000",
        "0.0000000000000000000001",
        "4503599627370.4965",
        "8.000000000000001",
        "999999999999999.0",
        "1000000000.0000001",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        const char *p = home_with(numbers[i], buf, sizeof(buf));
        struct outcome jansson, fast;
        by_jansson(READING_HOME, p, strlen(p), &jansson);
        if (by_fast(READING_HOME, p, strlen(p), &fast)) {
            cr_assert_eq(jansson.e, DECODE_OK, "fast accepts, jansson says %s", jansson.reason);
            assert_same_readings(&fast, &jansson, p, strlen(p));
        }
        message_equals_jansson(READING_HOME, p, strlen(p));
    }
}

/* A deterministic generator of number texts around the rounding edges of fixed_from_double. */
static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

Test(decode_fast, random_decimals_convert_as_jansson_does)
{
    uint64_t state = 42;
    char number[64], buf[256];
    int fast_count = 0;
    for (int i = 0; i < 100000; i++) {
        int int_digits = 1 + (int)(next_random(&state) % 10);
        int frac_digits = 1 + (int)(next_random(&state) % 12);
        size_t len = 0;
        number[len++] = (char)('1' + next_random(&state) % 9);
        for (int d = 1; d < int_digits; d++)
            number[len++] = (char)('0' + next_random(&state) % 10);
        if (next_random(&state) % 4 == 0)
            len = 1, number[0] = '0';
        number[len++] = '.';
        for (int d = 0; d < frac_digits; d++) {
            /* Mostly 0, 4, 5 and 9: the digits where rounding half away from zero turns. */
            static const char edge[] = "0459045904591234567890";
            number[len++] = edge[next_random(&state) % (sizeof(edge) - 1)];
        }
        number[len] = '\0';
        const char *p = home_with(number, buf, sizeof(buf));
        struct outcome jansson, fast;
        by_jansson(READING_HOME, p, strlen(p), &jansson);
        if (by_fast(READING_HOME, p, strlen(p), &fast)) {
            fast_count++;
            cr_assert_eq(jansson.e, DECODE_OK, "fast accepts %s, jansson says %s", number,
                         jansson.reason);
            cr_assert_eq(fast.out[0].energy_wh, jansson.out[0].energy_wh,
                         "%s: fast %lld, jansson %lld millionths", number,
                         (long long)fast.out[0].energy_wh, (long long)jansson.out[0].energy_wh);
        } else {
            message_equals_jansson(READING_HOME, p, strlen(p));
        }
    }
    cr_assert_gt(fast_count, 50000);
}

Test(decode_fast, unusual_or_invalid_inputs_defer_and_keep_jansson_results)
{
#define TS "\"time_stamp\": \"2025-02-14 02:08:59\""
#define FLOWS "\"current_consumption_w\": 1.5, \"consumption_accumulated_w\": 2"
#define BAT                                                                                        \
    "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 9860, "              \
    "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3.33}"
    static const struct {
        enum reading_kind kind;
        const char *payload;
    } cases[] = {
        /* Valid for jansson, not for the fast path. */
        {READING_HOME, "{\"time_st\\u0061mp\": \"2025-02-14 02:08:59\", " FLOWS "}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"note\": \"a\\nb\"}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": 1e2, \"consumption_accumulated_w\": 2}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": 1E2, \"consumption_accumulated_w\": 2}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": 1.5e0, \"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": 1e999}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": 1e5}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": -0, \"consumption_accumulated_w\": 2}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": -0.0, \"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": 1.2345678901234567, "
                       "\"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": 12345678901234567890}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"note\": \"caf\xc3\xa9\"}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"h\": {\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": "
                       "{\"g\": {\"h\": {\"i\": {\"j\": {\"k\": {\"l\": {\"m\": {\"n\": {\"o\": "
                       "{}}}}}}}}}}}}}}}}}"},
        {READING_SOLAR, "{" TS ", " FLOWS ", \"panel_id\": -0}"},
        /* Invalid JSON or a rejection: jansson's reason. */
        {READING_HOME,
         "{" TS ", " FLOWS ", \"current_consumption_w_accumulated_hourly\": {\"0\": 1, "
         "\"1\": 2, \"0\": 3}}"},
        {READING_HOME, "{" TS ", " FLOWS ", " TS "}"},
        {READING_BATTERY,
         "{" TS ", \"batteries\": {\"battery_1\": " BAT ", \"battery_1\": " BAT "}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 12, "
                          "\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": "
                          "1, \"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3}}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_01\": " BAT "}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_0\": " BAT "}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_2147483648\": " BAT "}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": []}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 1, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 1000.000001, "
                          "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3}}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 12, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 1, \"is_charging\": "
                          "2, \"status\": \"ideal\", \"max_output_w\": 3}}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 12, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 1, \"is_charging\": "
                          "0, \"status\": \"idle\", \"max_output_w\": 3}}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 0, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 0, \"is_charging\": "
                          "0, \"status\": \"ideal\", \"max_output_w\": 3}}}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": 12, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 1, \"is_charging\": "
                          "0, \"status\": \"ideal\"}}}"},
        {READING_BATTERY, "{\"batteries\": {\"battery_1\": " BAT "}}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": 1.0, \"consumption_accumulated_w\": 2, "
                       "\"home_id\": 1.0}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"home_id\": 0}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"home_id\": 2147483648}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"home_id\": \"7\"}"},
        {READING_SOLAR, "{" TS ", " FLOWS ", \"panel_id\": null}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": 1000000000.000001, "
                       "\"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": 1000000001, "
                       "\"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": -1, \"consumption_accumulated_w\": 2}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": \"1\", \"consumption_accumulated_w\": 2}"},
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": true, \"consumption_accumulated_w\": 2}"},
        {READING_HOME, "{" TS ", \"current_consumption_w\": 1}"},
        /* A literal where a number is wanted (found by fuzz_decode: a token without text). */
        {READING_HOME,
         "{" TS ", \"current_consumption_w\": 1, \"consumption_accumulated_w\": null}"},
        {READING_BATTERY, "{" TS ", \"batteries\": {\"battery_1\": {\"capacity_kwh\": false, "
                          "\"max_charge_speed_w\": 1, \"current_energy_wh\": 1, \"is_charging\": "
                          "0, \"status\": \"ideal\", \"max_output_w\": 3}}}"},
        {READING_HOME, "{" FLOWS "}"},
        {READING_HOME, "{\"time_stamp\": \"2025-02-30 02:08:59\", " FLOWS "}"},
        {READING_HOME, "{\"time_stamp\": \"1969-12-31 23:59:59\", " FLOWS "}"},
        {READING_HOME, "{\"time_stamp\": \"2025-02-14 02:08:59 \", " FLOWS "}"},
        {READING_HOME, "{\"time_stamp\": 20250214, " FLOWS "}"},
        {READING_HOME, "{" TS ", " FLOWS "} x"},
        {READING_HOME, "{" TS ", " FLOWS "}}"},
        {READING_HOME, "{" TS ", " FLOWS ",}"},
        {READING_HOME, "{" TS " " FLOWS "}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": 01}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": 1.}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": .5}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": +1}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": -}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": tru}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": truex}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": [1,]}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": [1 2]}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": NaN}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": \"\x01\"}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": \"\xff\"}"},
        {READING_HOME, "{" TS ", " FLOWS ", \"x\": \"unterminated}"},
        {READING_HOME, "{" TS ", " FLOWS},
        {READING_HOME, "[" TS "]"},
        {READING_HOME, "\"text\""},
        {READING_HOME, "42"},
        {READING_HOME, ""},
        {READING_HOME, "   "},
        {READING_HOME, "\xef\xbb\xbf{" TS ", " FLOWS "}"},
        {READING_HOME, "{" TS ",\f " FLOWS "}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        defers(cases[i].kind, cases[i].payload);
    /* A NUL byte in a string, and one after the object. */
    static const char nul_in_string[] = "{" TS ", " FLOWS ", \"x\": \"a\0b\"}";
    defers_len(READING_HOME, nul_in_string, sizeof(nul_in_string) - 1);
    static const char nul_after[] = "{" TS ", " FLOWS "}\0";
    defers_len(READING_HOME, nul_after, sizeof(nul_after) - 1);
#undef TS
#undef FLOWS
#undef BAT
}

Test(decode_fast, future_timestamps_defer_to_jansson)
{
    cfg.now = 1739498940; /* 2025-02-14 02:09:00 UTC */
    cfg.max_future_seconds = 60;
    fast_equals_jansson(READING_HOME, "{\"time_stamp\": \"2025-02-14 02:10:00\", "
                                      "\"current_consumption_w\": 1, "
                                      "\"consumption_accumulated_w\": 2}");
    defers(READING_HOME, "{\"time_stamp\": \"2025-02-14 02:10:01\", \"current_consumption_w\": "
                         "1, \"consumption_accumulated_w\": 2}");
}

Test(decode_fast, sixty_four_batteries_decode_fast_sixty_five_defer)
{
    static char buf[16384];
    for (int count = 64; count <= 65; count++) {
        size_t len = (size_t)snprintf(buf, sizeof(buf),
                                      "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {");
        /* Keys in descending order: the output is sorted by id all the same. */
        for (int id = count; id >= 1; id--)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                    "%s\"battery_%d\": {\"capacity_kwh\": %d, "
                                    "\"max_charge_speed_w\": 1, \"current_energy_wh\": %d.5, "
                                    "\"is_charging\": %d, \"status\": \"charging\", "
                                    "\"max_output_w\": 3.33}",
                                    id == count ? "" : ", ", id, id, id, id % 2);
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "}}");
        if (count == 64) {
            fast_equals_jansson_len(READING_BATTERY, buf, len);
        } else {
            defers_len(READING_BATTERY, buf, len);
        }
    }
}

Test(decode_fast, truncations_of_valid_messages_all_defer)
{
    static const char msg[] =
        "{\"home_id\": 3, \"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {\"battery_1\": "
        "{\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, \"current_energy_wh\": 9860.25, "
        "\"is_charging\": 0, \"status\": \"ideal\", \"max_output_w\": 3.33}}, "
        "\"hourly_discharging\": {\"0\": 0, \"1\": [true, false, null]}}";
    size_t len = sizeof(msg) - 1;
    fast_equals_jansson_len(READING_BATTERY, msg, len);
    for (size_t cut = 0; cut < len; cut++)
        defers_len(READING_BATTERY, msg, cut);
}
