"""Throughput of the code verifier on HumanEval, against plain unsandboxed subprocesses.

Both sides run the same 164 programs (prompt + canonical solution + tests + ``check(entry_point)``) with
the same thread pool on the same CPUs. The baseline is the raw process cost: ``python -I -S -B -c
program`` with an empty environment, no sandbox, no limits, exit status as the verdict. Ours is
``run_code_batch``: answer extraction, bubblewrap start, harness, confined child, nonce-checked verdict.

    python benchmarks/bench_code.py --cpus 2 --repeat 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
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
    ap.add_argument("--repeat", type=int, default=3, help="passes over the 164 programs per side")
    args = ap.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
    cpus = len(os.sched_getaffinity(0))
    workers = args.workers or 2 * cpus
    if (why := sandbox_error()) is not None:
        sys.exit(f"sandbox unusable: {why}")

    with gzip.open(str(files("curate") / "data/benchmarks/humaneval.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for line in f]
    tasks = [CodeTask(f"<think>.</think>\n```python\n{r['prompt']}{r['canonical_solution']}\n```",
                      r["test"], r["entry_point"]) for r in rows]  # fmt: skip
    programs = [
        f"{r['prompt']}{r['canonical_solution']}\n{r['test']}\ncheck({r['entry_point']})\n" for r in rows
    ]
    py = os.path.realpath(sys.executable)

    def raw(program: str) -> bool:
        return (
            subprocess.run([py, "-I", "-S", "-B", "-c", program], capture_output=True, env={}).returncode == 0
        )

    cfg = CodeConfig(workers=workers)
    best_ours = best_raw = 0.0
    for i in range(args.repeat):  # interleaved, so background load hits both sides alike
        t = time.perf_counter()
        results = run_code_batch(tasks, cfg)
        ours = len(tasks) / (time.perf_counter() - t)
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            ok = list(pool.map(raw, programs))
        base = len(programs) / (time.perf_counter() - t)
        passed = sum(bool(r.passed) for r in results)
        print(f"pass {i + 1}: sandboxed {ours:6.1f} programs/s ({passed}/164 pass)   "
              f"raw subprocess {base:6.1f} programs/s ({sum(ok)}/164 pass)")  # fmt: skip
        best_ours, best_raw = max(best_ours, ours), max(best_raw, base)
    print(f"\nHumanEval canonical, {cpus} CPUs, {workers} workers, best of {args.repeat}:")
    print(f"  curate run_code_batch (bwrap sandbox): {best_ours:6.1f} programs/s")
    print(f"  baseline raw `python -c` subprocess:   {best_raw:6.1f} programs/s")
    print(f"  ratio sandboxed/raw: {best_ours / best_raw:.2f}  (target: >= 50 programs/s on 2 CPUs)")


if __name__ == "__main__":
    main()
