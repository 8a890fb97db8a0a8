#!/usr/bin/env bash
# Fatal errors are visible: a fatal librdkafka error (raised through the test-only hook
# SOLARX_TEST_KAFKA_FATAL_AFTER_MS, as a fenced static member would get it) makes /healthz answer
# 503 "kafka fatal error: ..." and ends the process with exit status 70 after flushing what it
# consumed; a restart goes on and nothing is lost. A consumption stalled longer than
# stall_timeout_s with lag > 0 (flushes blocked by a lock) answers 503 "consumption stalled" until
# it moves again.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HTTP=127.0.0.1:20304
create_topics health
make_database db
group=health-$$
write_stream_config "$db" "$TEST_TMP/health.conf" "$group" http_listen=$HTTP stall_timeout_s=2 \
    flush_max_readings=200
"$SOLARX_BIN" migrate -c "$TEST_TMP/health.conf" 2>"$TEST_TMP/migrate.log" || fail "migrate"

summary=$TEST_TMP/sim.json
produce "$summary" --homes 4 --minutes 20 --rate 30 --seed 71 --start "2025-02-14 00:00:00" &
producer=$!

healthz() { curl -s --max-time 2 -w ' %{http_code}' "http://$HTTP/healthz" || true; }

# ---- a fatal Kafka error --------------------------------------------------------------------
# Every flush transaction takes 1 s longer (a deferred trigger), so the final flush after the
# fatal error leaves time to see the 503.
q "$db" "create function public.test_slow_commit() returns trigger language plpgsql as \$\$
         begin
             if current_setting('solarx_test.slept', true) is distinct from 'y' then
                 perform set_config('solarx_test.slept', 'y', true);
                 perform pg_sleep(1);
             end if;
             return null;
         end \$\$;
         create constraint trigger test_slow_commit
             after update on solarx_meta.consumer_offsets
             deferrable initially deferred for each row execute function public.test_slow_commit()" \
    >/dev/null
SOLARX_TEST_KAFKA_FATAL_AFTER_MS=4000 start_service "$TEST_TMP/health.conf" fatal
wait_ready 60
deadline=$((SECONDS + 3))
until [[ $(healthz) == "ok"*" 200" ]]; do # once PostgreSQL is connected too
    ((SECONDS < deadline)) || fail "/healthz before the fatal error: $(healthz)"
    sleep 0.05
done
seen_503=
while kill -0 "$SERVICE_PID" 2>/dev/null; do
    answer=$(healthz)
    [[ $answer == "kafka fatal error: "*" 503" ]] && seen_503=$answer
    sleep 0.05
done
rc=0
wait "$SERVICE_PID" || rc=$?
SERVICE_PID=
[[ -n $seen_503 ]] || fail "/healthz never answered 503 with the fatal error"
echo "fatal: /healthz said: ${seen_503//$'\n'/ }"
assert_eq "$rc" 70 "exit status after a fatal Kafka error"
service_log_has 'event=kafka_fatal code=' || fail "no event=kafka_fatal in the log"
service_log_has 'event=stopping' || fail "the consumed readings were not flushed before exiting"
q "$db" "drop trigger test_slow_commit on solarx_meta.consumer_offsets" >/dev/null

# ---- consumption stalled --------------------------------------------------------------------
start_service "$TEST_TMP/health.conf" stall
wait_ready 60
wait_service_log 'event=flush_committed .* offsets=[1-9]' 60 "no flush committed offsets"
# Flushes block on the offsets table for 12 s: the next batch fills, consumption holds, the
# producer keeps adding lag.
psql -X -q -d "$db" -c "begin; lock table solarx_meta.consumer_offsets in exclusive mode;
                        select pg_sleep(12); commit" >/dev/null &
locker=$!
stalled=
deadline=$((SECONDS + 11))
while ((SECONDS < deadline)); do
    answer=$(healthz)
    if [[ $answer == "consumption stalled for "*" 503" ]]; then
        stalled=$answer
        break
    fi
    sleep 0.2
done
[[ -n $stalled ]] || fail "/healthz did not report the stall; last answer: $answer"
echo "stall: /healthz said: ${stalled//$'\n'/ }"
wait "$locker" || fail "the locking session failed"
deadline=$((SECONDS + 20))
until [[ $(healthz) == "ok"*" 200" ]]; do
    ((SECONDS < deadline)) || fail "/healthz still unhealthy after the lock went: $(healthz)"
    sleep 0.2
done

# ---- nothing was lost -----------------------------------------------------------------------
wait "$producer" || fail "the producer failed"
wait_caught_up "$db" "$group" 300
stop_service
assert_eq "$(q "$db" "select (select sum(readings_count) from solarx_wh.fact_home_power_readings) || ' ' ||
                             (select sum(readings_count) from solarx_wh.fact_solar_panel_power_readings) || ' ' ||
                             (select sum(readings_count) from solarx_wh.fact_battery_power_readings)")" \
    "$(sim_count "$summary" valid home) $(sim_count "$summary" valid solar) $((3 * $(sim_count "$summary" valid battery)))" \
    "readings counted by the facts"
echo "PASS test_health_fatal exit_status=$rc total_s=$((SECONDS - started))"
