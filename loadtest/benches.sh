#!/usr/bin/env bash
# Every criterion bench in one command, then a table of medians (ns) from
# target/criterion. Extra arguments go to `cargo bench` (e.g. -- --measurement-time 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench "$@"
python3 - <<'PY'
import json, pathlib
rows = []
for est in sorted(pathlib.Path("target/criterion").glob("**/new/estimates.json")):
    name = str(est.parent.parent.relative_to("target/criterion"))
    if name.startswith("report"):
        continue
    ns = json.load(open(est))["median"]["point_estimate"]
    rows.append((name, ns))
print("| bench | median |\n|---|---:|")
for name, ns in rows:
    print(f"| {name} | {ns:,.1f} ns |" if ns < 1e4 else f"| {name} | {ns / 1e3:,.1f} µs |")
PY
