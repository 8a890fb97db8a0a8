#!/usr/bin/env bash
# Raw lanes ([solarx] flush_connections = 3: the flush's connection and two lanes). A flush splits
# its raw rows between them; each lane writes its share in a transaction of its own that commits
# before the flush's. Against real PostgreSQL and Kafka, on one backlog:
# - the lanes write raw rows (a statement trigger records the application_name of every COPY);
# - a lane's COPY fails once: the flush fails, nothing of it is kept but what is idempotent, and
#   its retry writes it;
# - a flush's COMMIT fails once after its lanes committed (a deferred trigger on the offsets,
#   raising only when a lane wrote since the flush's transaction began): the retry meets the
#   lanes' rows (event=raw_copy_conflict) and keeps each once;
# - the lanes' backends are terminated again and again during a second backlog;
# and the warehouse is exact: a raw row per valid reading, facts counting each once.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

HOMES=$(by_scale 12 4)
create_topics lanes
produce "$TEST_TMP/backlog.json" --homes "$HOMES" --minutes 20 --seed 41 \
    --start "2025-02-14 00:00:00" --duplicates 0.01 --malformed 0.001

make_database db
group=lanes-$$
write_stream_config "$db" "$TEST_TMP/lanes.conf" "$group" flush_connections=3 \
    flush_max_readings=3000 flush_interval_ms=200
"$SOLARX_BIN" migrate -c "$TEST_TMP/lanes.conf" 2>"$TEST_TMP/migrate.log" || fail "migrate"

# Superuser-owned test hooks (SECURITY DEFINER: the service's role may not write public tables).
q "$db" "create table public.raw_copies (app text, kind text, at timestamptz default clock_timestamp());
         create sequence public.lane_copy_failures;
         create sequence public.commit_failures;
         create function public.test_record_copy() returns trigger language plpgsql
             security definer set search_path = pg_catalog, public as \$\$
         begin
             insert into public.raw_copies (app, kind)
                 values (current_setting('application_name'), tg_table_name);
             return null;
         end \$\$;
         create function public.test_fail_lane_copy_once() returns trigger language plpgsql
             security definer set search_path = pg_catalog, public as \$\$
         begin
             if current_setting('application_name') like '%raw_lane_2' then
                 if nextval('public.lane_copy_failures') = 1 then
                     raise exception 'test: raw lane 2 fails once' using errcode = '40P01';
                 end if;
             end if;
             return new;
         end \$\$;
         create function public.test_fail_commit_after_lanes_once() returns trigger
             language plpgsql security definer set search_path = pg_catalog, public as \$\$
         begin
             if current_setting('solarx_test.checked', true) is distinct from 'y' then
                 perform set_config('solarx_test.checked', 'y', true);
                 if exists (select 1 from public.raw_copies
                             where app like '%raw_lane_%' and at > transaction_timestamp())
                    and nextval('public.commit_failures') = 1 then
                     raise exception 'test: the commit after the lanes fails once'
                         using errcode = '40P01';
                 end if;
             end if;
             return null;
         end \$\$;
         create trigger test_record_copy after insert on solarx_raw.home_power_readings
             for each statement execute function public.test_record_copy();
         create trigger test_record_copy after insert on solarx_raw.battery_readings
             for each statement execute function public.test_record_copy();
         create trigger test_fail_lane_copy_once before insert on solarx_raw.battery_readings
             for each row execute function public.test_fail_lane_copy_once();
         create constraint trigger test_fail_commit_after_lanes_once
             after insert or update on solarx_meta.consumer_offsets
             deferrable initially deferred for each row
             execute function public.test_fail_commit_after_lanes_once()" >/dev/null

start_service "$TEST_TMP/lanes.conf" run
wait_ready 60
wait_caught_up "$db" "$group" 300

service_log_has 'event=postgres_connected connection=raw_lane_2' ||
    fail "no event=postgres_connected connection=raw_lane_2: the lanes did not connect"
lanes=$(q "$db" "select string_agg(distinct app, ',' order by app) from public.raw_copies
                  where app like '%raw_lane_%'")
assert_eq "$lanes" "solarx-stream raw_lane_1,solarx-stream raw_lane_2" "the lanes that wrote raw rows"
[[ $(q "$db" "select count(*) from public.raw_copies where app = 'solarx-stream'") -gt 0 ]] ||
    fail "the flush's own connection wrote no raw rows"
assert_eq "$(service_log | grep -c 'event=flush_failed.*raw lane 2: raw copy battery: .*test: raw lane 2 fails once')" \
    1 "flushes failed by raw lane 2's COPY"
assert_eq "$(q "$db" "select is_called from public.commit_failures")" t \
    "a COMMIT after the lanes committed failed"
service_log_has 'event=flush_failed.*the commit after the lanes fails once' ||
    fail "no event=flush_failed for the failed COMMIT"
service_log_has 'event=raw_copy_conflict' ||
    fail "no event=raw_copy_conflict: the retry did not meet the rows its lanes had committed"
assert_sim_written "$db" "$TEST_TMP/backlog.json" "with a failed lane and a failed commit"

# A second backlog while the lanes' backends are terminated again and again: every flush that
# loses a lane fails and is retried, the lane reconnects.
produce "$TEST_TMP/more.json" --homes "$HOMES" --minutes 20 --seed 42 \
    --start "2025-02-14 01:00:00" --duplicates 0.01 --malformed 0.001 &
producer=$!
terminated=0
for _ in $(seq 1 12); do
    n=$(q "$db" "select count(pg_terminate_backend(pid)) from pg_stat_activity
                  where application_name like 'solarx-stream raw_lane_%'")
    terminated=$((terminated + n))
    sleep 0.4
done
wait "$producer" || fail "producing the second backlog"
((terminated > 0)) || fail "no lane backend was there to terminate"
wait_caught_up "$db" "$group" 300
service_log_has 'event=postgres_connection_lost.*connection=raw_lane_\|raw lane [12]: ' ||
    fail "the service did not notice a terminated lane"
stop_service

# Both backlogs' summaries added up, field by field and topic by topic.
jq -s 'def plus(f): reduce (.[] | f | to_entries[]) as $e ({}; .[$e.key] += $e.value);
       {valid: plus(.valid), malformed: plus(.malformed)}' \
    "$TEST_TMP/backlog.json" "$TEST_TMP/more.json" >"$TEST_TMP/both.json"
assert_sim_written "$db" "$TEST_TMP/both.json" "after lanes were terminated $terminated times"
echo "PASS: raw lanes: exact with a failed lane COPY, a failed COMMIT after the lanes and $terminated lane terminations"
