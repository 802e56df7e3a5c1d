#!/usr/bin/env bash
# turnpike vs nginx vs HAProxy as the same reverse proxy to the same upstream, side by side.
#
#   loadtest/run.sh                  all scenarios, 3 rounds, 10 s each
#   ROUNDS=5 DURATION=20 loadtest/run.sh
#   SCENARIOS="ka-100b ka-16k" PROXIES="turnpike nginx" loadtest/run.sh
#
# Each proxy gets one worker pinned to PROXY_CPU; wrk and the upstream nginx share
# LOAD_CPU. Scenarios run A B C A B C … so drift on a shared machine hits all proxies
# alike. Prints a markdown table (medians over rounds, ratio to turnpike) and writes
# loadtest/results/latest.{md,json}. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SCENARIOS=${SCENARIOS:-"ka-100b ka-1k ka-16k ka-256k new-conn cache-hit tls-ka-1k tls-new-conn"}
PROXIES=${PROXIES:-"turnpike nginx haproxy"}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
declare -A PORT=([turnpike]=18081 [nginx]=18082 [haproxy]=18083)
declare -A TLS_PORT=([turnpike]=18091 [nginx]=18092 [haproxy]=18093)

need() { command -v "$1" >/dev/null 2>&1; }
install_missing() {
    local pkgs=()
    need wrk || pkgs+=(wrk)
    need nginx || [ -x /usr/sbin/nginx ] || pkgs+=(nginx-light)
    need haproxy || [ -x /usr/sbin/haproxy ] || pkgs+=(haproxy)
    need openssl || pkgs+=(openssl)
    if [ ${#pkgs[@]} -gt 0 ]; then
        echo "installing ${pkgs[*]}" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    fi
}
install_missing
source loadtest/lib.sh   # cpu_ticks, HZ
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

cargo build --release --quiet
TURNPIKE=$ROOT/target/release/turnpike

WORK=$(mktemp -d /tmp/turnpike-loadtest.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

render() { # template → file, with the placeholders filled in (TLS port: $4)
    sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UPSTREAM_PORT|g" -e "s|__PROXY_PORT__|$2|g" \
        -e "s|__TLS_PORT__|${4:-0}|g" \
        -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' 'a')|g" "$1" > "$3"
}

mkdir -p "$WORK/www"
chmod 755 "$WORK"   # nginx workers run as another user
head -c 1024 /dev/zero | tr '\0' 'b' > "$WORK/www/1k"
head -c 16384 /dev/zero | tr '\0' 'c' > "$WORK/www/16k"
head -c 262144 /dev/zero | tr '\0' 'd' > "$WORK/www/256k"

# one ECDSA P-256 certificate for every proxy's TLS listener
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
cat "$WORK/tls.pem" "$WORK/tls.key" > "$WORK/tls-combined.pem"
chmod 644 "$WORK/tls.key" "$WORK/tls-combined.pem"

render loadtest/peers/upstream-nginx.conf 0 "$WORK/upstream.conf"
taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/upstream.conf" -p "$WORK" & PIDS+=($!)

declare -A MAINPID
for p in $PROXIES; do
    case $p in
        turnpike)
            render loadtest/peers/turnpike.toml "${PORT[turnpike]}" "$WORK/turnpike.toml"
            render loadtest/peers/turnpike-tls.toml "${PORT[turnpike]}" "$WORK/turnpike-tls.toml" "${TLS_PORT[turnpike]}"
            cat "$WORK/turnpike-tls.toml" >> "$WORK/turnpike.toml"
            taskset -c "$PROXY_CPU" "$TURNPIKE" run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & PIDS+=($!); MAINPID[$p]=$! ;;
        nginx)
            render loadtest/peers/nginx-proxy.conf "${PORT[nginx]}" "$WORK/nginx-proxy.conf"
            render loadtest/peers/nginx-tls.conf "${PORT[nginx]}" "$WORK/nginx-tls-server.conf" "${TLS_PORT[nginx]}"
            taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx-proxy.conf" -p "$WORK" & PIDS+=($!); MAINPID[$p]=$! ;;
        haproxy)
            render loadtest/peers/haproxy.cfg "${PORT[haproxy]}" "$WORK/haproxy.cfg"
            render loadtest/peers/haproxy-tls.cfg "${PORT[haproxy]}" "$WORK/haproxy-tls.cfg" "${TLS_PORT[haproxy]}"
            taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$WORK/haproxy.cfg" -f "$WORK/haproxy-tls.cfg" 2> "$WORK/haproxy.log" & PIDS+=($!); MAINPID[$p]=$! ;;
        *) echo "unknown proxy $p" >&2; exit 2 ;;
    esac
done

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/100b" && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; return 1; }
wait_port "$UPSTREAM_PORT"
for p in $PROXIES; do wait_port "${PORT[$p]}"; done
if [[ " $SCENARIOS " == *" cache-hit "* ]]; then
    # warm each cache, and show that the second answer is a hit
    for p in $PROXIES; do
        curl -s -o /dev/null "http://127.0.0.1:${PORT[$p]}/cached/1k"
        echo "$p /cached/1k: $(curl -s -D - -o /dev/null "http://127.0.0.1:${PORT[$p]}/cached/1k" | grep -i '^cache-status' | tr -d '\r')" >&2
    done
fi

path_of() { case $1 in ka-100b|new-conn|tls-new-conn) echo /100b ;; ka-1k|tls-ka-1k) echo /1k ;; ka-16k) echo /16k ;; ka-256k) echo /256k ;; cache-hit) echo /cached/1k ;; esac; }
extra_of() { case $1 in new-conn|tls-new-conn) echo "-H Connection:close" ;; *) echo "" ;; esac; }
url_of() { # scenario proxy
    case $1 in
        tls-*) echo "https://127.0.0.1:${TLS_PORT[$2]}$(path_of "$1")" ;;
        *) echo "http://127.0.0.1:${PORT[$2]}$(path_of "$1")" ;;
    esac
}


RESULTS=$WORK/results.jsonl
for round in $(seq "$ROUNDS"); do
    for s in $SCENARIOS; do
        for p in $PROXIES; do
            url=$(url_of "$s" "$p")
            # shellcheck disable=SC2046
            before=$(cpu_ticks "${MAINPID[$p]}")
            line=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" $(extra_of "$s") \
                   -s loadtest/wrk/report.lua "$url" | grep '^JSON ' | sed 's/^JSON //')
            after=$(cpu_ticks "${MAINPID[$p]}")
            echo "{\"round\":$round,\"scenario\":\"$s\",\"proxy\":\"$p\",\"proxy_cpu_s\":$(python3 -c "print(($after-$before)/$HZ)"),$line}" | tee -a "$RESULTS" >&2
        done
    done
done

mkdir -p loadtest/results
python3 loadtest/summarize.py "$RESULTS" loadtest/results/latest.json loadtest/results/latest.md \
    "rounds=$ROUNDS duration=${DURATION}s conns=$CONNS proxy_cpu=$PROXY_CPU load_cpu=$LOAD_CPU"
cat loadtest/results/latest.md
