/* Unit tests of src/decode_pool.c: decoding on worker threads gives exactly what decoding on the
 * caller's thread gives, chunks come back in submission order across chunk boundaries, the bound
 * on chunks holds, and destroying the pool with chunks everywhere frees everything (run under
 * ASan by the sanitizer build). */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "solarx/decode_pool.h"

static struct clock_zone *zone;

static void setup(void)
{
    char err[256];
    zone = clock_zone_new("Europe/Berlin", err, sizeof(err));
    cr_assert_not_null(zone, "%s", err);
}

static void teardown(void)
{
    clock_zone_destroy(zone);
}

TestSuite(decode_pool, .init = setup, .fini = teardown);

#define MAX_BYTES 400
#define NOW 1739500000 /* 2025-02-14 02:26:40 UTC */

static struct decode_pool_settings settings_with(int threads, size_t chunk_messages)
{
    return (struct decode_pool_settings){
        .threads = threads,
        .chunk_messages = chunk_messages,
        .chunk_bytes = 1 << 20,
        .max_message_bytes = MAX_BYTES,
        .decode = {.default_home_id = 1,
                   .default_panel_id = 4,
                   .zone = zone,
                   .max_future_seconds = 3600},
    };
}

/* A mixed set: valid messages of every topic, bad JSON, a too-large payload, wrong schema, an
 * empty payload, a future time stamp. Message i is messages[i % count] with offset i. */
static const struct {
    enum reading_kind kind;
    const char *payload;
} samples[] = {
    {READING_HOME, "{\"time_stamp\": \"2025-02-14 02:09:00\", \"current_consumption_w\": 0.93, "
                   "\"consumption_accumulated_w\": 5120.4, \"home_id\": 7}"},
    {READING_SOLAR, "{\"time_stamp\": \"2025-02-14 02:09:01\", \"current_consumption_w\": 12, "
                    "\"consumption_accumulated_w\": 99.5, \"panel_id\": 3}"},
    {READING_BATTERY, "{\"time_stamp\": \"2025-02-14 02:08:59\", \"batteries\": {"
                      "\"battery_1\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                      "\"current_energy_wh\": 9860, \"is_charging\": 0, \"status\": "
                      "\"ideal\", \"max_output_w\": 3.33},"
                      "\"battery_3\": {\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "
                      "\"current_energy_wh\": 9993.67, \"is_charging\": 0, \"status\": "
                      "\"discharging\", \"max_output_w\": 3.33}}}"},
    {READING_HOME, "{\"time_stamp\": \"2025-02-14 02:09:00\", \"current_consumption_w\": "},
    {READING_HOME, "{\"time_stamp\": \"2025-02-14 02:09:00\", \"current_consumption_w\": "
                   "\"lots\", \"consumption_accumulated_w\": 1}"},
    {READING_SOLAR, "[1, 2, 3]"},
    {READING_BATTERY, ""},
    {READING_HOME, "{\"time_stamp\": \"2030-01-01 00:00:00\", \"current_consumption_w\": 1, "
                   "\"consumption_accumulated_w\": 1}"},
    {READING_HOME, NULL}, /* too large: filled in by message_at */
};
#define SAMPLE_COUNT (sizeof(samples) / sizeof(samples[0]))

static char too_large[MAX_BYTES + 50];

static struct decode_pool_message message_at(size_t i)
{
    const char *payload = samples[i % SAMPLE_COUNT].payload;
    if (!payload) {
        memset(too_large, 'x', sizeof(too_large));
        payload = too_large;
    }
    static char keys[16][16];
    char *key = keys[i % 16];
    snprintf(key, 16, "k%zu", i);
    return (struct decode_pool_message){
        .kind = samples[i % SAMPLE_COUNT].kind,
        .partition = (int32_t)(i % 3),
        .offset = (int64_t)i,
        .key = i % 5 == 0 ? NULL : key,
        .key_len = i % 5 == 0 ? 0 : strlen(key),
        .payload = payload,
        .len = payload == too_large ? sizeof(too_large) : strlen(payload),
        .now = NOW,
    };
}

