#!/usr/bin/env bash
# Latency at a constant rate, free of coordinated omission: oha with -q and
# --latency-correction at 50% and 80% of nginx's saturated rate, against each proxy
# in turn (the same peers as run.sh). Prints p50/p90/p99/p99.9 per proxy and rate.
#   DURATION=10 loadtest/latency.sh          (needs oha: cargo install oha --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10} PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked" >&2; exit 1; }
UP=18380
declare -A PORT=([turnpike]=18381 [nginx]=18382 [haproxy]=18383)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
cargo build --release --quiet
WORK=$(mktemp -d /tmp/turnpike-lat.XXXXXX); chmod 755 "$WORK"; mkdir -p "$WORK/www"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
render() { sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UP|g" -e "s|__PROXY_PORT__|$2|g" -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" "$1" > "$3"; }
render loadtest/peers/upstream-nginx.conf 0 "$WORK/up.conf"
taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/up.conf" -p "$WORK" & PIDS+=($!)
render loadtest/peers/turnpike.toml "${PORT[turnpike]}" "$WORK/t.toml"
render loadtest/peers/nginx-proxy.conf "${PORT[nginx]}" "$WORK/n.conf"
render loadtest/peers/haproxy.cfg "${PORT[haproxy]}" "$WORK/h.cfg"
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/t.toml" 2>/dev/null & PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/n.conf" -p "$WORK" & PIDS+=($!)
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/h.cfg" 2>/dev/null & PIDS+=($!)
for p in turnpike nginx haproxy; do
    for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:${PORT[$p]}/100b" && break; sleep 0.1; done
done
# nginx's saturated rate, as the issue defines the reference
SAT=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:${PORT[nginx]}/100b" | awk '/Requests\/sec/ {print int($2)}')
echo "nginx saturated: $SAT req/s" >&2
echo "| rate | proxy | p50 | p90 | p99 | p99.9 | success |"
echo "|---|---|---:|---:|---:|---:|---:|"
for pct in 50 80; do
    q=$((SAT * pct / 100))
    for p in turnpike nginx haproxy; do
        taskset -c "$LOAD_CPU" oha -z "${DURATION}s" -c 64 -q "$q" --latency-correction --no-tui \
            --output-format json "http://127.0.0.1:${PORT[$p]}/100b" > "$WORK/o.json" 2>/dev/null
        python3 - "$WORK/o.json" "$pct% of nginx ($q/s)" "$p" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
pct = d.get("latencyPercentiles", {})
ms = lambda k: f"{pct.get(k, float('nan')) * 1000:.2f} ms"
s = d.get("summary", {})
print(f"| {sys.argv[2]} | {sys.argv[3]} | {ms('p50')} | {ms('p90')} | {ms('p99')} | {ms('p99.9')} | {s.get('successRate', 0) * 100:.2f}% |")
PY
    done
done
