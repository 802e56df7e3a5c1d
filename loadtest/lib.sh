# Shared by the load-test scripts (sourced): a work directory and the processes
# started from it, both cleaned up on exit; config templates rendered; the nginx
# upstream started. Loopback only.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
LT_PIDS=()

# lt_init NAME: creates $WORK (readable by nginx's workers) with the fixed bodies.
lt_init() {
    WORK=$(mktemp -d "/tmp/turnpike-$1.XXXXXX")
    chmod 755 "$WORK"
    mkdir -p "$WORK/www"
    for n in 1 16 256; do head -c $((n * 1024)) /dev/zero | tr '\0' x > "$WORK/www/${n}k"; done
    trap 'for p in "${LT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
}

# lt_render TEMPLATE PROXY_PORT OUT: fills __DIR__, __UPSTREAM_PORT__ ($UP), __PROXY_PORT__.
lt_render() {
    sed -e "s|__DIR__|$WORK|g" -e "s|__UPSTREAM_PORT__|$UP|g" -e "s|__PROXY_PORT__|$2|g" \
        -e "s|__BODY100__|$(head -c 100 /dev/zero | tr '\0' a)|g" "$1" > "$3"
}

# lt_upstream CPU: the nginx upstream on port $UP, pinned to CPU.
lt_upstream() {
    lt_render "$(dirname "${BASH_SOURCE[0]}")/peers/upstream-nginx.conf" 0 "$WORK/up.conf"
    taskset -c "$1" "$NGINX" -c "$WORK/up.conf" -p "$WORK" & LT_PIDS+=($!)
}

# lt_wait URL [HEADER]: until URL answers (5 s at most).
lt_wait() {
    for _ in $(seq 50); do curl -sf -o /dev/null ${2:+-H "$2"} "$1" && return 0; sleep 0.1; done
    echo "$1 never answered" >&2
    return 1
}

# CPU time (clock ticks) of a proxy: its process (all threads) and its children
# (nginx's workers). Requests per proxy CPU-second is the fair figure when the load
# generator's core, not the proxy's, is the one that saturates.
cpu_ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        # fields 14 and 15: utime, stime (after the parenthesised command name)
        total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)

# lt_jwt DIR: writes DIR/jwks.json (one RSA key, kid k1) and prints an RS256 token for
# issuer https://issuer.example, audience bench, valid for two hours. PyJWT and
# cryptography are installed under target/pydeps/loadtest-jwt on first use.
lt_jwt() {
    local deps; deps="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/pydeps/loadtest-jwt"
    [ -e "$deps/.installed" ] || { python3 -m pip install -q --disable-pip-version-check --target "$deps" pyjwt cryptography && touch "$deps/.installed"; }
    PYTHONPATH=$deps python3 - "$1" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
d = sys.argv[1]
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())); j.update({"kid": "k1", "use": "sig"})
open(f"{d}/jwks.json", "w").write(json.dumps({"keys": [j]}))
print(jwt.encode({"iss": "https://issuer.example", "aud": "bench", "sub": "u", "exp": int(time.time()) + 7200}, k, algorithm="RS256", headers={"kid": "k1"}))
PY
}

# lt_wrk PID WRK-ARGS…: runs wrk on $LOAD_CPU against a proxy whose process is PID
# and prints "req/s<TAB>requests<TAB>proxy CPU ticks<TAB>non-2xx" for the run.
lt_wrk() {
    local pid=$1; shift
    local t0 t1 out rps reqs bad
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c "$LOAD_CPU" wrk "$@")
    t1=$(cpu_ticks "$pid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf '%s\t%s\t%s\t%s\n' "$rps" "$reqs" "$((t1 - t0))" "${bad:-0}"
}
