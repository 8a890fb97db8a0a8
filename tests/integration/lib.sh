# Shared by the integration tests: the services' environment, a scratch database, and checks.
# Sourced, not run. Every test fails (never skips) when the services are not up: the test
# runner (scripts/test.sh) starts them first.
set -euo pipefail

SOLARX_SOURCE_DIR=${SOLARX_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SOLARX_BUILD_DIR=${SOLARX_BUILD_DIR:-$SOLARX_SOURCE_DIR/build}
SOLARX_RUN_DIR=${SOLARX_RUN_DIR:-/tmp/solarx-run}
SOLARX_BIN=$SOLARX_BUILD_DIR/solarx-stream
SOLARX_SIM=$SOLARX_BUILD_DIR/solarx-sim

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

if [[ ! -f $SOLARX_RUN_DIR/env ]]; then
    fail "$SOLARX_RUN_DIR/env not found: start the services with scripts/services.sh up"
fi
# shellcheck disable=SC1091
source "$SOLARX_RUN_DIR/env"
# Each test writes its own configuration (its own database and group): the services' defaults
# must not override it through SOLARX_<SECTION>_<KEY>.
unset SOLARX_POSTGRES_CONNINFO SOLARX_POSTGRES_MIGRATE_CONNINFO

# SOLARX_TEST_TMPDIR (default /tmp): where the test's scratch directory is made.
TEST_TMP=$(mktemp -d "${SOLARX_TEST_TMPDIR:-/tmp}/solarx-$(basename "$0" .sh)-XXXXXX")
# Every database this test creates starts with this prefix, so that cleanup finds them even when
# they were created in a $(...) subshell.
TEST_DB_PREFIX="solarx_t_$(basename "$0" .sh | tr -c 'a-z0-9_\n' _)_$$_"

cleanup_test() {
    local db
    # One name per line, whatever IFS the caller has set.
    while IFS= read -r db; do
        [[ -n $db ]] || continue
        psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done < <(psql -X -A -t -d postgres -c \
        "select datname from pg_database where starts_with(datname, '$TEST_DB_PREFIX')" 2>/dev/null)
    rm -rf "$TEST_TMP"
}
trap cleanup_test EXIT

# Creates an empty database and prints its name (unique even across subshells); it is dropped
# when the test exits. Use as: db=$(new_database)
new_database() {
    local db n=0
    while :; do
        db="$TEST_DB_PREFIX$n"
        # Owned by solarx_owner, so that the migration role may create the schemas in it.
        if psql -q -d postgres -c "CREATE DATABASE \"$db\" OWNER solarx_owner" >/dev/null 2>&1; then
            echo "$db"
            return 0
        fi
        n=$((n + 1))
        ((n < 100)) || fail "cannot create a test database ($db)"
    done
}

# Writes a configuration for database $1 to $2 (Kafka group $3, default solarx-test). The service
# runs as the runtime role solarx_app; `migrate` and migrate_on_start connect as solarx_migrate
# (scripts/services.sh creates both; README.md, "Least privilege"). psql here is the superuser.
write_config() {
    local db=$1 out=$2 group=${3:-solarx-test-$$}
    cat >"$out" <<CONF
[solarx]
source_timezone = UTC
flush_interval_ms = 200
http_listen =
appliances_file = $SOLARX_SOURCE_DIR/config/home_appliances_consumption.json
panels_file = $SOLARX_SOURCE_DIR/config/solar_panels.json
migrations_dir = $SOLARX_SOURCE_DIR/migrations
[kafka]
bootstrap.servers = $SOLARX_KAFKA_BOOTSTRAP_SERVERS
group.id = $group
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=solarx_app dbname=$db
migrate_conninfo = host=$PGHOST port=$PGPORT user=solarx_migrate dbname=$db
CONF
}

assert_eq() {
    [[ "$1" == "$2" ]] || fail "${3:-values differ}: expected '$2', got '$1'"
}

# Runs psql on database $1 with query $2, unaligned, tuples only.
q() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# ---- Streaming tests: topics, the simulator, the service, catch-up and digests ----------------
# Used by test_stream_e2e.sh, test_exactly_once_sigkill.sh, test_replay.sh,
# test_offsets_follow_data.sh and test_bounded_memory.sh.

# SOLARX_TEST_SCALE: "full" (default, the sizes the properties are claimed at) or "small" (about
# ten times less data, for the sanitizer pass).
SOLARX_TEST_SCALE=${SOLARX_TEST_SCALE:-full}
case $SOLARX_TEST_SCALE in
full | small) ;;
*) fail "SOLARX_TEST_SCALE=$SOLARX_TEST_SCALE: expected full or small" ;;
esac

