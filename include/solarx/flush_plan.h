/* The pure part of a flush (no libpq): which advisory locks it takes, how its readings merge
 * into the stored window states (only seconds not yet counted), which readings become raw rows,
 * the raw retention horizon, and the days whose raw partitions must be ensured. flush.c sends
 * what these decide; unit tests call them directly. */
#ifndef SOLARX_FLUSH_PLAN_H
#define SOLARX_FLUSH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/batch.h"
#include "solarx/reading.h"
#include "solarx/window.h"

/* Advisory lock namespace of windows: pg_advisory_xact_lock(LOCK_CLASS + kind, start / 60). */
#define FLUSH_PLAN_LOCK_CLASS 735800

/* One flush's windows and what merging did to them. The arrays are grow-only (memory stays
 * level from one flush to the next); flush_plan_free releases them. */
struct flush_plan {
    struct batch_window **windows; /* borrowed, sorted by window_key_compare */
    size_t window_count;
    struct window_state *states; /* [window_count]: stored state, then merged */
    int32_t *solar_home;         /* [window_count]: solar windows' home_id for the fact row */
    bool *changed;               /* [window_count]: a new second was counted */
    int64_t *versions;           /* [window_count]: the stored fact row's version (0: none) */
    bool *cached;                /* [window_count]: the stored state came from the window cache */
    bool *accepted;              /* per reading, in window order: it counted a new second */
    size_t windows_cap, accepted_cap;
};

/* What merging counted. */
struct flush_merge_counts {
    size_t readings;   /* readings of the batch */
    size_t accepted;   /* new seconds */
    size_t duplicates; /* readings whose second was already counted */
    size_t merged[READING_KIND_COUNT];
    int64_t min_ts, max_ts; /* of the accepted readings (INT64_MAX / INT64_MIN when none) */
};

/* Starts a plan over windows[0..n) (borrowed; sorted) holding `readings` readings: empty
 * window states of window_seconds, version 0, nothing cached, nothing accepted. Returns false when
 * out of memory. */
bool flush_plan_start(struct flush_plan *p, struct batch_window **windows, size_t n,
                      size_t readings, int32_t window_seconds) __attribute__((warn_unused_result));
void flush_plan_free(struct flush_plan *p);

/* A kind's stored-state reads and fact upserts go in slices of windows, so that neither the
 * flusher's array text nor libpq's buffers hold all of a large flush's windows at once: at least
 * FLUSH_PLAN_SLICE_ROWS windows a slice, and at most FLUSH_PLAN_SLICES_MAX slices a kind (a
 * flush over more windows sends larger slices; the pipeline's query count stays bounded). */
#define FLUSH_PLAN_SLICE_ROWS 1024
#define FLUSH_PLAN_SLICES_MAX 6
/* The windows per slice for a kind with `rows` windows to send. */
size_t flush_plan_slice_rows(size_t rows);

/* The window locks as (class << 32 | object), sorted and distinct, into locks[] (room for
 * window_count). Returns how many. Every writer takes them in this order: no deadlock. */
size_t flush_plan_window_locks(const struct flush_plan *p, int64_t *locks);

/* Called for every battery reading that counted a new second in windows[index] (already
 * applied to states[index]). Returns false with errstr to stop the merge. */
typedef bool (*flush_battery_fn)(void *ctx, size_t index, const struct reading *r, char *errstr,
                                 size_t errstr_size);

/* Applies every reading to its window's state (stored state loaded first), in arrival order:
 * a reading whose second is already counted is a duplicate; the others are marked accepted and
 * their windows changed. Solar windows are keyed by panel alone; their home is the smallest
 * seen. Returns false (with errstr) only when on_battery refuses a reading. */
