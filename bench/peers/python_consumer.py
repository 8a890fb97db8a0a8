#!/usr/bin/env python3
"""The benchmark's Python peer: what a user would write with confluent-kafka and psycopg.

Consumes the three Solar-X topics, validates and decodes each message the way the service does
(a bad message is skipped and counted), drops duplicate readings (same device and second),
keeps 15-minute window aggregates in memory and, every second or 50,000 readings, upserts them
into the same fact tables as solarx-stream, with the consumed offsets in the same transaction
(solarx_meta.consumer_offsets). On assignment it resumes from the offsets stored in PostgreSQL.

Limits a user would accept: the seconds already counted are remembered in memory for the
windows of the last two hours of event time only, so a duplicate arriving later, or after a
restart, is counted again; no raw rows, no dimensions, no dead-letter table.

Run by bench/run.sh; SIGTERM flushes and exits 0.
"""
import argparse
import json
import math
import re
import signal
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

WINDOW_SECONDS = 900
FLUSH_INTERVAL_S = 1.0
FLUSH_MAX_READINGS = 50000
SEEN_HORIZON_S = 2 * 3600
INT32_MAX = 2**31 - 1
STATUSES = ("ideal", "charging", "discharging")
TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
BATTERY_RE = re.compile(r"^battery_([1-9][0-9]*)$")


class Invalid(Exception):
    """A message the service would send to dead letters."""


def fixed(value, positive=False):
    """A JSON number as millionths, rounded half away from zero like the service."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("wrong type")
    scaled = value * 1_000_000
    if isinstance(scaled, float):
        if not math.isfinite(scaled) or abs(scaled) > 1e15:
            raise Invalid("out of range")
        whole = math.floor(abs(scaled))
        if abs(scaled) - whole >= 0.5:
            whole += 1
        scaled = whole if scaled >= 0 else -whole
    elif abs(scaled) > 10**15:
        raise Invalid("out of range")
    if scaled < 0 or (positive and scaled == 0):
        raise Invalid("out of range")
    return scaled


def text(millionths):
    sign = "-" if millionths < 0 else ""
    q, r = divmod(abs(millionths), 1_000_000)
    return f"{sign}{q}.{r:06d}"


def parse_ts(value):
    if not isinstance(value, str):
        raise Invalid("wrong type")
    m = TS_RE.match(value)
    if not m:
        raise Invalid("bad timestamp")
    try:
        dt = datetime(*(int(g) for g in m.groups()[:6]), tzinfo=timezone.utc)
    except ValueError as e:
        raise Invalid("bad timestamp") from e
    zone = m.group(7)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 18 or minutes > 59:
            raise Invalid("bad timestamp")
        dt -= sign * timedelta(hours=hours, minutes=minutes)
    return int(dt.timestamp())


def get_id(doc, key, default):
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("wrong type")
    if not 0 < value <= INT32_MAX:
        raise Invalid("out of range")
    return value


def decode(kind, payload):
    """Readings of one message: (table key, ts, values) tuples; raises Invalid."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid("invalid json") from e
    if not isinstance(doc, dict):
        raise Invalid("not an object")
    if "time_stamp" not in doc:
        raise Invalid("missing field")
    ts = parse_ts(doc["time_stamp"])
    home_id = get_id(doc, "home_id", 1)
    if kind in ("home", "solar"):
        for key in ("current_consumption_w", "consumption_accumulated_w"):
            if key not in doc:
                raise Invalid("missing field")
        energy = fixed(doc["current_consumption_w"])
        accumulated = fixed(doc["consumption_accumulated_w"])
        device = (home_id,) if kind == "home" else (get_id(doc, "panel_id", 4), home_id)
        return [(kind, device, ts, (energy, accumulated))]
    batteries = doc.get("batteries")
    if batteries is None:
        raise Invalid("missing field")
    if not isinstance(batteries, dict):
        raise Invalid("wrong type")
    if not batteries:
        raise Invalid("missing field")
    if len(batteries) > 64:
        raise Invalid("too many readings")
    readings = []
    for key, b in batteries.items():
        m = BATTERY_RE.match(key)
        if not m or int(m.group(1)) > INT32_MAX:
            raise Invalid("bad battery id")
        if not isinstance(b, dict):
            raise Invalid("wrong type")
        for field in ("capacity_kwh", "max_charge_speed_w", "current_energy_wh", "is_charging",
                      "status", "max_output_w"):
            if field not in b:
                raise Invalid("missing field")
        capacity = fixed(b["capacity_kwh"], positive=True)
        speed = fixed(b["max_charge_speed_w"])
        energy = fixed(b["current_energy_wh"])
        if energy > capacity * 1000:
            raise Invalid("out of range")
        charging = b["is_charging"]
        if isinstance(charging, bool):
            charging = int(charging)
        elif not isinstance(charging, int):
            raise Invalid("wrong type")
        elif charging not in (0, 1):
            raise Invalid("out of range")
        status = b["status"]
        if not isinstance(status, str):
            raise Invalid("wrong type")
        if status not in STATUSES:
            raise Invalid("unknown status")
        output = fixed(b["max_output_w"])
        readings.append(("battery", (home_id, int(m.group(1))), ts,
                         (energy, bool(charging), status, capacity, speed, output)))
    return readings


