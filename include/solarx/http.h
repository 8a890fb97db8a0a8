/* The HTTP endpoint (/metrics, /healthz): libevent's evhttp with the limits a daemon needs when
 * anything on the network can connect - bounded header and body sizes, idle and per-request
 * timeouts against slow clients, a cap on open connections, and GET/HEAD only. */
#ifndef SOLARX_HTTP_H
#define SOLARX_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>
#include <stdint.h>

struct http_limits {
    size_t max_header_bytes; /* request line and headers; more: 413 and the connection closes */
    size_t max_body_bytes;   /* a GET has none; more: 413 */
    int idle_timeout_s;      /* a connection that sends nothing for this long is closed */
    int request_timeout_s;   /* a request must be complete this long after its first byte */
    int max_connections;     /* open at once; beyond it new ones wait in the listen backlog */
};

/* What the service uses: a scrape is one small GET. */
#define HTTP_LIMITS_DEFAULT                                                                        \
    (struct http_limits)                                                                           \
    {                                                                                              \
        .max_header_bytes = 8192, .max_body_bytes = 4096, .idle_timeout_s = 10,                    \
        .request_timeout_s = 5, .max_connections = 16                                              \
    }

/* One path and its handler. GET and HEAD reach the handler; any other method is answered
 * 405 (Allow: GET, HEAD) before it; a path without a route is answered 404. */
struct http_route {
    const char *path;
    void (*handler)(struct evhttp_request *req, void *arg);
};

struct http_server;

/* Listens on host:port in base and serves routes (copied; arg is passed to every handler).
 * Returns the server, or NULL with errstr ("http: cannot listen on 127.0.0.1:9187: ..."). */
struct http_server *http_server_new(struct event_base *base, const char *host, uint16_t port,
                                    const struct http_limits *limits,
                                    const struct http_route *routes, size_t route_count, void *arg,
                                    char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Stops listening, closes every connection and frees srv. NULL is ignored. */
void http_server_free(struct http_server *srv);

#endif
