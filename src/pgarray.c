/* PostgreSQL array literal construction for bulk parameters. */
#include "solarx/pgarray.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct pgarray *a, size_t extra)
{
    if (a->len + extra + 2 <= a->cap)
        return;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + extra + 2)
        cap *= 2;
    char *grown = realloc(a->buf, cap);
    if (!grown) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    a->buf = grown;
    a->cap = cap;
}

static void put(struct pgarray *a, const char *s, size_t n)
{
    reserve(a, n);
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

/* The separator before every element but the first. */
static void next_element(struct pgarray *a)
{
    if (a->count++ > 0)
        put(a, ",", 1);
}

void pgarray_reset(struct pgarray *a)
{
    a->len = 0;
    a->count = 0;
    put(a, "{", 1);
}

void pgarray_free(struct pgarray *a)
{
    free(a->buf);
    *a = (struct pgarray){0};
}

void pgarray_add_int(struct pgarray *a, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    next_element(a);
    put(a, tmp, (size_t)n);
}

void pgarray_add_fixed(struct pgarray *a, fixed_t v)
{
    char tmp[FIXED_TEXT_SIZE];
    fixed_format(v, tmp, sizeof(tmp));
    next_element(a);
    put(a, tmp, strlen(tmp));
}

void pgarray_add_bool(struct pgarray *a, bool v)
{
    next_element(a);
    put(a, v ? "t" : "f", 1);
}

void pgarray_add_null(struct pgarray *a)
{
    next_element(a);
    put(a, "NULL", 4);
}

void pgarray_add_text(struct pgarray *a, const char *s, size_t len)
{
    next_element(a);
    reserve(a, 2 * len + 2);
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
    a->buf[a->len] = '\0';
}

void pgarray_add_bytea(struct pgarray *a, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    next_element(a);
    /* Inside a quoted element a backslash is written twice: "\\x0f" is the bytea input \x0f. */
    reserve(a, 2 * len + 6);
    memcpy(a->buf + a->len, "\"\\\\x", 4);
    a->len += 4;
    for (size_t i = 0; i < len; i++) {
        a->buf[a->len++] = hex[p[i] >> 4];
        a->buf[a->len++] = hex[p[i] & 15];
    }
    a->buf[a->len++] = '"';
    a->buf[a->len] = '\0';
}

const char *pgarray_finish(struct pgarray *a)
{
    put(a, "}", 1);
    return a->buf;
}
