/* Unit tests of the telemetry generator behind solarx-sim (tools/sim/sim.c): determinism,
 * counts, message shapes against the samples, plausible physics, and exact fault accounting. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/clock.h"
#include "solarx/decode.h"
#include "sim.h"

/* One emitted message, copied out of the generator. */
struct rec {
    struct sim_message m;
    char *text;
};

struct run {
    struct rec *recs;
    size_t n, cap;
    struct sim_stats stats;
    char summary[2048];
};

static const char *const topic_names[READING_KIND_COUNT] = {"home_energy_consumption",
                                                            "solar_energy_data", "battery_data"};

static struct sim_config base_config(int32_t homes, int64_t seconds, uint64_t seed)
{
    struct sim_config c = {0};
    c.seed = seed;
    c.homes = homes;
    c.seconds = seconds;
    c.battery_upgrade = INT64_MAX;
    c.late_seconds = 3600;
    cr_assert_eq(sim_parse_time("2025-02-14 00:00:00", &c.start), 0);
    return c;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->recs[i].text);
    free(r->recs);
    memset(r, 0, sizeof(*r));
}

static void run_sim(const struct sim_config *c, struct run *r)
{
    char err[256];
    struct sim *sim = NULL;
    memset(r, 0, sizeof(*r));
    cr_assert_eq(sim_new(c, &sim, err, sizeof(err)), 0, "%s", err);
    struct sim_message m;
    while (sim_next(sim, &m)) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 1024;
            r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
            cr_assert_not_null(r->recs);
        }
        struct rec *rec = &r->recs[r->n++];
        rec->m = m;
        rec->text = strndup(m.payload, m.len);
        cr_assert_not_null(rec->text);
        cr_assert_eq(strlen(rec->text), m.len, "payload has a NUL byte");
        rec->m.payload = rec->text;
    }
    cr_assert_not(sim_failed(sim));
    r->stats = *sim_stats(sim);
    cr_assert_gt(sim_summary_json(sim, topic_names, r->summary, sizeof(r->summary)), 0);
    sim_destroy(sim);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t run_digest(const struct run *r)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < r->n; i++) {
        h = fnv1a(h, &r->recs[i].m.topic, sizeof(r->recs[i].m.topic));
        h = fnv1a(h, &r->recs[i].m.home_id, sizeof(r->recs[i].m.home_id));
        h = fnv1a(h, r->recs[i].text, r->recs[i].m.len + 1);
    }
    return h;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, text);
    return j;
}

/* Keys of an object in order, joined by ','. */
static void key_list(json_t *obj, char *buf, size_t size)
{
    const char *key;
    json_t *v;
    buf[0] = '\0';
    json_object_foreach(obj, key, v)
    {
        strncat(buf, key, size - strlen(buf) - 1);
        strncat(buf, ",", size - strlen(buf) - 1);
    }
}

/* First line of a sample file, parsed. */
static json_t *sample(const char *topic)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.jsonl", SOLARX_TEST_DATA, topic);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char line[8192];
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    return parse(line);
}

/* Every number in the text has at most two fractional digits and no exponent. */
static void assert_numbers_two_decimals(const char *text)
{
    bool in_string = false;
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            in_string = !in_string;
        if (in_string || *p != '.')
            continue;
        int digits = 0;
        while (p[1 + digits] >= '0' && p[1 + digits] <= '9')
            digits++;
        cr_assert(digits >= 1 && digits <= 2, "number with %d decimals in %s", digits, text);
        cr_assert(p[1 + digits] != 'e' && p[1 + digits] != 'E', "exponent in %s", text);
    }
}

