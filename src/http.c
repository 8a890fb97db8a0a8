/* The HTTP endpoint: evhttp behind limits. libevent 2.1 has header/body limits and an idle
 * timeout, but no connection cap and no deadline for a request that trickles in byte by byte.
 * Both come from one hook, the bufferevent we create for each connection evhttp accepts
 * (evhttp_set_bevcb):
 * - we hold a reference on it, so that it outlives evhttp's bufferevent_free(); a sweep timer
 *   sees that evhttp let go (its callbacks are cleared, which happens only there for a server
 *   connection) and drops our reference, which closes the socket. The connections counted so
 *   are exact; at the cap the listener pauses and new clients wait in the kernel's listen
 *   backlog, costing the loop nothing;
 * - callbacks on its input and output buffers time each request from its first byte to the
 *   response; one still incomplete after request_timeout_s gets an immediate read timeout, so
 *   that evhttp closes it on its own error path, as it does an idle connection. */
#include "solarx/http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solarx/log.h"

#define LISTEN_BACKLOG 64
#define SWEEP_INTERVAL_US 200000
#define READ_HIGH_WATERMARK 65536 /* input a connection may buffer; evhttp's limits are lower */

struct http_server;

struct route_entry {
    struct http_server *srv;
    void (*handler)(struct evhttp_request *req, void *arg);
};

/* One accepted connection. */
struct http_connection {
    struct http_server *srv;
    struct bufferevent *bev; /* evhttp's; we hold a reference */
    struct evbuffer_cb_entry *on_input_cb, *on_output_cb;
    struct timespec request_started;
    bool in_request; /* bytes of a request arrived and no response went out yet */
    bool expired;    /* it took too long: evhttp is closing it */
    struct http_connection *next;
};

struct http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener; /* owned by http */
    struct event *sweep;             /* finds the connections evhttp let go of */
    struct http_limits limits;
    struct route_entry *routes;
    size_t route_count;
    void *arg;
    struct http_connection *connections;
    int open_connections;
    bool accepting;
};

static double seconds_since(const struct timespec *then)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - then->tv_sec) + (double)(now.tv_nsec - then->tv_nsec) / 1e9;
}

/* Accept while below the cap; at the cap, leave new clients in the listen backlog. */
static void update_accepting(struct http_server *srv)
{
    bool room = srv->open_connections < srv->limits.max_connections;
    if (!srv->listener || room == srv->accepting)
        return;
    if (room) {
        evconnlistener_enable(srv->listener);
        log_info("event=http_accepting open_connections=%d", srv->open_connections);
    } else {
        evconnlistener_disable(srv->listener);
        log_warn("event=http_connection_cap_reached max_connections=%d msg=\"new connections "
                 "wait in the listen backlog\"",
                 srv->limits.max_connections);
    }
    srv->accepting = room;
}

/* Input arrived: the first bytes of a request start its clock; bytes after its deadline end it
 * with an immediate read timeout (evhttp then fails and frees the connection). */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct http_connection *c = arg;
    if (info->n_added == 0 || c->expired)
        return;
    if (!c->in_request) {
        c->in_request = true;
        clock_gettime(CLOCK_MONOTONIC, &c->request_started);
    } else if (seconds_since(&c->request_started) >= c->srv->limits.request_timeout_s) {
        static const struct timeval at_once = {0, 1};
        c->expired = true;
        bufferevent_set_timeouts(c->bev, &at_once, NULL);
        log_info("event=http_request_timeout timeout_s=%d", c->srv->limits.request_timeout_s);
    }
}

/* A response going out ends the request: the next byte in starts a new one. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct http_connection *c = arg;
    if (info->n_added > 0)
        c->in_request = false;
}

/* Drops our reference on a connection evhttp let go of (or is freeing with the server). */
static void release_connection(struct http_connection *c)
{
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->on_input_cb);
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->on_output_cb);
    bufferevent_decref(c->bev); /* the last reference: closes the socket */
    free(c);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;
    for (struct http_connection **link = &srv->connections; *link;) {
        struct http_connection *c = *link;
        bufferevent_event_cb eventcb = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
        if (eventcb) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        release_connection(c);
        srv->open_connections--;
    }
    if (!srv->connections)
        event_del(srv->sweep);
    update_accepting(srv);
}

