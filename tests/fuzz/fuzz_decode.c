/* libFuzzer target for decode_message (src/decode.c, src/decode_fast.c), built with clang under
 * ASan+UBSan (tests/CMakeLists.txt) and run by tests/fuzz/run.sh. The first input byte picks the
 * topic kind (its value modulo 3: home, solar, battery), the zone (bit 2: Europe/Berlin, else
 * UTC) and a short reason buffer (bit 3); the rest is the payload. Besides the sanitizers'
 * findings, a broken contract of decode_message aborts: readings on error, none or too many on
 * success, a reason that is not printable ASCII or does not start with the error's name.
 * Differential: the fast path and the jansson path decode every input too; fast OK must mean
 * jansson OK with memcmp-equal readings, and decode_message must return exactly what the jansson
 * path returns (error, readings, reason). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "solarx/clock.h"
#include "solarx/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct clock_zone *zone_named(const char *name)
{
    char err[256];
    struct clock_zone *zone = clock_zone_new(name, err, sizeof(err));
    if (!zone) {
        fprintf(stderr, "fuzz_decode: %s\n", err);
        abort();
    }
    return zone;
}

static void check(int ok, const char *what, const char *reason)
{
    if (!ok) {
        fprintf(stderr, "fuzz_decode: broken contract: %s (reason \"%s\")\n", what, reason);
        abort();
    }
}

static void check_reason(enum decode_error e, const char *reason, size_t size)
{
    size_t len = strnlen(reason, size);
    check(len < size, "reason not terminated", "");
    for (size_t i = 0; i < len; i++)
        check(reason[i] >= 0x20 && reason[i] < 0x7f, "reason not printable ASCII", reason);
    const char *name = decode_error_name(e);
    size_t prefix = strlen(name) < len ? strlen(name) : len;
    check(strncmp(reason, name, prefix) == 0, "reason does not start with the error's name",
          reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct clock_zone *utc, *berlin;
    if (!utc) {
        utc = zone_named("UTC");
        berlin = zone_named("Europe/Berlin");
    }
    if (size == 0)
        return 0;
    enum reading_kind kind = (enum reading_kind)(data[0] % READING_KIND_COUNT);
    /* A fixed clock (2025-02-14 02:09:00 UTC), so that future_timestamp is reached too. */
    struct decode_config cfg = {.default_home_id = 1,
                                .default_panel_id = 4,
                                .zone = (data[0] & 4) ? berlin : utc,
                                .now = 1739498940,
                                .max_future_seconds = (data[0] & 16) ? 86400 : 0};
    size_t reason_size = (data[0] & 8) ? 12 : DECODE_REASON_SIZE;
    /* A copy of exactly the payload's bytes, so that ASan sees any read past its end. */
    size_t len = size - 1;
    char *payload = malloc(len ? len : 1);
    if (!payload)
        return 0;
    memcpy(payload, data + 1, len);

    struct reading out[DECODE_MAX_READINGS];
    size_t n = 12345;
    char reason[DECODE_REASON_SIZE];
    memset(reason, 'X', sizeof(reason));
    enum decode_error e = decode_message(&cfg, kind, payload, len, out, &n, reason, reason_size);

    struct reading fast_out[DECODE_MAX_READINGS], jansson_out[DECODE_MAX_READINGS];
    memset(fast_out, 0xA5, sizeof(fast_out));
    size_t fast_n = 0, jansson_n = 12345;
    bool fast = decode_fast(&cfg, kind, payload, len, fast_out, &fast_n);
    char jansson_reason[DECODE_REASON_SIZE];
    memset(jansson_reason, 'X', sizeof(jansson_reason));
    enum decode_error jansson_e = decode_jansson(&cfg, kind, payload, len, jansson_out, &jansson_n,
                                                 jansson_reason, reason_size);
    free(payload);

    check(n <= DECODE_MAX_READINGS && jansson_n <= DECODE_MAX_READINGS, "too many readings", "");
    if (fast) {
        check(fast_n >= 1 && fast_n <= DECODE_MAX_READINGS, "the fast path's count", "");
        check(jansson_e == DECODE_OK, "the fast path accepts what jansson rejects", jansson_reason);
        check(fast_n == jansson_n, "the fast path and jansson disagree on the count", "");
        check(memcmp(fast_out, jansson_out, fast_n * sizeof(struct reading)) == 0,
              "the fast path's readings differ from jansson's", "");
    }
    check(e == jansson_e, "decode_message's result differs from the jansson path's", reason);
    check(n == jansson_n, "decode_message's count differs from the jansson path's", reason);
    check(memcmp(out, jansson_out, n * sizeof(struct reading)) == 0,
          "decode_message's readings differ from the jansson path's", "");
    check(e == DECODE_OK || strncmp(reason, jansson_reason, reason_size) == 0,
          "decode_message's reason differs from the jansson path's", reason);

    if (e == DECODE_OK) {
        check(n >= 1 && n <= DECODE_MAX_READINGS, "success with no or too many readings", "");
        for (size_t i = 0; i < n; i++) {
            check(out[i].kind == kind, "a reading of another kind", "");
            check(out[i].home_id > 0 && out[i].device_id > 0, "a non-positive id", "");
            check(out[i].ts == out[0].ts && out[i].home_id == out[0].home_id,
                  "readings of one message disagree on home or time", "");
        }
    } else {
        check(e > DECODE_OK && e < DECODE_ERROR_COUNT, "an error outside the enum", "");
        check(n == 0, "readings returned with an error", "");
        check_reason(e, reason, reason_size);
    }
    return 0;
}
