#!/usr/bin/env bash
# A Lambda-proxy route against an http_proxy route to the same fast local host, side
# by side: what the lambda integration's own work (the event, SigV4, the Invoke
# request, the answer's JSON) costs per request. The "Invoke host" is an nginx that
# answers every POST /2015-03-31/functions/…/invocations at once with a 2.0 answer
# of a 100-byte body (it checks no signature: the host's cost is not the question),
# and /direct with the same 100 bytes for the http_proxy route. nginx proxying
# /direct is the reference for the plain route.
#
#   loadtest/lambda.sh                 3 rounds of 10 s
#   ROUNDS=5 DURATION=20 loadtest/lambda.sh
#
# Proxies on PROXY_CPU (one turnpike worker, one nginx worker), wrk and the host on
# LOAD_CPU. Prints req/s and requests per proxy CPU-second (medians).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
UP=18390 TP=18391 NG=18392
source loadtest/lib.sh
cargo build --release --quiet
lt_init lambda
BODY=$(head -c 100 /dev/zero | tr '\0' a)
cat > "$WORK/host.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/host.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:$UP; keepalive_requests 1000000;
    location /2015-03-31/functions/ { default_type application/json;
      return 200 '{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"$BODY"}'; }
    location /direct { default_type text/plain; return 200 '$BODY'; } } }
CONF
taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/host.conf" -p "$WORK" & LT_PIDS+=($!)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off;
  upstream up { server 127.0.0.1:$UP; keepalive 128; }
  server { listen 127.0.0.1:$NG; keepalive_requests 1000000;
    location /proxy { proxy_pass http://up/direct; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" & LT_PIDS+=($!); NGPID=$!
cat > "$WORK/turnpike.toml" <<TOML
[gateway]
listen = ["127.0.0.1:$TP"]
admin = ""
workers = 1
[aws]
region = "us-east-1"
credentials = { access_key = "AKIDLOADTEST", secret = "loadtest-secret" }
endpoints = { lambda = "http://127.0.0.1:$UP" }
[apis.b.routes."GET /lambda"]
integration = { type = "lambda", function = "arn:aws:lambda:us-east-1:123456789012:function:bench:live" }
[apis.b.routes."GET /proxy"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:$UP/direct" }
[stages.b]
api = "b"
TOML
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!); TPPID=$!
lt_wait "http://127.0.0.1:$UP/direct"
lt_wait "http://127.0.0.1:$TP/lambda"
lt_wait "http://127.0.0.1:$TP/proxy"
lt_wait "http://127.0.0.1:$NG/proxy"
[ "$(curl -s "http://127.0.0.1:$TP/lambda")" = "$BODY" ] || { echo "the lambda route does not answer the function's body" >&2; exit 1; }
RES=$WORK/res.tsv
for round in $(seq "$ROUNDS"); do
    for scen in turnpike:lambda turnpike:proxy nginx:proxy; do
        p=${scen%%:*} route=${scen#*:}
        if [ "$p" = turnpike ]; then port=$TP pid=$TPPID; else port=$NG pid=$NGPID; fi
        m=$(lt_wrk "$pid" -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/$route")
        printf '%s\t%s\t%s\t%s\n' "$round" "$route" "$p" "$m" | tee -a "$RES"
    done
done
python3 - "$RES" "$HZ" "rounds=$ROUNDS duration=${DURATION}s conns=$CONNS" <<'PY'
import sys, statistics, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
hz = int(sys.argv[2])
by = collections.defaultdict(list)
for r, route, p, rps, reqs, ticks, bad in rows:
    cpu = max(int(ticks), 1) / hz
    by[(route, p)].append((float(rps), int(reqs) / cpu, int(bad)))
print(f"Settings: {sys.argv[3]}; medians over rounds; per CPU-s = requests per second of the proxy's own CPU time\n")
print("| route | proxy | req/s | req per CPU-s | non-2xx | vs turnpike's http_proxy route (req/s, per CPU-s) |")
print("|---|---|---:|---:|---:|---|")
med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), sum(x[2] for x in v)) for k, v in by.items()}
base = med[("proxy", "turnpike")]
for route, p in [("lambda", "turnpike"), ("proxy", "turnpike"), ("proxy", "nginx")]:
    rps, pc, bad = med[(route, p)]
    print(f"| {route} | {p} | {rps:,.0f} | {pc:,.0f} | {bad} | {rps / base[0]:.2f}, {pc / base[1]:.2f} |")
PY
