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
from typer.testing import CliRunner

from curate.errors import CurateError
from curate.generate.engines.base import Completion, Request, SamplingParams
from curate.generate.ledger import Ledger, LedgerMismatch
from curate.generate.prompts import (
    QUARANTINE_NAME,
    PromptFileError,
    derive_prompt_id,
    read_prompt_pool,
    read_prompts,
)
from curate.generate.runner import build_manifest, generate_ledger
from curate.generate.templates import PromptTemplate
from curate.io.files import sha256_file as file_sha256
from curate.io.files import write_parquet_atomic
from curate.schema import schema_tag, table


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
    # a user's choice, refused as one: every command that opens a ledger (curate run, the demo) exits 2
    # with one line, not a traceback
    assert issubclass(LedgerMismatch, CurateError) and LedgerMismatch("x").exit_code == 2


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
    from curate.cli import app  # the real command line: its one error path

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
    junk, all_bad = tmp_path / "junk.parquet", tmp_path / "all_bad.jsonl"
    junk.write_bytes(b"not parquet at all")
    all_bad.write_text('oops\n{"nope": 1}\n')
    cases = {
        "prompts file not found": ["--prompts", str(tmp_path / "missing.jsonl")],
        "--engine must be one of": ["--engine", "tgi"],
        "checkpoint directory not found": ["--model", str(tmp_path / "nope")],
        "top_p must be in": ["--top-p", "0"],
        "unknown template": ["--template", "r3"],
        "not a readable Parquet file": ["--prompts", str(junk)],
        "all_bad.jsonl: no usable prompts; 2 bad rows, first": ["--prompts", str(all_bad)],
    }
    for msg, extra in cases.items():
        code, out = _cli(base + extra)
        assert code == 2 and msg in out and "Traceback" not in out, (msg, out)
        assert len(out.strip().splitlines()) == 1, out
    assert not (tmp_path / "L" / QUARANTINE_NAME).exists()
    code, out = _cli(base)
    assert code == 0 and f"{prompts}: read 3 prompts, quarantined 0\n" in out, out
    code, out = _cli(base + ["--temperature", "0.9"])
    assert code == 2 and "temperature: ledger has 0.6, run has 0.9" in out


def _messy_prompts(path: Path) -> Path:
    """Three good prompts among rows of each kind the reader must quarantine (reasons in BAD_LINES)."""
    rows = [
        orjson.dumps({"prompt_id": "q000", "prompt": "What is 0 + 0?", "task": "math", "reference": "0"}),
        b'{"prompt_id": "q001", "prompt": "unterminated',
        orjson.dumps({"prompt_id": "q009", "task": "math"}),
        orjson.dumps({"prompt_id": "q002", "prompt": "What is 1 + 1?", "task": "math", "reference": 2}),
        orjson.dumps({"prompt": ["not", "text"]}),
        orjson.dumps({"prompt_id": "q003", "prompt": "What is 3 + 3?", "source": 7}),
        b"",  # a blank line carries no row
        orjson.dumps({"prompt_id": "q000", "prompt": "What is 9 + 9?"}),
        orjson.dumps({"prompt": "What is 2 + 2?", "difficulty": 1}),
        orjson.dumps({"prompt": "   "}),
    ]
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


BAD_LINES = [
    (2, "input.invalid_json"),
    (3, "input.missing_field"),
    (5, "input.wrong_type"),
    (6, "input.wrong_type"),
    (8, "input.duplicate_id"),
    (10, "input.missing_field"),
]


