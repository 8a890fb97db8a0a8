/* Unit tests of COPY text-format row construction. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "solarx/copytext.h"

static const char *text(struct copytext *c)
{
    static char out[4096];
    snprintf(out, sizeof(out), "%.*s", (int)c->len, c->buf);
    return out;
}

Test(copytext, columns_are_tab_separated_rows_end_with_newline)
{
    struct copytext c = {0};
    copytext_reset(&c);
    copytext_add_int(&c, 1);
    copytext_add_int(&c, -9223372036854775807LL - 1);
    copytext_add_fixed(&c, 9993670000);
    copytext_add_fixed(&c, -5);
    copytext_add_fixed(&c, 0);
    copytext_add_bool(&c, true);
    copytext_end_row(&c);
    copytext_add_bool(&c, false);
    copytext_add_text_int(&c, "battery_", 12);
    copytext_end_row(&c);
    cr_assert_str_eq(text(&c), "1\t-9223372036854775808\t9993.670000\t-0.000005\t0.000000\tt\n"
                               "f\tbattery_12\n");
    cr_assert_eq(c.rows, 2);
    copytext_reset(&c);
    cr_assert_eq(c.len, 0);
    copytext_add_int(&c, 7);
    copytext_end_row(&c);
    cr_assert_str_eq(text(&c), "7\n");
    copytext_free(&c);
}

Test(copytext, text_escapes_what_copy_reads_specially)
{
    struct copytext c = {0};
    copytext_reset(&c);
    copytext_add_text(&c, "a\\b\tc\nd\re \"q\"", 13);
    copytext_add_text(&c, "", 0);
    copytext_end_row(&c);
    cr_assert_str_eq(text(&c), "a\\\\b\\tc\\nd\\re \"q\"\t\n");
    copytext_free(&c);
}

Test(copytext, timestamps_match_gmtime_over_four_digit_years)
{
    /* Every day boundary and a few seconds inside, from year 1 to 9999 in big steps, plus the
     * days around the epoch, leap days and centuries. */
    const int64_t first = -62135596800LL; /* 0001-01-01 00:00:00 UTC */
    const int64_t last = 253402300799LL;  /* 9999-12-31 23:59:59 UTC */
    const int64_t samples[] = {0,         -1,          86399,      86400,      951782400,
                               951868799, 4107542399,  4107542400, 1739491560, first,
                               last,      -2208988800, 946684799,  68256000};
    struct copytext c = {0};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]) + 4000; i++) {
        int64_t t = i < sizeof(samples) / sizeof(samples[0])
                        ? samples[i]
                        : first + (int64_t)(i - 14) * ((last - first) / 4000) + (int64_t)i;
        if (t > last)
            t = last;
        time_t tt = (time_t)t;
        struct tm tm;
        cr_assert_not_null(gmtime_r(&tt, &tm));
        char want[80];
        snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d+00:00", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        copytext_reset(&c);
        copytext_add_timestamp(&c, t);
        cr_assert_str_eq(text(&c), want, "t=%lld", (long long)t);
    }
    copytext_free(&c);
}

Test(copytext, large_rows_grow_the_buffer)
{
    struct copytext c = {0};
    copytext_reset(&c);
    for (int i = 0; i < 100000; i++) {
        copytext_add_int(&c, i);
        copytext_add_fixed(&c, (fixed_t)i * 1000001);
        copytext_add_timestamp(&c, 1739491560 + i);
        copytext_end_row(&c);
    }
    cr_assert_eq(c.rows, 100000);
    cr_assert(c.len > 100000 * 30);
    cr_assert_eq(c.buf[c.len - 1], '\n');
    copytext_free(&c);
}
