#!/usr/bin/env bash
# bench/run.sh: measures solarx-stream against its floors and its peers in one run, on one
# backlog, on this machine. See bench/README.md ("The benchmark harness") and --help.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
BUILD_DIR=${SOLARX_BUILD_DIR:-$REPO/build}
VENV=${SOLARX_BENCH_VENV:-$HOME/.cache/solarx/bench-venv}
PYSPARK_VERSION=3.5.7 # its spark-sql-kafka-0-10_2.12 jar is on Maven Central
SPARK_KAFKA_PACKAGE=org.apache.spark:spark-sql-kafka-0-10_2.12:$PYSPARK_VERSION
ALL_CONTENDERS=solarx,solarx-bigq,solarx-peer-rdkafka,floor-fetch,floor-copy,python,spark
STEADY_CONTENDERS=(solarx python spark) # the ones that write facts

usage() {
    cat <<EOF
usage: bench/run.sh [--messages N | --homes H --minutes M] [--contenders LIST] [--steady]
                    [--steady-seconds S] [--tiny] [--out FILE] [--keep]

Starts PostgreSQL and Kafka with scripts/services.sh (SOLARX_RUN_DIR, SOLARX_PG_PORT,
SOLARX_BROKER_PORT, SOLARX_BROKER_CONTROLLER_PORT as for the tests), produces one backlog with
solarx-sim into fresh topics, and lets every contender catch up on it from the beginning, each
with a fresh consumer group and database, one after the other:

  solarx       solarx-stream run, config/solarx-stream.conf (the shipped config; brokers,
               conninfo, group, topics, registries and http_listen from SOLARX_* variables)
  solarx-bigq  the same with a larger librdkafka queue (queued.min.messages=100000,
               queued.max.messages.kbytes=65536): what a larger queue buys and costs
               (bench/README.md); catch-up only
  solarx-peer-rdkafka
               the same build and shipped config run on the Python peer's librdkafka (the one
               in its confluent-kafka wheel, 2.1 or later), where a full queue is waited out by
               fetch.queue.backoff.ms instead of the service's nudge (kafka.c); catch-up only
  floor-fetch  bench/floor_fetch.c: librdkafka, fetch only
  floor-copy   bench/floor_copy.c: fetch, decode (libsolarx), binary COPY into the raw tables
  python       bench/peers/python_consumer.py: confluent-kafka + psycopg, facts, de-duplication,
               offsets in the same transaction (venv: $VENV)
  spark        bench/peers/spark_job.py: pyspark $PYSPARK_VERSION Structured Streaming, local[2],
               15-minute windows, foreachBatch upserts, trigger availableNow

  --homes H            homes in the backlog (default 100)
  --minutes M          event minutes in the backlog (default 60: 100 homes -> ~1.09M messages)
  --messages N         instead of --minutes: enough minutes for at least N messages
  --contenders LIST    comma-separated, default $ALL_CONTENDERS
  --steady             also the steady mode: for solarx, python and spark (those chosen), a fresh
                       topic set fed by solarx-sim at 3,000 msg/s (100 homes at 10 event seconds
                       per second) while bench/freshness_probe measures produce -> visible in
                       PostgreSQL, p50/p99
  --steady-seconds S   length of the steady feed (default 120)
  --tiny               CI size: 10 homes x 5 minutes (~9k messages), steady 20 s
  --out FILE           the results file (default bench/results/<date>-<host>.md; with --tiny a
                       file under \${TMPDIR:-/tmp})
  --keep               keep the topics and databases

Environment: SOLARX_BUILD_DIR (default build/), SOLARX_BENCH_VENV, SOLARX_BENCH_HTTP_PORT (the
service's http_listen port, default 20700). The Python venv, pyspark and Spark's Kafka jars are
installed only when python or spark is asked for. Prints the table; exit 0 even when a contender
failed (its row says so); 64 on bad arguments, 1 when the services or the backlog fail.
EOF
}

die() {
    echo "bench: $*" >&2
    exit 1
}

say() {
    echo "bench: $*" >&2
}

# ---- arguments -------------------------------------------------------------------------------