def test_prompt_pool_keeps_good_rows_and_quarantines_bad(tmp_path: Path) -> None:
    src = _messy_prompts(tmp_path / "p.jsonl")
    pool = read_prompt_pool(src)
    derived = derive_prompt_id("What is 2 + 2?")
    assert pool.table["prompt_id"].to_list() == ["q000", "q002", derived]
    assert pool.table["reference"].to_list() == ["0", "2", None]
    assert orjson.loads(pool.table["extra"][2]) == {"difficulty": 1}
    assert [(b.line, b.reason) for b in pool.bad] == BAD_LINES
    assert pool.bad[4].detail == "prompt_id 'q000' already on line 1"
    assert orjson.loads(pool.bad[4].raw) == {"prompt_id": "q000", "prompt": "What is 9 + 9?"}
    assert (pool.stats.rows_ok, pool.stats.rows_bad) == (3, 6)
    # Without an on_bad callback nothing is dropped silently: the first bad row is an error.
    with pytest.raises(PromptFileError, match=r"p.jsonl:2: input.invalid_json"):
        read_prompts(src)

    q = pool.write_quarantine(tmp_path / "out")
    assert q == tmp_path / "out" / QUARANTINE_NAME
    records = [orjson.loads(line) for line in q.read_bytes().splitlines()]
    assert [(r["line"], r["reason"]) for r in records] == BAD_LINES
    assert all(tuple(r) == table("quarantine").names and r["file"] == str(src) for r in records)
    assert records[0]["raw"] == '{"prompt_id": "q001", "prompt": "unterminated'
    clean = read_prompt_pool(_prompts(tmp_path / "clean.jsonl", 2))
    assert clean.write_quarantine(tmp_path / "out") is None and not q.exists()  # no stale quarantine


def test_prompt_pool_fast_path_and_parquet(tmp_path: Path) -> None:
    """Blocks of 64+ clean lines take polars' reader; duplicates and blanks are still caught after it."""
    big = _prompts(tmp_path / "big.jsonl", 80)
    with big.open("ab") as f:
        f.write(orjson.dumps({"prompt_id": "q005", "prompt": "again"}) + b"\n")
    pool = read_prompt_pool(big)
    assert pool.table.height == 80 and [(b.line, b.reason) for b in pool.bad] == [(81, "input.duplicate_id")]
    assert orjson.loads(pool.table["extra"][1]) == {"difficulty": 1}
    pq_src = tmp_path / "p.parquet"
    pl.DataFrame({"prompt": ["a?", None, " ", "a?"], "k": [1, 2, 3, 4]}).write_parquet(pq_src)
    pool = read_prompt_pool(pq_src)
    assert pool.table["prompt"].to_list() == ["a?"]
    assert [(b.line, b.reason) for b in pool.bad] == [
        (2, "input.missing_field"),
        (3, "input.missing_field"),
        (4, "input.duplicate_id"),
    ]


def test_cli_generates_good_rows_and_quarantines_bad(tmp_path: Path, tiny_checkpoint: Path) -> None:
    prompts, out = _messy_prompts(tmp_path / "p.jsonl"), tmp_path / "L"
    args = [
        "--prompts",
        str(prompts),
        "--model",
        str(tiny_checkpoint),
        "--out",
        str(out),
        "--n",
        "2",
        "--shard-size",
        "2",
        "--max-tokens",
        "4",
        "--no-progress",
    ]
    code, text = _cli(args)
    q = out / QUARANTINE_NAME
    assert code == 0, text
    assert (
        f"{prompts}: read 3 prompts, quarantined 6 (input.missing_field 2, input.wrong_type 2, "
        f"input.invalid_json 1, input.duplicate_id 1) -> {q}"
    ) in text
    assert [(r["line"], r["reason"]) for r in map(orjson.loads, q.read_bytes().splitlines())] == BAD_LINES
    df = Ledger(out).scan().collect()
    assert sorted(set(df["prompt_id"])) == sorted(["q000", "q002", derive_prompt_id("What is 2 + 2?")])
    assert df.height == 6 and df.filter(pl.col("prompt_id") == "q000")["prompt"][0] == "What is 0 + 0?"
    manifest = Ledger(out).manifest()
    assert manifest is not None and manifest.n_prompts == 3 and manifest.n_shards == 2
    assert manifest.prompts_sha256 == file_sha256(prompts)  # the whole file, bad rows included

    # A changed file is refused by the ledger; the quarantine of the run that made it stays as it was.
    before = q.read_bytes()
    _prompts(prompts, 3)
    code, text = _cli(args)
    assert code == 2 and "prompts_sha256" in text and q.read_bytes() == before


