/* /metrics and /healthz on the limited evhttp server of http.c, from the readiness view; one
 * observation of the service and one lag query per request. */
#include "solarx/status_http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/http.h"
#include "solarx/log.h"

struct status_http {
    struct readiness_view view;
    struct readiness *readiness; /* not owned */
    struct http_server *http;    /* NULL: no http_listen */
};

bool status_http_parse_listen(const char *listen, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    int number = colon ? atoi(colon + 1) : 0;
    if (!colon || number <= 0 || number > 65535 || (size_t)(colon - listen) >= host_size)
        return false;
    snprintf(host, host_size, "%.*s", (int)(colon - listen), listen);
    *port = (uint16_t)number;
    return true;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  const char *body, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(buf, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct status_http *sh = arg;
    size_t lag_count = 0;
    struct metrics_lag *lags = sh->view.lags(sh->view.ctx, &lag_count);
    struct readiness_state state = {0};
    sh->view.observe(sh->view.ctx, &state);
    char reason[800];
    struct metrics_live live = {
        .pending_readings = state.pending_readings,
        .open_windows = state.open_windows,
        .postgres_connected = state.postgres_connected,
        .paused = state.paused,
        .assigned_partitions = state.assigned_partitions,
        .healthy = readiness_problem_observed(sh->readiness, &state,
                                              lags ? metrics_total_lag(lags, lag_count) : -1,
                                              reason, sizeof(reason)) == NULL,
        .lags = lags,
        .lag_count = lag_count,
        .topics = sh->view.topics,
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        free(lags);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    metrics_render(sh->view.metrics, &live, out);
    fclose(out);
    reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4", text, len);
    free(text);
    free(lags);
}

/* 200 while the service can make progress; 503 with the reason otherwise. */
static void on_healthz(struct evhttp_request *req, void *arg)
{
    struct status_http *sh = arg;
    char reason[800];
    const char *problem = readiness_problem(sh->readiness, reason, sizeof(reason));
    char body[820];
    int n = snprintf(body, sizeof(body), "%s\n", problem ? problem : "ok");
    reply(req, problem ? 503 : HTTP_OK, problem ? "Service Unavailable" : "OK", "text/plain", body,
          (size_t)n);
}

struct status_http *status_http_new(struct event_base *base, const char *config_path,
                                    const char *listen, const struct readiness_view *view,
                                    struct readiness *readiness, char *errstr, size_t errstr_size)
{
    struct status_http *sh = calloc(1, sizeof(*sh));
    if (!sh) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    sh->view = *view;
    sh->readiness = readiness;
    if (!listen[0])
        return sh;
    char host[256];
    uint16_t port = 0;
    if (!status_http_parse_listen(listen, host, sizeof(host), &port)) {
        snprintf(errstr, errstr_size,
                 "config: %s: [solarx] http_listen = \"%s\": expected host:port", config_path,
                 listen);
        goto fail;
    }
    const struct http_route routes[] = {{"/metrics", on_metrics}, {"/healthz", on_healthz}};
    const struct http_limits limits = HTTP_LIMITS_DEFAULT;
    sh->http = http_server_new(base, host, port, &limits, routes, 2, sh, errstr, errstr_size);
    if (!sh->http)
        goto fail;
    log_info("event=http_listening address=%s max_connections=%d", listen, limits.max_connections);
    return sh;
fail:
    status_http_destroy(sh);
    return NULL;
}

void status_http_destroy(struct status_http *sh)
{
    if (!sh)
        return;
    http_server_free(sh->http);
    free(sh);
}
