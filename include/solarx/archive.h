/* Raw archive before retention: with [solarx] raw_archive_dir set, every raw day partition that
 * falls behind the retention horizon is written out as gzip'd topic dumps in Solar-X's own
 * naming, kafka_log_<topic>_<YYYY-MM-DD>.log.gz (one JSON message per line in the producers'
 * format, so `solarx-stream ingest DIR` restores it), and only then dropped. <YYYY-MM-DD> is the
 * partition's UTC day. A file is written to a hidden temporary name, fsync'd and renamed, so a
 * crash never leaves half an archive under the final name; an existing archive of that name is
 * extended by a new gzip member, never replaced; a day whose archive failed keeps its
 * partitions and is tried again at the next request. */
#ifndef SOLARX_ARCHIVE_H
#define SOLARX_ARCHIVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/config.h"

struct archiver;

/* An archiver for cfg (borrowed; it reads the conninfo, topics, source_timezone and
 * raw_archive_dir, which a reload does not change). Creates the directory when missing.
 * Returns NULL with errstr when the directory cannot be made or written. Connects to PostgreSQL
 * (its own blocking connection) at the first run. */
struct archiver *archiver_new(const struct config *cfg, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));
void archiver_destroy(struct archiver *a); /* NULL is fine */

/* Archives, then drops, every raw day partition that ends at or before horizon (epoch seconds),
 * oldest first. Blocks for as long as that takes; stop (may be NULL) is checked between rows and
 * abandons the day in progress (its partitions are kept). Returns the number of days dropped,
 * or -1 with errstr (the failing day and its partitions are kept; the connection is dropped
 * and made again at the next run). */
int archiver_run(struct archiver *a, int64_t horizon, const atomic_bool *stop, char *errstr,
                 size_t errstr_size) __attribute__((warn_unused_result));

/* The service's archiver: a thread that runs archiver_run for the newest horizon requested, so
 * the event loop never waits on an archive (gzip'ing a day of readings takes seconds to
 * minutes). The thread shares nothing with the loop but the requested horizon (under a mutex)
 * and logs its own lines. */
struct archive_worker;

/* Starts the thread. Returns NULL with errstr (archiver_new's errors, or no thread). */
struct archive_worker *archive_worker_start(const struct config *cfg, char *errstr,
                                            size_t errstr_size) __attribute__((warn_unused_result));
/* Asks for the days behind horizon to be archived and dropped; returns at once. */
void archive_worker_request(struct archive_worker *w, int64_t horizon);
/* Stops the thread (the day in progress is abandoned, its partitions kept) and frees it. NULL is
 * fine. */
void archive_worker_stop(struct archive_worker *w);

#endif
