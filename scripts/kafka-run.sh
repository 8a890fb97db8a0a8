#!/usr/bin/env bash
# Runs one Apache Kafka Java tool class from the cached jars (see scripts/services.sh), e.g.
#   scripts/kafka-run.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
# Tool logs (WARN and above) go to $SOLARX_RUN_DIR/kafka/tools.log, stdout/stderr stay the tool's.
# Classes: org.apache.kafka.tools.TopicCommand, org.apache.kafka.tools.consumer.ConsoleConsumer,
# kafka.tools.ConsoleProducer, org.apache.kafka.tools.GetOffsetShell, kafka.tools.StorageTool.
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
fi

# shellcheck source=kafka/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka/common.sh"
if ! kafka_find_cached; then
    kafka_ensure_jars || {
        echo "kafka-run: cannot fetch the Kafka jars" >&2
        exit 1
    }
fi
mkdir -p "$SOLARX_RUN_DIR/kafka"
kafka_java_argv "$SOLARX_RUN_DIR/kafka/tools.log"
exec "${KAFKA_JAVA[@]}" "$@"
