"""Sharded checks and staged dedup as processes, each beside a named baseline measured in the same run.

    python benchmarks/bench_scale.py check  --samples 20000           # every default check, 1 and 2 workers
    python benchmarks/bench_scale.py dedup  --docs 150000 --words 300 # curate dedup vs a datasketch loop
    python benchmarks/bench_scale.py rss    --rows 250000 1000000     # peak RSS does not grow with the input
    python benchmarks/bench_scale.py index  --rows 1000000 1000000    # nor with the cross-version index
    python benchmarks/bench_scale.py big    --gigabytes 2              # peak RSS of a 2 GB curate check
    python benchmarks/bench_scale.py capacity --samples 2000 --bytes 20000  # core-seconds per stage -> hours
    python benchmarks/bench_scale.py startup --repeat 8             # start-up: source vs byte-compiled

check: clean R1-style traces of ~8 KB (curate.testing.traces) as JSONL; ``curate check`` with every
default check (cold: --no-cache; then a warm rerun that finds every piece cached). Baseline: the same
command on the unsharded engine is gone, so the named baseline is ``polars.read_ndjson`` of the input
(read only: the floor of any JSONL tool), plus the per-check seconds the report gives (the profile).
dedup: random-word documents with 1% exact and 1% near copies; ``curate dedup`` end to end (JSONL in,
Parquet out, interpreter start included) vs datasketch ``MinHash.update_batch`` + ``MinHashLSH.insert``
per document on ``--baseline-docs`` of them, extrapolated (said so in the output).
startup: ``curate check`` on 10 rows (nearly all start-up) from two copies of this checkout, one
byte-compiled beforehand (``python -m compileall``), both with PYTHONDONTWRITEBYTECODE=1 (as on this box,
where an editable install is therefore compiled from source at every start).
rss: tiny rows; peak RSS of ``curate check --checks format`` and ``curate dedup`` at each size.
Each figure is the median of ``--repeat`` runs; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from _result import result  # noqa: E402 - benchmarks/ is the script's own folder

CURATE = [sys.executable, "-m", "curate.cli"]


# Runs the command and reports the peak RSS of its largest process (workers included) on stderr.
_PEAK = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print('PEAK', u.ru_maxrss, file=sys.stderr); print('CPU', u.ru_utime + u.ru_stime, file=sys.stderr); "
    "sys.exit(r.returncode)"
)


def run(cmd: list[str], kernels: bool = True) -> tuple[float, float, dict]:
    """(wall seconds, peak RSS MB of the command's largest process, its --json report); the report gets
    ``cpu_s``: the CPU seconds of the command and its workers (steadier than wall on a shared box).
    ``kernels=False``: with ``CURATE_KERNELS=0`` (the numpy/Polars references of the compiled passes)."""
    env = None if kernels else {**os.environ, "CURATE_KERNELS": "0"}
    # The previous run's files are still being written back to disk; left running, that writeback lands
    # in this run's time (150k documents: 3.9 s on tmpfs, 5.0 s on this VM's disk back to back, the same
    # 4.1-4.3 s on either after a sync). Every run starts with nothing dirty.
    os.sync()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr.decode()[-3000:]}")
    peak = [line for line in p.stderr.decode().splitlines() if line.startswith("PEAK ")]
    out = p.stdout.decode().strip().splitlines()
    rep = json.loads(out[-1]) if out and out[-1].startswith("{") else {}
    cpu = [line for line in p.stderr.decode().splitlines() if line.startswith("CPU ")]
    rep["cpu_s"] = float(cpu[-1].split()[1]) if cpu else 0.0
    return wall, int(peak[-1].split()[1]) / 1024 if peak else 0.0, rep


def traces(path: Path, n: int) -> None:
    from curate.testing.traces import make_trace

    rng = random.Random(0)
    with path.open("wb") as f:
        for i in range(n):
            f.write(
                orjson.dumps(
                    {
                        "prompt_id": f"p{i // 8}",
                        "task": "math",
                        "prompt": f"What is {i}?",
                        "response": make_trace(rng, 8192),
                        "reference": "42",
                        "finish_reason": "stop",
                    }
                )
                + b"\n"
            )


def bench_check(args: argparse.Namespace, work: Path) -> None:
    import polars as pl

    if args.against:
        return compare_check(args, work)
    inp = work / "traces.jsonl"
    traces(inp, args.samples)
    n = args.samples
    base = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        pl.read_ndjson(inp)
        base.append(time.perf_counter() - t0)
    b = statistics.median(base)
    print(f"baseline polars.read_ndjson (read only): {n / b:,.0f} samples/s")
    kernel_vs_reference(
        [*CURATE, "check", str(inp), "--out", str(work / "out.parquet"), "--no-cache", "--json"], n, "samples", args
    )
    for workers in (1, 2):
        walls, reps = [], []
        for _ in range(args.repeat):
            w, rss, rep = run(
                [
                    *CURATE,
                    "check",
                    str(inp),
                    "--out",
                    str(work / "out.parquet"),
                    "--no-cache",
                    "--workers",
                    str(workers),
                    "--json",
                ]
            )
            walls.append(w)
            reps.append(rep)
        w = statistics.median(walls)
        cpu = statistics.median(r["cpu_s"] for r in reps)
        print(
            f"curate check, every default check, {workers} worker(s): {n / w:,.0f} samples/s (median of "
            f"{args.repeat}: {', '.join(f'{x:.1f}s' for x in walls)}; ratio vs baseline {b / w:.2f}x); "
            f"{cpu:.1f} CPU-s, {n / cpu:,.0f} samples per CPU-second"
        )
        print(
            f"  profile (seconds summed over shards): {reps[-1].get('shards', {}).get('seconds')}; "
            f"stages {reps[-1].get('stages')}"
        )
        result(
            f"check (all default checks, {workers} worker(s))",
            f"{n:,} x 8 KB R1-style traces",
            n / w,
            n / b,
            "samples/s",
            "polars.read_ndjson",
            peak_rss_mb=rss,
        )
    cache = work / "cache"
    run([*CURATE, "check", str(inp), "--out", str(work / "a.parquet"), "--cache-dir", str(cache), "--json"])
    w, _, rep = run([*CURATE, "check", str(inp), "--out", str(work / "b.parquet"), "--cache-dir", str(cache), "--json"])
    print(f"warm rerun (every piece cached): {w:.1f}s, {n / w:,.0f} samples/s; computed {rep['shards']['computed']}")


def compare_check(args: argparse.Namespace, work: Path) -> None:
    """Interleaved runs of another checkout's ``curate check`` (``--against SRC``: the named baseline,
    e.g. ``git archive house src flows schemas``) and this one at 1 and 2 workers, same input."""
    inp = work / "traces.jsonl"
    traces(inp, args.samples)
    n = args.samples
    env_base = {**os.environ, "PYTHONPATH": str(Path(args.against).resolve())}
    # A baseline with a result cache (any checkout since [scale]) must not reuse its first run's pieces.
    helps = subprocess.run([*CURATE, "check", "--help"], capture_output=True, text=True, env=env_base).stdout
    base_flags = ["--no-cache"] if "--no-cache" in helps else []
    times: dict[str, list[float]] = {"baseline": [], "1 worker": [], "2 workers": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    outs = {name: work / f"{name.replace(' ', '_')}.parquet" for name in times}
    for _ in range(args.repeat):
        for name in times:  # alternating: a box whose speed drifts slows both sides alike
            cmd = [*CURATE, "check", str(inp), "--out", str(outs[name]), "--json"]
            if name != "baseline":
                cmd += ["--no-cache", "--workers", name[0]]
            else:
                cmd += base_flags
            os.sync()  # as in run(): the previous run's writeback stays out of this one's time
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env_base if name == "baseline" else None)
            times[name].append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    b = statistics.median(times["baseline"])
    print(
        f"baseline curate check at {args.against} : {n / b:,.0f} samples/s "
        f"({', '.join(f'{x:.1f}s' for x in times['baseline'])}; {statistics.median(cpu['baseline']):.2f} CPU-s)"
    )
    for name in ("1 worker", "2 workers"):
        w = statistics.median(times[name])
        runs = ", ".join(f"{x:.1f}s" for x in times[name])
        print(
            f"curate check (sharded), {name}: {n / w:,.0f} samples/s ({runs}; "
            f"{statistics.median(cpu[name]):.2f} CPU-s); RATIO vs baseline {b / w:.2f}x"
        )
        result(
            f"check (all default checks, {name})",
            f"{n:,} x 8 KB R1-style traces",
            n / w,
            n / b,
            "samples/s",
            f"curate check at {args.against} (--against)",
        )
    same_verdicts(outs["baseline"], outs["1 worker"])


def same_verdicts(baseline: Path, ours: Path) -> None:
    """Print whether two checked outputs give every row the same verdict, and which columns differ."""
    import polars as pl

    a, b = (pl.read_parquet(p).sort("sample_id") for p in (baseline, ours))
    if a.height != b.height or not a["sample_id"].equals(b["sample_id"]):
        print(f"VERDICTS: different rows ({a.height} against {b.height})")
        return
    reasons = a["reject_reasons"].list.sort() == b["reject_reasons"].list.sort()
    same = int((reasons & (a["accepted"] == b["accepted"])).sum())
    cols = [c for c in a.columns if c in b.columns and not a[c].equals(b[c])]
    print(
        f"VERDICTS: {same:,} of {a.height:,} rows with the same accepted and reject_reasons; "
        f"columns that differ: {', '.join(cols) or 'none'}; only one side: {sorted(set(a.columns) ^ set(b.columns))}"
    )


def kernel_vs_reference(cmd: list[str], n: int, unit: str, args: argparse.Namespace) -> None:
    """The command with the compiled passes and with their references (CURATE_KERNELS=0), interleaved."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for k in (False, True):
            times[k].append(run(cmd, kernels=k)[0])
    ref, ker = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"compiled passes vs their numpy/Polars references (CURATE_KERNELS=0), 1 worker: {n / ker:,.0f} vs "
        f"{n / ref:,.0f} {unit}/s ({', '.join(f'{x:.1f}s' for x in times[True])} vs "
        f"{', '.join(f'{x:.1f}s' for x in times[False])}); RATIO {ref / ker:.2f}x"
    )