HOMES=100
MINUTES=60
MESSAGES=
CONTENDERS=$ALL_CONTENDERS
STEADY=0
STEADY_SECONDS=
STEADY_RATE=10 # event seconds per wall second: 100 homes x 3 topics x 10 = 3,000 msg/s
STEADY_HOMES=100
TINY=0
OUT=
KEEP=0
while (($# > 0)); do
    case $1 in
    --homes) HOMES=${2:?}; shift ;;
    --minutes) MINUTES=${2:?}; shift ;;
    --messages) MESSAGES=${2:?}; shift ;;
    --contenders) CONTENDERS=${2:?}; shift ;;
    --steady) STEADY=1 ;;
    --steady-seconds) STEADY_SECONDS=${2:?}; shift ;;
    --tiny) TINY=1 ;;
    --out) OUT=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
    esac
    shift
done
if ((TINY)); then
    HOMES=10 MINUTES=5 STEADY_SECONDS=${STEADY_SECONDS:-20}
fi
STEADY_SECONDS=${STEADY_SECONDS:-120}
[[ $HOMES =~ ^[1-9][0-9]*$ && $MINUTES =~ ^[1-9][0-9]*$ && $STEADY_SECONDS =~ ^[1-9][0-9]*$ ]] ||
    { usage >&2; exit 64; }
