#!/usr/bin/env bash
# P1 and P7 under chaos, with two instances of one consumer group on one machine (the same
# configuration but http_listen and group.instance.id, as a systemd template unit runs them).
# While solarx-sim produces bursts of data (duplicates, disorder, late and malformed messages),
# faults are injected at random moments from a seeded RNG:
#   zombie      SIGSTOP of one instance for longer than its session timeout, then SIGCONT
#   kill-a/b    SIGKILL of an instance, restarted after a random pause
#   pg          PostgreSQL stopped with -m immediate (a crash) and started again
#   broker      the Kafka broker stopped and started again
#   join-leave  a third instance joins the group, then leaves it (SIGTERM, exit 0)
# At the end both instances catch up and exit 0 on SIGTERM, and the warehouse (every raw, fact,
# dimension and dead-letter table) has the same digest as an uninterrupted single-instance run
# of the same topics into a fresh database with another group. Prints
#   faults survived=N readings lost=L readings double-counted=D
# and asserts L = D = 0.
#
# Environment: SOLARX_CHAOS_FAULTS (default 12, small scale 7; the long variant by hand is
# SOLARX_CHAOS_FAULTS=100), SOLARX_CHAOS_SEED (default: random, printed; the same seed gives the
# same faults in the same order and the same data), SOLARX_TEST_PORT_BASE (where the search for
# three free HTTP ports starts, see free_local_port).
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database
source "$(dirname "$0")/lib.sh"

started=$SECONDS
FAULTS=${SOLARX_CHAOS_FAULTS:-$(by_scale 12 7)}
SEED=${SOLARX_CHAOS_SEED:-$(($(date +%s%N) % 1000000))}
[[ $FAULTS =~ ^[0-9]+$ ]] && ((FAULTS >= 6)) || fail "SOLARX_CHAOS_FAULTS=$FAULTS: expected >= 6"
[[ $SEED =~ ^[0-9]+$ ]] || fail "SOLARX_CHAOS_SEED=$SEED: expected a non-negative integer"
RANDOM=$SEED
echo "test_chaos_two_instances: seed=$SEED faults=$FAULTS scale=$SOLARX_TEST_SCALE" \
    "(rerun with SOLARX_CHAOS_SEED=$SEED)"

HOMES=$(by_scale 10 3)
BURST_MINUTES=$(by_scale 20 10) # event minutes per producer burst
RATE=30                         # event seconds per wall second: a burst lasts 40 s (20 s small)
SESSION_MS=6000                 # the broker's minimum: a zombie is noticed quickly
PAUSE_MAX=$(by_scale 8 5)       # seconds between two faults: 1..PAUSE_MAX
CATCH_UP_S=900                  # generous: this machine may be shared
STOP_S=120                      # for an exit after SIGTERM
services=$SOLARX_SOURCE_DIR/scripts/services.sh
group=chaos2-$$

# rand N: a number in 0..N-1 from the seeded RNG (bash's RANDOM, reseeded above).
rand() { echo $((RANDOM % $1)); }

# ---- instances --------------------------------------------------------------------------------
declare -A PID=() PORT=() LIFE=()
# Three free ports from SOLARX_TEST_PORT_BASE on (see free_local_port).
PORT[a]=$(free_local_port)
PORT[b]=$(SOLARX_TEST_PORT_BASE=$((PORT[a] + 1)) free_local_port)
PORT[c]=$(SOLARX_TEST_PORT_BASE=$((PORT[b] + 1)) free_local_port)
producer=

# Every instance still running is stopped first (a SIGSTOPped one is continued so that it can
# be killed), and services stopped by a fault are started again for the tests that follow.
cleanup_chaos() {
    local name
    for name in "${!PID[@]}"; do
        [[ -n ${PID[$name]} ]] || continue
        kill -CONT "${PID[$name]}" 2>/dev/null || true
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
    done
    if [[ -n $producer ]] && kill -0 "$producer" 2>/dev/null; then
        pkill -KILL -P "$producer" 2>/dev/null || true
        kill -KILL "$producer" 2>/dev/null || true
    fi
    "$services" start-pg >/dev/null 2>&1 || true
    "$services" start-kafka >/dev/null 2>&1 || true
    cleanup_stream_test
}

create_topics chaos2
trap cleanup_chaos EXIT
make_database db

for name in a b c; do
    write_stream_config "$db" "$TEST_TMP/$name.conf" "$group" flush_interval_ms=200 \
        flush_max_readings=5000 raw_retention_days=36500 \
        http_listen="127.0.0.1:${PORT[$name]}" \
        kafka.group.instance.id="$group-$name" kafka.session.timeout.ms=$SESSION_MS \
        kafka.heartbeat.interval.ms=1000
done

