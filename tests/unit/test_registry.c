/* Unit tests of src/registry.c: the shipped config files, the multi-home and multi-version
 * forms, effective_from parsing, registry_equal and every validation error path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solarx/config.h"
#include "solarx/registry.h"

#define APPLIANCES SOLARX_SOURCE_DIR "/config/home_appliances_consumption.json"
#define PANELS SOLARX_SOURCE_DIR "/config/solar_panels.json"
#define DATA SOLARX_TEST_DATA "/registry/"
#define W(x) ((fixed_t)(x)*FIXED_SCALE)

#define LOAD_TIME 1750000000 /* 2025-06-15 15:06:40 UTC */

static const struct registry_options defaults = {.default_home_id = 1, .load_time = LOAD_TIME};

static struct registry *load_ok(const char *appliances, const char *panels,
                                const struct registry_options *opt)
{
    char err[512] = "";
    struct registry *reg =
        registry_load(appliances, panels, opt ? opt : &defaults, err, sizeof(err));
    cr_assert_not_null(reg, "unexpected error: %s", err);
    cr_assert_str_empty(err);
    return reg;
}

static const struct registry_appliance *find_appliance(const struct registry_home *h,
                                                       const char *name)
{
    for (size_t i = 0; i < h->appliance_count; i++)
        if (strcmp(h->appliances[i].name, name) == 0)
            return &h->appliances[i];
    cr_assert_fail("no appliance \"%s\"", name);
    return NULL;
}

Test(registry, the_shipped_appliances_file)
{
    struct registry *reg = load_ok(APPLIANCES, NULL, NULL);
    cr_assert_eq(registry_home_count(reg), 1);
    cr_assert_eq(registry_panel_count(reg), 0);
    const struct registry_home *h = registry_home(reg, 0);
    cr_assert_eq(h->home_id, 1, "the single-home form belongs to the default home");
    cr_assert_not(h->has_effective_from);
    cr_assert_eq(h->effective_from, LOAD_TIME);
    cr_assert_eq(h->appliance_count, 15);
    /* Summed by hand from the file, in its order. */
    cr_assert_eq(h->min_w, W(300 + 2000 + 1500 + 500 + 60 + 10 + 50 + 100 + 50 + 5 + 5 + 800 +
                             1000 + 500 + 1000));
    cr_assert_eq(h->max_w, W(1500 + 5000 + 1500 + 3000 + 60 + 10 + 100 + 600 + 300 + 20 + 5 + 1800 +
                             1000 + 1000 + 4000));
    cr_assert_eq(h->min_w, W(7880));
    cr_assert_eq(h->max_w, W(19895));
    for (size_t i = 1; i < h->appliance_count; i++)
        cr_assert_lt(strcmp(h->appliances[i - 1].name, h->appliances[i].name), 0,
                     "appliances sorted by name");

    const struct registry_appliance *kettle = find_appliance(h, "Electric Kettle");
    cr_assert_eq(kettle->min_w, W(1500));
    cr_assert_eq(kettle->max_w, W(1500));
    cr_assert_str_eq(kettle->usage_time, "7:00-7:15,12:00-12:15,16:30-17:00,21:30-22:00");
    cr_assert_eq(kettle->range_count, 4);
    const uint16_t want[4][2] = {{420, 435}, {720, 735}, {990, 1020}, {1290, 1320}};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(kettle->ranges[i].start_min, want[i][0]);
        cr_assert_eq(kettle->ranges[i].end_min, want[i][1]);
    }
    const struct registry_appliance *fridge = find_appliance(h, "Refrigerator");
    cr_assert_eq(fridge->range_count, 1);
    cr_assert_eq(fridge->ranges[0].start_min, 0);
    cr_assert_eq(fridge->ranges[0].end_min, 1440, "24:00 as an end");
    cr_assert_eq(find_appliance(h, "Computer")->max_w, W(600));

    struct dim_attrs a, b;
    registry_home_attrs(h, &a);
    dim_home_attrs(W(7880), W(19895), &b);
    cr_assert(dim_attrs_equal(&a, &b));
    cr_assert_null(registry_home(reg, 1));
    registry_destroy(reg);
}

