#!/usr/bin/env bash
# Builds the decoder's libFuzzer target with clang (ASan+UBSan) and runs it.
# Usage: tests/fuzz/run.sh [BUILD_DIR [SECONDS]]   (defaults: build-fuzz, 60)
# The seed corpus is every line of tests/data/*.jsonl and tests/data/fixture/*.jsonl, one file
# each, behind the byte that picks its topic kind (0 home, 1 solar, 2 battery). New inputs go to
# BUILD_DIR/fuzz-corpus, a crashing input to BUILD_DIR/fuzz-artifacts/. Exit 0 when the run ends
# without a crash or a sanitizer report, non-zero otherwise. tests/fuzz/decode.dict gives the fuzzer
# the schemas' keys and the tokens where the fast path and jansson could part (decode_fast.c).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$REPO/build-fuzz}
DURATION=${2:-60}

command -v clang >/dev/null || {
    echo "fuzz: clang not found (scripts/deps.sh installs it)" >&2
    exit 1
}
CC=clang cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" fuzz_decode

seeds=$BUILD/fuzz-seeds
rm -rf "$seeds"
mkdir -p "$seeds" "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts"
n=0
for file in "$REPO"/tests/data/*.jsonl "$REPO"/tests/data/fixture/*.jsonl; do
    case $(basename "$file" .jsonl) in
    home_energy_consumption) kind='\x00' ;;
    solar_energy_data) kind='\x01' ;;
    battery_data) kind='\x02' ;;
    *) continue ;;
    esac
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        { printf "$kind" && printf '%s' "$line"; } >"$seeds/seed-$n"
    done <"$file"
done
echo "fuzz: $n seeds, ${DURATION}s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$BUILD/tests/fuzz_decode" -max_total_time="$DURATION" -max_len=4096 -timeout=10 \
    -dict="$REPO/tests/fuzz/decode.dict" \
    -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/" \
    "$BUILD/fuzz-corpus" "$seeds"
