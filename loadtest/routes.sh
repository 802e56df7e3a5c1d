#!/usr/bin/env bash
# A 1,000-route table: each proxy gets 1,000 routes written the way its operators
# would (turnpike: `GET /svcN/items/{id}`; nginx: prefix locations; HAProxy: one
# map_beg lookup), every request hits the last one; wrk, alternating rounds.
#   ROUNDS=3 DURATION=10 loadtest/routes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} N=${N:-1000}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
UP=18280
declare -A PORT=([turnpike]=18281 [nginx]=18282 [haproxy]=18283)
. loadtest/lib.sh
cargo build --release --quiet
lt_init routes
lt_upstream "$LOAD_CPU"

python3 - "$WORK" "$N" "$UP" "${PORT[turnpike]}" "${PORT[nginx]}" "${PORT[haproxy]}" <<'PY'
import sys
work, n, up, tp, ng, ha = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
with open(f"{work}/t.toml", "w") as f:
    f.write(f'[gateway]\nlisten = ["127.0.0.1:{tp}"]\nadmin = ""\nworkers = 1\n\n[stages.s]\napi = "r"\n\n')
    for i in range(n):
        f.write(f'[apis.r.routes."GET /svc{i}/items/{{id}}"]\nintegration = {{ type = "http_proxy", uri = "http://127.0.0.1:{up}/100b" }}\n')
with open(f"{work}/n.conf", "w") as f:
    f.write(f"""worker_processes 1;\ndaemon off;\npid {work}/n.pid;\nerror_log {work}/n.err warn;\nevents {{ worker_connections 16384; }}\nhttp {{\n access_log off;\n keepalive_requests 1000000;\n upstream backend {{ server 127.0.0.1:{up}; keepalive 256; }}\n server {{\n  listen 127.0.0.1:{ng} reuseport backlog=4096;\n  proxy_http_version 1.1;\n  proxy_set_header Connection "";\n""")
    for i in range(n):
        f.write(f"  location /svc{i}/items/ {{ rewrite ^ /100b break; proxy_pass http://backend; }}\n")
    f.write(" }\n}\n")
with open(f"{work}/routes.map", "w") as f:
    for i in range(n):
        f.write(f"/svc{i}/items/ be\n")
with open(f"{work}/h.cfg", "w") as f:
    f.write(f"""global\n nbthread 1\n maxconn 8000\ndefaults\n mode http\n timeout connect 1s\n timeout client 60s\n timeout server 60s\n option http-keep-alive\n http-reuse always\nfrontend fe\n bind 127.0.0.1:{ha}\n http-request set-var(txn.be) path,map_beg({work}/routes.map)\n http-request set-path /100b if {{ var(txn.be) -m found }}\n use_backend %[var(txn.be)]\nbackend be\n server up 127.0.0.1:{up}\n""")
PY
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/t.toml" 2>/dev/null & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/n.conf" -p "$WORK" & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/h.cfg" 2>/dev/null & LT_PIDS+=($!)
LAST=$((N - 1))
for p in turnpike nginx haproxy; do
    lt_wait "http://127.0.0.1:${PORT[$p]}/svc$LAST/items/42"
    # a proxy that does not answer 200 here would be measured answering errors
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$p]}/svc$LAST/items/42")
    [ "$code" = 200 ] || { echo "$p answers $code, not 200: its config is wrong" >&2; exit 1; }
done
declare -A RES
for r in $(seq "$ROUNDS"); do
    for p in turnpike nginx haproxy; do
        rps=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:${PORT[$p]}/svc$LAST/items/42" | awk '/Requests\/sec/ {print $2}')
        echo "round $r $p $rps" >&2
        RES[$p]="${RES[$p]:-} $rps"
    done
done
python3 - "${RES[turnpike]}" "${RES[nginx]}" "${RES[haproxy]}" "$N" <<'PY'
import statistics, sys
t, n, h = (statistics.median(float(x) for x in a.split()) for a in sys.argv[1:4])
print(f"| {sys.argv[4]} routes, last one hit | req/s (median) | ratio to turnpike |\n|---|---:|---:|")
for name, v in (("turnpike", t), ("nginx", n), ("haproxy", h)):
    print(f"| {name} | {v:,.0f} | {v / t:.2f} |")
PY
