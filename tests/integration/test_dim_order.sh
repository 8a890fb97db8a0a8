#!/usr/bin/env bash
# Issue 4, property test against real PostgreSQL: the SCD2 histories (dim_battery from the
# stream, dim_home / dim_solar_panel from the registries), the facts' keys and every other table
# are a function of the SET of readings. dim_order_check writes one reading set (2 homes x 3
# batteries over 2 hours, the upgraded batteries changing 4-5 times, with gaps, plus home and
# solar readings and exact duplicates) through the real flush path in >= 20 orders and random
# batchings, and compares each result with the in-order single-batch run and with the versions
# the sorted readings define.
source "$(dirname "$0")/lib.sh"

CHECK=${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/dim_order_check
ORDERS=${DIM_ORDERS:-20}
SEED=${DIM_SEED:-4}
[[ -x $CHECK ]] || fail "no dim_order_check at $CHECK"
[[ -x $SOLARX_BIN ]] || fail "no solarx-stream at $SOLARX_BIN"

db=$(new_database)
conf=$TEST_TMP/solarx.conf
write_config "$db" "$conf"
"$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/migrate.log" || {
    cat "$TEST_TMP/migrate.log" >&2
    fail "migrate"
}

# Registries with history inside the readings' two hours (2025-02-14 00:00 .. 02:00 UTC):
# home 1 changes at 01:00 (Router 20 -> 25 W max), panel 4 at 00:45 (10 -> 12 kWh); home 2 and
# panels 1..3 carry no effective_from (the driver loads them with load time 01:30).
appliances=$SOLARX_SOURCE_DIR/config/home_appliances_consumption.json
jq '[{home_id: 1, effective_from: "2025-02-13 00:00:00", appliances: .},
     {home_id: 1, effective_from: "2025-02-14 01:00:00",
      appliances: (.Router.consumption = [5, 25])},
     {home_id: 2, appliances: .}]' "$appliances" >"$TEST_TMP/appliances.json"
jq 'map(if .id == 4 then .effective_from = "2025-02-13 00:00:00" else . end)
    + [.[] | select(.id == 4) | .capacity_kwh = 12 | .effective_from = "2025-02-14T00:45:00Z"]' \
    "$SOLARX_SOURCE_DIR/config/solar_panels.json" >"$TEST_TMP/panels.json"

start=$(date +%s)
"$CHECK" -c "$conf" --conninfo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db" \
    --appliances "$TEST_TMP/appliances.json" --panels "$TEST_TMP/panels.json" \
    --orders "$ORDERS" --seed "$SEED" --max-batch 5000 | tee "$TEST_TMP/check.out" ||
    fail "dim_order_check found differences (see above)"
summary=$(tail -n 1 "$TEST_TMP/check.out")
[[ $summary =~ ^orders\ ([0-9]+),\ batches\ ([0-9]+) ]] || fail "no summary line: $summary"
[[ ${BASH_REMATCH[1]} -ge 20 ]] || fail "only ${BASH_REMATCH[1]} orders"

# The final state, read back independently of the driver: the upgraded batteries' histories.
assert_eq "$(q "$db" "SELECT string_agg(capacity_kwh::int || '@' || to_char(start_date AT TIME ZONE
    'UTC', 'HH24:MI:SS'), ' ' ORDER BY start_date) FROM solarx_wh.dim_battery
    WHERE home_id = 1 AND battery_id = 1")" \
    "12@00:00:00 15@00:30:00 12@00:46:00 15@01:06:40 12@01:06:41 20@01:17:30" \
    "dim_battery history of home 1 battery 1"
assert_eq "$(q "$db" "SELECT count(*) FROM solarx_wh.dim_battery WHERE current_flag")" 6 \
    "one current version per battery"
assert_eq "$(q "$db" "SELECT count(*) FROM solarx_wh.dim_battery a JOIN solarx_wh.dim_battery b
    USING (home_id, battery_id) WHERE b.start_date = a.end_date")" \
    "$(q "$db" "SELECT count(*) FROM solarx_wh.dim_battery WHERE NOT current_flag")" \
    "every closed version ends where the next starts"
assert_eq "$(q "$db" "SELECT count(*) FROM solarx_wh.dim_home WHERE home_id = 1")" 2 \
    "dim_home versions of home 1"

echo "PASS: dim order independence: $summary; wall $(($(date +%s) - start)) s"
