#!/usr/bin/env bash
# End to end through real Kafka and PostgreSQL: (d) hand-written messages give facts computed by
# hand to the last digit; then simulator data (duplicates, disorder, late data, malformed
# messages) gives (a) facts equal to an independent SQL aggregation of the raw rows, (b) raw rows
# equal to the simulator's valid counts, (c) one dead letter, with a reason, per malformed message.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
FIXTURE=$SOLARX_SOURCE_DIR/tests/data/fixture

# ---- (d) the hand-computed fixture ------------------------------------------------------------
create_topics e2e-fixture
make_database fdb
fgroup=e2e-fixture-$$
write_stream_config "$fdb" "$TEST_TMP/fixture.conf" "$fgroup"
# One key ("7"): every message of a topic lands in one partition, in file order, so the late
# lines really arrive after the windows that follow them.
produce_file() {
    awk '{ print "7|" $0 }' "$2" |
        kafka_tool kafka.tools.ConsoleProducer --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
            --topic "$1" --property parse.key=true --property key.separator='|' \
            >"$TEST_TMP/producer-$1.log" 2>&1 || fail "ConsoleProducer $1: $(cat "$TEST_TMP/producer-$1.log")"
}
produce_file "$TOPIC_HOME" "$FIXTURE/home_energy_consumption.jsonl" &
p1=$!
produce_file "$TOPIC_SOLAR" "$FIXTURE/solar_energy_data.jsonl" &
p2=$!
produce_file "$TOPIC_BATTERY" "$FIXTURE/battery_data.jsonl" &
p3=$!
wait $p1 && wait $p2 && wait $p3 || fail "producing the fixture"
assert_eq "$(topic_end_offsets | awk '{ n += $3 } END { print n }')" 20 "fixture messages in Kafka"

start_service "$TEST_TMP/fixture.conf" fixture
wait_caught_up "$fdb" "$fgroup" 60
stop_service

check_rows() { # NAME ACTUAL EXPECTED
    if [[ $2 != "$3" ]]; then
        echo "--- expected $1" >&2
        echo "$3" >&2
        echo "--- got" >&2
        echo "$2" >&2
        fail "fixture: $1 differ"
    fi
}

check_rows "home facts" "$(q "$fdb" "set timezone = 'UTC';
    select home_id, date_key, consumption_wh, readings_count, min_consumption_wh,
           max_consumption_wh, first_ts, last_ts, last_accumulated_wh, completeness
      from solarx_wh.fact_home_power_readings order by home_id, date_key")" \
    "1|2025-03-01 10:15:00+00|2.500000|1|2.500000|2.500000|2025-03-01 10:20:00+00|2025-03-01 10:20:00+00|10.500000|0.00111
7|2025-03-01 10:00:00+00|2.123456|3|0.123456|1.070000|2025-03-01 10:14:00+00|2025-03-01 10:14:59+00|5121.470000|0.00333
7|2025-03-01 10:15:00+00|1.790001|2|0.790000|1.000001|2025-03-01 10:15:00+00|2025-03-01 10:15:01+00|5123.260001|0.00222"

check_rows "solar facts" "$(q "$fdb" "set timezone = 'UTC';
    select solar_panel_id, home_id, date_key, generation_power_wh, readings_count,
           min_generation_wh, max_generation_wh, first_ts, last_ts, last_accumulated_wh
      from solarx_wh.fact_solar_panel_power_readings order by solar_panel_id, date_key")" \
    "74|7|2025-03-01 10:15:00+00|0.500001|2|0.000001|0.500000|2025-03-01 10:29:00+00|2025-03-01 10:29:59+00|300.000000
74|7|2025-03-01 10:30:00+00|0.583333|2|0.250000|0.333333|2025-03-01 10:30:00+00|2025-03-01 10:30:01+00|300.583333"

check_rows "battery facts" "$(q "$fdb" "set timezone = 'UTC';
    select home_id, battery_id, date_key, current_energy_wh, is_charging, status, capacity_kwh,
           max_charge_speed_w, max_output_w, min_energy_wh, max_energy_wh, readings_count,
           first_ts, last_ts
      from solarx_wh.fact_battery_power_readings order by home_id, battery_id, date_key")" \
    "7|1|2025-03-01 10:30:00+00|9859.100000|f|discharging|12.000000|1.000000|3.330000|9859.100000|9900.000000|3|2025-03-01 10:44:30+00|2025-03-01 10:44:59+00
