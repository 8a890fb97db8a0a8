/* Unit tests of PostgreSQL array literal construction. */
#include <criterion/criterion.h>
#include <string.h>

#include "solarx/pgarray.h"

Test(pgarray, empty_array)
{
    struct pgarray a = {0};
    pgarray_reset(&a);
    cr_assert_str_eq(pgarray_finish(&a), "{}");
    pgarray_free(&a);
}

Test(pgarray, numbers_booleans_and_nulls)
{
    struct pgarray a = {0};
    pgarray_reset(&a);
    pgarray_add_int(&a, 1);
    pgarray_add_int(&a, -9223372036854775807LL - 1);
    pgarray_add_fixed(&a, 9993670000);
    pgarray_add_fixed(&a, -5);
    pgarray_add_bool(&a, true);
    pgarray_add_bool(&a, false);
    pgarray_add_null(&a);
    cr_assert_str_eq(pgarray_finish(&a), "{1,-9223372036854775808,9993.670000,-0.000005,t,f,NULL}");
    cr_assert_eq(a.count, 7);
    pgarray_free(&a);
}

Test(pgarray, text_is_quoted_and_escaped)
{
    struct pgarray a = {0};
    pgarray_reset(&a);
    pgarray_add_text(&a, "plain", 5);
    pgarray_add_text(&a, "a \"quoted\" \\ word", 17);
    pgarray_add_text(&a, "NULL", 4);
    pgarray_add_text(&a, "", 0);
    pgarray_add_text(&a, "{,}", 3);
    cr_assert_str_eq(pgarray_finish(&a),
                     "{\"plain\",\"a \\\"quoted\\\" \\\\ word\",\"NULL\",\"\",\"{,}\"}");
    pgarray_free(&a);
}

Test(pgarray, bytea_in_hex_with_escaped_backslash)
{
    struct pgarray a = {0};
    const unsigned char bytes[] = {0x00, 0x0f, 0xa1, 0xff};
    pgarray_reset(&a);
    pgarray_add_bytea(&a, bytes, sizeof(bytes));
    pgarray_add_bytea(&a, "", 0);
    cr_assert_str_eq(pgarray_finish(&a), "{\"\\\\x000fa1ff\",\"\\\\x\"}");
    pgarray_free(&a);
}

Test(pgarray, reset_reuses_and_large_arrays_grow)
{
    struct pgarray a = {0};
    pgarray_reset(&a);
    for (int i = 0; i < 100000; i++)
        pgarray_add_int(&a, i);
    const char *s = pgarray_finish(&a);
    cr_assert_eq(s[0], '{');
    cr_assert(strstr(s, ",99999}"));
    pgarray_reset(&a);
    pgarray_add_int(&a, 7);
    cr_assert_str_eq(pgarray_finish(&a), "{7}");
    pgarray_free(&a);
}
