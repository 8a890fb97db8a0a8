#!/usr/bin/env bash
# Two builds of solarx-stream side by side in one run: the same backlog from solarx-sim, each
# build catching up on it from the beginning (fresh group, fresh database, its own source tree's
# shipped config and migrations), alternated A B A B ... so that the machine's drift hits both.
# Prints msg/s, CPU-s per 1M messages, peak RSS and the event loop thread's CPU-s per 1M messages
# per run, then the medians.
#
# usage: bench/ab_builds.sh [--homes H] [--minutes M] [--rounds N] BUILD_A BUILD_B
#   BUILD_x: a CMake build directory of a checkout (its CMakeCache.txt names the source tree);
#   BUILD_B needs bench/bench_measure (this tree's build). Services: scripts/services.sh up first
#   (SOLARX_RUN_DIR and the SOLARX_*_PORT variables as for the tests).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOMES=100 MINUTES=56 ROUNDS=3
while (($# > 2)); do
    case $1 in
    --homes) HOMES=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
    esac
done
(($# == 2)) || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
BUILD_A=$(cd "$1" && pwd) BUILD_B=$(cd "$2" && pwd)
MEASURE=$BUILD_B/bench/bench_measure
[[ -x $MEASURE ]] || { echo "ab: $MEASURE not built" >&2; exit 1; }

# shellcheck disable=SC1091
source "${SOLARX_RUN_DIR:-/tmp/solarx-run}/env"
BROKERS=$SOLARX_KAFKA_BOOTSTRAP_SERVERS
unset SOLARX_POSTGRES_CONNINFO SOLARX_POSTGRES_MIGRATE_CONNINFO SOLARX_KAFKA_BOOTSTRAP_SERVERS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/solarx-ab-XXXXXX")
ID=ab$$
DBS=()
cleanup() {
    local db
    for db in "${DBS[@]}"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    "$REPO/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" \
        --delete --topic "^$ID-.*" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

source_of() { sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt"; }

for t in home solar battery; do
    "$REPO/scripts/kafka-run.sh" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" \
        --create --topic "$ID-$t" --partitions 3 --replication-factor 1 >/dev/null
done
"$BUILD_B/solarx-sim" --brokers "$BROKERS" --topic-home "$ID-home" --topic-solar "$ID-solar" \
    --topic-battery "$ID-battery" --homes "$HOMES" --minutes "$MINUTES" --seed 41 \
    --duplicates 0.001 --malformed 0.0001 >"$WORK/sim.json" 2>"$WORK/sim.log"
TOTAL=$("$REPO/scripts/kafka-run.sh" org.apache.kafka.tools.GetOffsetShell \
    --bootstrap-server "$BROKERS" --topic "^$ID-.*" 2>/dev/null | awk -F: '{ n += $3 } END { print n }')
echo "ab: backlog of $TOTAL messages ($HOMES homes x $MINUTES min); A=$BUILD_A B=$BUILD_B"

# loop_thread_cpu_s MEASURE_PID: CPU seconds (user + system) of the service's main thread, the
# event loop (its task id is its pid), read from /proc before it is stopped.
loop_thread_cpu_s() {
    local svc
    svc=$(pgrep -P "$1" -x solarx-stream | head -n 1)
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' \
        "/proc/$svc/task/$svc/stat" 2>/dev/null || echo 0
}

# run SIDE BUILD ROUND: one catch-up; prints "SIDE msg_per_s cpu_s_per_1M peak_rss_mib".
run() {
    local side=$1 build=$2 src db=${ID}_$1_$3 group=$ID-$1-$3 stored=0 t0 rss cpu wall loop
    src=$(source_of "$build")
    psql -X -q -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    DBS+=("$db")
    export SOLARX_KAFKA_BOOTSTRAP_SERVERS=$BROKERS SOLARX_KAFKA_GROUP_ID=$group
    export SOLARX_POSTGRES_CONNINFO="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db"
    export SOLARX_POSTGRES_MIGRATE_CONNINFO=$SOLARX_POSTGRES_CONNINFO
    export SOLARX_TOPICS_HOME=$ID-home SOLARX_TOPICS_SOLAR=$ID-solar SOLARX_TOPICS_BATTERY=$ID-battery
    export SOLARX_SOLARX_MIGRATIONS_DIR=$src/migrations SOLARX_SOLARX_HTTP_LISTEN=
    export SOLARX_SOLARX_APPLIANCES_FILE=$src/config/home_appliances_consumption.json
    export SOLARX_SOLARX_PANELS_FILE=$src/config/solar_panels.json
    "$build/solarx-stream" migrate -c "$src/config/solarx-stream.conf" >"$WORK/$db.migrate" 2>&1
    t0=$(date +%s.%N)
    "$MEASURE" -i 200 -o "$WORK/$db.stats" -- "$build/solarx-stream" run \
        -c "$src/config/solarx-stream.conf" 2>"$WORK/$db.log" &
    local pid=$!
    while ((stored < TOTAL)); do
        sleep 0.2
        kill -0 "$pid" 2>/dev/null || { tail -n 5 "$WORK/$db.log" >&2; exit 1; }
        stored=$(psql -X -A -t -d "$db" -c "select coalesce(sum(next_offset), 0)
                                             from solarx_meta.consumer_offsets" 2>/dev/null || echo 0)
    done
    wall=$(echo "$(date +%s.%N) - $t0" | bc)
    loop=$(loop_thread_cpu_s "$pid")
    kill -TERM "$pid"
    wait "$pid" || true
    cpu=$(sed -E 's/.* cpu_s=([0-9.]+).*/\1/' "$WORK/$db.stats")
    rss=$(sed -E 's/.* peak_rss_max_kb=([0-9]+).*/\1/' "$WORK/$db.stats")
    awk -v s="$side" -v n="$TOTAL" -v w="$wall" -v c="$cpu" -v r="$rss" -v l="$loop" \
        'BEGIN { printf "%s %.0f %.2f %.1f %.2f\n", s, n / w, c * 1e6 / n, r / 1024, l * 1e6 / n }'
}

results=$WORK/results
for ((i = 1; i <= ROUNDS; i++)); do
    run A "$BUILD_A" "$i" | tee -a "$results"
    run B "$BUILD_B" "$i" | tee -a "$results"
done
echo "medians over $ROUNDS rounds (msg/s from launch to the last offsets stored, catch-up included):"
for side in A B; do
    for col in 2 3 4 5; do
        awk -v s=$side -v c=$col '$1 == s { print $c }' "$results" | sort -g |
            awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
    done | paste -sd' ' | awk -v s=$side '{ printf "%s msg/s=%s cpu_s_per_1M=%s peak_rss_mib=%s loop_thread_cpu_s_per_1M=%s\n", s, $1, $2, $3, $4 }'
done
