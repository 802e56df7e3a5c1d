#!/usr/bin/env bash
# "API key + throttle enabled (not throttling)", as each proxy's operators would set
# it up: turnpike api_key_required + usage plan, stage and gateway throttles; nginx a
# map on x-api-key (403 otherwise) + limit_req; HAProxy an ACL on x-api-key + a stick
# table tracking the key's request rate. Limits far above the offered load. wrk with
# the key header, alternating rounds, medians.
#   ROUNDS=3 DURATION=10 loadtest/keyed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
KEY=loadtest-key-0123456789abcdef0123
UP=18580
declare -A PORT=([turnpike]=18581 [nginx]=18582 [haproxy]=18583)
. loadtest/lib.sh
cargo build --release --quiet
lt_init keyed
lt_upstream "$LOAD_CPU"
lt_render loadtest/peers/turnpike-keyed.toml "${PORT[turnpike]}" "$WORK/t.toml"
cat > "$WORK/n.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/n.pid;
error_log $WORK/n.err warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    map \$http_x_api_key \$key_ok { default 0; "$KEY" 1; }
    limit_req_zone \$http_x_api_key zone=keys:10m rate=1000000r/s;
    upstream backend { server 127.0.0.1:$UP; keepalive 256; }
    server {
        listen 127.0.0.1:${PORT[nginx]} reuseport backlog=4096;
        location / {
            if (\$key_ok = 0) { return 403; }
            limit_req zone=keys burst=1000000 nodelay;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGX
cat > "$WORK/h.cfg" <<HAP
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    stick-table type string len 64 size 100k expire 60s store http_req_rate(1s)
    acl key_ok req.hdr(x-api-key) -m str $KEY
    http-request deny deny_status 403 unless key_ok
    http-request track-sc0 req.hdr(x-api-key)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }
    default_backend be
backend be
    server up 127.0.0.1:$UP
HAP
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/t.toml" 2>/dev/null & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/n.conf" -p "$WORK" & LT_PIDS+=($!)
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/h.cfg" 2>/dev/null & LT_PIDS+=($!)
for p in turnpike nginx haproxy; do
    lt_wait "http://127.0.0.1:${PORT[$p]}/100b" "x-api-key: $KEY"
    with=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "http://127.0.0.1:${PORT[$p]}/100b")
    without=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$p]}/100b")
    [ "$with" = 200 ] && [ "$without" = 403 ] || { echo "$p: with key $with, without $without (want 200/403)" >&2; exit 1; }
done
declare -A RES
for r in $(seq "$ROUNDS"); do
    for p in turnpike nginx haproxy; do
        rps=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" -H "x-api-key: $KEY" "http://127.0.0.1:${PORT[$p]}/100b" | awk '/Requests\/sec/ {print $2}')
        echo "round $r $p $rps" >&2
        RES[$p]="${RES[$p]:-} $rps"
    done
done
python3 - "${RES[turnpike]}" "${RES[nginx]}" "${RES[haproxy]}" <<'PY'
import statistics, sys
t, n, h = (statistics.median(float(x) for x in a.split()) for a in sys.argv[1:4])
print("| API key + throttles, /100b | req/s (median) | ratio to turnpike |\n|---|---:|---:|")
for name, v in (("turnpike", t), ("nginx", n), ("haproxy", h)):
    print(f"| {name} | {v:,.0f} | {v / t:.2f} |")
PY
