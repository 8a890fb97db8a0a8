#!/usr/bin/env bash
# `replay` running at the same time as the live service, over the same topics and so the same
# windows, into the same warehouse: the result equals one uninterrupted service run (P2, P3:
# two writers of a window serialise on its stored state). A warehouse built by `replay` alone
# equals it too (the registries are loaded by the backfill as by the service), and replay's
# progress goes out as event=progress lines counting messages against the high watermarks.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

HOMES=$(by_scale 10 2)
create_topics replayconc
produce "$TEST_TMP/sim.json" --homes "$HOMES" --minutes "$(by_scale 60 40)" --seed 47 \
    --duplicates 0.01 --disorder 0.01 --late 0.002 --late-hours 0.25 --malformed 0.001
total=$(jq .total "$TEST_TMP/sim.json")

# ---- reference: one uninterrupted service run ----------------------------------------------------
make_database single
write_stream_config "$single" "$TEST_TMP/single.conf" "replayconc-single-$$"
start_service "$TEST_TMP/single.conf" single
wait_ready 60
wait_caught_up "$single" "replayconc-single-$$" 300
stop_service
reference=$(digest "$single")

# ---- the service and a replay at once, same database ---------------------------------------------
make_database both
# Small flushes (the contents do not depend on flush boundaries, P3) keep the service busy long
# enough for the replay to overlap it.
write_stream_config "$both" "$TEST_TMP/both.conf" "replayconc-both-$$" progress_interval_ms=200 \
    flush_max_readings=1000
start_service "$TEST_TMP/both.conf" both
wait_ready 60
"$SOLARX_BIN" replay -c "$TEST_TMP/both.conf" --from-beginning 2>"$TEST_TMP/replay-both.log" &
replay_pid=$!
# Both are writing now: the replay started before the service was done.
[[ $(pg_offsets "$both" "replayconc-both-$$") != "$(topic_end_offsets)" ]] ||
    fail "the service had caught up before the replay started: nothing ran concurrently"
wait "$replay_pid" || { tail -n 20 "$TEST_TMP/replay-both.log" >&2; fail "the concurrent replay failed"; }
wait_caught_up "$both" "replayconc-both-$$" 300
stop_service
assert_same_digest single "$reference" service+replay "$(digest "$both")"
grep -q "event=replay_done messages=$total " "$TEST_TMP/replay-both.log" ||
    fail "the replay did not read every message: $(grep event=replay_done "$TEST_TMP/replay-both.log")"
grep -q "event=progress command=replay unit=messages done=[0-9]* total=$total " \
    "$TEST_TMP/replay-both.log" || fail "no event=progress line with total=$total"

# ---- replay alone builds the same warehouse -----------------------------------------------------
make_database alone
write_stream_config "$alone" "$TEST_TMP/alone.conf" "replayconc-alone-$$"
"$SOLARX_BIN" replay -c "$TEST_TMP/alone.conf" --from-beginning 2>"$TEST_TMP/replay-alone.log" ||
    { tail -n 20 "$TEST_TMP/replay-alone.log" >&2; fail "replay into a fresh database"; }
assert_same_digest single "$reference" replay-only "$(digest "$alone")"
assert_eq "$(q "$alone" 'select count(*) from solarx_meta.consumer_offsets')" 0 "replay stored offsets"

echo "PASS test_replay_concurrent messages=$total homes=$HOMES"
