#!/usr/bin/env bash
# The window cache under other writers. The service holds the windows of 00:00-00:15 in memory
# (window cache) when `ingest` writes more seconds into the same windows from dump files the
# service never reads; the service's next flush of those windows finds their fact rows' versions
# moved on (event=window_cache_stale), fails as transient, re-reads them and merges again: the
# warehouse equals one built by the service and the ingest one after the other. Then an operator
# deletes a fact row the service holds: the deleted seconds do not come back from the cache; the
# window restarts from the readings that arrive after (README, "Window cache").
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

HOMES=$(by_scale 4 2)
create_topics wcache
part() { # part NAME START: five minutes of every home from START (event time), seeded by NAME
    produce "$TEST_TMP/$1.json" --homes "$HOMES" --start "2025-02-14 $2" --minutes 5 \
        --seed "$(cksum <<<"$1" | cut -d' ' -f1)"
}
# ingest_conf DB OUT: a config for `ingest` of the seed-named dumps into DB.
ingest_conf() {
    write_stream_config "$1" "$2" "unused-$$"
    sed -i '/^\[topics\]$/,$d' "$2"
    printf '[topics]\nhome = home_energy_consumption\nsolar = solar_energy_data\nbattery = battery_data\n' \
        >>"$2"
}

part part1 00:00:00
dumps=$TEST_TMP/dumps # 00:05-00:10, for `ingest` only
"$SOLARX_SIM" --homes "$HOMES" --start "2025-02-14 00:05:00" --minutes 5 --seed 62 \
    --output-dir "$dumps" >"$TEST_TMP/dumps.json" 2>"$TEST_TMP/dumps.log" ||
    fail "solarx-sim --output-dir: $(cat "$TEST_TMP/dumps.log")"

# ---- the service holds the windows; ingest writes them behind its back ---------------------------
make_database db
write_stream_config "$db" "$TEST_TMP/service.conf" "wcache-$$"
start_service "$TEST_TMP/service.conf" service
wait_ready 60
wait_caught_up "$db" "wcache-$$" 120
ingest_conf "$db" "$TEST_TMP/ingest.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest.conf" "$dumps" 2>"$TEST_TMP/ingest.log" ||
    { tail -n 20 "$TEST_TMP/ingest.log" >&2; fail "ingest into the service's database"; }
service_log_has 'event=window_cache_stale' && fail "a stale window before anyone wrote behind the cache"
part part3 00:10:00
wait_caught_up "$db" "wcache-$$" 120
assert_eq "$(q "$db" "select min(readings_count) || ' ' || max(readings_count) || ' ' || count(*)
                        from solarx_wh.fact_home_power_readings")" "900 900 $HOMES" \
    "every home's window counts the 900 seconds of its three parts"
# Any kind: the first flush after part 3 may hold no home reading, and after the first stale
# window the next flushes read every window (no second stale line).
service_log_has 'event=window_cache_stale kind=[a-z]* windows=' ||
    fail "the service did not notice the rows ingest wrote: $(service_log | grep -c flush_committed) flushes"
service_log_has 'event=flush_retried readings=[0-9]* reason=window_cache_stale retry=at_once' ||
    fail "the stale flush was not retried at once"
errors=$(service_log | grep level=error || true)
[[ -z $errors ]] || fail "errors in the log (a stale window is not one): $errors"
stop_service

# ---- the reference: the service, then the ingest, one after the other ----------------------------
make_database ref
write_stream_config "$ref" "$TEST_TMP/ref.conf" "wcache-ref-$$"
start_service "$TEST_TMP/ref.conf" reference
wait_ready 60
wait_caught_up "$ref" "wcache-ref-$$" 120
stop_service
ingest_conf "$ref" "$TEST_TMP/ingest-ref.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/ingest-ref.conf" "$dumps" 2>"$TEST_TMP/ingest-ref.log" ||
    { tail -n 20 "$TEST_TMP/ingest-ref.log" >&2; fail "ingest into the reference"; }
assert_same_digest "one-after-the-other" "$(digest "$ref")" "ingest-behind-the-cache" "$(digest "$db")"

# ---- an operator deletes a fact row the service holds ---------------------------------------------
start_service "$TEST_TMP/service.conf" service
wait_ready 60
part part4 00:15:00
wait_caught_up "$db" "wcache-$$" 120
window="home_id = 1 and date_key = '2025-02-14 00:15:00+00'"
assert_eq "$(q "$db" "select readings_count from solarx_wh.fact_home_power_readings where $window")" \
    300 "home 1's window at 00:15 after part 4"
q "$db" "delete from solarx_wh.fact_home_power_readings where $window"
part part5 00:20:00
wait_caught_up "$db" "wcache-$$" 120
service_log_has 'event=window_cache_stale kind=home windows=1 ' ||
    fail "the service did not notice the deleted row: $(service_log | grep window_cache)"
assert_eq "$(q "$db" "select readings_count || ' ' || first_ts from solarx_wh.fact_home_power_readings
                       where $window")" "300 2025-02-14 00:20:00+00" \
    "the deleted seconds do not come back from the cache; part 5's are counted"
assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings
                       where date_key = '2025-02-14 00:15:00+00' and readings_count <> 600")" 1 \
    "the other homes' windows count parts 4 and 5"
stop_service

echo "PASS test_window_cache_writers homes=$HOMES"
