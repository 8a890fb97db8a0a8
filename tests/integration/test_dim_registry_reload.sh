#!/usr/bin/env bash
# Issue 4, registry reload: dim_home follows the appliances file on SIGHUP. A changed rating opens
# exactly one new dim_home version (at load time, the file has no effective_from) and updates
# dim_home_appliances; an unchanged file changes nothing; a broken file is reported by name and
# the registry in use is kept, while the service goes on consuming; SIGTERM exits 0.
source "$(dirname "$0")/lib.sh"

[[ -x $SOLARX_BIN && -x $SOLARX_SIM ]] || fail "no solarx-stream / solarx-sim in $SOLARX_BUILD_DIR"
started=$SECONDS
APPLIANCES=$TEST_TMP/home_appliances.json
cp "$SOLARX_SOURCE_DIR/config/home_appliances_consumption.json" "$APPLIANCES"
sum_of() { # sum_of INDEX FILE: the sum of the appliances' consumption[INDEX]
    jq "[.[].consumption[$1]] | add" "$2"
}
min_sum=$(sum_of 0 "$APPLIANCES")
max_sum=$(sum_of 1 "$APPLIANCES")

# home1_versions DB: "min max start end current key" of home 1's versions, oldest first (epochs).
home1_versions() {
    q "$1" "select min_consumption_power_wh::float8 || ' ' || max_consumption_power_wh::float8
                   || ' ' || extract(epoch from start_date)::bigint || ' '
                   || coalesce(extract(epoch from end_date)::bigint::text, 'open') || ' '
                   || current_flag || ' ' || home_key
              from solarx_wh.dim_home where home_id = 1 order by start_date"
}

# wait_log PATTERN COUNT: waits until the current instance logged PATTERN COUNT times (60 s at
# most: a loaded machine is slow, not wrong).
wait_log() {
    local deadline=$((SECONDS + 60))
    until [[ $(service_log | grep -c -- "$1") -ge $2 ]]; do
        kill -0 "$SERVICE_PID" 2>/dev/null || fail "the service exited (waiting for $1)"
        ((SECONDS < deadline)) || fail "no $1 (x$2) in the log within 60 s"
        sleep 0.1
    done
}

create_topics dimreg
produce "$TEST_TMP/sim1.json" --homes 1 --minutes 1 --seed 3
db=$(new_database)
write_stream_config "$db" "$TEST_TMP/solarx.conf" "dimreg-$$" appliances_file="$APPLIANCES"
start_service "$TEST_TMP/solarx.conf"
wait_caught_up "$db" "dimreg-$$" 60

# --- first flush: one version of home 1, the sums of the file ---------------------------------
v1=$(home1_versions "$db")
read -r min1 max1 start1 end1 current1 key1 <<<"$v1"
assert_eq "$(wc -l <<<"$v1")" 1 "home 1 versions after the first flush"
assert_eq "$min1 $max1 $end1 $current1" "$min_sum $max_sum open true" "home 1's first version"
panels=$(q "$db" "select count(*) from solarx_wh.dim_solar_panel")
assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings
                      where home_key = $key1")" \
    "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings")" "home facts' key"

# --- a changed rating (Router max 20 -> 25): exactly one new version ------------------------
[[ $start1 =~ ^[0-9]+$ ]] || fail "home 1's first version has no start_date: $v1"
while (($(date +%s) <= start1)); do sleep 0.1; done # a later load time than the first version's
jq '.Router.consumption = [5, 25]' "$APPLIANCES" >"$APPLIANCES.new"
mv "$APPLIANCES.new" "$APPLIANCES"
hup_at=$(date +%s)
kill -HUP "$SERVICE_PID"
wait_log 'event=registry_reloaded' 1
deadline=$((SECONDS + 60))
until [[ $(home1_versions "$db" | wc -l) -ge 2 ]]; do
    ((SECONDS < deadline)) || fail "no new dim_home version within 60 s of SIGHUP"
    sleep 0.1
done
sleep 1 # and no more than one
v2=$(home1_versions "$db")
assert_eq "$(wc -l <<<"$v2")" 2 "home 1 versions after the change"
{
    read -r a_min a_max a_start a_end a_current a_key
    read -r b_min b_max b_start b_end b_current b_key
} <<<"$v2"
assert_eq "$a_min $a_max $a_start $a_current $a_key" "$min1 $max1 $start1 false $key1" \
    "the old version, closed"
assert_eq "$a_end" "$b_start" "the old version's end_date = the new version's start_date"
[[ $b_key =~ ^[0-9]+$ && $b_key != "$a_key" ]] || fail "the new version's key: $b_key"
assert_eq "$b_min $b_max $b_end $b_current" "$min_sum $((max_sum + 5)) open true" "the new version"
((b_start >= hup_at && b_start <= $(date +%s))) ||
    fail "the new version starts at $b_start, not at the reload ($hup_at)"
