#!/usr/bin/env bash
# One of two upstream targets killed under wrk load, then restarted: what clients see.
#
#   loadtest/failover.sh                          12 s of load, kill at 4 s, back at 8 s
#   DURATION=20 KILL_AT=5 BACK_AT=12 RETRIES=0 loadtest/failover.sh
#
# turnpike (release, one worker on PROXY_CPU) proxies to two nginx targets with active
# health checks every 500 ms, passive ejection (3 failures, 1 s back-off) and RETRIES
# retries; wrk (64 connections) and the targets share LOAD_CPU. Prints wrk's figures:
# requests, socket errors, non-2xx answers, latency percentiles and the maximum, and
# the gateway's log lines about the targets. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-12} KILL_AT=${KILL_AT:-4} BACK_AT=${BACK_AT:-8} RETRIES=${RETRIES:-1}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
A=18101 B=18102 PORT=18100 ADMIN=18103
source loadtest/lib.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
cargo build --release --quiet
lt_init failover

start_target() { # PORT: an nginx target serving the fixed bodies; sets TARGET_PID
    sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$1|g" -e "s|upstream.pid|up-$1.pid|" \
        -e "s|upstream-error.log|up-$1-error.log|" -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" \
        loadtest/peers/upstream-nginx.conf > "$WORK/up-$1.conf"
    taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/up-$1.conf" -p "$WORK" >/dev/null 2>&1 &
    TARGET_PID=$!
    LT_PIDS+=("$TARGET_PID")
}
start_target $A
start_target $B; B_PID=$TARGET_PID

cat > "$WORK/turnpike.toml" <<TOML
[gateway]
listen = ["127.0.0.1:$PORT"]
admin = "127.0.0.1:$ADMIN"
workers = 1

[upstreams.pair]
targets = ["127.0.0.1:$A", "127.0.0.1:$B"]
health = { path = "/100b", interval = "500ms", unhealthy_after = 2, healthy_after = 2 }
outlier = { consecutive = 3, base_ejection = "1s" }
retries = $RETRIES

[apis.lt.routes."ANY /{path+}"]
integration = { type = "http_proxy", uri = "http://pair/{path}" }

[stages.lt]
api = "lt"
TOML
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" &
LT_PIDS+=($!)
lt_wait "http://127.0.0.1:$PORT/100b"
lt_wait "http://127.0.0.1:$A/100b"
lt_wait "http://127.0.0.1:$B/100b"

taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" --latency -s loadtest/wrk/report.lua \
    "http://127.0.0.1:$PORT/100b" > "$WORK/wrk.out" &
WRK=$!
sleep "$KILL_AT"
kill "$B_PID"; echo "t=${KILL_AT}s: target $B killed" >&2
sleep $((BACK_AT - KILL_AT))
start_target $B; echo "t=${BACK_AT}s: target $B restarted" >&2
wait "$WRK"
echo "retries=$RETRIES duration=${DURATION}s kill at ${KILL_AT}s, back at ${BACK_AT}s"
grep -E "Requests/sec|Max|Latency" "$WORK/wrk.out" | head -3
grep '^JSON ' "$WORK/wrk.out" | sed 's/^JSON /{/; s/$/}/'
echo "per target:"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^turnpike_upstream_(requests|connect_failures|retries|ejections)_total|^turnpike_upstream_healthy'
echo "gateway log:"
grep -E "unhealthy|healthy again|ejected" "$WORK/turnpike.log" || true
