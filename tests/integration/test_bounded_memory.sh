#!/usr/bin/env bash
# P6 bounded memory: the service works through a 1M-message backlog (produced first) while its
# RSS is sampled every 0.05 s with the number of messages committed. Memory must not grow with the
# backlog or the run time: the peak RSS over the last quarter of the backlog stays within 10% of
# the peak over the second quarter. The first quarter is the warm-up (librdkafka's fetch buffers
# and the batch storage reach their size there, at a point that depends on the machine's speed),
# so it is no reference; memory that grows with the backlog shows as last-quarter peaks about
# twice the second quarter's, a leak of 10% of the plateau per half backlog still fails.
# Also measures the throughput (messages/s from ready to caught up).
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 100 10)
MINUTES=56
CHECKPOINT=$(by_scale 100000 10000)
create_topics memory
summary=$TEST_TMP/sim.json
produce "$summary" --homes "$HOMES" --minutes "$MINUTES" --seed 41 --duplicates 0.001 \
    --malformed 0.0001
total=$(topic_end_offsets | awk '{ n += $3 } END { print n + 0 }')
((total >= 10 * CHECKPOINT)) || fail "backlog of $total messages, expected >= $((10 * CHECKPOINT))"
produced=$SECONDS

make_database db
group=memory-$$
port=$(free_local_port)
# The service's shipped defaults for the flush (config/solarx-stream.conf); at the small scale the
# batches shrink with the backlog, so that CHECKPOINT still comes after several full batches.
write_stream_config "$db" "$TEST_TMP/memory.conf" "$group" flush_interval_ms=1000 \
    flush_max_readings="$(by_scale 50000 5000)" http_listen=127.0.0.1:$port
# Under ASan the RSS is the sanitizer allocator's (quarantine of freed blocks, size-class caches,
# shadow memory): the bound is asserted only on an uninstrumented build; the sanitizer pass
# still checks the data, the clean exit and the absence of reports.
asan=0
ldd "$SOLARX_BIN" | grep -q libasan && asan=1
# Migrated before the service starts: the sampler's psql session below stops at its first error,
# and an instrumented service may not have migrated when the first sample asks for the offsets.
"$SOLARX_BIN" migrate -c "$TEST_TMP/memory.conf" 2>"$TEST_TMP/migrate.log" ||
    fail "migrate: $(cat "$TEST_TMP/migrate.log")"
start_service "$TEST_TMP/memory.conf" memory

# RSS every 0.05 s with the number of messages committed to PostgreSQL. VmRSS saw-tooths (a batch
# is freed back to the system after each flush): each quarter is judged by its highest sample,
# and quarters hold dozens of flushes. VmHWM, the kernel's own peak, is reported alongside.
# A sample reads /proc with the shell's own read and asks one psql session kept open for the
# loop: a psql connection and two awk per sample took ~150 ms on a busy machine, too few samples
# per quarter once the catch-up took 7 s.
samples=$TEST_TMP/rss.samples
coproc COMMITTED { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" 2>&1; }
committed_messages() {
    local answer
    echo "select coalesce(sum(next_offset), 0) from solarx_meta.consumer_offsets
          where consumer_group = '$group';" >&"${COMMITTED[1]}"
    read -r -t 30 answer <&"${COMMITTED[0]}" || fail "psql did not answer the sampling query"
    [[ $answer =~ ^[0-9]+$ ]] || fail "sampling query: $answer"
    n=$answer
}
rss_at_checkpoint='' hwm_at_checkpoint='' hwm_at_half='' peak_rss=0 n=0
deadline=$((SECONDS + $(by_scale 300 300)))
while ((n < total)); do
    rss='' hwm=''
    while read -r key value _; do
        case $key in
        VmRSS:) rss=$value ;;
        VmHWM:) hwm=$value ;;
        esac
    done 2>/dev/null <"/proc/$SERVICE_PID/status" || true
    [[ -n $rss ]] || {
        service_log | tail -n 20 >&2
        fail "the service exited"
    }
    committed_messages
    echo "$SECONDS $rss $hwm $n" >>"$samples"
    ((rss > peak_rss)) && peak_rss=$rss
    if [[ -z $rss_at_checkpoint ]] && ((n >= CHECKPOINT)); then
        rss_at_checkpoint=$rss
        hwm_at_checkpoint=$hwm
    fi
    [[ -z $hwm_at_half ]] && ((2 * n >= total)) && hwm_at_half=$hwm
    ((SECONDS < deadline)) || fail "not caught up after $((deadline - produced))s ($n of $total)"
    sleep 0.05 # a catch-up takes ~7 s: each quarter needs its samples
