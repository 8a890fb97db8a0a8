/* COPY binary-format rows for bulk raw writes: every value in network byte order, each field
 * preceded by its length (PostgreSQL's "COPY ... (FORMAT binary)" file format). */
#include "solarx/copybinary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC. */
#define POSTGRES_EPOCH_UNIX 946684800LL
#define USECS_PER_SEC 1000000LL

/* numeric's wire header: sign words and the base of its digit groups. */
#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_BASE 10000
#define FIXED_DSCALE 6
/* int64 millionths: up to 4 integer groups (9.2e12) and 2 fraction groups (6 digits + 2 zeros). */
#define FIXED_MAX_GROUPS 8

static const unsigned char copy_signature[11] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                                 '\n', 0xff, '\r', '\n', '\0'};

static void reserve(struct copybinary *c, size_t extra)
{
    if (c->len + extra <= c->cap)
        return;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + extra)
        cap *= 2;
    unsigned char *grown = realloc(c->buf, cap);
    if (!grown) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    c->buf = grown;
    c->cap = cap;
}

/* Big-endian writes into reserved room. */
static void put_u16(struct copybinary *c, uint16_t v)
{
    unsigned char *p = c->buf + c->len;
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    c->len += 2;
}

static void put_u32(struct copybinary *c, uint32_t v)
{
    put_u16(c, (uint16_t)(v >> 16));
    put_u16(c, (uint16_t)v);
}

static void put_u64(struct copybinary *c, uint64_t v)
{
    put_u32(c, (uint32_t)(v >> 32));
    put_u32(c, (uint32_t)v);
}

void copybinary_reset(struct copybinary *c)
{
    c->len = 0;
    c->rows = 0;
}

void copybinary_free(struct copybinary *c)
{
    free(c->buf);
    *c = (struct copybinary){0};
}

void copybinary_add_header(struct copybinary *c)
{
    reserve(c, sizeof(copy_signature) + 8);
    memcpy(c->buf + c->len, copy_signature, sizeof(copy_signature));
    c->len += sizeof(copy_signature);
    put_u32(c, 0); /* flags: no OIDs */
    put_u32(c, 0); /* header extension length */
}

void copybinary_add_trailer(struct copybinary *c)
{
    reserve(c, 2);
    put_u16(c, 0xffff);
}

void copybinary_start_row(struct copybinary *c, int16_t columns)
{
    reserve(c, 2);
    put_u16(c, (uint16_t)columns);
    c->rows++;
}

void copybinary_add_int4(struct copybinary *c, int32_t v)
{
    reserve(c, 8);
    put_u32(c, 4);
    put_u32(c, (uint32_t)v);
}

void copybinary_add_int8(struct copybinary *c, int64_t v)
{
    reserve(c, 12);
    put_u32(c, 8);
    put_u64(c, (uint64_t)v);
}

void copybinary_add_bool(struct copybinary *c, bool v)
{
    reserve(c, 5);
    put_u32(c, 1);
    c->buf[c->len++] = v ? 1 : 0;
}

void copybinary_add_timestamp(struct copybinary *c, int64_t epoch_seconds)
{
    copybinary_add_int8(c, (epoch_seconds - POSTGRES_EPOCH_UNIX) * USECS_PER_SEC);
}

/* The base-10000 groups of |v| millionths, most significant first, without leading or trailing
 * zero groups; *weight is the power of 10000 of the first. Returns how many (0 for zero). */
