#!/usr/bin/env python3
"""The benchmark's Spark peer: Spark Structured Streaming as the reference lakehouse would run it.

local[2]; the Kafka source (spark-sql-kafka-0-10 from Maven Central); messages validated by the
schema and the service's rules (a bad message is skipped); duplicate readings (same device and
second) dropped by a streaming dropDuplicates with a one-hour event-time watermark; then, per
micro-batch (foreachBatch), 15-minute windows (window()) aggregated and upserted with psycopg
into the same fact tables as solarx-stream, with the batch's offsets in the same transaction
(a batch whose offsets PostgreSQL already holds is skipped, so a re-run batch is not counted
twice). --trigger available-now processes what the topics hold and exits (the catch-up
measurement); --trigger 1s runs until SIGTERM (the steady mode).

Run by bench/run.sh with the venv it prepares.
"""
import argparse
import os
import signal
import sys
import time
from datetime import timezone

import psycopg
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_consumer import OFFSETS, UPSERT, WINDOW_SECONDS  # noqa: E402 (same fact SQL)

DEC = T.DecimalType(24, 6)
FLOW = T.StructType([
    T.StructField("time_stamp", T.StringType()),
    T.StructField("home_id", T.LongType()),
    T.StructField("panel_id", T.LongType()),
    T.StructField("current_consumption_w", DEC),
    T.StructField("consumption_accumulated_w", DEC),
])
BATTERY = T.StructType([
    T.StructField("capacity_kwh", DEC),
    T.StructField("max_charge_speed_w", DEC),
    T.StructField("current_energy_wh", DEC),
    T.StructField("is_charging", T.IntegerType()),
    T.StructField("status", T.StringType()),
    T.StructField("max_output_w", DEC),
])
BATTERIES = T.StructType([
    T.StructField("time_stamp", T.StringType()),
    T.StructField("home_id", T.LongType()),
    T.StructField("batteries", T.MapType(T.StringType(), BATTERY)),
])
INT32_MAX = 2**31 - 1


def null_dec():
    return F.lit(None).cast(DEC)


def event_time(col):
    return F.to_timestamp(col, "yyyy-MM-dd HH:mm:ss")


def good_id(col):
    return col.isNotNull() & (col > 0) & (col <= INT32_MAX)


def flow_readings(raw, topic, kind):
    m = F.from_json(F.col("value").cast("string"), FLOW)
    d = raw.select("topic", "partition", "offset", m.alias("m"))
    home = F.coalesce(F.col("m.home_id"), F.lit(1))
    panel = F.coalesce(F.col("m.panel_id"), F.lit(4))
    ts = event_time(F.col("m.time_stamp"))
    energy, acc = F.col("m.current_consumption_w"), F.col("m.consumption_accumulated_w")
    valid = (F.col("m").isNotNull() & ts.isNotNull() & good_id(home) & good_id(panel) &
             (energy >= 0) & (acc >= 0))
    valid = F.coalesce(valid, F.lit(False))
    return d.select(
        "topic", "partition", "offset", valid.alias("valid"), F.lit(kind).alias("kind"),
        home.cast("int").alias("home_id"),
        (home if kind == "home" else panel).cast("int").alias("device_id"), ts.alias("ts"),
        energy.alias("energy"), acc.alias("accumulated"), null_dec().alias("capacity"),
        null_dec().alias("speed"), null_dec().alias("output"),
        F.lit(None).cast("boolean").alias("is_charging"),
        F.lit(None).cast("string").alias("status"))


def battery_ok(b):
    return (b.isNotNull() & (b.capacity_kwh > 0) & (b.max_charge_speed_w >= 0) &
            (b.current_energy_wh >= 0) & (b.current_energy_wh <= b.capacity_kwh * 1000) &
            b.is_charging.isin(0, 1) & b.status.isin("ideal", "charging", "discharging") &
            (b.max_output_w >= 0))


