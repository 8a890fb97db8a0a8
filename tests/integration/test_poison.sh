#!/usr/bin/env bash
# P5/P7 poison isolation: one record never stops the stream. The same simulated stream goes into
# two sets of topics; the poison set also carries poison messages, consumed by a service that is
# SIGKILLed a few times while the data arrives:
#   - readings far in the future (2036, 9999) -> future_timestamp; before 1970 -> bad_timestamp
#   - a 900 KB message over max_message_bytes -> too_large (first 64 KiB, length, SHA-256 kept)
#   - a 300 KB broken message under it -> invalid_json, kept whole
#   - a reading that decodes fine but PostgreSQL rejects (a CHECK constraint an operator added:
#     no home uses more than 500 Wh in one second) -> the batch is split until that message is
#     alone -> postgres_rejected; everything else of the batch commits
# Every poison message is a dead letter with its reason; raw, fact and dimension tables equal an
# uninterrupted run of the clean set; SIGTERM exits 0. A rejected message in the first flush after
# a start (which also writes the registry) is isolated too. Then stop_timeout_s: with the database
# made read-only under the running service (every flush refused, PostgreSQL itself stays up for
# the other tests), SIGTERM exits 75 after stop_timeout_s without storing or committing the
# unwritten batch's offsets, and a restart writes it.
# shellcheck source=lib.sh disable=SC2154 # variables set by make_database and printf -v
source "$(dirname "$0")/lib.sh"

started=$SECONDS
HOMES=$(by_scale 5 2)
MINUTES=$(by_scale 60 20)
RATE=100 # event seconds per wall second while the service is killed and restarted
MIN_KILLS=3
MAX_MESSAGE_BYTES=524288

create_topics poison-clean
clean_home=$TOPIC_HOME clean_solar=$TOPIC_SOLAR clean_battery=$TOPIC_BATTERY
create_topics poison
poison_topics=("$TOPIC_HOME" "$TOPIC_SOLAR" "$TOPIC_BATTERY")
sim_args=(--homes "$HOMES" --minutes "$MINUTES" --seed 23 --start "2025-02-14 00:00:00"
    --duplicates 0.01 --disorder 0.01)

# ---- the poison ----------------------------------------------------------------------------
poison_home=$TEST_TMP/poison-home.jsonl
poison_battery=$TEST_TMP/poison-battery.jsonl
big=$TEST_TMP/big.json # 900 KB, valid JSON even: too_large is decided before decoding
{
    printf '{"time_stamp": "2025-02-14 00:10:00", "home_id": 98, "current_consumption_w": 0.5, '
    printf '"consumption_accumulated_w": 1, "pad": "'
    head -c 921000 /dev/zero | tr '\0' x
    printf '"}'
} >"$big"
big_bytes=$(stat -c %s "$big")
big_sha=$(sha256sum "$big" | cut -d' ' -f1)
{
    echo '{"time_stamp": "2036-12-02 10:00:00", "home_id": 98, "current_consumption_w": 0.5, "consumption_accumulated_w": 1}'
    echo '{"time_stamp": "9999-12-31 23:59:59", "home_id": 98, "current_consumption_w": 0.5, "consumption_accumulated_w": 1}'
    echo '{"time_stamp": "1969-12-31 23:59:59", "home_id": 98, "current_consumption_w": 0.5, "consumption_accumulated_w": 1}'
    cat "$big"
    echo
    printf '{"time_stamp": "2025-02-14 00:11:00", "home_id": 98, "pad": "'
    head -c 300000 /dev/zero | tr '\0' y
    echo # no closing quote: invalid_json, kept whole
    echo '{"time_stamp": "2025-02-14 00:05:00", "home_id": 99, "current_consumption_w": 600, "consumption_accumulated_w": 600}'
} >"$poison_home"
echo '{"time_stamp": "1970-01-01T00:30:00+01:00", "home_id": 98, "batteries": {"battery_1": {"capacity_kwh": 12, "max_charge_speed_w": 1, "current_energy_wh": 9860, "is_charging": 0, "status": "ideal", "max_output_w": 3.33}}}' >"$poison_battery"
want_reasons="bad_timestamp 2
future_timestamp 2
invalid_json 1
postgres_rejected 1
too_large 1"

produce_lines() { # TOPIC FILE: FILE's lines, unkeyed, with the console producer
    kafka_tool kafka.tools.ConsoleProducer --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
        --topic "$1" --producer-property acks=all --producer-property max.request.size=2097152 \
        <"$2" >"$TEST_TMP/produce-$1.log" 2>&1 ||
        fail "console producer into $1: $(tail -n 5 "$TEST_TMP/produce-$1.log")"
}

