/* Unit tests of the PostgreSQL session: its backoff, what each input does in each state, and
 * the session itself against a port nobody listens on (a real refused connect, no server), a
 * server that never answers, and a fake server speaking just enough of the protocol to let a
 * connection be established, then hanging up on it (between flushes -> DB_EVENT_LOST) or seeing
 * the session close it after the owner's work failed. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "solarx/db_session.h"

/* ---- backoff ------------------------------------------------------------------------------ */

Test(db_backoff, doubles_from_the_minimum_to_the_cap)
{
    struct db_backoff b = {0};
    const int expected[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_assert_eq(db_backoff_retry(&b, DB_RETRY_LOST), expected[i], "retry %zu", i);
    cr_assert_eq(b.delay_ms, DB_BACKOFF_MAX_MS);
}

Test(db_backoff, a_connection_starts_it_over_unless_the_work_is_failing)
{
    struct db_backoff b = {0};
    db_backoff_retry(&b, DB_RETRY_LOST);
    db_backoff_retry(&b, DB_RETRY_LOST);
    db_backoff_connected(&b);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_LOST), 100, "a lost connection after a good one");

    struct db_backoff failing = {0};
    cr_assert_eq(db_backoff_retry(&failing, DB_RETRY_FAILED), 100);
    db_backoff_connected(&failing);
    cr_assert_eq(db_backoff_retry(&failing, DB_RETRY_FAILED), 200, "kept across a connection");
    db_backoff_connected(&failing);
    cr_assert_eq(db_backoff_retry(&failing, DB_RETRY_LOST), 400, "still failing when lost");
}

Test(db_backoff, a_success_starts_it_over)
{
    struct db_backoff b = {0};
    for (int i = 0; i < 5; i++)
        db_backoff_retry(&b, DB_RETRY_FAILED);
    cr_assert_eq(b.delay_ms, 1600);
    db_backoff_succeeded(&b);
    cr_assert_not(b.failing);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_LOST), 100);
}

Test(db_backoff, the_next_part_of_an_isolation_goes_at_once_and_stays_failing)
{
    struct db_backoff b = {0};
    for (int i = 0; i < 4; i++)
        db_backoff_retry(&b, DB_RETRY_FAILED);
    cr_assert_eq(b.delay_ms, 800);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_AT_ONCE), DB_BACKOFF_MIN_MS);
    cr_assert(b.failing);
    db_backoff_connected(&b);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_FAILED), 200);
}

Test(db_backoff, refused_work_grows_the_delay_and_a_connection_resets_it)
{
    struct db_backoff b = {0};
    db_backoff_retry(&b, DB_RETRY_FAILED);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_REFUSED), 200);
    cr_assert_not(b.failing, "a fenced flush is not the server failing");
    db_backoff_connected(&b);
    cr_assert_eq(db_backoff_retry(&b, DB_RETRY_LOST), 100);
}

/* ---- the state machine -------------------------------------------------------------------- */

static void assert_step(enum db_state from, enum db_input in, enum db_state to,
                        enum db_event_kind told)
{
    struct db_step s = db_session_step(from, in);
    cr_assert_eq(s.next, to, "%s + input %d: next %s, expected %s", db_state_name(from), (int)in,
                 db_state_name(s.next), db_state_name(to));
    cr_assert_eq(s.tell, told, "%s + input %d: told %d, expected %d", db_state_name(from), (int)in,
                 (int)s.tell, (int)told);
}

Test(db_session_step, connecting)
{
    assert_step(DB_STATE_WAITING, DB_INPUT_TIMER, DB_STATE_CONNECTING, DB_EVENT_NONE);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_CONNECT_OK, DB_STATE_IDLE, DB_EVENT_CONNECTED);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_CONNECT_FAILED, DB_STATE_WAITING,
                DB_EVENT_CONNECT_FAILED);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_DEADLINE, DB_STATE_WAITING, DB_EVENT_CONNECT_FAILED);
    /* Readiness while connecting drives PQconnectPoll; the owner hears nothing of it. */
    assert_step(DB_STATE_CONNECTING, DB_INPUT_READABLE, DB_STATE_CONNECTING, DB_EVENT_NONE);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_WRITABLE, DB_STATE_CONNECTING, DB_EVENT_NONE);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_TIMER, DB_STATE_CONNECTING, DB_EVENT_NONE);
}

