/* Checks docker/grafana's dashboard and docker/prometheus/alerts.yml against the code: every
 * solarx_* metric they reference is one src/metrics.c renders (a struct metrics is rendered here),
 * and every solarx_* relation the dashboard's SQL queries exists after the migrations. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <yaml.h>

#include <ctype.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "solarx/metrics.h"

#define DASHBOARD SOLARX_SOURCE_DIR "/docker/grafana/dashboards/solarx-stream.json"
#define ALERTS SOLARX_SOURCE_DIR "/docker/prometheus/alerts.yml"
#define MAX_NAMES 256

/* A set of names (small: linear search is fine). */
struct names {
    size_t count;
    char name[MAX_NAMES][96];
};

static bool names_has(const struct names *n, const char *name)
{
    for (size_t i = 0; i < n->count; i++)
        if (strcmp(n->name[i], name) == 0)
            return true;
    return false;
}

static void names_add(struct names *n, const char *name, size_t len)
{
    char buf[96];
    snprintf(buf, sizeof(buf), "%.*s", (int)len, name);
    if (!names_has(n, buf) && n->count < MAX_NAMES)
        snprintf(n->name[n->count++], sizeof(n->name[0]), "%s", buf);
}

static void names_remove(struct names *n, const char *name)
{
    for (size_t i = 0; i < n->count; i++)
        if (strcmp(n->name[i], name) == 0) {
            memcpy(n->name[i], n->name[--n->count], sizeof(n->name[0]));
            return;
        }
}

/* --- what the service exports ---------------------------------------------------------------- */

/* The series names metrics_render writes: every "# TYPE" name, and a histogram's _bucket, _sum
 * and _count. */
static void exported_metrics(struct names *out)
{
    static const char *const topics[READING_KIND_COUNT] = {"home", "solar", "battery"};
    struct metrics m = {0};
    struct metrics_lag lag = {"home", 0, 1};
    struct metrics_live live = {.lags = &lag, .lag_count = 1, .topics = topics};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    metrics_render(&m, &live, f);
    fclose(f);
    char name[96], type[32];
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (sscanf(line, "# TYPE %95s %31s", name, type) != 2)
            continue;
        names_add(out, name, strlen(name));
        if (strcmp(type, "histogram") == 0) {
            static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
            for (size_t i = 0; i < 3; i++) {
                char series[96];
                snprintf(series, sizeof(series), "%s%s", name, suffixes[i]);
                names_add(out, series, strlen(series));
            }
        }
    }
    free(text);
}

/* --- what PromQL and SQL reference ----------------------------------------------------------- */

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* Adds the solarx_* metric names of PromQL expression EXPR (outside string literals) to OUT. */
static void promql_metrics(const char *expr, struct names *out)
{
    for (const char *p = expr; *p;) {
        if (*p == '"' || *p == '\'') {
            const char *end = strchr(p + 1, *p);
            p = end ? end + 1 : p + strlen(p);
            continue;
        }
        if (ident_char(*p) && (p == expr || !ident_char(p[-1]))) {
            size_t len = 0;
            while (ident_char(p[len]))
                len++;
            if (strncmp(p, "solarx_", 7) == 0)
                names_add(out, p, len);
            p += len;
            continue;
        }
        p++;
    }
}

/* Adds the solarx_{wh,raw,meta}.NAME relations SQL references to OUT ("schema.name"). */
static void sql_relations(const char *sql, struct names *out)
{
    for (const char *p = sql; (p = strcasestr(p, "solarx_")) != NULL;) {
        if (p > sql && ident_char(p[-1])) {
            p++;
            continue;
        }
        size_t len = 0;
        while (ident_char(p[len]) || p[len] == '.')
            len++;
        if (memchr(p, '.', len))
            names_add(out, p, len);
        p += len;
    }
}

/* The relations that exist after applying the migrations (*.sql) in order: CREATE TABLE / VIEW /
 * OR REPLACE VIEW / MATERIALIZED VIEW add, DROP VIEW / TABLE remove. */
