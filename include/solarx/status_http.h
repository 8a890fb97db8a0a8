/* The service's HTTP endpoints on http.c: /metrics (Prometheus text of the counters and the live
 * gauges) and /healthz (200 "ok" while the service can make progress, 503 with the reason), both
 * fed by the readiness view. */
#ifndef SOLARX_STATUS_HTTP_H
#define SOLARX_STATUS_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/readiness.h"

struct status_http;

/* Pure: splits http_listen ("host:port", the port after the last ':', 1..65535) into host (at
 * most host_size - 1 bytes) and port. Returns false when it is not of that form. */
bool status_http_parse_listen(const char *listen, char *host, size_t host_size, uint16_t *port)
    __attribute__((warn_unused_result));

/* Serves /metrics and /healthz on listen ([solarx] http_listen of config_path) in base, from view
 * (copied) and readiness (not owned; it must outlive the result). An empty listen serves nothing.
 * Returns the endpoints (to free with status_http_destroy), or NULL with errstr: `config: FILE:
 * [solarx] http_listen = "x": expected host:port`, or http_server_new's error. */
struct status_http *status_http_new(struct event_base *base, const char *config_path,
                                    const char *listen, const struct readiness_view *view,
                                    struct readiness *readiness, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Stops listening, closes the connections and frees sh. NULL is ignored. */
void status_http_destroy(struct status_http *sh);

#endif
