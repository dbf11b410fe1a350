"""The sample ledger: atomic parts, run identity, resume after ``kill -9`` of a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from curate.generate.cli import generate_command
from curate.generate.engines.base import Completion, Request, SamplingParams
from curate.generate.ledger import Ledger, LedgerMismatch, write_parquet_atomic
from curate.generate.prompts import read_prompts
from curate.generate.runner import build_manifest, generate_ledger
from curate.generate.templates import PromptTemplate
from curate.schema import schema_tag


def _prompts(path: Path, k: int) -> Path:
    with path.open("wb") as f:
        for i in range(k):
            row = {
                "prompt_id": f"q{i:03d}",
                "prompt": f"What is {i} + {i}?",
                "task": "math",
                "reference": str(2 * i),
                "source": "test",
                "difficulty": i % 3,
            }
            f.write(orjson.dumps(row) + b"\n")
    return path


class EchoEngine:
    """Deterministic stand-in engine that counts calls (the ledger does not care what generates)."""

    name = "echo"
    checkpoint = "echo"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append([r.key for r in requests])
        return [
            [Completion(f"<think>{r.key} {r.seed + i}</think>{i}", "stop", 3, 4, 0.0) for i in range(params.n)]
            for r in requests
        ]

    def close(self) -> None:
        pass


def _run(tmp: Path, prompts: Path, engine: EchoEngine, n: int = 3, shard_size: int = 4) -> Ledger:
    params, tmpl = SamplingParams(n=n, max_tokens=16), PromptTemplate("r1")
    table = read_prompts(prompts)
    ledger = Ledger(tmp / "ledger")
    m = ledger.open(
        build_manifest(
            model="echo",
            engine="echo",
            params=params,
            template=tmpl,
            shard_size=shard_size,
            n_prompts=table.height,
            prompts_file=prompts,
        )
    )
    generate_ledger(table, engine, params, tmpl, ledger, m)
    return ledger


def test_ledger_rows_schema_and_resume(tmp_path: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl", 10)
    eng = EchoEngine()
    ledger = _run(tmp_path, prompts, eng)
    assert len(eng.calls) == 3 and [p.name for p in ledger.parts()][-1] == "part-00002.parquet"
    assert schema_tag(ledger.parts()[0]) == "sample@1"
    df = ledger.scan().collect().sort("prompt_id", "sample_index")
    assert df.height == 30 and df["sample_id"].n_unique() == 30
    row = df.row(0, named=True)
    assert row["prompt_id"] == "q000" and row["reference"] == "0" and row["task"] == "math"
    assert row["engine"] == "echo" and row["finish_reason"] == "stop" and row["tokens_out"] == 4
    assert orjson.loads(row["extra"]) == {"difficulty": 0} and orjson.loads(row["sampling_params"])["n"] == 3

    # Lose one part: only that shard is generated again, identically (per-sample seeds).
    before = df
    ledger.part_path(1).unlink()
    eng2 = EchoEngine()
    _run(tmp_path, prompts, eng2)
    assert eng2.calls == [["q004", "q005", "q006", "q007"]]
    after = ledger.scan().collect().sort("prompt_id", "sample_index")
    cols = ["sample_id", "prompt_id", "sample_index", "response"]
    assert after.select(cols).equals(before.select(cols))


def test_changed_params_are_refused(tmp_path: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl", 5)
    _run(tmp_path, prompts, EchoEngine())
    with pytest.raises(LedgerMismatch, match="n: ledger has 3, run has 4"):
        _run(tmp_path, prompts, EchoEngine(), n=4)
    with pytest.raises(LedgerMismatch, match="shard_size"):
        _run(tmp_path, prompts, EchoEngine(), shard_size=2)
    _prompts(prompts, 6)
    with pytest.raises(LedgerMismatch, match="prompts_sha256"):
        _run(tmp_path, prompts, EchoEngine())


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    dest = tmp_path / "part-00000.parquet"

    def torn(table: pa.Table, where: Path, **kw: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", torn)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(pa.table({"a": [1]}), dest)
    assert list(tmp_path.iterdir()) == []


def test_open_cleans_temp_files_and_ignores_unreadable_parts(tmp_path: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl", 8)
    ledger = _run(tmp_path, prompts, EchoEngine())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    host = socket.gethostname()
    leftover = ledger.root / f"part-00001.parquet.tmp-{host}-{int(dead.stdout)}"  # a killed writer's
    leftover.write_bytes(b"junk")
    live = ledger.root / f"part-00003.parquet.tmp-{host}-{os.getppid()}"  # another worker, writing now
    live.write_bytes(b"in progress")
    ledger.part_path(0).write_bytes(b"not parquet")  # a bad copy, not our writer
    eng = EchoEngine()
    _run(tmp_path, prompts, eng)
    assert eng.calls == [["q000", "q001", "q002", "q003"]]
    assert list(ledger.root.glob("*.tmp-*")) == [live]
    assert ledger.scan().collect().height == 24


def _cli(args: list[str]) -> tuple[int, str]:
    app = typer.Typer()
    app.command("generate")(generate_command)

    @app.callback()
    def _root() -> None: ...

    r = CliRunner().invoke(app, ["generate", *args])
    return r.exit_code, r.output


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, tiny_checkpoint: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl", 3)
    base = [
        "--prompts",
        str(prompts),
        "--model",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "L"),
        "--n",
        "2",
        "--max-tokens",
        "4",
        "--no-progress",
    ]
    cases = {
        "prompts file not found": ["--prompts", str(tmp_path / "missing.jsonl")],
        "--engine must be one of": ["--engine", "tgi"],
        "checkpoint directory not found": ["--model", str(tmp_path / "nope")],
        "top_p must be in": ["--top-p", "0"],
        "unknown template": ["--template", "r3"],
    }
    for msg, extra in cases.items():
        code, out = _cli(base + extra)
        assert code == 2 and msg in out and "Traceback" not in out, (msg, out)
        assert len(out.strip().splitlines()) == 1, out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nope": 1}\n')
    code, out = _cli(base + ["--prompts", str(bad)])
    assert code == 2 and "row 2 has no 'prompt'" in out
    code, out = _cli(base)
    assert code == 0, out
    code, out = _cli(base + ["--temperature", "0.9"])
    assert code == 2 and "temperature: ledger has 0.6, run has 0.9" in out


def test_kill_9_and_resume(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A real `generate` process is SIGKILLed mid-run and restarted: every sample present once, no
    duplicate ids, and no finished shard generated again (the --stats file logs each engine call)."""
    n_prompts, shard, n = 16, 2, 2
    prompts, out, stats = _prompts(tmp_path / "p.jsonl", n_prompts), tmp_path / "ledger", tmp_path / "stats"
    cmd = [
        sys.executable,
        "-m",
        "curate.cli", "generate",
        "--prompts",
        str(prompts),
        "--model",
        str(tiny_checkpoint),
        "--engine",
        "hf",
        "--n",
        str(n),
        "--shard-size",
        str(shard),
        "--out",
        str(out),
        "--max-tokens",
        "16",
        "--temperature",
        "1.0",
        "--stats",
        str(stats),
        "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no shard finished in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = {int(p.name[5:10]) for p in out.glob("part-*.parquet")}
    assert 2 <= len(done_at_kill) < n_prompts // shard, "the run finished before it could be killed"

    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)

    events = [orjson.loads(line) for line in stats.read_text().splitlines()]
    pids = list(dict.fromkeys(e["pid"] for e in events))
    assert len(pids) == 2
    second = [e["shard"] for e in events if e["pid"] == pids[1] and e["event"] == "call"]
    assert sorted(second) == sorted(set(range(n_prompts // shard)) - done_at_kill)  # each missing shard once
    df = pl.read_parquet(out / "part-*.parquet")
    assert df.height == n_prompts * n and df["sample_id"].n_unique() == df.height
    pairs = set(zip(df["prompt_id"], df["sample_index"], strict=True))
    assert pairs == {(f"q{i:03d}", j) for i in range(n_prompts) for j in range(n)}
    assert not list(out.glob("*.tmp-*"))


def test_parquet_prompts_and_derived_ids(tmp_path: Path) -> None:
    src = tmp_path / "p.parquet"
    pl.DataFrame({"prompt": ["a?", "b?"], "task": ["math", "general"], "reference": ["1", None]}).write_parquet(src)
    df = read_prompts(src)
    assert df["prompt_id"].n_unique() == 2 and df["prompt_id"].str.len_chars().to_list() == [16, 16]
    assert df["language"].to_list() == ["en", "en"]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"prompt_id": "x", "prompt": "a"}\n{"prompt_id": "x", "prompt": "b"}\n')
    with pytest.raises(ValueError, match="duplicate prompt_id 'x'"):
        read_prompts(dup)