if [[ -n $MESSAGES ]]; then
    [[ $MESSAGES =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 64; }
    # Three topics, one message per home and second each (plus 0.1% duplicates).
    MINUTES=$(((MESSAGES + HOMES * 180 - 1) / (HOMES * 180)))
fi
# solarx-sim takes whole event minutes: the feed lasts a whole number of them.
STEADY_MINUTES=$(((STEADY_SECONDS * STEADY_RATE + 59) / 60))
STEADY_SECONDS=$((STEADY_MINUTES * 60 / STEADY_RATE))
IFS=, read -r -a CHOSEN <<<"$CONTENDERS"
for c in "${CHOSEN[@]}"; do
    [[ ,$ALL_CONTENDERS, == *,$c,* ]] || { echo "bench: unknown contender $c" >&2; exit 64; }
done
chosen() { [[ ,$CONTENDERS, == *,$1,* ]]; }

STAMP=$(date -u +%Y-%m-%d)
HOST=$(hostname -s)
if [[ -z $OUT ]]; then
    if ((TINY)); then
        OUT=${TMPDIR:-/tmp}/solarx-bench-tiny-$STAMP-$HOST-$$.md
    else
        OUT=$BENCH/results/$STAMP-$HOST.md
        [[ -e $OUT ]] && OUT=$BENCH/results/$STAMP-$HOST-$(date -u +%H%M).md
    fi
fi

# ---- set-up: build, services, scratch space -------------------------------------------------

RUN_ID=bench$(date -u +%H%M%S)$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/solarx-bench-XXXXXX")
TOPICS_MADE=()
DBS_MADE=()
BG_PIDS=()

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if ((KEEP)); then
        say "--keep: topics ${TOPICS_MADE[*]:-}, databases ${DBS_MADE[*]:-}, files $WORK"
        return
    fi
    if ((${#TOPICS_MADE[@]} > 0)); then
        "$REPO/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$BROKERS" --delete \
            --topic "$(IFS='|' && echo "^(${TOPICS_MADE[*]})\$")" >/dev/null 2>&1 || true
    fi
    local db
    for db in "${DBS_MADE[@]}"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

build() {
    local need=0 bin
    for bin in solarx-stream solarx-sim bench/floor_fetch bench/floor_copy bench/bench_measure \
        bench/freshness_probe; do
        [[ -x $BUILD_DIR/$bin ]] || need=1
    done
    ((need)) || return 0
    say "building into $BUILD_DIR"
    cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        ninja -C "$BUILD_DIR" >/dev/null || die "build failed"
}

services_up() {
    "$REPO/scripts/services.sh" up >&2 || die "scripts/services.sh up failed"
    # shellcheck disable=SC1091
    source "${SOLARX_RUN_DIR:-/tmp/solarx-run}/env"
    BROKERS=$SOLARX_KAFKA_BOOTSTRAP_SERVERS
    unset SOLARX_POSTGRES_CONNINFO SOLARX_POSTGRES_MIGRATE_CONNINFO SOLARX_KAFKA_BOOTSTRAP_SERVERS
    PG_BASE="host=$PGHOST port=$PGPORT user=$PGUSER"
}

q() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# new_db NAME: creates database NAME with the warehouse's migrations applied.
new_db() {
    q postgres "CREATE DATABASE \"$1\"" >/dev/null || die "cannot create database $1"
    DBS_MADE+=("$1")
    solarx_conf_env "$1" group-unused
    "$BUILD_DIR/solarx-stream" migrate -c "$REPO/config/solarx-stream.conf" \
        >"$WORK/migrate-$1.log" 2>&1 || {
        tail -n 5 "$WORK/migrate-$1.log" >&2
        die "migrations failed on $1"
    }
}

# make_topics PREFIX: three fresh topics of 3 partitions (as scripts/services.sh makes them);
# sets T_HOME, T_SOLAR, T_BATTERY.
make_topics() {
    local t pids=() ok=1
    T_HOME=$1-home T_SOLAR=$1-solar T_BATTERY=$1-battery
    for t in "$T_HOME" "$T_SOLAR" "$T_BATTERY"; do
        TOPICS_MADE+=("$t")
        "$REPO/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$BROKERS" --create --topic "$t" --partitions 3 \
            --replication-factor 1 >"$WORK/topic-$t.log" 2>&1 &
        pids+=($!)
    done
    for t in "${pids[@]}"; do
        wait "$t" || ok=0
    done
    ((ok)) || die "cannot create topics $1-*: $(cat "$WORK"/topic-"$1"-*.log)"
}

# solarx_conf_env DB GROUP: the SOLARX_* overrides that point the shipped config at this run.
solarx_conf_env() {
    export SOLARX_KAFKA_BOOTSTRAP_SERVERS=$BROKERS
    export SOLARX_POSTGRES_CONNINFO="$PG_BASE dbname=$1"
    export SOLARX_POSTGRES_MIGRATE_CONNINFO="$PG_BASE dbname=$1" # one role for both here
    export SOLARX_KAFKA_GROUP_ID=$2
    export SOLARX_TOPICS_HOME=${T_HOME:-home_energy_consumption}
    export SOLARX_TOPICS_SOLAR=${T_SOLAR:-solar_energy_data}
    export SOLARX_TOPICS_BATTERY=${T_BATTERY:-battery_data}
    export SOLARX_SOLARX_APPLIANCES_FILE=$REPO/config/home_appliances_consumption.json
    export SOLARX_SOLARX_PANELS_FILE=$REPO/config/solar_panels.json
    export SOLARX_SOLARX_MIGRATIONS_DIR=$REPO/migrations
    export SOLARX_SOLARX_HTTP_LISTEN=127.0.0.1:${SOLARX_BENCH_HTTP_PORT:-20700}
}

# ---- the Python environment (only for python and spark) --------------------------------------

python_env() {
    [[ -n ${PYTHON_READY:-} ]] && return 0
    local want=(confluent-kafka 'psycopg[binary]')
    chosen spark && want+=("pyspark==$PYSPARK_VERSION")
    if [[ ! -x $VENV/bin/python ]]; then
        say "creating the venv $VENV"
        python3 -m venv "$VENV" || return 1
    fi
    if ! "$VENV/bin/python" -c 'import confluent_kafka, psycopg' 2>/dev/null ||
        { chosen spark && ! "$VENV/bin/python" -c "import pyspark, sys
sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; }; then
        say "installing ${want[*]} into $VENV"
        "$VENV/bin/pip" install -q "${want[@]}" >"$WORK/pip.log" 2>&1 || {
            tail -n 20 "$WORK/pip.log" >&2
            return 1
        }
    fi
    PYTHON_READY=1
}

# ---- contenders ------------------------------------------------------------------------------
# start_CONTENDER MODE DB GROUP: starts it under bench_measure in the background (MODE catchup
# or steady); sets CPID (bench_measure's pid), CLOG and CSTATS.

start_measured() {
    CLOG=$WORK/$1-$2.log CSTATS=$WORK/$1-$2.stats
    shift 2
    "$BUILD_DIR/bench/bench_measure" -i 200 -o "$CSTATS" -- "$@" >"$CLOG.out" 2>"$CLOG" &
    CPID=$!
    BG_PIDS+=("$CPID")
}

start_solarx() {
    solarx_conf_env "$2" "$3"
    start_measured solarx "$1" "$BUILD_DIR/solarx-stream" run -c "$REPO/config/solarx-stream.conf"
}

start_solarx-bigq() {
    solarx_conf_env "$2" "$3"
    SOLARX_KAFKA_QUEUED_MIN_MESSAGES=100000 SOLARX_KAFKA_QUEUED_MAX_MESSAGES_KBYTES=65536 \
        start_measured solarx-bigq "$1" "$BUILD_DIR/solarx-stream" run \
        -c "$REPO/config/solarx-stream.conf"
}

# The Python peer's librdkafka (bundled in its confluent-kafka wheel) as librdkafka.so.1 in a
# directory of its own, for LD_LIBRARY_PATH; sets PEER_RDKAFKA_DIR.
peer_rdkafka() {
    local lib
    [[ -n ${PEER_RDKAFKA_DIR:-} ]] && return 0
    python_env || return 1
    lib=$(find "$VENV" -path '*/confluent_kafka.libs/librdkafka*.so*' -print -quit)
    [[ -n $lib ]] || { say "no librdkafka in $VENV's confluent-kafka wheel"; return 1; }
    mkdir -p "$WORK/peer-rdkafka" && ln -sf "$lib" "$WORK/peer-rdkafka/librdkafka.so.1"
    PEER_RDKAFKA_DIR=$WORK/peer-rdkafka
}

start_solarx-peer-rdkafka() {
    solarx_conf_env "$2" "$3"
    LD_LIBRARY_PATH=$PEER_RDKAFKA_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
        start_measured solarx-peer-rdkafka "$1" "$BUILD_DIR/solarx-stream" run \
        -c "$REPO/config/solarx-stream.conf"
}

start_floor-fetch() {
    start_measured floor-fetch "$1" "$BUILD_DIR/bench/floor_fetch" --brokers "$BROKERS" \
        --group "$3" --messages "$TOTAL" "$T_HOME" "$T_SOLAR" "$T_BATTERY"
}

start_floor-copy() {
    start_measured floor-copy "$1" "$BUILD_DIR/bench/floor_copy" --brokers "$BROKERS" \
        --group "$3" --conninfo "$PG_BASE dbname=$2" --messages "$TOTAL" \
        --topic-home "$T_HOME" --topic-solar "$T_SOLAR" --topic-battery "$T_BATTERY" \
        --format binary
}

start_python() {
    start_measured python "$1" "$VENV/bin/python" "$BENCH/peers/python_consumer.py" \
        --brokers "$BROKERS" --group "$3" --conninfo "$PG_BASE dbname=$2" \
        --topic-home "$T_HOME" --topic-solar "$T_SOLAR" --topic-battery "$T_BATTERY"
}

start_spark() {
    local trigger=available-now
    [[ $1 == steady ]] && trigger="1 second"
    start_measured spark "$1" "$VENV/bin/python" "$BENCH/peers/spark_job.py" \
        --brokers "$BROKERS" --group "$3" --conninfo "$PG_BASE dbname=$2" \
        --topic-home "$T_HOME" --topic-solar "$T_SOLAR" --topic-battery "$T_BATTERY" \
        --trigger "$trigger" --checkpoint "$WORK/spark-$1-checkpoint" \
        --packages "$SPARK_KAFKA_PACKAGE"
}

# stop_contender: SIGTERM through bench_measure, waits; returns the contender's exit status.
stop_contender() {
    local rc=0
    kill -TERM "$CPID" 2>/dev/null || true
    wait "$CPID" || rc=$?
    return $rc
}

# stored_offsets DB GROUP: the sum of next_offset the contender stored in PostgreSQL.
stored_offsets() {
    q "$1" "select coalesce(sum(next_offset), 0) from solarx_meta.consumer_offsets
             where consumer_group = '$2'" 2>/dev/null || echo 0
}

# stat FIELD FILE: a field of bench_measure's line.
stat_field() {
    sed -nE "s/.*(^| )$1=([^ ]+).*/\\2/p" "$2"
}

# Digest of the facts' measures (keys, sums, counts, min/max, first/last, as of last), table by
# table: what every fact writer must agree on. Dimension keys and bookkeeping columns are left out.
FACT_QUERIES=(
    "select home_id, date_key, consumption_wh, readings_count, min_consumption_wh,
            max_consumption_wh, last_accumulated_wh, first_ts, last_ts
       from solarx_wh.fact_home_power_readings"
    "select solar_panel_id, date_key, home_id, generation_power_wh, readings_count,
            min_generation_wh, max_generation_wh, last_accumulated_wh, first_ts, last_ts
       from solarx_wh.fact_solar_panel_power_readings"
    "select home_id, battery_id, date_key, current_energy_wh, is_charging, status, capacity_kwh,
            max_charge_speed_w, max_output_w, min_energy_wh, max_energy_wh, readings_count,
            first_ts, last_ts
       from solarx_wh.fact_battery_power_readings"
)

facts_digest() {
    local sql
    for sql in "${FACT_QUERIES[@]}"; do
        q "$1" "select count(*) || ' ' || md5(coalesce(string_agg(t, E'\n' order by t), ''))
                  from (select row(f.*)::text as t from ($sql) f) r"
    done
}

raw_digest() {
    q "$1" "select (select count(*) || ' ' || coalesce(sum(consumption_wh), 0)
                      from solarx_raw.home_power_readings) || ' ' ||
                   (select count(*) || ' ' || coalesce(sum(generation_wh), 0)
                      from solarx_raw.solar_panel_readings) || ' ' ||
                   (select count(*) || ' ' || coalesce(sum(current_energy_wh), 0)
                      from solarx_raw.battery_readings)"
}

# readings_counted DB: "home solar battery" readings the facts count.
readings_counted() {
    q "$1" "select (select coalesce(sum(readings_count), 0)
                      from solarx_wh.fact_home_power_readings) || ' ' ||
                   (select coalesce(sum(readings_count), 0)
                      from solarx_wh.fact_solar_panel_power_readings) || ' ' ||
                   (select coalesce(sum(readings_count), 0)
                      from solarx_wh.fact_battery_power_readings)"
}

# exactness CONTENDER DB: "exact", "not exact (...)" or "n/a ...". solarx-stream is checked
# against the simulator's valid readings; facts writers against solarx-stream's facts; the
# fetch + COPY floor against solarx-stream's raw rows.
exactness() {
    local c=$1 db=$2 counted
    case $c in
    floor-fetch)
        echo "n/a (reads only)"
        return
        ;;
    floor-copy)
        if [[ -n ${SOLARX_DB:-} ]]; then
            [[ $(raw_digest "$db") == "$(raw_digest "$SOLARX_DB")" ]] && echo "exact (raw)" ||
                echo "not exact (raw rows differ)"
        else
            [[ $(q "$db" "select count(*) from solarx_raw.home_power_readings") == "$VALID_HOME" ]] &&
                echo "exact (raw count; solarx not run)" || echo "not exact (raw count)"
        fi
        return
        ;;
    esac
    counted=$(readings_counted "$db")
    if [[ $counted != "$VALID_HOME $VALID_SOLAR $VALID_BATTERY" ]]; then
        echo "not exact (counts $counted, sim $VALID_HOME $VALID_SOLAR $VALID_BATTERY)"
    elif [[ $c == solarx ]]; then
        echo "exact (counts = sim)"
    elif [[ -z ${SOLARX_DB:-} ]]; then
        echo "counts = sim (solarx not run)"
    elif [[ $(facts_digest "$db") == "$(facts_digest "$SOLARX_DB")" ]]; then
        echo "exact"
    else
        echo "not exact (facts differ)"
    fi
}