def test_plan_generation_quarantines_in_the_ledger(
    tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The flows' path (curate.pipeline): quarantine in the ledger directory, counts logged and returned."""
    from curate import pipeline
    from curate.recipes.config import GenerateConfig

    prompts, ledger = _messy_prompts(tmp_path / "p.jsonl"), tmp_path / "ledger"
    spec = GenerateConfig(
        prompts=str(prompts), model=str(tiny_checkpoint), engine="hf", n=2, max_tokens=4, shard_size=2
    )
    with caplog.at_level("INFO", logger="curate.pipeline"):
        plan = pipeline.plan_generation(spec, ledger)
    assert (plan.n_prompts, plan.n_shards, plan.quarantined) == (3, 2, 6)
    assert plan.quarantine == ledger / QUARANTINE_NAME and plan.quarantine.is_file()
    assert "read 3 prompts, quarantined 6" in caplog.text
    res = pipeline.generate_shards(spec, ledger)
    assert res["shards_written"] == 2 and res["samples_written"] == 6


def test_kill_9_and_resume(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A real `generate` process is SIGKILLed mid-run and restarted: every sample present once, no
    duplicate ids, and no finished shard generated again (the --stats file logs each engine call)."""
    n_prompts, shard, n = 16, 2, 2
    prompts, out, stats = _prompts(tmp_path / "p.jsonl", n_prompts), tmp_path / "ledger", tmp_path / "stats"
    cmd = [
        sys.executable,
        "-m",
        "curate.cli",
        "generate",
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
    with pytest.raises(ValueError, match=r"dup.jsonl:2: input.duplicate_id \(prompt_id 'x' already on line 1\)"):
        read_prompts(dup)
    pool = read_prompt_pool(dup)  # the first row keeps the id; the later one is quarantined
    assert pool.table["prompt"].to_list() == ["a"] and [b.reason for b in pool.bad] == ["input.duplicate_id"]
    ints = tmp_path / "ints.parquet"
    pl.DataFrame({"prompt": [1, 2]}).write_parquet(ints)
    with pytest.raises(PromptFileError, match="ints.parquet:1: input.wrong_type"):  # as a JSONL line would be
        read_prompts(ints)


def test_a_copied_store_and_moved_checkpoint_resume(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The ledger, its prompts and the checkpoint copied elsewhere (another machine, another disk): the
    run resumes there, generating only the missing shard; other weights under the same name are refused."""
    import shutil

    src = tmp_path / "a"
    (src / "store").mkdir(parents=True)
    shutil.copytree(tiny_checkpoint, src / "ckpt")
    _prompts(src / "p.jsonl", 4)

    def generate(root: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "curate.cli", "generate", "--prompts", str(root / "p.jsonl")]
        cmd += ["--model", str(root / "ckpt"), "--engine", "hf", "--n", "2", "--shard-size", "2"]
        cmd += ["--out", str(root / "store" / "ledger"), "--max-tokens", "8", "--no-progress", *extra]
        return subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, timeout=300)

    assert generate(src).returncode == 0
    first = pl.read_parquet(src / "store" / "ledger" / "part-00000.parquet")
    (src / "store" / "ledger" / "part-00001.parquet").unlink()
    dst = tmp_path / "elsewhere" / "b"
    shutil.copytree(src, dst)
    shutil.rmtree(src)  # the original paths are gone, as on another machine

    res = generate(dst, "--stats", str(tmp_path / "stats"))
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    calls = [orjson.loads(x) for x in (tmp_path / "stats").read_text().splitlines()]
    assert [e["shard"] for e in calls if e["event"] == "call"] == [1]  # only the missing shard
    df = pl.read_parquet(dst / "store" / "ledger" / "part-*.parquet")
    assert df.height == 8 and df["sample_id"].n_unique() == 8
    kept = pl.read_parquet(dst / "store" / "ledger" / "part-00000.parquet")
    assert kept.select("sample_id", "response").equals(first.select("sample_id", "response"))

    # Same path, other weights (one byte of the safetensors changed): refused in one line, exit 2.
    weights = next((dst / "ckpt").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    (dst / "store" / "ledger" / "part-00001.parquet").unlink()
    res = generate(dst)
    err = res.stderr.decode().strip()
    assert res.returncode == 2 and "\n" not in err and "other weights or files" in err, err
