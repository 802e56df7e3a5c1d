#!/usr/bin/env bash
# A JWT-protected route against the same route open, and against nginx doing
# `auth_request` to a tiny authorizer (an nginx location that only checks that an
# Authorization header is there: nginx does not verify JWTs itself), side by side:
# wrk, 64 keep-alive connections, one RS256 token on every request, 100-byte answers
# from an nginx upstream. turnpike verifies the token once per worker and then finds
# it in its token cache, which is a client's steady state.
#
#   loadtest/jwt.sh                    3 rounds of 10 s
#   ROUNDS=5 DURATION=20 loadtest/jwt.sh
#
# Proxies on PROXY_CPU (one turnpike worker, one nginx worker), wrk, the upstream and
# the authorizer on LOAD_CPU. Prints req/s and requests per proxy CPU-second (medians).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
UP=18380 TP=18381 NG=18382 AUTHZ=18383
source loadtest/lib.sh
cargo build --release --quiet
lt_init jwt
TOKEN=$(lt_jwt "$WORK")
lt_upstream "$LOAD_CPU"
cat > "$WORK/authz.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/authz.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:$AUTHZ; keepalive_requests 1000000;
    location /check { if (\$http_authorization = "") { return 401; } return 204; } } }
CONF
taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/authz.conf" -p "$WORK" & LT_PIDS+=($!)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off;
  upstream up { server 127.0.0.1:$UP; keepalive 128; }
  upstream authz { server 127.0.0.1:$AUTHZ; keepalive 128; }
  server { listen 127.0.0.1:$NG; keepalive_requests 1000000;
    location /open/ { proxy_pass http://up/; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /jwt/ { auth_request /_authz; proxy_pass http://up/; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location = /_authz { internal; proxy_pass http://authz/check; proxy_pass_request_body off;
      proxy_set_header Content-Length ""; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" & LT_PIDS+=($!); NGPID=$!
cat > "$WORK/turnpike.toml" <<TOML
[gateway]
listen = ["127.0.0.1:$TP"]
admin = ""
workers = 1
[apis.b.authorizers.users]
type = "jwt"
issuer = "https://issuer.example"
audience = ["bench"]
jwks = "$WORK/jwks.json"
[apis.b.routes."ANY /open/{p+}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:$UP/{p}" }
[apis.b.routes."ANY /jwt/{p+}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:$UP/{p}" }
auth = "users"
[stages.b]
api = "b"
TOML
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!); TPPID=$!
H="Authorization: Bearer $TOKEN"
lt_wait "http://127.0.0.1:$UP/100b"
for port in $TP $NG; do
    lt_wait "http://127.0.0.1:$port/open/100b" "$H"
    lt_wait "http://127.0.0.1:$port/jwt/100b" "$H"
    # refused without a token: the protection is really on
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/jwt/100b")
    [ "$code" = 401 ] || { echo "port $port answered $code without a token" >&2; exit 1; }
done
RES=$WORK/res.tsv
for round in $(seq "$ROUNDS"); do
    for scen in open jwt; do
        for p in turnpike nginx; do
            if [ $p = turnpike ]; then port=$TP pid=$TPPID; else port=$NG pid=$NGPID; fi
            m=$(lt_wrk "$pid" -t1 -c"$CONNS" -d"${DURATION}s" -H "$H" "http://127.0.0.1:$port/$scen/100b")
            printf '%s\t%s\t%s\t%s\n' "$round" "$scen" "$p" "$m" | tee -a "$RES"
        done
    done
done
python3 - "$RES" "$HZ" "rounds=$ROUNDS duration=${DURATION}s conns=$CONNS" <<'PY'
import sys, statistics, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
hz = int(sys.argv[2])
by = collections.defaultdict(list)
for r, scen, p, rps, reqs, ticks, bad in rows:
    cpu = max(int(ticks), 1) / hz
    by[(scen, p)].append((float(rps), int(reqs) / cpu, int(bad)))
print(f"Settings: {sys.argv[3]}; medians over rounds; per CPU-s = requests per second of the proxy's own CPU time\n")
print("| route | proxy | req/s | req per CPU-s | non-2xx | vs the same proxy's open route (req/s, per CPU-s) |")
print("|---|---|---:|---:|---:|---|")
med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), sum(x[2] for x in v)) for k, v in by.items()}
for scen in ["open", "jwt"]:
    for p in ["turnpike", "nginx"]:
        rps, pc, bad = med[(scen, p)]
        o = med[("open", p)]
        print(f"| {scen} | {p} | {rps:,.0f} | {pc:,.0f} | {bad} | {rps / o[0]:.2f}, {pc / o[1]:.2f} |")
PY
