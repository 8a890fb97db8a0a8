#!/usr/bin/env bash
# Least privilege against real PostgreSQL and Kafka: `migrate` as the migration role
# (solarx_migrate, a member of solarx_owner) gives every schema object to solarx_owner; the
# service runs as the runtime role solarx_app through a simulated stream that crosses into new
# days (partitions created by the SECURITY DEFINER functions) and past the raw retention (old
# day partitions dropped), exactly; then solarx_app is shown unable to do DDL or to touch
# anything outside its grants, `migrate` (and `run` with migrate_on_start) as solarx_app fail
# with a clear message before changing anything, and a later migration's objects belong to
# solarx_owner and are granted to solarx_app by the default privileges.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

OWNER=solarx_owner
APP=solarx_app
SCHEMAS="'solarx_raw', 'solarx_wh', 'solarx_meta'"

# as_app DB SQL: psql as the runtime role (prints the output, fails like psql).
as_app() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$1" -c "$2" 2>&1
}

# deny DB WHAT SQL ERROR_REGEX: the runtime role's attempt fails with ERROR_REGEX.
deny() {
    local out
    if out=$(as_app "$1" "$3"); then
        fail "$APP could $2 ($3): $out"
    fi
    grep -Eq "$4" <<<"$out" || fail "$APP, $2: expected /$4/, got: $out"
    echo "ok: $APP cannot $2: $(head -n 1 <<<"$out")"
}

# not_owned DB: "kind name owner" of every object in the solarx schemas not owned by solarx_owner.
not_owned() {
    q "$1" "select 'schema ' || nspname || ' ' || nspowner::regrole from pg_namespace
             where nspname in ($SCHEMAS) and nspowner <> '$OWNER'::regrole
            union all
            select 'relation ' || c.oid::regclass || ' ' || c.relowner::regrole from pg_class c
              join pg_namespace n on n.oid = c.relnamespace
             where n.nspname in ($SCHEMAS) and c.relowner <> '$OWNER'::regrole
            union all
            select 'routine ' || p.oid::regprocedure || ' ' || p.proowner::regrole from pg_proc p
              join pg_namespace n on n.oid = p.pronamespace
             where n.nspname in ($SCHEMAS) and p.proowner <> '$OWNER'::regrole"
}

# raw_days DB: the day suffixes of the raw day partitions, one line per table and day.
raw_days() {
    q "$1" "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
             where i.inhparent = 'solarx_raw.home_power_readings'::regclass order by 1" |
        sed 's/^home_power_readings_//'
}

# ---- migrate as the migration role --------------------------------------------------------------
create_topics lp
make_database db
group=lp-$$
conf=$TEST_TMP/lp.conf
write_stream_config "$db" "$conf" "$group" raw_retention_days=1
sed -i 's/^migrate_on_start = true$/migrate_on_start = false/' "$conf"
grep -q '^conninfo = .* user=solarx_app ' "$conf" || fail "write_config does not run as solarx_app"

"$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/migrate.log" || {
    cat "$TEST_TMP/migrate.log" >&2
    fail "migrate as the migration role"
}
grep -q 'event=migration_applied version=8 name=least_privilege .* role=solarx_migrate' \
    "$TEST_TMP/migrate.log" || fail "0008 did not run as solarx_migrate: $(cat "$TEST_TMP/migrate.log")"
assert_eq "$(not_owned "$db")" "" "objects of the solarx schemas not owned by $OWNER after migrate"
"$SOLARX_BIN" migrate -c "$conf" 2>"$TEST_TMP/migrate2.log" || fail "second migrate"
grep -q 'event=migrate_done applied=0' "$TEST_TMP/migrate2.log" || fail "second migrate applied something"

