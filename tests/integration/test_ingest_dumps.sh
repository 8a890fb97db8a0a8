#!/usr/bin/env bash
# `ingest` of Solar-X's own daily dumps, named exactly as the seed writes them
# (kafka_log_<topic>_<YYYY-MM-DD>.log, some gzip'd, one with CRLF line ends, one without a final
# newline), three topics and two days, given as a mix of files and a directory in ONE call,
# builds the same warehouse (raw, facts, dimensions from the registries) as the service consuming
# the same simulated stream from Kafka; a second ingest changes nothing. Off a terminal the
# progress is logfmt event=progress lines; on one (script(1)) a live line rewritten in place.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

HOMES=$(by_scale 4 2)
MINUTES=$(by_scale 120 40)
# The stream crosses midnight: half of it on each day.
start=$(printf '2025-02-13 %02d:%02d:00' $(((1440 - MINUTES / 2) / 60)) $(((1440 - MINUTES / 2) % 60)))
sim_args=(--homes "$HOMES" --start "$start" --minutes "$MINUTES" --seed 31 --duplicates 0.01
    --disorder 0.01 --malformed 0.002)

# ---- the dumps -----------------------------------------------------------------------------
dumps=$TEST_TMP/dumps
"$SOLARX_SIM" "${sim_args[@]}" --output-dir "$dumps" --daily-files >"$TEST_TMP/sim-files.json" \
    2>"$TEST_TMP/sim-files.log" || fail "solarx-sim --daily-files: $(cat "$TEST_TMP/sim-files.log")"
expected_names="kafka_log_battery_data_2025-02-13.log
kafka_log_battery_data_2025-02-14.log
kafka_log_home_energy_consumption_2025-02-13.log
kafka_log_home_energy_consumption_2025-02-14.log
kafka_log_solar_energy_data_2025-02-13.log
kafka_log_solar_energy_data_2025-02-14.log"
assert_eq "$(ls "$dumps")" "$expected_names" "the seed's daily dump names"
gzip "$dumps/kafka_log_battery_data_2025-02-13.log" "$dumps/kafka_log_solar_energy_data_2025-02-14.log"
sed -i 's/$/\r/' "$dumps/kafka_log_home_energy_consumption_2025-02-13.log" # written on Windows
truncate -s -1 "$dumps/kafka_log_battery_data_2025-02-14.log"               # no final newline
mkdir "$dumps/day2"
mv "$dumps"/kafka_log_*_2025-02-14.log* "$dumps/day2/"
echo "not a dump" >"$dumps/day2/README.md"

# ---- the Kafka path: the same stream, consumed by the service ---------------------------------
create_topics ingestdumps
produce "$TEST_TMP/sim-kafka.json" "${sim_args[@]}"
assert_eq "$(jq -c 'del(.start)' "$TEST_TMP/sim-kafka.json" | sed "s/ingestdumps-$$-//g")" \
    "$(jq -c 'del(.start)' "$TEST_TMP/sim-files.json" | sed 's/home_energy_consumption/home/g;
      s/solar_energy_data/solar/g; s/battery_data/battery/g')" "the two sim runs emit the same"
make_database kdb
write_stream_config "$kdb" "$TEST_TMP/kafka.conf" "ingestdumps-$$"
start_service "$TEST_TMP/kafka.conf" service
wait_ready 60
wait_caught_up "$kdb" "ingestdumps-$$" 300
stop_service

# ---- ingest: day 1 as files (mixed .gz and plain), day 2 as a directory, in one call ------------
make_database idb
write_stream_config "$idb" "$TEST_TMP/ingest.conf" "unused-$$" progress_interval_ms=100
# The dumps carry the seed's topic names: [topics] says so (the Kafka run's names are its own).
sed -i '/^\[topics\]$/,$d' "$TEST_TMP/ingest.conf"
printf '[topics]\nhome = home_energy_consumption\nsolar = solar_energy_data\nbattery = battery_data\n' \
    >>"$TEST_TMP/ingest.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$dumps/kafka_log_solar_energy_data_2025-02-13.log" \
    "$dumps/day2" "$dumps/kafka_log_battery_data_2025-02-13.log.gz" \
    "$dumps/kafka_log_home_energy_consumption_2025-02-13.log" 2>"$TEST_TMP/ingest1.log" ||
    { tail -n 20 "$TEST_TMP/ingest1.log" >&2; fail "ingest of the dumps"; }

# Files in a stable order: by date, then topic.
order=$(grep -o 'event=file_ingested file=[^ ]*' "$TEST_TMP/ingest1.log" | sed 's/.*file=//; s|.*/||')
assert_eq "$order" "kafka_log_battery_data_2025-02-13.log.gz
kafka_log_home_energy_consumption_2025-02-13.log
kafka_log_solar_energy_data_2025-02-13.log
kafka_log_battery_data_2025-02-14.log
kafka_log_home_energy_consumption_2025-02-14.log
kafka_log_solar_energy_data_2025-02-14.log.gz" "ingest order"
grep -q 'event=ingest_skipped file=.*README.md reason=not_a_dump_name' "$TEST_TMP/ingest1.log" ||
    fail "README.md in the directory was not reported as skipped"
