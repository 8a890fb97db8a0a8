#!/usr/bin/env bash
# The analytics views (migrations/0007) on a hand-written fixture, against real PostgreSQL:
# tests/data/analytics/*.jsonl (2 homes, an outage, a battery upgrade) are loaded with
# `solarx-stream ingest`, then every column of every row of every view is compared with numbers
# computed by hand below (the arithmetic is in the comments).
source "$(dirname "$0")/lib.sh"

export PGTZ=UTC # timestamptz printed in UTC: "2025-03-01 09:00:00+00"
fixture=$SOLARX_SOURCE_DIR/tests/data/analytics

db=$(new_database)
write_config "$db" "$TEST_TMP/analytics.conf"
sed -i 's/^source_timezone = UTC$/source_timezone = Europe\/Berlin\nmigrate_on_start = true/' \
    "$TEST_TMP/analytics.conf"
"$SOLARX_BIN" ingest -c "$TEST_TMP/analytics.conf" "$fixture"/battery_data.jsonl \
    "$fixture"/home_energy_consumption.jsonl "$fixture"/solar_energy_data.jsonl \
    2>"$TEST_TMP/ingest.log" || {
    cat "$TEST_TMP/ingest.log" >&2
    fail "ingest of the fixture"
}
grep -q 'event=ingest_done messages=22 readings=22 merged=22 duplicates=0 dead_letters=0' \
    "$TEST_TMP/ingest.log" || fail "ingest: $(tail -n 1 "$TEST_TMP/ingest.log")"

# expect_rows NAME QUERY: QUERY's rows ('|'-separated, NULL as an empty field) must equal stdin.
expect_rows() {
    local got want
    want=$(cat)
    got=$(psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -d "$db" -c "$2") || fail "$1: query failed"
    if [[ $got != "$want" ]]; then
        diff -u <(echo "$want") <(echo "$got") | sed '1,2d' >&2 || true
        fail "$1: rows differ from the hand-computed ones (- expected, + got)"
    fi
    echo "ok: $1 ($(wc -l <<<"$want") rows)"
}

# Local windows (Europe/Berlin) in UTC: home 1 on 2025-03-01 (CET, +1) 10:00..11:00 local =
# 09:00..10:00Z; home 2 on 2025-03-31 (CEST, +2) 23:30, 23:45 = 21:30Z, 21:45Z and
# 2025-04-01 00:00 local = 2025-03-31 22:00Z (a local April window on a UTC March day).
# The calendar runs from each home's first to its last window; 10:30 local (09:30Z) has no fact
# row at all: has_data false, its local date from the dim_date row of 09:15Z plus 15 minutes.
expect_rows v_home_windows "
    select home_id, date_key, window_seconds, local_date, has_data
      from solarx_wh.v_home_windows order by home_id, date_key" <<'ROWS'
1|2025-03-01 09:00:00+00|900|2025-03-01|t
1|2025-03-01 09:15:00+00|900|2025-03-01|t
1|2025-03-01 09:30:00+00|900|2025-03-01|f
1|2025-03-01 09:45:00+00|900|2025-03-01|t
1|2025-03-01 10:00:00+00|900|2025-03-01|t
2|2025-03-31 21:30:00+00|900|2025-03-31|t
2|2025-03-31 21:45:00+00|900|2025-03-31|t
2|2025-03-31 22:00:00+00|900|2025-04-01|t
ROWS

# dim_battery from the stream: 10 kWh from the first reading (10:14:59 local = 09:14:59Z) to
# the last one with 10 kWh (10:45:00 = 09:45:00Z); 15 kWh from 10:59:59 local (09:59:59Z) on.
expect_rows dim_battery "
    select battery_id, capacity_kwh, start_date, last_seen, end_date, current_flag
      from solarx_wh.dim_battery order by start_date" <<'ROWS'
1|10.000000|2025-03-01 09:14:59+00|2025-03-01 09:45:00+00|2025-03-01 09:59:59+00|f
1|15.000000|2025-03-01 09:59:59+00|2025-03-01 10:14:59+00||t
ROWS