# The partition functions: SECURITY DEFINER, owned by solarx_owner, a pinned search_path,
# EXECUTE for solarx_app and not for PUBLIC.
for fn in 'solarx_raw.ensure_day_partitions(timestamptz,timestamptz)' \
    'solarx_raw.ensure_partitions_for_days(date[])' 'solarx_raw.drop_partitions_before(timestamptz)'; do
    if [[ $(q "$db" "select to_regprocedure('$fn') is null") == t ]]; then
        [[ $fn == *ensure_partitions_for_days* ]] && continue # only in trees with 0005
        fail "function $fn is missing"
    fi
    assert_eq "$(q "$db" "select prosecdef || ' ' || proowner::regrole || ' ' || array_to_string(proconfig, ';')
                            from pg_proc where oid = '$fn'::regprocedure")" \
        "true $OWNER search_path=pg_catalog, pg_temp" "$fn: SECURITY DEFINER, owner, search_path"
    assert_eq "$(q "$db" "select count(*) from pg_proc p, aclexplode(p.proacl) a
                           where p.oid = '$fn'::regprocedure and a.grantee = 0")" 0 "$fn: PUBLIC may not execute"
    assert_eq "$(q "$db" "select has_function_privilege('$APP', '$fn', 'EXECUTE')")" t "$fn: $APP may execute"
    echo "ok: $fn is SECURITY DEFINER, owned by $OWNER, search_path pinned, EXECUTE for $APP only"
done

# ---- the service as the runtime role: a new day, then retention ---------------------------------
# Phase 1 crosses midnight into 2025-02-15; phase 2 brings 2025-02-16/17, so with a retention of
# one day the partitions of the 14th and 15th are dropped while the service runs.
minutes=$(by_scale 90 40)
produce "$TEST_TMP/sim1.json" --homes 2 --seed 8 --start "2025-02-14 23:40:00" --minutes "$minutes" \
    --duplicates 0.001 --malformed 0.0005
start_service "$conf"
wait_ready
wait_caught_up "$db" "$group"
days=$(raw_days "$db" | tr '\n' ' ')
assert_eq "$days" "20250214 20250215 " "raw day partitions after the first day"

produce "$TEST_TMP/sim2.json" --homes 2 --seed 9 --start "2025-02-16 23:40:00" --minutes "$minutes" \
    --duplicates 0.001 --malformed 0.0005
wait_caught_up "$db" "$group"
sessions=$(q "$db" "select string_agg(distinct usename, ',') from pg_stat_activity
                     where datname = current_database() and application_name = 'solarx-stream'")
assert_eq "$sessions" "$APP" "roles of the service's PostgreSQL sessions"
stop_service
if service_log | grep -Ei 'permission denied|must be owner|flush_failed'; then
    fail "the service hit a privilege error"
fi
days=$(raw_days "$db" | tr '\n' ' ')
assert_eq "$days" "20250216 20250217 " "raw day partitions after retention dropped the 14th and 15th"
assert_eq "$(not_owned "$db")" "" "objects not owned by $OWNER after the service created partitions"
echo "ok: the service as $APP created day partitions 20250215..17 and dropped 20250214..15"

# Exact: every valid reading is in a fact; the raw rows kept are those of the kept days.
for kind in home solar battery; do
    want=$(($(sim_count "$TEST_TMP/sim1.json" valid "$kind") + $(sim_count "$TEST_TMP/sim2.json" valid "$kind")))
    case $kind in
    home) fact=solarx_wh.fact_home_power_readings raw=solarx_raw.home_power_readings ;;
    solar) fact=solarx_wh.fact_solar_panel_power_readings raw=solarx_raw.solar_panel_readings ;;
    battery) # a battery message holds 3 batteries
        fact=solarx_wh.fact_battery_power_readings raw=solarx_raw.battery_readings want=$((3 * want))
        ;;
    esac
    assert_eq "$(q "$db" "select sum(readings_count) from $fact")" "$want" "$kind readings in facts"
    assert_eq "$(q "$db" "select count(*) from $raw")" \
        "$(q "$db" "select sum(readings_count) from $fact where date_key >= '2025-02-16'")" \
        "$kind raw rows of the kept days"
done
malformed=$(($(jq -r '[.malformed[]] | add // 0' "$TEST_TMP/sim1.json") + $(jq -r '[.malformed[]] | add // 0' "$TEST_TMP/sim2.json")))
assert_eq "$(q "$db" 'select count(*) from solarx_raw.dead_letters')" "$malformed" "dead letters"
echo "ok: facts hold every valid reading, raw rows exactly the kept days, $malformed dead letters"

