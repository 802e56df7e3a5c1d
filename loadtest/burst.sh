#!/usr/bin/env bash
# A burst to a tiny upstream: Python's http.server (HTTP/1.0, a thread per
# connection, listen backlog 5) behind turnpike, nginx and HAProxy, each with two
# workers and its default-ish proxy settings. 4,000 requests as h2c (8 connections x
# 32 streams, h2load) and as HTTP/1.1 (64 connections). What counts is how many
# come back 2xx, and how long the burst takes.
#
#   loadtest/burst.sh                   one round of each
#   ROUNDS=3 TURNPIKE_OLD=/path/to/old/turnpike loadtest/burst.sh   (adds a row for another binary)
#
# Everything shares the machine's two cores (the upstream is the bottleneck by far).
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-1} N=${N:-4000}
UP=18500
declare -A H2C=([turnpike]=18501 [nginx]=18502 [haproxy]=18503 [turnpike-old]=18504)
declare -A H1=([turnpike]=18511 [nginx]=18512 [haproxy]=18513 [turnpike-old]=18514)
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
source loadtest/lib.sh
command -v "$NGINX" >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
command -v "$HAPROXY" >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
cargo build --release --quiet
lt_init burst
head -c 100 /dev/zero | tr '\0' a > "$WORK/www/100b"
# Python's own file server: ThreadingHTTPServer, request_queue_size 5
(cd "$WORK/www" && exec python3 -m http.server "$UP" --bind 127.0.0.1 >/dev/null 2>&1) & LT_PIDS+=($!)

turnpike_conf() { # H2C_PORT H1_PORT
    cat <<TOML
[gateway]
listen = ["127.0.0.1:$1", "127.0.0.1:$2"]
admin = ""
workers = 2

[upstreams.py]
targets = ["127.0.0.1:$UP"]

[apis.b.routes."ANY /{path+}"]
integration = { type = "http_proxy", uri = "http://py/{path}" }

[stages.b]
api = "b"
TOML
}
turnpike_conf "${H2C[turnpike]}" "${H1[turnpike]}" > "$WORK/turnpike.toml"
target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!)
PROXIES="turnpike nginx haproxy"
if [ -n "${TURNPIKE_OLD:-}" ]; then
    turnpike_conf "${H2C[turnpike-old]}" "${H1[turnpike-old]}" > "$WORK/turnpike-old.toml"
    "$TURNPIKE_OLD" run -c "$WORK/turnpike-old.toml" 2> "$WORK/turnpike-old.log" & LT_PIDS+=($!)
    PROXIES="turnpike turnpike-old nginx haproxy"
fi

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:${H2C[nginx]} http2;
        listen 127.0.0.1:${H1[nginx]};
        location / {
            proxy_pass http://127.0.0.1:$UP;
            proxy_http_version 1.1;
        }
    }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" & LT_PIDS+=($!)

cat > "$WORK/haproxy.cfg" <<HAP
global
    nbthread 2
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend h2c
    bind 127.0.0.1:${H2C[haproxy]} proto h2
    default_backend py
frontend h1
    bind 127.0.0.1:${H1[haproxy]}
    default_backend py
backend py
    server py 127.0.0.1:$UP
HAP
"$HAPROXY" -db -f "$WORK/haproxy.cfg" 2> "$WORK/haproxy.log" & LT_PIDS+=($!)

lt_wait "http://127.0.0.1:$UP/100b"
for p in $PROXIES; do lt_wait "http://127.0.0.1:${H1[$p]}/100b"; done
sleep 1

RESULTS=$WORK/burst.tsv
for round in $(seq "$ROUNDS"); do
    for client in h2c h1; do
        for p in $PROXIES; do
            case $client in
                h2c) out=$(h2load -n "$N" -c 8 -m 32 -t 1 "http://127.0.0.1:${H2C[$p]}/100b" 2>&1 || true) ;;
                h1) out=$(h2load --h1 -n "$N" -c 64 -t 1 "http://127.0.0.1:${H1[$p]}/100b" 2>&1 || true) ;;
            esac
            secs=$(echo "$out" | awk '/^finished in/ {sub("s,", "", $3); print $3}')
            ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
            s5=$(echo "$out" | awk '/^status codes:/ {print $9}')
            failed=$(echo "$out" | awk '/^requests:/ {print $10}')
            max=$(echo "$out" | awk '/^time for request:/ {print $5}')
            echo -e "$round\t$client\t$p\t${ok:-0}\t${s5:-0}\t${failed:-0}\t${secs:-0}\t${max:--}" | tee -a "$RESULTS" >&2
            sleep 2   # let the upstream's backlog and TIME_WAITs settle between runs
        done
    done
done
python3 - "$RESULTS" "$N" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
print(f"{n} requests per run; per proxy and client, summed over rounds\n")
print("| client | proxy | 2xx | 5xx | no answer | 2xx share | burst took (s, median) | max request time |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for c in dict.fromkeys(r[1] for r in rows):
    for p in dict.fromkeys(r[2] for r in rows):
        rs = [r for r in rows if r[1] == c and r[2] == p]
        ok = sum(int(r[3]) for r in rs); s5 = sum(int(r[4]) for r in rs)
        failed = sum(int(r[5]) for r in rs) - s5
        secs = sorted(float(r[6]) for r in rs)[len(rs) // 2]
        print(f"| {c} | {p} | {ok} | {s5} | {max(failed, 0)} | {100 * ok / (n * len(rs)):.1f}% | {secs:.2f} | {rs[-1][7]} |")
PY
