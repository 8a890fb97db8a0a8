#!/usr/bin/env bash
# systemd notifications against real PostgreSQL and Kafka: with NOTIFY_SOCKET and WATCHDOG_USEC
# set as systemd sets them, the service sends READY=1, pings the watchdog, and its STATUS line
# carries the total lag (sum over the assigned partitions) and the age of the last flush; after
# catching up the STATUS says lag=0 and a flush age in seconds. SIGTERM sends STOPPING=1.
source "$(dirname "$0")/lib.sh"

LISTEN=${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/notify_listen
create_topics status
produce "$TEST_TMP/sim.json" --homes 2 --minutes 5 --seed 5
db=$(new_database)
group=solarx-status-$$
write_stream_config "$db" "$TEST_TMP/status.conf" "$group"

socket=$TEST_TMP/notify.sock
"$LISTEN" "$socket" >"$TEST_TMP/notify.log" 2>"$TEST_TMP/notify.err" &
listener=$!
trap 'kill $listener 2>/dev/null || true; cleanup_stream_test' EXIT
for _ in $(seq 50); do [[ -S $socket ]] && break; sleep 0.1; done
[[ -S $socket ]] || fail "notify_listen did not bind: $(cat "$TEST_TMP/notify.err")"

# As systemd runs a Type=notify unit with WatchdogSec=2s (the service pings every second).
NOTIFY_SOCKET=$socket WATCHDOG_USEC=2000000 start_service "$TEST_TMP/status.conf"
wait_ready
wait_caught_up "$db" "$group"

# The next STATUS lines see the position at the end and the last flush a few seconds ago.
deadline=$((SECONDS + 30))
until grep -Eq '^STATUS=lag=0 last_flush_age_s=[0-9]+ consumed=[1-9][0-9]* ' "$TEST_TMP/notify.log"; do
    ((SECONDS < deadline)) || fail "no STATUS with lag=0 and a flush age: $(tail -n 5 "$TEST_TMP/notify.log")"
    sleep 0.5
done
stop_service
sleep 0.2
kill "$listener" && wait "$listener" || true

grep -q 'READY=1' "$TEST_TMP/notify.log" || fail "no READY=1"
grep -q '^WATCHDOG=1$' "$TEST_TMP/notify.log" || fail "no WATCHDOG=1 ping"
grep -q 'STOPPING=1' "$TEST_TMP/notify.log" || fail "no STOPPING=1 on SIGTERM"
line=$(grep -E '^STATUS=lag=0 ' "$TEST_TMP/notify.log" | tail -n 1)
age=$(sed -E 's/.* last_flush_age_s=([0-9]+) .*/\1/' <<<"$line")
((age < 60)) || fail "last flush age $age s after catching up: $line"
grep -q 'flushes=[1-9]' <<<"$line" || fail "STATUS counts no flush: $line"
echo "ok: $line"
echo "PASS: STATUS carries lag and the last flush"