# by_scale FULL SMALL: prints the value for the current scale.
by_scale() {
    if [[ $SOLARX_TEST_SCALE == small ]]; then echo "$2"; else echo "$1"; fi
}

# kafka_tool CLASS ARGS...: runs one of Kafka's Java tools (see scripts/kafka-run.sh).
kafka_tool() {
    "$SOLARX_SOURCE_DIR/scripts/kafka-run.sh" "$@"
}

STREAM_TOPICS=()   # every topic create_topics made; deleted at exit
SERVICE_PID=       # the service start_service runs, if any
SERVICE_LOG=       # its log (stderr), appended to by every start
SERVICE_LOG_MARK=0 # size of SERVICE_LOG when the current instance started

# Kills a service still running, deletes the test's topics, then the rest of cleanup_test.
# Sanitizer reports in the services' logs are copied to stderr first (the logs are deleted with
# TEST_TMP, and the test runner looks for reports in the test's output).
cleanup_stream_test() {
    local log
    if [[ -n $SERVICE_PID ]] && kill -0 "$SERVICE_PID" 2>/dev/null; then
        kill -KILL "$SERVICE_PID" 2>/dev/null || true
        wait "$SERVICE_PID" 2>/dev/null || true
    fi
    for log in "$TEST_TMP"/*.log; do
        [[ -f $log ]] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$log"; then
            echo "--- sanitizer report in $(basename "$log"):" >&2
            grep -vE '^ts=' "$log" | head -n 80 >&2
        fi
    done
    if ((${#STREAM_TOPICS[@]} > 0)); then
        local pattern attempt
        pattern=$(IFS='|' && echo "^(${STREAM_TOPICS[*]})\$")
        for attempt in 1 2 3; do # the broker may be restarting (another test's fault injection)
            kafka_tool org.apache.kafka.tools.TopicCommand \
                --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --delete \
                --topic "$pattern" >/dev/null 2>&1 && break
            sleep 2
        done
    fi
    if [[ ${SOLARX_TEST_KEEP:-0} == 1 ]]; then
        echo "SOLARX_TEST_KEEP=1: kept databases $TEST_DB_PREFIX* and $TEST_TMP" >&2
        return
    fi
    cleanup_test
}

# create_topics PREFIX: creates three fresh topics (3 partitions each) named
# PREFIX-<pid>-home|solar|battery and sets TOPIC_HOME, TOPIC_SOLAR, TOPIC_BATTERY. They are
# deleted when the test exits.
create_topics() {
    local kind pids=() t
    TOPIC_HOME="$1-$$-home"
    TOPIC_SOLAR="$1-$$-solar"
    TOPIC_BATTERY="$1-$$-battery"
    trap cleanup_stream_test EXIT
    for t in "$TOPIC_HOME" "$TOPIC_SOLAR" "$TOPIC_BATTERY"; do
        STREAM_TOPICS+=("$t")
        kafka_tool org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --create --topic "$t" \
            --partitions 3 --replication-factor 1 >"$TEST_TMP/create-$t.log" 2>&1 &
        pids+=($!)
    done
    for kind in "${pids[@]}"; do
        wait "$kind" || fail "cannot create topics $1-$$-*: $(cat "$TEST_TMP"/create-"$1"-*.log)"
    done
}

# produce SUMMARY ARGS...: runs solarx-sim into the current topics with ARGS; its JSON summary
# line goes to SUMMARY.
produce() {
    local out=$1
    shift
    "$SOLARX_SIM" --brokers "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --topic-home "$TOPIC_HOME" \
        --topic-solar "$TOPIC_SOLAR" --topic-battery "$TOPIC_BATTERY" "$@" \
        >"$out" 2>"$out.log" || {
        cat "$out.log" >&2
        fail "solarx-sim $* failed"
    }
}

# sim_count SUMMARY FIELD KIND: a count of a solarx-sim summary (FIELD: messages, valid,
# duplicates, malformed, late, reordered; KIND: home, solar, battery).
sim_count() {
    local topic
    case $3 in
    home) topic=$TOPIC_HOME ;;
    solar) topic=$TOPIC_SOLAR ;;
    battery) topic=$TOPIC_BATTERY ;;
    *) fail "sim_count: unknown kind $3" ;;
    esac
    jq -er --arg t "$topic" ".$2[\$t] // 0" "$1"
}

# assert_sim_written DB SUMMARY WHAT: DB holds exactly what the solarx-sim SUMMARY produced: a
# raw row per valid reading (three per battery message), a dead letter per malformed message,
# and facts that count every valid reading once.
assert_sim_written() {
    local v_home v_solar v_battery malformed=0 kind
    v_home=$(sim_count "$2" valid home)
    v_solar=$(sim_count "$2" valid solar)
    v_battery=$(sim_count "$2" valid battery)
    for kind in home solar battery; do
        malformed=$((malformed + $(sim_count "$2" malformed "$kind")))
    done
    assert_eq "$(q "$1" "select (select count(*) from solarx_raw.home_power_readings) || ' ' ||
                                (select count(*) from solarx_raw.solar_panel_readings) || ' ' ||
                                (select count(*) from solarx_raw.battery_readings) || ' ' ||
                                (select count(*) from solarx_raw.dead_letters)")" \
        "$v_home $v_solar $((3 * v_battery)) $malformed" "raw rows and dead letters: $3"
    assert_eq "$(q "$1" "select (select sum(readings_count) from solarx_wh.fact_home_power_readings) || ' ' ||
                                (select sum(readings_count) from solarx_wh.fact_solar_panel_power_readings) || ' ' ||
                                (select sum(readings_count) from solarx_wh.fact_battery_power_readings)")" \
        "$v_home $v_solar $((3 * v_battery))" "readings counted by the facts: $3"
}

# topic_end_offsets: "topic partition end" lines for the current topics, sorted; partitions
# that never held a message are left out.
topic_end_offsets() {
    kafka_tool org.apache.kafka.tools.GetOffsetShell \
        --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
        --topic "^($TOPIC_HOME|$TOPIC_SOLAR|$TOPIC_BATTERY)\$" --time -1 2>"$TEST_TMP/offsets.err" |
        awk -F: '$3 > 0 { print $1, $2, $3 }' | sort ||
        fail "GetOffsetShell: $(cat "$TEST_TMP/offsets.err")"
}

# pg_offsets DB GROUP: "topic partition next_offset" lines stored by the service, sorted. As
# topic_end_offsets, it leaves out partitions at offset 0 (and those claimed but never written,
# next_offset NULL): the service claims every assigned partition, empty ones included.
pg_offsets() {
    q "$1" "select topic || ' ' || \"partition\" || ' ' || next_offset
              from solarx_meta.consumer_offsets
             where consumer_group = '$2' and next_offset > 0" | sort
}

# wait_caught_up DB GROUP [TIMEOUT_S]: waits until the offsets PostgreSQL stores for GROUP equal
# the current topics' end offsets; fails after TIMEOUT_S (default 300) or when the service dies.
wait_caught_up() {
    local db=$1 group=$2 timeout=${3:-300} want got
    local deadline=$((SECONDS + timeout))
    want=$(topic_end_offsets)
    [[ -n $want ]] || fail "wait_caught_up: the topics are empty"
    while :; do
        got=$(pg_offsets "$db" "$group" 2>/dev/null || true)
        [[ $got == "$want" ]] && return 0
        if [[ -n $SERVICE_PID ]] && ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            tail -n 30 "$SERVICE_LOG" >&2
            fail "the service exited before catching up"
        fi
        if ((SECONDS >= deadline)); then
            echo "end offsets in Kafka:" >&2
            echo "$want" >&2
            echo "offsets in PostgreSQL (group $group):" >&2
            echo "$got" >&2
            [[ -n $SERVICE_LOG ]] && tail -n 20 "$SERVICE_LOG" >&2
            fail "not caught up after ${timeout}s"
        fi
        sleep 0.2
    done
}

# write_stream_config DB OUT GROUP [KEY=VALUE...]: write_config plus [topics] for the current
# topics, migrate_on_start, and KEY=VALUE settings (replacing write_config's): [solarx] keys, or
# [kafka] keys written kafka.KEY=VALUE (kafka.session.timeout.ms=6000).
write_stream_config() {
    local db=$1 out=$2 group=$3 kv key
    shift 3
    write_config "$db" "$out.base" "$group"
    local extra="migrate_on_start = true"$'\n' kafka_extra=""
    local drop='^(migrate_on_start'
    for kv in "$@"; do
        key=${kv%%=*}
        if [[ $key == kafka.* ]]; then
            key=${key#kafka.}
            kafka_extra+="$key = ${kv#*=}"$'\n'
        else
            extra+="$key = ${kv#*=}"$'\n'
        fi
        drop+="|${key//./\\.}"
    done
    drop+=') *='
    {
        grep -Ev "$drop" "$out.base" | awk -v extra="$extra" -v kafka_extra="$kafka_extra" \
            '{ print } /^\[solarx\]$/ { printf "%s", extra } /^\[kafka\]$/ { printf "%s", kafka_extra }'
        printf '[topics]\nhome = %s\nsolar = %s\nbattery = %s\n' \
            "$TOPIC_HOME" "$TOPIC_SOLAR" "$TOPIC_BATTERY"
    } >"$out"
    rm -f "$out.base"
}

# start_service CONF [LOGNAME]: runs `solarx-stream run -c CONF` in the background; sets
# SERVICE_PID, SERVICE_LOG ($TEST_TMP/LOGNAME.log, appended to) and SERVICE_LOG_MARK.
start_service() {
    SERVICE_LOG=$TEST_TMP/${2:-service}.log
    touch "$SERVICE_LOG"
    SERVICE_LOG_MARK=$(stat -c %s "$SERVICE_LOG")
    "$SOLARX_BIN" run -c "$1" 2>>"$SERVICE_LOG" &
    SERVICE_PID=$!
}

# service_log: what the current instance logged so far.
service_log() {
    tail -c +$((SERVICE_LOG_MARK + 1)) "$SERVICE_LOG"
}

# service_log_has PATTERN: true when the current instance logged a line matching PATTERN (grep's
# basic regex). Not `service_log | grep -q`: grep -q leaves at the first match, and the writer's
# SIGPIPE then fails the pipeline under pipefail although the line is there.
service_log_has() {
    local text
    text=$(service_log)
    grep -q -e "$1" <<<"$text"
}

# wait_service_log PATTERN TIMEOUT_S WHAT: waits until the current instance logged a line
# matching PATTERN (as service_log_has). Fails with WHAT and the log's tail when TIMEOUT_S pass,
# or when the service exited without logging it.
wait_service_log() {
    local deadline=$((SECONDS + $2))
    until service_log_has "$1"; do
        if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            service_log_has "$1" && return 0 # logged just before it exited
            service_log | tail -n 30 >&2
            fail "$3 (the service exited)"
        fi
        if ((SECONDS >= deadline)); then
            service_log | tail -n 20 >&2
            fail "$3 (not logged within $2 s)"
        fi
        sleep 0.1
    done
}

# wait_ready [TIMEOUT_S]: waits for the current instance's event=ready (partitions assigned).
wait_ready() {
    wait_service_log 'event=ready' "${1:-60}" "the service was not ready"
}

# stop_service: SIGTERM, waits for the exit, asserts exit status 0 and event=stopping.
stop_service() {
    local rc=0
    kill -TERM "$SERVICE_PID" 2>/dev/null || fail "the service (pid $SERVICE_PID) is not running"
    wait "$SERVICE_PID" || rc=$?
    SERVICE_PID=
    if [[ $rc != 0 ]]; then
        service_log | tail -n 30 >&2
        fail "the service exited $rc on SIGTERM (expected 0)"
    fi
    service_log_has 'event=stopping' || fail "no event=stopping in the log"
}

# kill_service: SIGKILL and reap, no questions asked.
kill_service() {
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=
}

# log_sum FIELD [FILE]: the sum of FIELD=N over the event=flush_committed lines of FILE (default:
# the current instance's log).
log_sum() {
    local text
    if [[ -n ${2:-} ]]; then text=$(cat "$2"); else text=$(service_log); fi
    awk -v key="$1" '/event=flush_committed/ {
        for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) s += substr($i, length(key) + 2)
    } END { printf "%.0f\n", s }' <<<"$text"
}

# The columns a digest leaves out: they say when, how often or from where a row was written, not
# what it holds (a fact row's version counts its writes, which depend on flush boundaries).
DIGEST_EXCLUDED="'ingested_at','updated_at','received_at','dead_letter_id','src_partition','src_offset','version'"

# digest DB: one "table rows md5" line per table of solarx_raw and solarx_wh (raw, dead letters,
# dimensions, facts), the md5 over its rows (without DIGEST_EXCLUDED columns) ordered by their
# text.
digest() {
    local db=$1 table cols
    for table in $(q "$db" "select n.nspname || '.' || c.relname from pg_class c
                              join pg_namespace n on n.oid = c.relnamespace
                             where n.nspname in ('solarx_raw', 'solarx_wh')
                               and c.relkind in ('r', 'p') and not c.relispartition
                             order by 1"); do
        cols=$(q "$db" "select string_agg(quote_ident(attname), ', ' order by attnum)
                          from pg_attribute where attrelid = '$table'::regclass and attnum > 0
                           and not attisdropped and attname not in ($DIGEST_EXCLUDED)")
        echo "$table $(q "$db" "select count(*) || ' ' ||
                                       md5(coalesce(string_agg(t, E'\n' order by t), ''))
                                  from (select row($cols)::text as t from $table) r")"
    done
}

# assert_same_digest NAME_A DIGEST_A NAME_B DIGEST_B: fails with the differing tables.
assert_same_digest() {
    if [[ $2 != "$4" ]]; then
        diff <(echo "$2") <(echo "$4") | sed "s/^</$1:/; s/^>/$3:/" >&2 || true
        fail "digest $1 != digest $3"
    fi
}

# make_database VAR: creates a database with new_database, sets VAR to its name.
make_database() {
    local _name
    _name=$(new_database) || fail "cannot create a database"
    printf -v "$1" '%s' "$_name"
}

# kafka_committed_offsets GROUP: "topic partition committed end" lines, Kafka's view of GROUP
# on the current topics (committed is "-" where GROUP has committed nothing), sorted. Fails when
# the tool fails; prints nothing while the group is rebalancing.
kafka_committed_offsets() {
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --describe --offsets --group "$1" \
        >"$TEST_TMP/describe.out" 2>"$TEST_TMP/describe.err" ||
        fail "ConsumerGroupCommand --describe: $(cat "$TEST_TMP/describe.err")"
    awk -v h="$TOPIC_HOME" -v s="$TOPIC_SOLAR" -v b="$TOPIC_BATTERY" \
        '$2 == h || $2 == s || $2 == b { print $2, $3, $4, $5 }' "$TEST_TMP/describe.out" | sort
}

# ---- SCD2 dimension tests (test_dim_*.sh) ----------------------------------------------------

# dim_produce_file TOPIC FILE [keyed]: produces FILE's lines, in order, to TOPIC with Kafka's
# console producer (kafka.tools.ConsoleProducer in Kafka 3.9). keyed: every line is
# "KEY<TAB>VALUE"; otherwise lines are values without a key.
dim_produce_file() {
    local props=()
    [[ ${3:-} == keyed ]] && props=(--property parse.key=true --property $'key.separator=\t')
    kafka_tool kafka.tools.ConsoleProducer --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
        --topic "$1" --producer-property acks=all --producer-property enable.idempotence=true \
        "${props[@]}" <"$2" >"$TEST_TMP/produce-$1.log" 2>&1 ||
        fail "console producer into $1: $(tail -n 5 "$TEST_TMP/produce-$1.log")"
}

# dim_keyed_by_home FILE: FILE's Solar-X messages as "HOME<TAB>MESSAGE" lines, bytes unchanged
# (home 1 when a message has no home_id), the keying solarx-sim uses.
dim_keyed_by_home() {
    sed -E 's/^(.*"home_id": *([0-9]+).*)$/\2\t\1/; t; s/^/1\t/' "$1"
}

# dim_battery_history DB [WHERE]: one line per dim_battery version, oldest first:
# "home/battery capacity_kwh max_charge_speed_w max_output_w start last_seen end current key"
# (UTC times).
dim_battery_history() {
    q "$1" "select home_id || '/' || battery_id || ' ' || capacity_kwh::float8 || ' '
                   || max_charge_speed_w::float8 || ' ' || max_output_w::float8 || ' '
                   || to_char(start_date at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || ' '
                   || to_char(last_seen at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || ' '
                   || coalesce(to_char(end_date at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),
                               'open') || ' ' || current_flag || ' ' || battery_key
              from solarx_wh.dim_battery where ${2:-true}
             order by home_id, battery_id, start_date"
}

# ---- Local ports (test_http_limits.sh, test_secrets.sh) ---------------------------------------

# free_local_port: prints a TCP port on 127.0.0.1 that nothing listens on, trying 50 ports from
# SOLARX_TEST_PORT_BASE (default: 20000 plus this shell's pid modulo 12000: below Linux's ephemeral
# range, 32768 on, where the tests' own client connections take local ports that a probe for a
# listener cannot see, and the service's HTTP bind then fails with "Address already in use").
free_local_port() {
    local base=${SOLARX_TEST_PORT_BASE:-$((20000 + $$ % 12000))} port
    for ((port = base; port < base + 50; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    fail "no free port in $base..$((base + 49))"
}

# ---- Comparing a run against a reference run of the same topics -----------------------------
# Used by test_chaos_restarts.sh and test_chaos_two_instances.sh.

# digest_same_topics DB: digest, keeping src_partition and src_offset. Two runs that consumed
# the same topics (same partitions, same offsets) must agree on where every raw row came from;
# only the columns that say when a row was written (ingested_at, updated_at, received_at) and
# the dead letters' identity column differ legitimately.
digest_same_topics() {
    DIGEST_EXCLUDED="'ingested_at','updated_at','received_at','dead_letter_id','version'" digest "$1"
}

# device_readings DB: one line per device, "kind device raw_rows fact_readings" (kind: home,
# solar, battery; device: home_id, panel_id, home_id/battery_id), sorted: the raw rows a device
# has and the readings the facts count for it.
device_readings() {
    q "$1" "with r as (
                select 'home' as k, home_id::text as d, count(*) as n
                  from solarx_raw.home_power_readings group by 2
                union all
                select 'solar', panel_id::text, count(*) from solarx_raw.solar_panel_readings group by 2
                union all
                select 'battery', home_id || '/' || battery_id, count(*)
                  from solarx_raw.battery_readings group by 2),
            f as (
                select 'home' as k, home_id::text as d, sum(readings_count) as n
                  from solarx_wh.fact_home_power_readings group by 2
                union all
                select 'solar', solar_panel_id::text, sum(readings_count)
                  from solarx_wh.fact_solar_panel_power_readings group by 2
                union all
                select 'battery', home_id || '/' || battery_id, sum(readings_count)
                  from solarx_wh.fact_battery_power_readings group by 2)
            select coalesce(r.k, f.k) || ' ' || coalesce(r.d, f.d) || ' ' || coalesce(r.n, 0)
                   || ' ' || coalesce(f.n, 0)
              from r full join f on r.k = f.k and r.d = f.d" | sort
}

# readings_lost_and_double_counted REF_DB DB: prints "LOST DOUBLE", DB's readings against the
# reference's, device by device: a device's lost readings are the larger of its shortfalls in raw
# rows and in fact readings_count, its double-counted ones the larger of its excesses.
readings_lost_and_double_counted() {
    local ref got
    ref=$(device_readings "$1") || fail "device_readings $1"
    got=$(device_readings "$2") || fail "device_readings $2"
    awk 'function max3(a, b, c) { return a > b ? (a > c ? a : c) : (b > c ? b : c) }
         NR == FNR { rr[$1 " " $2] = $3; rf[$1 " " $2] = $4; keys[$1 " " $2] = 1; next }
         { gr[$1 " " $2] = $3; gf[$1 " " $2] = $4; keys[$1 " " $2] = 1 }
         END {
             for (k in keys) {
                 lost += max3(0, rr[k] - gr[k], rf[k] - gf[k])
                 dbl += max3(0, gr[k] - rr[k], gf[k] - rf[k])
             }
             printf "%d %d\n", lost, dbl
         }' <(echo "$ref") <(echo "$got")
}