# start NAME: runs instance NAME (its log: $TEST_TMP/NAME.log, appended to by every life).
start() {
    LIFE[$1]=$((${LIFE[$1]:-0} + 1))
    echo "ts=$(date -u +%FT%T.%3NZ) test=chaos event=life_start instance=$1 life=${LIFE[$1]}" \
        >>"$TEST_TMP/$1.log"
    "$SOLARX_BIN" run -c "$TEST_TMP/$1.conf" 2>>"$TEST_TMP/$1.log" &
    PID[$1]=$!
}

# life_log NAME: what the current life of instance NAME logged.
life_log() {
    awk -v life="life=${LIFE[$1]}" '/test=chaos event=life_start/ { on = ($NF == life); next } on' \
        "$TEST_TMP/$1.log"
}

# alive NAME: returns when instance NAME runs. An instance that exited on its own after a fatal
# librdkafka error (a zombie comes back fenced) is restarted, as systemd's Restart=on-failure
# would; any other exit fails the test.
RESTARTED=0
alive() {
    local rc=0
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    wait "${PID[$1]}" || rc=$?
    # grep reads a here-string: with pipefail, grep -q quitting early would fail the pipe.
    if ((rc != 0)) && grep -qE 'event=kafka_fatal|facility=FATAL|error=_FATAL' <<<"$(life_log "$1")"; then
        echo "chaos: t=$((SECONDS - started))s instance $1 exited $rc after a fatal Kafka error;" \
            "restarted (Restart=on-failure)"
        RESTARTED=$((RESTARTED + 1))
        start "$1"
        return 0
    fi
    tail -n 40 "$TEST_TMP/$1.log" >&2
    fail "instance $1 (pid ${PID[$1]}) exited $rc on its own"
}

# stop NAME: SIGTERM; the instance must exit 0 within STOP_S seconds.
stop() {
    local pid=${PID[$1]} rc=0 deadline=$((SECONDS + STOP_S))
    kill -TERM "$pid" 2>/dev/null || fail "instance $1 (pid $pid) is not running"
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        tail -n 40 "$TEST_TMP/$1.log" >&2
        fail "instance $1 did not exit within ${STOP_S}s of SIGTERM"
    fi
    wait "$pid" || rc=$?
    PID[$1]=
    if ((rc != 0)); then
        tail -n 40 "$TEST_TMP/$1.log" >&2
        fail "instance $1 exited $rc on SIGTERM (expected 0)"
    fi
}

# wait_log NAME PATTERN TIMEOUT_S: waits until the current life of NAME logged PATTERN.
wait_log() {
    local deadline=$((SECONDS + $3))
    until grep -q "$2" <<<"$(life_log "$1")"; do
        alive "$1"
        ((SECONDS < deadline)) || fail "instance $1 did not log $2 within $3s"
        sleep 0.2
    done
}

health() { curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$1]}/healthz" || true; }

# sleep_ms MS
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# ---- the producer: bursts of data until the faults are over ----------------------------------
# Every burst covers the next BURST_MINUTES of event time with its own seed, so bursts never
# write the same device and second twice with different values.
produce_bursts() {
    local i=0 start
    while :; do
        start=$(date -u -d "2025-02-14 00:00:00 UTC + $((i * BURST_MINUTES)) minutes" \
            '+%Y-%m-%d %H:%M:%S')
        produce "$TEST_TMP/sim-$i.json" --homes "$HOMES" --minutes "$BURST_MINUTES" \
            --seed "$((SEED * 1000 + i))" --rate "$RATE" --start "$start" \
            --duplicates 0.01 --disorder 0.01 --late 0.002 --late-hours 0.25 --malformed 0.001
        i=$((i + 1))
        [[ -e $TEST_TMP/faults-done ]] && break
    done
}

produce_bursts &
producer=$!
start a
start b
wait_log a 'event=ready' 120
wait_log b 'event=ready' 120