grep -q 'event=progress command=ingest unit=bytes done=[0-9]* total=[0-9]* pct=' "$TEST_TMP/ingest1.log" ||
    fail "no event=progress line off a terminal"
grep -q 'event=ingest_done ' "$TEST_TMP/ingest1.log" || fail "no final summary"

# Dead letters name their file and line.
malformed=$(jq '.malformed | add' "$TEST_TMP/sim-files.json")
assert_eq "$(q "$idb" "select count(*) from solarx_raw.dead_letters
                        where source like '$dumps/%kafka_log_%' and \"partition\" = -1 and \"offset\" > 0")" \
    "$malformed" "dead letters with file and line"
read -r src line < <(q "$idb" "select source || ' ' || \"offset\" from solarx_raw.dead_letters
                                where source like '%.log' order by 1 limit 1" | tr -d '\r')
want=$(sed -n "${line}p" "$src" | tr -d '\r')
assert_eq "$(q "$idb" "select convert_from(payload, 'UTF8') from solarx_raw.dead_letters
                        where source = '$src' and \"offset\" = $line")" "$want" \
    "the dead letter is line $line of $src"

# ---- the same warehouse as the Kafka path ------------------------------------------------------
# Everything but the dead letters (their coordinates differ by nature: partition/offset vs
# file/line), which are compared by count.
no_dead_letters() { grep -v '^solarx_raw.dead_letters '; }
kafka_digest=$(digest "$kdb" | no_dead_letters)
ingest_digest=$(digest "$idb" | no_dead_letters)
assert_same_digest kafka "$kafka_digest" ingest "$ingest_digest"
assert_eq "$(q "$idb" 'select count(*) from solarx_raw.dead_letters')" \
    "$(q "$kdb" 'select count(*) from solarx_raw.dead_letters')" "dead letters"
# The registries were loaded: dimensions exist and the facts point at them.
[[ $(q "$idb" 'select count(*) from solarx_wh.dim_home') -gt 0 ]] || fail "no dim_home after ingest"
[[ $(q "$idb" 'select count(*) from solarx_wh.dim_home_appliances') -gt 0 ]] || fail "no dim_home_appliances"
[[ $(q "$idb" 'select count(*) from solarx_wh.dim_solar_panel') -gt 0 ]] || fail "no dim_solar_panel"
assert_eq "$(q "$idb" 'select count(*) from solarx_wh.fact_home_power_readings
                        where home_id = 1 and home_key is null')" 0 "home 1 facts without home_key"

# ---- again: nothing changes ---------------------------------------------------------------------
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$dumps" "$dumps/day2" 2>"$TEST_TMP/ingest2.log" ||
    { tail -n 20 "$TEST_TMP/ingest2.log" >&2; fail "second ingest"; }
grep -q 'event=ingest_done .* merged=0 ' "$TEST_TMP/ingest2.log" ||
    fail "the second ingest merged something: $(grep event=ingest_done "$TEST_TMP/ingest2.log")"
assert_same_digest first "$(digest "$idb")" second "$(digest "$idb")"
assert_eq "$(digest "$idb" | no_dead_letters)" "$ingest_digest" "a second ingest changed the warehouse"

# A file whose name gives no topic needs --topic; with it, it loads (as the topic given).
cp "$dumps/day2/kafka_log_battery_data_2025-02-14.log" "$TEST_TMP/mystery.log"
if "$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$TEST_TMP/mystery.log" 2>"$TEST_TMP/mystery.log.err"; then
    fail "a file of unknown topic was ingested"
fi
grep -q "mystery.log: cannot tell its topic" "$TEST_TMP/mystery.log.err" || fail "error does not name the file"
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" --topic battery "$TEST_TMP/mystery.log" \
    2>"$TEST_TMP/mystery2.log" || fail "ingest --topic battery mystery.log"
grep -q 'event=file_ingested file=.*mystery.log .*topic=battery_data' "$TEST_TMP/mystery2.log" ||
    fail "--topic did not apply to the unnamed file"

# ---- on a terminal: a live line rewritten in place -----------------------------------------------
script -q -e -c "'$SOLARX_BIN' ingest -c '$TEST_TMP/ingest.conf' '$dumps/day2'" \
    "$TEST_TMP/tty.out" >/dev/null 2>&1 || fail "ingest under script(1)"
grep -q $'\r\e\\[Kingest .*%.* / .*/s  ETA ' "$TEST_TMP/tty.out" || fail "no live progress line on a terminal"
if grep -q 'event=progress' "$TEST_TMP/tty.out"; then
    fail "logfmt progress lines on a terminal"
fi

echo "PASS test_ingest_dumps files=6 messages=$(jq .total "$TEST_TMP/sim-files.json") dead_letters=$malformed"