# run_catchup CONTENDER: one catch-up on the backlog; appends a row to ROWS.
run_catchup() {
    local c=$1 db=${RUN_ID}_${1//-/_} group=$RUN_ID-$1 launched seconds rc=0 deadline
    local stored=0 exact note=
    say "catch-up: $c"
    if [[ $c == python || $c == spark ]] && ! python_env; then
        ROWS+=("| $c | failed: cannot install its Python packages | | | | | |")
        return
    fi
    if [[ $c == solarx-peer-rdkafka ]] && ! peer_rdkafka; then
        ROWS+=("| $c | failed: no librdkafka from the Python peer's wheel | | | | | |")
        return
    fi
    [[ $c == floor-fetch ]] || new_db "$db"
    launched=$(date +%s.%N)
    "start_$c" catchup "$db" "$group"
    deadline=$((SECONDS + CATCHUP_TIMEOUT))
    case $c in
    solarx | solarx-bigq | solarx-peer-rdkafka | python)
        # Caught up when PostgreSQL holds the end offsets; then SIGTERM (a clean stop).
        while :; do
            stored=$(stored_offsets "$db" "$group")
            ((stored >= TOTAL)) && break
            kill -0 "$CPID" 2>/dev/null || break
            ((SECONDS < deadline)) || break
            sleep 1 # the time is PostgreSQL's (max(updated_at)): a slower poll only costs less CPU
        done
        stop_contender || rc=$?
        ;;
    *)
        # The floors stop after TOTAL messages; Spark's availableNow stops at the end offsets.
        while kill -0 "$CPID" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if kill -0 "$CPID" 2>/dev/null; then
            stop_contender || true
            rc=124
        else
            wait "$CPID" || rc=$?
        fi
        [[ $c == spark ]] && stored=$(stored_offsets "$db" "$group")
        ;;
    esac
    if [[ ! -s $CSTATS ]]; then
        ROWS+=("| $c | failed: no measurement (see $CLOG) | | | | | |")
        return
    fi
    if [[ $c == floor-* ]]; then
        seconds=$(stat_field wall_s "$CSTATS")
        if ((rc != 0)); then
            tail -n 5 "$CLOG" >&2
            ROWS+=("| $c | failed: exit $rc | | | | | |")
            return
        fi
    else
        if ((stored < TOTAL)) && [[ $c == spark && $rc == 0 && $stored -gt 0 ]]; then
            # Spark's foreachBatch sees the rows after dropDuplicates: a partition whose last
            # message is a duplicate stores the offset before it. The query ran to the end.
            note=" (offsets stored: $stored of $TOTAL)"
        elif ((stored < TOTAL)); then
            tail -n 10 "$CLOG" >&2
            ROWS+=("| $c | failed: $stored of $TOTAL offsets stored (exit $rc, log $CLOG) | | | | | |")
            return
        fi
        # From launch to the commit of the transaction that stored the last offsets.
        seconds=$(q "$db" "select extract(epoch from max(updated_at)) - $launched
                             from solarx_meta.consumer_offsets where consumer_group = '$group'")
        ((rc == 0)) || say "$c exited $rc after catching up (log $CLOG)"
    fi
    [[ $c == solarx ]] && SOLARX_DB=$db
    exact=$(exactness "$c" "$db")$note
    awk -v c="$c" -v n="$TOTAL" -v s="$seconds" -v cpu="$(stat_field cpu_s "$CSTATS")" \
        -v tree="$(stat_field peak_rss_tree_kb "$CSTATS")" \
        -v big="$(stat_field peak_rss_max_kb "$CSTATS")" -v procs="$(stat_field processes "$CSTATS")" \
        -v exact="$exact" 'BEGIN {
            printf "| %s | %.0f | %.1f | %.2f | %.1f | %.1f (%d proc) | %s |\n", c, n / s, s,
                   cpu * 1e6 / n, tree / 1024, big / 1024, procs, exact }' >>"$WORK/rows"
    ROWS+=("$(tail -n 1 "$WORK/rows")")
}

