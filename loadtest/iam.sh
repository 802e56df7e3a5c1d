#!/usr/bin/env bash
# An IAM (SigV4) route against the same route open, side by side: wrk, 64 keep-alive
# connections, one GET signed by botocore's SigV4Auth (the same signature on every
# request, which a real client would not send, but the verification does the same
# work for each: canonical request, string to sign, HMAC, policy), 100-byte answers
# from an nginx upstream. nginx and HAProxy have no SigV4 to compare with.
#
#   loadtest/iam.sh                    3 rounds of 10 s (the signature must stay
#                                      inside AWS's 5-minute window: keep it short)
#
# turnpike on PROXY_CPU (one worker), wrk and the upstream on LOAD_CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
UP=18400 TP=18401
source loadtest/lib.sh
cargo build --release --quiet
lt_init iam
lt_upstream "$LOAD_CPU"
cat > "$WORK/turnpike.toml" <<TOML
[gateway]
listen = ["127.0.0.1:$TP"]
admin = ""
workers = 1
[iam.users.bench]
access_key = "AKIDBENCH"
secret = "bench-secret"
policy = '{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:b/b/*"}]}'
[apis.b.routes."GET /open/{p+}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:$UP/{p}" }
[apis.b.routes."GET /iam/{p+}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:$UP/{p}" }
auth = "iam"
[stages.b]
api = "b"
TOML
taskset -c "$PROXY_CPU" target/release/turnpike run -c "$WORK/turnpike.toml" 2> "$WORK/turnpike.log" & LT_PIDS+=($!); TPPID=$!
lt_wait "http://127.0.0.1:$UP/100b"
lt_wait "http://127.0.0.1:$TP/open/100b"
DEPS=target/pydeps/loadtest-iam
[ -e "$DEPS/.installed" ] || { python3 -m pip install -q --disable-pip-version-check --target "$DEPS" botocore && touch "$DEPS/.installed"; }
# the signed request's headers, one per line
PYTHONPATH=$DEPS python3 - "http://127.0.0.1:$TP/iam/100b" > "$WORK/headers" <<'PY'
import sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
r = AWSRequest(method="GET", url=sys.argv[1])
SigV4Auth(Credentials("AKIDBENCH", "bench-secret"), "execute-api", "us-east-1").add_auth(r)
for k, v in r.prepare().headers.items():
    print(f"{k}: {v}")
PY
H=()
while IFS= read -r line; do H+=(-H "$line"); done < "$WORK/headers"
code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$TP/iam/100b")
[ "$code" = 200 ] || { echo "the signed request answered $code" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TP/iam/100b")
[ "$code" = 403 ] || { echo "an unsigned request answered $code" >&2; exit 1; }
RES=$WORK/res.tsv
for round in $(seq "$ROUNDS"); do
    for scen in open iam; do
        m=$(lt_wrk "$TPPID" -t1 -c"$CONNS" -d"${DURATION}s" "${H[@]}" "http://127.0.0.1:$TP/$scen/100b")
        printf '%s\t%s\t%s\n' "$round" "$scen" "$m" | tee -a "$RES"
    done
done
python3 - "$RES" "$HZ" "rounds=$ROUNDS duration=${DURATION}s conns=$CONNS" <<'PY'
import sys, statistics, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
hz = int(sys.argv[2])
by = collections.defaultdict(list)
for r, scen, rps, reqs, ticks, bad in rows:
    by[scen].append((float(rps), int(reqs) / (max(int(ticks), 1) / hz), int(bad)))
print(f"Settings: {sys.argv[3]}; medians over rounds\n")
print("| route | req/s | req per CPU-s | non-2xx | vs the open route (req/s, per CPU-s) |")
print("|---|---:|---:|---:|---|")
med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), sum(x[2] for x in v)) for k, v in by.items()}
for scen in ["open", "iam"]:
    rps, pc, bad = med[scen]
    print(f"| {scen} | {rps:,.0f} | {pc:,.0f} | {bad} | {rps / med['open'][0]:.2f}, {pc / med['open'][1]:.2f} |")
PY