class Window:
    """One device's 15-minute window: the aggregate not yet written, and the seconds seen."""

    __slots__ = ("seen", "total", "count", "low", "high", "first_ts", "last_ts", "last")

    def __init__(self):
        self.seen = set()
        self.reset()

    def reset(self):
        self.total = self.count = 0
        self.low = self.high = self.first_ts = self.last_ts = self.last = None

    def add(self, ts, energy, last):
        self.seen.add(ts)
        self.total += energy
        self.count += 1
        self.low = energy if self.low is None else min(self.low, energy)
        self.high = energy if self.high is None else max(self.high, energy)
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts, self.last = ts, last


def at(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc)


UPSERT = {
    "home": """
        INSERT INTO solarx_wh.fact_home_power_readings AS f
            (home_id, date_key, consumption_wh, readings_count, min_consumption_wh,
             max_consumption_wh, last_accumulated_wh, first_ts, last_ts, window_seconds,
             seconds_seen)
        VALUES (%s, %s, %s::numeric, %s, %s::numeric, %s::numeric, %s::numeric, %s, %s, %s,
                '\\x'::bytea)
        ON CONFLICT (home_id, date_key) DO UPDATE SET
            consumption_wh = f.consumption_wh + excluded.consumption_wh,
            readings_count = f.readings_count + excluded.readings_count,
            min_consumption_wh = least(f.min_consumption_wh, excluded.min_consumption_wh),
            max_consumption_wh = greatest(f.max_consumption_wh, excluded.max_consumption_wh),
            last_accumulated_wh = CASE WHEN excluded.last_ts > f.last_ts
                                       THEN excluded.last_accumulated_wh
                                       ELSE f.last_accumulated_wh END,
            first_ts = least(f.first_ts, excluded.first_ts),
            last_ts = greatest(f.last_ts, excluded.last_ts),
            updated_at = now()""",
    "solar": """
        INSERT INTO solarx_wh.fact_solar_panel_power_readings AS f
            (solar_panel_id, home_id, date_key, generation_power_wh, readings_count,
             min_generation_wh, max_generation_wh, last_accumulated_wh, first_ts, last_ts,
             window_seconds, seconds_seen)
        VALUES (%s, %s, %s, %s::numeric, %s, %s::numeric, %s::numeric, %s::numeric, %s, %s, %s,
                '\\x'::bytea)
        ON CONFLICT (solar_panel_id, date_key) DO UPDATE SET
            generation_power_wh = f.generation_power_wh + excluded.generation_power_wh,
            readings_count = f.readings_count + excluded.readings_count,
            min_generation_wh = least(f.min_generation_wh, excluded.min_generation_wh),
            max_generation_wh = greatest(f.max_generation_wh, excluded.max_generation_wh),
            last_accumulated_wh = CASE WHEN excluded.last_ts > f.last_ts
                                       THEN excluded.last_accumulated_wh
                                       ELSE f.last_accumulated_wh END,
            first_ts = least(f.first_ts, excluded.first_ts),
            last_ts = greatest(f.last_ts, excluded.last_ts),
            updated_at = now()""",
    "battery": """
        INSERT INTO solarx_wh.fact_battery_power_readings AS f
            (home_id, battery_id, date_key, current_energy_wh, is_charging, status, capacity_kwh,
             max_charge_speed_w, max_output_w, min_energy_wh, max_energy_wh, readings_count,
             first_ts, last_ts, window_seconds, seconds_seen)
        VALUES (%s, %s, %s, %s::numeric, %s, %s, %s::numeric, %s::numeric, %s::numeric,
                %s::numeric, %s::numeric, %s, %s, %s, %s, '\\x'::bytea)
        ON CONFLICT (home_id, battery_id, date_key) DO UPDATE SET
            current_energy_wh = CASE WHEN excluded.last_ts > f.last_ts
                                     THEN excluded.current_energy_wh ELSE f.current_energy_wh END,
            is_charging = CASE WHEN excluded.last_ts > f.last_ts
                               THEN excluded.is_charging ELSE f.is_charging END,
            status = CASE WHEN excluded.last_ts > f.last_ts THEN excluded.status ELSE f.status END,
            capacity_kwh = CASE WHEN excluded.last_ts > f.last_ts
                                THEN excluded.capacity_kwh ELSE f.capacity_kwh END,
            max_charge_speed_w = CASE WHEN excluded.last_ts > f.last_ts
                                      THEN excluded.max_charge_speed_w
                                      ELSE f.max_charge_speed_w END,
            max_output_w = CASE WHEN excluded.last_ts > f.last_ts
                                THEN excluded.max_output_w ELSE f.max_output_w END,
            min_energy_wh = least(f.min_energy_wh, excluded.min_energy_wh),
            max_energy_wh = greatest(f.max_energy_wh, excluded.max_energy_wh),
            readings_count = f.readings_count + excluded.readings_count,
            first_ts = least(f.first_ts, excluded.first_ts),
            last_ts = greatest(f.last_ts, excluded.last_ts),
            updated_at = now()""",
}

