/* Exact fixed-point quantities: every energy, rating and capacity is held as
 * an int64 count of millionths, so sums never depend on the order of terms. */
#ifndef SOLARX_FIXED_H
#define SOLARX_FIXED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One millionth of the unit of the quantity (Wh, kWh, W). */
typedef int64_t fixed_t;

#define FIXED_SCALE 1000000LL
/* Largest magnitude a decoded value may have: 1e9 units (a GWh in one second). A window of
 * 3600 such seconds sums to 3.6e12 units = 3.6e18 millionths, below INT64_MAX (9.2e18), so
 * window sums cannot overflow. */
#define FIXED_MAX_INPUT 1000000000LL

/* Converts a decoded JSON number to fixed point, rounding half away from zero at the
 * sixth decimal. Returns false when the value is not finite or beyond FIXED_MAX_INPUT. */
bool fixed_from_double(double value, fixed_t *out) __attribute__((warn_unused_result));

/* Parses a decimal string ("-12.5", "9993.670000", "7") exactly; more than six decimals
 * are rejected rather than rounded. Returns false on anything else. */
bool fixed_parse(const char *text, fixed_t *out) __attribute__((warn_unused_result));

/* Writes value as a plain decimal with six fractional digits ("9993.670000") into buf,
 * which needs at least FIXED_TEXT_SIZE bytes. Returns buf. */
#define FIXED_TEXT_SIZE 32
char *fixed_format(fixed_t value, char *buf, size_t size);

#endif
