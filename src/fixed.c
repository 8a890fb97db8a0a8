/* Fixed-point conversion and formatting: the only place where a double becomes a quantity. */
#include "solarx/fixed.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool fixed_from_double(double value, fixed_t *out)
{
    if (!isfinite(value))
        return false;
    double scaled = value * (double)FIXED_SCALE;
    double limit = (double)FIXED_MAX_INPUT * (double)FIXED_SCALE;
    if (scaled > limit || scaled < -limit)
        return false;
    *out = (fixed_t)llround(scaled);
    return true;
}

bool fixed_parse(const char *text, fixed_t *out)
{
    const char *p = text;
    bool negative = false;
    int64_t whole = 0, frac = 0;
    int whole_digits = 0, frac_digits = 0;

    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++whole_digits > 13)
            return false;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (++frac_digits > 6)
                return false;
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p != '\0' || whole_digits + frac_digits == 0)
        return false;
    for (int i = frac_digits; i < 6; i++)
        frac *= 10;
    int64_t value;
    if (__builtin_mul_overflow(whole, FIXED_SCALE, &value) ||
        (negative ? __builtin_sub_overflow(-value, frac, &value)
                  : __builtin_add_overflow(value, frac, &value)))
        return false;
    *out = value;
    return true;
}

char *fixed_format(fixed_t value, char *buf, size_t size)
{
    /* Work on the magnitude as unsigned so INT64_MIN cannot overflow. */
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    snprintf(buf, size, "%s%llu.%06llu", value < 0 ? "-" : "",
             (unsigned long long)(mag / FIXED_SCALE), (unsigned long long)(mag % FIXED_SCALE));
    return buf;
}
