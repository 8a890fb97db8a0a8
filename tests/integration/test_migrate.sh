#!/usr/bin/env bash
# migrate against real PostgreSQL: the whole schema, idempotent (identical pg_dump --schema-only
# after a second run), and a tampered migration refused without changing anything.
source "$(dirname "$0")/lib.sh"

db=$(new_database)
conf=$TEST_TMP/solarx.conf
write_config "$db" "$conf"

"$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/first.log" || { cat "$TEST_TMP/first.log"; fail "first migrate"; }
files=$(ls "$SOLARX_SOURCE_DIR"/migrations/*.sql | wc -l)
assert_eq "$(q "$db" 'select count(*) from solarx_meta.schema_migrations')" "$files" "ledger rows"
# pg_dump >= 15.14 brackets its output with a random \restrict key: not part of the schema.
dump_schema() {
    pg_dump --schema-only -d "$db" | grep -Ev '^\\(un)?restrict '
}
dump_schema >"$TEST_TMP/schema1.sql"

"$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/second.log" || fail "second migrate"
grep -q 'event=migrate_done applied=0' "$TEST_TMP/second.log" || fail "second run applied something"
dump_schema >"$TEST_TMP/schema2.sql"
diff -u "$TEST_TMP/schema1.sql" "$TEST_TMP/schema2.sql" || fail "schema changed on the second run"

# Every table and key DESIGN §3 names.
expect_table() {
    [[ $(q "$db" "select to_regclass('$1') is not null") == t ]] || fail "missing table $1"
}
for t in solarx_raw.home_power_readings solarx_raw.solar_panel_readings solarx_raw.battery_readings \
    solarx_raw.dead_letters solarx_wh.dim_date solarx_wh.dim_home_appliances solarx_wh.dim_home \
    solarx_wh.dim_solar_panel solarx_wh.dim_battery solarx_wh.fact_home_power_readings \
    solarx_wh.fact_solar_panel_power_readings solarx_wh.fact_battery_power_readings \
    solarx_meta.consumer_offsets solarx_meta.schema_migrations solarx_wh.v_energy_balance \
    solarx_wh.v_daily_summary solarx_wh.v_battery_state_of_charge solarx_wh.v_data_completeness; do
    expect_table "$t"
done
pk() {
    q "$db" "select string_agg(a.attname, ',' order by array_position(i.indkey, a.attnum))
               from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
              where i.indrelid = '$1'::regclass and i.indisprimary"
}
assert_eq "$(pk solarx_raw.home_power_readings)" "home_id,ts" "home raw PK"
assert_eq "$(pk solarx_raw.solar_panel_readings)" "panel_id,ts" "solar raw PK"
assert_eq "$(pk solarx_raw.battery_readings)" "home_id,battery_id,ts" "battery raw PK"
assert_eq "$(pk solarx_wh.fact_home_power_readings)" "home_id,date_key" "home fact PK"
assert_eq "$(pk solarx_wh.fact_solar_panel_power_readings)" "solar_panel_id,date_key" "solar fact PK"
assert_eq "$(pk solarx_wh.fact_battery_power_readings)" "home_id,battery_id,date_key" "battery fact PK"
assert_eq "$(pk solarx_meta.consumer_offsets)" "consumer_group,topic,partition" "offsets PK"
assert_eq "$(pk solarx_wh.dim_date)" "date_key" "dim_date PK"
for t in home_power_readings solar_panel_readings battery_readings; do
    assert_eq "$(q "$db" "select partstrat from pg_partitioned_table where partrelid = 'solarx_raw.$t'::regclass")" \
        r "$t is range-partitioned"
done
assert_eq "$(q "$db" "select pg_get_indexdef('solarx_raw.dead_letters_kafka_key'::regclass)")" \
    'CREATE UNIQUE INDEX dead_letters_kafka_key ON solarx_raw.dead_letters USING btree (topic, partition, "offset") WHERE (source IS NULL)' \
    "dead_letters unique on (topic, partition, offset)"
for col in year quarter month week day hour minute interval_of_day is_weekend; do
    assert_eq "$(q "$db" "select count(*) from information_schema.columns where table_schema='solarx_wh' and table_name='dim_date' and column_name='$col'")" 1 "dim_date.$col"
done

# A migration edited after it was applied is refused, naming the file, and nothing changes.
cp -r "$SOLARX_SOURCE_DIR/migrations" "$TEST_TMP/migrations"
echo "-- edited after the fact" >>"$TEST_TMP/migrations/0002_raw_readings.sql"
echo "CREATE TABLE solarx_meta.must_not_exist (x int);" >"$TEST_TMP/migrations/0099_new.sql"
if SOLARX_SOLARX_MIGRATIONS_DIR=$TEST_TMP/migrations "$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/tampered.log"; then
    fail "a tampered migration was accepted"
fi
grep -q '0002_raw_readings.sql' "$TEST_TMP/tampered.log" || { cat "$TEST_TMP/tampered.log"; fail "error does not name the file"; }
grep -q 'must not change' "$TEST_TMP/tampered.log" || fail "error does not say why"
assert_eq "$(q "$db" "select to_regclass('solarx_meta.must_not_exist') is null")" t "nothing applied after a refusal"

# A configuration error exits 78 with file and line.
printf '[solarx]\nbogus_key = 1\n' >"$TEST_TMP/bad.conf"
set +e
"$SOLARX_BIN" migrate -c "$TEST_TMP/bad.conf" 2>"$TEST_TMP/bad.log"
rc=$?
set -e
assert_eq "$rc" 78 "exit status on a bad configuration"
grep -q "bad.conf:2: \[solarx\] unknown key \"bogus_key\"" "$TEST_TMP/bad.log" || fail "bad config message: $(cat "$TEST_TMP/bad.log")"
echo "PASS test_migrate"
