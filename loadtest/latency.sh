#!/usr/bin/env bash
# Latency at a constant rate, free of coordinated omission: oha with -q and
# --latency-correction at 50% and 80% of nginx's saturated rate, against each proxy
# in alternation over ROUNDS rounds (the same peers as run.sh). Prints medians of
# p50/p90/p99/p99.9 per proxy and rate: tails vary a lot between single runs here.
#   ROUNDS=3 RATES="50 80" DURATION=10 loadtest/latency.sh          (needs oha: cargo install oha --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-3} RATES=${RATES:-"50 80"} PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
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
RESULTS=$WORK/results.jsonl
for pct in $RATES; do
    q=$((SAT * pct / 100))
    for r in $(seq "$ROUNDS"); do
        for p in turnpike nginx haproxy; do
            taskset -c "$LOAD_CPU" oha -z "${DURATION}s" -c 64 -q "$q" --latency-correction --no-tui \
                --output-format json "http://127.0.0.1:${PORT[$p]}/100b" > "$WORK/o.json" 2>/dev/null
            python3 - "$WORK/o.json" "$pct" "$q" "$p" >> "$RESULTS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
pc = d.get("latencyPercentiles", {})
print(json.dumps({"pct": int(sys.argv[2]), "rate": int(sys.argv[3]), "proxy": sys.argv[4],
                  "success": d.get("summary", {}).get("successRate", 0),
                  **{k: pc.get(k) for k in ("p50", "p90", "p99", "p99.9")}}))
PY
            echo "round $r: $pct% $p $(tail -1 "$RESULTS")" >&2
        done
    done
done
python3 - "$RESULTS" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"Medians over {sys.argv[2]} alternating rounds.\n")
print("| rate | proxy | p50 | p90 | p99 | p99.9 | success |")
print("|---|---|---:|---:|---:|---:|---:|")
keys = sorted({(r["pct"], r["rate"]) for r in rows})
for pct, rate in keys:
    for proxy in ("turnpike", "nginx", "haproxy"):
        rs = [r for r in rows if r["pct"] == pct and r["proxy"] == proxy]
        med = lambda k: statistics.median(r[k] for r in rs) * 1000
        print(f"| {pct}% of nginx ({rate}/s) | {proxy} | {med('p50'):.2f} ms | {med('p90'):.2f} ms | {med('p99'):.2f} ms | {med('p99.9'):.2f} ms | {min(r['success'] for r in rs) * 100:.2f}% |")
PY