def corpus(path: Path, n: int, words: int) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(50_000)])
    idx = rng.integers(0, len(vocab), (n, words))
    k = n // 100
    idx[n - 2 * k : n - k] = idx[:k]  # exact copies
    idx[n - k :] = idx[k : 2 * k]
    idx[n - k :, : max(1, words // 100)] = 0  # near copies: 1% of words changed
    texts = pl.DataFrame({"w": vocab[idx].tolist()}).select(pl.col("w").list.join(" ").alias("response"))
    texts.with_columns(
        pl.lit("q").alias("prompt"), pl.int_range(pl.len()).cast(pl.String).alias("sample_id")
    ).write_ndjson(path)


def datasketch_rate(path: Path, docs: int) -> float:
    from datasketch import MinHash, MinHashLSH

    texts = [json.loads(line)["response"] for _, line in zip(range(docs), path.open(), strict=False)]
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i, t in enumerate(texts):
        w = t.lower().split()
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(w[j : j + 5]).encode() for j in range(max(1, len(w) - 4))])
        lsh.insert(i, m)
    return docs / (time.perf_counter() - t0)


def bench_dedup(args: argparse.Namespace, work: Path) -> None:
    inp = work / "docs.jsonl"
    corpus(inp, args.docs, args.words)
    print("hashing limit, in this process:")
    hashing_limit(inp, min(args.docs, 50_000))
    kernel_vs_reference(
        [*CURATE, "dedup", str(inp), "--out", str(work / "out.parquet"), "--json"], args.docs, "docs", args
    )
    for workers in (1, 2):
        walls, rates = [], []
        for _ in range(args.repeat):  # baseline and ours interleaved: the machine is shared
            rates.append(datasketch_rate(inp, args.baseline_docs))
            w, rss, rep = run(
                [*CURATE, "dedup", str(inp), "--out", str(work / "out.parquet"), "--workers", str(workers), "--json"]
            )
            walls.append(w)
        w, ds = statistics.median(walls), statistics.median(rates)
        ours = args.docs / w
        print(
            f"baseline datasketch update_batch + MinHashLSH.insert: {ds:,.0f} docs/s (median of "
            f"{', '.join(f'{r:,.0f}' for r in rates)}; measured on {args.baseline_docs:,} docs, extrapolated)"
        )
        print(
            f"curate dedup, {workers} worker(s): {ours:,.0f} docs/s end to end (median of {args.repeat}: "
            f"{', '.join(f'{x:.1f}s' for x in walls)}); RATIO vs datasketch {ours / ds:.1f}x; "
            f"stages {rep['stages']}; counts {rep['counts']}; peak RSS {rss:,.0f} MB"
        )
        result(
            f"dedup end to end ({workers} worker(s))",
            f"{args.docs:,} docs x {args.words} words",
            ours,
            ds,
            "docs/s",
            "datasketch MinHash.update_batch + MinHashLSH loop",
            peak_rss_mb=rss,
        )