# ---- the poison run: data arrives while the service is killed; the poison mid-stream ---------
make_database dbp
groupp=poison-p-$$
write_stream_config "$dbp" "$TEST_TMP/p.conf" "$groupp" flush_interval_ms=200 \
    flush_max_readings=2000 max_message_bytes=$MAX_MESSAGE_BYTES stop_timeout_s=3 \
    kafka.group.instance.id="poison-p-$$"
"$SOLARX_BIN" migrate -c "$TEST_TMP/p.conf" >"$TEST_TMP/migrate.log" 2>&1 ||
    fail "migrate: $(cat "$TEST_TMP/migrate.log")"
# An operator's plausibility rule the decoder does not know: PostgreSQL alone rejects home 99.
q "$dbp" "alter table solarx_raw.home_power_readings
            add constraint home_power_plausible check (consumption_wh <= 500)" >/dev/null

summary=$TEST_TMP/sim.json
produce "$summary" "${sim_args[@]}" --rate "$RATE" &
producer=$!
(
    sleep "$(by_scale 8 4)"
    produce_lines "$TOPIC_HOME" "$poison_home"
    produce_lines "$TOPIC_BATTERY" "$poison_battery"
) &
poisoner=$!

kills=0 producing=1
while ((producing || kills < MIN_KILLS)); do
    kill -0 "$producer" 2>/dev/null || producing=0
    start_service "$TEST_TMP/p.conf" run-p
    ms=$((2000 + RANDOM % 3001))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -0 "$SERVICE_PID" 2>/dev/null || {
        service_log | tail -n 20 >&2
        fail "the service died on its own in life $((kills + 1))"
    }
    kill_service
    kills=$((kills + 1))
    ((kills <= 100)) || fail "more than 100 kills and the producer is still running"
done
wait "$producer" || fail "the producer failed"
wait "$poisoner" || fail "producing the poison failed"
start_service "$TEST_TMP/p.conf" run-p
wait_caught_up "$dbp" "$groupp" 300

# ---- stop_timeout_s: a batch no flush can write, SIGTERM -------------------------------------
# default_transaction_read_only for new sessions, then the service's sessions are ended: it
# reconnects to a read-only database, where every flush fails (25006, systemic: retried, never
# split) and the messages produced now cannot be written.
q "$dbp" "alter database \"$dbp\" set default_transaction_read_only = on" >/dev/null
q "$dbp" "select count(pg_terminate_backend(pid)) from pg_stat_activity
           where datname = '$dbp' and pid <> pg_backend_pid()" >/dev/null
extra=$TEST_TMP/extra-home.jsonl
for s in 1 2 3 4 5; do
    echo "{\"time_stamp\": \"2025-02-14 00:20:0$s\", \"home_id\": 97, \"current_consumption_w\": 0.25, \"consumption_accumulated_w\": $s}"
done >"$extra"
offsets_before=$(pg_offsets "$dbp" "$groupp")
produce_lines "$TOPIC_HOME" "$extra"
wait_service_log 'event=flush_failed.*sqlstate=25006 failure=systemic' 60 \
    "no refused flush of the extra messages"
kill -TERM "$SERVICE_PID"
term_at=$SECONDS
rc=0
wait "$SERVICE_PID" || rc=$?
SERVICE_PID=
assert_eq "$rc" 75 "exit status after stop_timeout_s with an unwritable batch"
((SECONDS - term_at <= 3 + 10)) || fail "the stop took $((SECONDS - term_at)) s (stop_timeout_s=3)"
service_log_has 'event=stop_timeout' || fail "no event=stop_timeout in the log"
q postgres "alter database \"$dbp\" reset default_transaction_read_only" >/dev/null
assert_eq "$(pg_offsets "$dbp" "$groupp")" "$offsets_before" "offsets stored after the timeout"
while read -r topic partition committed _; do
    stored=$(q "$dbp" "select next_offset from solarx_meta.consumer_offsets
                        where consumer_group = '$groupp' and topic = '$topic'
                          and \"partition\" = $partition")
    [[ $committed == - ]] || ((committed <= stored)) ||
        fail "Kafka's committed offset $committed of $topic/$partition passes PostgreSQL's $stored"
done < <(kafka_committed_offsets "$groupp")
# The restart writes what the timed-out stop left.
start_service "$TEST_TMP/p.conf" run-p
wait_caught_up "$dbp" "$groupp" 120
stop_service

# ---- every poison message is a dead letter with its reason -----------------------------------
assert_eq "$(q "$dbp" "select reason || ' ' || count(*) from solarx_raw.dead_letters
                        group by reason order by reason")" "$want_reasons" "dead letters by reason"
assert_eq "$(q "$dbp" "select payload_bytes || ' ' || octet_length(payload) || ' '
                               || encode(payload_sha256, 'hex')
                          from solarx_raw.dead_letters where reason = 'too_large'")" \
    "$big_bytes 65536 $big_sha" "the too_large dead letter: length, kept bytes, digest"
