/* Unit tests of the statement table: every statement's SQL uses exactly the parameters it names,
 * its result columns match its select list, and names are unique. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "solarx/statements.h"

/* Marks which $n appear in sql (n < 64); returns the highest, 0 when none. */
static size_t parameters_used(const char *sql, bool used[64])
{
    size_t highest = 0;
    memset(used, 0, 64 * sizeof(bool));
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        cr_assert(isdigit((unsigned char)p[1]), "a '$' not followed by a digit in: %s", sql);
        size_t n = strtoul(p + 1, NULL, 10);
        cr_assert(n >= 1 && n < 64, "$%zu in: %s", n, sql);
        used[n] = true;
        if (n > highest)
            highest = n;
    }
    return highest;
}

/* The number of top-level expressions between the first SELECT and the first FROM outside
 * parentheses and quotes: the columns of its result. */
static size_t select_list_length(const char *sql)
{
    if (strncmp(sql, "WITH ", 5) == 0) { /* the SELECT after the common table expression */
        const char *open = strchr(sql, '(');
        cr_assert_not_null(open, "no ( after WITH in: %s", sql);
        int depth = 0;
        for (sql = open; *sql; sql++) {
            depth += *sql == '(' ? 1 : *sql == ')' ? -1 : 0;
            if (depth == 0)
                break;
        }
        cr_assert_eq(strncmp(sql, ") SELECT ", 9), 0, "no SELECT after the WITH");
    }
    const char *p = strstr(sql, "SELECT ");
    cr_assert_not_null(p, "no SELECT in: %s", sql);
    p += strlen("SELECT ");
    size_t columns = 1;
    int depth = 0;
    bool quoted = false;
    for (; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (quoted)
            continue;
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        else if (depth == 0 && *p == ',')
            columns++;
        else if (depth == 0 && strncmp(p, " FROM ", 6) == 0)
            return columns;
    }
    return columns;
}

Test(statements, every_statement_has_a_name_and_sql)
{
    for (int id = 0; id < STMT_COUNT; id++) {
        const struct stmt_def *s = stmt_get(id);
        cr_assert_not_null(s->name, "statement %d has no name", id);
        cr_assert_not_null(s->sql, "statement %s has no SQL", s->name);
        cr_assert_leq(s->nparams, STMT_MAX_PARAMS, "%s", s->name);
    }
}

Test(statements, names_are_unique)
{
    for (int a = 0; a < STMT_COUNT; a++)
        for (int b = a + 1; b < STMT_COUNT; b++)
            cr_assert_str_neq(stmt_get(a)->name, stmt_get(b)->name);
}

Test(statements, sql_uses_exactly_the_named_parameters)
{
    for (int id = 0; id < STMT_COUNT; id++) {
        const struct stmt_def *s = stmt_get(id);
        bool used[64];
        size_t highest = parameters_used(s->sql, used);
        cr_assert_eq(highest, s->nparams, "%s names %zu parameters, its SQL uses up to $%zu",
                     s->name, s->nparams, highest);
        for (size_t n = 1; n <= s->nparams; n++)
            cr_assert(used[n], "%s: $%zu (%s) is not used", s->name, n, s->param_names[n - 1]);
        cr_assert(s->nparams == 0 || s->param_names != NULL, "%s", s->name);
    }
}

Test(statements, parameter_and_column_names_are_given_and_unique)
{
    for (int id = 0; id < STMT_COUNT; id++) {
        const struct stmt_def *s = stmt_get(id);
        for (size_t i = 0; i < s->nparams; i++) {
            cr_assert_not_null(s->param_names[i], "%s: parameter $%zu has no name", s->name, i + 1);
            for (size_t j = 0; j < i; j++)
                cr_assert_str_neq(s->param_names[i], s->param_names[j], "%s", s->name);
        }
        for (size_t i = 0; i < s->ncolumns; i++) {
            cr_assert_not_null(s->column_names[i], "%s: column %zu has no name", s->name, i);
            for (size_t j = 0; j < i; j++)
                cr_assert_str_neq(s->column_names[i], s->column_names[j], "%s", s->name);
        }
    }
}

Test(statements, result_columns_match_the_select_list)
{
    for (int id = 0; id < STMT_COUNT; id++) {
        const struct stmt_def *s = stmt_get(id);
        if (s->ncolumns == 0)
            continue;
        cr_assert(strncmp(s->sql, "SELECT ", 7) == 0 || strncmp(s->sql, "WITH ", 5) == 0,
                  "%s reads columns of no SELECT", s->name);
        cr_assert_eq(select_list_length(s->sql), s->ncolumns,
                     "%s: %zu columns named, its select list has %zu", s->name, s->ncolumns,
                     select_list_length(s->sql));
    }
}

Test(statements, kind_indexed_statements_follow_the_kind_order)
{
    cr_assert(strstr(stmt_get(STMT_STORED_HOME_WINDOWS)->sql, "fact_home_power"));
    cr_assert(strstr(stmt_get(STMT_STORED_SOLAR_WINDOWS)->sql, "fact_solar_panel"));
    cr_assert(strstr(stmt_get(STMT_STORED_BATTERY_WINDOWS)->sql, "fact_battery"));
    cr_assert(strstr(stmt_get(STMT_UPSERT_SOLAR_FACTS)->sql, "fact_solar_panel"));
    cr_assert(strstr(stmt_get(STMT_COPY_BATTERY_RAW)->sql, "battery_readings"));
    cr_assert(strstr(stmt_get(STMT_INSERT_SOLAR_RAW)->sql, "solar_panel_readings"));
    cr_assert(strstr(stmt_get(STMT_DELETE_PANEL_VERSIONS)->sql, "dim_solar_panel"));
    cr_assert(strstr(stmt_get(STMT_UPSERT_BATTERY_VERSIONS)->sql, "dim_battery"));
    cr_assert(strstr(stmt_get(STMT_REPOINT_PANEL_FACTS)->sql, "fact_solar_panel"));
}