OFFSETS = """
    INSERT INTO solarx_meta.consumer_offsets (consumer_group, topic, "partition", next_offset)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (consumer_group, topic, "partition") DO UPDATE
       SET next_offset = excluded.next_offset, updated_at = now()"""


def fact_row(kind, device, start, w):
    common_tail = (at(w.first_ts), at(w.last_ts), WINDOW_SECONDS)
    if kind == "home":
        return (device[0], at(start), text(w.total), w.count, text(w.low), text(w.high),
                text(w.last[1])) + common_tail
    if kind == "solar":
        return (device[0], device[1], at(start), text(w.total), w.count, text(w.low),
                text(w.high), text(w.last[1])) + common_tail
    energy, charging, status, capacity, speed, output = w.last
    return (device[0], device[1], at(start), text(energy), charging, status, text(capacity),
            text(speed), text(output), text(w.low), text(w.high), w.count) + common_tail


class Peer:
    def __init__(self, args):
        self.args = args
        self.kinds = {args.topic_home: "home", args.topic_solar: "solar",
                      args.topic_battery: "battery"}
        self.pg = psycopg.connect(args.conninfo)
        self.windows = {}  # (kind, device, window start) -> Window
        self.dirty = set()
        self.offsets = {}  # (topic, partition) -> next offset
        self.pending = 0
        self.newest = 0
        self.skipped = 0
        self.stop = False
        self.consumer = Consumer({
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })

    def on_assign(self, consumer, partitions):
        with self.pg.cursor() as cur:
            cur.execute("""SELECT topic, "partition", next_offset FROM solarx_meta.consumer_offsets
                            WHERE consumer_group = %s""", (self.args.group,))
            stored = {(t, p): o for t, p, o in cur.fetchall()}
        self.pg.commit()
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        print(f"event=assigned partitions={len(partitions)}", file=sys.stderr, flush=True)

    def take(self, msg):
        kind = self.kinds[msg.topic()]
        self.offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        try:
            readings = decode(kind, msg.value())
        except Invalid:
            self.skipped += 1
            return
        for kind, device, ts, values in readings:
            start = ts - ts % WINDOW_SECONDS
            key = (kind, device, start)
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = Window()
            if ts in w.seen:
                continue
            w.add(ts, values[0], values)
            self.dirty.add(key)
            self.pending += 1
            self.newest = max(self.newest, ts)

    def flush(self):
        if not self.offsets:
            return
        rows = {"home": [], "solar": [], "battery": []}
        starts = set()
        for key in self.dirty:
            kind, device, start = key
            rows[kind].append(fact_row(kind, device, start, self.windows[key]))
            starts.add(at(start))
        with self.pg.transaction(), self.pg.cursor() as cur:
            if starts:
                cur.execute("SELECT solarx_wh.ensure_dates(%s::timestamptz[], 'UTC', 15)",
                            (sorted(starts),))
            for kind, batch in rows.items():
                if batch:
                    cur.executemany(UPSERT[kind], batch)
            cur.executemany(OFFSETS, [(self.args.group, t, p, o)
                                      for (t, p), o in self.offsets.items()])
        self.consumer.commit(offsets=[TopicPartition(t, p, o)
                                      for (t, p), o in self.offsets.items()], asynchronous=True)
        for key in self.dirty:
            self.windows[key].reset()
        self.dirty.clear()
        self.offsets.clear()
        self.pending = 0
        horizon = self.newest - SEEN_HORIZON_S
        if len(self.windows) > 10000:
            self.windows = {k: w for k, w in self.windows.items() if k[2] >= horizon}

    def run(self):
        self.consumer.subscribe(list(self.kinds), on_assign=self.on_assign)
        last_flush = time.monotonic()
        while not self.stop:
            for msg in self.consumer.consume(num_messages=1000, timeout=0.1):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        print(f"event=kafka_error error={msg.error()}", file=sys.stderr)
                    continue
                self.take(msg)
            now = time.monotonic()
            if self.pending >= FLUSH_MAX_READINGS or now - last_flush >= FLUSH_INTERVAL_S:
                self.flush()
                last_flush = now
        self.flush()
        self.consumer.close()
        self.pg.close()
        print(f"event=stopped skipped={self.skipped}", file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--conninfo", required=True)
    p.add_argument("--topic-home", default="home_energy_consumption")
    p.add_argument("--topic-solar", default="solar_energy_data")
    p.add_argument("--topic-battery", default="battery_data")
    peer = Peer(p.parse_args())

    def on_term(signum, frame):
        peer.stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    peer.run()


if __name__ == "__main__":
    main()
