/* Rows in PostgreSQL's binary COPY format ("COPY ... FROM STDIN (FORMAT binary)"), built into one
 * growable buffer, for the raw rows: integers, instants, exact decimals, booleans and text go as
 * PostgreSQL stores them, so the server neither parses numeric nor timestamptz text. Pure.
 *
 * A stream is copybinary_add_header, then rows (copybinary_start_row, one add per column), then
 * copybinary_add_trailer; the buffer may be handed to the server and reset between any of them. */
#ifndef SOLARX_COPYBINARY_H
#define SOLARX_COPYBINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/fixed.h"
#include "solarx/reading.h"

struct copybinary {
    unsigned char *buf;
    size_t len, cap;
    size_t rows; /* rows started */
};

/* Empties the buffer, keeping its allocation. */
void copybinary_reset(struct copybinary *c);
void copybinary_free(struct copybinary *c);

/* The 19-byte file header: signature, no flags, no header extension. */
void copybinary_add_header(struct copybinary *c);
/* The file trailer (a field count of -1). */
void copybinary_add_trailer(struct copybinary *c);

/* A row of `columns` fields; exactly that many adds must follow. */
void copybinary_start_row(struct copybinary *c, int16_t columns);

void copybinary_add_int4(struct copybinary *c, int32_t v); /* integer */
void copybinary_add_int8(struct copybinary *c, int64_t v); /* bigint */
/* numeric, exact, display scale 6: base-10000 digit groups, leading and trailing zero groups
 * left out (as PostgreSQL's numeric_send writes them). */
void copybinary_add_fixed(struct copybinary *c, fixed_t v);
void copybinary_add_bool(struct copybinary *c, bool v);
/* timestamptz of an instant, seconds since the Unix epoch: microseconds since 2000-01-01 UTC. */
void copybinary_add_timestamp(struct copybinary *c, int64_t epoch_seconds);
/* text: the bytes as they are (no escaping in the binary format); the server checks them against
 * the client encoding. */
void copybinary_add_text(struct copybinary *c, const char *s, size_t len);
/* text "prefix<n>", e.g. a battery's name "battery_2", without a temporary string. */
void copybinary_add_text_int(struct copybinary *c, const char *prefix, int64_t n);

/* One raw row of reading r of kind (home, solar or battery): the columns of the raw tables in
 * migrations/0002_raw_readings.sql, in the order the flusher's STMT_COPY_*_RAW name them, with
 * the Kafka partition and offset it came from. The flusher and bench/floor_copy write it. */
void copybinary_add_raw_reading(struct copybinary *c, enum reading_kind kind,
                                const struct reading *r, int32_t partition, int64_t offset);

#endif
