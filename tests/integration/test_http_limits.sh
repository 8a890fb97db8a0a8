#!/usr/bin/env bash
# Limits of the HTTP endpoint against the real service (issue 8, item 5): an oversized request
# header or body is refused without RSS growing, a slowloris connection (a request trickled in
# byte by byte, or half a request then silence) is closed by the timeouts, connections beyond the
# cap wait while the service goes on consuming, anything but GET/HEAD is answered 405, and
# /metrics keeps answering promptly throughout (except, by design, while the cap is full).
source "$(dirname "$0")/lib.sh"

PROBE=${SOLARX_TEST_BIN_DIR:-$SOLARX_BUILD_DIR/tests}/http_probe
[[ -x $PROBE ]] || fail "$PROBE not built"

create_topics httplimits
produce "$TEST_TMP/sim.json" --homes 2 --minutes 10 --seed 5
db=$(new_database)
port=$(free_local_port)
url=http://127.0.0.1:$port
write_stream_config "$db" "$TEST_TMP/http.conf" "httplimits-$$" http_listen=127.0.0.1:$port
start_service "$TEST_TMP/http.conf"
wait_ready 120
wait_caught_up "$db" "httplimits-$$" 300

# status METHOD PATH [CURL ARGS...]: the HTTP status (000: no answer within MAX_TIME seconds,
# default 5: prompt, with slack for a loaded CI machine).
status() {
    local method=$1 path=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' --max-time "${MAX_TIME:-5}" -X "$method" "$@" \
        "$url$path" || true
}

# metrics_prompt WHEN: /metrics answers 200 within 5 s.
metrics_prompt() {
    assert_eq "$(status GET /metrics)" 200 "/metrics $1"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVICE_PID/status"
}

# Methods, paths, body size.
metrics_prompt "at start"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I "$url/metrics")" 200 "HEAD /metrics"
assert_eq "$(status GET /healthz)" 200 "GET /healthz"
for method in POST PUT DELETE PATCH; do
    assert_eq "$(status "$method" /metrics -d x)" 405 "$method /metrics"
done
curl -s -D "$TEST_TMP/post.headers" -o /dev/null --max-time 5 -d x "$url/metrics" || true
grep -qi '^Allow: GET, HEAD' "$TEST_TMP/post.headers" || fail "405 without Allow: GET, HEAD"
assert_eq "$(status GET /nowhere)" 404 "GET /nowhere"
head -c 65536 /dev/zero >"$TEST_TMP/body"
assert_eq "$(status GET /metrics --data-binary @"$TEST_TMP/body")" 413 "GET with a 64 KiB body"
metrics_prompt "after the method checks"

# Oversized headers: 1 MiB, then 64 MiB (the latter took RSS up by its size without a limit).
for bytes in 1048576 67108864; do
    before=$(rss_kb)
    "$PROBE" big 127.0.0.1 "$port" "$bytes" >"$TEST_TMP/big.out"
    after=$(rss_kb)
    read -r result <"$TEST_TMP/big.out"
    echo "oversized header of $bytes bytes: $result rss_kb=$before->$after"
    [[ $result =~ status=\"HTTP/1\.[01]\ (400|413)\  ]] ||
        fail "a $bytes-byte header was not refused with 400/413: $result"
    ((after - before < 4096)) || fail "RSS grew by $((after - before)) kB for a $bytes-byte header"
    metrics_prompt "after a $bytes-byte header"
done

# Slowloris: one request trickled in at a byte a second, four connections holding half a
# request; /metrics is polled every second while they run.
"$PROBE" slow 127.0.0.1 "$port" 1000 60 >"$TEST_TMP/slow.out" &
slow_pid=$!
"$PROBE" hold 127.0.0.1 "$port" 4 60 >"$TEST_TMP/hold.out" &
hold_pid=$!
for i in $(seq 1 12); do
    metrics_prompt "during slowloris ($i s)"
    sleep 1
done
wait "$slow_pid" || fail "http_probe slow failed"
wait "$hold_pid" || fail "http_probe hold failed"
read -r slow <"$TEST_TMP/slow.out"
read -r hold <"$TEST_TMP/hold.out"
echo "slowloris trickle: $slow; slowloris hold: $hold"
# The limits: 5 s from a request's first byte, 10 s of silence; the bounds leave slack.
[[ $slow =~ ^closed=1\ after_s=([0-9]+) ]] && ((BASH_REMATCH[1] <= 15)) ||
    fail "the trickled request was not closed within 15 s: $slow"
[[ $hold =~ ^opened=4\ closed=4\ after_s=([0-9]+) ]] && ((BASH_REMATCH[1] <= 20)) ||
    fail "the silent connections were not closed within 20 s: $hold"
service_log_has 'event=http_request_timeout' || fail "no event=http_request_timeout logged"

# The cap (16): 24 silent connections. Beyond the cap clients wait in the listen backlog, so
# /metrics does not answer while they hold; the service meanwhile consumes new data; once the
# idle timeout closes them, /metrics answers again.
"$PROBE" hold 127.0.0.1 "$port" 24 60 >"$TEST_TMP/cap.out" &
cap_pid=$!
wait_service_log 'event=http_connection_cap_reached max_connections=16' 30 \
    "no event=http_connection_cap_reached logged"
# The held connections are closed 10 s after they opened: ask well within that.
assert_eq "$(MAX_TIME=3 status GET /metrics)" 000 "/metrics while 24 connections hold the cap of 16"
produce "$TEST_TMP/sim2.json" --homes 2 --minutes 10 --seed 6 --start "2025-02-15 00:00:00"
wait_caught_up "$db" "httplimits-$$" 120
wait "$cap_pid" || fail "http_probe hold (cap) failed"
read -r cap <"$TEST_TMP/cap.out"
echo "cap: $cap"
[[ $cap =~ ^opened=24\ closed=24 ]] || fail "the connections beyond the cap were not all served: $cap"
metrics_prompt "after the cap was released"
kill -0 "$SERVICE_PID" 2>/dev/null || fail "the service died"
stop_service

echo "PASS test_http_limits port=$port"
