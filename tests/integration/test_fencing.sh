#!/usr/bin/env bash
# Fencing: an instance that lost a partition can no longer move that partition's stored offset.
# 1. Deterministic, through the real flusher (fencing_check.c): two claims of one partition, then
#    flushes under the old epoch are fenced (rolled back, offset unchanged), the new owner's commit.
# 2. A zombie on real Kafka: instance A consumes with slow flushes (a batch is always pending), is
#    SIGSTOPped past session.timeout.ms while B takes its partitions over and commits, then
#    SIGCONTed: A's stale flush is fenced (logged, dropped), A stores no offset until it is
#    assigned partitions again, the stored offsets never move back from what B wrote, and the
#    final data is exact.
# 3. An owner whose claim is overtaken behind its back (a late claim): its next flush is fenced,
#    the batch dropped, its partitions rewound; it rejoins, claims again, and nothing is lost.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
# Free ports from SOLARX_TEST_PORT_BASE: fixed ones collide with a second run on the machine.
port_a=$(free_local_port)
HTTP_A=127.0.0.1:$port_a
HTTP_B=127.0.0.1:$(SOLARX_TEST_PORT_BASE=$((port_a + 1)) free_local_port)

# ---- 1. the fencing SQL, deterministically -------------------------------------------------------
make_database sqldb
write_config "$sqldb" "$TEST_TMP/sql.conf" fencing-group
printf '[topics]\nhome = fencing-home\nsolar = fencing-solar\nbattery = fencing-battery\n' \
    >>"$TEST_TMP/sql.conf"
"$SOLARX_BIN" migrate -c "$TEST_TMP/sql.conf" 2>"$TEST_TMP/migrate.log" || {
    cat "$TEST_TMP/migrate.log" >&2
    fail "migrate"
}
check_line=$("${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/fencing_check" "$TEST_TMP/sql.conf") ||
    fail "fencing_check"
echo "$check_line"

# ---- 2. a zombie on real Kafka -------------------------------------------------------------------
HOMES=$(by_scale 6 3)
create_topics fencing
make_database db
group=fencing-$$
# Static members with short sessions: A's partitions move to B 6 s after A stops answering.
write_stream_config "$db" "$TEST_TMP/fencing.conf" "$group" kafka.session.timeout.ms=6000 \
    kafka.heartbeat.interval.ms=500
"$SOLARX_BIN" migrate -c "$TEST_TMP/fencing.conf" 2>"$TEST_TMP/migrate2.log" || fail "migrate"

# Data arrives all along (about 45 s), so that both instances always have work.
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --minutes 30 --rate 40 --seed 81 \
    --start "2025-02-14 00:00:00" --duplicates 0.01 --malformed 0.001 &
producer=$!

# A flushes every 4 s: whenever it is stopped, it holds a batch it has not written.
LOG_A=$TEST_TMP/a.log LOG_B=$TEST_TMP/b.log
SOLARX_SOLARX_HTTP_LISTEN=$HTTP_A SOLARX_SOLARX_FLUSH_INTERVAL_MS=4000 \
    "$SOLARX_BIN" run -c "$TEST_TMP/fencing.conf" 2>"$LOG_A" &
PID_A=$!
SOLARX_SOLARX_HTTP_LISTEN=$HTTP_B "$SOLARX_BIN" run -c "$TEST_TMP/fencing.conf" 2>"$LOG_B" &
PID_B=$!
cleanup_fencing() {
    kill -CONT "$PID_A" 2>/dev/null || true
    kill -KILL "$PID_A" "$PID_B" 2>/dev/null || true
    wait "$PID_A" "$PID_B" 2>/dev/null || true
    cleanup_stream_test
}
trap cleanup_fencing EXIT

# wait_log FILE PATTERN TIMEOUT_S WHAT [FROM_BYTE]
wait_log() {
    local deadline=$((SECONDS + $3))
    local text
    while :; do
        text=$(tail -c +$((${5:-0} + 1)) "$1")
        grep -qE "$2" <<<"$text" && break
        ((SECONDS < deadline)) || {
            tail -n 20 "$1" >&2
            fail "$4"
        }
        sleep 0.2
    done
}
# A holds partitions and has committed at least twice, and so has B.
wait_log "$LOG_A" 'event=flush_committed .* offsets=[1-9]' 60 "A never committed offsets"
wait_log "$LOG_B" 'event=flush_committed .* offsets=[1-9]' 60 "B never committed offsets"
claimed_a=$(grep -c 'event=partition_claimed' "$LOG_A")
((claimed_a > 0)) || fail "A claimed no partition"

# offsets_sample: PostgreSQL's offsets now; fails when one moved back since the last sample.
declare -A last_seen=()
samples=0
offsets_sample() {
    local topic partition next
    while read -r topic partition next; do
        [[ -n $topic ]] || continue
        if [[ -n ${last_seen["$topic $partition"]:-} ]] && ((next < last_seen["$topic $partition"])); then
            fail "the stored offset of $topic/$partition moved back: ${last_seen["$topic $partition"]} -> $next"
        fi
        last_seen["$topic $partition"]=$next
    done < <(pg_offsets "$db" "$group")
    samples=$((samples + 1))
}
offsets_sample

# A stops answering; B takes A's partitions over (session timeout), claims and commits them.
kill -STOP "$PID_A"
stopped_at=$SECONDS
mark_b=$(stat -c %s "$LOG_B")
wait_log "$LOG_B" 'event=partition_claimed' 30 "B did not claim A's partitions" "$mark_b"
wait_log "$LOG_B" 'event=flush_committed .* offsets=[1-9]' 30 "B did not commit after the takeover" \
    "$mark_b"
