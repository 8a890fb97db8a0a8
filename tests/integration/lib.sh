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
unset SOLARX_POSTGRES_CONNINFO SOLARX_KAFKA_CLASSPATH

TEST_TMP=$(mktemp -d "/tmp/solarx-$(basename "$0" .sh)-XXXXXX")
TEST_DBS=()

cleanup_test() {
    local db
    for db in "${TEST_DBS[@]}"; do
        psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$TEST_TMP"
}
trap cleanup_test EXIT

# Creates an empty database and prints its name; it is dropped when the test exits.
new_database() {
    local db="solarx_t_$(basename "$0" .sh | tr -c 'a-z0-9_\n' _)_$$_${#TEST_DBS[@]}"
    psql -q -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    TEST_DBS+=("$db")
    echo "$db"
}

# Writes a configuration for database $1 to $2 (Kafka group $3, default solarx-test).
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
conninfo = host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db
CONF
}

assert_eq() {
    [[ "$1" == "$2" ]] || fail "${3:-values differ}: expected '$2', got '$1'"
}

# Runs psql on database $1 with query $2, unaligned, tuples only.
q() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}
