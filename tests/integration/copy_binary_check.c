/* copy_binary_check: the binary COPY encoder (copybinary.h) against a real PostgreSQL. Writes the
 * same rows twice into tables of the raw tables' column types, once by COPY text (copytext.h)
 * and once by COPY (FORMAT binary), then reads both back as text: every row must be equal, and
 * a few must be what PostgreSQL prints for the value meant. Prints "rows=N" and exits 0, or
 * names the first row that differs and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "solarx/copybinary.h"
#include "solarx/copytext.h"

/* One row of the check table: the raw tables' types (integer, timestamptz, numeric(24,6),
 * boolean, text, bigint). */
struct check_row {
    int32_t i;
    int64_t ts;
    fixed_t n;
    bool b;
    const char *s;
    int64_t o;
};

#define TABLE_COLUMNS "i integer, ts timestamptz, n numeric(24,6), b boolean, s text, o bigint"

static const fixed_t edge_numbers[] = {
    0,
    1,
    -1,
    5,
    -5,
    99,
    100,
    500000,
    999999,
    1000000,
    1000001,
    -1000001,
    9999999999,
    10000000000,
    10000000001,
    123456789123456,
    -123456789123456,
    1000000000000000, /* FIXED_MAX_INPUT units */
    -1000000000000000,
    3600000000000000000, /* a window's largest sum */
    INT64_MAX,
    INT64_MIN,
};

static const int64_t edge_instants[] = {
    0,                       /* 1970-01-01 */
    -1577923200,             /* 1920-01-01 */
    946684799,               /* 1999-12-31 23:59:59 */
    946684800,               /* 2000-01-01 00:00:00 */
    946684801,   1739491560, /* 2025-02-14 00:06:00 */
    4102444800,              /* 2100-01-01 */
};

static const char *const edge_texts[] = {
    "ideal", "charging", "discharging", "", "tab\tnew\nline\rback\\slash", "\xc3\xa9t\xc3\xa9",
};

/* What PostgreSQL prints for some rows (TimeZone UTC): row index, then i|ts|n|b|s|o. */
static const struct {
    size_t row;
    const char *text;
} expected_text[] = {
    {0, "0|1970-01-01 00:00:00+00|0.000000|t|ideal|0"},
    {1, "1|1920-01-01 00:00:00+00|0.000001|f|charging|1"},
    {2, "2|1999-12-31 23:59:59+00|-0.000001|t|discharging|2"},
    {4, "4|2000-01-01 00:00:01+00|-0.000005|t|tab\tnew\nline\rback\\slash|4"},
    {6, "6|2100-01-01 00:00:00+00|0.000100|t|ideal|6"},
    {20, "20|2100-01-01 00:00:00+00|9223372036854.775807|t|discharging|20"},
    {21, "21|1970-01-01 00:00:00+00|-9223372036854.775808|f|battery_21|21"},
};

