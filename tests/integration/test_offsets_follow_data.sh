#!/usr/bin/env bash
# P4 offsets follow data: while the service works through a backlog and a live stream (small,
# frequent flushes, each COMMIT slowed down by 0.3 s), Kafka's committed offset of every partition is never ahead of the offset
# PostgreSQL stores (Kafka read first, then PostgreSQL); at the end they are equal. And with
# PostgreSQL's offsets set ahead of Kafka's by hand, a restart resumes at PostgreSQL's.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 20 4)
MIN_SAMPLES=20
create_topics offsets
produce "$TEST_TMP/backlog.json" --homes "$HOMES" --minutes 30 --seed 31 \
    --start "2025-02-14 00:00:00" --duplicates 0.01 --malformed 0.001

make_database db
group=offsets-$$
write_stream_config "$db" "$TEST_TMP/offsets.conf" "$group" flush_interval_ms=100 \
    flush_max_readings=2000
"$SOLARX_BIN" migrate -c "$TEST_TMP/offsets.conf" 2>"$TEST_TMP/migrate.log" || fail "migrate"
# Every flush's COMMIT takes 0.3 s longer (a deferred trigger sleeps once per transaction that
# writes offsets): a service that told Kafka before PostgreSQL's COMMIT returned would show
# Kafka ahead for that long, every flush, and the samples below would see it.
q "$db" "create function public.test_slow_commit() returns trigger language plpgsql as \$\$
         begin
             if current_setting('solarx_test.slept', true) is distinct from 'y' then
                 perform set_config('solarx_test.slept', 'y', true);
                 perform pg_sleep(0.3);
             end if;
             return null;
         end \$\$;
         create constraint trigger test_slow_commit
             after insert or update on solarx_meta.consumer_offsets
             deferrable initially deferred for each row execute function public.test_slow_commit()" \
    >/dev/null
start_service "$TEST_TMP/offsets.conf" run
wait_ready 60
# A live stream on top of the backlog, 30 s long whatever the service's speed.
produce "$TEST_TMP/live.json" --homes "$HOMES" --minutes 5 --rate 10 --seed 32 \
    --start "2025-02-14 01:00:00" &
producer=$!

# check_sample: Kafka's committed offsets, then PostgreSQL's; fails if Kafka is ahead anywhere.
samples=0 live_samples=0 lagging=0 kafka_behind=0
check_sample() {
    local kafka pg topic partition committed end stored
    local -A pg_at=()
    # No sample when a tool cannot answer or the group is rebalancing (empty answer).
    kafka=$(kafka_committed_offsets "$group" 2>/dev/null) || return 0
    pg=$(pg_offsets "$db" "$group") || return 0
    [[ -n $kafka ]] || return 0
    while read -r topic partition stored; do
        pg_at["$topic $partition"]=$stored
    done <<<"$pg"
    local lag=0 behind=0
    while read -r topic partition committed end; do
        [[ $committed != - ]] || continue
        stored=${pg_at["$topic $partition"]:-}
        [[ -n $stored ]] ||
            fail "sample $samples: Kafka has offset $committed for $topic/$partition, PostgreSQL none"
        ((committed <= stored)) ||
            fail "sample $samples: $topic/$partition Kafka committed $committed > PostgreSQL $stored"
        ((committed < stored)) && behind=1
        ((committed < end)) && lag=1
    done <<<"$kafka"
    samples=$((samples + 1))
    lagging=$((lagging + lag))
    kafka_behind=$((kafka_behind + behind))
}
while kill -0 "$producer" 2>/dev/null; do
    check_sample
    live_samples=$samples
done
wait "$producer" || fail "the live producer failed"
deadline=$((SECONDS + 120))
while ((samples < MIN_SAMPLES)); do
    ((SECONDS < deadline)) || fail "only $samples samples in time"
    check_sample
done
((live_samples >= 10)) || fail "only $live_samples samples while the live stream ran"
((lagging > 0)) || fail "no sample saw the service behind the end of the topics"

# The end: PostgreSQL at the end offsets, Kafka's commits equal to PostgreSQL's.
wait_caught_up "$db" "$group" 300
end_offsets=$(topic_end_offsets)
deadline=$((SECONDS + 30))
until [[ $(kafka_committed_offsets "$group" | awk '$4 > 0 { print $1, $2, $3 }') == "$end_offsets" ]]; do
    ((SECONDS < deadline)) || {
        kafka_committed_offsets "$group" >&2
        echo "PostgreSQL:" >&2
        pg_offsets "$db" "$group" >&2
        fail "Kafka's committed offsets do not reach PostgreSQL's"
    }
    sleep 0.5
done
assert_eq "$(pg_offsets "$db" "$group")" "$end_offsets" "PostgreSQL offsets at the end"
stop_service
sampled_s=$((SECONDS - started))

# ---- PostgreSQL ahead of Kafka: resumption follows PostgreSQL ----------------------------------
kafka_before=$(kafka_committed_offsets "$group" | awk '$4 > 0 { print $1, $2, $3 }')
produce "$TEST_TMP/more.json" --homes 5 --minutes 2 --seed 33 --start "2025-02-14 02:00:00"
ahead=$(topic_end_offsets)
[[ $ahead != "$kafka_before" ]] || fail "producing more did not move the end offsets"
while read -r topic partition end; do
    q "$db" "insert into solarx_meta.consumer_offsets (consumer_group, topic, \"partition\", next_offset)
             values ('$group', '$topic', $partition, $end)
             on conflict (consumer_group, topic, \"partition\") do update set next_offset = excluded.next_offset" \
        >/dev/null
done <<<"$ahead"
raw_counts="select (select count(*) from solarx_raw.home_power_readings) || ' ' ||
                   (select count(*) from solarx_raw.solar_panel_readings) || ' ' ||
                   (select count(*) from solarx_raw.battery_readings) || ' ' ||
                   (select count(*) from solarx_raw.dead_letters)"
raw_before=$(q "$db" "$raw_counts")
start_service "$TEST_TMP/offsets.conf" resume
wait_ready 60
partitions=$(wc -l <<<"$ahead")
deadline=$((SECONDS + 30))
until (($(service_log | grep -c 'event=partition_start') >= partitions)); do
    ((SECONDS < deadline)) || fail "not every partition started from PostgreSQL's offsets"
    sleep 0.1
done
# Every partition starts at PostgreSQL's offset, not at Kafka's.
started_at=$(service_log | grep 'event=partition_start' |
    sed -E 's/.* topic=([^ ]+) partition=([0-9]+) offset=([0-9]+) source=postgres.*/\1 \2 \3/' | sort)
assert_eq "$started_at" "$ahead" "partition start offsets"
sleep 3 # 30 flush intervals: time enough to consume the new messages if it resumed at Kafka's
stop_service
assert_eq "$(log_sum readings)" 0 "readings consumed after resuming at PostgreSQL's offsets"
service_log_has 'event=stopping consumed=0 ' || fail "the resumed service consumed messages"
assert_eq "$(q "$db" "$raw_counts")" "$raw_before" "raw rows after resuming"

echo "PASS test_offsets_follow_data scale=$SOLARX_TEST_SCALE samples=$samples" \
    "live_samples=$live_samples samples_lagging=$lagging samples_kafka_behind_pg=$kafka_behind" \
    "resume_partitions=$partitions sampled_s=$sampled_s total_s=$((SECONDS - started))"
