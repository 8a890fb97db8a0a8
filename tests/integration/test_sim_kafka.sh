#!/usr/bin/env bash
# solarx-sim against real Kafka: every message arrives exactly once (10 homes x 3600 s per topic,
# plus exactly the extras the summary reports when faults are on), keyed by home, and the bytes
# in Kafka are the bytes of the deterministic --output-dir dump of the same arguments.
source "$(dirname "$0")/lib.sh"

KAFKA_RUN=$SOLARX_SOURCE_DIR/scripts/kafka-run.sh
BOOTSTRAP=$SOLARX_KAFKA_BOOTSTRAP_SERVERS
PREFIX="sim-it-$$-$(date +%s)"
HOMES=10
MINUTES=60
PER_TOPIC=$((HOMES * MINUTES * 60))
KINDS=(home solar battery)

[[ -x $SOLARX_SIM ]] || fail "no solarx-sim at $SOLARX_SIM"

delete_topics() {
    "$KAFKA_RUN" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --delete --topic "$PREFIX-.*" >/dev/null 2>&1 || true
}
trap 'delete_topics; cleanup_test' EXIT

# topic RUN KIND: the name of a fresh topic of this test.
topic() {
    echo "$PREFIX-$1-$2"
}

create_topics() {
    local run=$1 kind pids=()
    for kind in "${KINDS[@]}"; do
        "$KAFKA_RUN" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
            --create --topic "$(topic "$run" "$kind")" --partitions 3 --replication-factor 1 \
            >"$TEST_TMP/create-$run-$kind.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || fail "cannot create topics of run $run: $(cat "$TEST_TMP"/create-"$run"-*.log)"
    done
}

# sim RUN ARGS...: runs solarx-sim into run RUN's topics; the summary goes to $TEST_TMP/RUN.json.
sim() {
    local run=$1
    shift
    "$SOLARX_SIM" --topic-home "$(topic "$run" home)" --topic-solar "$(topic "$run" solar)" \
        --topic-battery "$(topic "$run" battery)" "$@" \
        >"$TEST_TMP/$run.json" 2>"$TEST_TMP/$run.log" || {
        local rc=$?
        cat "$TEST_TMP/$run.log" >&2
        fail "solarx-sim $run exited $rc"
    }
}

# dump RUN ARGS...: the same generation into files under $TEST_TMP/dump-RUN.
dump() {
    local run=$1
    shift
    "$SOLARX_SIM" --topic-home "$(topic "$run" home)" --topic-solar "$(topic "$run" solar)" \
        --topic-battery "$(topic "$run" battery)" --output-dir "$TEST_TMP/dump-$run" "$@" \
        >"$TEST_TMP/dump-$run.json" 2>"$TEST_TMP/dump-$run.log" || fail "solarx-sim dump $run"
}

# summary RUN FIELD KIND: a count from run RUN's summary line.
summary() {
    jq -r --arg t "$(topic "$1" "$3")" ".$2[\$t]" "$TEST_TMP/$1.json"
}

# end_offsets RUN: "topic total" lines, the sum of the end offsets of each of RUN's topics.
end_offsets() {
    "$KAFKA_RUN" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOTSTRAP" \
        --topic "$PREFIX-$1-.*" --time -1 |
        awk -F: '{ n[$1] += $3 } END { for (t in n) print t, n[t] }'
}

# consume RUN KIND COUNT: reads COUNT messages of a topic from the beginning as "key<TAB>value"
# lines into $TEST_TMP/got-RUN-KIND (fails when fewer arrive within the timeout).
consume() {
    local out=$TEST_TMP/got-$1-$2
    "$KAFKA_RUN" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
        --topic "$(topic "$1" "$2")" --from-beginning --max-messages "$3" --timeout-ms 30000 \
        --property print.key=true --property key.separator=$'\t' >"$out" 2>"$out.err" || true
    [[ $(wc -l <"$out") -eq $3 ]] || fail "$(topic "$1" "$2"): consumed $(wc -l <"$out") of $3"
}

consume_run() {
    local run=$1 kind pids=()
    for kind in "${KINDS[@]}"; do
        consume "$run" "$kind" "$(summary "$run" messages "$kind")" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || exit 1
    done
}

# --- arguments and usage errors ---------------------------------------------------------------
"$SOLARX_SIM" --help | grep -q -- '--battery-upgrade' || fail "--help"
for bad in "--homes 0" "--seed -1" "--minutes 1 --hours 1" "--duplicates 2" "--rate slow" \
    "--start 2025-02-30_00:00:00" "--bogus" "--output-dir /tmp/x --brokers 127.0.0.1:1"; do
    rc=0
    # shellcheck disable=SC2086
    "$SOLARX_SIM" $bad >/dev/null 2>"$TEST_TMP/usage.err" || rc=$?
    assert_eq "$rc" 64 "exit status for '$bad'"
    assert_eq "$(wc -l <"$TEST_TMP/usage.err")" 1 "one-line reason for '$bad'"
done

# --- clean run: exactly 10 x 3600 per topic ---------------------------------------------------
create_topics clean
create_topics faulty
sim clean --homes $HOMES --minutes $MINUTES --seed 1
dump clean --homes $HOMES --minutes $MINUTES --seed 1
for kind in "${KINDS[@]}"; do
    assert_eq "$(summary clean messages "$kind")" "$PER_TOPIC" "clean summary messages $kind"
    assert_eq "$(summary clean valid "$kind")" "$PER_TOPIC" "clean summary valid $kind"
