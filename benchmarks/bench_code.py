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

from _result import result  # noqa: E402 - benchmarks/ is the script's own folder

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
    cpu_ours, cpu_raw = cpu_view(tasks, programs, py)
    print(f"  CPU-time view (one worker; CPU seconds of every process, sandboxes included): pooled "
          f"{1000 * cpu_ours:.2f} ms/program = {cpus / cpu_ours:.0f} programs/s on {cpus} CPUs; raw "
          f"{1000 * cpu_raw:.2f} ms/program = {cpus / cpu_raw:.0f}/s; ratio {cpu_raw / cpu_ours:.2f}")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result(
        "code_verify",
        f"humaneval_canonical_{n}x{repeat}_{cpus}cpu_{workers}w",
        round(med["pooled"], 1),
        round(med["raw"], 1),
        "programs/s",
        "raw python -c subprocess (no sandbox)",
        round(rss, 1),
        fresh=round(med["fresh"], 1),
        cpu_view_ours=round(cpus / cpu_ours, 1),
        cpu_view_baseline=round(cpus / cpu_raw, 1),
    )


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (their own and their reaped children's), from /proc."""
    total, stack, tick = 0, [pid], os.sysconf("SC_CLK_TCK")
    while stack:
        p = stack.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            for task in os.listdir(f"/proc/{p}/task"):
                stack += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]  # noqa: SIM115
        except OSError:
            continue
    return total / tick


def cpu_view(tasks: list[CodeTask], programs: list[str], py: str) -> tuple[float, float]:
    """CPU seconds per program, ours (one pooled sandbox, read from /proc before it closes) and raw (the
    children's rusage): steadier than wall-clock rates on a shared machine."""
    from curate.verify.code import CodeConfig, run_code
    from curate.verify.zygote import ZygotePool

    def me() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    cfg = CodeConfig()
    with ZygotePool(cfg) as pool:
        run_code(tasks[0].response, tests=tasks[0].tests, entry_point=tasks[0].entry_point, io_tests=None,
                 setup=tasks[0].setup, config=cfg, pool=pool)  # fmt: skip
        zpid = pool._local.zygote.proc.pid
        c0, m0 = _tree_cpu(zpid), me()
        for t in tasks:
            run_code(t.response, tests=t.tests, entry_point=t.entry_point, io_tests=None, setup=t.setup,
                     config=cfg, pool=pool)  # fmt: skip
        ours = (_tree_cpu(zpid) - c0 + me() - m0) / len(tasks)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for prog in programs:
        subprocess.run([py, "-I", "-S", "-B", "-c", prog], capture_output=True, env={})
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    raw = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / len(programs)
    return ours, raw


if __name__ == "__main__":
    main()
