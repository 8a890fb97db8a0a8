#!/usr/bin/env bash
# `cmake --install` against real PostgreSQL and Kafka: a build configured with a prefix installs
# binary, unit, config, registries, migrations, sysusers.d and tmpfiles.d entries in the
# GNUInstallDirs places; the installed config's paths exist; the installed binary applies the
# installed migrations with no migrations_dir configured and `run` starts on the shipped
# config; the unit passes `systemd-analyze verify` where systemd-analyze exists. A DESTDIR
# install of the developer build is checked file by file too.
source "$(dirname "$0")/lib.sh"

prefix=$TEST_TMP/prefix
build=$TEST_TMP/build

# expect_files ROOT FILE...: every FILE exists under ROOT as a regular, non-empty file.
expect_files() {
    local root=$1 f
    shift
    for f in "$@"; do
        [[ -f $root$f && -s $root$f ]] || fail "not installed: $root$f"
    done
}

# installed_files PREFIX SYSCONFDIR: the files an install must place (absolute paths).
installed_files() {
    local p=$1 etc=$2 sql
    echo "$p/bin/solarx-stream" "$etc/solarx/solarx-stream.conf" \
        "$etc/solarx/home_appliances.json" "$etc/solarx/solar_panels.json" \
        "$p/lib/systemd/system/solarx-stream.service" "$p/lib/systemd/system/solarx-stream@.service" \
        "$p/lib/sysusers.d/solarx-stream.conf" \
        "$p/lib/tmpfiles.d/solarx-stream.conf" "$p/share/doc/solarx-stream/README.md"
    for sql in "$SOLARX_SOURCE_DIR"/migrations/*.sql; do
        echo "$p/share/solarx/migrations/$(basename "$sql")"
    done
}

# config_paths CONF: the values of the *_file keys and migrations_dir the config sets.
config_paths() {
    sed -nE 's/^(appliances_file|panels_file|migrations_dir)[[:space:]]*=[[:space:]]*([^;[:space:]]+).*/\2/p' "$1"
}

# --- a build configured for the prefix, installed there --------------------------------------
cmake -S "$SOLARX_SOURCE_DIR" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_TESTING=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >"$TEST_TMP/configure.log" 2>&1 ||
    fail "configure: $(tail -n 20 "$TEST_TMP/configure.log")"
nice ninja -C "$build" solarx-stream >"$TEST_TMP/build.log" 2>&1 ||
    fail "build: $(tail -n 20 "$TEST_TMP/build.log")"
cmake --install "$build" >"$TEST_TMP/install.log" 2>&1 ||
    fail "cmake --install: $(tail -n 20 "$TEST_TMP/install.log")"

# shellcheck disable=SC2046
expect_files "" $(installed_files "$prefix" "$prefix/etc")
[[ -x $prefix/bin/solarx-stream ]] || fail "the installed binary is not executable"
conf=$prefix/etc/solarx/solarx-stream.conf
unit=$prefix/lib/systemd/system/solarx-stream.service
grep -qx "ExecStart=$prefix/bin/solarx-stream run -c $conf" "$unit" ||
    fail "the unit's ExecStart does not name the installed binary and config: $(grep ExecStart "$unit")"
grep -q "^u solarx " "$prefix/lib/sysusers.d/solarx-stream.conf" || fail "sysusers.d: no solarx user"
grep -q "^d $prefix/etc/solarx/secrets 0700 root root" "$prefix/lib/tmpfiles.d/solarx-stream.conf" ||
    fail "tmpfiles.d: no secrets directory under the installed config directory"
