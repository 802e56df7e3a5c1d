#!/usr/bin/env bash
# Instructions per proxied request (user space), counted by callgrind: repeatable on a
# noisy shared machine where wall-clock A/B runs are not. Two runs with N1 and N2
# keep-alive requests; (Ir(N2) - Ir(N1)) / (N2 - N1) cancels start-up and config costs.
#
#   loadtest/callgrind.sh [turnpike-binary] [path]     (default: target/release/turnpike /100b)
#   CONFIG=loadtest/peers/turnpike-keyed.toml HEADER="x-api-key: …" loadtest/callgrind.sh
#   H2=1 loadtest/callgrind.sh     h2c clients instead (h2load, one connection, 10
#                                  streams at once; needs h2load): callgrind-h2.sh
# Leaves the N2 profile in loadtest/results/callgrind.out for callgrind_annotate.
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
    for _ in $(seq 100); do curl -s -o /dev/null ${H2:+--http2-prior-knowledge} "http://127.0.0.1:$PORT$PATH_" && break; sleep 0.2; done
    if [ -n "${H2:-}" ]; then
        local report; report=$(h2load -n "$1" -c 1 -m 10 ${HEADER:+-H "$HEADER"} "http://127.0.0.1:$PORT$PATH_" 2>&1 || true)
        case $report in
            *"$1 succeeded, 0 failed"*) ;;
            *) echo "h2load run of $1 requests had failures:" >&2; echo "$report" | grep -E "requests:|status" >&2
               kill -KILL "$pid"; exit 1 ;;
        esac
    else
    python3 - "$PORT" "$PATH_" "$1" "${HEADER:-}" <<'PY'
import http.client, sys
port, path, n, header = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = dict([[p.strip() for p in header.split(":", 1)]]) if header else {}
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", path, headers=headers)
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
    fi
    # valgrind does not deliver SIGTERM to a process that takes it with sigwait, so
    # ask callgrind for a dump and then stop it hard.
    callgrind_control -d "$pid" >/dev/null
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
    cat "$out"* | awk '/^summary:/ {s += $2} END {print s}'
}
a=$(count "$N1"); b=$(count "$N2")
mkdir -p "$HERE/results"; cat "$WORK"/cg."$N2"* > "$HERE/results/callgrind${H2:+-h2}.out" 2>/dev/null || true
python3 -c "print(f'instructions per request: {($b - $a) / ($N2 - $N1):,.0f}  (Ir {$a:,} at {$N1} requests, {$b:,} at {$N2})')"