# Direct access to a partition the SECURITY DEFINER function created (retention, archives).
part=solarx_raw.home_power_readings_20250217
assert_eq "$(as_app "$db" "select count(*) > 0 from $part")" t "$APP reads $part directly"
as_app "$db" "begin; insert into $part (home_id, ts, consumption_wh, accumulated_wh)
              values (99, '2025-02-17 12:00:00+00', 1, 1); delete from $part where home_id = 99;
              rollback" >/dev/null || fail "$APP cannot write $part directly"
echo "ok: $APP reads and writes $part directly"

# ---- no DDL, nothing outside the grants ---------------------------------------------------------
deny "$db" "create a table in solarx_raw" "create table solarx_raw.evil (x int)" \
    'permission denied for schema solarx_raw'
deny "$db" "create a day partition itself" \
    "create table solarx_raw.home_power_readings_20300101 partition of solarx_raw.home_power_readings
       for values from ('2030-01-01 00:00+00') to ('2030-01-02 00:00+00')" \
    'permission denied for schema solarx_raw'
deny "$db" "drop a fact table" "drop table solarx_wh.fact_home_power_readings" \
    'must be owner of table fact_home_power_readings'
deny "$db" "drop a day partition itself" "drop table $part" \
    'must be owner of table home_power_readings_20250217'
deny "$db" "alter a dimension table" "alter table solarx_wh.dim_date add column evil int" \
    'must be owner of table dim_date'
deny "$db" "alter the offsets table" "alter table solarx_meta.consumer_offsets drop column updated_at" \
    'must be owner of table consumer_offsets'
deny "$db" "create an index" "create index evil on solarx_wh.fact_home_power_readings (home_key)" \
    'must be owner of table fact_home_power_readings'
deny "$db" "truncate a fact table" "truncate solarx_wh.fact_home_power_readings" \
    'permission denied for table fact_home_power_readings'
deny "$db" "replace a partition function" \
    "create or replace function solarx_raw.drop_partitions_before(p_horizon timestamptz)
       returns integer language sql as 'select 0'" \
    'permission denied for schema solarx_raw|must be owner of function drop_partitions_before'
deny "$db" "make a partition function run as itself" \
    "alter function solarx_raw.ensure_day_partitions(timestamptz, timestamptz) security invoker" \
    'must be owner of function (solarx_raw\.)?ensure_day_partitions'
deny "$db" "create a function in solarx_wh" \
    "create function solarx_wh.evil() returns int language sql as 'select 1'" \
    'permission denied for schema solarx_wh'
deny "$db" "create a view in solarx_wh" "create view solarx_wh.evil as select 1" \
    'permission denied for schema solarx_wh'
deny "$db" "create a schema" "create schema evil" "permission denied for database"
deny "$db" "create a table in public" "create table public.evil (x int)" 'permission denied for schema public'
deny "$db" "become the owner" "set role $OWNER" "permission denied to set role"
deny "$db" "rewrite the migrations ledger" "delete from solarx_meta.schema_migrations" \
    'permission denied for table schema_migrations'
deny "$db" "add to the migrations ledger" \
    "insert into solarx_meta.schema_migrations (version, name, checksum) values (999, 'x', 'x')" \
    'permission denied for table schema_migrations'
as_app "$db" "select count(*) from solarx_meta.schema_migrations" >/dev/null ||
    fail "$APP cannot read the migrations ledger"
q "$db" "create table public.not_granted (secret text); insert into public.not_granted values ('s')"
deny "$db" "read a table outside its grants" "select * from public.not_granted" \
    'permission denied for table not_granted'
deny "$db" "write a table outside its grants" "insert into public.not_granted values ('x')" \
    'permission denied for table not_granted'
deny "$db" "read the role catalog's passwords" "select rolpassword from pg_authid" \
    'permission denied for table pg_authid'
deny "$db" "read server files" "select pg_read_file('PG_VERSION')" \
    'permission denied for function pg_read_file'