while ((SECONDS < stopped_at + 10)); do # a few more of B's commits over A's old partitions
    offsets_sample
    sleep 0.5
done
offsets_sample
declare -A b_wrote=()
for key in "${!last_seen[@]}"; do b_wrote[$key]=${last_seen[$key]}; done

# The zombie wakes up with its pending batch: the flush is fenced, nothing of it is stored.
mark_a=$(stat -c %s "$LOG_A")
kill -CONT "$PID_A"
wait_log "$LOG_A" 'event=flush_fenced' 30 "A's stale flush was not fenced" "$mark_a"
zombie_log=$(tail -c +$((mark_a + 1)) "$LOG_A")
fenced_line=$(grep -m1 'event=flush_fenced' <<<"$zombie_log")
echo "zombie: ${fenced_line#*event=}"
# Until A is assigned partitions again (a new claim), it stores no offset at all.
awk '/event=partition_claimed/ { exit } /event=flush_committed/ && !/ offsets=0 / { bad = 1; print }
     END { exit bad }' < <(tail -c +$((mark_a + 1)) "$LOG_A") >"$TEST_TMP/zombie-commits" ||
    fail "A committed offsets before claiming partitions again: $(cat "$TEST_TMP/zombie-commits")"
offsets_sample
for key in "${!b_wrote[@]}"; do
    ((last_seen[$key] >= b_wrote[$key])) ||
        fail "$key: stored offset ${last_seen[$key]} is behind what B wrote (${b_wrote[$key]})"
done

# Both go on to the end; then every valid reading is there exactly once.
wait "$producer" || fail "the producer failed"
producer=
deadline=$((SECONDS + 300))
want=$(topic_end_offsets)
until [[ $(pg_offsets "$db" "$group") == "$want" ]]; do
    ((SECONDS < deadline)) || fail "not caught up after 300 s"
    offsets_sample
    kill -0 "$PID_A" 2>/dev/null || fail "A died: $(tail -n 5 "$LOG_A")"
    kill -0 "$PID_B" 2>/dev/null || fail "B died: $(tail -n 5 "$LOG_B")"
    sleep 0.5
done
for pid in "$PID_A" "$PID_B"; do
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    assert_eq "$rc" 0 "exit status of $pid on SIGTERM"
done
assert_sim_written "$db" "$summary" "after the zombie and the restarts"
fenced=$(grep -c 'event=flush_fenced' "$LOG_A")

# ---- 3. an owner whose claim is overtaken while it holds partitions ------------------------------
# A claim made behind this instance's back (as a zombie's late claim would be) fences its next
# flush: the batch is dropped, the partitions it holds are rewound, it rejoins the group, claims
# again and goes on; nothing is lost.
make_database db3
group3=fencing-c-$$
write_stream_config "$db3" "$TEST_TMP/c.conf" "$group3" flush_max_readings=300
"$SOLARX_BIN" migrate -c "$TEST_TMP/c.conf" 2>"$TEST_TMP/migrate3.log" || fail "migrate"
# Every flush takes 0.2 s longer, so the backlog lasts while the claim is overtaken.
q "$db3" "create function public.test_slow_commit() returns trigger language plpgsql as \$\$
          begin
              if current_setting('solarx_test.slept', true) is distinct from 'y' then
                  perform set_config('solarx_test.slept', 'y', true);
                  perform pg_sleep(0.2);
              end if;
              return null;
          end \$\$;
          create constraint trigger test_slow_commit after update on solarx_meta.consumer_offsets
              deferrable initially deferred for each row execute function public.test_slow_commit()" \
    >/dev/null
start_service "$TEST_TMP/c.conf" c
wait_ready 60
wait_service_log 'event=flush_committed .* offsets=[1-9]' 60 "C never committed offsets"
read -r thief_topic thief_partition thief_epoch < <(q "$db3" "
    update solarx_meta.consumer_offsets o set owner_epoch = owner_epoch + 1, owner = 'thief'
      from (select topic, \"partition\" from solarx_meta.consumer_offsets
             where consumer_group = '$group3' and next_offset is not null
             order by topic, \"partition\" limit 1) t
     where o.consumer_group = '$group3' and o.topic = t.topic and o.\"partition\" = t.\"partition\"
    returning o.topic || ' ' || o.\"partition\" || ' ' || o.owner_epoch" | head -n 1)
[[ -n $thief_epoch ]] || fail "the thief claimed nothing"
wait_service_log 'event=flush_fenced' 30 "C's flush after the overtaken claim was not fenced"
# The rejoin is logged after the partitions are rewound (a seek each): wait for it.
wait_service_log 'event=group_rejoin' 30 "C did not rejoin after being fenced"
wait_caught_up "$db3" "$group3" 300
stop_service
final_epoch=$(q "$db3" "select owner_epoch from solarx_meta.consumer_offsets where consumer_group = '$group3'
                         and topic = '$thief_topic' and \"partition\" = $thief_partition")
((final_epoch > thief_epoch)) || fail "C did not claim $thief_topic/$thief_partition again"
assert_sim_written "$db3" "$summary" "after the overtaken claim"
rewound=$(service_log | grep -c 'event=partition_rewound' || true)
c_log=$(service_log)
echo "overtaken claim: $(grep -m1 'event=flush_fenced' <<<"$c_log" | sed 's/.*event=//')"

echo "PASS test_fencing scale=$SOLARX_TEST_SCALE zombie_fenced_flushes=$fenced" \
    "overtaken_rewound_partitions=$rewound offset_samples=$samples" \
    "valid_messages=$(($(sim_count "$summary" valid home) + $(sim_count "$summary" valid solar) +
        $(sim_count "$summary" valid battery))) total_s=$((SECONDS - started))"
