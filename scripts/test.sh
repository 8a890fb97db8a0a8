#!/usr/bin/env bash
# The one command that runs every check on a fresh Debian 12 machine: dependencies, build,
# formatting, unit tests, 60 s of libFuzzer on the decoder, real PostgreSQL + Kafka integration
# tests, then all tests again under ASan+UBSan.  Usage: scripts/test.sh [--quick]
# (--quick skips the sanitizer pass)
# Build dirs: build/, build-asan/ and build-fuzz/ (clang; SOLARX_TEST_BUILD_DIR,
# SOLARX_TEST_ASAN_BUILD_DIR, SOLARX_TEST_FUZZ_BUILD_DIR override);
# services: whatever scripts/services.sh reads (SOLARX_RUN_DIR, SOLARX_*_PORT).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
REPO=$PWD
QUICK=0
for arg in "$@"; do
    case $arg in
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument '$arg' (try --help)" >&2
        exit 64
        ;;
    esac
done

BUILD=${SOLARX_TEST_BUILD_DIR:-$REPO/build}
ASAN_BUILD=${SOLARX_TEST_ASAN_BUILD_DIR:-$REPO/build-asan}
LOG_DIR=$BUILD/test-logs
TOTAL_PASSED=0
TOTAL_FAILED=0
FAILED_STEPS=()
START=$SECONDS

step() {
    echo
    echo "==> $* ($((SECONDS - START))s)"
}

# fatal MESSAGE: a step the rest depends on failed; report and stop.
fatal() {
    FAILED_STEPS+=("$1")
    finish
}

finish() {
    echo
    if ((${#FAILED_STEPS[@]} == 0)); then
        echo "test.sh: all checks passed in $((SECONDS - START))s"
    else
        echo "test.sh: FAILED: ${FAILED_STEPS[*]}"
    fi
    echo "test.sh: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
    ((${#FAILED_STEPS[@]} == 0))
    exit
}

# run_ctest NAME BUILD_DIR LABEL [ctest args...]: runs one labelled suite, adds up its counts.
run_ctest() {
    local name=$1 dir=$2 label=$3 log summary passed failed total
    shift 3
    log=$LOG_DIR/ctest-$name.log
    step "ctest $name"
    ctest --test-dir "$dir" -L "^$label\$" --output-on-failure --no-tests=error "$@" 2>&1 |
        tee "$log"
    local rc=${PIPESTATUS[0]}
    summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ -n $summary ]]; then
        failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
        total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
        passed=$((total - failed))
        TOTAL_PASSED=$((TOTAL_PASSED + passed))
        TOTAL_FAILED=$((TOTAL_FAILED + failed))
    fi
    if ((rc != 0)); then
        [[ -n $summary ]] || TOTAL_FAILED=$((TOTAL_FAILED + 1))
        FAILED_STEPS+=("$name")
    fi
}

# build DIR [cmake args...]
build() {
    local dir=$1
    shift
    cmake -S "$REPO" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
        ninja -C "$dir"
}

# sanitizer_reports NAME BUILD_DIR: Criterion reports a test whose forked worker leaked as passed,
# and a script test may not look at its child's stderr: every sanitizer report in the full ctest
# log fails the step.
sanitizer_reports() {
    local log=$2/Testing/Temporary/LastTest.log
    step "sanitizer reports in $1"
    if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' \
        "$log"; then
        FAILED_STEPS+=("$1-sanitizer")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
    else
        echo "none"
        TOTAL_PASSED=$((TOTAL_PASSED + 1))
    fi
}

services_up() {
    step "services up"
    "$REPO/scripts/services.sh" up
}

services_down() {
    "$REPO/scripts/services.sh" down >/dev/null || echo "test.sh: services down failed" >&2
}

step "dependencies"
bash "$REPO/scripts/deps.sh" || fatal deps

step "build ($BUILD)"
build "$BUILD" || fatal build
mkdir -p "$LOG_DIR"

step "formatting (clang-format --dry-run --Werror)"
mapfile -t c_files < <(find src include tools tests bench -type f \( -name '*.c' -o -name '*.h' \) \
    2>/dev/null | sort)
if ((${#c_files[@]} == 0)); then
    echo "no C files found"
    FAILED_STEPS+=(format)
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
elif clang-format --dry-run --Werror "${c_files[@]}"; then
    echo "${#c_files[@]} files formatted"
    TOTAL_PASSED=$((TOTAL_PASSED + 1))
else
    echo "run: clang-format -i <files above>"
    FAILED_STEPS+=(format)
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi

run_ctest unit "$BUILD" unit -j2

# The decoder under libFuzzer (clang, ASan+UBSan) for 60 s in its own build dir; a crash, a
# sanitizer report or a broken contract of decode_message fails the step. Full output in the log
# dir; a crashing input is kept in the build dir's fuzz-artifacts/.
FUZZ_BUILD=${SOLARX_TEST_FUZZ_BUILD_DIR:-$REPO/build-fuzz}
step "fuzz decode_message (libFuzzer, clang, ASan+UBSan, 60 s, $FUZZ_BUILD)"
if "$REPO/tests/fuzz/run.sh" "$FUZZ_BUILD" 60 >"$LOG_DIR/fuzz-decode.log" 2>&1; then
    grep -E '^fuzz:|INITED|DONE|^Done' "$LOG_DIR/fuzz-decode.log"
    TOTAL_PASSED=$((TOTAL_PASSED + 1))
else
    tail -n 60 "$LOG_DIR/fuzz-decode.log"
    echo "fuzz: FAILED (full output: $LOG_DIR/fuzz-decode.log)"
    FAILED_STEPS+=(fuzz-decode)
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi

trap services_down EXIT
services_up || fatal services
run_ctest integration "$BUILD" integration

if ((QUICK == 0)); then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    step "build ($ASAN_BUILD, -DSOLARX_SANITIZE=ON)"
    build "$ASAN_BUILD" -DSOLARX_SANITIZE=ON || fatal build-asan
    run_ctest asan-unit "$ASAN_BUILD" unit -j2
    sanitizer_reports asan-unit "$ASAN_BUILD"
    # A clean slate for the second integration pass, as on a fresh machine; the heavy tests run
    # at full size in the first pass and smaller here (instrumented code is 2-3 times slower).
    step "services restart (fresh data)"
    services_down
    services_up || fatal services
    export SOLARX_TEST_SCALE=small
    run_ctest asan-integration "$ASAN_BUILD" integration
    sanitizer_reports asan-integration "$ASAN_BUILD"
fi

finish
