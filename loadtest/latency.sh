#!/usr/bin/env bash
# Latency at a constant rate, free of coordinated omission: oha with -q and
# --latency-correction at 50% and 80% of nginx's saturated rate, against each proxy
# in alternation over ROUNDS rounds (the same peers as run.sh). Prints medians of
# p50/p90/p99/p99.9 per proxy and rate: tails vary a lot between single runs here.
#   ROUNDS=3 RATES="50 80" DURATION=10 loadtest/latency.sh          (needs oha: cargo install oha --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-3} RATES=${RATES:-"50 80"} PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
command -v oha >/dev/null || cargo install oha --locked   # (without --locked it needs a newer rustc)
UP=18380
declare -A PORT=([turnpike]=18381 [nginx]=18382 [haproxy]=18383)
. loadtest/lib.sh
cargo build --release --quiet
lt_init lat
lt_upstream "$LOAD_CPU"
lt_render loadtest/peers/turnpike.toml "${PORT[turnpike]}" "$WORK/t.toml"
lt_render loadtest/peers/nginx-proxy.conf "${PORT[nginx]}" "$WORK/n.conf"
lt_render loadtest/peers/haproxy.cfg "${PORT[haproxy]}" "$WORK/h.cfg"
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/t.toml" 2>/dev/null & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/n.conf" -p "$WORK" & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/h.cfg" 2>/dev/null & LT_PIDS+=($!)
for p in turnpike nginx haproxy; do lt_wait "http://127.0.0.1:${PORT[$p]}/100b"; done
# nginx's saturated rate, as the issue defines the reference
SAT=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:${PORT[nginx]}/100b" | awk '/Requests\/sec/ {print int($2)}')
echo "nginx saturated: $SAT req/s" >&2
RESULTS=$WORK/results.jsonl
for pct in $RATES; do
    q=$((SAT * pct / 100))
    # warm every proxy at this rate first (connections, upstream pools, page faults)
    for p in turnpike nginx haproxy; do
        taskset -c "$LOAD_CPU" oha -z 2s -c 64 -q "$q" --no-tui --output-format json "http://127.0.0.1:${PORT[$p]}/100b" >/dev/null 2>&1 || true
    done
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
