/* Dimensions inside the flush transaction: reads the SCD2 histories a batch touches, feeds them
 * the batch's new battery readings and the registries, gives every fact row the key of the
 * version in effect at its window's last reading, and writes back changed histories with the
 * fact rows they re-point. One dimsync lives for one flush. */
#ifndef SOLARX_DIMSYNC_H
#define SOLARX_DIMSYNC_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/batch.h"
#include "solarx/dbpipe.h"
#include "solarx/dim.h"
#include "solarx/pgarray.h"
#include "solarx/registry.h"
#include "solarx/window.h"

struct dimsync;

/* For one flush over windows[0..n) (sorted by window_key_compare) and their states (borrowed,
 * states[i] is windows[i]'s stored-then-merged state). reg may be NULL (no registries); when
 * registry_dirty, every device of reg is brought up to date, else only those the batch touches.
 * Returns NULL when out of memory. */
struct dimsync *dimsync_new(struct batch_window *const *windows, struct window_state *states,
                            size_t n, const struct registry *reg, bool registry_dirty);
void dimsync_destroy(struct dimsync *d);

/* Phase A: the registry lock (shared, exclusive when the registry is dirty; taken before any
 * window lock) -- send it first -- and then the reads of the histories, whose results come back
 * to d through their handlers (a bad stored row fails the flush with a message naming it).
 * Return false when pipe cannot send. */
bool dimsync_send_lock(struct dimsync *d, struct db_pipe *pipe) __attribute__((warn_unused_result));
bool dimsync_send_reads(struct dimsync *d, struct db_pipe *pipe,
                        struct pgarray *scratch /* 3 arrays */) __attribute__((warn_unused_result));

/* After the reads: applies the registry (when there is one) to the registry histories. */
bool dimsync_apply_registry(struct dimsync *d, char *errstr, size_t errstr_size);

/* Feeds a battery reading that counted a new second in windows[index] (already applied to
 * states[index]) to its battery's history. Returns false with errstr when the history refuses
 * it (a corrupt history). */
bool dimsync_observe_battery(struct dimsync *d, size_t index, const struct reading *r, char *errstr,
                             size_t errstr_size);

/* The surrogate key of the version of (kind, home_id, device_id) in effect at ts, or 0 when the
 * device has no version (unknown to the registry). Solar: home_id is ignored. */
int64_t dimsync_key_at(const struct dimsync *d, enum reading_kind kind, int32_t home_id,
                       int32_t device_id, int64_t ts);

/* Phase B, before the fact rows: changed histories replace their stored versions -- versions
 * gone are deleted, the others upserted by key -- and the registry's appliances their type 1
 * rows. */
bool dimsync_send_dimension_writes(struct dimsync *d, struct db_pipe *pipe,
                                   struct pgarray *scratch /* 2 * STMT_MAX_PARAMS arrays */)
    __attribute__((warn_unused_result));
/* Phase B, after the fact rows: facts of devices whose versions changed (a start or attributes,
 * not just a last_seen) get the key of the version now in effect at their last reading. */
bool dimsync_send_repoints(struct dimsync *d, struct db_pipe *pipe,
                           struct pgarray *scratch /* 2 arrays */)
    __attribute__((warn_unused_result));

/* Counters of the flush: histories that changed, and the version rows written for them (only
 * rows that differ from the stored ones are written). */
size_t dimsync_changed(const struct dimsync *d);
size_t dimsync_rows_written(const struct dimsync *d);

#endif
