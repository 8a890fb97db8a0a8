#!/usr/bin/env bash
# Passwords never reach a log line or an error (issue 8, item 5), against the real PostgreSQL
# and Kafka: every command is run with a conninfo carrying password=<marker> to a port where
# nothing listens and to the real server as a user that does not exist, with the password from
# password_file, and with a [kafka] sasl.password under librdkafka's debug logging; all of
# stdout and stderr is kept and searched for the markers. The errors must still name the
# server (host, port, database). A configuration file holding a secret warns while others can
# read it, and not once it is 0600.
source "$(dirname "$0")/lib.sh"

marker="SECRET-MARKER-$$"
file_marker="FILE-SECRET-MARKER-$$"
db=$(new_database)
dead_port=$(free_local_port)
out=$TEST_TMP/out
mkdir -p "$out"
printf '%s\n' "$file_marker" >"$TEST_TMP/pgpass"
chmod 600 "$TEST_TMP/pgpass"

# config NAME CONNINFO [LINES...]: a configuration at $TEST_TMP/NAME.conf (mode 0600) with
# migrate_on_start and the given extra lines in [solarx] / [kafka] / [postgres] form.
config() {
    local name=$1 conninfo=$2
    shift 2
    {
        printf '[solarx]\nmigrate_on_start = true\nhttp_listen =\nflush_interval_ms = 200\n'
        printf 'appliances_file = %s\npanels_file = %s\nmigrations_dir = %s\n' \
            "$SOLARX_SOURCE_DIR/config/home_appliances_consumption.json" \
            "$SOLARX_SOURCE_DIR/config/solar_panels.json" "$SOLARX_SOURCE_DIR/migrations"
        printf '[kafka]\nbootstrap.servers = %s\ngroup.id = secrets-%s\n' \
            "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" "$$"
        printf '[postgres]\nconninfo = %s\n' "$conninfo"
        printf '%s\n' "$@"
    } >"$TEST_TMP/$name.conf"
    chmod 600 "$TEST_TMP/$name.conf"
}

# cli NAME CONF ARGS...: runs solarx-stream ARGS -c CONF, all output to $out/NAME; prints the
# exit status.
cli() {
    local name=$1 conf=$2 rc=0
    shift 2
    timeout 60 "$SOLARX_BIN" "$@" -c "$conf" >"$out/$name" 2>&1 || rc=$?
    echo "$rc"
}

