/* A batch: everything consumed since the last flush, grouped for one PostgreSQL transaction —
 * readings by window, dead letters, and the next offset of every partition they came from. */
#ifndef SOLARX_BATCH_H
#define SOLARX_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "solarx/clock.h"
#include "solarx/reading.h"
#include "solarx/window.h"

/* A reading with the coordinates it came from (partition -1 for a dump file). */
struct batch_reading {
    struct reading r;
    int32_t partition;
    int64_t offset;
};

/* One device's window in this batch. Its readings, in arrival order, are items[0..count) --
 * valid after batch_sorted_windows() and until the batch next changes. */
struct batch_window {
    struct window_key key;
    struct batch_reading *items;
    size_t count;
    size_t filled; /* grouping cursor */
    UT_hash_handle hh;
};

struct batch_dead_letter {
    enum reading_kind kind; /* which topic */
    int32_t partition;
    int64_t offset;
    char *key; /* may be NULL */
    size_t key_len;
    char *payload;          /* what is kept: the whole payload, or its first bytes (too_large) */
    size_t payload_len;     /* of what is kept */
    uint64_t payload_bytes; /* length of the message's whole payload */
    unsigned char payload_sha256[32]; /* SHA-256 of the whole payload */
    char reason[40];                  /* decode_error_name() */
    char *error;                      /* the full reason */
    char *source;                     /* the dump file it came from, or NULL (Kafka) */
};

/* Next offset to consume of one partition: what the flush stores and then commits. */
struct batch_offset {
    struct {
        int32_t kind;
        int32_t partition;
    } id;
    int64_t next_offset;
    UT_hash_handle hh;
};

/* Storage is reused from one batch to the next and never shrinks, so that a service's memory
 * reaches its size in the first full batches and stays there (P6). */
struct batch {
    int32_t window_seconds;
    const struct clock_zone *zone; /* borrowed */
    struct batch_window *windows;  /* uthash by key */
    size_t window_count;
    size_t reading_count;
    struct batch_reading *arrived; /* [0..reading_count) in arrival order */
    struct batch_window **owner;   /* parallel to arrived: each reading's window */
    struct batch_reading *grouped; /* the same readings grouped by window (sorted windows) */
    size_t reading_cap;
    struct batch_window **sorted; /* windows by window_key_compare */
    size_t sorted_cap;
    struct batch_dead_letter *dead;
    size_t dead_count, dead_cap;
    struct batch_offset *offsets; /* uthash by id */
    size_t offset_count;
    char *source; /* stamped on the dead letters added from now on (batch_set_source) */
    size_t bytes; /* approximate size of what a flush of it sends (batch_bytes) */
};

/* What one reading counts towards flush_max_bytes: its share of the flush's array parameters. */
#define BATCH_READING_BYTES 160

/* A new empty batch for windows of window_seconds aligned in zone (borrowed, must outlive it). */
struct batch *batch_new(int32_t window_seconds, const struct clock_zone *zone);
void batch_destroy(struct batch *b);
/* Empties b, keeping its settings. */
void batch_clear(struct batch *b);
bool batch_is_empty(const struct batch *b);

/* What flush_max_readings bounds: readings plus dead letters. */
size_t batch_size(const struct batch *b);

/* What flush_max_bytes bounds: BATCH_READING_BYTES per reading plus the key, kept payload and
 * error of every dead letter (in the flush, bytea travels as hex: twice that at most). */
size_t batch_bytes(const struct batch *b);

/* What flush_max_windows bounds: the distinct windows (fact rows) b's readings fall in, counted
 * exactly as readings are added (repeats of a device's window count once). What a flush holds per
 * window (its merged state, the fact upsert's parameters, the stored state read back) grows with
 * this, not with readings: at 10,000 homes a batch touches about as many windows as readings. */
size_t batch_window_count(const struct batch *b);

/* Whether b has reached any bound: max_readings (batch_size), max_bytes (batch_bytes) or
 * max_windows (batch_window_count). */
bool batch_is_full(const struct batch *b, size_t max_readings, size_t max_bytes,
                   size_t max_windows);

/* Files r under its window. Solar windows are keyed by panel alone (home_id 0 in the key), as
 * their fact rows are; the reading keeps its home_id. */
void batch_add_reading(struct batch *b, const struct reading *r, int32_t partition, int64_t offset);

/* Names the dump file the following dead letters come from (copied); NULL for Kafka. */
void batch_set_source(struct batch *b, const char *source);

/* Keeps a copy of a rejected message with its reason. key may be NULL. */
void batch_add_dead_letter(struct batch *b, enum reading_kind kind, int32_t partition,
                           int64_t offset, const void *key, size_t key_len, const void *payload,
                           size_t payload_len, const char *reason, const char *error);

/* Like batch_add_dead_letter, but keeps only the first keep_bytes of payload (a too_large
 * message); payload_bytes and payload_sha256 still describe the whole payload. */
void batch_add_truncated_dead_letter(struct batch *b, enum reading_kind kind, int32_t partition,
                                     int64_t offset, const void *key, size_t key_len,
                                     const void *payload, size_t payload_len, size_t keep_bytes,
                                     const char *reason, const char *error);

/* Records that the message at offset was consumed: the partition's next offset becomes
 * offset + 1 unless already beyond. */
void batch_note_offset(struct batch *b, enum reading_kind kind, int32_t partition, int64_t offset);

/* The windows sorted by window_key_compare, each with its items grouped: an array of window_count
 * pointers owned by b, valid until b next changes. NULL when there are none. */
struct batch_window **batch_sorted_windows(struct batch *b);

/* Index of key in windows[0..n) sorted by window_key_compare (batch_sorted_windows), or -1. */
long batch_find_window(struct batch_window *const *windows, size_t n, const struct window_key *key);

/* Moves everything of src into dst (same window length and zone) and empties src. */
void batch_absorb(struct batch *dst, struct batch *src);

/* How many messages b holds: distinct (topic kind, partition, offset) of its readings and dead
 * letters. */
size_t batch_message_count(const struct batch *b);

/* Splits src's messages, ordered by (topic kind, partition, offset), into two halves: first gets
 * the first half (the smaller one when the count is odd), second the rest, each with the
 * readings (in arrival order) and dead letters of its messages. Offsets stay correct for any
 * prefix of flushes: first stores, per partition, the offset after its last message there (the
 * partition's whole next_offset of src when second holds none of it); second stores src's
 * next_offset of the partitions it holds messages of. So committing first alone never passes a
 * message of second. first and second must be empty, with src's window length and zone; they
 * take src's current source (batch_set_source). src is not changed. Returns false (and adds
 * nothing) when src holds fewer than two messages. */
bool batch_split(const struct batch *src, struct batch *first, struct batch *second)
    __attribute__((warn_unused_result));

/* Adds to dst (empty, same settings) one dead letter per message of src, with reason and error,
 * and src's offsets: dead letters of src keep their payload and key (their error is prefixed
 * with error); readings are re-encoded as one Solar-X JSON payload per message (UTC time stamp,
 * ids, every field the warehouse keeps), since src holds only the decoded readings. The dead
 * letters take src's current source (dump file), if any. */
void batch_to_dead_letters(const struct batch *src, struct batch *dst, const char *reason,
                           const char *error);

#endif
