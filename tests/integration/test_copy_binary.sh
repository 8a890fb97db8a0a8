#!/usr/bin/env bash
# Issue 9: the raw rows' binary COPY encoder against real PostgreSQL. copy_binary_check writes
# 4,000 rows of the raw tables' column types (edge numerics: 0, +-0.000001, 6-decimal fractions,
# the int64 extremes, negatives; instants before, at and after 2000-01-01; battery names,
# statuses, escapes, UTF-8) by COPY text and by COPY (FORMAT binary) and reads both back as text:
# equal, row by row, and equal to PostgreSQL's own spelling of some of them.
source "$(dirname "$0")/lib.sh"

CHECK=${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/copy_binary_check
[[ -x $CHECK ]] || fail "no copy_binary_check at $CHECK"

db=$(new_database)
out=$("$CHECK" --conninfo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db") ||
    fail "copy_binary_check: the binary COPY does not read back as the text COPY"
echo "PASS test_copy_binary: $out"