# run_steady CONTENDER: solarx-sim paced at STEADY_RATE into fresh topics while the contender
# runs and freshness_probe measures; appends a row to STEADY_ROWS.
run_steady() {
    local c=$1 db=${RUN_ID}_s_${1//-/_} group=$RUN_ID-s-$1 probe_out rc=0 ready_deadline warmup
    say "steady: $c (${STEADY_SECONDS}s at $((STEADY_HOMES * 3 * STEADY_RATE)) msg/s)"
    if [[ $c == python || $c == spark ]] && ! python_env; then
        STEADY_ROWS+=("| $c | failed: cannot install its Python packages | | | |")
        return
    fi
    make_topics "$RUN_ID-s-$c"
    new_db "$db"
    "start_$c" steady "$db" "$group"
    # Warm-up: one event minute from January 2025, as fast as it goes; the contender is ready
    # once PostgreSQL holds its offsets (Spark has planned and run its first batches by then).
    TZ=UTC "$BUILD_DIR/solarx-sim" --brokers "$BROKERS" --topic-home "$T_HOME" \
        --topic-solar "$T_SOLAR" --topic-battery "$T_BATTERY" --homes "$STEADY_HOMES" \
        --minutes 1 --start "2025-01-01 00:00:00" --seed 8 \
        >"$WORK/warmup-$c.json" 2>"$WORK/warmup-$c.log" || die "solarx-sim (warm-up) failed"
    warmup=$(jq -er '.total' "$WORK/warmup-$c.json")
    ready_deadline=$((SECONDS + 600))
    until (($(stored_offsets "$db" "$group") >= warmup)); do
        if ! kill -0 "$CPID" 2>/dev/null || ((SECONDS > ready_deadline)); then
            tail -n 10 "$CLOG" >&2
            STEADY_ROWS+=("| $c | failed: did not take the warm-up (log $CLOG) | | | |")
            stop_contender || true
            return
        fi
        sleep 0.5
    done
    probe_out=$WORK/probe-$c.out
    "$BUILD_DIR/bench/freshness_probe" --brokers "$BROKERS" --group "$group-probe" \
        --topic-home "$T_HOME" --conninfo "$PG_BASE dbname=$db" --interval-ms 100 --drain-s 60 \
        --since-ms "$(date +%s%3N)" \
        --query "select home_id, extract(epoch from max(last_ts))::bigint
                   from solarx_wh.fact_home_power_readings group by home_id" \
        >"$probe_out" 2>"$WORK/probe-$c.log" &
    local probe=$!
    BG_PIDS+=("$probe")
    sleep 1
    TZ=UTC "$BUILD_DIR/solarx-sim" --brokers "$BROKERS" --topic-home "$T_HOME" \
        --topic-solar "$T_SOLAR" --topic-battery "$T_BATTERY" --homes "$STEADY_HOMES" \
        --minutes "$STEADY_MINUTES" --rate "$STEADY_RATE" --seed 9 \
        >"$WORK/steady-sim-$c.json" 2>"$WORK/steady-sim-$c.log" ||
        say "steady: solarx-sim failed (see $WORK/steady-sim-$c.log)"
    kill -TERM "$probe" 2>/dev/null || true
    wait "$probe" || rc=$?
    stop_contender || true
    if [[ ! -s $probe_out ]]; then
        tail -n 5 "$WORK/probe-$c.log" >&2
        STEADY_ROWS+=("| $c | failed: the probe said nothing (exit $rc) | | | |")
        return
    fi
    awk -v c="$c" -v rate="$((STEADY_HOMES * 3 * STEADY_RATE))" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "| %s | %d | %s / %s | %s | %s |\n", c, rate, f["visible"], f["messages"],
               f["p50_ms"], f["p99_ms"] }' "$probe_out" >>"$WORK/steady_rows"
    STEADY_ROWS+=("$(tail -n 1 "$WORK/steady_rows")")
}