/* r equals what decoding message i on this thread gives. */
static void assert_same_as_sync(const struct decode_pool_settings *st, size_t i,
                                const struct decode_pool_result *r)
{
    struct decode_pool_message m = message_at(i);
    struct reading out[DECODE_MAX_READINGS];
    char reason[DECODE_REASON_SIZE] = "";
    size_t n = 0;
    enum decode_error e = decode_pool_decode_one(st, &m, out, &n, reason, sizeof(reason));
    cr_assert_eq(r->offset, (int64_t)i, "results out of order: offset %lld where %zu was due",
                 (long long)r->offset, i);
    cr_assert_eq(r->kind, m.kind);
    cr_assert_eq(r->partition, m.partition);
    cr_assert_eq(r->error, e, "message %zu: %s, synchronously %s", i, decode_error_name(r->error),
                 decode_error_name(e));
    cr_assert_eq(r->reading_count, n);
    cr_assert(n == 0 || memcmp(r->readings, out, n * sizeof(*out)) == 0, "message %zu", i);
    cr_assert_str_eq(r->reason, e == DECODE_OK ? "" : reason);
    cr_assert_eq(r->len, m.len);
    cr_assert(memcmp(r->payload, m.payload, m.len) == 0);
    cr_assert_eq(r->payload[m.len], '\0');
    cr_assert_eq(r->key == NULL, m.key == NULL);
    cr_assert(!m.key || (r->key_len == m.key_len && memcmp(r->key, m.key, m.key_len) == 0),
              "message %zu: key %.*s, want %.*s", i, (int)r->key_len, r->key ? r->key : "",
              (int)m.key_len, (const char *)m.key);
}

/* Takes the oldest chunk (waiting) and checks it, as take_all. */
static void take_oldest(struct decode_pool *p, const struct decode_pool_settings *st, size_t *next)
{
    struct decode_pool_chunk *c = decode_pool_take(p, true);
    cr_assert_not_null(c);
    for (size_t j = 0; j < decode_pool_chunk_count(c); j++) {
        struct decode_pool_result r;
        decode_pool_chunk_result(c, j, &r);
        assert_same_as_sync(st, (*next)++, &r);
    }
    decode_pool_release(p, c);
}

/* Takes every decoded chunk (waiting), checks each message against the synchronous decode and
 * the running offset *next. */
static void take_all(struct decode_pool *p, const struct decode_pool_settings *st, size_t *next)
{
    struct decode_pool_chunk *c;
    while ((c = decode_pool_take(p, true))) {
        for (size_t j = 0; j < decode_pool_chunk_count(c); j++) {
            struct decode_pool_result r;
            decode_pool_chunk_result(c, j, &r);
            assert_same_as_sync(st, (*next)++, &r);
        }
        decode_pool_release(p, c);
    }
}

static void run_mixed(int threads, size_t chunk_messages, size_t total)
{
    char err[256];
    struct decode_pool_settings st = settings_with(threads, chunk_messages);
    struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    size_t next = 0;
    for (size_t i = 0; i < total; i++) {
        if (decode_pool_staged_full(p) && !decode_pool_submit(p)) {
            take_oldest(p, &st, &next); /* the bound: as the loop does */
            cr_assert(decode_pool_submit(p));
        }
        struct decode_pool_message m = message_at(i); /* after the checks: its key buffer */
        cr_assert(decode_pool_stage(p, &m), "message %zu not staged", i);
    }
    while (!decode_pool_submit(p))
        take_oldest(p, &st, &next);
    take_all(p, &st, &next);
    cr_assert_eq(next, total, "%zu of %zu messages came back", next, total);
    cr_assert(decode_pool_idle(p));
    decode_pool_destroy(p);
}

Test(decode_pool, results_equal_synchronous_decoding_in_order_one_worker)
{
    run_mixed(1, 4, 200); /* 4 messages a chunk: many chunk boundaries */
}

Test(decode_pool, results_equal_synchronous_decoding_in_order_three_workers)
{
    run_mixed(3, 7, 500);
    run_mixed(2, DECODE_POOL_CHUNK_MESSAGES, 3000);
}

Test(decode_pool, the_descriptor_turns_readable_when_a_chunk_is_decoded)
{
    char err[256];
    struct decode_pool_settings st = settings_with(1, 8);
    struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    struct decode_pool_message m = message_at(0);
    cr_assert(decode_pool_stage(p, &m));
    cr_assert_eq(decode_pool_take(p, false), NULL, "nothing submitted yet");
    cr_assert(decode_pool_submit(p));
    struct pollfd pfd = {.fd = decode_pool_fd(p), .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 10000), 1, "no wake-up within 10 s");
    decode_pool_ack(p);
    struct decode_pool_chunk *c = decode_pool_take(p, false);
    cr_assert_not_null(c, "woken, yet the oldest chunk is not decoded");
    cr_assert_eq(decode_pool_chunk_count(c), 1);
    decode_pool_release(p, c);
    cr_assert(decode_pool_idle(p));
    decode_pool_destroy(p);
}

