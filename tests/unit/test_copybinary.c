/* Unit tests of COPY binary-format rows: the bytes PostgreSQL's own send functions produce
 * (numeric_send, timestamptz_send, taken from PostgreSQL 15 for these values), each field
 * preceded by its length. tests/integration/test_copy_binary.sh has a real server read them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "solarx/copybinary.h"

/* The buffer as lower-case hex. */
static const char *hex(const struct copybinary *c)
{
    static char out[8192];
    size_t n = 0;
    for (size_t i = 0; i < c->len && n + 3 < sizeof(out); i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%02x", c->buf[i]);
    out[n] = '\0';
    return out;
}

static const char *fixed_hex(fixed_t v)
{
    static char out[128];
    struct copybinary c = {0};
    copybinary_add_fixed(&c, v);
    snprintf(out, sizeof(out), "%s", hex(&c));
    copybinary_free(&c);
    return out;
}

Test(copybinary, header_and_trailer_frame_the_stream)
{
    struct copybinary c = {0};
    copybinary_add_header(&c);
    cr_assert_str_eq(hex(&c), "5047434f50590aff0d0a00" /* PGCOPY\n\377\r\n\0 */
                              "00000000"               /* flags */
                              "00000000");             /* header extension */
    copybinary_reset(&c);
    copybinary_add_trailer(&c);
    cr_assert_str_eq(hex(&c), "ffff");
    copybinary_free(&c);
}

Test(copybinary, numerics_are_numeric_send_bytes_with_scale_six)
{
    /* length, then ndigits, weight, sign, dscale, base-10000 digits */
    cr_assert_str_eq(fixed_hex(0), "00000008"
                                   "0000000000000006");
    cr_assert_str_eq(fixed_hex(500000), "0000000a"
                                        "0001ffff000000061388"); /* 0.5 */
    cr_assert_str_eq(fixed_hex(1000001), "0000000e"
                                         "0003000000000006000100000064"); /* 1.000001 */
    cr_assert_str_eq(fixed_hex(-5), "0000000a"
                                    "0001fffe4000000601f4"); /* -0.000005 */
    cr_assert_str_eq(fixed_hex(9993670000), "0000000c"
                                            "000200000000000627091a2c"); /* 9993.67 */
    cr_assert_str_eq(fixed_hex(12345678900000), "0000000e"
                                                "000300010000000604d2162e2328"); /* 12345678.9 */
    cr_assert_str_eq(fixed_hex(-1234500000), "0000000c"
                                             "000200004000000604d21388"); /* -1234.5 */
    cr_assert_str_eq(fixed_hex(10000000000), "0000000a"
                                             "00010001000000060001"); /* 10000 */
    cr_assert_str_eq(fixed_hex(100), "0000000a"
                                     "0001ffff000000060001"); /* 0.0001 */
    cr_assert_str_eq(fixed_hex(INT64_MAX), "00000014"         /* 9223372036854.775807 */
                                           "0006000300000006000908b91c231ac61e4e02bc");
}

Test(copybinary, instants_are_microseconds_since_2000)
{
    struct copybinary c = {0};
    copybinary_add_timestamp(&c, 946684801);  /* 2000-01-01 00:00:01 UTC */
    copybinary_add_timestamp(&c, 946684799);  /* 1999-12-31 23:59:59 UTC */
    copybinary_add_timestamp(&c, 1739491560); /* 2025-02-14 00:06:00 UTC */
    cr_assert_str_eq(hex(&c), "00000008"
                              "00000000000f4240"
                              "00000008"
                              "fffffffffff0bdc0"
                              "00000008"
                              "0002d10db54e2a00");
    copybinary_free(&c);
}

Test(copybinary, a_row_counts_its_fields_and_each_field_its_bytes)
{
    struct copybinary c = {0};
    copybinary_start_row(&c, 6);
    copybinary_add_int4(&c, -2);
    copybinary_add_int8(&c, 258);
    copybinary_add_bool(&c, true);
    copybinary_add_bool(&c, false);
    copybinary_add_text(&c, "a\tb\\", 4); /* no escaping */
    copybinary_add_text_int(&c, "battery_", 12);
    cr_assert_str_eq(hex(&c), "0006"
                              "00000004fffffffe"
                              "000000080000000000000102"
                              "0000000101"
                              "0000000100"
                              "000000046109625c"
                              "0000000a"
                              "626174746572795f3132"); /* battery_12 */
    cr_assert_eq(c.rows, 1);
    copybinary_reset(&c);
    cr_assert_eq(c.len, 0);
    cr_assert_eq(c.rows, 0);
    copybinary_add_text_int(&c, "n", -7);
    cr_assert_str_eq(hex(&c), "000000036e2d37");
    copybinary_free(&c);
}