assert_eq "$(q "$db" "select min_consumption_power_wh::float8 || ' ' || max_consumption_power_wh::float8
                      from solarx_wh.dim_home_appliances where home_id = 1 and appliance = 'Router'")" \
    "5 25" "dim_home_appliances Router"
assert_eq "$(q "$db" "select count(*) from solarx_wh.dim_home_appliances where home_id = 1")" \
    "$(jq length "$APPLIANCES")" "dim_home_appliances rows"
assert_eq "$(q "$db" "select count(*) from solarx_wh.dim_solar_panel")" "$panels" \
    "dim_solar_panel rows (the panels did not change)"
assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings
                      where home_key <> $key1")" 0 \
    "home facts (event time 2025) still on the version in effect then"

# --- the same file again: nothing changes ---------------------------------------------------
kill -HUP "$SERVICE_PID"
wait_log 'event=registry_unchanged' 1
sleep 0.5
assert_eq "$(home1_versions "$db")" "$v2" "dim_home after an unchanged reload"

# --- a broken file: reported by name, the registry in use is kept, consumption goes on --------
printf '{"Router": {"consumption": [5, 25], "time": "0:00-24:00"}' >"$APPLIANCES"
kill -HUP "$SERVICE_PID"
wait_log 'event=registry_reload_failed' 1
[[ $(service_log | grep 'event=registry_reload_failed') == *"$APPLIANCES"* ]] ||
    fail "the reload failure does not name the file: $(service_log | grep registry_reload_failed)"
produce "$TEST_TMP/sim2.json" --homes 1 --minutes 1 --seed 3 --start "2025-02-14 01:00:00"
wait_caught_up "$db" "dimreg-$$" 60
kill -0 "$SERVICE_PID" || fail "the service stopped after a broken registry"
assert_eq "$(q "$db" "select count(*) from solarx_raw.home_power_readings")" 120 \
    "home readings merged before and after the broken reload"
assert_eq "$(q "$db" "select count(*) from solarx_wh.fact_home_power_readings
                      where date_key = '2025-02-14 01:00:00+00' and home_key = $key1")" 1 \
    "the new window's fact, on the version in effect at its time"
assert_eq "$(home1_versions "$db")" "$v2" "dim_home after a broken reload"
assert_eq "$(q "$db" "select max_consumption_power_wh::float8 from solarx_wh.dim_home_appliances
                      where home_id = 1 and appliance = 'Router'")" 25 \
    "dim_home_appliances after a broken reload"

stop_service

# --- an entry edited in place (same effective_from): the version keeps its start and key, and
# takes the new ratings -------------------------------------------------------------------------
DATED=$TEST_TMP/dated_appliances.json
echo '[{"home_id": 1, "effective_from": "2025-01-01 00:00:00",
        "appliances": {"Router": {"consumption": [5, 20], "time": "0:00-24:00"}}}]' >"$DATED"
db2=$(new_database)
write_stream_config "$db2" "$TEST_TMP/dated.conf" "dimreg-dated-$$" appliances_file="$DATED"
start_service "$TEST_TMP/dated.conf" dated
wait_caught_up "$db2" "dimreg-dated-$$" 60
dated_key=$(q "$db2" "select home_key from solarx_wh.dim_home where home_id = 1")
assert_eq "$(q "$db2" "select max_consumption_power_wh::float8 from solarx_wh.dim_home")" 20 "dated version"
sed -i 's/\[5, 20\]/[5, 25]/' "$DATED"
kill -HUP "$SERVICE_PID"
deadline=$((SECONDS + 60))
until [[ $(q "$db2" "select max_consumption_power_wh::float8 from solarx_wh.dim_home") == 25 ]]; do
    ((SECONDS < deadline)) || fail "dim_home kept the old rating of an entry edited in place: $(q "$db2" "select * from solarx_wh.dim_home")"
    sleep 0.2
done
assert_eq "$(q "$db2" "select count(*) || ' ' || min(home_key) || ' ' || min(start_date)::text from solarx_wh.dim_home")" \
    "1 $dated_key 2025-01-01 00:00:00+00" "one version, same key and start, new rating"
stop_service

echo "PASS: registry reload: home 1 max $max_sum -> $((max_sum + 5)) W in one new version" \
    "(start $(date -u -d "@$b_start" '+%F %T') UTC), unchanged and broken reloads kept 2" \
    "versions, 120 home readings merged; $((SECONDS - started)) s"