def hashing_limit(path: Path, docs: int) -> None:
    """The signature stage beside the floors of any word-shingle MinHash, in this process on the same
    texts: reading the bytes once (xxh3), one numpy pass over the bytes (a uint8 compare) and over the
    words (a uint64 multiply-add: shingles and bins are a few dozen of these), the word hashes alone
    (``dedup.words``; and the previous Polars ``token_hashes``), then signatures + exact keys."""
    import numpy as np
    import polars as pl
    import xxhash

    from curate.dedup.minhash import sketch
    from curate.dedup.normalize import token_hashes
    from curate.dedup.words import word_hashes

    texts = pl.read_ndjson(path, n_rows=docs)["response"]
    raw = texts.str.join("\n").item().encode()
    buf = np.frombuffer(raw, dtype=np.uint8)
    words = np.arange(len(texts.str.split(" ").explode()), dtype=np.uint64)
    mask, tmp = np.empty(len(buf), dtype=bool), np.empty_like(words)  # preallocated: the passes, not page faults

    def madd() -> None:
        np.multiply(words, np.uint64(0x9E3779B97F4A7C15), out=tmp)
        tmp.__iadd__(words)

    best: dict[str, float] = {}
    for _ in range(3):
        for name, fn in (
            ("xxh3 over the bytes", lambda: xxhash.xxh3_64(raw)),
            ("numpy: 1 uint8 pass over the bytes", lambda: np.equal(buf, 32, out=mask)),
            ("numpy: 1 uint64 multiply-add per word", madd),
            ("word hashes, Polars (token_hashes)", lambda: token_hashes(texts)),
            ("word hashes (dedup.words)", lambda: word_hashes(texts)),
            ("signatures + exact keys, 1 thread", lambda: sketch(texts, threads=1)),
            ("signatures + exact keys, 2 threads", lambda: sketch(texts, threads=2)),
            ("  the same, numpy references, 1 thread", lambda: sketch(texts, threads=1)),
            ("  the same, numpy references, 2 threads", lambda: sketch(texts, threads=2)),
        ):
            # the compiled passes (when built) for every row but the references' (CURATE_KERNELS=0)
            os.environ["CURATE_KERNELS"] = "0" if "references" in name else "1"
            t0 = time.perf_counter()
            fn()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
    os.environ.pop("CURATE_KERNELS")
    mb = len(raw) / 1e6
    for name, t in best.items():
        print(f"  {name:40s} {mb / t:8,.0f} MB/s  ({len(texts) / t:,.0f} docs/s; best of 3)")
    one = best["signatures + exact keys, 1 thread"]
    print(
        f"  signatures (1 thread) take {one / best['word hashes (dedup.words)']:.1f}x the word hashes alone, "
        f"{one / best['numpy: 1 uint64 multiply-add per word']:.0f} multiply-add passes over the words, "
        f"{one / best['numpy: 1 uint8 pass over the bytes']:.0f} uint8 passes over the bytes"
    )