static int64_t hundredths(json_t *number)
{
    cr_assert(json_is_number(number));
    double v = json_number_value(number) * 100.0;
    return (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
}

Test(sim, same_seed_same_bytes_other_seed_other_bytes)
{
    struct run a, b, c;
    struct sim_config cfg = base_config(3, 600, 7);
    cfg.duplicates = cfg.disorder = cfg.late = cfg.malformed = 0.02;
    cfg.late_seconds = 120;
    run_sim(&cfg, &a);
    run_sim(&cfg, &b);
    cfg.seed = 8;
    run_sim(&cfg, &c);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        cr_assert_str_eq(a.recs[i].text, b.recs[i].text, "message %zu differs", i);
    cr_assert_eq(run_digest(&a), run_digest(&b));
    cr_assert_str_eq(a.summary, b.summary);
    cr_assert_neq(run_digest(&a), run_digest(&c));
    size_t same = 0;
    for (size_t i = 0; i < a.n && i < c.n; i++)
        same += strcmp(a.recs[i].text, c.recs[i].text) == 0;
    cr_assert_lt(same, a.n / 10, "%zu of %zu messages equal under another seed", same, a.n);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}

Test(sim, counts_per_topic_and_order)
{
    struct run r;
    struct sim_config cfg = base_config(4, 300, 1);
    run_sim(&cfg, &r);
    cr_assert_eq(r.n, 4u * 300u * 3u);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        cr_assert_eq(r.stats.messages[k], 1200);
        cr_assert_eq(r.stats.valid[k], 1200);
        cr_assert_eq(r.stats.duplicates[k] + r.stats.malformed[k] + r.stats.late[k] +
                         r.stats.reordered[k],
                     0);
    }
    /* without faults: per topic and home, consecutive seconds in order */
    int64_t last[READING_KIND_COUNT][5];
    for (int k = 0; k < READING_KIND_COUNT; k++)
        for (int h = 0; h < 5; h++)
            last[k][h] = cfg.start - 1;
    for (size_t i = 0; i < r.n; i++) {
        const struct sim_message *m = &r.recs[i].m;
        cr_assert(m->home_id >= 1 && m->home_id <= 4);
        cr_assert_eq(m->reading_time, last[m->topic][m->home_id] + 1);
        cr_assert_eq(m->step, m->reading_time - cfg.start);
        cr_assert_eq(m->flags, 0);
        last[m->topic][m->home_id] = m->reading_time;
    }
    json_t *summary = parse(r.summary);
    cr_assert_eq(json_integer_value(json_object_get(summary, "homes")), 4);
    cr_assert_eq(json_integer_value(json_object_get(summary, "seconds")), 300);
    cr_assert_eq(json_integer_value(json_object_get(summary, "total")), 3600);
    cr_assert_str_eq(json_string_value(json_object_get(summary, "start")), "2025-02-14 00:00:00");
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(summary, "valid"), "battery_data")),
        1200);
    json_decref(summary);
    run_free(&r);
}

