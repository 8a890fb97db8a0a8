#!/usr/bin/env bash
# Real PostgreSQL 15 and Apache Kafka 3.9 (KRaft, single node) on 127.0.0.1 for the integration
# tests, no Docker needed. Usage: scripts/services.sh up|down|status|env|restart-pg|restart-kafka|
# stop-pg|start-pg|stop-kafka|start-kafka.  See usage() for the environment it reads.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=kafka/common.sh
source "$REPO/scripts/kafka/common.sh"

case $SOLARX_RUN_DIR in
/*) ;;
*) SOLARX_RUN_DIR=$PWD/$SOLARX_RUN_DIR ;;
esac
SOLARX_RUN_DIR=${SOLARX_RUN_DIR%/}
PG_PORT=${SOLARX_PG_PORT:-55432}
KAFKA_PORT=${SOLARX_BROKER_PORT:-19092}
CONTROLLER_PORT=${SOLARX_BROKER_CONTROLLER_PORT:-19093}
PG_BIN=${SOLARX_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_STOP_MODE=${SOLARX_PG_STOP_MODE:-fast}
KAFKA_START_TIMEOUT=${SOLARX_BROKER_START_TIMEOUT:-120}
PG_DIR=$SOLARX_RUN_DIR/pg
PG_DATA=$PG_DIR/data
KAFKA_DIR=$SOLARX_RUN_DIR/kafka
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
ENV_FILE=$SOLARX_RUN_DIR/env
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
TOPICS=(battery_data home_energy_consumption solar_energy_data)
TOPIC_PARTITIONS=3
unset KAFKA_TOPIC_LIST

usage() {
    cat <<EOF
usage: scripts/services.sh COMMAND

  up             start PostgreSQL and Kafka (reusing running ones), create roles/db/topics,
                 write \$SOLARX_RUN_DIR/env
  down           stop both and remove their data
  status         say what runs (exit 0 when both run, 3 otherwise)
  env            print the path of the env file (exit 1 when it does not exist)
  restart-pg     stop PostgreSQL (-m fast, or SOLARX_PG_STOP_MODE) and start it again, keeping data
  restart-kafka  stop the broker (SIGTERM) and start it again, keeping data
  stop-pg | start-pg | stop-kafka | start-kafka   the halves of the above, for fault injection

environment (defaults):
  SOLARX_RUN_DIR=/tmp/solarx-run  SOLARX_CACHE_DIR=\$HOME/.cache/solarx
  SOLARX_PG_PORT=55432  SOLARX_BROKER_PORT=19092  SOLARX_BROKER_CONTROLLER_PORT=19093
  SOLARX_PG_BIN=/usr/lib/postgresql/15/bin  SOLARX_BROKER_START_TIMEOUT=120  SOLARX_SKIP_DEPS=0
  SOLARX_PG_STOP_MODE=fast   pg_ctl's shutdown mode for stop-pg/restart-pg: smart, fast, or
                             immediate (a crash: no checkpoint, recovery on the next start)
EOF
}

die() {
    echo "services: $*" >&2
    exit 1
}

say() {
    echo "services: $*"
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL. initdb and postgres refuse to run as root, so as root they run as PG_OS_USER.

if [[ $EUID -eq 0 ]]; then
    PG_OS_USER=${SOLARX_PG_OS_USER:-postgres}
else
    PG_OS_USER=$(id -un)
fi

as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

pg_prepare_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id "$PG_OS_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$PG_OS_USER"
    fi
}

pg_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_psql() {
    "$PG_BIN/psql" -X -h 127.0.0.1 -p "$PG_PORT" -U solarx "$@"
}

pg_init() {
    [[ -x $PG_BIN/initdb ]] || die "no PostgreSQL at $PG_BIN (run scripts/deps.sh)"
    pg_prepare_user
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    chmod 755 "$SOLARX_RUN_DIR"
    chmod 700 "$PG_DIR"
    [[ $EUID -eq 0 ]] && chown "$PG_OS_USER:" "$PG_DIR"
    as_pg test -w "$PG_DIR" ||
        die "$PG_OS_USER cannot write $PG_DIR (a parent directory is not searchable?);" \
            "choose another SOLARX_RUN_DIR"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U solarx --auth=trust --no-locale -E UTF8 \
        >"$PG_DIR/initdb.log" 2>&1; then
        tail -n 20 "$PG_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    # Loopback only: no other address is listened on, and only loopback is trusted.
    as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<EOF
# solarx test cluster: trust on the unix socket and loopback, nothing else.
local   all  all                trust
host    all  all  127.0.0.1/32  trust
host    all  all  ::1/128       trust
EOF
    # fsync=off only risks data on an OS crash; commits still reach the kernel before they are
    # acknowledged, so killing postgres (a test's fault injection) loses nothing committed.
    as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# --- solarx test cluster (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
fsync = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
EOF
}

pg_start() {
    [[ -f $PG_DATA/PG_VERSION ]] || die "no PostgreSQL data in $PG_DATA (run 'up' first)"
    if pg_running; then
        return 0
    fi
    port_open "$PG_PORT" && die "127.0.0.1:$PG_PORT is taken by another process" \
        "(set SOLARX_PG_PORT)"
    if ! as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_DATA" -l "$PG_DIR/postgres.log" \
        -o "-p $PG_PORT" >/dev/null 9>&-; then
        tail -n 30 "$PG_DIR/postgres.log" >&2
        die "PostgreSQL did not start"
    fi
}

pg_stop() {
    case $PG_STOP_MODE in
    smart | fast | immediate) ;;
    *) die "SOLARX_PG_STOP_MODE=$PG_STOP_MODE: expected smart, fast or immediate" ;;
    esac
    if pg_running; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m "$PG_STOP_MODE" -w -t 60 >/dev/null
    fi
}

# Least privilege (README.md, "Least privilege"): solarx_owner (NOLOGIN) owns the schemas and the
# databases, solarx_migrate logs in to run migrations as a member of it, solarx_app is the
# service's runtime role; solarx stays the cluster's superuser, for tests and psql. Idempotent:
# a reused cluster gets what it lacks. Loopback trust: no passwords.
pg_roles() {
    pg_psql -d postgres -v ON_ERROR_STOP=1 -Xq >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT 'CREATE ROLE solarx_owner NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'solarx_owner') \gexec
SELECT 'CREATE ROLE solarx_migrate LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'solarx_migrate') \gexec
SELECT 'CREATE ROLE solarx_app LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'solarx_app') \gexec
SELECT 'GRANT solarx_owner TO solarx_migrate'
 WHERE NOT pg_has_role('solarx_migrate', 'solarx_owner', 'MEMBER') \gexec
SQL
}

pg_up() {
    local state=reused
    if ! pg_running; then
        state=started
        [[ -f $PG_DATA/PG_VERSION ]] || pg_init
        pg_start
    fi
    pg_roles || die "cannot create the roles solarx_owner, solarx_migrate, solarx_app"
    if [[ $(pg_psql -d postgres -Atqc "select 1 from pg_database where datname = 'solarx'") != 1 ]]
    then
        pg_psql -d postgres -qc "create database solarx owner solarx_owner" >/dev/null
    fi
    pg_psql -d postgres -qc "alter database solarx owner to solarx_owner" >/dev/null
    say "postgres  127.0.0.1:$PG_PORT  user=solarx dbname=solarx (superuser), solarx_migrate" \
        "(migrations), solarx_app (service)  ($state)"
}

# ---------------------------------------------------------------------------------------------
# Kafka: kafka.Kafka in KRaft combined mode, started in its own session, pid in KAFKA_PIDFILE.

kafka_pid() {
    local pid
    [[ -f $KAFKA_PIDFILE ]] || return 1
    pid=$(<"$KAFKA_PIDFILE")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

kafka_write_config() {
    mkdir -p "$KAFKA_DIR"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# Single-node KRaft broker+controller for solarx tests (written by scripts/services.sh).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=$TOPIC_PARTITIONS
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# Tests produce records whose timestamps may be far in the past: never expire them.
log.retention.ms=-1
log.retention.bytes=-1
EOF
}

kafka_format() {
    local cluster_id
    rm -rf "$KAFKA_DIR"
    kafka_write_config
    cluster_id=$(kafka_java "$KAFKA_DIR/tools.log" kafka.tools.StorageTool random-uuid)
    if ! kafka_java "$KAFKA_DIR/tools.log" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1; then
        cat "$KAFKA_DIR/format.log" >&2
        die "kafka storage format failed"
    fi
}

kafka_fail() {
    echo "services: $* -- last lines of $KAFKA_DIR/broker.log and kafka.out:" >&2
    tail -n 40 "$KAFKA_DIR/broker.log" >&2 2>/dev/null || true
    tail -n 20 "$KAFKA_DIR/kafka.out" >&2 2>/dev/null || true
    exit 1
}

kafka_topics() {
    KAFKA_TIMEOUT=60 kafka_java "$KAFKA_DIR/tools.log" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@"
}

kafka_wait_ready() {
    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        kafka_pid >/dev/null || kafka_fail "broker exited during start-up"
        if port_open "$KAFKA_PORT" && KAFKA_TOPIC_LIST=$(kafka_topics --list 2>/dev/null); then
            return 0
        fi
        sleep 0.5
    done
    kafka_fail "broker not ready after ${KAFKA_START_TIMEOUT}s"
}

kafka_start() {
    [[ -f $KAFKA_DIR/data/meta.properties ]] || die "no Kafka data in $KAFKA_DIR (run 'up' first)"
    kafka_pid >/dev/null && return 0
    local port
    for port in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
        port_open "$port" && die "127.0.0.1:$port is taken by another process" \
            "(set SOLARX_BROKER_PORT / SOLARX_BROKER_CONTROLLER_PORT)"
    done
    kafka_write_config
    echo "--- start $(date -Is)" >>"$KAFKA_DIR/kafka.out"
    # setsid: the broker outlives the shell (and ctest's process group) that started it.
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
        java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$KAFKA_LOG4J" -Dsolarx.log.file="$KAFKA_DIR/broker.log" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
        </dev/null >>"$KAFKA_DIR/kafka.out" 2>&1 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        kafka_pid >/dev/null && break
        sleep 0.1
    done
    kafka_wait_ready
}

kafka_stop() {
    local pid i
    pid=$(kafka_pid) || {
        rm -f "$KAFKA_PIDFILE"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "services: broker $pid ignored SIGTERM for 60s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$KAFKA_PIDFILE"
}

kafka_ensure_topics() {
    local existing=${KAFKA_TOPIC_LIST:-} topic pids=() failed=0 i
    local -a missing=()
    # The readiness probe's listing is fresh enough; a reused broker is asked now.
    if [[ -z ${KAFKA_TOPIC_LIST+set} ]]; then
        existing=$(kafka_topics --list 2>/dev/null) || kafka_fail "cannot list topics"
    fi
    for topic in "${TOPICS[@]}"; do
        grep -qx "$topic" <<<"$existing" || missing+=("$topic")
    done
    # One JVM per topic, in parallel: start-up time dominates.
    for topic in "${missing[@]}"; do
        kafka_topics --create --if-not-exists --topic "$topic" \
            --partitions "$TOPIC_PARTITIONS" --replication-factor 1 >/dev/null &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || {
            echo "services: cannot create topic ${missing[$i]}" >&2
            failed=1
        }
    done
    ((failed == 0)) || kafka_fail "topic creation failed"
}

kafka_up() {
    local state=reused
    kafka_ensure_jars || die "cannot fetch the Kafka jars (see above)"
    if ! kafka_pid >/dev/null; then
        state=started
        [[ -f $KAFKA_DIR/data/meta.properties ]] || kafka_format
        kafka_start
    fi
    kafka_ensure_topics
    say "kafka     $BOOTSTRAP  Apache Kafka $KAFKA_VERSION KRaft, topics: ${TOPICS[*]}  ($state)"
}

# ---------------------------------------------------------------------------------------------

write_env() {
    local conninfo="host=127.0.0.1 port=$PG_PORT user=solarx_app dbname=solarx"
    local migrate_conninfo="host=127.0.0.1 port=$PG_PORT user=solarx_migrate dbname=solarx"
    cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/services.sh up; source it to reach the test services.
# psql (PG*) connects as the superuser solarx; solarx-stream runs as solarx_app and migrates as
# solarx_migrate (README.md, "Least privilege").
export PGHOST=127.0.0.1
export PGPORT=$PG_PORT
export PGUSER=solarx
export PGDATABASE=solarx
export SOLARX_POSTGRES_CONNINFO='$conninfo'
export SOLARX_POSTGRES_MIGRATE_CONNINFO='$migrate_conninfo'
export SOLARX_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
export SOLARX_RUN_DIR='$SOLARX_RUN_DIR'
export SOLARX_BROKER_CLASSPATH='$KAFKA_LIBS/*'
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_up() {
    if [[ ${SOLARX_SKIP_DEPS:-0} != 1 ]]; then
        bash "$REPO/scripts/deps.sh"
    fi
    mkdir -p "$SOLARX_RUN_DIR"
    pg_up
    kafka_up
    write_env
    say "env       $ENV_FILE"
}

cmd_down() {
    kafka_stop
    pg_stop
    rm -rf "$KAFKA_DIR" "$PG_DIR" "$ENV_FILE" "$ENV_FILE.tmp"
    rmdir "$SOLARX_RUN_DIR" 2>/dev/null || true
    say "stopped; data removed from $SOLARX_RUN_DIR"
}

cmd_status() {
    local rc=0 pid
    if pg_running; then
        say "postgres  running   127.0.0.1:$PG_PORT  data $PG_DATA"
    else
        say "postgres  stopped"
        rc=3
    fi
    if pid=$(kafka_pid); then
        say "kafka     running   $BOOTSTRAP  pid $pid  data $KAFKA_DIR/data"
    else
        say "kafka     stopped"
        rc=3
    fi
    [[ -f $ENV_FILE ]] && say "env       $ENV_FILE"
    return $rc
}

need_jars() {
    kafka_find_cached || die "Kafka jars not cached (run 'up' first)"
}

main() {
    local cmd=${1:-}
    [[ $# -le 1 ]] || {
        usage >&2
        exit 64
    }
    case $cmd in
    up | down | restart-* | stop-* | start-*)
        # One changing command at a time per run directory; daemons must not inherit fd 9.
        mkdir -p "$(dirname "$SOLARX_RUN_DIR")"
        exec 9>"$SOLARX_RUN_DIR.lock"
        flock -w 600 9 || die "another services.sh holds $SOLARX_RUN_DIR.lock"
        ;;
    esac
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env)
        echo "$ENV_FILE"
        [[ -f $ENV_FILE ]] || {
            echo "services: $ENV_FILE does not exist (run 'up')" >&2
            exit 1
        }
        ;;
    restart-pg)
        pg_stop
        pg_start
        say "postgres restarted"
        ;;
    stop-pg) pg_stop ;;
    start-pg) pg_start ;;
    restart-kafka)
        need_jars
        kafka_stop
        kafka_start
        say "kafka restarted"
        ;;
    stop-kafka) kafka_stop ;;
    start-kafka)
        need_jars
        kafka_start
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 64
        ;;
    esac
}

main "$@"
