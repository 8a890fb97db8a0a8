#!/usr/bin/env bash
# Raw archive before retention: with raw_archive_dir set, a raw day partition that falls behind
# raw_retention_days is written out as gzip'd Solar-X dumps (kafka_log_<topic>_<day>.log.gz)
# and only then dropped; `ingest` of the archive into a fresh database restores exactly the
# warehouse that the day's original dumps build. Both ways in: `ingest` (archived inline) and
# the service (archived by its archive thread).
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

HOMES=$(by_scale 3 2)
# Day 13 (the day to archive) and day 14, then day 15, which moves the horizon (retention 1 day)
# to 2025-02-14 00:00 UTC.
run1=(--homes "$HOMES" --start "2025-02-13 23:30:00" --minutes "$(by_scale 60 40)" --seed 5
    --duplicates 0.01 --disorder 0.01)
run2=(--homes "$HOMES" --start "2025-02-15 00:00:00" --minutes 10 --seed 6)
"$SOLARX_SIM" "${run1[@]}" --output-dir "$TEST_TMP/in1" --daily-files >/dev/null 2>&1 || fail "sim run1"
"$SOLARX_SIM" "${run2[@]}" --output-dir "$TEST_TMP/in2" --daily-files >/dev/null 2>&1 || fail "sim run2"

