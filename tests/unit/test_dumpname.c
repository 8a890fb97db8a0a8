/* Unit tests of src/dumpname.c: Solar-X daily dump names, <topic>.jsonl names, gzip, dates that
 * are not days, archive names and the ingest order. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/dumpname.h"

Test(dumpname, solar_x_daily_logs)
{
    struct dumpname n;
    cr_assert(dumpname_parse("/data/kafka_log_battery_data_2025-02-13.log", &n));
    cr_expect_eq(n.form, DUMPNAME_DAILY_LOG);
    cr_expect_str_eq(n.topic, "battery_data");
    cr_expect_str_eq(n.date, "2025-02-13");
    cr_expect(!n.gzip);

    cr_assert(dumpname_parse("kafka_log_home_energy_consumption_2024-02-29.log.gz", &n));
    cr_expect_str_eq(n.topic, "home_energy_consumption");
    cr_expect_str_eq(n.date, "2024-02-29");
    cr_expect(n.gzip);

    /* A topic may itself end in something date-like only before the real date. */
    cr_assert(dumpname_parse("kafka_log_a_2025-01-01_2025-01-02.log", &n));
    cr_expect_str_eq(n.topic, "a_2025-01-01");
    cr_expect_str_eq(n.date, "2025-01-02");
}

Test(dumpname, jsonl_and_friends)
{
    struct dumpname n;
    cr_assert(dumpname_parse("dir.d/solar_energy_data.jsonl", &n));
    cr_expect_eq(n.form, DUMPNAME_JSONL);
    cr_expect_str_eq(n.topic, "solar_energy_data");
    cr_expect_str_eq(n.date, "");
    cr_assert(dumpname_parse("battery_data.jsonl.gz", &n));
    cr_expect_str_eq(n.topic, "battery_data");
    cr_expect(n.gzip);
    cr_assert(dumpname_parse("home.json", &n));
    cr_expect_str_eq(n.topic, "home");
    cr_assert(dumpname_parse("x.txt", &n));
    cr_expect_str_eq(n.topic, "x");
}

Test(dumpname, names_that_say_nothing)
{
    struct dumpname n;
    static const char *const bad[] = {
        "notes.md",
        "kafka_log_battery_data_2025-02-30.log", /* no such day */
        "kafka_log_battery_data_2025-13-01.log",
        "kafka_log_battery_data_2023-02-29.log", /* not a leap year */
        "kafka_log_battery_data_20250213.log",
        "kafka_log__2025-02-13.log", /* no topic */
        ".jsonl",
        "archive.gz",
        "kafka_log_battery_data_2025-02-13.log.tmp",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(!dumpname_parse(bad[i], &n), "%s parsed", bad[i]);
        cr_expect_eq(n.form, DUMPNAME_UNKNOWN, "%s", bad[i]);
        cr_expect_str_eq(n.topic, "", "%s", bad[i]);
    }
}

Test(dumpname, archive_names_parse_back)
{
    char buf[128];
    struct dumpname n;
    cr_assert(dumpname_format_daily(buf, sizeof(buf), "solar_energy_data", "2025-02-14"));
    cr_expect_str_eq(buf, "kafka_log_solar_energy_data_2025-02-14.log.gz");
    cr_assert(dumpname_parse(buf, &n));
    cr_expect_str_eq(n.topic, "solar_energy_data");
    cr_expect_str_eq(n.date, "2025-02-14");
    cr_expect(n.gzip);
    cr_expect(!dumpname_format_daily(buf, 20, "solar_energy_data", "2025-02-14"));
}

Test(dumpname, ingest_order_is_date_then_topic_then_path)
{
    static const char *const paths[] = {
        "b/kafka_log_solar_2025-02-14.log", "a/kafka_log_home_2025-02-14.log.gz",
        "kafka_log_battery_2025-02-13.log", "z/home.jsonl",
        "a/kafka_log_solar_2025-02-14.log", "battery.jsonl",
        "kafka_log_home_2025-02-13.log",
    };
    static const char *const want[] = {
        "battery.jsonl",
        "z/home.jsonl",
        "kafka_log_battery_2025-02-13.log",
        "kafka_log_home_2025-02-13.log",
        "a/kafka_log_home_2025-02-14.log.gz",
        "a/kafka_log_solar_2025-02-14.log",
        "b/kafka_log_solar_2025-02-14.log",
    };
    enum { N = sizeof(paths) / sizeof(paths[0]) };
    struct dumpname_file files[N];
    for (size_t i = 0; i < N; i++) {
        files[i].path = paths[i];
        cr_assert(dumpname_parse(paths[i], &files[i].name));
    }
    qsort(files, N, sizeof(files[0]), dumpname_compare);
    for (size_t i = 0; i < N; i++)
        cr_expect_str_eq(files[i].path, want[i], "position %zu", i);
}
