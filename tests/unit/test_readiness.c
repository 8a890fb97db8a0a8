/* Unit tests of readiness (the service's view -> health facts, /healthz's verdict, the systemd
 * notifications on a real notify socket), of http_listen's parsing, and of /metrics asking the
 * view once per scrape (a real request on 127.0.0.1). */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
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
    int lag_queries;  /* lags calls */
    int observations; /* observe calls */
};

static void fake_observe(void *ctx, struct readiness_state *out)
{
    ((struct fake_service *)ctx)->observations++;
    *out = ((struct fake_service *)ctx)->state;
}

static struct metrics_lag *fake_lags(void *ctx, size_t *count)
{
    struct fake_service *f = ctx;
    f->lag_queries++;
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

/* A port nothing listens on now (bound to 0 and released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

struct scrape {
    struct event_base *base;
    int code;
    char body[8192];
};

static void on_scraped(struct evhttp_request *req, void *arg)
{
    struct scrape *sc = arg;
    sc->code = req ? evhttp_request_get_response_code(req) : -1;
    if (req) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        n = n < sizeof(sc->body) - 1 ? n : sizeof(sc->body) - 1;
        evbuffer_remove(in, sc->body, n);
        sc->body[n] = '\0';
    }
    event_base_loopexit(sc->base, NULL);
}

/* GET path from the endpoints on port, run on base until answered. */
static void get(struct event_base *base, int port, const char *path, struct scrape *sc)
{
    *sc = (struct scrape){.base = base};
    struct evhttp_connection *conn =
        evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)port);
    struct evhttp_request *req = evhttp_request_new(on_scraped, sc);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    cr_assert_eq(evhttp_make_request(conn, req, EVHTTP_REQ_GET, path), 0);
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    evhttp_connection_free(conn);
}

Test(status_http, a_metrics_scrape_asks_for_the_lags_once_and_judges_health_by_them)
{
    char err[256], listen[64];
    struct metrics m = {0};
    struct fake_service f = {.state = {.postgres_connected = true, .last_progress = now_coarse()}};
    f.state.last_progress.tv_sec -= 400; /* idle 400 s with lag: stalled */
    f.lags[0] = (struct metrics_lag){"home_t", 0, 1200};
    f.lag_count = 1;
    struct readiness_view view = view_of(&f, &m);
    struct event_base *base = event_base_new();
    struct readiness *r = readiness_new(base, &view, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    readiness_mark_ready(r);
    int port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    struct status_http *sh = status_http_new(base, "x.conf", listen, &view, r, err, sizeof(err));
    cr_assert_not_null(sh, "%s", err);

    struct scrape sc;
    get(base, port, "/metrics", &sc);
    cr_assert_eq(sc.code, 200, "%s", sc.body);
    cr_assert_eq(f.lag_queries, 1, "one lag query per scrape, not %d", f.lag_queries);
    cr_assert_eq(f.observations, 1, "one observation per scrape, not %d", f.observations);
    cr_assert(strstr(sc.body, "solarx_partition_lag{topic=\"home_t\",partition=\"0\"} 1200\n"),
              "%s", sc.body);
    cr_assert(strstr(sc.body, "solarx_healthy 0\n"), "stalled with that lag: %s", sc.body);

    f.lags[0].lag = 0; /* caught up: idle is no stall */
    get(base, port, "/metrics", &sc);
    cr_assert_eq(f.lag_queries, 2);
    cr_assert(strstr(sc.body, "solarx_healthy 1\n"), "%s", sc.body);

    get(base, port, "/healthz", &sc);
    cr_assert_eq(sc.code, 200, "%s", sc.body);
    cr_assert_str_eq(sc.body, "ok\n");
    cr_assert_eq(f.lag_queries, 3, "/healthz asks once too");

    status_http_destroy(sh);
    readiness_destroy(r);
    event_base_free(base);
}