Test(registry, the_shipped_panels_file)
{
    struct registry_options opt = defaults;
    opt.default_home_id = 5;
    struct registry *reg = load_ok(NULL, PANELS, &opt);
    cr_assert_eq(registry_home_count(reg), 0);
    cr_assert_eq(registry_panel_count(reg), 4);
    const struct registry_panel *p = registry_panel(reg, 3);
    cr_assert_eq(p->panel_id, 4);
    cr_assert_str_eq(p->name, "kafka panel");
    cr_assert_eq(p->home_id, 5, "no home_id: the default home");
    cr_assert_eq(p->capacity_kwh, W(10));
    cr_assert_eq(p->intensity_power_rating, W(1000));
    cr_assert_eq(p->temperature_power_rating, W(25));
    cr_assert_not(p->has_effective_from);
    cr_assert_eq(p->effective_from, LOAD_TIME);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(registry_panel(reg, i)->panel_id, (int32_t)i + 1);
    cr_assert_null(registry_panel(reg, 4));

    struct dim_attrs a, b;
    registry_panel_attrs(p, &a);
    cr_assert(dim_panel_attrs("kafka panel", W(10), W(1000), W(25), 5, &b));
    cr_assert(dim_attrs_equal(&a, &b));
    registry_destroy(reg);

    reg = load_ok(APPLIANCES, PANELS, NULL);
    cr_assert_eq(registry_home_count(reg), 1);
    cr_assert_eq(registry_panel_count(reg), 4);
    registry_destroy(reg);
}

Test(registry, multi_home_and_multi_version_forms)
{
    struct registry *reg = load_ok(DATA "appliances_multi.json", DATA "panels_multi.json", NULL);
    cr_assert_eq(registry_home_count(reg), 3);
    const struct registry_home *h0 = registry_home(reg, 0), *h1 = registry_home(reg, 1),
                               *h2 = registry_home(reg, 2);
    /* sorted by (home_id, effective_from) */
    cr_assert_eq(h0->home_id, 1);
    cr_assert(h0->has_effective_from);
    cr_assert_eq(h0->effective_from, 1735689600 - 3600, "2025-01-01T00:00:00+01:00");
    cr_assert_eq(h0->appliance_count, 1);
    cr_assert_eq(h0->min_w, W(300));
    cr_assert_eq(h0->max_w, W(1500));
    cr_assert_eq(h1->home_id, 1);
    cr_assert_eq(h1->effective_from, 1740787200, "2025-03-01 00:00:00 UTC");
    cr_assert_eq(h1->appliance_count, 2);
    cr_assert_eq(h1->min_w, W(300 + 800));
    cr_assert_eq(h1->max_w, W(1500) + 2500500000LL, "1500 + 2500.5 W exactly");
    const struct registry_appliance *pump = find_appliance(h1, "Heat Pump");
    cr_assert_str_eq(pump->usage_time, "6:00-9:00, 17:00-23:00", "kept verbatim");
    cr_assert_eq(pump->range_count, 2);
    cr_assert_eq(pump->ranges[1].start_min, 17 * 60);
    cr_assert_eq(pump->ranges[1].end_min, 23 * 60);
    cr_assert_eq(h2->home_id, 2);
    cr_assert_not(h2->has_effective_from);
    cr_assert_eq(h2->effective_from, LOAD_TIME);
    cr_assert_eq(h2->min_w, W(5));

    cr_assert_eq(registry_panel_count(reg), 3);
    const struct registry_panel *p0 = registry_panel(reg, 0), *p1 = registry_panel(reg, 1),
                                *p2 = registry_panel(reg, 2);
    cr_assert_eq(p0->panel_id, 4);
    cr_assert_eq(p0->home_id, 1);
    cr_assert_eq(p1->panel_id, 7);
    cr_assert_eq(p1->home_id, 2);
    cr_assert_eq(p1->effective_from, 1739491200 + 8 * 3600, "2025-02-14T08:00:00Z");
    cr_assert_eq(p1->capacity_kwh, 4250000);
    cr_assert_eq(p2->panel_id, 7);
    cr_assert_eq(p2->home_id, 3);
    cr_assert_eq(p2->effective_from, 1739491200 + 10 * 3600);
    cr_assert_eq(p2->temperature_power_rating, -5500000);

    cr_assert_eq(registry_home_in_effect(reg, 1, 0), h0, "before all: the first");
    cr_assert_eq(registry_home_in_effect(reg, 1, 1740787199), h0);
    cr_assert_eq(registry_home_in_effect(reg, 1, 1740787200), h1);
    cr_assert_eq(registry_home_in_effect(reg, 1, INT64_MAX), h1);
    cr_assert_eq(registry_home_in_effect(reg, 2, 0), h2);
    cr_assert_null(registry_home_in_effect(reg, 3, 0));
    cr_assert_null(registry_home_in_effect(reg, 0, 0));

    /* The entries of one home, applied to its history, give its versions. */
    struct dim_history *hist = dim_history_new(DIM_HOME, 1, 1);
    struct dim_observation obs[2];
    obs[0].t = h1->effective_from;
    registry_home_attrs(h1, &obs[0].attrs);
    obs[1].t = h0->effective_from;
    registry_home_attrs(h0, &obs[1].attrs);
    cr_assert_eq(dim_history_apply_registry(hist, obs, 2), 1);
    cr_assert_eq(dim_history_count(hist), 2);
    cr_assert_eq(dim_history_version(hist, 0)->start, h0->effective_from);
    cr_assert_eq(dim_history_version(hist, 1)->start, h1->effective_from);
    cr_assert_eq(dim_history_apply_registry(hist, obs, 2), 0, "an unchanged reload");
    dim_history_destroy(hist);
    registry_destroy(reg);
}

