#!/usr/bin/env bash
# P1 and P7 against the real services: while the service consumes a backlog, PostgreSQL is stopped
# for a while (the service must keep running, report unhealthy, pause and retry), then the broker
# is restarted. Afterwards every valid reading is in raw and facts exactly once, every malformed
# message is a dead letter, and SIGTERM still exits 0: the warehouse's digest (every raw, fact,
# dimension and dead-letter table) equals an uninterrupted run's over the same topics.
# Bounded CI variant; SOLARX_CHAOS_ROUNDS (default 1) repeats the outage pair for longer runs.
# shellcheck source=lib.sh disable=SC2154 # dbref is set by make_database
source "$(dirname "$0")/lib.sh"

rounds=${SOLARX_CHAOS_ROUNDS:-1}
services=$SOLARX_SOURCE_DIR/scripts/services.sh
create_topics chaos
produce "$TEST_TMP/sim.json" --homes "$(by_scale 10 3)" --minutes 60 --seed 21 \
    --duplicates 0.01 --disorder 0.01 --malformed 0.001
db=$(new_database)
port=$((20000 + $$ % 20000))
write_stream_config "$db" "$TEST_TMP/chaos.conf" "chaos-$$" flush_interval_ms=200 \
    flush_max_readings=5000 http_listen=127.0.0.1:$port
start_service "$TEST_TMP/chaos.conf"
wait_ready 120

health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true; }

for ((round = 1; round <= rounds; round++)); do
    sleep 1
    "$services" stop-pg >/dev/null
    sleep 4
    kill -0 "$SERVICE_PID" 2>/dev/null || fail "the service exited while PostgreSQL was down"
    assert_eq "$(health)" 503 "/healthz while PostgreSQL is down"
    "$services" start-pg >/dev/null
    sleep 2
    "$services" restart-kafka >/dev/null
    kill -0 "$SERVICE_PID" 2>/dev/null || fail "the service exited across a broker restart"
done

wait_caught_up "$db" "chaos-$$" 300
assert_eq "$(health)" 200 "/healthz after recovery"
# grep -c, not -q: with pipefail, grep -q quitting early makes the writer die of SIGPIPE.
outage_log=$(service_log)
grep -c 'event=flush_failed\|event=postgres_connect_failed' <<<"$outage_log" >/dev/null ||
    fail "no flush or connect failure was logged: the outage missed the service"
grep -c 'event=postgres_connected' <<<"$outage_log" >/dev/null || fail "no reconnect logged"
stop_service

# The same topics consumed afterwards by an uninterrupted instance (another group, a fresh
# database): the warehouse must be the same, table by table.
digest_chaos=$(digest_same_topics "$db")
make_database dbref
write_stream_config "$dbref" "$TEST_TMP/ref.conf" "chaos-ref-$$" flush_interval_ms=200 \
    flush_max_readings=5000
start_service "$TEST_TMP/ref.conf" ref
wait_caught_up "$dbref" "chaos-ref-$$" 300
stop_service
digest_ref=$(digest_same_topics "$dbref")
read -r lost double < <(readings_lost_and_double_counted "$dbref" "$db")
echo "readings lost=$lost readings double-counted=$double"
assert_eq "$lost" 0 "readings lost"
assert_eq "$double" 0 "readings double-counted"
assert_same_digest reference "$digest_ref" chaos "$digest_chaos"
# The reference itself holds every valid reading and every malformed message.
assert_eq "$(q "$dbref" 'select count(*) from solarx_raw.home_power_readings')" \
    "$(sim_count "$TEST_TMP/sim.json" valid home)" "home raw rows in the reference"
malformed=$(jq -r '.malformed | add' "$TEST_TMP/sim.json")
assert_eq "$(q "$dbref" 'select count(*) from solarx_raw.dead_letters')" "$malformed" \
    "dead letters in the reference"
rows=$(awk '{ n += $2 } END { print n }' <<<"$digest_ref")
echo "PASS test_chaos_restarts rounds=$rounds messages=$(jq -r .total "$TEST_TMP/sim.json") rows=$rows flush_failures=$(grep -c 'event=flush_failed' <<<"$outage_log" || true)"