Test(db_session_step, work_needs_an_idle_connection)
{
    assert_step(DB_STATE_IDLE, DB_INPUT_WORK_BEGIN, DB_STATE_WORKING, DB_EVENT_NONE);
    assert_step(DB_STATE_WORKING, DB_INPUT_WORK_BEGIN, DB_STATE_WORKING, DB_EVENT_NONE);
    assert_step(DB_STATE_WAITING, DB_INPUT_WORK_BEGIN, DB_STATE_WAITING, DB_EVENT_NONE);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_WORK_BEGIN, DB_STATE_CONNECTING, DB_EVENT_NONE);
    assert_step(DB_STATE_WORKING, DB_INPUT_WORK_END, DB_STATE_IDLE, DB_EVENT_NONE);
    assert_step(DB_STATE_IDLE, DB_INPUT_WORK_END, DB_STATE_IDLE, DB_EVENT_NONE);
}

Test(db_session_step, readiness_is_told_by_whether_work_is_in_flight)
{
    assert_step(DB_STATE_WORKING, DB_INPUT_READABLE, DB_STATE_WORKING, DB_EVENT_READABLE);
    assert_step(DB_STATE_WORKING, DB_INPUT_WRITABLE, DB_STATE_WORKING, DB_EVENT_WRITABLE);
    /* Without work in flight the session reads the socket itself (DB_INPUT_LOST if gone). */
    assert_step(DB_STATE_IDLE, DB_INPUT_READABLE, DB_STATE_IDLE, DB_EVENT_NONE);
    assert_step(DB_STATE_IDLE, DB_INPUT_WRITABLE, DB_STATE_IDLE, DB_EVENT_NONE);
    assert_step(DB_STATE_WAITING, DB_INPUT_READABLE, DB_STATE_WAITING, DB_EVENT_NONE);
    assert_step(DB_STATE_WAITING, DB_INPUT_WRITABLE, DB_STATE_WAITING, DB_EVENT_NONE);
}

Test(db_session_step, the_deadline_concerns_only_work_in_flight_or_a_connect)
{
    assert_step(DB_STATE_WORKING, DB_INPUT_DEADLINE, DB_STATE_WORKING, DB_EVENT_DEADLINE);
    assert_step(DB_STATE_IDLE, DB_INPUT_DEADLINE, DB_STATE_IDLE, DB_EVENT_NONE);
    assert_step(DB_STATE_WAITING, DB_INPUT_DEADLINE, DB_STATE_WAITING, DB_EVENT_NONE);
}

Test(db_session_step, a_connection_lost_between_the_work_is_told_and_reconnected)
{
    assert_step(DB_STATE_IDLE, DB_INPUT_LOST, DB_STATE_WAITING, DB_EVENT_LOST);
    /* During work the work finds out, and fails: the owner then calls db_session_retry. */
    assert_step(DB_STATE_WORKING, DB_INPUT_LOST, DB_STATE_WORKING, DB_EVENT_NONE);
    assert_step(DB_STATE_WAITING, DB_INPUT_LOST, DB_STATE_WAITING, DB_EVENT_NONE);
    assert_step(DB_STATE_CONNECTING, DB_INPUT_LOST, DB_STATE_CONNECTING, DB_EVENT_NONE);
}

Test(db_session_step, a_closed_connection_waits_for_the_reconnect_from_any_state)
{
    for (int st = DB_STATE_WAITING; st <= DB_STATE_WORKING; st++)
        assert_step((enum db_state)st, DB_INPUT_CLOSED, DB_STATE_WAITING, DB_EVENT_NONE);
}

