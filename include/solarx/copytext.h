/* Rows in PostgreSQL's COPY text format ("1\t2025-02-14 00:06:00+00\t0.250000\n"), built into one
 * growable buffer so a batch's raw rows travel as a few CopyData messages. Pure. */
#ifndef SOLARX_COPYTEXT_H
#define SOLARX_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/fixed.h"

struct copytext {
    char *buf;
    size_t len, cap;
    size_t rows;       /* rows ended */
    bool row_has_cols; /* a column was added since the last row ended */
};

/* Empties the buffer, keeping its allocation. */
void copytext_reset(struct copytext *c);
void copytext_free(struct copytext *c);

void copytext_add_int(struct copytext *c, int64_t v);
void copytext_add_fixed(struct copytext *c, fixed_t v); /* exact decimal, six places */
void copytext_add_bool(struct copytext *c, bool v);
/* An instant, seconds since the epoch, as UTC ("2025-02-14 00:06:00+00:00", clock_format_utc). */
void copytext_add_timestamp(struct copytext *c, int64_t epoch_seconds);
/* Text, with backslash, tab, newline and carriage return escaped; any bytes but NUL. */
void copytext_add_text(struct copytext *c, const char *s, size_t len);
/* "prefix<n>", e.g. a battery's name "battery_2", without a temporary string. */
void copytext_add_text_int(struct copytext *c, const char *prefix, int64_t n);
/* Ends the row ("\n"). */
void copytext_end_row(struct copytext *c);

#endif
