#!/usr/bin/env bash
# Load a deployment you operate: wrk at full speed, or oha at a constant rate.
#   loadtest/target.sh --target URL [--duration SECONDS] [--connections N] [--rate RPS]
set -euo pipefail
TARGET= DURATION=30 CONNS=64 RATE=
while [ $# -gt 0 ]; do
    case $1 in
        --target) TARGET=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$TARGET" ] || { echo "usage: $0 --target URL [--duration S] [--connections N] [--rate RPS]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "$RATE" ]; then
    command -v oha >/dev/null || cargo install oha --locked   # (without --locked it needs a newer rustc)
    oha -z "${DURATION}s" -c "$CONNS" -q "$RATE" --latency-correction --no-tui "$TARGET"
else
    command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/wrk/report.lua" "$TARGET"
fi