static int fixed_digit_groups(uint64_t mag, uint16_t groups[FIXED_MAX_GROUPS], int16_t *weight)
{
    uint64_t units = mag / FIXED_SCALE;
    uint32_t millionths = (uint32_t)(mag % FIXED_SCALE);
    uint16_t all[FIXED_MAX_GROUPS];
    int n = 0, integer_groups = 0;
    uint16_t reversed[FIXED_MAX_GROUPS - 2];
    for (; units > 0; units /= NUMERIC_BASE)
        reversed[integer_groups++] = (uint16_t)(units % NUMERIC_BASE);
    for (int i = integer_groups - 1; i >= 0; i--)
        all[n++] = reversed[i];
    all[n++] = (uint16_t)(millionths / 100);       /* decimals 1-4 */
    all[n++] = (uint16_t)(millionths % 100 * 100); /* decimals 5-6, then two zeros */
    int first = 0;
    *weight = (int16_t)(integer_groups - 1);
    while (first < n && all[first] == 0) {
        first++;
        (*weight)--;
    }
    while (n > first && all[n - 1] == 0)
        n--;
    if (n == first) {
        *weight = 0;
        return 0;
    }
    memcpy(groups, all + first, (size_t)(n - first) * sizeof(*groups));
    return n - first;
}

void copybinary_add_fixed(struct copybinary *c, fixed_t v)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint16_t groups[FIXED_MAX_GROUPS];
    int16_t weight;
    int n = fixed_digit_groups(mag, groups, &weight);
    reserve(c, 4 + 8 + 2 * (size_t)n);
    put_u32(c, (uint32_t)(8 + 2 * n));
    put_u16(c, (uint16_t)n);
    put_u16(c, (uint16_t)weight);
    put_u16(c, n > 0 && v < 0 ? NUMERIC_NEG : NUMERIC_POS);
    put_u16(c, FIXED_DSCALE);
    for (int i = 0; i < n; i++)
        put_u16(c, groups[i]);
}

void copybinary_add_text(struct copybinary *c, const char *s, size_t len)
{
    reserve(c, 4 + len);
    put_u32(c, (uint32_t)len);
    memcpy(c->buf + c->len, s, len);
    c->len += len;
}

void copybinary_add_text_int(struct copybinary *c, const char *prefix, int64_t n)
{
    char digits[24];
    size_t prefix_len = strlen(prefix), ndigits = 0;
    uint64_t mag = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    do {
        digits[sizeof(digits) - 1 - ndigits++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (n < 0)
        digits[sizeof(digits) - 1 - ndigits++] = '-';
    reserve(c, 4 + prefix_len + ndigits);
    put_u32(c, (uint32_t)(prefix_len + ndigits));
    memcpy(c->buf + c->len, prefix, prefix_len);
    memcpy(c->buf + c->len + prefix_len, digits + sizeof(digits) - ndigits, ndigits);
    c->len += prefix_len + ndigits;
}

void copybinary_add_raw_reading(struct copybinary *c, enum reading_kind kind,
                                const struct reading *r, int32_t partition, int64_t offset)
{
    if (kind == READING_HOME) {
        copybinary_start_row(c, 6);
        copybinary_add_int4(c, r->home_id);
        copybinary_add_timestamp(c, r->ts);
        copybinary_add_fixed(c, r->energy_wh);
        copybinary_add_fixed(c, r->accumulated_wh);
    } else if (kind == READING_SOLAR) {
        copybinary_start_row(c, 7);
        copybinary_add_int4(c, r->device_id);
        copybinary_add_timestamp(c, r->ts);
        copybinary_add_int4(c, r->home_id);
        copybinary_add_fixed(c, r->energy_wh);
        copybinary_add_fixed(c, r->accumulated_wh);
    } else {
        const char *status = reading_status_name((enum battery_status)r->status);
        copybinary_start_row(c, 12);
        copybinary_add_int4(c, r->home_id);
        copybinary_add_int4(c, r->device_id);
        copybinary_add_timestamp(c, r->ts);
        copybinary_add_text_int(c, "battery_", r->device_id);
        copybinary_add_fixed(c, r->capacity_kwh);
        copybinary_add_fixed(c, r->max_charge_speed_w);
        copybinary_add_fixed(c, r->energy_wh);
        copybinary_add_bool(c, r->is_charging);
        copybinary_add_text(c, status, strlen(status));
        copybinary_add_fixed(c, r->max_output_w);
    }
    copybinary_add_int4(c, partition);
    copybinary_add_int8(c, offset);
}