seed_topics() {
    sed -i '/^\[topics\]$/,$d' "$1"
    printf '[topics]\nhome = home_energy_consumption\nsolar = solar_energy_data\nbattery = battery_data\n' >>"$1"
}
partitions_of_day() { # DB YYYYMMDD: raw partitions of that day
    q "$1" "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'solarx_raw' and c.relname ~ '_$2\$'"
}
# fact_digest DB WHERE: the fact tables' rows matching WHERE, without the columns digest leaves
# out (write times, source coordinates).
fact_digest() {
    local t cols
    for t in fact_home_power_readings fact_solar_panel_power_readings fact_battery_power_readings; do
        cols=$(q "$1" "select string_agg(quote_ident(attname), ', ' order by attnum)
                         from pg_attribute where attrelid = 'solarx_wh.$t'::regclass and attnum > 0
                          and not attisdropped and attname not in ($DIGEST_EXCLUDED)")
        echo "$t $(q "$1" "select count(*) || ' ' || md5(coalesce(string_agg(r, E'\n' order by r), ''))
                           from (select row($cols)::text as r from solarx_wh.$t where $2) x")"
    done
}
archive_names="kafka_log_battery_data_2025-02-13.log.gz
kafka_log_home_energy_consumption_2025-02-13.log.gz
kafka_log_solar_energy_data_2025-02-13.log.gz"

# ---- ingest with an archive: day 13 is archived, then dropped --------------------------------
make_database adb
write_config "$adb" "$TEST_TMP/a.conf"
seed_topics "$TEST_TMP/a.conf"
sed -i "s|^\[solarx\]\$|[solarx]\nmigrate_on_start = true\nraw_retention_days = 1\nraw_archive_dir = $TEST_TMP/archive|" \
    "$TEST_TMP/a.conf"
# An earlier archive of the same day (one line of it) is extended, never replaced.
mkdir "$TEST_TMP/archive"
earlier=$(sed -n 1p "$TEST_TMP/in1/kafka_log_home_energy_consumption_2025-02-13.log")
gzip -c <<<"$earlier" >"$TEST_TMP/archive/kafka_log_home_energy_consumption_2025-02-13.log.gz"
"$SOLARX_BIN" ingest -c "$TEST_TMP/a.conf" "$TEST_TMP/in1" "$TEST_TMP/in2" 2>"$TEST_TMP/a.log" ||
    { tail -n 20 "$TEST_TMP/a.log" >&2; fail "ingest with raw_archive_dir"; }
grep -q 'event=raw_archived day=2025-02-13 .*partitions_dropped=3' "$TEST_TMP/a.log" ||
    fail "day 13 was not archived and dropped: $(grep -E 'raw_archive|error' "$TEST_TMP/a.log")"
assert_eq "$(partitions_of_day "$adb" 20250213)" 0 "raw partitions of 2025-02-13 after the archive"
assert_eq "$(partitions_of_day "$adb" 20250214)" 3 "raw partitions of 2025-02-14 (inside retention)"
assert_eq "$(ls -A "$TEST_TMP/archive")" "$archive_names" "archive files (and no temporary left)"
for f in "$TEST_TMP"/archive/*; do gzip -t "$f" || fail "$f is not a whole gzip file"; done
assert_eq "$(zcat "$TEST_TMP/archive/kafka_log_home_energy_consumption_2025-02-13.log.gz" | sed -n 1p)" \
    "$earlier" "the earlier archive's line, kept first"
# Battery lines regroup every battery of a home and second, with home_id, as the producers do.
first=$(zcat "$TEST_TMP/archive/kafka_log_battery_data_2025-02-13.log.gz" | sed -n 1p)
jq -e '(.batteries | keys) == ["battery_1", "battery_2", "battery_3"] and .home_id == 1
       and .time_stamp == "2025-02-13 23:30:00" and .batteries.battery_1.capacity_kwh == 12' \
    <<<"$first" >/dev/null || fail "battery archive line: $first"

# ---- the round trip: the archive restores what the day's original dumps build ---------------
make_database rdb
write_config "$rdb" "$TEST_TMP/r.conf"
seed_topics "$TEST_TMP/r.conf"
sed -i 's/^\[solarx\]$/[solarx]\nmigrate_on_start = true/' "$TEST_TMP/r.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/r.conf" "$TEST_TMP/archive" 2>"$TEST_TMP/r.log" ||
    { tail -n 20 "$TEST_TMP/r.log" >&2; fail "ingest of the archive"; }
assert_eq "$(q "$rdb" 'select count(*) from solarx_raw.dead_letters')" 0 "dead letters from the archive"

make_database odb
sed "s/dbname=$rdb/dbname=$odb/" "$TEST_TMP/r.conf" >"$TEST_TMP/o.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/o.conf" "$TEST_TMP"/in1/kafka_log_*_2025-02-13.log \
    2>"$TEST_TMP/o.log" || { tail -n 20 "$TEST_TMP/o.log" >&2; fail "ingest of the original day"; }
restored=$(digest "$rdb")
assert_same_digest original-dumps "$(digest "$odb")" archive "$restored"
# ... and the archived database still holds the same facts of that day.
day13="date_key < '2025-02-14 00:00:00+00'"
assert_same_digest archived-db "$(fact_digest "$adb" "$day13")" restored "$(fact_digest "$rdb" "$day13")"

# ---- the service: its archive thread archives and drops the day ------------------------------
create_topics rawarchive
produce "$TEST_TMP/p1.json" "${run1[@]}"
make_database sdb
write_stream_config "$sdb" "$TEST_TMP/s.conf" "rawarchive-$$" raw_retention_days=1 \
    "raw_archive_dir=$TEST_TMP/service-archive"
start_service "$TEST_TMP/s.conf" service
wait_ready 60
wait_caught_up "$sdb" "rawarchive-$$" 300 # every reading of day 13 stored before the horizon moves
produce "$TEST_TMP/p2.json" "${run2[@]}"
wait_caught_up "$sdb" "rawarchive-$$" 300
deadline=$((SECONDS + 120))
until [[ $(partitions_of_day "$sdb" 20250213) == 0 ]]; do
    ((SECONDS < deadline)) || { service_log | tail -n 20 >&2; fail "the service did not archive and drop day 13"; }
    sleep 0.5
done
stop_service
service_log_has 'event=raw_archived day=2025-02-13 ' || fail "no event=raw_archived in the service log"
assert_eq "$(ls -A "$TEST_TMP/service-archive" | sed 's/-[0-9]*-\(home\|solar\|battery\)_/-T-\1_/')" \
    "kafka_log_rawarchive-T-battery_2025-02-13.log.gz
kafka_log_rawarchive-T-home_2025-02-13.log.gz
kafka_log_rawarchive-T-solar_2025-02-13.log.gz" "the service's archive files"
make_database s2db
write_stream_config "$s2db" "$TEST_TMP/s2.conf" "unused-$$"
"$SOLARX_BIN" ingest -c "$TEST_TMP/s2.conf" "$TEST_TMP/service-archive" 2>"$TEST_TMP/s2.log" ||
    { tail -n 20 "$TEST_TMP/s2.log" >&2; fail "ingest of the service's archive"; }
assert_same_digest archive-by-ingest "$restored" archive-by-service "$(digest "$s2db")"

echo "PASS test_raw_archive homes=$HOMES archived_lines=$(zcat "$TEST_TMP"/archive/*.gz | wc -l)"
