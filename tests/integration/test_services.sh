#!/usr/bin/env bash
# Checks the services scripts/services.sh brings up: PostgreSQL 15 answers as solarx (and as the
# least-privilege roles solarx_app and solarx_migrate), the three Solar-X topics exist with 3
# partitions, and a message goes through Kafka and back.
set -euo pipefail

SRC=${SOLARX_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ENV_FILE=${SOLARX_RUN_DIR:-/tmp/solarx-run}/env
KRUN=$SRC/scripts/kafka-run.sh
failures=0
passes=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

pass() {
    echo "ok: $*"
    passes=$((passes + 1))
}

# expect_eq GOT WANT WHAT
expect_eq() {
    if [[ $1 == "$2" ]]; then
        pass "$3"
    else
        fail "$3: got '$1', expected '$2'"
    fi
}

if [[ ! -f $ENV_FILE ]]; then
    echo "FAIL: $ENV_FILE is missing: run scripts/services.sh up first" >&2
    exit 1
fi
# shellcheck source=/dev/null
source "$ENV_FILE"

# PostgreSQL: the role and database from the env file, server major version 15.
version=$(psql -X -Atqc 'select version()' 2>&1) || version="psql failed: $version"
if [[ $version == "PostgreSQL 15."* ]]; then
    pass "postgres: $version"
else
    fail "postgres version: $version"
fi
whoami_db=$(psql -X -Atqc 'select current_user || $$/$$ || current_database()' 2>&1) || true
expect_eq "$whoami_db" solarx/solarx "postgres: connected as solarx to database solarx"
conninfo_ok=$(psql -X -Atqc 'select 1' "$SOLARX_POSTGRES_CONNINFO" 2>&1) || true
expect_eq "$conninfo_ok" 1 "postgres: SOLARX_POSTGRES_CONNINFO connects"
# Least privilege: the service's conninfo is the runtime role, the migrations' a member of the
# owner of the database (and of the schemas, after migration 0008).
app=$(psql -X -Atqc "select current_user || ' ' || pg_has_role('solarx_owner', 'MEMBER')" \
    "$SOLARX_POSTGRES_CONNINFO" 2>&1) || true
expect_eq "$app" "solarx_app false" "postgres: SOLARX_POSTGRES_CONNINFO is solarx_app, not an owner"
migrator=$(psql -X -Atqc "select current_user || ' ' || pg_has_role('solarx_owner', 'MEMBER') ||
                                 ' ' || pg_get_userbyid(datdba)
                            from pg_database where datname = current_database()" \
    "$SOLARX_POSTGRES_MIGRATE_CONNINFO" 2>&1) || true
expect_eq "$migrator" "solarx_migrate true solarx_owner" \
    "postgres: SOLARX_POSTGRES_MIGRATE_CONNINFO is solarx_migrate, a member of the owner"

# Kafka: every Solar-X topic exists with 3 partitions.
for topic in battery_data home_energy_consumption solar_energy_data; do
    desc=$("$KRUN" org.apache.kafka.tools.TopicCommand --bootstrap-server \
        "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --describe --topic "$topic" 2>&1) || true
    if grep -Eq "Topic: ${topic}[[:space:]].*PartitionCount: 3[[:space:]]" <<<"$desc"; then
        pass "kafka: $topic has 3 partitions"
    else
        fail "kafka: $topic: $desc"
    fi
done

# A round trip through a scratch topic: produce one message, read it back, count its offset.
scratch=solarx-test-services-$$-$RANDOM
cleanup() {
    "$KRUN" org.apache.kafka.tools.TopicCommand --bootstrap-server \
        "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --delete --topic "$scratch" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$KRUN" org.apache.kafka.tools.TopicCommand --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" \
    --create --topic "$scratch" --partitions 1 --replication-factor 1 >/dev/null
message="{\"time_stamp\": \"2025-02-14 02:09:00\", \"probe\": \"$scratch\"}"
if ! printf '%s\n' "$message" | timeout 60 "$KRUN" kafka.tools.ConsoleProducer \
    --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --topic "$scratch" \
    --producer-property acks=all; then
    fail "kafka: console producer failed"
fi
got=$(timeout 60 "$KRUN" org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --topic "$scratch" --from-beginning \
    --max-messages 1 --timeout-ms 30000 2>/dev/null) || true
expect_eq "$got" "$message" "kafka: console producer -> console consumer round trip"
offsets=$(timeout 60 "$KRUN" org.apache.kafka.tools.GetOffsetShell \
    --bootstrap-server "$SOLARX_KAFKA_BOOTSTRAP_SERVERS" --topic "$scratch" 2>&1) || true
expect_eq "$offsets" "$scratch:0:1" "kafka: GetOffsetShell high watermark"

echo "test_services: $passes passed, $failures failed"
((failures == 0))