def battery_readings(raw, topic):
    m = F.from_json(F.col("value").cast("string"), BATTERIES)
    d = raw.select("topic", "partition", "offset", m.alias("m"))
    home = F.coalesce(F.col("m.home_id"), F.lit(1))
    ts = event_time(F.col("m.time_stamp"))
    bats = F.col("m.batteries")
    valid = (F.col("m").isNotNull() & ts.isNotNull() & good_id(home) & bats.isNotNull() &
             (F.size(bats) >= 1) & (F.size(bats) <= 64) &
             F.forall(F.map_keys(bats), lambda k: k.rlike("^battery_[1-9][0-9]{0,9}$")) &
             F.forall(F.map_values(bats), battery_ok))
    valid = F.coalesce(valid, F.lit(False))
    d = d.select("topic", "partition", "offset", valid.alias("valid"), home.alias("home"),
                 ts.alias("ts"), bats.alias("bats"))
    good = d.where("valid").select("*", F.explode("bats").alias("key", "b"))
    good = good.select(
        "topic", "partition", "offset", "valid", F.lit("battery").alias("kind"),
        F.col("home").cast("int").alias("home_id"),
        F.substring("key", 9, 10).cast("int").alias("device_id"), "ts",
        F.col("b.current_energy_wh").alias("energy"), null_dec().alias("accumulated"),
        F.col("b.capacity_kwh").alias("capacity"), F.col("b.max_charge_speed_w").alias("speed"),
        F.col("b.max_output_w").alias("output"),
        (F.col("b.is_charging") == 1).alias("is_charging"), F.col("b.status").alias("status"))
    # Bad messages go on, as one row without a reading, so their offsets are stored too.
    bad = d.where(~F.col("valid")).select(
        "topic", "partition", "offset", "valid", F.lit("battery").alias("kind"),
        F.lit(None).cast("int").alias("home_id"), F.lit(None).cast("int").alias("device_id"),
        F.lit(None).cast("timestamp").alias("ts"), null_dec().alias("energy"),
        null_dec().alias("accumulated"), null_dec().alias("capacity"), null_dec().alias("speed"),
        null_dec().alias("output"), F.lit(None).cast("boolean").alias("is_charging"),
        F.lit(None).cast("string").alias("status"))
    return good.unionByName(bad)


def utc(dt):
    return dt.replace(tzinfo=timezone.utc)


def fact_rows(kind, r):
    start, first, last = utc(r.w.start), utc(r.first_ts), utc(r.last_ts)
    tail = (first, last, WINDOW_SECONDS)
    x = r.last
    if kind == "home":
        return (r.home_id, start, r.total, r.n, r.low, r.high, x.accumulated) + tail
    if kind == "solar":
        return (r.device_id, r.home_id, start, r.total, r.n, r.low, r.high, x.accumulated) + tail
    return (r.home_id, r.device_id, start, x.energy, x.is_charging, x.status, x.capacity, x.speed,
            x.output, r.low, r.high, r.n) + tail


