#!/usr/bin/env bash
# Throttle accuracy at full speed: turnpike (release, 2 workers) with a stage throttle
# of RATE/s and BURST, wrk offering as much as it can (far above RATE) for SECONDS
# over 64 connections; admitted should be RATE × duration + BURST (± 5%).
#   RATE=20000 BURST=1000 DURATION=5 loadtest/throttle-accuracy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20000} BURST=${BURST:-1000} DURATION=${DURATION:-5} PORT=18097
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
WORK=$(mktemp -d /tmp/turnpike-acc.XXXXXX)
cat > "$WORK/t.toml" <<TOML
[gateway]
listen  = ["127.0.0.1:$PORT"]
admin   = ""
workers = 2
[apis.a.routes."GET /x"]
integration = { type = "mock", body = "x" }
[stages.s]
api = "a"
throttle = { rate = $RATE, burst = $BURST }
TOML
target/release/turnpike run -c "$WORK/t.toml" 2>"$WORK/log" & PID=$!
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/nothing" && break; sleep 0.1; done
# the readiness probe hit no throttled route, so the bucket is still full
line=$(wrk -t2 -c64 -d"${DURATION}s" -s loadtest/wrk/status.lua "http://127.0.0.1:$PORT/x" | grep '^STATUS')
echo "$line"
python3 - "$line" "$RATE" "$BURST" <<'PY'
import sys
f = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
ok, thr, dur = int(f["ok"]), int(f["throttled"]), int(f["duration_us"]) / 1e6
rate, burst = float(sys.argv[2]), float(sys.argv[3])
expected = rate * dur + burst
print(f"offered {(ok + thr) / dur:,.0f} req/s for {dur:.2f} s; admitted {ok:,}, expected {expected:,.0f} "
      f"({(ok - expected) / expected * 100:+.2f}%), refused {thr:,}, other {f['other']}")
PY