bool flush_plan_merge(struct flush_plan *p, struct flush_merge_counts *counts,
                      flush_battery_fn on_battery, void *ctx, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Calls fn for every raw row of one kind: the accepted readings not older than horizon.
 * Returns how many accepted readings were older (counted in their window, no raw row). */
typedef void (*flush_raw_row_fn)(void *ctx, int kind, const struct batch_reading *item);
size_t flush_plan_each_raw_row(const struct flush_plan *p, int kind, int64_t horizon,
                               flush_raw_row_fn fn, void *ctx);

/* Where a walk over one kind's raw rows stands, so that it can go on later (the raw COPY is
 * written a chunk at a time, as the socket takes it). */
struct flush_raw_cursor {
    int kind;
    size_t window;  /* windows[window] is the next to look at */
    size_t end;     /* ... up to windows[end] (excluded) */
    size_t item;    /* ... from its items[item] */
    size_t flat;    /* the index of that reading in accepted[] */
    size_t expired; /* accepted readings passed over as older than horizon, so far */
    bool done;      /* every reading of the kind was looked at */
};
void flush_raw_cursor_start(struct flush_raw_cursor *c, int kind);

/* The raw rows of windows[first, end) of a plan: what one connection writes when a flush's raw
 * rows are split between several (flush.c, raw_writer.h). */
struct flush_raw_share {
    size_t first, end;
    size_t first_flat; /* the index of windows[first]'s first reading in accepted[] */
    size_t rows;       /* raw rows in it (accepted readings not before the horizon) */
};
/* The whole plan as one share. */
struct flush_raw_share flush_plan_whole_share(const struct flush_plan *p, int64_t horizon);
/* Splits the plan's windows into at most n (>= 1) consecutive shares of about equal raw rows
 * (apart by at most one window's rows), into out[0..n): share k ends with the window at which the
 * rows so far reach (k + 1) / n of all. Shares without raw rows are left out. Returns how many
 * were given (0 when the plan has no raw rows). */
size_t flush_plan_raw_shares(const struct flush_plan *p, int64_t horizon, size_t n,
                             struct flush_raw_share *out);
/* A walk over the raw rows of kind within share. */
void flush_raw_cursor_start_share(struct flush_raw_cursor *c, int kind,
                                  const struct flush_raw_share *share);

/* Calls fn for the next raw rows of c's kind, in the order flush_plan_each_raw_row gives them,
 * until max_rows were given or there are no more (c->done). Returns how many were given. */
size_t flush_plan_raw_rows(const struct flush_plan *p, int64_t horizon, struct flush_raw_cursor *c,
                           size_t max_rows, flush_raw_row_fn fn, void *ctx);

/* UTC day (since 1970-01-01) of an instant, rounding down. */
int64_t flush_plan_day(int64_t ts);

/* Raw retention across flushes. */
struct flush_retention {
    int64_t newest_ts;       /* newest event time committed (or being) */
    int64_t raw_horizon;     /* raw rows before this instant are not kept; 0: none yet */
    int64_t dropped_horizon; /* partitions before this were last dropped */
};

/* Moves the horizon for a batch whose newest accepted reading is max_ts: keeps retention_days of
 * event time behind the newest reading, never counting a reading more than a day ahead of now
 * (one bad clock must not empty the raw tables). Returns true when the horizon passed
 * dropped_horizon: partitions before it may be dropped. */
bool flush_retention_advance(struct flush_retention *r, int64_t max_ts, int64_t now,
                             int retention_days);

/* UTC days whose raw partitions are known to exist, sorted: the newest FLUSH_KNOWN_DAYS_MAX. */
#define FLUSH_KNOWN_DAYS_MAX 64
struct flush_known_days {
    int32_t days[FLUSH_KNOWN_DAYS_MAX];
    size_t count;
};
bool flush_known_day(const struct flush_known_days *k, int32_t day);
/* Adds days[0..n) (after a COMMIT that ensured them), forgetting the oldest beyond the cap. */
void flush_known_days_add(struct flush_known_days *k, const int32_t *days, size_t n);
/* Forgets the days before first_day (their partitions were dropped). */
void flush_known_days_forget_before(struct flush_known_days *k, int32_t first_day);

/* The distinct days of the raw rows (accepted, not before horizon) not known to have their
 * partitions, sorted, into *days (grown with realloc; *cap its room). Returns false when out of
 * memory. */
bool flush_plan_unknown_days(const struct flush_plan *p, int64_t horizon,
                             const struct flush_known_days *known, int32_t **days, size_t *count,
                             size_t *cap) __attribute__((warn_unused_result));

#endif
