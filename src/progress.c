/* Progress lines for ingest and replay: rate and ETA math and formatting (pure), and a reporter
 * that writes a live terminal line or periodic logfmt lines to stderr. */
#include "solarx/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "solarx/log.h"

#define TERMINAL_REFRESH_S 0.2

double progress_rate(const struct progress_snapshot *s)
{
    return s->elapsed_s > 0 ? (double)s->done / s->elapsed_s : 0.0;
}

double progress_eta_s(const struct progress_snapshot *s)
{
    if (s->total == 0)
        return -1;
    if (s->done >= s->total)
        return 0;
    double rate = progress_rate(s);
    if (rate <= 0)
        return -1;
    return (double)(s->total - s->done) / rate;
}

char *progress_format_duration(double seconds, char *buf, size_t size)
{
    if (seconds < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    long long t = (long long)(seconds + 0.5);
    long long h = t / 3600, m = t / 60 % 60, sec = t % 60;
    if (h > 0)
        snprintf(buf, size, "%lldh%02lldm%02llds", h, m, sec);
    else if (m > 0)
        snprintf(buf, size, "%lldm%02llds", m, sec);
    else
        snprintf(buf, size, "%llds", sec);
    return buf;
}

char *progress_format_amount(uint64_t n, enum progress_unit unit, char *buf, size_t size)
{
    if (unit == PROGRESS_MESSAGES) {
        snprintf(buf, size, "%llu msgs", (unsigned long long)n);
        return buf;
    }
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

static double percent(const struct progress_snapshot *s)
{
    if (s->total == 0)
        return 0;
    double pct = 100.0 * (double)s->done / (double)s->total;
    return pct > 100 ? 100 : pct;
}

char *progress_format_terminal(const char *command, const struct progress_snapshot *s, char *buf,
                               size_t size)
{
    char done[32], total[32], rate[32], eta[32];
    progress_format_amount(s->done, s->unit, done, sizeof(done));
    progress_format_amount(s->total, s->unit, total, sizeof(total));
    progress_format_amount((uint64_t)(progress_rate(s) + 0.5), s->unit, rate, sizeof(rate));
    progress_format_duration(progress_eta_s(s), eta, sizeof(eta));
    snprintf(buf, size, "%s %5.1f%%  %s / %s  %s/s  ETA %s", command, percent(s), done, total, rate,
             eta);
    return buf;
}

char *progress_format_logfmt(const char *command, const struct progress_snapshot *s, char *buf,
                             size_t size)
{
    double eta = progress_eta_s(s);
    snprintf(buf, size,
             "event=progress command=%s unit=%s done=%llu total=%llu pct=%.1f rate_per_s=%.1f "
             "elapsed_s=%.1f eta_s=%lld",
             command, s->unit == PROGRESS_BYTES ? "bytes" : "messages", (unsigned long long)s->done,
             (unsigned long long)s->total, percent(s), progress_rate(s), s->elapsed_s,
             eta < 0 ? -1LL : (long long)(eta + 0.5));
    return buf;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const char *command, enum progress_unit unit,
                    uint64_t total, int interval_ms)
{
    *p = (struct progress){
        .command = command,
        .unit = unit,
        .total = total,
        .terminal = isatty(STDERR_FILENO) == 1,
        .interval_ms = interval_ms,
    };
    p->started = p->last_report = monotonic_s();
}

static void report(struct progress *p, uint64_t done, double now)
{
    struct progress_snapshot s = {done, p->total, now - p->started, p->unit};
    char line[256];
    if (p->terminal) {
        progress_format_terminal(p->command, &s, line, sizeof(line));
        /* \r and erase-to-end-of-line: the line is rewritten in place. */
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
        p->line_shown = true;
    } else {
        log_info("%s", progress_format_logfmt(p->command, &s, line, sizeof(line)));
    }
    p->last_report = now;
}

void progress_update(struct progress *p, uint64_t done)
{
    double now = monotonic_s();
    double due = p->terminal ? TERMINAL_REFRESH_S : p->interval_ms / 1000.0;
    if (now - p->last_report >= due)
        report(p, done, now);
}

void progress_finish(struct progress *p, uint64_t done)
{
    if (!p->terminal)
        return;
    report(p, done, monotonic_s());
    fputc('\n', stderr);
    p->line_shown = false;
}
