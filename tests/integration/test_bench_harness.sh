#!/usr/bin/env bash
# The benchmark harness keeps working: bench/run.sh --tiny with solarx-stream and both floors
# (and a short steady run of solarx-stream) prints a complete table row for each, with the
# exactness checks passing, and writes the results file. Speed is not asserted.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

started=$SECONDS
# A free port of the helper range for the service's http_listen (the shipped config has one).
port=
for candidate in $(seq 20700 20799); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[[ -n $port ]] || fail "no free port in 20700-20799"

out=$TEST_TMP/results.md
SOLARX_SKIP_DEPS=1 SOLARX_BENCH_HTTP_PORT=$port SOLARX_BUILD_DIR=$SOLARX_BUILD_DIR \
    bash "$SOLARX_SOURCE_DIR/bench/run.sh" --tiny --contenders solarx,floor-fetch,floor-copy \
    --steady --steady-seconds 12 --out "$out" >"$TEST_TMP/bench.out" 2>"$TEST_TMP/bench.err" || {
    rc=$?
    tail -n 30 "$TEST_TMP/bench.err" >&2
    fail "bench/run.sh exited $rc"
}

num='[0-9]+(\.[0-9]+)?'
row() { # CONTENDER EXACT-REGEX: a catch-up row with every figure present
    grep -Eq "^\| $1 \| $num \| $num \| $num \| $num \| $num \([0-9]+ proc\) \| $2 \|$" \
        "$TEST_TMP/bench.out" || {
        cat "$TEST_TMP/bench.out" >&2
        tail -n 20 "$TEST_TMP/bench.err" >&2
        fail "no complete row for $1 (exactness $2)"
    }
}
row solarx 'exact \(counts = sim\)'
row floor-fetch 'n/a \(reads only\)'
row floor-copy 'exact \(raw\)'
grep -Eq "^\| solarx \| 3000 \| ([0-9]+) / \1 \| $num \| $num \|$" "$TEST_TMP/bench.out" || {
    cat "$TEST_TMP/bench.out" >&2
    fail "no complete steady row for solarx (every home message visible, p50, p99)"
}
cmp -s "$out" "$TEST_TMP/bench.out" || fail "the results file differs from the printed table"
grep -q '^- machine: [0-9]* CPUs' "$out" || fail "no machine line in $out"
grep -q '^- versions: librdkafka [0-9]' "$out" || fail "no versions line in $out"

echo "PASS test_bench_harness $(grep -cE '^\| (solarx|floor-)' "$out") rows" \
    "total_s=$((SECONDS - started))"