static void migrated_relations(const char *dir, struct names *out)
{
    char pattern[512];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/*.sql", dir);
    cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no migrations in %s", dir);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r");
        cr_assert_not_null(f, "%s", g.gl_pathv[i]);
        char line[1024], w1[128], w2[128], w3[128], w4[128], w5[128];
        while (fgets(line, sizeof(line), f)) {
            int n = sscanf(line, "%127s %127s %127s %127s %127s", w1, w2, w3, w4, w5);
            if (n < 3)
                continue;
            const char *name = NULL;
            bool create = strcasecmp(w1, "CREATE") == 0, drop = strcasecmp(w1, "DROP") == 0;
            if (create && (strcasecmp(w2, "TABLE") == 0 || strcasecmp(w2, "VIEW") == 0))
                name = w3;
            else if (create && n >= 5 && strcasecmp(w2, "OR") == 0)
                name = w5; /* CREATE OR REPLACE VIEW name */
            else if (create && n >= 4 && strcasecmp(w2, "MATERIALIZED") == 0)
                name = w4;
            else if (drop && (strcasecmp(w2, "VIEW") == 0 || strcasecmp(w2, "TABLE") == 0))
                name = strcasecmp(w3, "IF") == 0 && n >= 5 ? w5 : w3;
            if (!name || strncmp(name, "solarx_", 7) != 0)
                continue;
            size_t len = strcspn(name, " (;");
            char rel[96];
            snprintf(rel, sizeof(rel), "%.*s", (int)len, name);
            if (create)
                names_add(out, rel, len);
            else
                names_remove(out, rel);
        }
        fclose(f);
    }
    globfree(&g);
}

/* --- the dashboard and the alert rules ------------------------------------------------------- */

/* Walks the dashboard JSON: "expr" strings are PromQL, "rawSql" strings and the templating
 * variables' "query" strings are SQL. */
static void walk_dashboard(json_t *node, bool in_templating, struct names *metrics,
                           struct names *relations, size_t *queries)
{
    const char *key;
    json_t *value;
    size_t i;
    if (json_is_array(node)) {
        json_array_foreach(node, i, value)
            walk_dashboard(value, in_templating, metrics, relations, queries);
        return;
    }
    if (!json_is_object(node))
        return;
    json_object_foreach(node, key, value)
    {
        if (json_is_string(value) && strcmp(key, "expr") == 0) {
            promql_metrics(json_string_value(value), metrics);
            (*queries)++;
        } else if (json_is_string(value) &&
                   (strcmp(key, "rawSql") == 0 || (in_templating && strcmp(key, "query") == 0))) {
            sql_relations(json_string_value(value), relations);
            (*queries)++;
        } else {
            walk_dashboard(value, in_templating || strcmp(key, "templating") == 0, metrics,
                           relations, queries);
        }
    }
}

/* Adds every groups[].rules[].expr of the Prometheus rule file to METRICS, every alert name to
 * ALERT_NAMES. */
static void walk_alerts(const char *path, struct names *metrics, struct names *alert_names)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    cr_assert(yaml_parser_load(&parser, &doc), "%s: invalid YAML at line %zu", path,
              parser.problem_mark.line + 1);
    /* Every mapping pair in the document: keys "expr" and "alert" matter, wherever they are. */
    for (yaml_node_t *n = doc.nodes.start; n < doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
             pair++) {
            yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
            yaml_node_t *v = yaml_document_get_node(&doc, pair->value);
            if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
                continue;
            const char *ks = (const char *)k->data.scalar.value;
            const char *vs = (const char *)v->data.scalar.value;
            if (strcmp(ks, "expr") == 0)
                promql_metrics(vs, metrics);
            else if (strcmp(ks, "alert") == 0)
                names_add(alert_names, vs, strlen(vs));
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}