n=0
for path in $(config_paths "$conf"); do
    [[ -e $path ]] || fail "the installed config names $path, which does not exist"
    [[ $path == "$prefix"/* ]] || fail "the installed config names $path, outside the install"
    n=$((n + 1))
done
((n >= 2)) || fail "the installed config names no registry files"
echo "ok: prefix install ($(find "$prefix" -type f | wc -l) files), config paths exist"

# The installed binary finds the installed migrations (the compiled-in default) ...
# (as the shipped config does: migrations as the migration role, the service as the runtime role)
db=$(new_database)
export SOLARX_POSTGRES_MIGRATE_CONNINFO="host=$PGHOST port=$PGPORT user=solarx_migrate dbname=$db"
"$prefix/bin/solarx-stream" migrate -c "$conf" 2>"$TEST_TMP/migrate.log" ||
    fail "installed migrate: $(cat "$TEST_TMP/migrate.log")"
want=$(find "$SOLARX_SOURCE_DIR/migrations" -name '*.sql' | wc -l)
grep -q "event=migrate_done applied=$want dir=$prefix/share/solarx/migrations" "$TEST_TMP/migrate.log" ||
    fail "installed migrate did not apply the installed migrations: $(cat "$TEST_TMP/migrate.log")"
assert_eq "$(q "$db" 'select count(*) from solarx_meta.schema_migrations')" "$want" "ledger rows"
echo "ok: installed binary applied $want installed migrations"

# ... and `run` starts on the shipped config (registries found), ready, stops on SIGTERM.
log=$TEST_TMP/run.log
SOLARX_POSTGRES_CONNINFO="host=$PGHOST port=$PGPORT user=solarx_app dbname=$db" \
    SOLARX_KAFKA_BOOTSTRAP_SERVERS=$SOLARX_KAFKA_BOOTSTRAP_SERVERS \
    SOLARX_KAFKA_GROUP_ID="solarx-install-$$" SOLARX_SOLARX_HTTP_LISTEN= \
    "$prefix/bin/solarx-stream" run -c "$conf" 2>"$log" &
pid=$!
deadline=$((SECONDS + 60))
until grep -q 'event=ready' "$log"; do
    kill -0 "$pid" 2>/dev/null || fail "installed run exited: $(tail -n 20 "$log")"
    ((SECONDS < deadline)) || {
        kill -KILL "$pid"
        fail "installed run not ready after 60 s: $(tail -n 20 "$log")"
    }
    sleep 0.2
done
grep -q "level=warn\|level=error" "$log" && fail "installed run warned: $(grep 'level=warn\|level=error' "$log")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 0 "installed run's exit status on SIGTERM"
echo "ok: installed run started on the shipped config and stopped"

if command -v systemd-analyze >/dev/null 2>&1; then
    # Checks the syntax and that ExecStart's binary exists and is executable; any output fails.
    systemd-analyze verify "$unit" >"$TEST_TMP/verify.log" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$TEST_TMP/verify.log")"
    [[ ! -s $TEST_TMP/verify.log ]] || fail "systemd-analyze verify: $(cat "$TEST_TMP/verify.log")"
    echo "ok: systemd-analyze verify $unit"
else
    echo "note: systemd-analyze is not present here: the installed unit was NOT verified"
fi

# --- DESTDIR install of the developer build (its configured prefix) -------------------------
destdir=$TEST_TMP/destdir
DESTDIR=$destdir cmake --install "$SOLARX_BUILD_DIR" >"$TEST_TMP/destdir.log" 2>&1 ||
    fail "DESTDIR install: $(tail -n 20 "$TEST_TMP/destdir.log")"
dev_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$SOLARX_BUILD_DIR/CMakeCache.txt")
dev_etc=$dev_prefix/etc
[[ $dev_prefix == /usr ]] && dev_etc=/etc
# shellcheck disable=SC2046
expect_files "$destdir" $(installed_files "$dev_prefix" "$dev_etc")
for path in $(config_paths "$destdir$dev_etc/solarx/solarx-stream.conf"); do
    [[ -e $destdir$path ]] || fail "DESTDIR: the installed config names $path, not installed"
done
echo "ok: DESTDIR install of $dev_prefix"

echo "PASS: cmake --install places and wires every file"