/* --- effective_from parsing ---------------------------------------------------------------- */

static char tmp_dir[64];
static char tmp_path[128];

static void make_tmp_dir(void)
{
    strcpy(tmp_dir, "/tmp/solarx-registry-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
}

static void remove_tmp_dir(void)
{
    const char *names[] = {"apps.json", "appliances.json", "panels.json"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(tmp_path, sizeof(tmp_path), "%s/%s", tmp_dir, names[i]);
        unlink(tmp_path);
    }
    cr_assert_eq(rmdir(tmp_dir), 0, "stray files in %s", tmp_dir);
}

/* Writes text to tmp_dir/name and returns the path (valid until the next call). */
static const char *write_file(const char *name, const char *text)
{
    snprintf(tmp_path, sizeof(tmp_path), "%s/%s", tmp_dir, name);
    FILE *f = fopen(tmp_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    return tmp_path;
}

static int64_t panel_time(const char *eff, const struct registry_options *opt)
{
    char text[512];
    snprintf(text, sizeof(text),
             "[{\"id\": 1, \"name\": \"p\", \"capacity_kwh\": 1, \"intensity_power_rating\": 1, "
             "\"temperature_power_rating\": 25, \"effective_from\": \"%s\"}]",
             eff);
    struct registry *reg = load_ok(NULL, write_file("panels.json", text), opt);
    int64_t t = registry_panel(reg, 0)->effective_from;
    registry_destroy(reg);
    return t;
}

Test(registry, effective_from_builtin_parser, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    cr_assert_eq(panel_time("2025-02-14 00:00:00", NULL), 1739491200);
    cr_assert_eq(panel_time("2025-02-14T00:00:00", NULL), 1739491200);
    cr_assert_eq(panel_time("2025-02-14T00:00:00Z", NULL), 1739491200);
    cr_assert_eq(panel_time("2025-02-14T02:00:00+02:00", NULL), 1739491200);
    cr_assert_eq(panel_time("2025-02-13T19:30:00-0430", NULL), 1739491200);
    cr_assert_eq(panel_time("2025-02-14T05:00:00+05", NULL), 1739491200);
    cr_assert_eq(panel_time("2024-02-29 23:59:59", NULL), 1709251199, "leap day");
    cr_assert_eq(panel_time("1970-01-01 00:00:00", NULL), 0);
}

static bool epoch_parser(void *ctx, const char *text, int64_t *epoch_out, char *reason,
                         size_t reason_size)
{
    ++*(int *)ctx;
    if (strncmp(text, "epoch:", 6) != 0) {
        snprintf(reason, reason_size, "not an epoch: text");
        return false;
    }
    *epoch_out = strtoll(text + 6, NULL, 10);
    return true;
}

Test(registry, effective_from_parser_callback, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    int calls = 0;
    struct registry_options opt = defaults;
    opt.parse_time = epoch_parser;
    opt.parse_time_ctx = &calls;
    cr_assert_eq(panel_time("epoch:12345", &opt), 12345);
    cr_assert_eq(calls, 1);

    char err[512];
    const char *path = write_file(
        "panels.json", "[{\"id\": 1, \"name\": \"p\", \"capacity_kwh\": 1, "
                       "\"intensity_power_rating\": 1, \"temperature_power_rating\": 25, "
                       "\"effective_from\": \"2025-01-01 00:00:00\"}]");
    cr_assert_null(registry_load(NULL, path, &opt, err, sizeof(err)));
    char want[512];
    snprintf(want, sizeof(want),
             "registry: %s: entry 1: \"effective_from\" \"2025-01-01 00:00:00\": not an epoch: "
             "text",
             path);
    cr_assert_str_eq(err, want);
}

/* --- registry_equal ------------------------------------------------------------------------ */

Test(registry, equal_detects_an_unchanged_reload, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    struct registry_options later = defaults;
    later.load_time = LOAD_TIME + 3600;
    struct registry *a = load_ok(APPLIANCES, PANELS, NULL);
    struct registry *b = load_ok(APPLIANCES, PANELS, &later);
    cr_assert(registry_equal(a, b), "the same files at another load time");
    cr_assert(registry_equal(b, a));
    registry_destroy(b);

    /* Reordered appliances and reformatted numbers: the same registry. */
    b = load_ok(write_file("apps.json",
                           "{\"Water Heater\": {\"time\": \"12:00-16:00\", \"consumption\": "
                           "[1000.0, 4000]}}"),
                PANELS, NULL);
    struct registry *c =
        load_ok(write_file("apps.json", "{\"Water Heater\": {\"consumption\": [1000, 4e3], "
                                        "\"time\": \"12:00-16:00\"}}"),
                PANELS, NULL);
    cr_assert(registry_equal(b, c));
    cr_assert_not(registry_equal(a, b));
    registry_destroy(c);

    const char *variants[] = {
        "{\"Water Heater\": {\"consumption\": [1000, 4001], \"time\": \"12:00-16:00\"}}",
        "{\"Water Heater\": {\"consumption\": [999, 4000], \"time\": \"12:00-16:00\"}}",
        "{\"Water Heater\": {\"consumption\": [1000, 4000], \"time\": \"12:00-16:30\"}}",
        "{\"Water heater\": {\"consumption\": [1000, 4000], \"time\": \"12:00-16:00\"}}",
        "[{\"home_id\": 2, \"appliances\": {\"Water Heater\": {\"consumption\": [1000, 4000], "
        "\"time\": \"12:00-16:00\"}}}]",
        "[{\"home_id\": 1, \"effective_from\": \"2025-01-01 00:00:00\", \"appliances\": "
        "{\"Water Heater\": {\"consumption\": [1000, 4000], \"time\": \"12:00-16:00\"}}}]",
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        c = load_ok(write_file("apps.json", variants[i]), PANELS, NULL);
        cr_assert_not(registry_equal(b, c), "variant %zu seen as unchanged", i);
        registry_destroy(c);
    }
    /* The same home in the multi-home form at load time is the same registry. */
    c = load_ok(write_file("apps.json",
                           "[{\"home_id\": 1, \"appliances\": {\"Water Heater\": {\"consumption\": "
                           "[1000, 4000], \"time\": \"12:00-16:00\"}}}]"),
                PANELS, NULL);
    cr_assert(registry_equal(b, c));
    registry_destroy(c);

    const char *panel_variants[] = {
        "[{\"id\": 4, \"name\": \"kafka panel\", \"capacity_kwh\": 10, "
        "\"intensity_power_rating\": 1000, \"temperature_power_rating\": 25}]",
        "[{\"id\": 1, \"name\": \"roof panel\", \"capacity_kwh\": 3, \"intensity_power_rating\": "
        "1000, \"temperature_power_rating\": 25}, {\"id\": 2, \"name\": \"pole panel\", "
        "\"capacity_kwh\": 5, \"intensity_power_rating\": 1300, \"temperature_power_rating\": 25}, "
        "{\"id\": 3, \"name\": \"flush panel\", \"capacity_kwh\": 10, \"intensity_power_rating\": "
        "1500, \"temperature_power_rating\": 25}, {\"id\": 4, \"name\": \"kafka panel\", "
        "\"capacity_kwh\": 10, \"intensity_power_rating\": 1000, \"temperature_power_rating\": "
        "26}]",
    };
    for (size_t i = 0; i < 2; i++) {
        c = load_ok(APPLIANCES, write_file("panels.json", panel_variants[i]), NULL);
        cr_assert_not(registry_equal(a, c), "panel variant %zu seen as unchanged", i);
        registry_destroy(c);
    }
    registry_destroy(b);
    registry_destroy(a);
}

/* --- validation errors --------------------------------------------------------------------- */

/* Loads text as the appliances (panels = false) or panels file, expecting failure with a message
 * "registry: <path>: " + something containing fragment. */
static void fails(bool panels, const char *text, const char *fragment)
{
    const char *path = write_file(panels ? "panels.json" : "appliances.json", text);
    char err[512] = "";
    struct registry *reg = panels ? registry_load(NULL, path, &defaults, err, sizeof(err))
                                  : registry_load(path, NULL, &defaults, err, sizeof(err));
    cr_assert_null(reg, "loaded although it should fail with \"%s\":\n%s", fragment, text);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "registry: %s: ", path);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "error \"%s\" does not name the file",
              err);
    cr_assert(strstr(err, fragment), "error \"%s\" lacks \"%s\"", err, fragment);
    cr_assert_null(strchr(err, '\n'), "one line");
}

