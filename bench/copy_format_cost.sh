#!/usr/bin/env bash
# bench/copy_format_cost.sh: PostgreSQL's own cost of COPY text against COPY (FORMAT binary) for
# the same raw rows.
#
# usage: bench/copy_format_cost.sh DBNAME ROUNDS ROWS_PER_TABLE
#   DBNAME: a database of the test services migrated by `solarx-stream migrate` (psql reaches it
#   through "${SOLARX_RUN_DIR:-/tmp/solarx-run}/env"). ROWS_PER_TABLE synthetic rows per raw table
#   (home, solar, battery: 6-decimal numerics, one time stamp a second) are made once by
#   PostgreSQL in both formats; then, ROUNDS times, alternating which format goes first, the raw
#   tables are truncated and the rows COPYed in by one psql session. Prints the CPU of that
#   session's backend (utime + stime from /proc, in clock ticks) and the wall time of each COPY
#   set, then the medians.
set -euo pipefail
(($# == 3)) || { sed -n '4,11p' "$0" >&2; exit 64; }
# shellcheck disable=SC1091
source "${SOLARX_RUN_DIR:-/tmp/solarx-run}/env"
db=$1 rounds=$2 rows=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tables=(home_power_readings solar_panel_readings battery_readings)
second="timestamptz '2025-02-14' + (i / 100) * interval '1 second'"
declare -A columns=(
    [home_power_readings]="home_id, ts, consumption_wh, accumulated_wh, src_partition, src_offset"
    [solar_panel_readings]="panel_id, ts, home_id, generation_wh, accumulated_wh, src_partition, src_offset"
    [battery_readings]="home_id, battery_id, ts, battery_name, capacity_kwh, max_charge_speed_w, current_energy_wh, is_charging, status, max_output_w, src_partition, src_offset"
)
declare -A rows_of=(
    [home_power_readings]="select i % 100 + 1, $second, round((random() * 3)::numeric, 6), round((i * 1.234567)::numeric, 6), i % 3, i::bigint from generate_series(0, $rows - 1) i"
    [solar_panel_readings]="select i % 100 + 1, $second, i % 100 + 1, round((random() * 2)::numeric, 6), round((i * 0.7654321)::numeric, 6), i % 3, i::bigint from generate_series(0, $rows - 1) i"
    [battery_readings]="select i % 100 + 1, i / 100 % 3 + 1, timestamptz '2025-02-14' + (i / 300) * interval '1 second', 'battery_' || (i / 100 % 3 + 1), 13.5::numeric, 5000::numeric, round((random() * 13500)::numeric, 6), i % 2 = 0, (array['ideal', 'charging', 'discharging'])[i % 3 + 1], 4600::numeric, i % 3, i::bigint from generate_series(0, $rows - 1) i"
)

psql -X -q -d "$db" -c "select solarx_raw.ensure_day_partitions('2025-02-14', '2025-02-15')" >/dev/null
for t in "${tables[@]}"; do
    for fmt in text binary; do
        psql -X -q -d "$db" -c "\\copy (${rows_of[$t]}) to '$work/$t.$fmt' (format $fmt)"
    done
done

# One session; each step ends with a marker line so that the script knows it is done.
coproc PSQL { psql -X -q -At -d "$db" 2>&1; }
ask() { # ask SQL...: sends it, then waits for the marker
    printf '%s\n' "$@" "select 'step-done';" >&"${PSQL[1]}"
    local line
    while read -r line <&"${PSQL[0]}"; do
        [[ $line == step-done ]] && return 0
        case $line in ERROR*|*error*) echo "copy_format_cost: $line" >&2; exit 1 ;; esac
    done
    echo "copy_format_cost: psql ended" >&2
    exit 1
}
printf 'select pg_backend_pid();\n' >&"${PSQL[1]}"
read -r pid <&"${PSQL[0]}"
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

declare -A cpu wall
for ((r = 1; r <= rounds; r++)); do
    order=(text binary)
    ((r % 2 == 0)) && order=(binary text)
    for fmt in "${order[@]}"; do
        ask "truncate $(printf 'solarx_raw.%s, ' "${tables[@]}" | sed 's/, $//');" "checkpoint;"
        copies=()
        for t in "${tables[@]}"; do
            copies+=("\\copy solarx_raw.$t (${columns[$t]}) from '$work/$t.$fmt' (format $fmt)")
        done
        c0=$(ticks) t0=$(date +%s.%N)
        ask "${copies[@]}"
        c1=$(ticks) t1=$(date +%s.%N)
        c=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN{printf "%.2f", (b - a) / hz}')
        w=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
        cpu[$fmt]+="$c " wall[$fmt]+="$w "
        bytes=$(cat "$work"/*."$fmt" | wc -c)
        echo "round=$r format=$fmt rows=$((3 * rows)) backend_cpu_s=$c copy_wall_s=$w bytes=$bytes load=$(cut -d' ' -f1 /proc/loadavg)"
    done
done
median() { tr ' ' '\n' | awk 'NF' | sort -n | awk '{v[NR] = $1} END{print v[int((NR + 1) / 2)]}'; }
for fmt in text binary; do
    echo "median format=$fmt backend_cpu_s=$(median <<<"${cpu[$fmt]}") copy_wall_s=$(median <<<"${wall[$fmt]}")"
done