/* Asserts the key order of msg equals the sample's (after home_id / panel_id when expected). */
static void assert_shape(json_t *msg, json_t *sample_msg, enum reading_kind kind, bool multi)
{
    char want[1024] = "", got[1024], sample_keys[1024];
    if (multi)
        strcat(want, kind == READING_SOLAR ? "home_id,panel_id," : "home_id,");
    key_list(sample_msg, sample_keys, sizeof(sample_keys));
    strcat(want, sample_keys);
    key_list(msg, got, sizeof(got));
    cr_assert_str_eq(got, want);
    if (kind != READING_BATTERY) {
        key_list(json_object_get(msg, "current_consumption_w_accumulated_hourly"), got,
                 sizeof(got));
        key_list(json_object_get(sample_msg, "current_consumption_w_accumulated_hourly"), want,
                 sizeof(want));
        cr_assert_str_eq(got, want);
        cr_assert_str_eq(got, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,");
        return;
    }
    key_list(json_object_get(msg, "batteries"), got, sizeof(got));
    cr_assert_str_eq(got, "battery_1,battery_2,battery_3,");
    json_t *sample_battery = json_object_get(json_object_get(sample_msg, "batteries"), "battery_1");
    key_list(sample_battery, want, sizeof(want));
    const char *name;
    json_t *battery;
    json_object_foreach(json_object_get(msg, "batteries"), name, battery)
    {
        key_list(battery, got, sizeof(got));
        cr_assert_str_eq(got, want);
    }
}

static void check_shapes(int32_t homes)
{
    struct run r;
    struct sim_config cfg = base_config(homes, 120, 3);
    run_sim(&cfg, &r);
    json_t *samples[READING_KIND_COUNT] = {sample("home_energy_consumption"),
                                           sample("solar_energy_data"), sample("battery_data")};
    for (size_t i = 0; i < r.n; i++) {
        const struct rec *rec = &r.recs[i];
        json_t *msg = parse(rec->text);
        assert_shape(msg, samples[rec->m.topic], rec->m.topic, homes > 1);
        assert_numbers_two_decimals(rec->text);
        char ts[SIM_TIME_TEXT_SIZE];
        cr_assert_str_eq(json_string_value(json_object_get(msg, "time_stamp")),
                         sim_format_time(rec->m.reading_time, ts));
        if (homes > 1) {
            cr_assert_eq(json_integer_value(json_object_get(msg, "home_id")), rec->m.home_id);
            if (rec->m.topic == READING_SOLAR)
                cr_assert_eq(json_integer_value(json_object_get(msg, "panel_id")),
                             rec->m.home_id * 10 + 4);
        }
        json_decref(msg);
    }
    for (int k = 0; k < READING_KIND_COUNT; k++)
        json_decref(samples[k]);
    run_free(&r);
}

Test(sim, shapes_match_samples_single_home)
{
    check_shapes(1);
}

Test(sim, shapes_match_samples_many_homes)
{
    check_shapes(3);
}

Test(sim, number_text_like_samples)
{
    struct run r;
    struct sim_config cfg = base_config(1, 3, 1);
    run_sim(&cfg, &r);
    /* home and solar flows in float style ("0.0"), zero hours as "0"; battery figures
     * as integers when whole ("capacity_kwh": 12) */
    cr_assert_not_null(strstr(r.recs[1].text, "\"current_consumption_w\": 0.0, "));
    cr_assert_not_null(strstr(r.recs[1].text, "\"23\": 0}}"));
    cr_assert_not_null(strstr(r.recs[2].text, "\"capacity_kwh\": 12, \"max_charge_speed_w\": 1, "));
    cr_assert_not_null(strstr(r.recs[2].text, "\"max_output_w\": 3.33}"));
    const char *head = "{\"time_stamp\": \"2025-02-14 00:00:00\", \"current_consumption_w\": ";
    cr_assert_eq(strncmp(r.recs[0].text, head, strlen(head)), 0, "%s", r.recs[0].text);
    run_free(&r);
}

struct battery_state {
    int64_t energy;
    bool seen;
};

Test(sim, plausible_values_over_thirty_hours)
{
    struct run r;
    struct sim_config cfg = base_config(1, 30 * 3600, 11); /* 2025-02-14 08:00 .. 02-15 14:00 */
    cr_assert_eq(sim_parse_time("2025-02-14 08:00:00", &cfg.start), 0);
    cr_assert_eq(sim_parse_time("2025-02-15 00:00:00", &cfg.battery_upgrade), 0);
    run_sim(&cfg, &r);
    size_t appliance_count;
    const struct sim_appliance *appliances = sim_default_appliances(&appliance_count);

    int64_t acc[READING_KIND_COUNT][3];
    memset(acc, 0, sizeof(acc));
    int64_t hourly_sum[READING_KIND_COUNT][3];
    memset(hourly_sum, 0, sizeof(hourly_sum));
    struct battery_state bat[3][SIM_BATTERIES];
    memset(bat, 0, sizeof(bat));
    int64_t solar_noon_total = 0, charging_seen = 0, discharging_seen = 0, upgraded_seen = 0;
    for (size_t i = 0; i < r.n; i++) {
        const struct rec *rec = &r.recs[i];
        int h = rec->m.home_id;
        int64_t t = rec->m.reading_time;
        int64_t tod = t % 86400;
        json_t *msg = parse(rec->text);
        if (rec->m.topic != READING_BATTERY) {
            int64_t e = hundredths(json_object_get(msg, "current_consumption_w"));
            int64_t a = hundredths(json_object_get(msg, "consumption_accumulated_w"));
            json_t *hourly = json_object_get(msg, "current_consumption_w_accumulated_hourly");
            cr_assert_geq(e, 0);
            acc[rec->m.topic][h] += e;
            cr_assert_eq(a, acc[rec->m.topic][h], "accumulated is the running total");
            if (tod == 0)
                hourly_sum[rec->m.topic][h] = 0; /* the hourly map starts over each day */
            hourly_sum[rec->m.topic][h] += e;
            int64_t in_map = 0;
            const char *key;
            json_t *v;
            json_object_foreach(hourly, key, v)
            {
                int hour = atoi(key);
                cr_assert(hour <= tod / 3600 || hundredths(v) == 0, "future hour filled");
                in_map += hundredths(v);
            }
            cr_assert_eq(in_map, hourly_sum[rec->m.topic][h]);
            if (rec->m.topic == READING_SOLAR) {
                if (tod < 6 * 3600 || tod >= 18 * 3600)
                    cr_assert_eq(e, 0, "sun at night: %s", rec->text);
                if (tod >= 11 * 3600 && tod < 13 * 3600)
                    cr_assert_gt(e, 0, "no sun at noon: %s", rec->text);
                cr_assert_leq(e, 278, "more than a 10 kW panel: %s", rec->text);
                if (tod == 12 * 3600)
                    solar_noon_total += e;
            } else {
                int64_t min_w = 0, max_w = 0;
                int minute = (int)(tod / 60);
                for (size_t k = 0; k < appliance_count; k++) {
                    const struct sim_appliance *ap = &appliances[k];
                    for (int32_t j = 0; j < ap->range_count; j++)
                        if (minute >= ap->range_start[j] && minute < ap->range_end[j]) {
                            min_w += ap->min_w;
                            max_w += ap->max_w;
                        }
                }
                cr_assert(e * 36 >= min_w - 18 && e * 36 <= max_w + 18,
                          "load %ld outside the appliances' ratings [%ld, %ld] W/36", (long)e,
                          (long)min_w, (long)max_w);
            }
        } else {
            const char *name;
            json_t *b;
            json_object_foreach(json_object_get(msg, "batteries"), name, b)
            {
                int id = name[8] - '1';
                int64_t cap = json_integer_value(json_object_get(b, "capacity_kwh"));
                int64_t e = hundredths(json_object_get(b, "current_energy_wh"));
                int64_t out = hundredths(json_object_get(b, "max_output_w"));
                int charging = (int)json_integer_value(json_object_get(b, "is_charging"));
                const char *status = json_string_value(json_object_get(b, "status"));
                bool upgraded = id == 0 && t >= cfg.battery_upgrade;
                cr_assert_eq(cap, upgraded ? 15 : 12);
                cr_assert_eq(out, upgraded ? 500 : 333);
                upgraded_seen += upgraded;
                cr_assert_eq(hundredths(json_object_get(b, "max_charge_speed_w")), 100);
                cr_assert(e >= 0 && e <= cap * 1000 * 100, "energy outside capacity: %s",
                          rec->text);
                struct battery_state *st = &bat[h][id];
                if (st->seen) {
                    int64_t d = e - st->energy;
                    cr_assert(d <= 100 && d >= -out, "battery moved too fast: %s", rec->text);
                    if (d > 0) {
                        cr_assert_str_eq(status, "charging");
                        cr_assert_eq(charging, 1);
                        charging_seen++;
                    } else if (d < 0) {
                        cr_assert_str_eq(status, "discharging");
                        cr_assert_eq(charging, 0);
                        discharging_seen++;
                    } else {
                        cr_assert_str_eq(status, "ideal");
                        cr_assert_eq(charging, 0);
                    }
                }
                st->seen = true;
                st->energy = e;
            }
        }
        json_decref(msg);
    }
    cr_assert_gt(solar_noon_total, 0);
    cr_assert_gt(charging_seen, 0);
    cr_assert_gt(discharging_seen, 0);
    cr_assert_eq(upgraded_seen, 14 * 3600);
    run_free(&r);
}

/* Compares two recs by topic, home, reading time, then text. */
static int rec_cmp(const void *pa, const void *pb)
{
    const struct rec *a = pa, *b = pb;
    if (a->m.topic != b->m.topic)
        return a->m.topic < b->m.topic ? -1 : 1;
    if (a->m.home_id != b->m.home_id)
        return a->m.home_id < b->m.home_id ? -1 : 1;
    if (a->m.reading_time != b->m.reading_time)
        return a->m.reading_time < b->m.reading_time ? -1 : 1;
    return strcmp(a->text, b->text);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

Test(sim, faults_are_counted_exactly_and_leave_valid_data_intact)
{
    struct run clean, faulty;
    struct sim_config cfg = base_config(5, 3 * 3600, 42);
    run_sim(&cfg, &clean);
    cfg.duplicates = 0.01;
    cfg.disorder = 0.02;
    cfg.late = 0.005;
    cfg.late_seconds = 3600;
    cfg.malformed = 0.01;
    run_sim(&cfg, &faulty);

    struct sim_stats counted;
    memset(&counted, 0, sizeof(counted));
    struct rec *valid = calloc(faulty.n, sizeof(*valid));
    size_t n_valid = 0;
    for (size_t i = 0; i < faulty.n; i++) {
        const struct rec *rec = &faulty.recs[i];
        int k = rec->m.topic;
        counted.messages[k]++;
        if (rec->m.flags & SIM_MSG_DUPLICATE) {
            counted.duplicates[k]++;
            /* an exact copy of a message emitted 1..5 steps before, in the same topic */
            bool found = false;
            for (size_t j = i; j-- > 0 && !found;) {
                const struct rec *o = &faulty.recs[j];
                if (!(o->m.flags & SIM_MSG_DUPLICATE) && o->m.topic == rec->m.topic &&
                    o->m.len == rec->m.len && strcmp(o->text, rec->text) == 0) {
                    found = true;
                    int64_t gap = rec->m.step - o->m.step;
                    cr_assert((gap >= 1 && gap <= 5) || rec->m.step == cfg.seconds,
                              "duplicate %ld steps after its original", (long)gap);
                }
            }
            cr_assert(found, "duplicate without original: %s", rec->text);
        } else if (rec->m.flags & SIM_MSG_MALFORMED) {
            counted.malformed[k]++;
        } else {
            counted.valid[k]++;
            valid[n_valid++] = *rec;
            int64_t delay = rec->m.step - (rec->m.reading_time - cfg.start);
            if (rec->m.flags & SIM_MSG_LATE) {
                counted.late[k]++;
                cr_assert(delay == 3600 || rec->m.step == cfg.seconds, "late by %ld", (long)delay);
            } else if (rec->m.flags & SIM_MSG_REORDERED) {
                counted.reordered[k]++;
                cr_assert(delay >= 3 && delay <= 60, "reordered by %ld", (long)delay);
            } else {
                cr_assert_eq(delay, 0);
            }
        }
    }
    cr_assert_eq(memcmp(&counted, &faulty.stats, sizeof(counted)), 0);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        cr_assert_eq(faulty.stats.valid[k], 5 * 3 * 3600);
        cr_assert_gt(faulty.stats.duplicates[k], 0);
        cr_assert_gt(faulty.stats.malformed[k], 0);
        cr_assert_gt(faulty.stats.late[k], 0);
        cr_assert_gt(faulty.stats.reordered[k], 0);
        cr_assert_eq(faulty.stats.messages[k], faulty.stats.valid[k] + faulty.stats.duplicates[k] +
                                                   faulty.stats.malformed[k]);
    }

    /* the valid messages are exactly the fault-free stream, in another order */
    cr_assert_eq(n_valid, clean.n);
    qsort(valid, n_valid, sizeof(*valid), rec_cmp);
    struct rec *sorted = malloc(clean.n * sizeof(*sorted));
    memcpy(sorted, clean.recs, clean.n * sizeof(*sorted));
    qsort(sorted, clean.n, sizeof(*sorted), rec_cmp);
    for (size_t i = 0; i < n_valid; i++)
        cr_assert_str_eq(valid[i].text, sorted[i].text);

    /* apart from the byte copies, no two messages are equal (malformed ones included) */
    const char **texts = malloc(faulty.n * sizeof(*texts));
    for (size_t i = 0; i < faulty.n; i++)
        texts[i] = faulty.recs[i].text;
    qsort(texts, faulty.n, sizeof(*texts), str_cmp);
    size_t distinct = faulty.n > 0;
    for (size_t i = 1; i < faulty.n; i++)
        distinct += strcmp(texts[i - 1], texts[i]) != 0;
    uint64_t copies = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        copies += faulty.stats.duplicates[k];
    cr_assert_eq(distinct, faulty.n - copies);
    free(texts);

    /* the summary says the same */
    json_t *summary = parse(faulty.summary);
    const char *fields[] = {"messages", "valid", "duplicates", "malformed", "late", "reordered"};
    const uint64_t *values[] = {faulty.stats.messages,  faulty.stats.valid, faulty.stats.duplicates,
                                faulty.stats.malformed, faulty.stats.late,  faulty.stats.reordered};
    uint64_t total = 0;
    for (size_t f = 0; f < 6; f++)
        for (int k = 0; k < READING_KIND_COUNT; k++)
            cr_assert_eq((uint64_t)json_integer_value(
                             json_object_get(json_object_get(summary, fields[f]), topic_names[k])),
                         values[f][k]);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        total += faulty.stats.messages[k];
    cr_assert_eq((uint64_t)json_integer_value(json_object_get(summary, "total")), total);
    cr_assert_eq(total, faulty.n);
    json_decref(summary);
    free(sorted);
    free(valid);
    run_free(&clean);
    run_free(&faulty);
}

Test(sim, disorder_really_reorders_within_topic_and_home)
{
    struct run r;
    struct sim_config cfg = base_config(2, 1800, 5);
    cfg.disorder = 0.05;
    run_sim(&cfg, &r);
    size_t inversions = 0;
    int64_t last[READING_KIND_COUNT][3];
    memset(last, 0, sizeof(last));
    for (size_t i = 0; i < r.n; i++) {
        const struct sim_message *m = &r.recs[i].m;
        if (m->reading_time < last[m->topic][m->home_id])
            inversions++;
        else
            last[m->topic][m->home_id] = m->reading_time;
    }
    cr_assert_geq(inversions, r.stats.reordered[0] + r.stats.reordered[1] + r.stats.reordered[2]);
    cr_assert_gt(inversions, 0);
    run_free(&r);
}

Test(sim, malformed_kinds_rotate_and_are_rejected_by_the_decoder)
{
    char err[256];
    struct clock_zone *utc = clock_zone_new("UTC", err, sizeof(err));
    cr_assert_not_null(utc, "%s", err);
    struct decode_config dc = {.default_home_id = 1, .default_panel_id = 4, .zone = utc};
    struct run r;
    struct sim_config cfg = base_config(3, 1200, 9);
    cfg.malformed = 0.05;
    run_sim(&cfg, &r);
    unsigned kinds_seen[READING_KIND_COUNT] = {0};
    struct reading out[DECODE_MAX_READINGS];
    for (size_t i = 0; i < r.n; i++) {
        const struct rec *rec = &r.recs[i];
        size_t n = 0;
        char reason[DECODE_REASON_SIZE];
        enum decode_error e = decode_message(&dc, rec->m.topic, rec->text, rec->m.len, out, &n,
                                             reason, sizeof(reason));
        if (rec->m.flags & SIM_MSG_MALFORMED) {
            cr_assert_neq(e, DECODE_OK, "malformed kind %d accepted: %s", rec->m.malformed_kind,
                          rec->text);
            kinds_seen[rec->m.topic] |= 1u << rec->m.malformed_kind;
            continue;
        }
        cr_assert_eq(e, DECODE_OK, "%s: %s", reason, rec->text);
        cr_assert_eq(n, rec->m.topic == READING_BATTERY ? 3u : 1u);
        cr_assert_eq(out[0].home_id, rec->m.home_id);
        cr_assert_eq(out[0].ts, rec->m.reading_time);
        if (rec->m.topic == READING_SOLAR)
            cr_assert_eq(out[0].device_id, sim_panel_id(3, rec->m.home_id));
    }
    cr_assert_eq(kinds_seen[READING_HOME], 0x3fu);
    cr_assert_eq(kinds_seen[READING_SOLAR], 0x3fu);
    cr_assert_eq(kinds_seen[READING_BATTERY], 0xffu);
    run_free(&r);
    clock_zone_destroy(utc);
}

Test(sim, late_messages_due_after_the_end_come_last)
{
    struct run r;
    struct sim_config cfg = base_config(1, 600, 2);
    cfg.late = 0.05;
    cfg.late_seconds = 7200; /* beyond the end: everything late is emitted at the end */
    run_sim(&cfg, &r);
    size_t first_late = r.n;
    for (size_t i = 0; i < r.n; i++)
        if (r.recs[i].m.flags & SIM_MSG_LATE && first_late == r.n)
            first_late = i;
    cr_assert_lt(first_late, r.n);
    for (size_t i = first_late; i < r.n; i++) {
        cr_assert(r.recs[i].m.flags & SIM_MSG_LATE);
        cr_assert_eq(r.recs[i].m.step, 600);
    }
    cr_assert_eq(r.n - first_late, r.stats.late[0] + r.stats.late[1] + r.stats.late[2]);
    run_free(&r);
}

Test(sim, times_parse_and_format)
{
    int64_t t;
    char buf[SIM_TIME_TEXT_SIZE];
    cr_assert_eq(sim_parse_time("2025-02-14 02:08:59", &t), 0);
    cr_assert_eq(t, 1739498939);
    cr_assert_str_eq(sim_format_time(t, buf), "2025-02-14 02:08:59");
    cr_assert_eq(sim_parse_time("2024-02-29 23:59:59", &t), 0);
    cr_assert_str_eq(sim_format_time(t + 1, buf), "2024-03-01 00:00:00");
    const char *bad[] = {"2025-02-29 00:00:00", "2025-02-14T02:08:59",  "2025-02-14 24:00:00",
                         "2025-2-14 02:08:59",  "2025-02-14 02:08:59 ", "",
                         "2025-13-01 00:00:00", "2025-02-14 02:60:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(sim_parse_time(bad[i], &t), 0, "accepted \"%s\"", bad[i]);
}

Test(sim, usage_times_parse)
{
    struct sim_appliance a = {0};
    cr_assert_eq(sim_parse_usage_time("7:00-7:15,12:00-12:15,16:30-17:00,21:30-22:00", &a), 0);
    cr_assert_eq(a.range_count, 4);
    cr_assert_eq(a.range_start[2], 16 * 60 + 30);
    cr_assert_eq(a.range_end[3], 22 * 60);
    cr_assert_eq(sim_parse_usage_time("0:00-24:00", &a), 0);
    cr_assert_eq(a.range_end[0], 1440);
    const char *bad[] = {"",          "7:00",        "7:00-6:00",  "7:00-7:00",
                         "7:60-8:00", "24:30-25:00", "7:00-8:00,", "a:00-8:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(sim_parse_usage_time(bad[i], &a), 0, "accepted \"%s\"", bad[i]);
}

Test(sim, builtin_appliances_equal_the_config_file)
{
    json_error_t e;
    json_t *root =
        json_load_file(SOLARX_SOURCE_DIR "/config/home_appliances_consumption.json", 0, &e);
    cr_assert_not_null(root, "%s", e.text);
    size_t count;
    const struct sim_appliance *table = sim_default_appliances(&count);
    cr_assert_eq(json_object_size(root), count);
    size_t i = 0;
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v)
    {
        struct sim_appliance parsed = {0};
        cr_assert_str_eq(table[i].name, name);
        json_t *range = json_object_get(v, "consumption");
        cr_assert_eq(table[i].min_w, json_integer_value(json_array_get(range, 0)), "%s", name);
        cr_assert_eq(table[i].max_w, json_integer_value(json_array_get(range, 1)), "%s", name);
        cr_assert_eq(sim_parse_usage_time(json_string_value(json_object_get(v, "time")), &parsed),
                     0);
        cr_assert_eq(parsed.range_count, table[i].range_count, "%s", name);
        for (int32_t j = 0; j < parsed.range_count; j++) {
            cr_assert_eq(parsed.range_start[j], table[i].range_start[j], "%s", name);
            cr_assert_eq(parsed.range_end[j], table[i].range_end[j], "%s", name);
        }
        i++;
    }
    json_decref(root);
}

