/* Unit tests of readiness (the service's view -> health facts, /healthz's verdict, the systemd
 * notifications on a real notify socket) and of http_listen's parsing. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "solarx/readiness.h"
#include "solarx/status_http.h"

/* A fake service: what observe and lags answer. */
struct fake_service {
    struct readiness_state state;
    struct metrics_lag lags[3];
    size_t lag_count;
    bool no_consumer; /* lags answers NULL */
};

static void fake_observe(void *ctx, struct readiness_state *out)
{
    *out = ((struct fake_service *)ctx)->state;
}

static struct metrics_lag *fake_lags(void *ctx, size_t *count)
{
    struct fake_service *f = ctx;
    if (f->no_consumer)
        return NULL;
    struct metrics_lag *copy = calloc(f->lag_count + 1, sizeof(*copy));
    memcpy(copy, f->lags, f->lag_count * sizeof(*copy));
    *count = f->lag_count;
    return copy;
}

static const char *const topics[READING_KIND_COUNT] = {"home_t", "solar_t", "battery_t"};

static struct readiness_view view_of(struct fake_service *f, const struct metrics *m)
{
    return (struct readiness_view){.metrics = m,
                                   .topics = topics,
                                   .stall_timeout_s = 300,
                                   .ctx = f,
                                   .observe = fake_observe,
                                   .lags = fake_lags};
}

static struct timespec now_coarse(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return now;
}

Test(readiness, the_state_maps_to_health_facts)
{
    struct readiness_state st = {.kafka_fatal = "FENCED",
                                 .stopping = true,
                                 .postgres_connected = true,
                                 .last_progress = {100, 750000000}};
    struct health_facts h =
        readiness_health_facts(&st, true, 1200, (struct timespec){412, 250000000}, 300);
    cr_assert_str_eq(h.kafka_fatal, "FENCED");
    cr_assert(h.stopping);
    cr_assert(h.postgres_connected);
    cr_assert(h.ready);
    cr_assert_eq(h.lag, 1200);
    cr_assert_float_eq(h.idle_s, 311.5, 1e-9);
    cr_assert_eq(h.stall_timeout_s, 300);
    st = (struct readiness_state){0};
    h = readiness_health_facts(&st, false, -1, (struct timespec){5, 0}, 60);
    cr_assert_null(h.kafka_fatal);
    cr_assert_not(h.stopping || h.postgres_connected || h.ready);
    cr_assert_eq(h.lag, -1);
    cr_assert_float_eq(h.idle_s, 5.0, 1e-9);
}

