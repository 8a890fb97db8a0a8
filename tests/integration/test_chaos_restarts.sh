#!/usr/bin/env bash
# P1 and P7 against the real services: while the service consumes a backlog, PostgreSQL is stopped
# for a while (the service must keep running, report unhealthy, pause and retry), then the broker
# is restarted. Afterwards every valid reading is in raw and facts exactly once, every malformed
# message is a dead letter, and SIGTERM still exits 0.
# Bounded CI variant; SOLARX_CHAOS_ROUNDS (default 1) repeats the outage pair for longer runs.
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
service_log | grep -q 'event=flush_failed\|event=postgres_connect_failed' ||
    fail "no flush or connect failure was logged: the outage missed the service"
service_log | grep -q 'event=postgres_connected' || fail "no reconnect logged"
stop_service

for kind in home solar; do
    table=$([[ $kind == home ]] && echo home_power_readings || echo solar_panel_readings)
    assert_eq "$(q "$db" "select count(*) from solarx_raw.$table")" "$(sim_count "$TEST_TMP/sim.json" valid $kind)" "$kind raw rows"
done
assert_eq "$(q "$db" 'select count(*) from solarx_raw.battery_readings')" \
    "$(($(sim_count "$TEST_TMP/sim.json" valid battery) * 3))" "battery raw rows"
assert_eq "$(q "$db" 'select sum(readings_count) from solarx_wh.fact_home_power_readings')" \
    "$(sim_count "$TEST_TMP/sim.json" valid home)" "home fact readings"
assert_eq "$(q "$db" 'select sum(readings_count) from solarx_wh.fact_battery_power_readings')" \
    "$(($(sim_count "$TEST_TMP/sim.json" valid battery) * 3))" "battery fact readings"
malformed=$(jq -r '.malformed | add' "$TEST_TMP/sim.json")
assert_eq "$(q "$db" 'select count(*) from solarx_raw.dead_letters')" "$malformed" "dead letters"
echo "PASS test_chaos_restarts rounds=$rounds messages=$(jq -r .total "$TEST_TMP/sim.json") flush_failures=$(service_log | grep -c 'event=flush_failed' || true)"
