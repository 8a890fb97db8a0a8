#!/usr/bin/env bash
# Issue 4 against real Kafka and PostgreSQL: dim_battery comes from the battery stream, by event
# time. 3 homes x 60 minutes with battery_1 of every home upgraded at 00:30 (12 -> 15 kWh), produced
# with Kafka's console producer. Run A consumes the topics in order (keyed by home); a replay
# from offset 0 changes nothing; run B, into a fresh database, reads other topics that hold the
# late half (event time >= 00:30) before the early half, unkeyed: the same versions, the same
# surrogate keys and the same facts, with every fact on the version in effect at its last reading.
source "$(dirname "$0")/lib.sh"

UPGRADE="2025-02-14 00:30:00"
HOMES=3
[[ -x $SOLARX_BIN && -x $SOLARX_SIM ]] || fail "no solarx-stream / solarx-sim in $SOLARX_BUILD_DIR"
started=$SECONDS

# Registries with effective_from, so that dim_home / dim_solar_panel (and the facts' home_key and
# solar_panel_key) do not depend on when a run loads them: every digest below covers them too.
jq --argjson n $HOMES '. as $a | [range(1; $n + 1) | {home_id: ., appliances: $a,
    effective_from: "2025-01-01 00:00:00"}]' \
    "$SOLARX_SOURCE_DIR/config/home_appliances_consumption.json" >"$TEST_TMP/appliances.json"
jq -n --argjson n $HOMES '[range(1; $n + 1) | {id: (. * 10 + 4), home_id: ., name: "kafka panel",
    capacity_kwh: 10, intensity_power_rating: 1000, temperature_power_rating: 25,
    effective_from: "2025-01-01 00:00:00"}]' >"$TEST_TMP/panels.json"
REGISTRY=(appliances_file="$TEST_TMP/appliances.json" panels_file="$TEST_TMP/panels.json")

# The stream, as topic dump files (one JSON message per line), named after run A's topics.
create_topics dimA
"$SOLARX_SIM" --homes $HOMES --minutes 60 --seed 5 --battery-upgrade "$UPGRADE" \
    --topic-home "$TOPIC_HOME" --topic-solar "$TOPIC_SOLAR" --topic-battery "$TOPIC_BATTERY" \
    --output-dir "$TEST_TMP/dump" >"$TEST_TMP/sim.json" 2>"$TEST_TMP/sim.log" || fail "solarx-sim"
DUMPS=()
for t in "$TOPIC_HOME" "$TOPIC_SOLAR" "$TOPIC_BATTERY"; do
    DUMPS+=("$TEST_TMP/dump/$t.jsonl")
    assert_eq "$(wc -l <"$TEST_TMP/dump/$t.jsonl")" $((HOMES * 3600)) "messages in $t"
done

# produce_all MODE FILE...: the files into the current topics (home, solar, battery), in parallel.
produce_all() {
    local mode=$1 pids=() pid t
    shift
    for t in "$TOPIC_HOME" "$TOPIC_SOLAR" "$TOPIC_BATTERY"; do
        dim_produce_file "$t" "$1" "$mode" &
        pids+=($!)
        shift
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || fail "producing into the topics failed"
    done
}

# run_until_caught_up DB GROUP LOGNAME [KEY=VALUE...]: the service consumes until PostgreSQL's
# offsets are the topics' end offsets, then stops with SIGTERM (exit 0).
run_until_caught_up() {
    local db=$1 group=$2 conf=$TEST_TMP/$3.conf name=$3
    shift 3
    write_stream_config "$db" "$conf" "$group" "${REGISTRY[@]}" "$@"
    start_service "$conf" "$name"
    wait_caught_up "$db" "$group" 120
    stop_service
}

# check_battery_history DB LABEL: battery_1 of every home has two versions split at the upgrade,
# the other batteries one; and every battery fact carries the version in effect at its last_ts.
check_battery_history() {
    local db=$1 want="" h b
    for h in $(seq 1 $HOMES); do
        want+="$h/1 12 1 3.33 2025-02-14T00:00:00 2025-02-14T00:29:59 2025-02-14T00:30:00 false"$'\n'
        want+="$h/1 15 1 5 2025-02-14T00:30:00 2025-02-14T00:59:59 open true"$'\n'
        for b in 2 3; do
            want+="$h/$b 12 1 3.33 2025-02-14T00:00:00 2025-02-14T00:59:59 open true"$'\n'
        done
    done
    assert_eq "$(dim_battery_history "$db" | cut -d' ' -f1-8)" "${want%$'\n'}" "$2: dim_battery"
    assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_battery_power_readings")" \
        $((HOMES * 3 * 4)) "$2: battery facts"
    assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_battery_power_readings f
        where battery_key is null or battery_key is distinct from (select d.battery_key from solarx_wh.dim_battery d
              where d.home_id = f.home_id and d.battery_id = f.battery_id
                and d.start_date <= f.last_ts and (d.end_date is null or f.last_ts < d.end_date))")" \
        0 "$2: battery facts not on the version in effect at their last reading"
    assert_eq "$(q "$db" "select count(distinct battery_key) from solarx_wh.fact_battery_power_readings
        where battery_id = 1")" $((HOMES * 2)) "$2: battery_1 facts spread over both versions"
    assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings
        where home_key is null")" 0 "$2: home facts without a home_key"
    assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_solar_panel_power_readings
        where solar_panel_key is null")" 0 "$2: solar facts without a solar_panel_key"
}