# Battery 1's calendar: stored energy as of each window's last reading, and its change against
# the previous window's.
#   09:00  5000 (last reading 10:14:59 local)   first window: no previous, change unknown
#   09:15  5001.25 - 5000    = +1.25  -> charge 1.25, discharge 0
#   09:30  no reading                 -> change unknown (previous_energy 5001.25 is still shown)
#   09:45  5000 (10:59:59 local)      -> previous window has no reading: unknown
#   10:00  4999 - 5000       = -1     -> charge 0, discharge 1
expect_rows v_battery_windows "
    select home_id, battery_id, date_key, window_seconds, readings_count, current_energy_wh,
           previous_energy_wh, stored_energy_change_wh, battery_charge_wh, battery_discharge_wh
      from solarx_wh.v_battery_windows order by home_id, battery_id, date_key" <<'ROWS'
1|1|2025-03-01 09:00:00+00|900|1|5000.000000||||
1|1|2025-03-01 09:15:00+00|900|2|5001.250000|5000.000000|1.250000|1.250000|0.000000
1|1|2025-03-01 09:30:00+00|900|0||5001.250000|||
1|1|2025-03-01 09:45:00+00|900|2|5000.000000||||
1|1|2025-03-01 10:00:00+00|900|1|4999.000000|5000.000000|-1.000000|0.000000|1.000000
ROWS

# State of charge against the dim_battery version in effect at the window's last reading:
#   09:00  5000    / (10 * 1000) = 50.00 %
#   09:15  5001.25 / 10000       = 50.0125  -> 50.01 %
#   09:45  last reading 09:59:59Z is in the 15 kWh version: 5000 / 15000 = 33.333.. -> 33.33 %
#   10:00  4999 / 15000 = 33.3266..  -> 33.33 %
# version_start names the dim_battery row battery_key points at.
expect_rows v_battery_state_of_charge "
    select v.home_id, v.battery_id, v.date_key, v.last_ts,
           (select d.start_date from solarx_wh.dim_battery d where d.battery_key = v.battery_key)
               as version_start,
           v.current_energy_wh, v.capacity_kwh, v.state_of_charge_pct, v.previous_energy_wh,
           v.battery_charge_wh, v.battery_discharge_wh, v.min_energy_wh, v.max_energy_wh,
           v.status, v.is_charging
      from solarx_wh.v_battery_state_of_charge v order by v.home_id, v.battery_id, v.date_key" <<'ROWS'
1|1|2025-03-01 09:00:00+00|2025-03-01 09:14:59+00|2025-03-01 09:14:59+00|5000.000000|10.000000|50.00||||5000.000000|5000.000000|ideal|f
1|1|2025-03-01 09:15:00+00|2025-03-01 09:29:59+00|2025-03-01 09:14:59+00|5001.250000|10.000000|50.01|5000.000000|1.250000|0.000000|5000.500000|5001.250000|charging|t
1|1|2025-03-01 09:45:00+00|2025-03-01 09:59:59+00|2025-03-01 09:59:59+00|5000.000000|15.000000|33.33||||5000.000000|5001.000000|discharging|f
1|1|2025-03-01 10:00:00+00|2025-03-01 10:14:59+00|2025-03-01 09:59:59+00|4999.000000|15.000000|33.33|5000.000000|0.000000|1.000000|4999.000000|4999.000000|discharging|f
ROWS