Test(readiness, the_verdict_follows_the_view)
{
    struct metrics m = {0};
    struct fake_service f = {.state = {.postgres_connected = true, .last_progress = now_coarse()}};
    struct readiness_view view = view_of(&f, &m);
    char err[128], buf[256];
    struct event_base *base = event_base_new();
    struct readiness *r = readiness_new(base, &view, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    cr_assert_str_eq(readiness_problem(r, buf, sizeof(buf)), "waiting for partitions");
    readiness_mark_ready(r);
    readiness_mark_ready(r); /* once only; no harm */
    cr_assert_null(readiness_problem(r, buf, sizeof(buf)));
    f.state.postgres_connected = false;
    cr_assert_str_eq(readiness_problem(r, buf, sizeof(buf)), "postgres unavailable");
    f.state.postgres_connected = true;
    /* Idle 400 s with lag 1200 + 30 (an unknown lag does not count): stalled. */
    f.state.last_progress.tv_sec -= 400;
    f.lags[0] = (struct metrics_lag){"home_t", 0, 1200};
    f.lags[1] = (struct metrics_lag){"solar_t", 1, -1};
    f.lags[2] = (struct metrics_lag){"battery_t", 2, 30};
    f.lag_count = 3;
    const char *problem = readiness_problem(r, buf, sizeof(buf));
    cr_assert_not_null(problem);
    cr_assert(strstr(problem, "consumption stalled for 40") == problem, "%s", problem);
    cr_assert(strstr(problem, " s with lag 1230 (stall_timeout_s = 300)"), "%s", problem);
    f.no_consumer = true; /* lag unknown: not a stall */
    cr_assert_null(readiness_problem(r, buf, sizeof(buf)));
    f.state.kafka_fatal = "broker: fenced";
    cr_assert_str_eq(readiness_problem(r, buf, sizeof(buf)), "kafka fatal error: broker: fenced");
    readiness_destroy(r);
    event_base_free(base);
}

/* Binds a datagram socket in a fresh directory and points NOTIFY_SOCKET at it. */
static int notify_socket(char *path, size_t size)
{
    char dir[] = "/tmp/readiness-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, size, "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

/* Every datagram received so far, each followed by '|'. */
static void received(int fd, char *out, size_t size)
{
    out[0] = '\0';
    char msg[512];
    ssize_t n;
    while ((n = recv(fd, msg, sizeof(msg) - 1, 0)) > 0) {
        msg[n] = '\0';
        strncat(out, msg, size - strlen(out) - 2);
        strcat(out, "|");
    }
}

static void remove_socket(int fd, const char *path)
{
    close(fd);
    unlink(path);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

Test(readiness, systemd_hears_ready_watchdog_status_and_stopping)
{
    char path[256], got[4096], err[128];
    int fd = notify_socket(path, sizeof(path));
    setenv("WATCHDOG_USEC", "200000", 1); /* pinged every 100 ms */
    unsetenv("WATCHDOG_PID");
    struct metrics m = {0};
    m.consumed[READING_HOME] = 5;
    m.merged[READING_SOLAR] = 4;
    struct fake_service f = {.lags = {{"home_t", 0, 42}}, .lag_count = 1};
    struct readiness_view view = view_of(&f, &m);
    struct event_base *base = event_base_new();
    struct readiness *r = readiness_new(base, &view, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    readiness_mark_ready(r);
    readiness_mark_ready(r);
    struct timeval run = {0, 250000};
    event_base_loopexit(base, &run);
    event_base_dispatch(base);
    readiness_mark_stopping(r);
    received(fd, got, sizeof(got));
    cr_assert(strncmp(got, "READY=1\nSTATUS=consuming|WATCHDOG=1|", 36) == 0, "%s", got);
    cr_assert(strstr(got, "|STATUS=lag=42 last_flush_age_s=never consumed=5 merged=4 duplicates=0 "
                          "dead_letters=0 flushes=0 flush_failures=0|"),
              "%s", got);
    size_t len = strlen(got);
    cr_assert(len > 12 && strcmp(got + len - 12, "|STOPPING=1|") == 0, "STOPPING=1 last: %s", got);
    cr_assert_eq(strstr(got + 1, "READY=1"), NULL, "READY=1 once: %s", got);
    readiness_destroy(r);
    event_base_free(base);
    remove_socket(fd, path);
}

Test(readiness, no_watchdog_no_pings)
{
    char path[256], got[4096], err[128];
    int fd = notify_socket(path, sizeof(path));
    unsetenv("WATCHDOG_USEC");
    struct metrics m = {0};
    struct fake_service f = {0};
    struct readiness_view view = view_of(&f, &m);
    struct event_base *base = event_base_new();
    struct readiness *r = readiness_new(base, &view, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    struct timeval run = {0, 150000};
    event_base_loopexit(base, &run);
    event_base_dispatch(base);
    received(fd, got, sizeof(got));
    cr_assert_str_eq(got, "");
    readiness_destroy(r);
    event_base_free(base);
    remove_socket(fd, path);
}

Test(status_http, http_listen_is_host_colon_port)
{
    char host[16];
    uint16_t port = 0;
    cr_assert(status_http_parse_listen("127.0.0.1:9187", host, sizeof(host), &port));
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 9187);
    cr_assert(status_http_parse_listen("[::1]:80", host, sizeof(host), &port), "the last ':'");
    cr_assert_str_eq(host, "[::1]");
    cr_assert_eq(port, 80);
    cr_assert(status_http_parse_listen(":65535", host, sizeof(host), &port));
    cr_assert_str_eq(host, "");
    cr_assert_eq(port, 65535);
    cr_assert_not(status_http_parse_listen("localhost", host, sizeof(host), &port));
    cr_assert_not(status_http_parse_listen("localhost:0", host, sizeof(host), &port));
    cr_assert_not(status_http_parse_listen("localhost:65536", host, sizeof(host), &port));
    cr_assert_not(status_http_parse_listen("localhost:http", host, sizeof(host), &port));
    cr_assert_not(status_http_parse_listen("a-host-name-too-long:80", host, sizeof(host), &port));
}

Test(status_http, a_bad_http_listen_names_the_file_and_the_value)
{
    char err[256];
    struct metrics m = {0};
    struct fake_service f = {0};
    struct readiness_view view = view_of(&f, &m);
    struct event_base *base = event_base_new();
    struct readiness *r = readiness_new(base, &view, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    cr_assert_null(status_http_new(base, "/etc/solarx.conf", "9187", &view, r, err, sizeof(err)));
    cr_assert_str_eq(err, "config: /etc/solarx.conf: [solarx] http_listen = \"9187\": expected "
                          "host:port");
    struct status_http *none = status_http_new(base, "x.conf", "", &view, r, err, sizeof(err));
    cr_assert_not_null(none, "an empty http_listen serves nothing");
    status_http_destroy(none);
    readiness_destroy(r);
    event_base_free(base);
}