#define APP(json) "{\"Iron\": " json "}"
#define IRON(cons, time) APP("{\"consumption\": " cons ", \"time\": " time "}")

Test(registry, appliance_errors, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    fails(false, "{\"Iron\": ", "line 1 column");
    fails(false,
          "{\"Iron\": {\"consumption\": [1, 2], \"time\": \"7:00-8:00\", \"time\": "
          "\"9:00-10:00\"}}",
          "duplicate");
    fails(false, "42", "expected an object of appliances or an array of homes");
    fails(false, "{}", "no appliances");
    fails(false, APP("5"), "appliance \"Iron\": expected an object");
    fails(false, "{\"\": {\"consumption\": [1, 2], \"time\": \"7:00-8:00\"}}",
          "an appliance name must not be empty");
    fails(false, APP("{\"time\": \"7:00-8:00\"}"), "appliance \"Iron\": missing \"consumption\"");
    fails(false, APP("{\"consumption\": [1, 2]}"), "appliance \"Iron\": missing \"time\"");
    fails(false, APP("{\"consumption\": [1, 2], \"time\": \"7:00-8:00\", \"watts\": 3}"),
          "appliance \"Iron\": unknown key \"watts\"");
    const char *bad_consumption[] = {"[2, 1]",    "[-1, 2]",    "[1]",
                                     "[1, 2, 3]", "[\"1\", 2]", "[1, true]",
                                     "5",         "[1, 1e300]", "{}"};
    for (size_t i = 0; i < sizeof(bad_consumption) / sizeof(bad_consumption[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), IRON("%s", "\"7:00-8:00\""), bad_consumption[i]);
        fails(false, text,
              "appliance \"Iron\": \"consumption\" must be [min, max] in W with 0 <= min <= max");
    }
    fails(false, IRON("[1, 2]", "5"), "\"time\" must be a string");
    fails(false, IRON("[1, 2]", "\"\""), "\"time\" must not be empty");
    fails(false, IRON("[1, 2]", "\"7:00-7:75\""),
          "\"time\" \"7:00-7:75\": no such time of day "
          "\"7:75\"");
    fails(false, IRON("[1, 2]", "\"25:00-26:00\""), "no such time of day \"25:00\"");
    fails(false, IRON("[1, 2]", "\"23:00-24:30\""), "no such time of day \"24:30\"");
    fails(false, IRON("[1, 2]", "\"24:00-24:00\""), "must end after it starts");
    fails(false, IRON("[1, 2]", "\"22:00-2:00\""), "range \"22:00-2:00\" must end after it starts");
    fails(false, IRON("[1, 2]", "\"7:00-7:00\""), "must end after it starts");
    fails(false, IRON("[1, 2]", "\"10:00-12:00,11:00-13:00\""),
          "range \"11:00-13:00\" overlaps or precedes the one before it");
    fails(false, IRON("[1, 2]", "\"12:00-13:00,10:00-11:00\""), "overlaps or precedes");
    fails(false, IRON("[1, 2]", "\"7:00\""), "expected '-'");
    fails(false, IRON("[1, 2]", "\"7:00-8:00;9:00-10:00\""), "expected ','");
    fails(false, IRON("[1, 2]", "\"7:00-8:00,\""), "expected H:MM");
    fails(false, IRON("[1, 2]", "\"7-8\""), "expected H:MM at \"7-8\"");
    fails(false, IRON("[1, 2]", "\"007:00-8:00\""), "expected H:MM");
    fails(false, IRON("[1, 2]", "\"7:0-8:00\""), "expected two digits of minutes");
    fails(false, IRON("[1, 2]", "\" 7:00-8:00\""), "expected H:MM");

    /* Sums that do not fit: enough appliances of the largest accepted rating. */
    long count = (long)(INT64_MAX / (FIXED_MAX_INPUT * FIXED_SCALE)) + 2;
    size_t size = (size_t)count * 96 + 16, len = 1;
    char *big = malloc(size);
    cr_assert_not_null(big);
    strcpy(big, "{");
    for (long i = 0; i < count; i++)
        len +=
            (size_t)snprintf(big + len, size - len,
                             "%s\"A%ld\": {\"consumption\": [0, %lld], \"time\": \"0:00-24:00\"}",
                             i ? ", " : "", i, (long long)FIXED_MAX_INPUT);
    strcat(big, "}");
    fails(false, big, "the sum of \"consumption\" over the appliances is too large");
    free(big);

    struct registry_options opt = defaults;
    opt.default_home_id = 0;
    char err[512];
    const char *path = write_file("apps.json", IRON("[1, 2]", "\"7:00-8:00\""));
    cr_assert_null(registry_load(path, NULL, &opt, err, sizeof(err)));
    cr_assert(strstr(err, "the default home id must be positive"), "%s", err);
}

