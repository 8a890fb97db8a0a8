#!/usr/bin/env python3
"""PostgreSQL's own cost of COPY text against COPY (FORMAT binary) for the same raw rows.

usage: copy_format_cost.py CONNINFO ROUNDS ROWS_PER_TABLE

CONNINFO: a database migrated by `solarx-stream migrate`, on this machine (its backend is
metered with `perf stat -p`). ROWS_PER_TABLE synthetic rows per raw table (home, solar, battery:
6-decimal numerics, one timestamp a second) are made once by PostgreSQL in both formats; then,
ROUNDS times, alternating which format goes first, the raw tables are truncated and the rows
COPYed in 256 KB writes (as the flusher sends them). Prints the backend's CPU (perf task-clock)
and the wall time of each COPY set, then the medians. Needs psycopg 3 (bench/run.sh's venv).
"""
import os
import signal
import subprocess
import sys
import time

import psycopg

CHUNK = 256 * 1024
SECOND = "timestamptz '2025-02-14' + ({} ) * interval '1 second'"
TABLES = {
    "home_power_readings": (
        "home_id, ts, consumption_wh, accumulated_wh, src_partition, src_offset",
        "select i % 100 + 1, " + SECOND.format("i / 100") + ", round((random() * 3)::numeric, 6),"
        " round((i * 1.234567)::numeric, 6), i % 3, i::bigint from generate_series(0, {n} - 1) i"),
    "solar_panel_readings": (
        "panel_id, ts, home_id, generation_wh, accumulated_wh, src_partition, src_offset",
        "select i % 100 + 1, " + SECOND.format("i / 100") + ", i % 100 + 1,"
        " round((random() * 2)::numeric, 6), round((i * 0.7654321)::numeric, 6), i % 3,"
        " i::bigint from generate_series(0, {n} - 1) i"),
    "battery_readings": (
        "home_id, battery_id, ts, battery_name, capacity_kwh, max_charge_speed_w,"
        " current_energy_wh, is_charging, status, max_output_w, src_partition, src_offset",
        "select i % 100 + 1, i / 100 % 3 + 1, " + SECOND.format("i / 300") + ","
        " 'battery_' || (i / 100 % 3 + 1), 13.5::numeric, 5000::numeric,"
        " round((random() * 13500)::numeric, 6), i % 2 = 0,"
        " (array['ideal', 'charging', 'discharging'])[i % 3 + 1], 4600::numeric, i % 3,"
        " i::bigint from generate_series(0, {n} - 1) i"),
}


def backend_cpu_during(pid, work):
    """Runs work() while perf meters backend pid; returns (CPU seconds, wall seconds)."""
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "task-clock", "-p", str(pid)],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # perf attached
    t0 = time.monotonic()
    work()
    wall = time.monotonic() - t0
    time.sleep(0.3)
    perf.send_signal(signal.SIGINT)
    for line in perf.communicate()[1].splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == "task-clock":  # "<not counted>": it never ran
            return (0.0 if fields[0].startswith("<") else float(fields[0]) / 1000.0), wall
    raise RuntimeError("perf stat gave no task-clock")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    conninfo, rounds, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select solarx_raw.ensure_day_partitions('2025-02-14', '2025-02-15')")
        data = {}
        for table, (_, query) in TABLES.items():
            for fmt in ("text", "binary"):
                buf = bytearray()
                with conn.cursor().copy(f"COPY ({query.format(n=rows)}) TO STDOUT (FORMAT {fmt})") as cp:
                    for chunk in cp:
                        buf += chunk
                data[table, fmt] = bytes(buf)
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]

        def copy_all(fmt):
            for table, (columns, _) in TABLES.items():
                option = " (FORMAT binary)" if fmt == "binary" else ""
                with conn.cursor().copy(f"COPY solarx_raw.{table} ({columns}) FROM STDIN{option}") as cp:
                    d = data[table, fmt]
                    for i in range(0, len(d), CHUNK):
                        cp.write(d[i:i + CHUNK])

        results = {"text": [], "binary": []}
        for r in range(rounds):
            for fmt in ("text", "binary") if r % 2 == 0 else ("binary", "text"):
                for table in TABLES:
                    conn.execute(f"truncate solarx_raw.{table}")
                conn.execute("checkpoint")
                cpu, wall = backend_cpu_during(pid, lambda: copy_all(fmt))
                results[fmt].append((cpu, wall))
                size = sum(len(data[t, fmt]) for t in TABLES)
                print(f"round={r + 1} format={fmt} rows={3 * rows} backend_cpu_s={cpu:.2f} "
                      f"copy_wall_s={wall:.2f} bytes={size} load={os.getloadavg()[0]:.1f}",
                      flush=True)
        for fmt, runs in results.items():
            cpu = sorted(c for c, _ in runs)[len(runs) // 2]
            wall = sorted(w for _, w in runs)[len(runs) // 2]
            print(f"median format={fmt} backend_cpu_s={cpu:.2f} copy_wall_s={wall:.2f}")


if __name__ == "__main__":
    main()