# run_until NAME CONF PATTERN: `run` until its output matches PATTERN (grep -E; at most 60 s),
# then SIGTERM (SIGKILL 10 s later).
run_until() {
    "$SOLARX_BIN" run -c "$2" >"$out/$1" 2>&1 &
    local pid=$! deadline=$((SECONDS + 60))
    until grep -qE -- "$3" "$out/$1" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || break
        ((SECONDS < deadline)) || break
        sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# expect_in NAME TEXT: the output of NAME contains TEXT.
expect_in() {
    grep -qF -- "$2" "$out/$1" || {
        cat "$out/$1" >&2
        fail "$1: no \"$2\" in its output"
    }
}

# 1. Nothing listens on the port.
config dead "host=127.0.0.1 port=$dead_port user=solarx dbname=solarx_secret password=$marker"
dead="host=127.0.0.1 port=$dead_port dbname=solarx_secret user=solarx"
assert_eq "$(cli dead-migrate "$TEST_TMP/dead.conf" migrate)" 1 "migrate exit status"
expect_in dead-migrate "cannot connect ($dead)"
assert_eq "$(cli dead-status "$TEST_TMP/dead.conf" status)" 1 "status exit status"
expect_in dead-status "cannot connect ($dead)"
assert_eq "$(cli dead-ingest "$TEST_TMP/dead.conf" ingest \
    "$SOLARX_SOURCE_DIR/tests/data/home_energy_consumption.jsonl")" 1 "ingest exit status"
expect_in dead-ingest "event=ingest_failed stage=migrate"
grep -q 'event=ingest_done' "$out/dead-ingest" && fail "ingest logged ingest_done after a failure"
assert_eq "$(cli dead-replay "$TEST_TMP/dead.conf" replay --from-beginning)" 1 \
    "replay exit status"
expect_in dead-replay "event=replay_failed stage=migrate"
grep -q 'event=replay_done' "$out/dead-replay" && fail "replay logged replay_done after a failure"
run_until dead-run-migrating "$TEST_TMP/dead.conf" "event=postgres_unavailable" # before READY
expect_in dead-run-migrating "event=postgres_unavailable msg=\"postgres: cannot connect ($dead)"
config dead-async "host=127.0.0.1 port=$dead_port user=solarx dbname=solarx_secret password=$marker" \
    "[solarx]" "migrate_on_start = false"
run_until dead-run "$TEST_TMP/dead-async.conf" "event=postgres_connect_failed" # non-blocking
expect_in dead-run "event=postgres_connect_failed server=\"$dead\""

# 2. The real server, a user that does not exist; then the password from password_file.
nobody="nobody_$$"
config wrong-user "host=$PGHOST port=$PGPORT user=$nobody dbname=$db password=$marker"
assert_eq "$(cli wrong-user-migrate "$TEST_TMP/wrong-user.conf" migrate)" 1 "migrate as $nobody"
expect_in wrong-user-migrate "cannot connect (host=$PGHOST port=$PGPORT dbname=$db user=$nobody)"
expect_in wrong-user-migrate "$nobody"
assert_eq "$(cli wrong-user-status "$TEST_TMP/wrong-user.conf" status)" 1 "status as $nobody"
config wrong-user-file "host=$PGHOST port=$PGPORT user=$nobody dbname=$db" \
    "password_file = $TEST_TMP/pgpass"
assert_eq "$(cli wrong-user-file-migrate "$TEST_TMP/wrong-user-file.conf" migrate)" 1 \
    "migrate as $nobody, password_file"
expect_in wrong-user-file-migrate "dbname=$db user=$nobody"
run_until wrong-user-run "$TEST_TMP/wrong-user-file.conf" "event=postgres_unavailable"
expect_in wrong-user-run "user=$nobody)"

# 3. Kafka: SASL against a plaintext broker, librdkafka logging everything it logs about
# security and its configuration; PostgreSQL works, with the password from password_file.
config kafka-sasl "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db" \
    "password_file = $TEST_TMP/pgpass" "[kafka]" "security.protocol = SASL_PLAINTEXT" \
    "sasl.mechanism = PLAIN" "sasl.username = someone" "sasl.password = $marker" \
    "debug = security,conf,broker" "[solarx]" "log_level = debug"
run_until kafka-sasl-run "$TEST_TMP/kafka-sasl.conf" "event=kafka_error code=_AUTHENTICATION"
expect_in kafka-sasl-run "sasl.password"  # librdkafka did dump its configuration
expect_in kafka-sasl-run "event=kafka_error code=_AUTHENTICATION"
assert_eq "$(cli kafka-sasl-status "$TEST_TMP/kafka-sasl.conf" status)" 1 "status, SASL failing"

# Nothing anywhere shows a password.
lines=$(cat "$out"/* | wc -l)
if grep -rn -e "$marker" -e "$file_marker" "$out"; then
    fail "a password appears in the output above"
fi
echo "searched $lines lines of $(ls "$out" | wc -l) runs: no password"

# 4. The configuration file holds a secret: a warning while group or others can read it.
chmod 644 "$TEST_TMP/dead.conf"
cli dead-migrate-644 "$TEST_TMP/dead.conf" migrate >/dev/null
expect_in dead-migrate-644 "event=config_warning msg=\"configuration file \\\"$TEST_TMP/dead.conf\\\" has group or others access (mode 0644)"
grep -q 'event=config_warning' "$out/dead-migrate" && fail "a warning for a 0600 configuration file"
grep -rqe "$marker" "$out/dead-migrate-644" && fail "the warning shows the password"
chmod 640 "$TEST_TMP/pgpass"
cli file-640 "$TEST_TMP/wrong-user-file.conf" migrate >/dev/null
expect_in file-640 "[postgres] password_file \\\"$TEST_TMP/pgpass\\\" has group or others access (mode 0640)"

echo "PASS test_secrets"
