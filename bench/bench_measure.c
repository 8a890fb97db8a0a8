/* bench_measure: runs a command and meters its whole process tree (a JVM started by a Python
 * driver included): CPU time, peak RSS summed over the tree and of its largest process, wall
 * time. SIGTERM/SIGINT are passed on to the command. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

#define MAX_TRACKED 8192
#define MAX_PROCS 65536

static const char usage_text[] =
    "usage: bench_measure [-i MS] -o FILE -- COMMAND [ARG...]\n"
    "Runs COMMAND, samples its process tree every MS ms (default 200) from /proc and, when it\n"
    "exits, writes one line to FILE:\n"
    "  wall_s=.. cpu_s=.. cpu_rusage_s=.. cpu_sampled_s=.. peak_rss_tree_kb=..\n"
    "  peak_rss_max_kb=.. processes=.. exit=..\n"
    "cpu_s is the larger of the rusage of COMMAND and the children it waited for, and the sum of\n"
    "utime+stime last sampled for every process seen in the tree (processes nobody waited for\n"
    "are then counted up to their last sample). Exits with COMMAND's status.\n";

/* A process seen in the tree: its CPU ticks at the last sample. */
struct tracked {
    pid_t pid;
    unsigned long long start_time; /* jiffies after boot: tells a reused pid apart */
    unsigned long long ticks;
};

static struct tracked tracked[MAX_TRACKED];
static size_t n_tracked;
static volatile sig_atomic_t forward_signal;

static void on_signal(int sig)
{
    forward_signal = sig;
}

static void track(pid_t pid, unsigned long long start, unsigned long long ticks)
{
    for (size_t i = 0; i < n_tracked; i++)
        if (tracked[i].pid == pid && tracked[i].start_time == start) {
            tracked[i].ticks = ticks;
            return;
        }
    if (n_tracked < MAX_TRACKED)
        tracked[n_tracked++] = (struct tracked){pid, start, ticks};
}

/* One sample: every process whose ancestry reaches root. Updates the peaks. */
static void sample_tree(pid_t root, long page_kb, long *peak_tree_kb, long *peak_max_kb)
{
    static pid_t pids[MAX_PROCS], ppids[MAX_PROCS];
    static unsigned long long ticks[MAX_PROCS], starts[MAX_PROCS];
    static long rss[MAX_PROCS];
    static char in_tree[MAX_PROCS];
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_PROCS) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (bench_proc_stat((pid_t)pid, &ppids[n], &ticks[n], &starts[n], &rss[n]) == 0) {
            pids[n] = (pid_t)pid;
            in_tree[n] = pid == root;
            n++;
        }
    }
    closedir(d);
    /* Propagate membership down the tree until nothing changes (trees are shallow). */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (in_tree[i])
                continue;
            for (size_t j = 0; j < n; j++)
                if (in_tree[j] && pids[j] == ppids[i]) {
                    in_tree[i] = 1;
                    changed = 1;
                    break;
                }
        }
    }
    long tree_kb = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_tree[i])
            continue;
        long kb = rss[i] * page_kb;
        tree_kb += kb;
        if (kb > *peak_max_kb)
            *peak_max_kb = kb;
        track(pids[i], starts[i], ticks[i]);
    }
    if (tree_kb > *peak_tree_kb)
        *peak_tree_kb = tree_kb;
}

int main(int argc, char **argv)
{
    long interval_ms = 200;
    const char *out_path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-i") == 0 && i + 1 < argc)
            interval_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            break;
    }
    if (out_path == NULL || i >= argc || interval_ms <= 0) {
        fputs(usage_text, stderr);
        return 64;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    double t0 = bench_now();
    pid_t child = fork();
    if (child < 0) {
        perror("bench_measure: fork");
        return 1;
    }
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[i], &argv[i]);
        fprintf(stderr, "bench_measure: %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    long page_kb = sysconf(_SC_PAGESIZE) / 1024;
    long hz = sysconf(_SC_CLK_TCK);
    long peak_tree_kb = 0, peak_max_kb = 0;
    int status = 0;
    struct rusage ru;
    for (;;) {
        if (forward_signal) {
            kill(child, forward_signal);
            forward_signal = 0;
        }
        pid_t r = wait4(child, &status, WNOHANG, &ru);
        if (r == child)
            break;
        if (r < 0 && errno != EINTR) {
            perror("bench_measure: wait4");
            return 1;
        }
        sample_tree(child, page_kb, &peak_tree_kb, &peak_max_kb);
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    double wall = bench_now() - t0;
    double cpu_rusage = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    unsigned long long sampled_ticks = 0;
    for (size_t k = 0; k < n_tracked; k++)
        sampled_ticks += tracked[k].ticks;
    double cpu_sampled = (double)sampled_ticks / (double)hz;
    if (ru.ru_maxrss > peak_max_kb)
        peak_max_kb = ru.ru_maxrss;
    if (peak_max_kb > peak_tree_kb)
        peak_tree_kb = peak_max_kb;
    int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        perror(out_path);
        return 1;
    }
    fprintf(f,
            "wall_s=%.3f cpu_s=%.3f cpu_rusage_s=%.3f cpu_sampled_s=%.3f peak_rss_tree_kb=%ld "
            "peak_rss_max_kb=%ld processes=%zu exit=%d\n",
            wall, cpu_rusage > cpu_sampled ? cpu_rusage : cpu_sampled, cpu_rusage, cpu_sampled,
            peak_tree_kb, peak_max_kb, n_tracked, exit_code);
    fclose(f);
    return exit_code;
}
