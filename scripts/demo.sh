#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: installs what is missing, builds, starts local
# PostgreSQL 15 and Kafka 3.9 (scripts/services.sh), simulates one day of 10 homes into the three
# topics, runs `solarx-stream run` until it has caught up (`solarx-stream status`), stops it with
# SIGTERM and prints a psql summary of the warehouse. Re-runnable: each run starts from fresh
# topics and a fresh database (solarx_demo).
#   DEMO_HOMES (10), DEMO_DAYS (1), DEMO_SEED (42) change the simulated load.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
HOMES=${DEMO_HOMES:-10}
DAYS=${DEMO_DAYS:-1}
SEED=${DEMO_SEED:-42}
say() { printf '\n== %s\n' "$*"; }

say "installing build and service dependencies (when missing)"
scripts/deps.sh

say "building"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build solarx-stream solarx-sim >/dev/null

say "starting PostgreSQL and Kafka on 127.0.0.1"
scripts/services.sh up
SOLARX_RUN_DIR=${SOLARX_RUN_DIR:-/tmp/solarx-run}
# shellcheck disable=SC1091
source "$SOLARX_RUN_DIR/env"
unset SOLARX_POSTGRES_CONNINFO SOLARX_POSTGRES_MIGRATE_CONNINFO # the demo's config says which database
DEMO_DIR=$SOLARX_RUN_DIR/demo
mkdir -p "$DEMO_DIR"

say "fresh topics and database"
for topic in battery_data home_energy_consumption solar_energy_data; do
    scripts/kafka-run.sh org.apache.kafka.tools.TopicCommand --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
        --delete --if-exists --topic "$topic" >/dev/null 2>&1 || true
done
for topic in battery_data home_energy_consumption solar_energy_data; do
    for attempt in 1 2 3 4 5 6 7 8 9 10; do # deletion is asynchronous in Kafka
        scripts/kafka-run.sh org.apache.kafka.tools.TopicCommand --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
            --create --if-not-exists --topic "$topic" --partitions 3 >/dev/null 2>&1 && break
        sleep 1
    done
done
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS solarx_demo WITH (FORCE)" \
    -c "CREATE DATABASE solarx_demo OWNER solarx_owner"

# Registries for every simulated home and panel (the simulator names panels home_id*10+4).
{
    echo "["
    for ((h = 1; h <= HOMES; h++)); do
        printf '  {"home_id": %d, "appliances": %s}%s\n' "$h" "$(cat config/home_appliances_consumption.json)" \
            "$([[ $h -lt $HOMES ]] && echo ,)"
    done
    echo "]"
} >"$DEMO_DIR/home_appliances.json"
{
    echo "["
    for ((h = 1; h <= HOMES; h++)); do
        printf '  {"id": %d, "home_id": %d, "name": "kafka panel of home %d", "capacity_kwh": 10, "intensity_power_rating": 1000, "temperature_power_rating": 25}%s\n' \
            $((HOMES > 1 ? h * 10 + 4 : 4)) "$h" "$h" "$([[ $h -lt $HOMES ]] && echo ,)"
    done
    echo "]"
} >"$DEMO_DIR/solar_panels.json"

cat >"$DEMO_DIR/solarx-stream.conf" <<CONF
[solarx]
source_timezone = UTC
migrate_on_start = false
migrations_dir = $REPO/migrations
appliances_file = $DEMO_DIR/home_appliances.json
panels_file = $DEMO_DIR/solar_panels.json
http_listen =
[kafka]
bootstrap.servers = $SOLARX_KAFKA_BOOTSTRAP_SERVERS
group.id = solarx-demo
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=solarx_app dbname=solarx_demo
migrate_conninfo = host=$PGHOST port=$PGPORT user=solarx_migrate dbname=solarx_demo
CONF

say "migrations as solarx_migrate; the service runs as solarx_app (README: Least privilege)"
build/solarx-stream migrate -c "$DEMO_DIR/solarx-stream.conf"