Test(db_session_step, a_connect_result_or_a_timer_outside_their_state_is_stale)
{
    for (int st = DB_STATE_WAITING; st <= DB_STATE_WORKING; st++) {
        if (st == DB_STATE_CONNECTING)
            continue;
        assert_step((enum db_state)st, DB_INPUT_CONNECT_OK, (enum db_state)st, DB_EVENT_NONE);
        assert_step((enum db_state)st, DB_INPUT_CONNECT_FAILED, (enum db_state)st, DB_EVENT_NONE);
        if (st != DB_STATE_WAITING)
            assert_step((enum db_state)st, DB_INPUT_TIMER, (enum db_state)st, DB_EVENT_NONE);
    }
}

/* ---- the session, against a refused connect ----------------------------------------------- */

struct recorder {
    struct event_base *base;
    struct db_session *db;
    int failures;
    int connected;
    struct timeval first, second; /* when the first two connects failed */
};

static void record(void *owner, const struct db_event *ev)
{
    struct recorder *r = owner;
    if (ev->kind == DB_EVENT_CONNECTED)
        r->connected++;
    if (ev->kind != DB_EVENT_CONNECT_FAILED)
        return;
    cr_assert_eq(db_session_state(r->db), DB_STATE_WAITING);
    gettimeofday(r->failures == 0 ? &r->first : &r->second, NULL);
    if (++r->failures == 2)
        event_base_loopbreak(r->base);
}

/* A TCP port on 127.0.0.1 that refuses connections: bound, never listened on. */
static int refused_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(*fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(*fd, (struct sockaddr *)&a, len), 0);
    cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

Test(db_session, a_refused_connect_is_told_and_retried_after_the_backoff)
{
    int fd;
    char conninfo[128];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=none user=none",
             refused_port(&fd));
    struct config cfg = {.pg_conninfo = conninfo};
    struct recorder r = {.base = event_base_new()};
    r.db = db_session_new(r.base, &cfg, record, &r);
    cr_assert_not_null(r.db);
    cr_assert_eq(db_session_state(r.db), DB_STATE_WAITING);
    cr_assert_not(db_session_work_begin(r.db, 1000), "no work without a connection");
    db_session_start(r.db);
    event_base_dispatch(r.base);
    cr_assert_eq(r.failures, 2);
    cr_assert_eq(r.connected, 0);
    double gap_ms = (double)(r.second.tv_sec - r.first.tv_sec) * 1000 +
                    (double)(r.second.tv_usec - r.first.tv_usec) / 1000;
    cr_assert_geq(gap_ms, DB_BACKOFF_MIN_MS - 5, "retried after %.1f ms", gap_ms);
    db_session_retry(r.db, DB_RETRY_LOST); /* already waiting: ignored */
    cr_assert_eq(db_session_state(r.db), DB_STATE_WAITING);
    db_session_destroy(r.db);
    event_base_free(r.base);
    close(fd);
}

struct silent_recorder {
    struct event_base *base;
    struct db_session *db;
    struct timeval started, failed;
    int failures;
};

static void record_silence(void *owner, const struct db_event *ev)
{
    struct silent_recorder *r = owner;
    cr_assert_eq(ev->kind, DB_EVENT_CONNECT_FAILED, "told %d", (int)ev->kind);
    gettimeofday(&r->failed, NULL);
    r->failures++;
    event_base_loopbreak(r->base);
}