static int exec_ok(PGconn *pg, const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "copy_binary_check: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* COPY len bytes of data with the statement sql. */
static int copy_in(PGconn *pg, const char *sql, const void *data, size_t len)
{
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        fprintf(stderr, "copy_binary_check: %s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    if (PQputCopyData(pg, data, (int)len) != 1 || PQputCopyEnd(pg, NULL) != 1) {
        fprintf(stderr, "copy_binary_check: %s: %s", sql, PQerrorMessage(pg));
        return -1;
    }
    res = PQgetResult(pg);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "copy_binary_check: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    return rc;
}

/* A deterministic spread of values (xorshift), for the rows after the edge cases. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void make_rows(struct check_row *rows, size_t n)
{
    static char names[4096][24];
    size_t edges = sizeof(edge_numbers) / sizeof(edge_numbers[0]);
    uint64_t state = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        struct check_row *r = &rows[i];
        r->i = (int32_t)i;
        r->ts = edge_instants[i % (sizeof(edge_instants) / sizeof(edge_instants[0]))];
        r->b = i % 4 != 1;
        r->o = (int64_t)i;
        if (i < edges) {
            r->n = edge_numbers[i];
        } else {
            uint64_t v = next_random(&state);
            int digits = (int)(v % 19); /* magnitudes from units to 1e18 millionths */
            int64_t mag = (int64_t)(next_random(&state) % 1000000000000000000ULL);
            for (int d = 18; d > digits; d--)
                mag /= 10;
            r->n = v & 1 ? -mag : mag;
            r->ts = (int64_t)(next_random(&state) % 8000000000ULL) - 2000000000;
        }
        if (i % 5 == 3) {
            snprintf(names[i % 4096], sizeof(names[0]), "battery_%zu", i);
            r->s = names[i % 4096];
        } else {
            r->s = edge_texts[i % (sizeof(edge_texts) / sizeof(edge_texts[0]))];
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--conninfo") != 0) {
        fputs("usage: copy_binary_check --conninfo C\n", stderr);
        return 64;
    }
    enum { ROWS = 4000 };
    static struct check_row rows[ROWS];
    make_rows(rows, ROWS);
    /* row 21's text is a battery name and row 20's a status (expected_text) */
    rows[21].s = "battery_21";
    rows[21].b = false;

    struct copytext text = {0};
    struct copybinary binary = {0};
    copybinary_add_header(&binary);
    for (size_t i = 0; i < ROWS; i++) {
        const struct check_row *r = &rows[i];
        copytext_add_int(&text, r->i);
        copytext_add_timestamp(&text, r->ts);
        copytext_add_fixed(&text, r->n);
        copytext_add_bool(&text, r->b);
        copytext_add_text(&text, r->s, strlen(r->s));
        copytext_add_int(&text, r->o);
        copytext_end_row(&text);
        copybinary_start_row(&binary, 6);
        copybinary_add_int4(&binary, r->i);
        copybinary_add_timestamp(&binary, r->ts);
        copybinary_add_fixed(&binary, r->n);
        copybinary_add_bool(&binary, r->b);
        if (i % 5 == 3 || i == 21) /* names go as the flusher sends them */
            copybinary_add_text_int(&binary, "battery_", (int64_t)i);
        else
            copybinary_add_text(&binary, r->s, strlen(r->s));
        copybinary_add_int8(&binary, r->o);
    }
    copybinary_add_trailer(&binary);

    PGconn *pg = PQconnectdb(argv[2]);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "copy_binary_check: %s", PQerrorMessage(pg));
        return 1;
    }
    int rc = 1;
    if (exec_ok(pg, "SET TimeZone = 'UTC'") ||
        exec_ok(pg, "CREATE TEMP TABLE via_text (" TABLE_COLUMNS ")") ||
        exec_ok(pg, "CREATE TEMP TABLE via_binary (" TABLE_COLUMNS ")") ||
        copy_in(pg, "COPY via_text FROM STDIN", text.buf, text.len) ||
        copy_in(pg, "COPY via_binary FROM STDIN (FORMAT binary)", binary.buf, binary.len))
        goto out;
    PGresult *res = PQexec(pg, "SELECT concat_ws('|', t.i, t.ts, t.n, t.b, t.s, t.o), "
                               "       concat_ws('|', b.i, b.ts, b.n, b.b, b.s, b.o) "
                               "FROM via_text t FULL JOIN via_binary b USING (o) ORDER BY o");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != ROWS) {
        fprintf(stderr, "copy_binary_check: %d rows read back, expected %d: %s", PQntuples(res),
                ROWS, PQresultErrorMessage(res));
        PQclear(res);
        goto out;
    }
    for (int i = 0; i < ROWS; i++) {
        if (strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)) != 0) {
            fprintf(stderr, "copy_binary_check: row %d differs: text path \"%s\", binary \"%s\"\n",
                    i, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            PQclear(res);
            goto out;
        }
    }
    for (size_t k = 0; k < sizeof(expected_text) / sizeof(expected_text[0]); k++) {
        const char *got = PQgetvalue(res, (int)expected_text[k].row, 1);
        if (strcmp(got, expected_text[k].text) != 0) {
            fprintf(stderr, "copy_binary_check: row %zu is \"%s\", expected \"%s\"\n",
                    expected_text[k].row, got, expected_text[k].text);
            PQclear(res);
            goto out;
        }
    }
    PQclear(res);
    printf("rows=%d binary_bytes=%zu text_bytes=%zu\n", ROWS, binary.len, text.len);
    rc = 0;
out:
    PQfinish(pg);
    copytext_free(&text);
    copybinary_free(&binary);
    return rc;
}