# ---- faults -----------------------------------------------------------------------------------
KINDS=(zombie kill-a kill-b pg broker join-leave)
# The first six are every kind once, in a random order; the rest are drawn at random.
plan=()
for kind in "${KINDS[@]}"; do plan+=("$kind"); done
for ((i = ${#plan[@]} - 1; i > 0; i--)); do
    j=$(rand $((i + 1)))
    t=${plan[$i]} && plan[$i]=${plan[$j]} && plan[$j]=$t
done
while ((${#plan[@]} < FAULTS)); do plan+=("${KINDS[$(rand ${#KINDS[@]})]}"); done

note() { echo "chaos: t=$((SECONDS - started))s fault $((n + 1))/$FAULTS $*"; }

survived=0
for ((n = 0; n < FAULTS; n++)); do
    sleep_ms $((1000 + $(rand $((PAUSE_MAX * 1000 - 999)))))
    alive a
    alive b
    kind=${plan[$n]}
    case $kind in
    zombie)
        victim=$([[ $(rand 2) == 0 ]] && echo a || echo b)
        held_ms=$((SESSION_MS + 1000 + $(rand 4000)))
        note "zombie: SIGSTOP $victim for ${held_ms}ms"
        kill -STOP "${PID[$victim]}"
        sleep_ms "$held_ms"
        kill -CONT "${PID[$victim]}"
        ;;
    kill-a | kill-b)
        victim=${kind#kill-}
        down_ms=$(rand 3000)
        note "SIGKILL $victim, restart after ${down_ms}ms"
        kill -KILL "${PID[$victim]}"
        wait "${PID[$victim]}" 2>/dev/null || true
        sleep_ms "$down_ms"
        start "$victim"
        ;;
    pg)
        down_ms=$(rand 3000)
        note "PostgreSQL stop -m immediate, start after ${down_ms}ms"
        SOLARX_PG_STOP_MODE=immediate "$services" stop-pg >/dev/null
        sleep_ms "$down_ms"
        "$services" start-pg >/dev/null
        ;;
    broker)
        down_ms=$(rand 3000)
        note "broker stop, start after ${down_ms}ms"
        "$services" stop-kafka >/dev/null
        sleep_ms "$down_ms"
        "$services" start-kafka >/dev/null
        ;;
    join-leave)
        stay_ms=$((2000 + $(rand 6000)))
        note "instance c joins, leaves ${stay_ms}ms after it is ready"
        start c
        wait_log c 'event=ready' 120
        sleep_ms "$stay_ms"
        stop c
        ;;
    esac
    survived=$((survived + 1))
done
touch "$TEST_TMP/faults-done"
echo "chaos: t=$((SECONDS - started))s faults done; waiting for the producer's last burst"
wait "$producer" || fail "the producer failed"
producer=

# ---- catch up, stop -------------------------------------------------------------------------
want=$(topic_end_offsets)
deadline=$((SECONDS + CATCH_UP_S))
until [[ $(pg_offsets "$db" "$group" 2>/dev/null || true) == "$want" ]]; do
    alive a
    alive b
    if ((SECONDS >= deadline)); then
        echo "end offsets in Kafka:" >&2 && echo "$want" >&2
        echo "offsets in PostgreSQL:" >&2 && pg_offsets "$db" "$group" >&2
        tail -n 20 "$TEST_TMP/a.log" "$TEST_TMP/b.log" >&2
        fail "not caught up ${CATCH_UP_S}s after the last fault"
    fi
    sleep 0.5
done
caught_up=$SECONDS
for name in a b; do
    deadline=$((SECONDS + 120))
    until [[ $(health "$name") == 200 ]]; do
        alive "$name"
        ((SECONDS < deadline)) || fail "instance $name: /healthz $(health "$name") 120s after catch-up"
        sleep 0.5
    done
done
alive a
alive b
stop a
stop b
for name in a b; do
    grep -q 'event=stopping' "$TEST_TMP/$name.log" || fail "instance $name: no event=stopping"
done
digest_chaos=$(digest_same_topics "$db")

# ---- the reference: one uninterrupted instance, afterwards, from the beginning -------------
make_database dbref
write_stream_config "$dbref" "$TEST_TMP/ref.conf" "chaos2-ref-$$" flush_interval_ms=200 \
    flush_max_readings=5000 raw_retention_days=36500
start_service "$TEST_TMP/ref.conf" ref
wait_caught_up "$dbref" "chaos2-ref-$$" "$CATCH_UP_S"
stop_service
digest_ref=$(digest_same_topics "$dbref")

# ---- the verdict ------------------------------------------------------------------------------
read -r lost double < <(readings_lost_and_double_counted "$dbref" "$db")
messages=$(cat "$TEST_TMP"/sim-*.json | jq -s '[.[].total] | add')
rows=$(awk '{ n += $2 } END { print n }' <<<"$digest_ref")
echo "faults survived=$survived readings lost=$lost readings double-counted=$double"
assert_eq "$lost" 0 "readings lost"
assert_eq "$double" 0 "readings double-counted"
assert_same_digest reference "$digest_ref" chaos "$digest_chaos"
((rows > 0)) || fail "the reference run wrote nothing"
echo "PASS test_chaos_two_instances scale=$SOLARX_TEST_SCALE seed=$SEED faults=$survived" \
    "($(printf '%s\n' "${plan[@]}" | sort | uniq -c | awk '{ printf "%s%s=%s", s, $2, $1; s = " " }'))" \
    "messages=$messages rows=$rows lives_a=${LIFE[a]} lives_b=${LIFE[b]}" \
    "fatal_restarts=$RESTARTED fenced_flushes=$(cat "$TEST_TMP"/[abc].log | grep -cE 'event=[a-z_]*fenced' || true)" \
    "catch_up_s=$((caught_up - started)) total_s=$((SECONDS - started))"