Test(db_session, a_server_that_never_answers_fails_the_connect_at_connect_timeout)
{
    /* A listening socket never accepted from: the kernel completes the handshake, libpq sends
     * its startup packet, and no answer ever comes. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, len), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char conninfo[160];
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d dbname=none user=none sslmode=disable connect_timeout=2",
             ntohs(a.sin_port));
    struct config cfg = {.pg_conninfo = conninfo};
    struct silent_recorder r = {.base = event_base_new()};
    r.db = db_session_new(r.base, &cfg, record_silence, &r);
    cr_assert_not_null(r.db);
    gettimeofday(&r.started, NULL);
    db_session_start(r.db);
    event_base_dispatch(r.base);
    cr_assert_eq(r.failures, 1);
    cr_assert_eq(db_session_state(r.db), DB_STATE_WAITING);
    double waited_ms = (double)(r.failed.tv_sec - r.started.tv_sec) * 1000 +
                       (double)(r.failed.tv_usec - r.started.tv_usec) / 1000;
    cr_assert_geq(waited_ms, 1990, "gave up after %.0f ms", waited_ms);
    db_session_destroy(r.db);
    event_base_free(r.base);
    close(fd);
}

/* ---- the session, against a fake server --------------------------------------------------- */

/* Accepts connections on 127.0.0.1 and answers a startup packet with AuthenticationOk and
 * ReadyForQuery (libpq asks nothing else with sslmode and gssencmode disabled); it can hang up
 * on the current client, and counts the clients that closed their end. */
struct fake_server {
    struct event_base *base;
    int listen_fd, port;
    struct event *accept_ev;
    int client_fd;
    struct event *client_ev;
    unsigned char in[2048];
    size_t in_len;
    bool answered;
    int accepted;
    int closed_by_client;
};

static void fake_server_drop_client(struct fake_server *f)
{
    if (f->client_ev)
        event_free(f->client_ev);
    f->client_ev = NULL;
    if (f->client_fd >= 0)
        close(f->client_fd);
    f->client_fd = -1;
}

static void on_fake_client(evutil_socket_t fd, short what, void *arg)
{
    struct fake_server *f = arg;
    (void)what;
    ssize_t n = read(fd, f->in + f->in_len, sizeof(f->in) - f->in_len);
    if (n <= 0) {
        f->closed_by_client++;
        fake_server_drop_client(f);
        return;
    }
    f->in_len += (size_t)n;
    if (f->answered || f->in_len < 4)
        return;
    uint32_t len =
        (uint32_t)f->in[0] << 24 | (uint32_t)f->in[1] << 16 | (uint32_t)f->in[2] << 8 | f->in[3];
    if (f->in_len < len)
        return;
    static const unsigned char reply[] = {
        'R', 0,   0,   0,   8,   0,   0,   0,   0, /* AuthenticationOk */
        'S', 0,   0,   0,   24,  's', 'e', 'r', 'v', 'e', 'r', '_', 'v',
        'e', 'r', 's', 'i', 'o', 'n', 0,   '1', '5', '.', '0', 0, /* ParameterStatus
                                                                     server_version=15.0 */
        'Z', 0,   0,   0,   5,   'I',                             /* ReadyForQuery, idle */
    };
    cr_assert_eq(write(fd, reply, sizeof(reply)), (ssize_t)sizeof(reply));
    f->answered = true;
}

static void on_fake_accept(evutil_socket_t fd, short what, void *arg)
{
    struct fake_server *f = arg;
    (void)what;
    int client = accept(fd, NULL, NULL);
    cr_assert_geq(client, 0);
    cr_assert_lt(f->client_fd, 0, "one client at a time");
    f->client_fd = client;
    f->in_len = 0;
    f->answered = false;
    f->accepted++;
    f->client_ev = event_new(f->base, client, EV_READ | EV_PERSIST, on_fake_client, f);
    cr_assert_eq(event_add(f->client_ev, NULL), 0);
}

static void fake_server_start(struct fake_server *f, struct event_base *base)
{
    *f = (struct fake_server){.base = base, .client_fd = -1};
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(f->listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(f->listen_fd, (struct sockaddr *)&a, len), 0);
    cr_assert_eq(listen(f->listen_fd, 4), 0);
    cr_assert_eq(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    f->accept_ev = event_new(base, f->listen_fd, EV_READ | EV_PERSIST, on_fake_accept, f);
    cr_assert_eq(event_add(f->accept_ev, NULL), 0);
}

static void fake_server_stop(struct fake_server *f)
{
    fake_server_drop_client(f);
    event_free(f->accept_ev);
    close(f->listen_fd);
}

enum owner_plan { HANG_UP_WHEN_CONNECTED, FAIL_THE_WORK_WHEN_CONNECTED };

struct owner {
    struct event_base *base;
    struct db_session *db;
    struct fake_server server;
    enum owner_plan plan;
    int connected, lost, connect_failed;
    char reason[512];
    PGconn *lent; /* the connection of the first DB_EVENT_CONNECTED */
};

static void on_owner_event(void *arg, const struct db_event *ev)
{
    struct owner *o = arg;
    switch (ev->kind) {
    case DB_EVENT_CONNECTED:
        cr_assert_not_null(ev->conn);
        cr_assert_eq(db_session_conn(o->db), ev->conn);
        cr_assert_eq(PQpipelineStatus(ev->conn), PQ_PIPELINE_ON, "set up by the session");
        cr_assert(PQisnonblocking(ev->conn));
        if (++o->connected == 2) {
            event_base_loopbreak(o->base);
            return;
        }
        o->lent = ev->conn;
        if (o->plan == HANG_UP_WHEN_CONNECTED) {
            fake_server_drop_client(&o->server); /* the server goes between the work */
            return;
        }
        cr_assert(db_session_work_begin(o->db, 5000));
        db_session_retry(o->db, DB_RETRY_FAILED); /* the work failed: the session closes */
        cr_assert_eq(db_session_state(o->db), DB_STATE_WAITING);
        cr_assert_null(db_session_conn(o->db));
        return;
    case DB_EVENT_LOST:
        o->lost++;
        snprintf(o->reason, sizeof(o->reason), "%s", ev->reason);
        cr_assert_eq(db_session_state(o->db), DB_STATE_WAITING, "closed, the reconnect waits");
        cr_assert_null(db_session_conn(o->db));
        return;
    case DB_EVENT_CONNECT_FAILED:
        o->connect_failed++;
        return;
    default:
        cr_assert_fail("told %d", (int)ev->kind);
    }
}

static void on_test_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Runs the owner's plan until the second connection (or 10 s). */
static void run_owner(struct owner *o, enum owner_plan plan)
{
    o->base = event_base_new();
    o->plan = plan;
    fake_server_start(&o->server, o->base);
    char conninfo[200];
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d dbname=none user=none sslmode=disable gssencmode=disable",
             o->server.port);
    struct config cfg = {.pg_conninfo = conninfo};
    o->db = db_session_new(o->base, &cfg, on_owner_event, o);
    cr_assert_not_null(o->db);
    struct event *timeout = evtimer_new(o->base, on_test_timeout, o->base);
    struct timeval ten_s = {10, 0};
    evtimer_add(timeout, &ten_s);
    db_session_start(o->db);
    event_base_dispatch(o->base);
    event_free(timeout);
    cr_assert_eq(o->connected, 2, "connected %d times, lost %d, connect failed %d", o->connected,
                 o->lost, o->connect_failed);
    cr_assert_eq(o->server.accepted, 2);
    cr_assert_eq(db_session_state(o->db), DB_STATE_IDLE);
    db_session_destroy(o->db); /* closes the second connection */
    struct timeval brief = {0, 200000};
    event_base_loopexit(o->base, &brief);
    event_base_dispatch(o->base); /* the server sees it go */
    fake_server_stop(&o->server);
    event_base_free(o->base);
}

Test(db_session, a_connection_lost_between_the_work_is_told_closed_and_made_again)
{
    struct owner o = {0};
    run_owner(&o, HANG_UP_WHEN_CONNECTED);
    cr_assert_eq(o.lost, 1);
    cr_assert_neq(o.reason[0], '\0', "libpq says why");
    cr_assert_null(strchr(o.reason, '\n'), "one line: %s", o.reason);
    cr_assert_eq(o.connect_failed, 0);
    cr_assert_eq(o.server.closed_by_client, 1, "the second one, closed by destroy");
}

Test(db_session, failed_work_makes_the_session_close_the_connection_and_reconnect)
{
    struct owner o = {0};
    run_owner(&o, FAIL_THE_WORK_WHEN_CONNECTED);
    cr_assert_eq(o.lost, 0);
    cr_assert_eq(o.connect_failed, 0);
    cr_assert_eq(o.server.closed_by_client, 2, "the failed one, then the second by destroy");
}