# Energy balance, per home and calendar window. grid = consumption - generation + charge -
# discharge; import = max(0, grid), export = max(0, -grid); self_sufficiency =
# 1 - min(import, consumption) / consumption; net = generation - consumption.
# home 1:
#   09:00  4.0 used, 3.25 made; battery change unknown -> charge, discharge, grid, ss NULL;
#          net 3.25 - 4.0 = -0.75; readings 2 home, 1 solar, 1 battery; completeness 2/900
#   09:15  3.0, 1.0 + 0.5 = 1.5, charge 1.25: grid 3.0 - 1.5 + 1.25 = 2.75 -> import 2.75,
#          export 0, ss 1 - 2.75/3 = 0.0833.. -> 0.083333; net -1.5
#   09:30  the outage: 0 used, 0 made, battery unknown -> NULL; no readings
#   09:45  0.5, 2.0, battery unknown -> NULL; net 1.5
#   10:00  1.0, 4.0, discharge 1: grid 1 - 4 + 0 - 1 = -4 -> import 0, export 4, ss 1 - 0/1 = 1
# home 2 (no battery: charge and discharge 0):
#   21:30  4.0, 0.75: grid 3.25 -> import 3.25, ss 1 - 3.25/4 = 0.1875; net -3.25
#   21:45  0, 0.5: grid -0.5 -> export 0.5; ss NULL (nothing consumed); net 0.5
#   22:00  1.25, no solar (0): grid 1.25 -> import 1.25, ss 1 - 1.25/1.25 = 0; net -1.25
expect_rows v_energy_balance "
    select home_id, date_key, local_date, window_seconds, has_data, consumption_wh, generation_wh,
           battery_charge_wh, battery_discharge_wh, grid_import_wh, grid_export_wh,
           self_sufficiency, net_wh, home_readings, solar_readings, battery_readings,
           consumption_completeness
      from solarx_wh.v_energy_balance order by home_id, date_key" <<'ROWS'
1|2025-03-01 09:00:00+00|2025-03-01|900|t|4.000000|3.250000||||||-0.750000|2|1|1|0.00222
1|2025-03-01 09:15:00+00|2025-03-01|900|t|3.000000|1.500000|1.250000|0.000000|2.750000|0.000000|0.083333|-1.500000|1|2|2|0.00111
1|2025-03-01 09:30:00+00|2025-03-01|900|f|0.000000|0.000000||||||0.000000|0|0|0|
1|2025-03-01 09:45:00+00|2025-03-01|900|t|0.500000|2.000000||||||1.500000|1|1|2|0.00111
1|2025-03-01 10:00:00+00|2025-03-01|900|t|1.000000|4.000000|0.000000|1.000000|0.000000|4.000000|1.000000|3.000000|1|1|1|0.00111
2|2025-03-31 21:30:00+00|2025-03-31|900|t|4.000000|0.750000|0.000000|0.000000|3.250000|0.000000|0.187500|-3.250000|2|1|0|0.00222
2|2025-03-31 21:45:00+00|2025-03-31|900|t|0.000000|0.500000|0.000000|0.000000|0.000000|0.500000||0.500000|1|1|0|0.00111
2|2025-03-31 22:00:00+00|2025-04-01|900|t|1.250000|0.000000|0.000000|0.000000|1.250000|0.000000|0.000000|-1.250000|1|0|0|0.00111
ROWS

# Daily rollup (local days). Energies are sums over the day's windows (NULLs skipped);
# self_sufficiency = 1 - sum(min(import, consumption)) / sum(consumption) over the windows whose
# import is known; consumption_completeness = home readings / seconds of the calendar windows.
# home 1, 2025-03-01: 5 windows, 1 missing (09:30), 3 unbalanced (09:00, 09:30, 09:45);
#   consumption 4 + 3 + 0 + 0.5 + 1 = 8.5; generation 3.25 + 1.5 + 0 + 2 + 4 = 10.75;
#   charge 1.25, discharge 1, import 2.75 + 0 = 2.75, export 0 + 4 = 4;
#   ss over 09:15 and 10:00: 1 - (2.75 + 0) / (3 + 1) = 0.3125; net 10.75 - 8.5 = 2.25;
#   peak 4.0; completeness (2 + 1 + 0 + 1 + 1) / (5 * 900) = 0.001111 -> 0.00111
# home 2, 2025-03-31: 21:30 and 21:45: consumption 4, generation 1.25, import 3.25, export 0.5,
#   ss 1 - (3.25 + 0) / (4 + 0) = 0.1875, net -2.75, peak 4, completeness 3 / 1800 = 0.00167
# home 2, 2025-04-01: 22:00Z alone: 1.25, 0, import 1.25, ss 0, net -1.25, completeness 1/900
expect_rows v_daily_summary "
    select home_id, local_date, windows, missing_windows, unbalanced_windows, consumption_wh,
           generation_wh, battery_charge_wh, battery_discharge_wh, grid_import_wh,
           grid_export_wh, self_sufficiency, net_wh, peak_window_consumption_wh,
           consumption_completeness
      from solarx_wh.v_daily_summary order by home_id, local_date" <<'ROWS'