# ---- the run ---------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
build
services_up
CATCHUP_TIMEOUT=$((600 + HOMES * MINUTES * 2))

make_topics "$RUN_ID"
say "producing the backlog: $HOMES homes x $MINUTES minutes into $RUN_ID-*"
"$BUILD_DIR/solarx-sim" --brokers "$BROKERS" --topic-home "$T_HOME" --topic-solar "$T_SOLAR" \
    --topic-battery "$T_BATTERY" --homes "$HOMES" --minutes "$MINUTES" --seed 7 \
    --duplicates 0.001 --malformed 0.0001 >"$WORK/sim.json" 2>"$WORK/sim.log" || {
    tail -n 5 "$WORK/sim.log" >&2
    die "solarx-sim failed"
}
TOTAL=$(jq -er '.total' "$WORK/sim.json")
VALID_HOME=$(jq -er --arg t "$T_HOME" '.valid[$t]' "$WORK/sim.json")
VALID_SOLAR=$(jq -er --arg t "$T_SOLAR" '.valid[$t]' "$WORK/sim.json")
VALID_BATTERY=$(($(jq -er --arg t "$T_BATTERY" '.valid[$t]' "$WORK/sim.json") * 3))
say "backlog: $TOTAL messages ($VALID_HOME + $VALID_SOLAR + $VALID_BATTERY valid readings)"