def bench_rss(args: argparse.Namespace, work: Path) -> None:
    for rows in args.rows:
        inp = work / f"tiny-{rows}.jsonl"
        with inp.open("wb") as f:
            for i in range(rows):
                f.write(
                    orjson.dumps(
                        {
                            "prompt": f"q{i % 1000}",
                            "response": f"<think>t {i}</think> answer {i % 97}" + (" words" * (i % 7)),
                        }
                    )
                    + b"\n"
                )
        for checks in ("format", None):  # one row check; every default check (the corpus dedup included)
            chosen = ["--checks", checks] if checks else []
            w, rss, _ = run(
                [*CURATE, "check", str(inp), "--out", str(work / "c.parquet"), *chosen, "--no-cache", "--json"]
            )
            name = f"--checks {checks}" if checks else "every default check"
            print(f"check {name}, {rows:,} rows ({inp.stat().st_size / 1e6:,.0f} MB): {w:.1f}s, peak RSS {rss:,.0f} MB")
            result(f"check ({checks or 'default'}) peak RSS", f"{rows:,} tiny rows", rows / w, None, "rows/s", "-",
                   peak_rss_mb=rss)  # fmt: skip
        w, rss, rep = run([*CURATE, "dedup", str(inp), "--out", str(work / "d.parquet"), "--json"])
        print(
            f"dedup, {rows:,} rows: {w:.1f}s, peak RSS {rss:,.0f} MB ({rss * 1e6 / rows / 1e3:,.2f} KB/row); "
            f"stages {rep['stages']}"
        )
        result("dedup peak RSS", f"{rows:,} tiny rows", rows / w, None, "rows/s", "-", peak_rss_mb=rss)
        inp.unlink()


