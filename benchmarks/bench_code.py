"""Throughput of the code verifier on HumanEval, against plain unsandboxed subprocesses.

All sides run the same 164 programs (prompt + canonical solution + tests + ``check(entry_point)``) with
the same number of threads on the same CPUs. The baseline is the raw process cost: ``python -I -S -B -c
program`` with an empty environment, no sandbox, no limits, exit status as the verdict. Ours is
``run_code_batch``: answer extraction, sandbox, runner, driver running the tests (with the prompt as
trusted ``test_setup``) against a candidate process over a pipe, token-checked verdict, in both
modes: "pooled" (one pre-started sandbox per worker, emptied and checked between programs; the start of
those sandboxes is inside the timing) and "fresh" (one bwrap + interpreter per program).

    python benchmarks/bench_code.py --cpus 2 --repeat 5      # --quick: 2 passes over 82 programs
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

from curate.verify.code import CodeConfig, CodeTask, run_code_batch
from curate.verify.sandbox import sandbox_error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", type=int, default=2, help="pin the run to this many CPUs (0 = all)")
    ap.add_argument("--workers", type=int, default=0, help="parallel programs (0 = 2 x CPUs)")
    ap.add_argument("--repeat", type=int, default=5, help="passes over the programs per side")
    ap.add_argument("--quick", action="store_true", help="half of HumanEval, 2 passes")
    args = ap.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
    cpus = len(os.sched_getaffinity(0))
    workers = args.workers or 2 * cpus
    repeat = 2 if args.quick else args.repeat
    if (why := sandbox_error()) is not None:
        sys.exit(f"sandbox unusable: {why}")

    with gzip.open(str(files("curate") / "data/benchmarks/humaneval.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for line in f]
    rows = rows[::2] if args.quick else rows
    n = len(rows)
    tasks = [CodeTask(f"<think>.</think>\n```python\n{r['prompt']}{r['canonical_solution']}\n```",
                      r["test"], r["entry_point"], setup=r["prompt"]) for r in rows]  # fmt: skip
    programs = [f"{r['prompt']}{r['canonical_solution']}\n{r['test']}\ncheck({r['entry_point']})\n" for r in rows]
    py = os.path.realpath(sys.executable)

    def raw(program: str) -> bool:
        return subprocess.run([py, "-I", "-S", "-B", "-c", program], capture_output=True, env={}).returncode == 0

    def ours(mode: str) -> tuple[float, int]:
        t = time.perf_counter()
        results = run_code_batch(tasks, CodeConfig(workers=workers, mode=mode))
        return n / (time.perf_counter() - t), sum(bool(r.passed) for r in results)

    def baseline() -> tuple[float, int]:
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            ok = list(pool.map(raw, programs))
        return n / (time.perf_counter() - t), sum(ok)

    rates: dict[str, list[float]] = {"pooled": [], "fresh": [], "raw": []}
    for i in range(repeat):  # interleaved, so background load hits every side alike
        line = []
        for name, fn in (("pooled", lambda: ours("pooled")), ("fresh", lambda: ours("fresh")),
                         ("raw", baseline)):  # fmt: skip
            rate, passed = fn()
            rates[name].append(rate)
            line.append(f"{name} {rate:6.1f}/s ({passed}/{n})")
            if passed != n:
                sys.exit(f"{name}: only {passed}/{n} canonical solutions passed")
        print(f"pass {i + 1}: " + "   ".join(line), flush=True)

    def show(name: str) -> str:
        r = rates[name]
        return f"best {max(r):6.1f}  median {statistics.median(r):6.1f}  worst {min(r):6.1f} programs/s"

    load = os.getloadavg()[0]
    print(f"\nHumanEval canonical ({n} programs), {cpus} CPUs, {workers} workers, {repeat} passes, "
          f"load average {load:.1f}:")  # fmt: skip
    print(f"  curate pooled (zygote per worker): {show('pooled')}")
    print(f"  curate fresh (bwrap per program):  {show('fresh')}")
    print(f"  baseline raw `python -c`:          {show('raw')}")
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"  median ratios: pooled/raw {med['pooled'] / med['raw']:.2f}   fresh/raw {med['fresh'] / med['raw']:.2f}"
        f"   pooled/fresh {med['pooled'] / med['fresh']:.2f}   (target: pooled >= 150 programs/s on 2 CPUs)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "stage": "code_verify", "workload": f"humaneval_canonical_{n}x{repeat}_{cpus}cpu_{workers}w",
        "ours": round(med["pooled"], 1), "baseline": round(med["raw"], 1), "unit": "programs/s",
        "baseline_name": "raw python -c subprocess (no sandbox)",
        "ratio": round(med["pooled"] / med["raw"], 3), "peak_rss_mb": round(rss, 1),
        "fresh": round(med["fresh"], 1),
    }  # fmt: skip
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