# ---- migrate as the runtime role fails, clearly, and changes nothing ----------------------------
make_database fresh
write_config "$fresh" "$TEST_TMP/app-only.conf"
sed -i '/^migrate_conninfo = /d' "$TEST_TMP/app-only.conf"
expect_refused() { # WHAT LOG REGEX
    grep -Eq "$3" "$2" || fail "$1: message does not say it: $(cat "$2")"
    grep -q 'migrate_conninfo' "$2" || fail "$1: message does not name migrate_conninfo: $(cat "$2")"
    echo "ok: $1 refused: $(grep -m1 'may not run migrations' "$2")"
}
if "$SOLARX_BIN" migrate -c "$TEST_TMP/app-only.conf" 2>"$TEST_TMP/app-fresh.log"; then
    fail "migrate as $APP succeeded on an empty database"
fi
expect_refused "migrate as $APP on an empty database" "$TEST_TMP/app-fresh.log" \
    "role \"$APP\" may not run migrations: it has no CREATE privilege on database \"$fresh\""
assert_eq "$(q "$fresh" "select count(*) from pg_namespace where nspname in ($SCHEMAS)")" 0 \
    "schemas created by a refused migrate"

write_config "$db" "$TEST_TMP/app-migrated.conf"
sed -i '/^migrate_conninfo = /d' "$TEST_TMP/app-migrated.conf"
ledger=$(q "$db" "select string_agg(version || ':' || checksum, ',' order by version) from solarx_meta.schema_migrations")
if "$SOLARX_BIN" migrate -c "$TEST_TMP/app-migrated.conf" 2>"$TEST_TMP/app-migrated.log"; then
    fail "migrate as $APP succeeded on a migrated database"
fi
expect_refused "migrate as $APP on a migrated database" "$TEST_TMP/app-migrated.log" \
    "role \"$APP\" may not run migrations: it is not a member of the schemas' owner: solarx_meta owned by $OWNER"

# `run` with migrate_on_start and no migration role: stops at start-up with the same reason.
rc=0
SOLARX_SOLARX_MIGRATE_ON_START=true timeout 60 "$SOLARX_BIN" run -c "$TEST_TMP/app-migrated.conf" \
    2>"$TEST_TMP/app-run.log" || rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "run with migrate_on_start as $APP: exit $rc"
expect_refused "run with migrate_on_start as $APP" "$TEST_TMP/app-run.log" "role \"$APP\" may not run migrations"
assert_eq "$(q "$db" "select string_agg(version || ':' || checksum, ',' order by version) from solarx_meta.schema_migrations")" \
    "$ledger" "ledger after the refused attempts"

# ---- a later migration: owned by solarx_owner, granted to solarx_app by default privileges ------
cp -r "$SOLARX_SOURCE_DIR/migrations" "$TEST_TMP/migrations"
cat >"$TEST_TMP/migrations/0999_later.sql" <<'SQL'
CREATE TABLE solarx_wh.later_table (x integer PRIMARY KEY);
CREATE FUNCTION solarx_wh.later_function() RETURNS integer LANGUAGE sql AS 'SELECT 1';
SQL
SOLARX_SOLARX_MIGRATIONS_DIR=$TEST_TMP/migrations "$SOLARX_BIN" migrate -c "$conf" \
    2>"$TEST_TMP/later.log" || {
    cat "$TEST_TMP/later.log" >&2
    fail "migrate of a later migration"
}
grep -q "event=migration_applied version=999 name=later .* role=$OWNER" "$TEST_TMP/later.log" ||
    fail "the later migration did not run as $OWNER: $(cat "$TEST_TMP/later.log")"
assert_eq "$(not_owned "$db")" "" "objects not owned by $OWNER after a later migration"
as_app "$db" "insert into solarx_wh.later_table values (1); select x from solarx_wh.later_table;
              delete from solarx_wh.later_table" >/dev/null || fail "$APP cannot use a later table"
assert_eq "$(as_app "$db" "select solarx_wh.later_function()")" 1 "$APP executes a later function"
assert_eq "$(q "$db" "select count(*) from pg_proc p, aclexplode(p.proacl) a
                       where p.oid = 'solarx_wh.later_function()'::regprocedure and a.grantee = 0")" 0 \
    "PUBLIC may not execute a later function"
deny "$db" "drop a later table" "drop table solarx_wh.later_table" 'must be owner of table later_table'
echo "ok: a later migration runs as $OWNER; $APP gets its rows and functions, no DDL"

echo "PASS test_least_privilege"