done
assert_eq "$(jq .total "$TEST_TMP/clean.json")" $((3 * PER_TOPIC)) "clean total"
cmp -s "$TEST_TMP/clean.json" "$TEST_TMP/dump-clean.json" || fail "summary differs file vs Kafka"

end_offsets clean | sort >"$TEST_TMP/offsets-clean"
for kind in "${KINDS[@]}"; do
    grep -qx "$(topic clean "$kind") $PER_TOPIC" "$TEST_TMP/offsets-clean" ||
        fail "end offsets of clean $kind: $(cat "$TEST_TMP/offsets-clean")"
done

consume_run clean
for kind in "${KINDS[@]}"; do
    f=$TEST_TMP/dump-clean/$(topic clean "$kind").jsonl
    assert_eq "$(wc -l <"$f")" "$PER_TOPIC" "dump lines $kind"
    # the key of every message is its home id
    sed -E 's/^\{"home_id": ([0-9]+), .*$/\1\t&/' "$f" | sort >"$TEST_TMP/want-clean-$kind"
    sort "$TEST_TMP/got-clean-$kind" >"$TEST_TMP/got-clean-$kind.sorted"
    cmp -s "$TEST_TMP/want-clean-$kind" "$TEST_TMP/got-clean-$kind.sorted" ||
        fail "clean $kind: Kafka holds other bytes or keys than the dump"
done
[[ $(cut -f1 "$TEST_TMP/got-clean-home" | sort -un | tr '\n' ' ') == "1 2 3 4 5 6 7 8 9 10 " ]] ||
    fail "keys are not the home ids 1..10"

# --- same seed, same bytes; another seed, other bytes -----------------------------------------
dump again --homes $HOMES --minutes $MINUTES --seed 1
dump other --homes $HOMES --minutes $MINUTES --seed 2
for kind in "${KINDS[@]}"; do
    cmp -s "$TEST_TMP/dump-clean/$(topic clean "$kind").jsonl" \
        "$TEST_TMP/dump-again/$(topic again "$kind").jsonl" || fail "seed 1 twice differs: $kind"
done
for kind in home battery; do # (solar is zero everywhere between 00:00 and 01:00)
    ! cmp -s "$TEST_TMP/dump-clean/$(topic clean "$kind").jsonl" \
        "$TEST_TMP/dump-other/$(topic other "$kind").jsonl" || fail "seed 2 equals seed 1: $kind"
done

# --- faults: exactly 36000 + the extras the summary reports -----------------------------------
FAULTS=(--duplicates 0.01 --disorder 0.02 --late 0.005 --late-hours 0.25 --malformed 0.01)
sim faulty --homes $HOMES --minutes $MINUTES --seed 1 "${FAULTS[@]}"
dump faulty --homes $HOMES --minutes $MINUTES --seed 1 "${FAULTS[@]}"
cmp -s "$TEST_TMP/faulty.json" "$TEST_TMP/dump-faulty.json" || fail "faulty summary differs"
end_offsets faulty | sort >"$TEST_TMP/offsets-faulty"
total=0
for kind in "${KINDS[@]}"; do
    valid=$(summary faulty valid "$kind")
    dups=$(summary faulty duplicates "$kind")
    bad=$(summary faulty malformed "$kind")
    msgs=$(summary faulty messages "$kind")
    assert_eq "$valid" "$PER_TOPIC" "faulty valid $kind"
    [[ $dups -gt 0 && $bad -gt 0 && $(summary faulty late "$kind") -gt 0 &&
       $(summary faulty reordered "$kind") -gt 0 ]] || fail "faults missing in $kind"
    assert_eq "$msgs" $((PER_TOPIC + dups + bad)) "faulty messages $kind"
    grep -qx "$(topic faulty "$kind") $msgs" "$TEST_TMP/offsets-faulty" ||
        fail "end offsets of faulty $kind: want $msgs, got $(cat "$TEST_TMP/offsets-faulty")"
    total=$((total + msgs))
done
assert_eq "$(jq .total "$TEST_TMP/faulty.json")" "$total" "faulty total"

consume_run faulty
for kind in "${KINDS[@]}"; do
    sort "$TEST_TMP/dump-faulty/$(topic faulty "$kind").jsonl" >"$TEST_TMP/want-faulty-$kind"
    cut -f2- "$TEST_TMP/got-faulty-$kind" | sort >"$TEST_TMP/got-faulty-$kind.sorted"
    cmp -s "$TEST_TMP/want-faulty-$kind" "$TEST_TMP/got-faulty-$kind.sorted" ||
        fail "faulty $kind: Kafka holds other bytes than the dump"
    # duplicates are byte copies: distinct lines = messages - duplicates
    assert_eq "$(sort -u "$TEST_TMP/want-faulty-$kind" | wc -l)" \
        $(($(summary faulty messages "$kind") - $(summary faulty duplicates "$kind"))) \
        "distinct faulty $kind messages"
done

# --- a delivery that fails makes a non-zero exit ----------------------------------------------
rc=0
"$SOLARX_SIM" --brokers 127.0.0.1:1 -X message.timeout.ms=1500 --minutes 1 \
    >/dev/null 2>"$TEST_TMP/undeliverable.log" || rc=$?
assert_eq "$rc" 1 "exit status when nothing can be delivered"
grep -q 'delivery failed' "$TEST_TMP/undeliverable.log" || fail "no delivery failure logged"

echo "PASS: solarx-sim into Kafka ($((3 * PER_TOPIC)) clean, $total with faults)"