class BatchWriter:
    """foreachBatch: one PostgreSQL transaction per micro-batch."""

    def __init__(self, conninfo, group):
        self.conninfo = conninfo
        self.group = group
        self.pg = None

    def __call__(self, df, batch_id):
        df.persist()
        offsets = [(r.topic, r.partition, r.next) for r in
                   df.groupBy("topic", "partition").agg((F.max("offset") + 1).alias("next"))
                   .collect()]
        windows = (df.where("valid")
                   .groupBy("kind", "home_id", "device_id",
                            F.window("ts", "15 minutes").alias("w"))
                   .agg(F.sum("energy").alias("total"), F.count(F.lit(1)).alias("n"),
                        F.min("energy").alias("low"), F.max("energy").alias("high"),
                        F.min("ts").alias("first_ts"), F.max("ts").alias("last_ts"),
                        F.max_by(F.struct("energy", "accumulated", "is_charging", "status",
                                          "capacity", "speed", "output"), "ts").alias("last"))
                   .collect())
        df.unpersist()
        if not offsets:
            return
        if self.pg is None or self.pg.closed:
            self.pg = psycopg.connect(self.conninfo)
        rows = {"home": [], "solar": [], "battery": []}
        for r in windows:
            rows[r.kind].append(fact_rows(r.kind, r))
        starts = sorted({utc(r.w.start) for r in windows})
        with self.pg.transaction(), self.pg.cursor() as cur:
            cur.execute("""SELECT topic, "partition", next_offset FROM solarx_meta.consumer_offsets
                            WHERE consumer_group = %s FOR UPDATE""", (self.group,))
            stored = {(t, p): o for t, p, o in cur.fetchall()}
            if all(stored.get((t, p), -1) >= o for t, p, o in offsets):
                return  # this batch was committed before (a re-run after a failure)
            if starts:
                cur.execute("SELECT solarx_wh.ensure_dates(%s::timestamptz[], 'UTC', 15)",
                            (starts,))
            for kind, batch in rows.items():
                if batch:
                    cur.executemany(UPSERT[kind], batch)
            cur.executemany(OFFSETS, [(self.group, t, p, o) for t, p, o in offsets])
        print(f"event=batch_committed batch={batch_id} windows={len(windows)}", file=sys.stderr,
              flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--conninfo", required=True)
    p.add_argument("--topic-home", default="home_energy_consumption")
    p.add_argument("--topic-solar", default="solar_energy_data")
    p.add_argument("--topic-battery", default="battery_data")
    p.add_argument("--trigger", default="available-now", help="available-now or an interval")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--packages", required=True, help="the Kafka source's Maven coordinates")
    p.add_argument("--max-offsets-per-trigger", type=int, default=200000)
    args = p.parse_args()

    os.environ["TZ"] = "UTC"  # collect() turns timestamps into naive datetimes in this zone
    time.tzset()
    ivy = os.path.join(os.path.expanduser("~"), ".cache", "solarx", "ivy")
    spark = (SparkSession.builder.master("local[2]").appName("solarx-bench-spark")
             .config("spark.jars.packages", args.packages)
             .config("spark.jars.ivy", ivy)
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")

    def source(topic):
        """One Kafka source per topic, so that each parser scans only its topic."""
        return (spark.readStream.format("kafka")
                .option("kafka.bootstrap.servers", args.brokers)
                .option("subscribe", topic)
                .option("startingOffsets", "earliest")
                .option("maxOffsetsPerTrigger", args.max_offsets_per_trigger // 3)
                .load())

    readings = (flow_readings(source(args.topic_home), args.topic_home, "home")
                .unionByName(flow_readings(source(args.topic_solar), args.topic_solar, "solar"))
                .unionByName(battery_readings(source(args.topic_battery), args.topic_battery)))
    # Bad messages get a key of their own (never a duplicate) and no event time.
    dedup_key = F.when(F.col("valid"), F.concat_ws("/", "kind", "home_id", "device_id")) \
        .otherwise(F.concat_ws("/", F.lit("bad"), "topic", "partition", "offset"))
    deduped = (readings.withColumn("dedup_key", dedup_key)
               .withWatermark("ts", "1 hour")
               .dropDuplicates(["dedup_key", "ts"]))
    writer = deduped.writeStream.foreachBatch(BatchWriter(args.conninfo, args.group)) \
        .option("checkpointLocation", args.checkpoint)
    if args.trigger == "available-now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=args.trigger)
    query = writer.start()
    print("event=assigned Streaming query started", file=sys.stderr, flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    while query.isActive and not stop:
        query.awaitTermination(1)
    if query.isActive:
        query.stop()
    failure = query.exception()
    spark.stop()
    if failure is not None:
        print(f"event=query_failed error={failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
