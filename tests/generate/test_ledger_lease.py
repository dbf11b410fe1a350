"""Ledger leases: one writer per shard, one set of parameters per ledger, with real processes.

flock leases die with their process, so the tests start real ``curate generate`` processes (hf engine on
the tiny checkpoint) rather than threads, and check the outcome on disk and in the ``--stats`` log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl

from curate.generate.ledger import Ledger


def _prompts(path: Path, k: int) -> Path:
    path.write_bytes(
        b"".join(orjson.dumps({"prompt_id": f"q{i:03d}", "prompt": f"What is {i} + {i}?"}) + b"\n" for i in range(k))
    )
    return path


def _cmd(prompts: Path, model: Path, out: Path, stats: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "curate.cli",
        "generate",
        "--prompts",
        str(prompts),
        "--model",
        str(model),
        "--engine",
        "hf",
        "--n",
        "2",
        "--shard-size",
        "1",
        "--out",
        str(out),
        "--max-tokens",
        "24",
        "--temperature",
        "1.0",
        "--stats",
        str(stats),
        "--no-progress",
        *extra,
    ]


ENV = dict(os.environ, OMP_NUM_THREADS="1")


def test_two_identical_runs_share_the_shards(tmp_path: Path, tiny_checkpoint: Path) -> None:
    prompts, out, stats = _prompts(tmp_path / "p.jsonl", 12), tmp_path / "L", tmp_path / "stats"
    cmd = _cmd(prompts, tiny_checkpoint, out, stats)
    a = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    b = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err_a = a.communicate(timeout=300)
    _, err_b = b.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, (err_a.decode(), err_b.decode())
    calls = [e["shard"] for e in map(orjson.loads, stats.read_text().splitlines()) if e["event"] == "call"]
    assert sorted(calls) == list(range(12))  # every shard generated exactly once, by one of the two
    df = pl.read_parquet(out / "part-*.parquet")
    assert df.height == 24 and df["sample_id"].n_unique() == 24


def test_other_parameters_refused_while_a_run_lives(tmp_path: Path, tiny_checkpoint: Path) -> None:
    prompts, out, stats = _prompts(tmp_path / "p.jsonl", 40), tmp_path / "L", tmp_path / "stats"
    first = subprocess.Popen(
        _cmd(prompts, tiny_checkpoint, out, stats), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "manifest.json").exists():  # the first run holds the ledger now
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        # A new ledger, no part written yet (or a few): the other run is refused with one line, exit 2.
        other = subprocess.run(
            _cmd(prompts, tiny_checkpoint, out, tmp_path / "s2", "--top-p", "0.5"),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 2, other.stderr
        assert other.stderr.count("\n") == 1 and "top_p: ledger has 0.95, run has 0.5" in other.stderr
        assert not (tmp_path / "s2").exists() or "call" not in (tmp_path / "s2").read_text()
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()
    df = pl.read_parquet(out / "part-*.parquet")
    assert df["params_hash"].n_unique() == 1 and df.height == 80


def test_lease_dies_with_its_holder(tmp_path: Path) -> None:
    """A shard lease held by a killed process is free again (no timeout, no stale lock to clean)."""
    led = Ledger(tmp_path / "L")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from curate.generate.ledger import Ledger\n"
                f"l = Ledger({str(tmp_path / 'L')!r}); lease = l.claim(3); print('held', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert led.claim(3) is None  # someone else writes shard 3
        lease = led.claim(4)
        assert lease is not None
        lease.release()
    finally:
        holder.kill()
        holder.wait()
    again = led.claim(3)
    assert again is not None
    again.release()