def _random_docs(path: Path, rows: int, prefix: str, seed: int) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(50_000)]
    with path.open("wb") as f:
        for i in range(rows):
            doc = {"sample_id": f"{prefix}{i}", "prompt_id": f"p{i}", "prompt": "q"}
            f.write(orjson.dumps({**doc, "response": " ".join(rng.choices(vocab, k=12))}) + b"\n")


def bench_index(args: argparse.Namespace, work: Path) -> None:
    """Cross-version dedup: published versions of ``--rows`` each recorded in one index (``--record-as``),
    then ``curate dedup`` of 20k new documents against it; its peak RSS should not grow with the index.
    Baseline: the same query with the index loaded in memory (``DedupIndex.load``, what stage 4 did)."""
    small, idx = work / "small.jsonl", work / "idx"
    _random_docs(small, 20_000, "s", 99)
    indexed = 0
    for v, rows in enumerate(args.rows, start=1):
        big = work / f"v{v}.jsonl"
        _random_docs(big, rows, f"v{v}-", v)
        run([*CURATE, "dedup", str(big), "--out", str(work / "o.parquet"), "--index-dir", str(idx),
             "--record-as", f"pub@{v}", "--json"])  # fmt: skip
        big.unlink()
        indexed += rows
        # 20k docs in ~30 shards: before the seen stage, each shard scanned the whole index
        query = [*CURATE, "dedup", str(small), "--out", str(work / "q.parquet"), "--index-dir", str(idx)]
        w, rss, rep = run([*query, "--shard-mb", "0.1", "--json"])
        code = (
            "import sys, numpy as np, resource; from curate.dedup import DedupConfig, DedupIndex; "
            f"i = DedupIndex({str(idx)!r}, DedupConfig(index_dir={str(idx)!r}).index_params()).load(); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
        )
        loaded = int(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
        print(
            f"index of {indexed:,} rows: query of 20k docs in {rep['computed'].get('signatures', '?')} shards "
            f"{w:.1f}s, peak RSS {rss:,.0f} MB (seen {rep['stages'].get('seen', 0):.2f}s, marks "
            f"{rep['stages']['marks']:.2f}s); loading the index alone: {loaded:,} MB"
        )
        result("dedup vs index peak RSS", f"20k docs vs {indexed:,} indexed", 20_000 / w, None, "docs/s",
               "index loaded in memory", peak_rss_mb=rss)  # fmt: skip


def bench_big(args: argparse.Namespace, work: Path) -> None:
    """Peak RSS (and wall, CPU) of ``curate check`` with every default check on ``--gigabytes`` of 8 KB
    R1-style traces: ``--samples`` distinct traces, repeated with a per-copy suffix (distinct texts and
    ids; the copies are near duplicates, so the corpus dedup has clusters to resolve). Baseline: the same
    command with ``--checks format`` alone (reading, one cheap check, writing: the engine's floor)."""
    inp, one = work / "big.jsonl", work / "one.jsonl"
    traces(one, args.samples)
    lines = one.read_bytes().splitlines()
    copies = max(1, round(args.gigabytes * 1e9 / one.stat().st_size))
    with inp.open("wb") as f:
        for k in range(copies):
            for line in lines:
                row = orjson.loads(line)
                row["prompt_id"] += f"-{k}"
                row["response"] += f" v{k}"
                f.write(orjson.dumps(row) + b"\n")
    n = copies * len(lines)
    print(f"{n:,} traces, {inp.stat().st_size / 1e9:.2f} GB")
    for name, chosen in (("--checks format (baseline)", ["--checks", "format"]), ("every default check", [])):
        out = str(work / "o.parquet")
        w, rss, rep = run([*CURATE, "check", str(inp), "--out", out, *chosen, "--no-cache", "--json"])
        print(
            f"curate check, {name}: peak RSS {rss:,.0f} MB; {w:.0f} s, {n / w:,.0f} samples/s, "
            f"{rep['cpu_s']:.0f} CPU-s; stages {rep.get('stages')}"
        )
        result(f"check ({name}) peak RSS", f"{inp.stat().st_size / 1e9:.1f} GB of 8 KB traces", n / w, None,
               "samples/s", "-", peak_rss_mb=rss)  # fmt: skip


def bench_startup(args: argparse.Namespace, work: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    inp = work / "ten.jsonl"
    traces(inp, 10)
    trees = {name: work / name for name in ("source", "byte-compiled")}
    for tree in trees.values():
        for sub in ("src", "flows", "schemas"):
            shutil.copytree(root / sub, tree / sub, ignore=shutil.ignore_patterns("__pycache__"))
    compiled = [str(trees["byte-compiled"] / sub) for sub in ("src", "flows", "schemas")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *compiled], check=True, capture_output=True)
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, tree in trees.items():  # alternating
            env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
            cmd = [*CURATE, "check", str(inp), "--out", str(work / "o.parquet"), "--no-cache"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - t0)
    src, byte = statistics.median(times["source"]), statistics.median(times["byte-compiled"])
    print(
        f"curate check on 10 rows, median of {args.repeat}: from source {src:.2f} s, byte-compiled {byte:.2f} s "
        f"({src - byte:.2f} s of every start compiles curate's modules)"
    )
    result("start-up (curate check, 10 rows)", "byte-compiled vs compiled at start", byte, src, "s", "from source")


def bench_capacity(args: argparse.Namespace, work: Path) -> None:
    """CPU-seconds per sample of each stage on ``--bytes`` traces, in this process, one stage at a time
    (process CPU time counts every thread: core-seconds, what a cluster is sized by; it moves far less
    than wall time on a shared machine), then hours and memory for 10M and 100M samples."""
    import polars as pl

    from curate.checks.cached import read_shard
    from curate.checks.registry import build_checks
    from curate.checks.shards import plan_shards
    from curate.dedup import DedupCheck
    from curate.io.rows import ReadConfig

    inp = work / "traces.jsonl"
    from curate.testing.traces import make_trace

    rng = random.Random(1)
    with inp.open("wb") as f:
        for i in range(args.samples):
            f.write(
                orjson.dumps(
                    {
                        "prompt_id": f"p{i // 8}",
                        "task": "math",
                        "prompt": f"What is {i}?",
                        "response": make_trace(rng, args.bytes),
                        "reference": "42",
                    }
                )
                + b"\n"
            )
    shards = plan_shards([inp], 1 << 40)
    c0 = time.process_time()
    df, _ = read_shard(shards[0], ReadConfig())
    read_s = time.process_time() - c0
    checks = [c for c in build_checks(None) if c.scope == "row"]
    for check in checks:
        check.run(df.head(64))  # warm: models loaded, pools started
    dedup_in = df.select("sample_id", "prompt_id", "response").with_columns(pl.lit(True).alias("accepted"))

    def stages() -> dict[str, float]:
        cpu = {"read (JSONL parse)": read_s}
        for check in checks:
            c0 = time.process_time()
            for lo in range(0, df.height, 8192):
                check.run(df.slice(lo, 8192))
            cpu[check.name] = time.process_time() - c0
        c0 = time.process_time()
        DedupCheck().run(dedup_in)
        cpu["dedup (signatures + LSH)"] = time.process_time() - c0
        return cpu

    # the compiled passes, then their references (CURATE_KERNELS=0), in this process
    cpu = stages()
    os.environ["CURATE_KERNELS"] = "0"
    ref = stages()
    os.environ.pop("CURATE_KERNELS")
    n = df.height
    print(
        f"{n:,} samples of ~{args.bytes / 1000:.0f} KB; CPU-seconds in this process (all its threads; the math "
        f"and code checks' worker processes are not counted, so those two read low); compiled passes | references"
    )
    total = ref_total = 0.0
    for name, sec in cpu.items():
        total += sec
        ref_total += ref[name]
        print(f"  {name:28s} {n / sec:>9,.0f} | {n / ref[name]:>9,.0f} samples per core-second")
    print(f"  {'all of the above':28s} {n / total:>9,.0f} | {n / ref_total:>9,.0f} samples per core-second")
    for samples in (10_000_000, 100_000_000):
        core_h = samples * total / n / 3600
        print(
            f"{samples:>12,} samples: {core_h:,.1f} core-hours -> "
            + ", ".join(f"{core_h / w:,.1f} h on {w} workers" for w in (8, 32, 128))
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["check", "dedup", "rss", "index", "big", "capacity", "startup"])
    ap.add_argument("--gigabytes", type=float, default=2.0, help="big: input size")
    ap.add_argument("--bytes", type=int, default=20_000, help="capacity: sample size")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--docs", type=int, default=150_000)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--baseline-docs", type=int, default=3000)
    ap.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--against", default=None, help="check: a src folder of another checkout (the baseline)")
    args = ap.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as d:
        what = {"check": bench_check, "dedup": bench_dedup, "rss": bench_rss, "index": bench_index}
        what["capacity"], what["big"], what["startup"] = bench_capacity, bench_big, bench_startup
        what[args.what](args, Path(d))


if __name__ == "__main__":
    main()