/* chunks_in_flight 0 means threads + 1. */
Test(decode_pool, the_bound_holds_at_chunks_in_flight_submitted_chunks)
{
    char err[256];
    static const struct {
        int threads;
        size_t in_flight, bound;
    } cases[] = {{1, 0, 2}, {2, 0, 3}, {3, 0, 4}, {1, 8, 8}, {2, 1, 1}};
    for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]); n++) {
        struct decode_pool_settings st = settings_with(cases[n].threads, 2);
        st.chunks_in_flight = cases[n].in_flight;
        const size_t bound = cases[n].bound;
        struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
        cr_assert_not_null(p, "%s", err);
        size_t i = 0;
        /* Nothing is taken: submissions stop at the bound. */
        for (size_t k = 0; k < bound; k++) {
            cr_assert(!decode_pool_is_full(p));
            for (int j = 0; j < 2; j++) {
                struct decode_pool_message m = message_at(i++);
                cr_assert(decode_pool_stage(p, &m));
            }
            cr_assert(decode_pool_staged_full(p));
            cr_assert(decode_pool_submit(p), "chunk %zu of %zu refused", k + 1, bound);
        }
        cr_assert_eq(decode_pool_submitted(p), bound);
        for (int j = 0; j < 2; j++) {
            struct decode_pool_message m = message_at(i++);
            cr_assert(decode_pool_stage(p, &m));
        }
        struct decode_pool_message extra = message_at(i);
        cr_assert(!decode_pool_stage(p, &extra), "a full staging chunk took more");
        cr_assert(!decode_pool_submit(p), "more than %zu chunks submitted", bound);
        cr_assert(decode_pool_is_full(p));
        cr_assert_eq(decode_pool_staged(p), 2);
        /* One taken and released: room for one. */
        struct decode_pool_chunk *c = decode_pool_take(p, true);
        cr_assert_not_null(c);
        decode_pool_release(p, c);
        cr_assert(!decode_pool_is_full(p));
        cr_assert(decode_pool_submit(p));
        cr_assert_eq(decode_pool_staged(p), 0);
        size_t next = 2;
        take_all(p, &st, &next);
        cr_assert_eq(next, i);
        decode_pool_destroy(p);
    }
}

Test(decode_pool, a_chunk_full_of_bytes_is_full)
{
    char err[256];
    struct decode_pool_settings st = settings_with(1, 100);
    st.chunk_bytes = 100;
    struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    struct decode_pool_message m = message_at(0); /* ~100 bytes */
    cr_assert(decode_pool_stage(p, &m));
    cr_assert(decode_pool_staged_full(p));
    decode_pool_destroy(p);
}

Test(decode_pool, discard_drops_staged_and_submitted_chunks)
{
    char err[256];
    struct decode_pool_settings st = settings_with(2, 3);
    struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 3; j++) {
            struct decode_pool_message m = message_at(i++);
            cr_assert(decode_pool_stage(p, &m));
        }
        cr_assert(decode_pool_submit(p));
    }
    struct decode_pool_message m = message_at(i++);
    cr_assert(decode_pool_stage(p, &m));
    decode_pool_discard(p);
    cr_assert(decode_pool_idle(p));
    cr_assert_eq(decode_pool_take(p, true), NULL);
    /* Usable afterwards: what comes next comes back alone. */
    m = message_at(0);
    cr_assert(decode_pool_stage(p, &m));
    cr_assert(decode_pool_submit(p));
    size_t next = 0;
    take_all(p, &st, &next);
    cr_assert_eq(next, 1);
    decode_pool_destroy(p);
}

Test(decode_pool, destroy_with_chunks_in_flight_frees_everything)
{
    char err[256];
    for (int round = 0; round < 20; round++) {
        struct decode_pool_settings st = settings_with(2, 64);
        struct decode_pool *p = decode_pool_new(&st, err, sizeof(err));
        cr_assert_not_null(p, "%s", err);
        size_t i = 0;
        while (decode_pool_submitted(p) < 3) {
            while (!decode_pool_staged_full(p)) {
                struct decode_pool_message m = message_at(i++);
                cr_assert(decode_pool_stage(p, &m));
            }
            cr_assert(decode_pool_submit(p));
        }
        struct decode_pool_message m = message_at(i);
        cr_assert(decode_pool_stage(p, &m));
        if (round % 2) { /* one taken, not released */
            struct decode_pool_chunk *c = decode_pool_take(p, true);
            cr_assert_not_null(c);
        }
        decode_pool_destroy(p); /* workers mid-chunk, chunks queued, one staged: ASan checks */
    }
}

Test(decode_pool, invalid_settings_are_refused)
{
    char err[256];
    struct decode_pool_settings st = settings_with(0, 8);
    cr_assert_null(decode_pool_new(&st, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "threads (0)"), "%s", err);
}