/* evhttp's bevcb: the bufferevent of each accepted connection. NULL lets evhttp make a plain one
 * (out of memory: that connection goes uncounted and untimed rather than refused). */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct http_server *srv = arg;
    struct http_connection *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = c ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev) {
        c->on_input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
        c->on_output_cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, c);
    }
    if (!bev || !c->on_input_cb || !c->on_output_cb) {
        if (bev)
            bufferevent_free(bev);
        free(c);
        log_warn("event=http_connection_untracked msg=\"out of memory\"");
        return NULL;
    }
    bufferevent_setwatermark(bev, EV_READ, 0, READ_HIGH_WATERMARK);
    bufferevent_incref(bev);
    c->srv = srv;
    c->bev = bev;
    c->next = srv->connections;
    srv->connections = c;
    if (srv->open_connections++ == 0) {
        static const struct timeval interval = {0, SWEEP_INTERVAL_US};
        event_add(srv->sweep, &interval);
    }
    update_accepting(srv);
    return bev;
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(body, text, strlen(text));
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "text/plain");
    evhttp_add_header(headers, "Connection", "close");
    if (code == 405)
        evhttp_add_header(headers, "Allow", "GET, HEAD");
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
}

static void on_route(struct evhttp_request *req, void *arg)
{
    struct route_entry *route = arg;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        reply_text(req, 405, "Method Not Allowed", "method not allowed: use GET\n");
        return;
    }
    route->handler(req, route->srv->arg);
}

static void on_unknown_path(struct evhttp_request *req, void *arg)
{
    reply_text(req, HTTP_NOTFOUND, "Not Found", "not found\n");
}

/* A listening socket on host:port (host "" or "*": every interface), handed to evhttp. */
static bool listen_on(struct http_server *srv, struct event_base *base, const char *host,
                      uint16_t port, char *errstr, size_t errstr_size)
{
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG};
    struct evutil_addrinfo *ai = NULL;
    bool any = !host[0] || strcmp(host, "*") == 0;
    int gai = evutil_getaddrinfo(any ? NULL : host, port_text, &hints, &ai);
    if (gai != 0) {
        snprintf(errstr, errstr_size, "http: cannot listen on %s:%u: %s", host, (unsigned)port,
                 evutil_gai_strerror(gai));
        return false;
    }
    srv->listener = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
        LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!srv->listener) {
        snprintf(errstr, errstr_size, "http: cannot listen on %s:%u: %s", host, (unsigned)port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return false;
    }
    if (!evhttp_bind_listener(srv->http, srv->listener)) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
        snprintf(errstr, errstr_size, "http: cannot listen on %s:%u: out of memory", host,
                 (unsigned)port);
        return false;
    }
    srv->accepting = true;
    return true;
}

struct http_server *http_server_new(struct event_base *base, const char *host, uint16_t port,
                                    const struct http_limits *limits,
                                    const struct http_route *routes, size_t route_count, void *arg,
                                    char *errstr, size_t errstr_size)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (srv) {
        srv->base = base;
        srv->routes = calloc(route_count ? route_count : 1, sizeof(*srv->routes));
        srv->http = evhttp_new(base);
        srv->sweep = event_new(base, -1, EV_PERSIST, on_sweep, srv);
    }
    if (!srv || !srv->routes || !srv->http || !srv->sweep) {
        snprintf(errstr, errstr_size, "http: out of memory");
        goto fail;
    }
    srv->limits = *limits;
    srv->arg = arg;
    srv->route_count = route_count;
    evhttp_set_max_headers_size(srv->http, (ev_ssize_t)limits->max_header_bytes);
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)limits->max_body_bytes);
    evhttp_set_timeout(srv->http, limits->idle_timeout_s);
    /* Every method evhttp knows reaches on_route, which answers 405 to all but GET and HEAD
     * (evhttp's own filter would answer 501). */
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(srv->http, on_new_connection, srv);
    evhttp_set_gencb(srv->http, on_unknown_path, srv);
    for (size_t i = 0; i < route_count; i++) {
        srv->routes[i] = (struct route_entry){srv, routes[i].handler};
        if (evhttp_set_cb(srv->http, routes[i].path, on_route, &srv->routes[i]) != 0) {
            snprintf(errstr, errstr_size, "http: cannot route %s", routes[i].path);
            goto fail;
        }
    }
    if (!listen_on(srv, base, host, port, errstr, errstr_size))
        goto fail;
    return srv;

fail:
    http_server_free(srv);
    return NULL;
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    if (srv->http)
        evhttp_free(srv->http); /* the listener and every connection: all are let go of now */
    while (srv->connections) {
        struct http_connection *c = srv->connections;
        srv->connections = c->next;
        release_connection(c);
    }
    if (srv->sweep)
        event_free(srv->sweep);
    free(srv->routes);
    free(srv);
}
