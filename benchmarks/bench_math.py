"""Math verification throughput: curate.verify.verify_math vs plain single-process math-verify.

Two workloads, each with model-like R1 responses (reasoning in <think>, then a summary with a boxed
answer), about half correct, the rest wrong:

- MATH-500: gold answers of MATH-500 (numbers, fractions, radicals, tuples, intervals, sets, matrices,
  polynomials, equations, words); correct answers are the gold or an equivalent form (spacing, \\dfrac,
  a/b, decimals, "x = ..."); wrong ones change one number, flip a sign (of the answer, or of one entry of
  a tuple/interval/set), or answer another problem.
- GSM8K: the integer answers of GSM8K test; correct forms "18", "18.00", "\\$18", "18 \\text{ dollars}",
  "x = 18"; wrong ones are off by a little or another problem's answer.

The baseline is what a plain reward function does per pair: parse the gold, parse the answer part,
verify. Ours runs the same pairs through verify_math (fast path, cached gold parses, worker pool). The
pool is started before timing (a one-time cost, reported apart); the workers' parse caches start cold.
Pairs repeat as in GRPO groups (the same answer drawn several times); a second figure runs only the
distinct pairs, on a fresh pool, so that in-batch deduplication is not what is measured.

    python benchmarks/bench_math.py [--pairs 4000] [--baseline-pairs 1000] [--workers 0] [--workload math500|gsm8k|both]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import time
from importlib.resources import files

from _result import result  # noqa: E402 - benchmarks/ is the script's own folder

REASONING = (
    "Let me set up the problem. We have the given quantities, so I will substitute them and "
    "simplify "
    "step by step, checking each intermediate result. "
) * 3


def _bump(gold: str, rng: random.Random) -> str:
    """A near miss: one number in the answer changed (the commonest wrong answer)."""
    nums = list(re.finditer(r"\d+", gold))
    if not nums:
        return "-" + gold if not gold.startswith("-") else gold[1:]
    m = rng.choice(nums)
    return gold[: m.start()] + str(int(m.group()) + rng.choice([-2, -1, 1, 2, 10])) + gold[m.end() :]


_STRUCTURED = ("(", "[", "\\{", "\\left", "\\begin", "\\text")


def _flip(gold: str) -> str:
    """A sign slip: of a value, or of the first entry of a tuple/interval/set/matrix (as a model would)."""
    if not gold.startswith(_STRUCTURED):
        return gold[1:] if gold.startswith("-") else "-" + gold
    m = re.search(r"-?\d", gold)
    if m is None:
        return gold + "+1"
    i = m.start()
    return gold[:i] + gold[i + 1 :] if gold[i] == "-" else gold[:i] + "-" + gold[i:]


def variants(gold: str, rng: random.Random, golds: list[str]) -> list[tuple[str, bool]]:
    """Model-like answers for one gold: (answer, expected correct); about half are correct."""
    right = {gold, gold.replace(" ", ""), gold.replace("\\frac", "\\dfrac")}
    right.add(gold.replace("^\\circ", ""))
    frac = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", gold)
    if frac:
        right.add(f"{frac[1]}{frac[2]}/{frac[3]}")
        if 10**6 % int(frac[3]) == 0:
            right.add(str(int(frac[2]) / int(frac[3]) * (-1 if frac[1] else 1)))
    if re.fullmatch(r"-?\d+", gold):
        right |= {f"x = {gold}", f"{gold}.0"}
    wrong = {_bump(gold, rng), _bump(gold, rng), rng.choice(golds), _flip(gold)} - {gold}
    return [(a, True) for a in rng.sample(sorted(right), min(2, len(right)))] + [
        (a, False) for a in rng.sample(sorted(wrong), min(2, len(wrong)))
    ]


def response(answer: str) -> str:
    summary = "Combining the cases gives the result.\n\nThe final answer is"
    return f"<think>\n{REASONING}\n</think>\n{summary} $\\boxed{{{answer}}}$."


def gsm8k_variants(gold: str, rng: random.Random, golds: list[str]) -> list[tuple[str, bool]]:
    """GSM8K-style answers: an integer written as models write it, or a near miss."""
    right = [gold, f"{gold}.00", f"\\${gold}", f"{gold} \\text{{ dollars}}", f"x = {gold}", f"{int(gold):,}"]
    wrong = {str(int(gold) + d) for d in (-10, -1, 1, 2)} | {rng.choice(golds)}
    wrong.discard(gold)
    return [(a, True) for a in rng.sample(right, 2)] + [(a, False) for a in rng.sample(sorted(wrong), 2)]


def _golds(workload: str) -> list[str]:
    if workload == "gsm8k":
        path = files("curate").joinpath("data/benchmarks/gsm8k_test.jsonl")
        golds = [
            json.loads(x)["answer"].rsplit("####", 1)[1].strip().replace(",", "") for x in path.read_text().splitlines()
        ]
        return [g for g in golds if re.fullmatch(r"-?\d+", g)]
    path = files("curate").joinpath("data/benchmarks/math500.jsonl")
    return [json.loads(x)["answer"] for x in path.read_text().splitlines()]


def make_pairs(n: int, seed: int = 0, workload: str = "math500") -> list[tuple[str, str]]:
    golds = _golds(workload)
    make = gsm8k_variants if workload == "gsm8k" else variants
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        g = rng.choice(golds)
        pairs += [(g, response(a)) for a, _ in make(g, rng, golds)]
    return pairs[:n]


def baseline(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for gold, resp in pairs:
        answer = resp.rsplit("</think>", 1)[1]
        out.append(bool(verify(parse("$" + gold + "$"), parse(answer))))
    return out


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by this process and the live worker processes ``pids``."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:  # fields 14 and 15: utime, stime (after the "(comm)" field)
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _timed(pairs: list[tuple[str, str]], workers: int) -> tuple[float, float, float, list[object]]:
    """(pool start s, verification wall s, verification CPU s, results) on a fresh, started pool."""
    from curate.verify import MathConfig, fast_eval, fast_struct, math_equiv, verify_math
    from curate.verify.pool import get_pool, shutdown_pools

    for cached in (fast_eval.value, fast_struct.parse, math_equiv.parse_gold, math_equiv._parse):
        cached.cache_clear()  # this process's parse caches start cold too, in each timed pass
    shutdown_pools()
    cfg = MathConfig(workers=workers)
    t = time.perf_counter()
    pool = get_pool(workers)
    pool.run([("1", ("1",))], cfg.timeout_s)
    start_s = time.perf_counter() - t
    pids = [w.proc.pid for w in pool._workers]
    cpu0 = _cpu(pids)
    t = time.perf_counter()
    results = verify_math([r for _, r in pairs], [g for g, _ in pairs], cfg)
    wall = time.perf_counter() - t
    cpu = _cpu(pids) - cpu0  # measured before shutdown: the workers' own clocks, start-up excluded
    shutdown_pools()
    return start_s, wall, cpu, list(results)


def run(workload: str, n_pairs: int, n_base: int, workers: int) -> None:
    from curate.verify.pool import default_workers

    pairs = make_pairs(n_pairs, workload=workload)
    distinct = list(dict.fromkeys((g, r.rsplit("</think>", 1)[1]) for g, r in pairs))
    distinct_pairs = [(g, "<think>" + REASONING + "</think>" + a) for g, a in distinct]

    start_s, ours_s, ours_cpu, ours = _timed(pairs, workers)
    _, dist_s, dist_cpu, _ = _timed(distinct_pairs, workers)

    sub = pairs[:n_base]
    t, c = time.perf_counter(), time.process_time()
    base = baseline(sub)
    base_s, base_cpu = time.perf_counter() - t, time.process_time() - c

    ours_rate, dist_rate, base_rate = len(pairs) / ours_s, len(distinct) / dist_s, len(sub) / base_s
    agree = sum((r.status == "correct") == b for r, b in zip(ours, base, strict=False))  # type: ignore[attr-defined]
    statuses: dict[str, int] = {}
    for r in ours:
        statuses[r.status] = statuses.get(r.status, 0) + 1  # type: ignore[attr-defined]
    name = "MATH-500" if workload == "math500" else "GSM8K"
    print(
        f"== {name}-style pairs: {len(pairs)} ({len(distinct)} distinct), workers: {workers or default_workers()}, "
        f"pool start: {start_s:.2f} s (once per process)"
    )
    print(f"statuses: {statuses}")
    print(f"baseline math-verify (1 process): {base_rate:8.0f} pairs/s  ({len(sub)} pairs, {base_s:.2f} s)")
    print(f"curate verify_math, all pairs:    {ours_rate:8.0f} pairs/s  ({len(pairs)} pairs, {ours_s:.2f} s)")
    n_dist = len(distinct)
    print(f"curate verify_math, distinct:     {dist_rate:8.0f} pairs/s  ({n_dist} pairs, {dist_s:.2f} s)")
    print(
        f"speedup: {ours_rate / base_rate:.2f}x (distinct only: {dist_rate / base_rate:.2f}x); "
        f"verdicts agree with math-verify on {agree}/{len(sub)}"
    )
    # On a shared machine wall time depends on other load; CPU time does much less. The per-2-core figure
    # is pairs / (CPU seconds / 2): what two otherwise idle cores would do.
    w = workers or default_workers()
    print(
        f"CPU-time view: baseline {len(sub) / base_cpu:.0f} pairs/CPU-s; "
        f"ours {len(pairs) / ours_cpu * w:.0f} pairs/s on {w} cores "
        f"(distinct only {len(distinct) / dist_cpu * w:.0f}); "
        f"ratio {len(pairs) / ours_cpu * w / (len(sub) / base_cpu):.2f}x"
    )
    # The first (cold) pass over all pairs is the headline; the distinct-only pass runs with warm caches.
    result(
        "math verify",
        f"{len(pairs)} {name}-style pairs ({n_dist} distinct)",
        ours_rate,
        base_rate,
        "pairs/s",
        "math-verify parse+verify, 1 process",
        distinct_warm_rate=dist_rate,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--baseline-pairs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--workload", choices=["math500", "gsm8k", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="1000 pairs, 300 baseline pairs")
    args = ap.parse_args()
    if args.quick:
        args.pairs, args.baseline_pairs = 1000, 300
    for workload in ("math500", "gsm8k") if args.workload == "both" else (args.workload,):
        run(workload, args.pairs, args.baseline_pairs, args.workers)


if __name__ == "__main__":
    main()
