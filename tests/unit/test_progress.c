/* Unit tests of src/progress.c: rate and ETA arithmetic and both line formats. */
#include <criterion/criterion.h>
#include <string.h>

#include "solarx/progress.h"

Test(progress, rate_and_eta)
{
    struct progress_snapshot s = {
        .done = 250, .total = 1000, .elapsed_s = 5, .unit = PROGRESS_MESSAGES};
    cr_expect_float_eq(progress_rate(&s), 50.0, 1e-9);
    cr_expect_float_eq(progress_eta_s(&s), 15.0, 1e-9);
    s.done = 1000;
    cr_expect_float_eq(progress_eta_s(&s), 0.0, 1e-9);
    s.done = 1200; /* more than the estimate: done, not negative */
    cr_expect_float_eq(progress_eta_s(&s), 0.0, 1e-9);
    s = (struct progress_snapshot){.done = 0, .total = 1000, .elapsed_s = 3};
    cr_expect_float_eq(progress_eta_s(&s), -1.0, 1e-9, "nothing done: unknown");
    s = (struct progress_snapshot){.done = 10, .total = 0, .elapsed_s = 3};
    cr_expect_float_eq(progress_eta_s(&s), -1.0, 1e-9, "no total: unknown");
    s = (struct progress_snapshot){.done = 10, .total = 20, .elapsed_s = 0};
    cr_expect_float_eq(progress_rate(&s), 0.0, 1e-9);
    cr_expect_float_eq(progress_eta_s(&s), -1.0, 1e-9);
}

Test(progress, durations_and_amounts)
{
    char buf[32];
    cr_expect_str_eq(progress_format_duration(0, buf, sizeof(buf)), "0s");
    cr_expect_str_eq(progress_format_duration(12.4, buf, sizeof(buf)), "12s");
    cr_expect_str_eq(progress_format_duration(245, buf, sizeof(buf)), "4m05s");
    cr_expect_str_eq(progress_format_duration(3723, buf, sizeof(buf)), "1h02m03s");
    cr_expect_str_eq(progress_format_duration(-1, buf, sizeof(buf)), "?");
    cr_expect_str_eq(progress_format_amount(512, PROGRESS_BYTES, buf, sizeof(buf)), "512 B");
    cr_expect_str_eq(progress_format_amount(1536, PROGRESS_BYTES, buf, sizeof(buf)), "1.5 KiB");
    cr_expect_str_eq(progress_format_amount(12897485, PROGRESS_BYTES, buf, sizeof(buf)),
                     "12.3 MiB");
    cr_expect_str_eq(progress_format_amount(4200, PROGRESS_MESSAGES, buf, sizeof(buf)),
                     "4200 msgs");
}

Test(progress, terminal_line)
{
    char buf[256];
    struct progress_snapshot s = {
        .done = 12897485, .total = 28521267, .elapsed_s = 4, .unit = PROGRESS_BYTES};
    cr_expect_str_eq(progress_format_terminal("ingest", &s, buf, sizeof(buf)),
                     "ingest  45.2%  12.3 MiB / 27.2 MiB  3.1 MiB/s  ETA 5s");
    s = (struct progress_snapshot){
        .done = 300, .total = 1200, .elapsed_s = 10, .unit = PROGRESS_MESSAGES};
    cr_expect_str_eq(progress_format_terminal("replay", &s, buf, sizeof(buf)),
                     "replay  25.0%  300 msgs / 1200 msgs  30 msgs/s  ETA 30s");
}

Test(progress, logfmt_line)
{
    char buf[256];
    struct progress_snapshot s = {
        .done = 300, .total = 1200, .elapsed_s = 10, .unit = PROGRESS_MESSAGES};
    cr_expect_str_eq(progress_format_logfmt("replay", &s, buf, sizeof(buf)),
                     "event=progress command=replay unit=messages done=300 total=1200 pct=25.0 "
                     "rate_per_s=30.0 elapsed_s=10.0 eta_s=30");
    s = (struct progress_snapshot){.done = 0, .total = 0, .elapsed_s = 1, .unit = PROGRESS_BYTES};
    cr_expect_str_eq(progress_format_logfmt("ingest", &s, buf, sizeof(buf)),
                     "event=progress command=ingest unit=bytes done=0 total=0 pct=0.0 "
                     "rate_per_s=0.0 elapsed_s=1.0 eta_s=-1");
    /* Truncated, still terminated. */
    char small[16];
    progress_format_logfmt("ingest", &s, small, sizeof(small));
    cr_expect_eq(strlen(small), sizeof(small) - 1);
}
