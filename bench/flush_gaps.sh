#!/usr/bin/env bash
# Where a catch-up waited for messages, from the service's log (stderr of `solarx-stream run`).
#
# usage: bench/flush_gaps.sh [--min MS] LOG
#
# A gap is the time between one flush's commit and the next flush's start (`ts` - `ms=` of
# `event=flush_committed`) of at least MS (default 100): no flush ran, because the batch was not
# full. The gap before the last flush is reported apart: the backlog's remainder waits for the
# flush timer. With `SOLARX_SOLARX_LOG_LEVEL=debug` the fetcher nudges are counted; with
# `SOLARX_KAFKA_DEBUG=fetch` as well, every stop of librdkafka's fetcher on queued.min.messages
# is listed when nothing but the fetcher's own wake-up ended it (no `event=fetch_nudged` within
# 10 ms), with the gaps it overlaps (bench/README.md, "The fetcher stalls a nudge missed").
set -euo pipefail

MIN=100
if [[ ${1:-} == --min ]]; then
    MIN=$2
    shift 2
fi
(($# == 1)) || { sed -n '4p' "$0" | sed 's/^# //' >&2; exit 64; }

awk -v min="$MIN" '
# milliseconds since midnight of a line starting with ts=YYYY-MM-DDTHH:MM:SS.mmmZ
function ms_of(line,   t, s) {
    t = substr(line, 15, 12); split(t, s, ":")
    return (s[1] * 3600 + s[2] * 60 + s[3]) * 1000
}
function field(name,   i, kv) {
    for (i = 1; i <= NF; i++)
        if (index($i, name "=") == 1) { split($i, kv, "="); return kv[2] }
    return 0
}
/event=ready/ && !ready { ready = ms_of($0) }
/event=fetch_nudged/ { nudge[++nudges] = ms_of($0) }
/not fetchable: queued\.min\.messages/ {
    if (!stopped) { stop[++stops] = ms_of($0); match($0, /\([0-9]+\//); stop_q[stops] = substr($0, RSTART + 1, RLENGTH - 2) }
    stopped = 1
}
/ is fetchable/ && stopped { restart[stops] = ms_of($0); stopped = 0 }
/event=flush_committed/ {
    end = ms_of($0); took = field("ms"); readings = field("readings")
    if (readings == 0 && !flushes) next
    start = end - took
    if (flushes) { gap_from[flushes] = prev; gap_to[flushes] = start }
    else first = start
    flushes++; total += readings; prev = end
}
END {
    if (!flushes) { print "flush_gaps: no flush_committed with readings" > "/dev/stderr"; exit 1 }
    for (i = 1; i < flushes; i++) {
        g = gap_to[i] - gap_from[i]
        if (g < min) continue
        if (i == flushes - 1) { tail = g; continue }
        printf "gap %.0f ms at +%.0f ms\n", g, gap_from[i] - first
        gaps++; gap_ms += g
    }
    missed = 0
    for (s = 1; s <= stops; s++) {
        if (!(s in restart)) continue
        nudged = 0
        for (n = 1; n <= nudges; n++)
            if (nudge[n] >= stop[s] && nudge[n] <= restart[s] + 10) nudged = 1
        if (nudged) continue
        missed++
        overlap = ""
        for (i = 1; i < flushes; i++)
            if (gap_to[i] - gap_from[i] >= min && gap_from[i] < restart[s] && gap_to[i] > stop[s])
                overlap = overlap sprintf(" %.0f", gap_to[i] - gap_from[i])
        printf "fetcher stop at +%.0f ms, %s queued: not nudged, fetching again %.0f ms later; gaps overlapping (ms):%s\n", \
            stop[s] - first, stop_q[s], restart[s] - stop[s], overlap == "" ? " none" : overlap
    }
    printf "flushes=%d readings=%d ready_to_first_flush_ms=%.0f gaps=%d gap_ms=%.0f tail_gap_ms=%.0f nudges=%d", \
        flushes, total, ready ? first - ready : -1, gaps, gap_ms, tail, nudges
    if (stops) printf " fetcher_stops=%d not_nudged=%d", stops, missed
    printf "\n"
}' "$1"
