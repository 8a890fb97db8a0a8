/* Text-format PostgreSQL array literals ("{1,2,3}", "{\"a b\",NULL}") built incrementally, so a
 * whole batch travels as a few parameters of `INSERT … SELECT FROM unnest($1::int[], …)`. Pure. */
#ifndef SOLARX_PGARRAY_H
#define SOLARX_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/fixed.h"

struct pgarray {
    char *buf;
    size_t len, cap;
    size_t count; /* elements appended */
};

/* Starts (or restarts, keeping the allocation) an empty array "{". */
void pgarray_reset(struct pgarray *a);
void pgarray_free(struct pgarray *a);

void pgarray_add_int(struct pgarray *a, int64_t v);
void pgarray_add_fixed(struct pgarray *a, fixed_t v); /* exact decimal, six places */
void pgarray_add_bool(struct pgarray *a, bool v);
void pgarray_add_null(struct pgarray *a);
/* A text element, quoted and escaped (quotes and backslashes); s may be any bytes but NUL. */
void pgarray_add_text(struct pgarray *a, const char *s, size_t len);
/* A bytea element in hex input form ("\\x0fa1") from len raw bytes. */
void pgarray_add_bytea(struct pgarray *a, const void *data, size_t len);

/* Closes the literal with "}" and returns it (owned by a; valid until the next reset or free). */
const char *pgarray_finish(struct pgarray *a);

#endif
