#!/usr/bin/env python3
"""Medians over rounds per (scenario, proxy), with each proxy's ratio to turnpike."""
import json
import statistics
import sys

src, out_json, out_md, settings = sys.argv[1:5]
rows = [json.loads(l) for l in open(src) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["scenario"], r["proxy"]), []).append(r)

scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
proxies = list(dict.fromkeys(r["proxy"] for r in rows))
summary = []
for s in scenarios:
    base = None
    for p in proxies:
        runs = by.get((s, p), [])
        if not runs:
            continue
        med = lambda k: statistics.median(x[k] for x in runs)
        item = {
            "scenario": s, "proxy": p, "rounds": len(runs),
            "rps": med("rps"), "p50_us": med("p50_us"), "p99_us": med("p99_us"), "p999_us": med("p999_us"),
            "errors": sum(x["errors"] + x["non2xx"] for x in runs),
            # requests served per second of the proxy's own CPU time
            "rps_per_core": statistics.median(x["requests"] / x["proxy_cpu_s"] for x in runs if x.get("proxy_cpu_s")) if any(x.get("proxy_cpu_s") for x in runs) else 0,
            "proxy_cpu_util": statistics.median(x.get("proxy_cpu_s", 0) / (x["duration_us"] / 1e6) for x in runs),
            "rps_each_round": [x["rps"] for x in runs],
        }
        if p == "turnpike":
            base = item["rps"]
        summary.append(item)
    for item in summary:
        if item["scenario"] == s:
            item["ratio_to_turnpike"] = (item["rps"] / base) if base else None
            b = next((x for x in summary if x["scenario"] == s and x["proxy"] == "turnpike"), None)
            item["per_core_ratio_to_turnpike"] = (item["rps_per_core"] / b["rps_per_core"]) if b and b["rps_per_core"] else None

json.dump({"settings": settings, "results": summary, "raw": rows}, open(out_json, "w"), indent=1)
with open(out_md, "w") as f:
    f.write(f"Settings: {settings}. Medians over rounds; ratio = proxy ÷ turnpike (below 1.00: turnpike ahead).\n")
    f.write("req/CPU-s = requests per second of the proxy's own CPU time; CPU = share of its core it used.\n\n")
    f.write("| scenario | proxy | req/s | p50 | p99 | p99.9 | errors | ratio | req/CPU-s | CPU | ratio per CPU |\n")
    f.write("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    ms = lambda us: f"{us / 1000:.2f} ms"
    for i in summary:
        ratio = f"{i['ratio_to_turnpike']:.2f}" if i.get("ratio_to_turnpike") else "—"
        pc = f"{i['per_core_ratio_to_turnpike']:.2f}" if i.get("per_core_ratio_to_turnpike") else "—"
        f.write(f"| {i['scenario']} | {i['proxy']} | {i['rps']:,.0f} | {ms(i['p50_us'])} | {ms(i['p99_us'])} | {ms(i['p999_us'])} | {i['errors']} | {ratio} | {i['rps_per_core']:,.0f} | {i['proxy_cpu_util']:.0%} | {pc} |\n")