Test(sim, custom_appliance_table_drives_the_load)
{
    struct sim_appliance one = {.name = "Heater", .min_w = 3600, .max_w = 3600};
    cr_assert_eq(sim_parse_usage_time("0:00-12:00", &one), 0);
    struct run r;
    struct sim_config cfg = base_config(1, 86400, 1);
    cfg.appliances = &one;
    cfg.appliance_count = 1;
    run_sim(&cfg, &r);
    for (size_t i = 0; i < r.n; i += 3 * 3600) {
        const struct rec *rec = &r.recs[i];
        cr_assert_eq(rec->m.topic, READING_HOME);
        bool on = rec->m.reading_time - cfg.start < 12 * 3600;
        cr_assert_not_null(strstr(rec->text, on ? "\"current_consumption_w\": 1.0,"
                                                : "\"current_consumption_w\": 0.0,"),
                           "%s", rec->text);
    }
    run_free(&r);
}

Test(sim, bad_configs_are_refused)
{
    char err[256];
    struct sim *sim = NULL;
    struct sim_config cfg = base_config(0, 10, 1);
    cr_assert_neq(sim_new(&cfg, &sim, err, sizeof(err)), 0);
    cr_assert_not_null(strstr(err, "homes"));
    cfg = base_config(1, 0, 1);
    cr_assert_neq(sim_new(&cfg, &sim, err, sizeof(err)), 0);
    cfg = base_config(1, 10, 1);
    cfg.duplicates = 1.5;
    cr_assert_neq(sim_new(&cfg, &sim, err, sizeof(err)), 0);
    cfg = base_config(1, 10, 1);
    cfg.late = 0.1;
    cfg.late_seconds = 0;
    cr_assert_neq(sim_new(&cfg, &sim, err, sizeof(err)), 0);
    cr_assert_null(sim);
}