7|1|2025-03-01 10:45:00+00|9858.200000|f|discharging|12.000000|1.000000|3.330000|9858.200000|9858.200000|1|2025-03-01 10:45:00+00|2025-03-01 10:45:00+00
7|2|2025-03-01 10:30:00+00|5000.750000|t|charging|12.000000|1.000000|3.330000|4999.000000|5000.750000|3|2025-03-01 10:44:30+00|2025-03-01 10:44:59+00
7|2|2025-03-01 10:45:00+00|5001.000000|t|charging|12.000000|1.000000|3.330000|5001.000000|5001.000000|1|2025-03-01 10:45:00+00|2025-03-01 10:45:00+00"

check_rows "raw rows" "$(q "$fdb" "set timezone = 'UTC';
    select 'home', home_id, ts, consumption_wh from solarx_raw.home_power_readings
    union all select 'solar', panel_id, ts, generation_wh from solarx_raw.solar_panel_readings
    union all select 'battery', home_id * 10 + battery_id, ts, current_energy_wh
      from solarx_raw.battery_readings order by 1, 2, 3")" \
    "battery|71|2025-03-01 10:44:30+00|9900.000000
battery|71|2025-03-01 10:44:58+00|9860.000000
battery|71|2025-03-01 10:44:59+00|9859.100000
battery|71|2025-03-01 10:45:00+00|9858.200000
battery|72|2025-03-01 10:44:30+00|4999.000000
battery|72|2025-03-01 10:44:58+00|5000.500000
battery|72|2025-03-01 10:44:59+00|5000.750000
battery|72|2025-03-01 10:45:00+00|5001.000000
home|1|2025-03-01 10:20:00+00|2.500000
home|7|2025-03-01 10:14:00+00|0.123456
home|7|2025-03-01 10:14:58+00|0.930000
home|7|2025-03-01 10:14:59+00|1.070000
home|7|2025-03-01 10:15:00+00|0.790000
home|7|2025-03-01 10:15:01+00|1.000001
solar|74|2025-03-01 10:29:00+00|0.000001
solar|74|2025-03-01 10:29:59+00|0.500000
solar|74|2025-03-01 10:30:00+00|0.250000
solar|74|2025-03-01 10:30:01+00|0.333333"

check_rows "dead letters" "$(q "$fdb" "select topic, \"offset\", reason, convert_from(key, 'UTF8'),
           error <> '' from solarx_raw.dead_letters order by topic")" \
    "$TOPIC_BATTERY|3|unknown_status|7|t
$TOPIC_HOME|5|invalid_json|7|t
$TOPIC_SOLAR|4|out_of_range|7|t"
# 18 readings counted, 4 duplicates (the battery copy holds two), over the instance's flushes.
assert_eq "$(log_sum merged)" 18 "fixture: readings merged (log)"
assert_eq "$(log_sum duplicates)" 4 "fixture: duplicates (log)"
fixture_done=$SECONDS

# ---- (a), (b), (c): simulator data ------------------------------------------------------------
HOMES=$(by_scale 100 10)
HOURS=2
create_topics e2e
make_database db
group=e2e-$$
write_stream_config "$db" "$TEST_TMP/e2e.conf" "$group"
start_service "$TEST_TMP/e2e.conf" e2e
wait_ready 60
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --hours "$HOURS" --seed 7 --duplicates 0.01 --disorder 0.01 \
    --late 0.001 --late-hours 1 --malformed 0.001
wait_caught_up "$db" "$group" "$(by_scale 400 200)"
caught_up=$SECONDS
stop_service

for kind in home solar battery; do
    for field in messages valid duplicates malformed late reordered; do
        printf -v "${field}_$kind" '%s' "$(sim_count "$summary" "$field" "$kind")"
    done
done
((late_home + late_solar + late_battery > 0)) || fail "the simulator sent no late data"
((reordered_home + reordered_solar + reordered_battery > 0)) || fail "no reordered data"
((duplicates_home + duplicates_solar + duplicates_battery > 0)) || fail "no duplicates"

