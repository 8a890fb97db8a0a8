#!/usr/bin/env bash
# ingest and replay against real PostgreSQL and Kafka: a dump file loads exactly (valid readings
# once, malformed lines as dead letters naming file and line), loading it again changes nothing,
# and replaying the same messages from Kafka gives the same warehouse without touching any
# consumer group's stored offsets.
source "$(dirname "$0")/lib.sh"

dump=$TEST_TMP/dump
sim_args=(--homes 3 --minutes 30 --seed 11 --duplicates 0.02 --disorder 0.02 --malformed 0.005)
"$SOLARX_SIM" "${sim_args[@]}" --output-dir "$dump" >"$TEST_TMP/sim.json" 2>/dev/null
summary=$(cat "$TEST_TMP/sim.json")
valid() { jq -r ".valid[\"$1\"]" <<<"$summary"; }
malformed_total() {
    jq -r ".malformed | add" <<<"$summary"
}

# Every table a backfill writes, without the columns that name where or when a row came from.
digest() {
    q "$1" "
    select md5(string_agg(t, '|' order by t)) from (
      select 'h' || home_id || ts || consumption_wh || accumulated_wh as t from solarx_raw.home_power_readings
      union all select 's' || panel_id || ts || home_id || generation_wh || accumulated_wh from solarx_raw.solar_panel_readings
      union all select 'b' || home_id || battery_id || ts || capacity_kwh || current_energy_wh || is_charging || status
        from solarx_raw.battery_readings
      union all select 'fh' || (f.*)::text from (select home_id, date_key, home_key, consumption_wh, readings_count,
        min_consumption_wh, max_consumption_wh, last_accumulated_wh, first_ts, last_ts, seconds_seen
        from solarx_wh.fact_home_power_readings) f
      union all select 'fs' || (f.*)::text from (select solar_panel_id, date_key, solar_panel_key, home_id,
        generation_power_wh, readings_count, first_ts, last_ts, seconds_seen
        from solarx_wh.fact_solar_panel_power_readings) f
      union all select 'fb' || (f.*)::text from (select home_id, battery_id, date_key, battery_key, current_energy_wh,
        is_charging, status, capacity_kwh, min_energy_wh, max_energy_wh, readings_count, first_ts, last_ts, seconds_seen
        from solarx_wh.fact_battery_power_readings) f
      union all select 'db' || (d.*)::text from solarx_wh.dim_battery d) x"
}