say "simulating $DAYS day(s) of $HOMES homes (seed $SEED) into Kafka"
build/solarx-sim --homes "$HOMES" --days "$DAYS" --seed "$SEED" --duplicates 0.001 --disorder 0.001 \
    --malformed 0.0001 --battery-upgrade "2025-02-14 12:00:00" \
    --brokers "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" >"$DEMO_DIR/sim-summary.json" 2>"$DEMO_DIR/sim.log"
cat "$DEMO_DIR/sim-summary.json"

say "running solarx-stream until it has caught up (log: $DEMO_DIR/service.log)"
build/solarx-stream run -c "$DEMO_DIR/solarx-stream.conf" 2>"$DEMO_DIR/service.log" &
service_pid=$!
trap 'kill $service_pid 2>/dev/null || true' EXIT
started=$(date +%s)
while :; do
    sleep 2
    if ! kill -0 $service_pid 2>/dev/null; then
        tail -20 "$DEMO_DIR/service.log"
        echo "solarx-stream exited early" >&2
        exit 1
    fi
    line=$(build/solarx-stream status -c "$DEMO_DIR/solarx-stream.conf" 2>/dev/null | tail -1 || true)
    echo "  $(($(date +%s) - started))s: $line"
    [[ $line == *" total_lag=0 "* ]] && break
    if (($(date +%s) - started > 1200)); then
        echo "not caught up after 20 minutes" >&2
        exit 1
    fi
done
elapsed=$(($(date +%s) - started))
kill -TERM $service_pid
wait $service_pid
trap - EXIT
grep -E 'event=stopping' "$DEMO_DIR/service.log" | tail -1

say "the warehouse (psql -d solarx_demo)"
psql -X -d solarx_demo <<'SQL'
\pset footer off
SELECT 'raw home readings' AS what, count(*) FROM solarx_raw.home_power_readings
UNION ALL SELECT 'raw solar readings', count(*) FROM solarx_raw.solar_panel_readings
UNION ALL SELECT 'raw battery readings', count(*) FROM solarx_raw.battery_readings
UNION ALL SELECT 'dead letters', count(*) FROM solarx_raw.dead_letters
UNION ALL SELECT 'home facts (15 min)', count(*) FROM solarx_wh.fact_home_power_readings
UNION ALL SELECT 'solar facts (15 min)', count(*) FROM solarx_wh.fact_solar_panel_power_readings
UNION ALL SELECT 'battery facts (15 min)', count(*) FROM solarx_wh.fact_battery_power_readings
UNION ALL SELECT 'dim_battery versions', count(*) FROM solarx_wh.dim_battery;

\echo 'Daily energy balance per home (kWh):'
SELECT home_id, local_date, round(consumption_wh / 1000, 2) AS consumed_kwh,
       round(generation_wh / 1000, 2) AS generated_kwh, round(net_wh / 1000, 2) AS net_kwh,
       consumption_completeness
  FROM solarx_wh.v_daily_summary ORDER BY home_id, local_date LIMIT 10;

\echo 'Home 1, the four windows around noon:'
SELECT date_key, consumption_wh, generation_wh, net_wh
  FROM solarx_wh.v_energy_balance
 WHERE home_id = 1 AND date_key BETWEEN '2025-02-14 11:30Z' AND '2025-02-14 12:15Z' ORDER BY date_key;

\echo 'Battery 1 of home 1: its versions (SCD2 from the stream) and the facts on each:'
SELECT d.battery_key, d.capacity_kwh, d.max_output_w, d.start_date, d.end_date, d.current_flag,
       count(f.*) AS windows, round(avg(f.current_energy_wh), 2) AS avg_energy_wh
  FROM solarx_wh.dim_battery d
  LEFT JOIN solarx_wh.fact_battery_power_readings f USING (battery_key)
 WHERE d.home_id = 1 AND d.battery_id = 1
 GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY d.start_date;

\echo 'Dead letters by reason:'
SELECT reason, count(*) FROM solarx_raw.dead_letters GROUP BY 1 ORDER BY 2 DESC;
SQL
echo
echo "caught up in ${elapsed}s; $(grep -c 'event=flush_committed' "$DEMO_DIR/service.log") flushes"