#define HOME_APPS "{\"Iron\": {\"consumption\": [1, 2], \"time\": \"7:00-8:00\"}}"

Test(registry, multi_home_errors, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    fails(false, "[]", "no homes");
    fails(false, "[5]", "entry 1: expected an object with \"home_id\" and \"appliances\"");
    fails(false, "[{\"appliances\": " HOME_APPS "}]", "entry 1: missing \"home_id\"");
    fails(false, "[{\"home_id\": 1}]", "entry 1: missing \"appliances\"");
    const char *bad_ids[] = {"0", "-1", "\"1\"", "1.5", "2147483648", "null"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[{\"home_id\": 1, \"appliances\": " HOME_APPS "}, "
                 "{\"home_id\": %s, \"appliances\": " HOME_APPS "}]",
                 bad_ids[i]);
        fails(false, text, "entry 2: \"home_id\" must be a positive integer");
    }
    fails(false, "[{\"home_id\": 1, \"appliances\": []}]",
          "entry 1 (home 1): \"appliances\" must be an object of appliances");
    fails(false, "[{\"home_id\": 1, \"appliances\": {}}]", "entry 1 (home 1): no appliances");
    fails(false,
          "[{\"home_id\": 3, \"appliances\": {\"Iron\": {\"consumption\": [2, 1], "
          "\"time\": \"7:00-8:00\"}}}]",
          "entry 1 (home 3): appliance \"Iron\": \"consumption\" must be");
    fails(false, "[{\"home_id\": 1, \"apliances\": " HOME_APPS "}]",
          "entry 1: unknown key \"apliances\"");
    fails(false,
          "[{\"home_id\": 1, \"effective_form\": \"2025-01-01 00:00:00\", "
          "\"appliances\": " HOME_APPS "}]",
          "entry 1: unknown key \"effective_form\"");
    fails(false, "[{\"home_id\": 1, \"effective_from\": 5, \"appliances\": " HOME_APPS "}]",
          "entry 1: \"effective_from\" must be a timestamp string");
    const char *bad_times[] = {"2025-13-01 00:00:00", "2025-02-29 00:00:00", "2025-01-01 24:00:00",
                               "2025-01-01 00:60:00", "2025-01-01 00:00:60", "2025-00-10 00:00:00"};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
        char text[256], want[128];
        snprintf(text, sizeof(text),
                 "[{\"home_id\": 1, \"effective_from\": \"%s\", \"appliances\": " HOME_APPS "}]",
                 bad_times[i]);
        snprintf(want, sizeof(want), "entry 1: \"effective_from\" \"%s\": no such date",
                 bad_times[i]);
        fails(false, text, want);
    }
    const char *bad_formats[] = {
        "2025-01-01", "2025-01-01 00:00",    "2025/01/01 00:00:00", "yesterday",
        "",           "2025-01-01  00:00:00"};
    for (size_t i = 0; i < sizeof(bad_formats) / sizeof(bad_formats[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[{\"home_id\": 1, \"effective_from\": \"%s\", \"appliances\": " HOME_APPS "}]",
                 bad_formats[i]);
        fails(false, text, "expected \"YYYY-MM-DD HH:MM:SS\" or ISO 8601");
    }
    fails(false,
          "[{\"home_id\": 1, \"effective_from\": \"2025-01-01 00:00:00 UTC\", "
          "\"appliances\": " HOME_APPS "}]",
          "unexpected text after the time");
    fails(false,
          "[{\"home_id\": 1, \"effective_from\": \"2025-01-01T00:00:00+25:00\", "
          "\"appliances\": " HOME_APPS "}]",
          "bad UTC offset");
    fails(false,
          "[{\"home_id\": 1, \"effective_from\": \"2025-01-01T00:00:00+01:\", "
          "\"appliances\": " HOME_APPS "}]",
          "bad UTC offset");
    fails(false,
          "[{\"home_id\": 1, \"effective_from\": \"2025-01-01T00:00:00+01:7\", "
          "\"appliances\": " HOME_APPS "}]",
          "bad UTC offset");
    fails(
        false,
        "[{\"home_id\": 1, \"effective_from\": \"2025-01-01 00:00:00\", \"appliances\": " HOME_APPS
        "}, {\"home_id\": 2, \"appliances\": " HOME_APPS "}, "
        "{\"home_id\": 1, \"effective_from\": \"2025-01-01T01:00:00+01:00\", "
        "\"appliances\": " HOME_APPS "}]",
        "entry 3: home 1 appears twice with the same \"effective_from\"");
    fails(false,
          "[{\"home_id\": 1, \"appliances\": " HOME_APPS "}, "
          "{\"home_id\": 1, \"effective_from\": \"2025-01-01 00:00:00\", \"appliances\": " HOME_APPS
          "}]",
          "entry 2: home 1 appears more than once, so each of its entries needs "
          "\"effective_from\"");
}

#define PANEL_FIELDS                                                                               \
    "\"name\": \"p\", \"capacity_kwh\": 1, \"intensity_power_rating\": 1000, "                     \
    "\"temperature_power_rating\": 25"

Test(registry, panel_errors, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    /* The example of the contract, byte for byte. */
    char err[512];
    const char *path = DATA "panels_bad_entry3.json";
    cr_assert_null(registry_load(NULL, path, &defaults, err, sizeof(err)));
    char want[512];
    snprintf(want, sizeof(want),
             "registry: %s: entry 3: \"capacity_kwh\" must be a positive number", path);
    cr_assert_str_eq(err, want);

    cr_assert_null(registry_load(NULL, DATA "no_such_file.json", &defaults, err, sizeof(err)));
    snprintf(want, sizeof(want), "registry: %s: No such file or directory",
             DATA "no_such_file.json");
    cr_assert_str_eq(err, want);
    cr_assert_null(registry_load(DATA "no_such_file.json", PANELS, &defaults, err, sizeof(err)));
    cr_assert_str_eq(err, want, "the appliances file is named too");

    fails(true, "[", "line 1 column");
    fails(true, "{}", "expected an array of panels");
    fails(true, "[1]", "entry 1: expected an object");
    fails(true, "[{" PANEL_FIELDS "}]", "entry 1: missing \"id\"");
    const char *bad_ids[] = {"0", "-4", "\"4\"", "4.0", "true"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[{\"id\": %s, " PANEL_FIELDS "}]", bad_ids[i]);
        fails(true, text, "entry 1: \"id\" must be a positive integer");
    }
    fails(true,
          "[{\"id\": 1, \"capacity_kwh\": 1, \"intensity_power_rating\": 1, "
          "\"temperature_power_rating\": 1}]",
          "entry 1: missing \"name\"");
    const char *bad_names[] = {
        "\"\"", "5", "null",
        "\"0123456789012345678901234567890123456789012345678901234567890123\""};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[{\"id\": 1, \"name\": %s, \"capacity_kwh\": 1, \"intensity_power_rating\": 1, "
                 "\"temperature_power_rating\": 1}]",
                 bad_names[i]);
        fails(true, text, "entry 1: \"name\" must be a non-empty string of at most 63 bytes");
    }
    const char *keys[] = {"capacity_kwh", "intensity_power_rating"};
    const char *bad_values[] = {"0", "-1", "\"10\"", "null", "1e300", "[1]"};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
            char text[256], frag[128];
            snprintf(text, sizeof(text),
                     "[{\"id\": 1, \"name\": \"p\", \"%s\": %s, \"%s\": 1, "
                     "\"temperature_power_rating\": 25}]",
                     keys[k], bad_values[i], keys[1 - k]);
            snprintf(frag, sizeof(frag), "entry 1: \"%s\" must be a positive number", keys[k]);
            fails(true, text, frag);
        }
        char text[256], frag[128];
        snprintf(text, sizeof(text),
                 "[{\"id\": 1, \"name\": \"p\", \"%s\": 1, \"temperature_power_rating\": 25}]",
                 keys[1 - k]);
        snprintf(frag, sizeof(frag), "entry 1: missing \"%s\"", keys[k]);
        fails(true, text, frag);
    }
    fails(true,
          "[{\"id\": 1, \"name\": \"p\", \"capacity_kwh\": 1, \"intensity_power_rating\": 1}]",
          "entry 1: missing \"temperature_power_rating\"");
    fails(true,
          "[{\"id\": 1, \"name\": \"p\", \"capacity_kwh\": 1, \"intensity_power_rating\": 1, "
          "\"temperature_power_rating\": \"25C\"}]",
          "entry 1: \"temperature_power_rating\" must be a number");
    fails(true, "[{\"id\": 1, " PANEL_FIELDS ", \"home_id\": 0}]",
          "entry 1: \"home_id\" must be a positive integer");
    fails(true, "[{\"id\": 1, " PANEL_FIELDS ", \"effective_from\": \"2025-02-30 00:00:00\"}]",
          "entry 1: \"effective_from\" \"2025-02-30 00:00:00\": no such date");
    fails(true, "[{\"id\": 1, " PANEL_FIELDS ", \"colour\": \"blue\"}]",
          "entry 1: unknown key \"colour\"");
    fails(true,
          "[{\"id\": 1, " PANEL_FIELDS "}, {\"id\": 2, " PANEL_FIELDS "}, {\"id\": 1, " PANEL_FIELDS
          "}]",
          "entry 3: panel 1 appears more than once, so each of its entries needs "
          "\"effective_from\"");
    fails(true,
          "[{\"id\": 1, " PANEL_FIELDS ", \"effective_from\": \"2025-01-01 00:00:00\"}, "
          "{\"id\": 1, " PANEL_FIELDS ", \"effective_from\": \"2025-01-01T00:00:00Z\"}]",
          "entry 2: panel 1 appears twice with the same \"effective_from\"");

    struct registry *reg = load_ok(NULL, write_file("panels.json", "[]"), NULL);
    cr_assert_eq(registry_panel_count(reg), 0, "a site without panels");
    registry_destroy(reg);
    reg = load_ok(NULL, NULL, NULL);
    cr_assert_eq(registry_home_count(reg) + registry_panel_count(reg), 0);
    registry_destroy(reg);
    registry_destroy(NULL);
}

/* --- registry_load_configured: the rule for a missing file ------------------------------------ */

static struct config *config_from(const char *text, char **envp)
{
    char path[] = "/tmp/solarx-regconf-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char err[512] = "";
    struct config *cfg = config_load(path, envp, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(cfg, "config: %s", err);
    return cfg;
}

Test(registry_configured, a_missing_default_file_is_an_empty_registry)
{
    char *env[] = {NULL};
    struct config *cfg = config_from("[solarx]\n", env);
    free(cfg->appliances_file); /* as if the compiled-in default named a missing file */
    free(cfg->panels_file);
    cfg->appliances_file = strdup("/nonexistent/solarx/home_appliances.json");
    cfg->panels_file = strdup("/nonexistent/solarx/solar_panels.json");
    char err[512] = "";
    struct registry *reg = registry_load_configured(cfg, NULL, LOAD_TIME, err, sizeof(err));
    cr_assert_not_null(reg, "unexpected error: %s", err);
    cr_expect_eq(registry_home_count(reg), 0);
    cr_expect_eq(registry_panel_count(reg), 0);
    registry_destroy(reg);
    config_destroy(cfg);
}

Test(registry_configured, a_missing_explicit_file_is_an_error_naming_it)
{
    char *env[] = {NULL};
    struct config *cfg = config_from("[solarx]\nappliances_file = " APPLIANCES "\n"
                                     "panels_file = /nonexistent/panels.json\n",
                                     env);
    char err[512] = "";
    cr_expect_null(registry_load_configured(cfg, NULL, LOAD_TIME, err, sizeof(err)));
    cr_expect(strstr(err, "/nonexistent/panels.json") != NULL, "%s", err);
    cr_expect(strstr(err, "panels_file") != NULL, "%s", err);
    config_destroy(cfg);

    char *env2[] = {"SOLARX_SOLARX_APPLIANCES_FILE=/nonexistent/app.json", NULL};
    cfg = config_from("[solarx]\npanels_file = " PANELS "\n", env2);
    cr_expect_null(registry_load_configured(cfg, NULL, LOAD_TIME, err, sizeof(err)));
    cr_expect(strstr(err, "/nonexistent/app.json") != NULL, "%s", err);
    config_destroy(cfg);
}

Test(registry_configured, present_files_load_as_registry_load_does)
{
    char *env[] = {NULL};
    struct config *cfg =
        config_from("[solarx]\nappliances_file = " APPLIANCES "\npanels_file = " PANELS "\n", env);
    char err[512] = "";
    struct registry *reg = registry_load_configured(cfg, NULL, LOAD_TIME, err, sizeof(err));
    cr_assert_not_null(reg, "unexpected error: %s", err);
    struct registry *direct = load_ok(APPLIANCES, PANELS, NULL);
    cr_expect(registry_equal(reg, direct));
    registry_destroy(reg);
    registry_destroy(direct);
    config_destroy(cfg);
}
