#!/usr/bin/env bash
# Before/after for a hot-path change: two turnpike binaries, same config, same pinning,
# alternating A B A B … so machine drift hits both alike. Prints req/s per run and the
# median ratio B/A.
#
#   loadtest/ab.sh /tmp/turnpike-before target/release/turnpike [path] [rounds] [seconds]
# Same binary, two configs (e.g. API key + throttle vs none):
#   CONFIG_B=loadtest/peers/turnpike-keyed.toml HEADER="x-api-key: loadtest-key-0123456789abcdef0123" \
#     loadtest/ab.sh target/release/turnpike target/release/turnpike /100b 7 5
set -euo pipefail
A=$1 B=$2 PATH_=${3:-/100b} ROUNDS=${4:-5} SECS=${5:-5}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} UP=18090 PORT=18091
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/turnpike-ab.XXXXXX); chmod 755 "$WORK"; mkdir -p "$WORK/www"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; grep -h ERROR "$WORK/tp.log" | sort | uniq -c >&2 || true; rm -rf "$WORK"' EXIT
for n in 1k 16k 256k; do head -c $(( ${n%k} * 1024 )) /dev/zero | tr '\0' x > "$WORK/www/$n"; done
sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UP|g" -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" \
    "$HERE/peers/upstream-nginx.conf" > "$WORK/up.conf"
sed -e "s|__DIR__|$WORK|g" -e "s|__PROXY_PORT__|$PORT|g" -e "s|__UPSTREAM_PORT__|$UP|g" "${CONFIG_A:-$HERE/peers/turnpike.toml}" > "$WORK/a.toml"
sed -e "s|__DIR__|$WORK|g" -e "s|__PROXY_PORT__|$PORT|g" -e "s|__UPSTREAM_PORT__|$UP|g" "${CONFIG_B:-$HERE/peers/turnpike.toml}" > "$WORK/b.toml"
taskset -c "$LOAD_CPU" nginx -c "$WORK/up.conf" -p "$WORK" & PIDS+=($!)
sleep 0.3
run() {
    taskset -c "$PROXY_CPU" "$1" run -c "$2" 2>>"$WORK/tp.log" & local pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT$PATH_" && break; sleep 0.1; done
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${SECS}s" ${HEADER:+-H "$HEADER"} "http://127.0.0.1:$PORT$PATH_" | awk '/Requests\/sec/ {print $2}'
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    # the next run must not find this one still listening
    for _ in $(seq 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN || break; sleep 0.1; done
}
ra=(); rb=()
for i in $(seq "$ROUNDS"); do
    a=$(run "$A" "$WORK/a.toml"); b=$(run "$B" "$WORK/b.toml"); ra+=("$a"); rb+=("$b")
    echo "round $i: A=$a B=$b"
done
python3 - "${ra[*]}" "${rb[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print(f"median A={statistics.median(a):,.0f} B={statistics.median(b):,.0f} req/s  B/A={statistics.median(b)/statistics.median(a):.3f}")
PY
