#!/usr/bin/env bash
# P1 exactly-once effect: the same topics consumed (A) without interruption and (B) by a service
# SIGKILLed at random moments (0.3..3 s into each life, at least 10 times, with small flushes so
# kills land mid-transaction) give identical raw, dead-letter, dimension and fact tables, and
# every valid reading is there exactly once.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 20 2)
MINUTES=$(by_scale 60 30)
# Event seconds per wall second: the producer runs MINUTES * 60 / RATE seconds (36 s at either
# scale), long enough for MIN_KILLS lives of up to 3 s plus start-up while there is work left.
RATE=$(by_scale 100 50)
MIN_KILLS=10
create_topics eo

# The data arrives while B is killed and restarted, so every life has work whatever the speed
# of the service; A reads the same topics afterwards, complete.
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --minutes "$MINUTES" --seed 11 --rate "$RATE" \
    --start "2025-02-14 00:00:00" \
    --duplicates 0.01 --disorder 0.01 --late 0.002 --late-hours 0.25 --malformed 0.001 &
producer=$!

# ---- run B: SIGKILL at random moments ---------------------------------------------------------
make_database dbb
groupb=eo-b-$$
# A static member (group.instance.id) gets its partitions back as soon as it restarts, instead of
# after the killed member's session timeout.
write_stream_config "$dbb" "$TEST_TMP/b.conf" "$groupb" flush_interval_ms=100 \
    flush_max_readings=5000 kafka.group.instance.id="eo-b-$$"
pg_sum() {
    q "$dbb" "select coalesce(sum(next_offset), 0) from solarx_meta.consumer_offsets
               where consumer_group = '$groupb'" 2>/dev/null || echo 0
}
kills=0 landed=0 in_tx=0 producing=1
while ((producing || kills < MIN_KILLS)); do
    kill -0 "$producer" 2>/dev/null || producing=0
    start_service "$TEST_TMP/b.conf" run-b
    ms=$((300 + RANDOM % 2701))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -0 "$SERVICE_PID" 2>/dev/null || {
        service_log | tail -n 20 >&2
        fail "the service died on its own in life $((kills + 1))"
    }
    # Just before the kill: is one of its PostgreSQL sessions inside a transaction?
    busy=$(q postgres "select count(*) from pg_stat_activity where datname = '$dbb'
                         and xact_start is not null and pid <> pg_backend_pid()" || echo 0)
    stored=$(pg_sum)
    work_left=0
    kill -0 "$producer" 2>/dev/null && work_left=1 # still producing
    kill_service
    if ((!work_left)) && ((stored < $(topic_end_offsets | awk '{ n += $3 } END { print n + 0 }'))); then
        work_left=1
    fi
    kills=$((kills + 1))
    ((work_left)) && landed=$((landed + 1))
    ((busy > 0)) && in_tx=$((in_tx + 1))
    ((kills <= 200)) || fail "more than 200 kills and the producer is still running"
done
wait "$producer" || fail "the producer failed"
start_service "$TEST_TMP/b.conf" run-b
wait_caught_up "$dbb" "$groupb" 300
stop_service
b_done=$SECONDS
digest_b=$(digest "$dbb")

# ---- run A: uninterrupted ---------------------------------------------------------------------
make_database dba
groupa=eo-a-$$
write_stream_config "$dba" "$TEST_TMP/a.conf" "$groupa"
start_service "$TEST_TMP/a.conf" run-a
wait_caught_up "$dba" "$groupa" 300
stop_service
digest_a=$(digest "$dba")

# ---- the same tables, and every valid reading exactly once ------------------------------------
assert_same_digest A "$digest_a" B "$digest_b"
messages=0
for kind in home solar battery; do
    messages=$((messages + $(sim_count "$summary" messages "$kind")))
done
(($(by_scale 200000 10000) <= messages)) || fail "only $messages messages in the topics"
for db in "$dba" "$dbb"; do
    assert_sim_written "$db" "$summary" "in $db"
done
((landed >= MIN_KILLS)) || fail "only $landed of $kills kills landed while there was work left"
rows=$(awk '{ n += $2 } END { print n }' <<<"$digest_a")
echo "PASS test_exactly_once_sigkill scale=$SOLARX_TEST_SCALE messages=$messages rows=$rows" \
    "kills=$kills landed_with_work_left=$landed landed_in_pg_transaction=$in_tx" \
    "run_b_s=$((b_done - started)) total_s=$((SECONDS - started))"
