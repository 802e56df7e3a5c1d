#!/usr/bin/env bash
# HTTP/2 side by side with h2load: turnpike, nginx and HAProxy as the same reverse
# proxy to the same upstream (HTTP/1.1 keep-alive behind each), over h2c (prior
# knowledge) and over TLS (ALPN h2), 1 KiB responses.
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
UP=18280
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
# turnpike serves h2c on its plain listener and h2 on its TLS listener
render loadtest/peers/turnpike.toml "$WORK/turnpike.toml" "${H2C[turnpike]}" 0 "${H2TLS[turnpike]}"
render loadtest/peers/turnpike-tls.toml "$WORK/turnpike-tls.toml" 0 0 "${H2TLS[turnpike]}"
cat "$WORK/turnpike-tls.toml" >> "$WORK/turnpike.toml"
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!)
render loadtest/peers/nginx-proxy.conf "$WORK/nginx-proxy.conf" 18284 0 0
render loadtest/peers/nginx-h2.conf "$WORK/nginx-tls-h2.conf" 0 "${H2C[nginx]}" "${H2TLS[nginx]}"
taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx-proxy.conf" -p "$WORK" & LT_PIDS+=($!)
render loadtest/peers/haproxy.cfg "$WORK/haproxy.cfg" 18285 0 0
render loadtest/peers/haproxy-h2.cfg "$WORK/haproxy-h2.cfg" 0 "${H2C[haproxy]}" "${H2TLS[haproxy]}"
taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/haproxy.cfg" -f "$WORK/haproxy-h2.cfg" 2> "$WORK/haproxy.log" & LT_PIDS+=($!)
lt_wait "http://127.0.0.1:$UP/1k"
sleep 1

RESULTS=$WORK/h2.tsv
for round in $(seq "$ROUNDS"); do
    for scenario in h2c h2-tls; do
        for p in turnpike nginx haproxy; do
            if [ "$scenario" = h2c ]; then url="http://127.0.0.1:${H2C[$p]}/1k"; else url="https://127.0.0.1:${H2TLS[$p]}/1k"; fi
            out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" -c "$CLIENTS" -m "$STREAMS" -t 1 "$url" 2>&1 || true)
            rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
            ok=$(echo "$out" | awk '/^requests:/ {print $8}')
            failed=$(echo "$out" | awk '/^requests:/ {print $10 + 0}')
            mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
            max=$(echo "$out" | awk '/^time for request:/ {print $5}')
            echo -e "$round\t$scenario\t$p\t${rps:-0}\t${ok:-0}\t${failed:-0}\t${mean:--}\t${max:--}" | tee -a "$RESULTS" >&2
        done
    done
done
python3 - "$RESULTS" "rounds=$ROUNDS duration=${DURATION}s clients=$CLIENTS streams=$STREAMS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"Settings: {sys.argv[2]}; medians over rounds; ratio = proxy ÷ turnpike\n")
print("| scenario | proxy | req/s | mean | max | failed | ratio |\n|---|---|---:|---:|---:|---:|---:|")
for s in dict.fromkeys(r[1] for r in rows):
    base = None
    for p in dict.fromkeys(r[2] for r in rows):
        rs = [r for r in rows if r[1] == s and r[2] == p]
        rps = statistics.median(float(r[3]) for r in rs)
        base = base or rps
        mid = sorted(rs, key=lambda r: float(r[3]))[len(rs) // 2]
        failed = sum(int(float(r[5])) for r in rs)
        print(f"| {s} | {p} | {rps:,.0f} | {mid[6]} | {mid[7]} | {failed} | {rps / base:.2f} |")
PY
