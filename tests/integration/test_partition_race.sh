#!/usr/bin/env bash
# Raw day partitions, created race-safely for exactly the days that hold data
# (solarx_raw.ensure_partitions_for_days, migration 0005), against real PostgreSQL:
#   1. sparse days: a far-future day creates its partitions alone, never the days in between;
#   2. two sessions racing on one day: the second waits for the first's COMMIT and succeeds;
#   3. a creator outside the function (an operator, or an older service version) holding an
#      uncommitted CREATE: the function's duplicate-table guard turns the collision into success;
#   4. eight concurrent callers over the same days: all succeed, each partition is created once.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

started=$SECONDS
db=$(new_database)
write_config "$db" "$TEST_TMP/solarx.conf"
"$SOLARX_BIN" migrate -c "$TEST_TMP/solarx.conf" >"$TEST_TMP/migrate.log" 2>&1 ||
    fail "migrate: $(cat "$TEST_TMP/migrate.log")"

partitions() { # the raw day partitions of home_power_readings, as YYYYMMDD,...
    q "$db" "select coalesce(string_agg(right(c.relname, 8), ',' order by c.relname), '')
               from pg_inherits i join pg_class c on c.oid = i.inhrelid
              where i.inhparent = 'solarx_raw.home_power_readings'::regclass"
}
ensure() { # DAYS...: one call in its own session; prints how many partitions it created
    local days
    days=$(printf "'%s'," "$@")
    q "$db" "select solarx_raw.ensure_partitions_for_days(array[${days%,}]::date[])"
}

# ---- 1. sparse days -------------------------------------------------------------------------
assert_eq "$(ensure 2025-02-14 2036-12-02 2025-02-14)" 6 "partitions created for two days"
assert_eq "$(partitions)" "20250214,20361202" "only the days that hold data"
assert_eq "$(ensure 2025-02-14)" 0 "an existing day is not created again"

# ---- 2. two sessions racing on one day --------------------------------------------------------
# A creates 2025-03-01 and keeps its transaction open for 3 s; B asks for the same day 1 s later.
psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" >"$TEST_TMP/a.out" 2>&1 <<'SQL' &
BEGIN;
SELECT solarx_raw.ensure_partitions_for_days(ARRAY['2025-03-01']::date[]);
SELECT pg_sleep(3);
COMMIT;
SQL
a=$!
sleep 1
b_start=$SECONDS
b_out=$(ensure 2025-03-01 2025-03-02 2>&1) || fail "session B failed while A created the day: $b_out"
b_waited=$((SECONDS - b_start))
wait "$a" || fail "session A failed: $(cat "$TEST_TMP/a.out")"
assert_eq "$(head -n 1 "$TEST_TMP/a.out")" 3 "session A created the day's three partitions"
assert_eq "$b_out" 3 "session B created only 2025-03-02 (2025-03-01 was A's)"
((b_waited >= 1)) || fail "session B did not wait for A's commit (${b_waited}s)"

# ---- 3. a creator that does not take the function's lock --------------------------------------
psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" >"$TEST_TMP/c.out" 2>&1 <<'SQL' &
BEGIN;
CREATE TABLE solarx_raw.home_power_readings_20250401 PARTITION OF solarx_raw.home_power_readings
    FOR VALUES FROM ('2025-04-01 00:00:00+00') TO ('2025-04-02 00:00:00+00');
SELECT pg_sleep(3);
COMMIT;
SQL
c=$!
sleep 1
d_out=$(ensure 2025-04-01 2>&1) || fail "the function failed on a concurrent outside creation: $d_out"
wait "$c" || fail "the outside creator failed: $(cat "$TEST_TMP/c.out")"
assert_eq "$d_out" 2 "the other two tables' partitions (the home one was the outside creator's)"

# ---- 4. eight concurrent callers --------------------------------------------------------------
pids=()
for i in 1 2 3 4 5 6 7 8; do
    ensure 2025-05-01 2025-05-02 2025-05-03 2025-05-04 2025-05-05 >"$TEST_TMP/many-$i.out" 2>&1 &
    pids+=($!)
done
total=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "concurrent caller $((i + 1)) failed: $(cat "$TEST_TMP/many-$((i + 1)).out")"
    total=$((total + $(cat "$TEST_TMP/many-$((i + 1)).out")))
done
assert_eq "$total" 15 "partitions created by eight concurrent callers over five days"
assert_eq "$(partitions)" "20250214,20250301,20250302,20250401,20250501,20250502,20250503,20250504,20250505,20361202" \
    "day partitions"

echo "PASS test_partition_race sparse_days=2 racing_session_waited_s=$b_waited concurrent_callers=8" \
    "total_s=$((SECONDS - started))"