assert_eq "$(q "$dbp" "select octet_length(payload) = payload_bytes and payload_bytes > 300000
                          from solarx_raw.dead_letters where reason = 'invalid_json'")" t \
    "the 300 KB invalid_json message is kept whole"
rejected=$(q "$dbp" "select error || ' | ' || convert_from(payload, 'UTF8')
                       from solarx_raw.dead_letters where reason = 'postgres_rejected'")
[[ $rejected == *"sqlstate 23514"*home_power_plausible*'"home_id": 99'*'"current_consumption_w": 600.000000'* ]] ||
    fail "postgres_rejected dead letter: $rejected"
assert_eq "$(q "$dbp" "select count(*) from solarx_raw.dead_letters d
                          where d.error like 'future_timestamp: %ahead of the clock%'")" 2 \
    "future_timestamp reasons"
assert_eq "$(q "$dbp" "select count(*) from solarx_raw.home_power_readings where home_id in (98, 99)")" \
    0 "raw rows of poison homes"
# Day partitions only for days that hold data (the far-future readings created none).
assert_eq "$(q "$dbp" "select string_agg(distinct right(c.relname, 8), ',' order by right(c.relname, 8))
                         from pg_inherits i join pg_class c on c.oid = i.inhrelid
                        where i.inhparent = 'solarx_raw.home_power_readings'::regclass")" \
    "20250214" "raw day partitions"
isolations=$(grep -c 'event=flush_isolating' "$SERVICE_LOG" || true)
((isolations >= 1)) || fail "no event=flush_isolating in the logs"

# ---- the clean run: the same stream without the poison, uninterrupted -------------------------
TOPIC_HOME=$clean_home TOPIC_SOLAR=$clean_solar TOPIC_BATTERY=$clean_battery
produce "$TEST_TMP/sim-clean.json" "${sim_args[@]}"
produce_lines "$TOPIC_HOME" "$extra"
make_database dbc
groupc=poison-c-$$
write_stream_config "$dbc" "$TEST_TMP/c.conf" "$groupc" max_message_bytes=$MAX_MESSAGE_BYTES
start_service "$TEST_TMP/c.conf" run-c
wait_caught_up "$dbc" "$groupc" 300
stop_service
assert_eq "$(q "$dbc" "select count(*) from solarx_raw.dead_letters")" 0 "clean dead letters"

# Raw, fact and dimension tables: equal (dead letters differ by the poison, checked above).
digest_p=$(digest "$dbp" | grep -v '^solarx_raw.dead_letters ')
digest_c=$(digest "$dbc" | grep -v '^solarx_raw.dead_letters ')
assert_same_digest clean "$digest_c" poison "$digest_p"
# ---- a rejected message in the first flush after a start, which also writes the registry -------
# The registry's writes are tried alone first (never blamed on a message), then the message.
# Whether the first flush after a start carries a message is a race between the first fetch and
# the PostgreSQL connection, so the registry's writes are made to fail first (42501, systemic:
# retried, never split) until the message has joined them in the batch; then they may again.
TOPIC_HOME=${poison_topics[0]} TOPIC_SOLAR=${poison_topics[1]} TOPIC_BATTERY=${poison_topics[2]}
echo '{"time_stamp": "2025-02-14 00:06:00", "home_id": 99, "current_consumption_w": 700, "consumption_accumulated_w": 700}' \
    >"$TEST_TMP/poison-late.jsonl"
produce_lines "$TOPIC_HOME" "$TEST_TMP/poison-late.jsonl"
q "$dbp" "revoke delete on solarx_wh.dim_home_appliances from solarx_app" >/dev/null
start_service "$TEST_TMP/p.conf" run-p2
wait_service_log 'event=flush_failed readings=1 sqlstate=42501' 60 \
    "the late message did not join the refused registry writes"
q "$dbp" "grant delete on solarx_wh.dim_home_appliances to solarx_app" >/dev/null
wait_caught_up "$dbp" "$groupp" 120
stop_service
service_log_has 'event=flush_isolating messages=1 first=registry' ||
    fail "the registry's writes were not tried alone first"
assert_eq "$(q "$dbp" "select count(*) from solarx_raw.dead_letters where reason = 'postgres_rejected'")" \
    2 "postgres_rejected dead letters"

messages=$(jq -r '[.messages[]] | add' "$summary")
rows=$(awk '{ n += $2 } END { print n }' <<<"$digest_c")
echo "PASS test_poison scale=$SOLARX_TEST_SCALE messages=$messages rows=$rows kills=$kills" \
    "poison=8 isolations=$isolations stop_timeout_exit=75 total_s=$((SECONDS - started))"