done
sampler_in=${COMMITTED[1]}
exec {sampler_in}>&-
wait "$COMMITTED_PID"
hwm_end=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVICE_PID/status")
wait_caught_up "$db" "$group" 60
metrics=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics") || fail "no /metrics"
stop_service
[[ -n $hwm_at_checkpoint ]] || fail "no sample at $CHECKPOINT messages"
nsamples=$(wc -l <"$samples")

# Every valid reading is there (memory was not saved by dropping data).
v_home=$(sim_count "$summary" valid home)
v_solar=$(sim_count "$summary" valid solar)
v_battery=$(sim_count "$summary" valid battery)
assert_eq "$(q "$db" "select (select count(*) from solarx_raw.home_power_readings) || ' ' ||
                             (select count(*) from solarx_raw.solar_panel_readings) || ' ' ||
                             (select count(*) from solarx_raw.battery_readings)")" \
    "$v_home $v_solar $((3 * v_battery))" "raw rows"

# Every message was consumed once: waking librdkafka 2.0's fetcher by seeking (kafka.c) must
# neither skip nor fetch anything again. On librdkafka 2.0 a backlog over queued.min.messages
# wakes it at least once; from 2.1 on, fetch.queue.backoff.ms does that job and nothing is nudged.
consumed=$(awk '/^solarx_messages_consumed_total/ { n += $2 } END { print n + 0 }' <<<"$metrics")
nudges=$(awk '/^solarx_kafka_fetch_nudges_total/ { print $2 }' <<<"$metrics")
assert_eq "$consumed" "$total" "messages consumed (solarx_messages_consumed_total)"
if grep -q 'event=kafka_fetch .*full_queue=nudge' "$SERVICE_LOG"; then
    ((nudges > 0)) || fail "librdkafka 2.0 and a backlog of $total: the fetcher was never nudged"
else
    assert_eq "$nudges" 0 "fetch nudges with fetch.queue.backoff.ms"
fi

# Throughput: from event=ready to the transaction that stored the last offsets.
ready_ts=$(grep -m1 'event=ready' "$SERVICE_LOG" | sed -E 's/^ts=([^ ]+) .*/\1/')
seconds=$(q "$db" "select round(extract(epoch from max(updated_at) - '$ready_ts'::timestamptz), 2)
                     from solarx_meta.consumer_offsets where consumer_group = '$group'")
rate=$(awk -v n="$total" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
readings=$((v_home + v_solar + 3 * v_battery))

# Peak sampled RSS per quarter of the backlog (by messages committed when sampled).
read -r q1 q2 q3 q4 c2 c4 < <(awk -v total="$total" '
    { q = int(4 * $4 / total); if (q > 3) q = 3
      if ($2 > peak[q]) peak[q] = $2; count[q]++ }
    END { printf "%d %d %d %d %d %d\n", peak[0], peak[1], peak[2], peak[3], count[1], count[3] }' \
    "$samples")

report="messages=$total readings=$readings seconds=$seconds msgs_per_s=$rate fetch_nudges=$nudges"
report+=" rss_at_${CHECKPOINT}_kb=$rss_at_checkpoint hwm_at_${CHECKPOINT}_kb=$hwm_at_checkpoint"
report+=" hwm_at_half_kb=$hwm_at_half hwm_end_kb=$hwm_end peak_rss_sampled_kb=$peak_rss"
report+=" quarter_peaks_kb=$q1,$q2,$q3,$q4 samples=$nsamples"
if ((asan)); then
    report+=" (ASan build: the 1.10 bound is not asserted)"
elif [[ $SOLARX_TEST_SCALE == small ]]; then
    # A 100k backlog is worked through in a few seconds: too few samples per quarter to judge.
    report+=" (small scale: the 1.10 bound is asserted at full scale only)"
else
    # A quarter with too few samples cannot stand for its peak: the test would prove nothing.
    ((c2 >= 10 && c4 >= 10)) ||
        fail "too few RSS samples to judge (second quarter $c2, last quarter $c4): $report"
    if ((q4 * 100 > q2 * 110)); then
        awk 'NR % 10 == 1' "$samples" | head -n 60 >&2
        fail "memory grew with the backlog (last quarter's peak over 1.10 x the second's): $report"
    fi
fi
echo "PASS test_bounded_memory scale=$SOLARX_TEST_SCALE $report" \
    "produce_s=$((produced - started)) total_s=$((SECONDS - started))"