1|2025-03-01|5|1|3|8.500000|10.750000|1.250000|1.000000|2.750000|4.000000|0.312500|2.250000|4.000000|0.00111
2|2025-03-31|2|0|0|4.000000|1.250000|0.000000|0.000000|3.250000|0.500000|0.187500|-2.750000|4.000000|0.00167
2|2025-04-01|1|0|0|1.250000|0.000000|0.000000|0.000000|1.250000|0.000000|0.000000|-1.250000|1.250000|0.00111
ROWS

# Monthly rollup (local months): each home-month here holds exactly one of the days above, so
# the numbers are the daily ones; home 2's local April 00:00 window (a UTC March instant) is in
# April.
expect_rows v_monthly_summary "
    select home_id, local_month, windows, missing_windows, unbalanced_windows, consumption_wh,
           generation_wh, battery_charge_wh, battery_discharge_wh, grid_import_wh,
           grid_export_wh, self_sufficiency, net_wh, peak_window_consumption_wh,
           consumption_completeness
      from solarx_wh.v_monthly_summary order by home_id, local_month" <<'ROWS'
1|2025-03-01|5|1|3|8.500000|10.750000|1.250000|1.000000|2.750000|4.000000|0.312500|2.250000|4.000000|0.00111
2|2025-03-01|2|0|0|4.000000|1.250000|0.000000|0.000000|3.250000|0.500000|0.187500|-2.750000|4.000000|0.00167
2|2025-04-01|1|0|0|1.250000|0.000000|0.000000|0.000000|1.250000|0.000000|0.000000|-1.250000|1.250000|0.00111
ROWS

# Completeness per device over its home's calendar: readings / 900 s, rounded to 5 decimals
# (1/900 = 0.00111, 2/900 = 0.00222); a window without the device's fact row counts 0 and is
# missing: every device of home 1 at 09:30 (the outage) and panel 24 at 22:00.
expect_rows v_data_completeness "
    select device_kind, home_id, device_id, date_key, readings_count, window_seconds,
           completeness, missing
      from solarx_wh.v_data_completeness order by device_kind, home_id, device_id, date_key" <<'ROWS'
battery|1|1|2025-03-01 09:00:00+00|1|900|0.00111|f
battery|1|1|2025-03-01 09:15:00+00|2|900|0.00222|f
battery|1|1|2025-03-01 09:30:00+00|0|900|0.00000|t
battery|1|1|2025-03-01 09:45:00+00|2|900|0.00222|f
battery|1|1|2025-03-01 10:00:00+00|1|900|0.00111|f
home|1|1|2025-03-01 09:00:00+00|2|900|0.00222|f
home|1|1|2025-03-01 09:15:00+00|1|900|0.00111|f
home|1|1|2025-03-01 09:30:00+00|0|900|0.00000|t
home|1|1|2025-03-01 09:45:00+00|1|900|0.00111|f
home|1|1|2025-03-01 10:00:00+00|1|900|0.00111|f
home|2|2|2025-03-31 21:30:00+00|2|900|0.00222|f
home|2|2|2025-03-31 21:45:00+00|1|900|0.00111|f
home|2|2|2025-03-31 22:00:00+00|1|900|0.00111|f
solar|1|14|2025-03-01 09:00:00+00|1|900|0.00111|f
solar|1|14|2025-03-01 09:15:00+00|2|900|0.00222|f
solar|1|14|2025-03-01 09:30:00+00|0|900|0.00000|t
solar|1|14|2025-03-01 09:45:00+00|1|900|0.00111|f
solar|1|14|2025-03-01 10:00:00+00|1|900|0.00111|f
solar|2|24|2025-03-31 21:30:00+00|1|900|0.00111|f
solar|2|24|2025-03-31 21:45:00+00|1|900|0.00111|f
solar|2|24|2025-03-31 22:00:00+00|0|900|0.00000|t
ROWS

