#!/usr/bin/env bash
# Fast restart: with the shipped configuration (config/solarx-stream.conf, only its addresses,
# paths and names pointed at the test's services), an instance SIGKILLed while consuming and
# restarted at once commits its next flush (solarx_meta.consumer_offsets.updated_at moves) within
# 10 s: static membership (a group.instance.id derived from the host and http_listen) gives the
# restarted instance its partitions back without waiting for the killed one's session to time out
# (45 s). Every restart is timed and printed; at the end every valid reading is there once.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
KILLS=$(by_scale 3 2)
LIMIT_S=10
HOMES=$(by_scale 10 4)
create_topics restart
make_database db
group=restart-$$

# The shipped file as it is; the environment points it at this test's services.
conf=$TEST_TMP/solarx-stream.conf
cp "$SOLARX_SOURCE_DIR/config/solarx-stream.conf" "$conf"
export SOLARX_KAFKA_BOOTSTRAP_SERVERS=$SOLARX_KAFKA_BOOTSTRAP_SERVERS
export SOLARX_KAFKA_GROUP_ID=$group
export SOLARX_POSTGRES_CONNINFO="host=$PGHOST port=$PGPORT user=solarx_app dbname=$db"
export SOLARX_POSTGRES_MIGRATE_CONNINFO="host=$PGHOST port=$PGPORT user=solarx_migrate dbname=$db"
export SOLARX_TOPICS_HOME=$TOPIC_HOME SOLARX_TOPICS_SOLAR=$TOPIC_SOLAR
export SOLARX_TOPICS_BATTERY=$TOPIC_BATTERY
export SOLARX_SOLARX_HTTP_LISTEN=127.0.0.1:20303
export SOLARX_SOLARX_APPLIANCES_FILE=$SOLARX_SOURCE_DIR/config/home_appliances_consumption.json
export SOLARX_SOLARX_PANELS_FILE=$SOLARX_SOURCE_DIR/config/solar_panels.json
export SOLARX_SOLARX_MIGRATIONS_DIR=$SOLARX_SOURCE_DIR/migrations

# A stream that lasts the whole test (30 to 60 s), so every life has messages to commit.
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --minutes "$(by_scale 40 20)" --rate 40 --seed 91 \
    --start "2025-02-14 00:00:00" --duplicates 0.01 --malformed 0.001 &
producer=$!

# last_commit: epoch seconds (with fraction) of the newest stored offset, 0 when none.
last_commit() {
    q "$db" "select coalesce(extract(epoch from max(updated_at)), 0)
               from solarx_meta.consumer_offsets
              where consumer_group = '$group' and next_offset is not null" 2>/dev/null || echo 0
}
now_s() { date +%s.%N; }

start_service "$conf" service
wait_ready 60
times=()
for ((kill = 1; kill <= KILLS; kill++)); do
    # Consuming and committing: two commits since this life started.
    mark=$(stat -c %s "$SERVICE_LOG")
    deadline=$((SECONDS + 60))
    until (($(tail -c +$((mark + 1)) "$SERVICE_LOG" | grep -c 'event=flush_committed .* offsets=[1-9]') >= 2)); do
        ((SECONDS < deadline)) || fail "life $kill: no commits within 60 s"
        sleep 0.2
    done
    kill -0 "$producer" 2>/dev/null || fail "the producer ended before kill $kill: make the stream longer"
    kill_service
    before=$(last_commit)
    restarted_at=$(now_s)
    start_service "$conf" service
    deadline=$((SECONDS + 60))
    while :; do
        committed=$(last_commit)
        awk -v c="$committed" -v b="$before" -v r="$restarted_at" 'BEGIN { exit !(c > b && c >= r) }' &&
            break
        ((SECONDS < deadline)) || fail "restart $kill: no committed flush within 60 s"
        kill -0 "$SERVICE_PID" 2>/dev/null || fail "restart $kill: the service exited"
        sleep 0.1
    done
    took=$(awk -v c="$committed" -v r="$restarted_at" 'BEGIN { printf "%.2f", c - r }')
    echo "restart $kill: next committed flush ${took}s after the restart"
    times+=("$took")
done
service_log_has 'event=static_membership enabled=1' || fail "static membership is not on"

wait "$producer" || fail "the producer failed"
wait_caught_up "$db" "$group" 300
stop_service
v_home=$(sim_count "$summary" valid home)
v_solar=$(sim_count "$summary" valid solar)
v_battery=$(sim_count "$summary" valid battery)
assert_eq "$(q "$db" "select (select sum(readings_count) from solarx_wh.fact_home_power_readings) || ' ' ||
                             (select sum(readings_count) from solarx_wh.fact_solar_panel_power_readings) || ' ' ||
                             (select sum(readings_count) from solarx_wh.fact_battery_power_readings)")" \
    "$v_home $v_solar $((3 * v_battery))" "readings counted by the facts"
worst=$(printf '%s\n' "${times[@]}" | sort -g | tail -n 1)
echo "restart recovery: worst ${worst}s over $KILLS SIGKILLs (limit ${LIMIT_S}s): ${times[*]}"
awk -v w="$worst" -v l="$LIMIT_S" 'BEGIN { exit !(w <= l) }' ||
    fail "a restarted instance took ${worst}s to commit its next flush (limit ${LIMIT_S}s)"
echo "PASS test_restart_recovery scale=$SOLARX_TEST_SCALE kills=$KILLS worst_s=$worst" \
    "times_s=$(
        IFS=,
        echo "${times[*]}"
    ) total_s=$((SECONDS - started))"
