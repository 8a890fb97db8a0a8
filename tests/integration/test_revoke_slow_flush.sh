#!/usr/bin/env bash
# A revoke waits for the flush in progress through the event loop, never in a nested wait: with
# the raw tables locked by a second session (the flush blocks in PostgreSQL), instance a holds
# every partition and a flush it cannot finish when instance b joins the group. While a's revoke
# waits for that flush, a keeps answering /healthz and pinging the systemd watchdog (its loop
# runs), and no partition moves. Once the lock goes, the flush commits, the partitions move to b
# (a revoked only after its flush committed) and b consumes them from where a stopped; both catch
# up on more data, both exit 0 on SIGTERM, and the warehouse has the same digest as a
# single-instance run of the same topics into a fresh database: nothing lost, nothing counted
# twice.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

started=$SECONDS
LISTEN=${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/notify_listen
WINDOW_S=$(by_scale 15 10) # how long the revoke is watched while the flush is blocked
STOP_S=120
group=revoke-$$

declare -A PID=() PORT=()
PORT[a]=$(free_local_port)
PORT[b]=$(SOLARX_TEST_PORT_BASE=$((PORT[a] + 1)) free_local_port)
PORT[c]=$(SOLARX_TEST_PORT_BASE=$((PORT[b] + 1)) free_local_port)
locker=
listener=

cleanup_revoke() {
    local name
    for name in "${!PID[@]}"; do
        [[ -n ${PID[$name]} ]] || continue
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
    done
    # The locking session's backend outlives its psql: it goes with the lock it holds.
    [[ -n $locker ]] && psql -X -q -d "$db" -c "select pg_terminate_backend(pid) from
        pg_stat_activity where application_name = 'revoke-locker'" >/dev/null 2>&1 || true
    for name in "$locker" "$listener"; do
        [[ -n $name ]] && kill "$name" 2>/dev/null && wait "$name" 2>/dev/null || true
    done
    cleanup_stream_test
}

create_topics revoke
trap cleanup_revoke EXIT
make_database db
make_database db_ref
produce "$TEST_TMP/sim.json" --homes 6 --minutes "$(by_scale 30 10)" --seed 9 \
    --duplicates 0.01 --disorder 0.01

for name in a b c; do
    write_stream_config "$db" "$TEST_TMP/$name.conf" "$group" migrate_on_start=false \
        http_listen="127.0.0.1:${PORT[$name]}" kafka.session.timeout.ms=6000 \
        kafka.heartbeat.interval.ms=1000
done
"$SOLARX_BIN" migrate -c "$TEST_TMP/a.conf" >"$TEST_TMP/migrate.log" 2>&1 ||
    fail "migrate: $(cat "$TEST_TMP/migrate.log")"

start() {
    "$SOLARX_BIN" run -c "$TEST_TMP/$1.conf" 2>>"$TEST_TMP/$1.log" &
    PID[$1]=$!
}

alive() {
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    tail -n 40 "$TEST_TMP/$1.log" >&2
    fail "instance $1 exited on its own"
}

wait_log() { # NAME PATTERN TIMEOUT_S
    local deadline=$((SECONDS + $3))
    until grep -q -e "$2" "$TEST_TMP/$1.log"; do
        alive "$1"
        ((SECONDS < deadline)) || fail "instance $1 did not log $2 within $3s"
        sleep 0.2
    done
}

stop() {
    kill -TERM "${PID[$1]}" 2>/dev/null || fail "instance $1 (pid ${PID[$1]}) is not running"
    reap "$1"
}

reap() { # NAME: waits for the exit SIGTERM asked for; fails unless it is 0
    local pid=${PID[$1]} rc=0 deadline=$((SECONDS + STOP_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && fail "instance $1 did not exit within ${STOP_S}s of SIGTERM"
    wait "$pid" || rc=$?
    PID[$1]=
    ((rc == 0)) || {
        tail -n 40 "$TEST_TMP/$1.log" >&2
        fail "instance $1 exited $rc on SIGTERM (expected 0)"
    }
}

# The HTTP status of a's /healthz, 000 when it does not answer within 3 s.
health_a() { curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[a]}/healthz" || true; }
pings() { grep -c '^WATCHDOG=1$' "$TEST_TMP/notify.log" || true; }

# ---- a owns every partition, and its flush is blocked in PostgreSQL ---------------------------
socket=$TEST_TMP/notify.sock
"$LISTEN" "$socket" >"$TEST_TMP/notify.log" 2>"$TEST_TMP/notify.err" &
listener=$!
for _ in $(seq 50); do [[ -S $socket ]] && break; sleep 0.1; done
[[ -S $socket ]] || fail "notify_listen did not bind: $(cat "$TEST_TMP/notify.err")"

# lock_raw: a second session locks the raw tables until unlock_raw: inserts into them wait.
lock_raw() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >"$TEST_TMP/locker.out" 2>&1 <<'SQL' &
SET application_name = 'revoke-locker';
BEGIN;
LOCK TABLE solarx_raw.home_power_readings, solarx_raw.solar_panel_readings,
           solarx_raw.battery_readings IN EXCLUSIVE MODE;
SELECT pg_sleep(3600);
SQL
    locker=$!
    local deadline=$((SECONDS + 30))
    until [[ $(q "$db" "select count(*) from pg_locks l join pg_stat_activity a using (pid)
                         where a.application_name = 'revoke-locker' and l.granted
                           and l.mode = 'ExclusiveLock' and l.relation is not null") -ge 3 ]]; do
        ((SECONDS < deadline)) || fail "the locking session got no locks: $(cat "$TEST_TMP/locker.out")"
        sleep 0.2
    done
}

unlock_raw() {
    q "$db" "select pg_terminate_backend(pid) from pg_stat_activity
              where application_name = 'revoke-locker'" >/dev/null
    wait "$locker" 2>/dev/null || true
    locker=
}

# wait_blocked N NAME...: waits until N of the service's sessions wait for the lock.
wait_blocked() {
    local n=$1 deadline=$((SECONDS + 60)) name
    shift
    until [[ $(q "$db" "select count(*) from pg_stat_activity
                         where usename = 'solarx_app' and wait_event_type = 'Lock'") -ge $n ]]; do
        for name in "$@"; do alive "$name"; done
        ((SECONDS < deadline)) || fail "$n flushes did not reach the locked tables within 60s"
        sleep 0.2
    done
}

lock_raw
# As systemd runs it with WatchdogSec=2s: a ping every second while the loop runs.
NOTIFY_SOCKET=$socket WATCHDOG_USEC=2000000 start a
wait_log a 'event=ready' 60
wait_blocked 1 a

# ---- b joins: a's revoke must wait for the blocked flush without blocking a's loop ------------
start b
wait_log b 'event=ready' 60
# The group rebalances within a few heartbeats; a's revoke starts then (event=revoke_deferred,
# checked after the window: a loop blocked by the revoke would not get there to say so).
deadline=$((SECONDS + 15))
until grep -q 'event=revoke_deferred' "$TEST_TMP/a.log" || ((SECONDS >= deadline)); do sleep 0.2; done
pings_before=$(pings)
probes=0 answered=0
window_end=$((SECONDS + WINDOW_S))
while ((SECONDS < window_end)); do
    alive a
    code=$(health_a)
    probes=$((probes + 1))
    [[ $code != 000 ]] && answered=$((answered + 1))
    sleep 0.5
done
pings_during=$(($(pings) - pings_before))
grep -q 'event=partitions_revoked count=[1-9]' "$TEST_TMP/a.log" &&
    fail "a gave partitions up before its flush committed: $(grep 'event=partitions_revoked' "$TEST_TMP/a.log")"
grep -q 'event=flush_committed readings=[1-9]' "$TEST_TMP/a.log" && fail "a's flush committed through the lock"
((answered == probes)) || fail "a's /healthz answered $answered of $probes probes during the revoke"
((pings_during >= WINDOW_S / 2)) ||
    fail "a pinged the watchdog $pings_during times in ${WINDOW_S}s during the revoke"
grep -q 'event=revoke_deferred' "$TEST_TMP/a.log" || fail "a's revoke did not start during the window"

# ---- the lock goes: the flush commits, then the partitions move -------------------------------
unlock_raw
wait_log a 'event=partitions_revoked count=[1-9]' 120
first_commit=$(grep -n 'event=flush_committed readings=[1-9]' "$TEST_TMP/a.log" | head -n 1 | cut -d: -f1)
first_revoke=$(grep -n 'event=partitions_revoked count=[1-9]' "$TEST_TMP/a.log" | head -n 1 | cut -d: -f1)
[[ -n $first_commit ]] && ((first_commit < first_revoke)) ||
    fail "a revoked its partitions before its flush committed"
wait_log b 'event=partitions_assigned count=[1-9]' 60
# More data after the move: b consumes its partitions from where a's flush stored their offsets.
produce "$TEST_TMP/sim2.json" --homes 6 --minutes "$(by_scale 30 10)" --seed 10 \
    --start "2025-02-14 01:00:00" --duplicates 0.01 --disorder 0.01
SERVICE_LOG=$TEST_TMP/a.log
wait_caught_up "$db" "$group" 300
b_merged=$(log_sum merged "$TEST_TMP/b.log")
((b_merged > 0)) || fail "b wrote nothing from the partitions it took over"

# ---- SIGTERM during a revoke: c joins while a's and b's flushes are blocked -------------------
lock_raw
produce "$TEST_TMP/sim3.json" --homes 6 --minutes "$(by_scale 30 10)" --seed 11 \
    --start "2025-02-14 02:00:00" --duplicates 0.01 --disorder 0.01
wait_blocked 2 a b
deferred=$(grep -c 'event=revoke_deferred' "$TEST_TMP/a.log")
start c
wait_log c 'event=ready' 60
deadline=$((SECONDS + 30))
until (($(grep -c 'event=revoke_deferred' "$TEST_TMP/a.log") > deferred)); do
    alive a
    ((SECONDS < deadline)) || fail "a's partitions were not revoked when c joined"
    sleep 0.2
done
kill -TERM "${PID[a]}"
sleep 2
alive a # its last flush waits for the lock; the stop waits for it
[[ $(health_a) == 503 ]] || fail "a's /healthz does not say 503 while it stops during a revoke"
unlock_raw
reap a # exit 0 once its flushes committed
grep -q 'event=stopping' "$TEST_TMP/a.log" || fail "a did not log event=stopping"
SERVICE_LOG=$TEST_TMP/b.log
wait_caught_up "$db" "$group" 300
stop c
stop b
kill "$listener" && wait "$listener" 2>/dev/null || true
listener=

# ---- the same topics, one instance, nothing in the way ----------------------------------------
write_stream_config "$db_ref" "$TEST_TMP/ref.conf" "ref-$group"
start_service "$TEST_TMP/ref.conf" ref
wait_ready
wait_caught_up "$db_ref" "ref-$group" 300
stop_service
assert_same_digest "two instances with a slow revoke" "$(digest "$db")" "reference" "$(digest "$db_ref")"

echo "PASS test_revoke_slow_flush healthz_answered=$answered/$probes watchdog_pings=$pings_during" \
    "window_s=$WINDOW_S b_merged=$b_merged total_s=$((SECONDS - started))"