ROWS=()
STEADY_ROWS=()
SOLARX_DB=
# solarx-stream first: the others are checked against its facts.
for c in solarx solarx-bigq solarx-peer-rdkafka floor-fetch floor-copy python spark; do
    chosen "$c" && run_catchup "$c"
done
if ((STEADY)); then
    for c in "${STEADY_CONTENDERS[@]}"; do
        chosen "$c" && run_steady "$c"
    done
fi

# ---- the report --------------------------------------------------------------------------------

version_of() { "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" \
    2>/dev/null || echo "not installed"; }
KAFKA_VERSION=$(sed -nE 's/.*Apache Kafka ([0-9.]+).*/\1/p' "$SOLARX_RUN_DIR/kafka/kafka.out" \
    2>/dev/null | head -n 1)
[[ -n $KAFKA_VERSION ]] || KAFKA_VERSION=$(find "$HOME/.cache/solarx" -maxdepth 1 -name 'kafka-*' \
    -printf '%f\n' 2>/dev/null | sed 's/^kafka-//' | sort -V | tail -n 1)
{
    echo "# solarx-stream benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $HOST"
    echo
    echo "- machine: $(nproc) CPUs, $(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)," \
        "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
        "load average before the run: $LOAD_BEFORE"
    echo "- versions: librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')," \
        "PostgreSQL $(q postgres 'show server_version')," \
        "Kafka ${KAFKA_VERSION:-?}, solarx-stream $("$BUILD_DIR/solarx-stream" --version 2>&1 |
            head -n 1 | awk '{ print $NF }') ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null))"
    if chosen python || chosen spark || chosen solarx-peer-rdkafka; then
        echo "- peers: $("$VENV/bin/python" --version 2>&1), confluent-kafka" \
            "$(version_of confluent-kafka) (librdkafka" \
            "$("$VENV/bin/python" -c 'import confluent_kafka as c; print(c.libversion()[0])' \
                2>/dev/null || echo '?')), psycopg $(version_of psycopg)$(chosen spark &&
                echo ", pyspark $(version_of pyspark), $SPARK_KAFKA_PACKAGE, $(java -version 2>&1 |
                    head -n 1)")"
    fi
    echo "- backlog: $TOTAL messages from solarx-sim ($HOMES homes x $MINUTES minutes, seed 7," \
        "0.1% duplicates, 0.01% malformed; $VALID_HOME + $VALID_SOLAR + $VALID_BATTERY valid" \
        "home + solar + battery readings), 3 topics x 3 partitions, produced before the" \
        "contenders start; each contender: fresh consumer group and database, alone on the machine"
    echo
    echo "## Catch-up"
    echo
    echo "| contender | msg/s | seconds | CPU-s per 1M msgs | peak RSS, process tree (MiB) | largest process (MiB) | exact |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    if ((STEADY)); then
        echo
        echo "## Steady: solarx-sim at $((STEADY_HOMES * 3 * STEADY_RATE)) msg/s for ${STEADY_SECONDS} s"
        echo
        echo "| contender | msg/s fed | home messages visible / produced | p50 freshness (ms) | p99 freshness (ms) |"
        echo "|---|---:|---:|---:|---:|"
        printf '%s\n' "${STEADY_ROWS[@]}"
    fi
    echo
    echo "seconds: from the contender's launch to the commit of its last offsets (floors: to" \
        "their exit). CPU-s: utime+stime of the contender's process tree (bench_measure). Freshness:" \
        "Kafka CreateTime of a home message to the first 100 ms poll at which its home's facts" \
        "reach its second (bench/README.md)."
} >"$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
cat "$WORK/report.md"
say "written to $OUT"
