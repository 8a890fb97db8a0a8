/* Progress of a long one-shot command (ingest, replay): done/total, rate and ETA, shown as a live
 * line rewritten in place on a terminal, otherwise as a logfmt line every few seconds. The
 * arithmetic and the formatting are pure functions; struct progress adds the clock and stderr. */
#ifndef SOLARX_PROGRESS_H
#define SOLARX_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum progress_unit { PROGRESS_MESSAGES, PROGRESS_BYTES };

/* Where a command stands at one instant. total 0: unknown. */
struct progress_snapshot {
    uint64_t done;
    uint64_t total;
    double elapsed_s;
    enum progress_unit unit;
};

/* done per second since the start; 0 before any time has passed. */
double progress_rate(const struct progress_snapshot *s);
/* Seconds left at the rate so far: 0 when done >= total, -1 when it cannot be told (no total,
 * nothing done yet). */
double progress_eta_s(const struct progress_snapshot *s);
/* "1h02m03s", "4m05s", "12s", or "?" for a negative value, into buf; returns buf. */
char *progress_format_duration(double seconds, char *buf, size_t size);
/* A quantity of the unit: "12.3 MiB" (bytes) or "123456 msgs" (messages); returns buf. */
char *progress_format_amount(uint64_t n, enum progress_unit unit, char *buf, size_t size);

/* The terminal line, without control characters:
 *   "ingest  45.2%  12.3 MiB / 27.2 MiB  3.1 MiB/s  ETA 4m05s"
 * and the logfmt pairs (no ts/level; log_write adds them):
 *   "event=progress command=ingest unit=bytes done=N total=N pct=45.2 rate_per_s=3250000.0
 *    elapsed_s=4.0 eta_s=5"   (eta_s=-1 when unknown)
 * Both return buf (always NUL-terminated, truncated to size). */
char *progress_format_terminal(const char *command, const struct progress_snapshot *s, char *buf,
                               size_t size);
char *progress_format_logfmt(const char *command, const struct progress_snapshot *s, char *buf,
                             size_t size);

/* The reporter: a live line when stderr is a terminal (refreshed at most 5 times a second),
 * else an event=progress log line every interval_ms. */
struct progress {
    const char *command; /* borrowed */
    enum progress_unit unit;
    uint64_t total;
    bool terminal;
    int interval_ms;
    double started;     /* monotonic seconds */
    double last_report; /* monotonic seconds */
    bool line_shown;    /* a live line is on the terminal */
};

void progress_start(struct progress *p, const char *command, enum progress_unit unit,
                    uint64_t total, int interval_ms);
/* Cheap when nothing is due: call it as often as the work advances. */
void progress_update(struct progress *p, uint64_t done);
/* Ends the live line (a newline after its last state); nothing when not on a terminal. */
void progress_finish(struct progress *p, uint64_t done);

#endif
