# shellcheck shell=bash
# Shared by scripts/services.sh and scripts/kafka-run.sh: where the Kafka jars live, how to
# fetch them once into the cache, and how to run a Kafka Java class with our log4j config.
# Source it; it defines variables and functions only.

SOLARX_BROKER_VERSIONS=${SOLARX_BROKER_VERSIONS:-"3.9.1 3.9.0"}
SOLARX_CACHE_DIR=${SOLARX_CACHE_DIR:-${HOME:-/root}/.cache/solarx}
SOLARX_RUN_DIR=${SOLARX_RUN_DIR:-/tmp/solarx-run}
KAFKA_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_POM=$KAFKA_SCRIPT_DIR/pom.xml
KAFKA_LOG4J=$KAFKA_SCRIPT_DIR/log4j.properties

# kafka_pom_digest: prints a digest of pom.xml, so that editing it invalidates the cache.
kafka_pom_digest() {
    sha256sum "$KAFKA_POM" | cut -c1-16
}

# kafka_find_cached: sets KAFKA_VERSION and KAFKA_LIBS to a complete cached jar set, or returns 1.
kafka_find_cached() {
    local v digest
    digest=$(kafka_pom_digest)
    for v in $SOLARX_BROKER_VERSIONS; do
        if [[ -f $SOLARX_CACHE_DIR/kafka-$v/complete && -d $SOLARX_CACHE_DIR/kafka-$v/libs &&
              $(cat "$SOLARX_CACHE_DIR/kafka-$v/complete") == "$digest" ]]; then
            KAFKA_VERSION=$v
            KAFKA_LIBS=$SOLARX_CACHE_DIR/kafka-$v/libs
            return 0
        fi
    done
    return 1
}

# kafka_ensure_jars: makes sure the jars are cached (downloading with Maven on first use, 3.9.1
# preferred, 3.9.0 as fallback); sets KAFKA_VERSION and KAFKA_LIBS. Returns 1 on failure.
kafka_ensure_jars() {
    kafka_find_cached && return 0
    local v dir tmp log digest
    digest=$(kafka_pom_digest)
    mkdir -p "$SOLARX_CACHE_DIR"
    for v in $SOLARX_BROKER_VERSIONS; do
        dir=$SOLARX_CACHE_DIR/kafka-$v
        tmp=$dir/libs.tmp.$$
        log=$dir/mvn.log
        rm -rf "$dir" && mkdir -p "$dir"
        echo "kafka: fetching Apache Kafka $v jars into $dir (once)" >&2
        if mvn -q -B -f "$KAFKA_POM" -Dkafka.version="$v" dependency:copy-dependencies \
               -DoutputDirectory="$tmp" >"$log" 2>&1 &&
           [[ -f $tmp/kafka_2.13-$v.jar && -f $tmp/kafka-tools-$v.jar ]]; then
            mv "$tmp" "$dir/libs"
            echo "$digest" >"$dir/complete"
            KAFKA_VERSION=$v
            KAFKA_LIBS=$dir/libs
            return 0
        fi
        echo "kafka: fetching $v failed, last lines of $log:" >&2
        tail -n 15 "$log" >&2
        rm -rf "$tmp"
    done
    return 1
}

# kafka_java_argv LOGFILE: sets the array KAFKA_JAVA to the java command line (up to the class
# name) for a Kafka tool that logs to LOGFILE.
kafka_java_argv() {
    KAFKA_JAVA=(java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
        "-Dlog4j.configuration=file:$KAFKA_LOG4J" "-Dsolarx.log.file=$1" -cp "$KAFKA_LIBS/*")
}

# kafka_java LOGFILE CLASS ARGS...: runs a Kafka class in the foreground, logging to LOGFILE;
# killed after $KAFKA_TIMEOUT seconds when that is set.
kafka_java() {
    kafka_java_argv "$1"
    shift
    ${KAFKA_TIMEOUT:+timeout "$KAFKA_TIMEOUT"} "${KAFKA_JAVA[@]}" "$@"
}