# --- run A: in order, keyed by home ----------------------------------------------------------
KEYED=()
for f in "${DUMPS[@]}"; do
    dim_keyed_by_home "$f" >"$f.keyed"
    KEYED+=("$f.keyed")
done
produce_all keyed "${KEYED[@]}"
dbA=$(new_database)
run_until_caught_up "$dbA" "dimA-$$" runA
merged_a=$(log_sum merged)
assert_eq "$merged_a" $((HOMES * 3600 * 5)) "run A: readings merged (home + solar + 3 batteries)"
check_battery_history "$dbA" "run A"
digest_a=$(digest "$dbA")
history_a=$(dim_battery_history "$dbA")

# --- (a) replay from offset 0 into the same database: nothing changes ------------------------
q "$dbA" "update solarx_meta.consumer_offsets set next_offset = 0
          where consumer_group = 'dimA-$$'" >/dev/null
assert_eq "$(q "$dbA" "select sum(next_offset) from solarx_meta.consumer_offsets
                       where consumer_group = 'dimA-$$'")" 0 "offsets reset"
run_until_caught_up "$dbA" "dimA-$$" replayA
assert_eq "$(log_sum merged)" 0 "replay: readings merged again"
assert_eq "$(log_sum duplicates)" "$merged_a" "replay: every reading seen again as a duplicate"
assert_same_digest "run A" "$digest_a" "replay of A" "$(digest "$dbA")"

# --- (b) the late half first, unkeyed, into a fresh database ---------------------------------
# The late half is produced and merged (in small flushes) before the early half is produced, so
# the 15 kWh versions exist before the 12 kWh readings before them arrive.
LATE=() EARLY=()
for f in "${DUMPS[@]}"; do
    awk -v cut="$UPGRADE" -v early="$f.early" -F'"time_stamp": "' \
        'substr($2, 1, 19) >= cut { print; next } { print > early }' "$f" >"$f.late"
    assert_eq "$(($(wc -l <"$f.late") + $(wc -l <"$f.early")))" $((HOMES * 3600)) "halves of $f"
    LATE+=("$f.late")
    EARLY+=("$f.early")
done
[[ $(head -c 60 "${LATE[2]}") == *'"time_stamp": "2025-02-14 00:30:00"'* ]] ||
    fail "the late battery half does not start at 00:30: $(head -c 80 "${LATE[2]}")"
create_topics dimB
dbB=$(new_database)
write_stream_config "$dbB" "$TEST_TMP/runB.conf" "dimB-$$" "${REGISTRY[@]}" flush_max_readings=3000
produce_all unkeyed "${LATE[@]}"
start_service "$TEST_TMP/runB.conf" runB
wait_caught_up "$dbB" "dimB-$$" 120
late_merged=$(log_sum merged)
assert_eq "$late_merged" $((merged_a / 2)) "run B: late half merged"
assert_eq "$(dim_battery_history "$dbB" "battery_id = 1" | cut -d' ' -f2,5 | sort -u)" \
    "15 2025-02-14T00:30:00" "run B, late half only: battery_1 versions"
produce_all unkeyed "${EARLY[@]}"
wait_caught_up "$dbB" "dimB-$$" 120
stop_service
assert_eq "$(log_sum merged)" "$merged_a" "run B: readings merged"
flushes_b=$(service_log | grep -c 'event=flush_committed')
check_battery_history "$dbB" "run B"
assert_eq "$(dim_battery_history "$dbB")" "$history_a" "dim_battery (with keys), run B vs run A"
assert_same_digest "run A" "$digest_a" "run B" "$(digest "$dbB")"
# (cleanup_stream_test cannot drop two databases: its "local IFS='|'" reaches cleanup_test's
# word splitting of the database list. Drop one here.)
psql -q -d postgres -c "DROP DATABASE \"$dbA\" WITH (FORCE)" >/dev/null

echo "PASS: dim_battery from the stream: $merged_a readings; $(wc -l <<<"$history_a") battery" \
    "versions ($HOMES upgraded at 00:30), same keys and digests in order, replayed" \
    "($merged_a duplicates) and late-half-first ($flushes_b flushes);" \
    "$((SECONDS - started)) s"