# Latest reading per device. Home 1's day (2025-03-01) is more than raw_retention_days (7)
# behind the newest reading (2025-03-31): its raw rows are gone, so the second's own energy is
# NULL while the facts still give the time and the accumulated counter. The battery's value is
# its stored energy, from the fact.
#   battery 1: 11:14:59 local = 10:14:59Z, 4999, discharging
#   home 1:    11:00:00 local = 10:00:00Z, accumulated 108.5
#   home 2:    00:00:00 local = 22:00:00Z, 1.25 Wh, accumulated 55.25
#   panel 14:  11:00:00 local = 10:00:00Z, accumulated 210.75
#   panel 24:  23:50:00 local = 21:50:00Z, 0.5 Wh, accumulated 11.25
expect_rows v_latest_reading "
    select device_kind, home_id, device_id, date_key, last_reading_ts, energy_wh,
           accumulated_wh, status
      from solarx_wh.v_latest_reading order by device_kind, home_id, device_id" <<'ROWS'
battery|1|1|2025-03-01 10:00:00+00|2025-03-01 10:14:59+00|4999.000000||discharging
home|1|1|2025-03-01 10:00:00+00|2025-03-01 10:00:00+00||108.500000|
home|2|2|2025-03-31 22:00:00+00|2025-03-31 22:00:00+00|1.250000|55.250000|
solar|1|14|2025-03-01 10:00:00+00|2025-03-01 10:00:00+00||210.750000|
solar|2|24|2025-03-31 21:45:00+00|2025-03-31 21:50:00+00|0.500000|11.250000|
ROWS

# Exact types: energies numeric(28,6), shares and percentages with fixed decimals.
expect_rows column_types "
    select table_name || '.' || column_name || ' ' || data_type || '(' || numeric_precision
           || ',' || numeric_scale || ')'
      from information_schema.columns
     where table_schema = 'solarx_wh' and table_name in ('v_energy_balance', 'v_daily_summary')
       and column_name in ('consumption_wh', 'grid_import_wh', 'self_sufficiency')
     order by 1" <<'ROWS'
v_daily_summary.consumption_wh numeric(28,6)
v_daily_summary.grid_import_wh numeric(28,6)
v_daily_summary.self_sufficiency numeric(7,6)
v_energy_balance.consumption_wh numeric(28,6)
v_energy_balance.grid_import_wh numeric(28,6)
v_energy_balance.self_sufficiency numeric(7,6)
ROWS

# Every SQL query of the Grafana dashboard runs on this warehouse (Grafana's macros expanded as
# Grafana would for home 1 and a time range around the fixture) and returns rows.
dashboard=$SOLARX_SOURCE_DIR/docker/grafana/dashboards/solarx-stream.json
queries=$(jq -c '[.. | objects | (.rawSql? // empty)] + [.templating.list[].query]' "$dashboard")
n=$(jq length <<<"$queries")
for ((i = 0; i < n; i++)); do
    query=$(jq -r ".[$i]" <<<"$queries")
    query=${query//\$home/1}
    query=$(sed -E "s/\\\$__timeFilter\(([^()]*(\([^()]*\))?[^()]*)\)/(\1 BETWEEN '2025-02-01T00:00:00Z' AND '2025-05-01T00:00:00Z')/g" <<<"$query")
    rows=$(q "$db" "select count(*) from ($query) dashboard_query") ||
        fail "dashboard query failed: $query"
    ((rows > 0)) || fail "dashboard query returned no rows on the fixture: $query"
done
((n >= 6)) || fail "only $n dashboard queries found"
echo "ok: the dashboard's $n SQL queries run on the fixture"

echo "PASS: analytics views equal the hand-computed fixture"