# (b) raw rows: every valid reading once (a battery message holds 3 batteries), duplicates not.
raw=$(q "$db" "select (select count(*) from solarx_raw.home_power_readings) || ' ' ||
                      (select count(*) from solarx_raw.solar_panel_readings) || ' ' ||
                      (select count(*) from solarx_raw.battery_readings)")
assert_eq "$raw" "$valid_home $valid_solar $((3 * valid_battery))" "raw rows (home solar battery)"
assert_eq "$valid_home" $((HOMES * HOURS * 3600)) "simulator: valid home messages"
readings_valid=$((valid_home + valid_solar + 3 * valid_battery))
readings_dup=$((duplicates_home + duplicates_solar + 3 * duplicates_battery))
assert_eq "$(log_sum merged)" "$readings_valid" "readings merged (log)"
assert_eq "$(log_sum duplicates)" "$readings_dup" "duplicates (log)"
assert_eq "$(log_sum readings)" $((readings_valid + readings_dup)) "readings decoded (log)"
# The raw rows the flushes report, their own connection's and their raw lanes' (the default
# flush_connections, 3), add up to the rows stored: none counted twice or left out.
assert_eq "$(log_sum raw_home) $(log_sum raw_solar) $(log_sum raw_battery)" "$raw" \
    "raw rows written (log: home solar battery)"

# (a) every fact equals the aggregation of its raw rows; every raw bucket has its fact. A fact's
# seconds bitmap has one bit per counted reading.
windows=$((HOURS * 4))
assert_eq "$(q "$db" "select (select count(*) from solarx_wh.fact_home_power_readings) || ' ' ||
                             (select count(*) from solarx_wh.fact_solar_panel_power_readings) || ' ' ||
                             (select count(*) from solarx_wh.fact_battery_power_readings)")" \
    "$((HOMES * windows)) $((HOMES * windows)) $((3 * HOMES * windows))" "fact rows (home solar battery)"
BUCKET="to_timestamp(floor(extract(epoch from ts) / 900) * 900)"
check_facts() { # NAME SQL: SQL lists the facts that differ from the raw rows
    local out=$TEST_TMP/mismatch-$1.txt n
    q "$db" "set timezone = 'UTC'; $2" >"$out"
    n=$(grep -c . "$out" || true)
    if ((n > 0)); then
        echo "$1: $n facts differ from their raw rows (first 20; raw(...) vs fact(...)):" >&2
        head -n 20 "$out" >&2
        fail "$1 facts do not match the raw rows"
    fi
}
check_facts home "
    with r as (
        select home_id, $BUCKET as date_key, sum(consumption_wh) as sum_wh, count(*)::int as n,
               min(consumption_wh) as min_wh, max(consumption_wh) as max_wh,
               min(ts) as first_ts, max(ts) as last_ts,
               (array_agg(accumulated_wh order by ts desc))[1] as last_acc
          from solarx_raw.home_power_readings group by 1, 2)
    select coalesce(r.home_id, f.home_id), coalesce(r.date_key, f.date_key),
           row(r.sum_wh, r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts, r.last_acc, r.n),
           row(f.consumption_wh, f.readings_count, f.min_consumption_wh, f.max_consumption_wh,
               f.first_ts, f.last_ts, f.last_accumulated_wh, bit_count(f.seconds_seen))
      from r full join solarx_wh.fact_home_power_readings f
        on f.home_id = r.home_id and f.date_key = r.date_key
     where row(r.sum_wh, r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts, r.last_acc, r.n)
           is distinct from
           row(f.consumption_wh, f.readings_count, f.min_consumption_wh, f.max_consumption_wh,
               f.first_ts, f.last_ts, f.last_accumulated_wh, bit_count(f.seconds_seen)::int)"
check_facts solar "
    with r as (
        select panel_id, $BUCKET as date_key, min(home_id) as home_id, max(home_id) as home_hi,
               sum(generation_wh) as sum_wh, count(*)::int as n, min(generation_wh) as min_wh,
               max(generation_wh) as max_wh, min(ts) as first_ts, max(ts) as last_ts,
               (array_agg(accumulated_wh order by ts desc))[1] as last_acc
          from solarx_raw.solar_panel_readings group by 1, 2)
    select coalesce(r.panel_id, f.solar_panel_id), coalesce(r.date_key, f.date_key),
           row(r.home_id, r.home_hi, r.sum_wh, r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts,
               r.last_acc, r.n),
           row(f.home_id, f.home_id, f.generation_power_wh, f.readings_count,
               f.min_generation_wh, f.max_generation_wh, f.first_ts, f.last_ts,
               f.last_accumulated_wh, bit_count(f.seconds_seen))
      from r full join solarx_wh.fact_solar_panel_power_readings f
        on f.solar_panel_id = r.panel_id and f.date_key = r.date_key
     where row(r.home_id, r.home_hi, r.sum_wh, r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts,
               r.last_acc, r.n)
           is distinct from
           row(f.home_id, f.home_id, f.generation_power_wh, f.readings_count,
               f.min_generation_wh, f.max_generation_wh, f.first_ts, f.last_ts,
               f.last_accumulated_wh, bit_count(f.seconds_seen)::int)"
check_facts battery "
    with r as (
        select home_id, battery_id, $BUCKET as date_key, count(*)::int as n,
               min(current_energy_wh) as min_wh, max(current_energy_wh) as max_wh,
               min(ts) as first_ts, max(ts) as last_ts,
               (array_agg(row(current_energy_wh, is_charging, status, capacity_kwh,
                              max_charge_speed_w, max_output_w)::text order by ts desc))[1] as last
          from solarx_raw.battery_readings group by 1, 2, 3)
    select coalesce(r.home_id, f.home_id), coalesce(r.battery_id, f.battery_id),
           coalesce(r.date_key, f.date_key),
           row(r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts, r.last, r.n),
           row(f.readings_count, f.min_energy_wh, f.max_energy_wh, f.first_ts, f.last_ts,
               row(f.current_energy_wh, f.is_charging, f.status, f.capacity_kwh,
                   f.max_charge_speed_w, f.max_output_w)::text, bit_count(f.seconds_seen))
      from r full join solarx_wh.fact_battery_power_readings f
        on f.home_id = r.home_id and f.battery_id = r.battery_id and f.date_key = r.date_key
     where row(r.n, r.min_wh, r.max_wh, r.first_ts, r.last_ts, r.last, r.n)
           is distinct from
           row(f.readings_count, f.min_energy_wh, f.max_energy_wh, f.first_ts, f.last_ts,
               row(f.current_energy_wh, f.is_charging, f.status, f.capacity_kwh,
                   f.max_charge_speed_w, f.max_output_w)::text, bit_count(f.seconds_seen)::int)"

# (c) one dead letter per malformed message, per topic, each with a reason and an error text.
malformed=$((malformed_home + malformed_solar + malformed_battery))
((malformed > 0)) || fail "the simulator sent no malformed messages"
assert_eq "$(q "$db" "select count(*) from solarx_raw.dead_letters")" "$malformed" "dead letters"
for kind in home solar battery; do
    topic_var=TOPIC_${kind^^}
    want_var=malformed_$kind
    assert_eq "$(q "$db" "select count(*) from solarx_raw.dead_letters where topic = '${!topic_var}'")" \
        "${!want_var}" "dead letters of $kind"
done
assert_eq "$(q "$db" "select count(*) from solarx_raw.dead_letters
                       where coalesce(reason, '') = '' or coalesce(error, '') = ''")" 0 \
    "dead letters without a reason"
reasons=$(q "$db" "select string_agg(reason || '=' || n, ' ' order by reason)
                     from (select reason, count(*) n from solarx_raw.dead_letters group by 1) r")
assert_eq "$(log_sum dead_letters)" "$malformed" "dead letters written (log)"

consume_s=$((caught_up - fixture_done))
echo "PASS test_stream_e2e scale=$SOLARX_TEST_SCALE homes=$HOMES hours=$HOURS" \
    "messages=$((messages_home + messages_solar + messages_battery))" \
    "readings=$readings_valid duplicates=$readings_dup late=$((late_home + late_solar + late_battery))" \
    "reordered=$((reordered_home + reordered_solar + reordered_battery))" \
    "dead_letters=$malformed ($reasons) produce+consume_s=$consume_s" \
    "checks_s=$((SECONDS - caught_up)) fixture_s=$((fixture_done - started)) total_s=$((SECONDS - started))"
