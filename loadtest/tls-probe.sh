#!/usr/bin/env bash
# testssl.sh against turnpike's TLS listener: protocol versions, cipher suites, ALPN,
# certificate selection by SNI, and the known TLS vulnerabilities, as an operator's
# scanner sees them. Also asks openssl s_client for each protocol version directly.
#
#   loadtest/tls-probe.sh          writes loadtest/results/DATE-testssl.txt
#
# Installs testssl.sh and openssl (Debian packages) when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18443} PLAIN=${PLAIN:-18080}
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
command -v testssl >/dev/null || { apt-get update -qq && apt-get install -y -qq testssl.sh >/dev/null; }
source loadtest/lib.sh
lt_init tls-probe
cargo build --release -q
for kind in ec rsa; do
    case $kind in
        ec) key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
        rsa) key=(-newkey rsa:2048) ;;
    esac
    openssl req -x509 "${key[@]}" -nodes -days 2 -subj "/CN=$kind.test" \
        -addext "subjectAltName=DNS:$kind.test" \
        -keyout "$WORK/$kind.key" -out "$WORK/$kind.pem" 2>/dev/null
done
cat > "$WORK/turnpike.toml" <<TOML
[gateway]
listen = ["127.0.0.1:$PLAIN"]
workers = 1

[[gateway.tls]]
listen = "127.0.0.1:$PORT"
certs = [
  { hosts = ["ec.test"], cert = "$WORK/ec.pem", key = "$WORK/ec.key" },
  { hosts = ["rsa.test"], cert = "$WORK/rsa.pem", key = "$WORK/rsa.key" },
]

[apis.a.routes."GET /"]
integration = { type = "mock", body = "ok" }

[stages.prod]
api = "a"
TOML
target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!)
lt_wait "http://127.0.0.1:$PLAIN/"
# probes fail by design (refused versions): no exit on their status from here
set +e
OUT=loadtest/results/$(date +%Y-%m-%d)-testssl.txt
{
    echo "# TLS probe of turnpike $(git rev-parse --short HEAD) ($(date -u +%FT%TZ))"
    echo
    echo "## openssl s_client, one protocol version at a time (SNI ec.test)"
    for v in ssl3 tls1 tls1_1 tls1_2 tls1_3; do
        if out=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -servername ec.test "-$v" 2>&1); then
            echo "$v: accepted ($(grep -a -m1 -o 'Cipher is [^ ]*' <<<"$out" || echo '?'))"
        else
            why=$(grep -a -oE 'alert [a-z]+( [a-z]+)*|no protocols available|wrong version number|unknown option' <<<"$out" | head -1)
            echo "$v: refused (${why:-handshake failed})"
        fi
    done
    echo
    echo "## openssl s_client: SNI picks the certificate, ALPN"
    for sni in ec.test rsa.test; do
        subj=$(echo | openssl s_client -connect "127.0.0.1:$PORT" -servername "$sni" -alpn h2,http/1.1 2>/dev/null \
            | grep -a -E '^(subject=|ALPN protocol:)' | tr '\n' ' ')
        echo "$sni: $subj"
    done
    echo
    for sni in ec.test rsa.test; do
        echo "## testssl.sh --sneaky --fast (SNI $sni): protocols, ciphers, ALPN, vulnerabilities"
        # testssl connects by name: map the test names to loopback
        testssl --quiet --color 0 --sneaky --warnings off --ip 127.0.0.1 -p -E -s -f -U -S \
            "https://$sni:$PORT/" 2>&1 | sed -e 's/[[:space:]]*$//' | grep -v '^$' || true
        echo
    done
} > "$OUT"
echo "wrote $OUT"
