"""Run every benchmark and print one table: stage, workload, ours, baseline, ratio, peak RSS.

Each script prints ``RESULT {json}`` lines (stage, workload, ours, baseline, unit, baseline_name, ratio,
peak_rss_mb); this runner collects them. ``--quick`` uses small workloads (minutes, not tens of minutes).

    python benchmarks/run_all.py --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script, full-size arguments, quick arguments
SUITE: list[tuple[str, list[str], list[str]]] = [
    ("bench_check.py", ["--samples", "100000", "--gigabytes", "2"], ["--samples", "20000"]),
    ("bench_math.py", [], ["--quick"]),
    ("bench_code.py", [], ["--quick"]),
    ("bench_quality.py", [], ["--quick"]),
    ("bench_dedup.py", [], ["--quick"]),
    ("bench_generate.py", [], ["--quick"]),
    ("bench_scale.py", ["dedup"], ["dedup", "--docs", "30000", "--repeat", "1"]),
    ("bench_scale.py", ["check", "--repeat", "2"], ["check", "--samples", "4000", "--repeat", "1"]),
    ("bench_scale.py", ["rss"], ["rss", "--rows", "50000", "200000"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    for script, full, quick in SUITE:
        if args.only and script not in args.only:
            continue
        if not (HERE / script).exists():
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            rows.append(
                {
                    "stage": script,
                    "workload": f"FAILED rc={proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:80]}",
                }
            )
        rows.extend(found)
        print(f"# {script}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    from rich.console import Console
    from rich.table import Table

    t = Table(title="curate benchmarks")
    for col in ("stage", "workload", "ours", "baseline", "ratio", "peak RSS"):
        t.add_column(col, justify="left" if col in ("stage", "workload") else "right")

    def num(v: object, unit: str = "") -> str:
        return f"{v:,.0f} {unit}".strip() if isinstance(v, (int, float)) else "-"

    for r in rows:
        unit = str(r.get("unit", ""))
        ratio = r.get("ratio")
        base = f"{num(r.get('baseline'), unit)} ({r.get('baseline_name', '')})" if r.get("baseline") else "-"
        t.add_row(
            str(r["stage"]),
            str(r.get("workload", "")),
            num(r.get("ours"), unit),
            base,
            f"{ratio:.1f}x" if isinstance(ratio, (int, float)) else "-",
            num(r.get("peak_rss_mb"), "MB") if r.get("peak_rss_mb") else "-",
        )
    Console().print(t)


if __name__ == "__main__":
    main()
