/* Unit tests of the PostgreSQL session: its backoff, what each input does in each state, and
 * the session itself against a port nobody listens on (a real refused connect, no server). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
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
    assert_step(DB_STATE_IDLE, DB_INPUT_READABLE, DB_STATE_IDLE, DB_EVENT_IDLE_READABLE);
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
