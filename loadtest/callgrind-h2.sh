#!/usr/bin/env bash
# Instructions per request (user space) for HTTP/2 clients, counted by callgrind: h2c
# with prior knowledge (h2load, one connection, 10 streams at once) to an nginx
# upstream over HTTP/1.1. As callgrind.sh: two runs with N1 and N2 requests;
# (Ir(N2) - Ir(N1)) / (N2 - N1) cancels start-up and config costs.
#
#   loadtest/callgrind-h2.sh [turnpike-binary] [path]   (default: target/release/turnpike /100b)
# Needs valgrind, nginx and h2load (nghttp2-client). Leaves the N2 profile in
# loadtest/results/callgrind-h2.out for callgrind_annotate.
set -euo pipefail
BIN=${1:-target/release/turnpike} PATH_=${2:-/100b}
N1=${N1:-2000} N2=${N2:-12000}
HERE=$(cd "$(dirname "$0")" && pwd)
UP=18095 PORT=18096
WORK=$(mktemp -d /tmp/turnpike-cg.XXXXXX); chmod 755 "$WORK"; mkdir -p "$WORK/www"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
head -c 16384 /dev/zero | tr '\0' x > "$WORK/www/16k"
sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UP|g" -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" \
    "$HERE/peers/upstream-nginx.conf" > "$WORK/up.conf"
sed -e "s|__PROXY_PORT__|$PORT|g" -e "s|__UPSTREAM_PORT__|$UP|g" "${CONFIG:-$HERE/peers/turnpike.toml}" > "$WORK/tp.toml"
nginx -c "$WORK/up.conf" -p "$WORK" & PIDS+=($!)
sleep 0.3

count() { # requests → total Ir of the run
    local out=$WORK/cg.$1
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" run -c "$WORK/tp.toml" 2>"$WORK/vg.log" & local pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$PORT$PATH_" && break; sleep 0.2; done
    local report; report=$(h2load -n "$1" -c 1 -m 10 "http://127.0.0.1:$PORT$PATH_" 2>&1 || true)
    callgrind_control -d "$pid" >/dev/null
    sleep 0.5; kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    case $report in
        *"$1 succeeded, 0 failed"*) ;;
        *) echo "h2load run of $1 requests had failures:" >&2; echo "$report" | grep -E "requests:|status" >&2; exit 1 ;;
    esac
    awk '/^summary:|^totals:/ {print $2; exit}' "$(ls -t "$out"* | head -1)"
}
a=$(count "$N1"); b=$(count "$N2")
cp "$(ls -t "$WORK"/cg."$N2"* | head -1)" "$HERE/results/callgrind-h2.out"
echo "h2c instructions per request: $(( (b - a) / (N2 - N1) ))"
