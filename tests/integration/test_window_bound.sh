#!/usr/bin/env bash
# flush_max_windows: with many homes a batch touches about as many windows as readings, and a
# flush's memory (merged states, fact upserts, stored state read back) grows with its windows.
# The service runs with a small flush_max_windows over a backlog of many homes (duplicates,
# disorder, a window boundary inside it) and must (a) write exactly what the simulator produced,
# with every table equal to an unbounded run's on the same topics, and (b) flush at most the
# bound of windows, plus the rest of the decoded chunk that filled the batch (at most
# DECODE_SLACK_MESSAGES messages of up to 3 windows each), in many times the unbounded run's
# number of flushes.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 1000 200)
BOUND=$(by_scale 200 50)
# What may be applied to a batch after it filled: the rest of the decode pool's chunk that filled
# it (DECODE_POOL_CHUNK_MESSAGES, 512 messages; the service applies no further chunk to a full
# batch).
DECODE_SLACK_MESSAGES=512
create_topics windowbound
summary=$TEST_TMP/sim.json
# Two event minutes across 00:15: every device has two windows, the readings of most windows
# are spread over several flushes, and duplicates and disorder make flushes revisit windows.
produce "$summary" --homes "$HOMES" --minutes 2 --start "2025-02-14 00:14:00" --seed 17 \
    --duplicates 0.01 --disorder 0.01 --malformed 0.0001
total=$(topic_end_offsets | awk '{ n += $3 } END { print n + 0 }')

# run_with_bound NAME BOUND: a catch-up of the topics into a fresh database; sets NAME_db and
# NAME_max (the most windows one flush wrote) and NAME_flushes.
run_with_bound() {
    local name=$1 db group=windowbound-$1-$$ max flushes
    make_database db
    # flush_interval_ms high: batches are closed by their bounds, not by the timer.
    write_stream_config "$db" "$TEST_TMP/$name.conf" "$group" flush_interval_ms=5000 \
        flush_max_readings=50000 flush_max_windows="$2"
    start_service "$TEST_TMP/$name.conf" "$name"
    wait_caught_up "$db" "$group" 600
    stop_service
    max=$(service_log | grep 'event=flush_committed' |
        sed -nE 's/.* windows=([0-9]+) .*/\1/p' | sort -n | tail -n 1 || true)
    flushes=$(service_log | grep -c 'event=flush_committed' || true)
    [[ -n $max ]] || fail "$name: no event=flush_committed with windows=N in the log"
    printf -v "${name}_db" '%s' "$db"
    printf -v "${name}_max" '%s' "$max"
    printf -v "${name}_flushes" '%s' "$flushes"
}

run_with_bound bounded "$BOUND"
run_with_bound unbounded 10000000

# (a) Exact: every valid reading once, in raw rows and facts, and the same tables (facts,
# dimensions, raw, dead letters) as the unbounded run.
assert_sim_written "$bounded_db" "$summary" "bounded run"
assert_sim_written "$unbounded_db" "$summary" "unbounded run"
assert_same_digest bounded "$(digest "$bounded_db")" unbounded "$(digest "$unbounded_db")"

# (b) Bounded: no flush wrote more windows than the bound allows, and the bound is what closed
# the batches: the unbounded run (same backlog and settings) wrote larger ones, in far fewer
# flushes (without the bound both runs close batches at flush_max_readings alone).
limit=$((BOUND + 3 * DECODE_SLACK_MESSAGES))
((bounded_max <= limit)) ||
    fail "a flush wrote $bounded_max windows with flush_max_windows=$BOUND (at most $limit)"
((unbounded_max > bounded_max)) ||
    fail "the unbounded run's largest flush ($unbounded_max windows) is not larger than the bounded run's ($bounded_max)"
((bounded_flushes > 3 * unbounded_flushes)) ||
    fail "bounded run: $bounded_flushes flushes, unbounded: $unbounded_flushes (expected over 3x): the bound did not close the batches"

echo "PASS test_window_bound scale=$SOLARX_TEST_SCALE homes=$HOMES messages=$total" \
    "flush_max_windows=$BOUND max_windows_per_flush=$bounded_max flushes=$bounded_flushes" \
    "unbounded_max_windows_per_flush=$unbounded_max unbounded_flushes=$unbounded_flushes" \
    "total_s=$((SECONDS - started))"
