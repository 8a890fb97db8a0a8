#!/usr/bin/env bash
# P2 idempotent replay: consuming the same offsets again (stored offsets reset to 0) changes no
# row and every replayed reading is counted as a duplicate; with one hour of facts deleted, a
# replay restores exactly what was there (raw rows stay, only the facts are rebuilt).
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 20 2)
create_topics replay
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --minutes 90 --seed 23 --duplicates 0.01 --disorder 0.01 \
    --late 0.002 --late-hours 0.5 --malformed 0.001
readings=0 dup_readings=0
for kind in home solar battery; do
    per=1
    [[ $kind == battery ]] && per=3
    readings=$((readings + per * $(sim_count "$summary" valid "$kind")))
    dup_readings=$((dup_readings + per * $(sim_count "$summary" duplicates "$kind")))
done

make_database db
group=replay-$$
write_stream_config "$db" "$TEST_TMP/replay.conf" "$group"

# consume_all LOGNAME: one service life from the stored offsets to the end of the topics.
consume_all() {
    start_service "$TEST_TMP/replay.conf" "$1"
    wait_ready 60
    wait_caught_up "$db" "$group" 300
    stop_service
}
reset_offsets() {
    q "$db" "update solarx_meta.consumer_offsets set next_offset = 0
              where consumer_group = '$group'" >/dev/null
    assert_eq "$(q "$db" "select max(next_offset) from solarx_meta.consumer_offsets")" 0 \
        "offsets reset"
}

consume_all first
assert_eq "$(log_sum merged)" "$readings" "first pass: readings merged"
original=$(digest "$db")
t_first=$SECONDS

# ---- replay everything: nothing changes, everything is a duplicate ----------------------------
reset_offsets
consume_all replay-all
service_log_has 'event=partition_start .* offset=0 source=postgres' ||
    fail "the service did not start the partitions at PostgreSQL's offset 0"
assert_same_digest original "$original" replay-all "$(digest "$db")"
assert_eq "$(log_sum readings)" $((readings + dup_readings)) "replay: readings decoded"
assert_eq "$(log_sum duplicates)" $((readings + dup_readings)) "replay: readings counted as duplicates"
assert_eq "$(log_sum merged)" 0 "replay: readings merged"
for kind in home solar battery; do
    assert_eq "$(log_sum "raw_$kind")" 0 "replay: raw $kind rows inserted"
done
t_replay=$SECONDS

# ---- delete one hour of facts, replay: restored exactly ---------------------------------------
hour="date_key >= '2025-02-14 00:30:00+00' and date_key < '2025-02-14 01:30:00+00'"
deleted=$(q "$db" "select (select coalesce(sum(readings_count), 0) from solarx_wh.fact_home_power_readings where $hour)
                        + (select coalesce(sum(readings_count), 0) from solarx_wh.fact_solar_panel_power_readings where $hour)
                        + (select coalesce(sum(readings_count), 0) from solarx_wh.fact_battery_power_readings where $hour)")
((deleted > 0)) || fail "nothing to delete in the hour"
q "$db" "begin;
         delete from solarx_wh.fact_home_power_readings where $hour;
         delete from solarx_wh.fact_solar_panel_power_readings where $hour;
         delete from solarx_wh.fact_battery_power_readings where $hour;
         commit" >/dev/null
damaged=$(digest "$db")
[[ $damaged != "$original" ]] || fail "deleting an hour of facts did not change the digest"
reset_offsets
consume_all replay-restore
assert_same_digest original "$original" restored "$(digest "$db")"
assert_eq "$(log_sum merged)" "$deleted" "restore: readings merged (those of the deleted hour)"
for kind in home solar battery; do
    assert_eq "$(log_sum "raw_$kind")" 0 "restore: raw $kind rows inserted (they were still there)"
done
# The raw rows go by COPY, which meets the rows still stored: rolled back to its savepoint, the
# kind's rows are written again with ON CONFLICT DO NOTHING.
service_log_has 'event=raw_copy_conflict kind=' ||
    fail "restore: no event=raw_copy_conflict (the COPY should have met the stored raw rows)"

rows=$(awk '{ n += $2 } END { print n }' <<<"$original")
echo "PASS test_replay scale=$SOLARX_TEST_SCALE readings=$readings duplicates_in_topics=$dup_readings" \
    "rows=$rows replayed_as_duplicates=$((readings + dup_readings)) facts_deleted_readings=$deleted" \
    "first_s=$((t_first - started)) replay_s=$((t_replay - t_first)) restore_s=$((SECONDS - t_replay))" \
    "total_s=$((SECONDS - started))"
