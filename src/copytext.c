/* COPY text-format rows for bulk raw writes. The formatting avoids printf: it runs once per
 * column of every raw row, and vfprintf was a visible share of the loop's time (bench/README.md).
 * The flusher now sends binary COPY (copybinary.c); this text path is what the benchmark
 * (floor_copy --format text) and test_copy_binary compare the binary one with. */
#include "solarx/copytext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/clock.h"

static void reserve(struct copytext *c, size_t extra)
{
    if (c->len + extra <= c->cap)
        return;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + extra)
        cap *= 2;
    char *grown = realloc(c->buf, cap);
    if (!grown) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    c->buf = grown;
    c->cap = cap;
}

/* The tab before every column of a row but the first; room for `width` more bytes. */
static char *next_column(struct copytext *c, size_t width)
{
    reserve(c, width + 1);
    if (c->row_has_cols)
        c->buf[c->len++] = '\t';
    c->row_has_cols = true;
    return c->buf + c->len;
}

void copytext_reset(struct copytext *c)
{
    c->len = 0;
    c->rows = 0;
    c->row_has_cols = false;
}

void copytext_free(struct copytext *c)
{
    free(c->buf);
    *c = (struct copytext){0};
}

static size_t format_unsigned(uint64_t v, char *buf)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Decimal digits of v into buf (at least 21 bytes), no NUL; returns their number. */
static size_t format_int(int64_t v, char *buf)
{
    if (v >= 0)
        return format_unsigned((uint64_t)v, buf);
    buf[0] = '-';
    return 1 + format_unsigned((uint64_t)0 - (uint64_t)v, buf + 1); /* INT64_MIN included */
}

void copytext_add_int(struct copytext *c, int64_t v)
{
    char *p = next_column(c, 21);
    c->len += format_int(v, p);
}

void copytext_add_fixed(struct copytext *c, fixed_t v)
{
    char *p = next_column(c, FIXED_TEXT_SIZE);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    if (v < 0)
        p[n++] = '-';
    n += format_unsigned(mag / FIXED_SCALE, p + n);
    p[n++] = '.';
    uint64_t frac = mag % FIXED_SCALE;
    for (int i = 5; i >= 0; i--, frac /= 10)
        p[n + (size_t)i] = (char)('0' + frac % 10);
    c->len += n + 6;
}

void copytext_add_bool(struct copytext *c, bool v)
{
    char *p = next_column(c, 1);
    *p = v ? 't' : 'f';
    c->len++;
}

void copytext_add_timestamp(struct copytext *c, int64_t t)
{
    char *p = next_column(c, CLOCK_TEXT_SIZE);
    c->len += strlen(clock_format_utc(t, p, CLOCK_TEXT_SIZE));
}

void copytext_add_text(struct copytext *c, const char *s, size_t len)
{
    char *p = next_column(c, 2 * len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        const char *esc = ch == '\\'   ? "\\\\"
                          : ch == '\t' ? "\\t"
                          : ch == '\n' ? "\\n"
                          : ch == '\r' ? "\\r"
                                       : NULL;
        if (esc) {
            p[n++] = esc[0];
            p[n++] = esc[1];
        } else {
            p[n++] = ch;
        }
    }
    c->len += n;
}

void copytext_add_text_int(struct copytext *c, const char *prefix, int64_t v)
{
    copytext_add_text(c, prefix, strlen(prefix));
    reserve(c, 21);
    c->len += format_int(v, c->buf + c->len);
}

void copytext_end_row(struct copytext *c)
{
    reserve(c, 1);
    c->buf[c->len++] = '\n';
    c->rows++;
    c->row_has_cols = false;
}
