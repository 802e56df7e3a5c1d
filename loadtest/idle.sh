#!/usr/bin/env bash
# Memory per idle keep-alive connection: each proxy gets N connections that each made
# one request and then stay open; RSS growth (proxy and its children) ÷ N.
#   N=10000 loadtest/idle.sh          (HAProxy is capped at its maxconn, 8000 here)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
PROXIES=${PROXIES:-"turnpike nginx haproxy"}
UP=18180
declare -A PORT=([turnpike]=18181 [nginx]=18182 [haproxy]=18183)
declare -A CAP=([turnpike]=$N [nginx]=$N [haproxy]=$(( N < 7900 ? N : 7900 )))
ulimit -n 20000
. loadtest/lib.sh
cargo build --release --quiet
lt_init idle
lt_upstream "${LOAD_CPU:-1}"
declare -A MAIN
for p in $PROXIES; do
    case $p in
        turnpike) lt_render loadtest/peers/turnpike.toml "${PORT[$p]}" "$WORK/t.toml"
                  target/release/turnpike run -c "$WORK/t.toml" 2>/dev/null & ;;
        nginx) lt_render loadtest/peers/nginx-proxy.conf "${PORT[$p]}" "$WORK/n.conf"
               "$NGINX" -c "$WORK/n.conf" -p "$WORK" & ;;
        haproxy) lt_render loadtest/peers/haproxy.cfg "${PORT[$p]}" "$WORK/h.cfg"
                 "$HAPROXY" -db -f "$WORK/h.cfg" 2>/dev/null & ;;
    esac
    LT_PIDS+=($!); MAIN[$p]=$!
done
sleep 1
rss_kib() { local t=0 pid; for pid in "$1" $(pgrep -P "$1" || true); do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0))); done; echo "$t"; }
echo "| proxy | connections | RSS before | RSS with them open | per connection |"
echo "|---|---:|---:|---:|---:|"
for p in $PROXIES; do
    before=$(rss_kib "${MAIN[$p]}")
    after=$(python3 - "${PORT[$p]}" "${CAP[$p]}" "${MAIN[$p]}" <<'PY'
import socket, sys, time, os
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
req = b"GET /100b HTTP/1.1\r\nHost: idle\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got or len(got) < 100:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"connection {i} closed")
        got += chunk
    socks.append(s)
time.sleep(1.0)
def rss(p):
    total = 0
    pids = [p] + os.popen(f"pgrep -P {p}").read().split()
    for q in pids:
        try:
            for line in open(f"/proc/{q}/status"):
                if line.startswith("VmRSS"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total
print(rss(pid))
for s in socks:
    s.close()
PY
)
    python3 -c "print(f'| $p | ${CAP[$p]} | {$before/1024:.1f} MiB | {$after/1024:.1f} MiB | {($after-$before)/${CAP[$p]}:.1f} KiB |')"
done