/* How many names of USED are not in KNOWN; their list goes to LIST ("a b c"). */
static int unknown(const struct names *used, const struct names *known, char *list, size_t size)
{
    int missing = 0;
    size_t at = 0;
    list[0] = '\0';
    for (size_t i = 0; i < used->count; i++)
        if (!names_has(known, used->name[i])) {
            int n = snprintf(list + at, size - at, "%s%s", at ? " " : "", used->name[i]);
            if (n > 0 && (size_t)n < size - at)
                at += (size_t)n;
            missing++;
        }
    return missing;
}

Test(dashboards, dashboard_metrics_are_exported_and_views_exist)
{
    struct names exported = {0}, relations = {0}, used_metrics = {0}, used_relations = {0};
    exported_metrics(&exported);
    migrated_relations(SOLARX_SOURCE_DIR "/migrations", &relations);
    json_error_t err;
    json_t *dash = json_load_file(DASHBOARD, 0, &err);
    cr_assert_not_null(dash, "%s:%d: %s", DASHBOARD, err.line, err.text);
    size_t queries = 0;
    walk_dashboard(dash, false, &used_metrics, &used_relations, &queries);
    json_decref(dash);
    cr_assert_geq(used_metrics.count, 10, "the dashboard references only %zu metrics",
                  used_metrics.count);
    cr_assert_geq(used_relations.count, 5, "the dashboard queries only %zu views",
                  used_relations.count);
    char list[2048];
    cr_expect_eq(unknown(&used_metrics, &exported, list, sizeof(list)), 0,
                 "the dashboard references metrics the service does not export: %s", list);
    cr_expect_eq(unknown(&used_relations, &relations, list, sizeof(list)), 0,
                 "the dashboard queries relations no migration creates: %s", list);
}

Test(dashboards, alert_rules_reference_exported_metrics)
{
    struct names exported = {0}, used = {0}, alerts = {0};
    exported_metrics(&exported);
    walk_alerts(ALERTS, &used, &alerts);
    cr_assert_geq(used.count, 5, "the rules reference only %zu metrics", used.count);
    char list[2048];
    cr_expect_eq(unknown(&used, &exported, list, sizeof(list)), 0,
                 "alert rules reference metrics the service does not export: %s", list);
    static const char *const promised[] = {"SolarxLagGrowing", "SolarxNoFlush",
                                           "SolarxDeadLettersRising", "SolarxUnhealthy"};
    for (size_t i = 0; i < sizeof(promised) / sizeof(promised[0]); i++)
        cr_expect(names_has(&alerts, promised[i]), "alert %s is missing", promised[i]);
}

/* --- the checks catch mistakes --------------------------------------------------------------- */

Test(dashboards_selftest, unknown_metrics_and_relations_are_caught)
{
    struct names exported = {0}, relations = {0}, used = {0}, rels = {0};
    exported_metrics(&exported);
    cr_assert(names_has(&exported, "solarx_flush_duration_milliseconds_bucket"));
    cr_assert(names_has(&exported, "solarx_partition_lag"));
    promql_metrics("sum(rate(solarx_messages_consumed_total{topic=\"solarx_not_a_metric\"}[5m])) "
                   "/ solarx_nope_total",
                   &used);
    cr_assert_eq(used.count, 2, "label values are not metric names");
    char list[256];
    cr_assert_eq(unknown(&used, &exported, list, sizeof(list)), 1);
    cr_assert_str_eq(list, "solarx_nope_total");

    migrated_relations(SOLARX_SOURCE_DIR "/migrations", &relations);
    cr_assert(names_has(&relations, "solarx_wh.v_energy_balance"));
    cr_assert(names_has(&relations, "solarx_wh.fact_home_power_readings"));
    sql_relations("SELECT * FROM solarx_wh.v_energy_balance JOIN solarx_wh.v_gone USING (x)",
                  &rels);
    cr_assert_eq(unknown(&rels, &relations, list, sizeof(list)), 1);
    cr_assert_str_eq(list, "solarx_wh.v_gone");
}
