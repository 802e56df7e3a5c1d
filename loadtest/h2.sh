#!/usr/bin/env bash
# HTTP/2 side by side with h2load: turnpike, nginx and HAProxy as the same reverse
# proxy to the same upstream (HTTP/1.1 keep-alive behind each), over h2c (prior
# knowledge) and over TLS (ALPN h2), 1 KiB responses; then `h2c-h2up`: h2c in and
# HTTP/2 (h2c) to the upstream too, as for a gRPC service (turnpike `protocol = "h2"`,
# nginx `grpc_pass` with upstream keep-alive, HAProxy `proto h2`).
#
#   loadtest/h2.sh                          3 rounds of 10 s, 16 connections x 10 streams
#   ROUNDS=5 DURATION=20 CLIENTS=32 STREAMS=20 loadtest/h2.sh
#
# Same pinning as run.sh (proxies on PROXY_CPU, h2load and the upstream on LOAD_CPU),
# proxies alternated each round. Prints req/s (median) and h2load's mean and max
# request time. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CLIENTS=${CLIENTS:-16} STREAMS=${STREAMS:-10}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
UP=18280 UP_H2=18279
declare -A H2C=([turnpike]=18281 [nginx]=18282 [haproxy]=18283)
declare -A H2TLS=([turnpike]=18291 [nginx]=18292 [haproxy]=18293)
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
source loadtest/lib.sh
cargo build --release --quiet
lt_init h2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
cat "$WORK/tls.pem" "$WORK/tls.key" > "$WORK/tls-combined.pem"
chmod 644 "$WORK/tls.key" "$WORK/tls-combined.pem"
render() { # template out plain-port h2c-port tls-port
    sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UP|g" -e "s|__PROXY_PORT__|$3|g" \
        -e "s|__TLS_PORT__|$5|g" -e "s|__H2C_PORT__|$4|g" -e "s|__H2TLS_PORT__|$5|g" \
        -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" "$1" > "$2"
}
lt_upstream "$LOAD_CPU"
# the same upstream's files over h2c (prior knowledge), for the h2c-h2up scenario
cat > "$WORK/up-h2.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/upstream-h2.pid;
error_log $WORK/upstream-h2-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    http2_max_requests 1000000;
    server {
        listen 127.0.0.1:$UP_H2 http2 reuseport backlog=4096;
        location / { root $WORK/www; }
    }
}
NGINX
taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/up-h2.conf" -p "$WORK" & LT_PIDS+=($!)
# turnpike serves h2c on its plain listener and h2 on its TLS listener
render loadtest/peers/turnpike.toml "$WORK/turnpike.toml" "${H2C[turnpike]}" 0 "${H2TLS[turnpike]}"
render loadtest/peers/turnpike-tls.toml "$WORK/turnpike-tls.toml" 0 0 "${H2TLS[turnpike]}"
cat "$WORK/turnpike-tls.toml" >> "$WORK/turnpike.toml"
cat >> "$WORK/turnpike.toml" <<TOML

[upstreams.h2up]
targets = ["127.0.0.1:$UP_H2"]
protocol = "h2"

[apis.bench.routes."ANY /h2up/{path+}"]
integration = { type = "http_proxy", uri = "http://h2up/{path}" }
TOML
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!)
declare -A MAINPID=([turnpike]=$!)
render loadtest/peers/nginx-proxy.conf "$WORK/nginx-proxy.conf" 18284 0 0
render loadtest/peers/nginx-h2.conf "$WORK/nginx-tls-h2.conf" 0 "${H2C[nginx]}" "${H2TLS[nginx]}"
sed -i "s|__UP_H2_PORT__|$UP_H2|g" "$WORK/nginx-tls-h2.conf"
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx-proxy.conf" -p "$WORK" & LT_PIDS+=($!)
MAINPID[nginx]=$!
render loadtest/peers/haproxy.cfg "$WORK/haproxy.cfg" 18285 0 0
render loadtest/peers/haproxy-h2.cfg "$WORK/haproxy-h2.cfg" 0 "${H2C[haproxy]}" "${H2TLS[haproxy]}"
sed -i "s|__UP_H2_PORT__|$UP_H2|g" "$WORK/haproxy-h2.cfg"
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/haproxy.cfg" -f "$WORK/haproxy-h2.cfg" 2> "$WORK/haproxy.log" & LT_PIDS+=($!)
MAINPID[haproxy]=$!
lt_wait "http://127.0.0.1:$UP/1k"
for _ in $(seq 50); do curl -sf --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$UP_H2/1k" && break; sleep 0.1; done
sleep 1
# every proxy answers each scenario's URL with the whole 1 KiB body before it is measured
for p in turnpike nginx haproxy; do
    for path in /1k /h2up/1k; do
        size=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${H2C[$p]}$path")
        [ "$size" = "200 1024" ] || { echo "$p $path answered '$size'" >&2; exit 1; }
    done
done

RESULTS=$WORK/h2.tsv
for round in $(seq "$ROUNDS"); do
    for scenario in ${SCENARIOS:-h2c h2-tls h2c-h2up}; do
        for p in turnpike nginx haproxy; do
            case $scenario in
                h2c) url="http://127.0.0.1:${H2C[$p]}/1k" ;;
                h2-tls) url="https://127.0.0.1:${H2TLS[$p]}/1k" ;;
                h2c-h2up) url="http://127.0.0.1:${H2C[$p]}/h2up/1k" ;;
            esac
            before=$(cpu_ticks "${MAINPID[$p]}")
            out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" -c "$CLIENTS" -m "$STREAMS" -t 1 "$url" 2>&1 || true)
            cpu=$(python3 -c "print(($(cpu_ticks "${MAINPID[$p]}") - $before) / $HZ)")
            rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
            ok=$(echo "$out" | awk '/^requests:/ {print $8}')
            failed=$(echo "$out" | awk '/^requests:/ {print $10 + 0}')
            mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
            max=$(echo "$out" | awk '/^time for request:/ {print $5}')
            echo -e "$round\t$scenario\t$p\t${rps:-0}\t${ok:-0}\t${failed:-0}\t${mean:--}\t${max:--}\t$cpu" | tee -a "$RESULTS" >&2
        done
    done
done
python3 - "$RESULTS" "rounds=$ROUNDS duration=${DURATION}s clients=$CLIENTS streams=$STREAMS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"Settings: {sys.argv[2]}; medians over rounds; ratio = proxy ÷ turnpike; per CPU-s = requests per second of the proxy's own CPU time\n")
print("| scenario | proxy | req/s | mean | max | failed | ratio | req per CPU-s | ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
for s in dict.fromkeys(r[1] for r in rows):
    base = base_cpu = None
    for p in dict.fromkeys(r[2] for r in rows):
        rs = [r for r in rows if r[1] == s and r[2] == p]
        rps = statistics.median(float(r[3]) for r in rs)
        per_cpu = statistics.median(float(r[4]) / max(float(r[8]), 1e-9) for r in rs)
        base = base or rps
        base_cpu = base_cpu or per_cpu
        mid = sorted(rs, key=lambda r: float(r[3]))[len(rs) // 2]
        failed = sum(int(float(r[5])) for r in rs)
        print(f"| {s} | {p} | {rps:,.0f} | {mid[6]} | {mid[7]} | {failed} | {rps / base:.2f} | {per_cpu:,.0f} | {per_cpu / base_cpu:.2f} |")
PY