# --- ingest --------------------------------------------------------------------------------
db=$(new_database)
write_config "$db" "$TEST_TMP/ingest.conf"
sed -i 's/^\[solarx\]$/[solarx]\nmigrate_on_start = true/' "$TEST_TMP/ingest.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$dump"/*.jsonl 2>"$TEST_TMP/ingest1.log" ||
    { cat "$TEST_TMP/ingest1.log"; fail "ingest"; }
assert_eq "$(q "$db" 'select count(*) from solarx_raw.home_power_readings')" "$(valid home_energy_consumption)" "home raw rows"
assert_eq "$(q "$db" 'select count(*) from solarx_raw.solar_panel_readings')" "$(valid solar_energy_data)" "solar raw rows"
assert_eq "$(q "$db" 'select count(*) from solarx_raw.battery_readings')" "$(($(valid battery_data) * 3))" "battery raw rows"
assert_eq "$(q "$db" 'select sum(readings_count) from solarx_wh.fact_battery_power_readings')" "$(($(valid battery_data) * 3))" "battery fact counts"
assert_eq "$(q "$db" 'select count(*) from solarx_raw.dead_letters')" "$(malformed_total)" "dead letters"
assert_eq "$(q "$db" "select count(*) from solarx_raw.dead_letters where source like '$dump/%.jsonl' and \"partition\" = -1 and \"offset\" > 0")" \
    "$(malformed_total)" "dead letters name their file and line"
line=$(q "$db" "select \"offset\" from solarx_raw.dead_letters where source = '$dump/battery_data.jsonl' order by 1 limit 1")
sed -n "${line}p" "$dump/battery_data.jsonl" >"$TEST_TMP/line.txt"
[[ $(q "$db" "select convert_from(payload, 'UTF8') from solarx_raw.dead_letters where source = '$dump/battery_data.jsonl' and \"offset\" = $line") == "$(cat "$TEST_TMP/line.txt")" ]] ||
    fail "the dead letter's payload is not line $line of the file"
first=$(digest "$db")
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$dump"/*.jsonl 2>"$TEST_TMP/ingest2.log" || fail "second ingest"
assert_eq "$(digest "$db")" "$first" "a second ingest changed the warehouse"
assert_eq "$(q "$db" 'select count(*) from solarx_raw.dead_letters')" "$(malformed_total)" "dead letters after a second ingest"
grep -q "merged=0 " "$TEST_TMP/ingest2.log" || fail "the second ingest merged something: $(tail -1 "$TEST_TMP/ingest2.log")"

# Unknown topic names are refused up front, naming the file.
cp "$dump/battery_data.jsonl" "$TEST_TMP/mystery.jsonl"
if "$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$TEST_TMP/mystery.jsonl" 2>"$TEST_TMP/mystery.log"; then
    fail "a file of unknown topic was ingested"
fi
grep -q "mystery.jsonl: cannot tell its topic" "$TEST_TMP/mystery.log" || fail "error does not name the file"

# --- replay --------------------------------------------------------------------------------
suffix=$$
topics=(home_bf_$suffix solar_bf_$suffix battery_bf_$suffix)
for t in "${topics[@]}"; do
    "$SOLARX_SOURCE_DIR/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand --bootstrap-server \
        "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --create --topic "$t" --partitions 3 >/dev/null
done
delete_topics() {
    for t in "${topics[@]}"; do
        "$SOLARX_SOURCE_DIR/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand --bootstrap-server \
            "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --delete --topic "$t" >/dev/null 2>&1 || true
    done
    cleanup_test
}
trap delete_topics EXIT
"$SOLARX_SIM" "${sim_args[@]}" --brokers "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --topic-home "${topics[0]}" \
    --topic-solar "${topics[1]}" --topic-battery "${topics[2]}" >/dev/null 2>&1
rdb=$(new_database)
write_config "$rdb" "$TEST_TMP/replay.conf" "solarx-backfill-$suffix"
sed -i 's/^\[solarx\]$/[solarx]\nmigrate_on_start = true/' "$TEST_TMP/replay.conf"
printf '[topics]\nhome = %s\nsolar = %s\nbattery = %s\n' "${topics[@]}" >>"$TEST_TMP/replay.conf"
"$SOLARX_BIN" replay -c "$TEST_TMP/replay.conf" --from-beginning 2>"$TEST_TMP/replay1.log" ||
    { tail "$TEST_TMP/replay1.log"; fail "replay"; }
assert_eq "$(digest "$rdb")" "$first" "replay from Kafka differs from ingest of the same messages"
assert_eq "$(q "$rdb" 'select count(*) from solarx_meta.consumer_offsets')" 0 "replay stored offsets"
assert_eq "$(q "$rdb" 'select count(*) from solarx_raw.dead_letters where source is null')" "$(malformed_total)" "replayed dead letters"

# Delete a quarter hour of facts and raw rows of one partition's homes; replaying restores them.
q "$rdb" "delete from solarx_wh.fact_home_power_readings where date_key = '2025-02-14 00:15:00+00'" >/dev/null
q "$rdb" "delete from solarx_raw.home_power_readings where ts >= '2025-02-14 00:15:00+00' and ts < '2025-02-14 00:20:00+00'" >/dev/null
"$SOLARX_BIN" replay -c "$TEST_TMP/replay.conf" --from-beginning --topic home 2>"$TEST_TMP/replay2.log" || fail "second replay"
assert_eq "$(digest "$rdb")" "$first" "replay did not restore the deleted window"
"$SOLARX_BIN" replay -c "$TEST_TMP/replay.conf" --from-time "2025-01-01 00:00:00" --partition 0 2>"$TEST_TMP/replay3.log" ||
    fail "replay from a time"
assert_eq "$(digest "$rdb")" "$first" "a replay from a time changed the warehouse"

echo "PASS test_backfill messages=$(jq -r .total <<<"$summary") dead_letters=$(malformed_total)"
