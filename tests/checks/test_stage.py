"""Pass 1's rows held in memory or spilled to the staging file: the output is the same either way."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import curate.checks.stage as stage_mod
from curate.checks.cached import ShardOptions
from curate.checks.registry import build_checks
from curate.checks.runner import check_files, run_corpus_checks
from curate.checks.stage import Stage
from curate.schema import table
from curate.testing.traces import make_trace


def _input(path: Path, n: int = 400) -> Path:
    rng = random.Random(3)
    texts: list[str] = []
    with path.open("wb") as f:
        for i in range(n):
            if i > 20 and i % 9 == 0:
                resp = texts[rng.randrange(len(texts))]  # an exact copy: dedup has work to do
            else:
                resp = make_trace(rng, rng.choice([300, 2500, 6000]))
            texts.append(resp)
            row = {"prompt_id": f"p{i // 4}", "task": "math", "prompt": f"What is {i}?", "response": resp}
            f.write(orjson.dumps({**row, "reference": str(i % 7)}) + b"\n")
    return path


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_held_and_spilled_rows_give_the_same_output(tmp_path: Path, monkeypatch: Any, kind: str) -> None:
    """Every default check, with dedup as the corpus check: a run whose rows stay in memory and one
    whose rows go to the staging file write the same file, schema and tag included; the report says
    which it was, and nothing is left beside the output. JSONL input larger than the budget goes to the
    file from the start; Parquet inputs (compressed: their rows outgrow their size) spill part way."""
    inp = [_input(tmp_path / "in.jsonl")]
    if kind == "parquet":
        rows = pl.read_ndjson(inp[0])
        inp = [tmp_path / f"in{i}.parquet" for i in range(4)]
        for i, path in enumerate(inp):
            rows.slice(100 * i, 100).write_parquet(path)
    checks = build_checks()
    shards = ShardOptions(shard_bytes=100_000)  # several shards: several frames to hold or spill
    held = check_files(inp, tmp_path / "held.parquet", checks, shards=shards)
    assert held.stages["staged_in_memory"] == 1.0
    budget = 0 if kind == "jsonl" else sum(p.stat().st_size for p in inp) + 1
    monkeypatch.setattr(stage_mod, "STAGE_MEMORY_BYTES", budget)
    spilled = check_files(inp, tmp_path / "spilled.parquet", checks, shards=shards)
    assert spilled.stages["staged_in_memory"] == 0.0
    a, b = pl.read_parquet(tmp_path / "held.parquet"), pl.read_parquet(tmp_path / "spilled.parquet")
    assert a.height == 400 and a["reject_reasons"].list.contains("dedup.exact").any()
    assert_frame_equal(a, b)
    sa, sb = pq.read_schema(tmp_path / "held.parquet"), pq.read_schema(tmp_path / "spilled.parquet")
    assert sa.equals(sb, check_metadata=True)
    left = {p.name for p in tmp_path.iterdir()} - {p.name for p in inp} - {"in.jsonl"}
    assert left == {"held.parquet", "spilled.parquet"}


def test_readers_agree_on_held_spilled_and_file_stages(tmp_path: Path) -> None:
    """The stage's readers (names, rows, columns, Arrow batches, frames) give the same rows whether the
    frames are held, spilled part way, or read from a checked Parquet file."""
    tbl = table("checked_sample")
    inp = _input(tmp_path / "in.jsonl", n=120)
    check_files([inp], tmp_path / "ref.parquet", build_checks(only=["format", "readability"]))
    ref = pl.read_parquet(tmp_path / "ref.parquet")
    frames = [ref.slice(i, 25) for i in range(0, ref.height, 25)]
    stages = {
        "held": Stage(tmp_path / "a.pass1", tbl, budget=1 << 40),
        "spilled": Stage(tmp_path / "b.pass1", tbl, budget=ref.slice(0, 50).estimated_size()),
    }
    for s in stages.values():
        for f in frames:
            s.write(f)
        s.close()
    stages["file"] = Stage.of_file(tmp_path / "ref.parquet", tbl)
    assert stages["held"].in_memory and not stages["spilled"].in_memory and not stages["file"].in_memory
    cols = ["sample_id", "response", "reject_reasons"]
    want = tbl.conform(ref)
    for name, s in stages.items():
        assert s.names() == list(tbl.names), name
        assert s.num_rows() == ref.height, name
        assert s.column_bytes("response") > 0 and s.column_bytes("no_such_column") == 0, name
        assert_frame_equal(s.read(cols), want.select(cols), check_dtypes=True)
        batches = list(s.batches(cols))
        assert sum(b.num_rows for b in batches) == ref.height, name
        assert_frame_equal(pl.concat(list(s.frames(batch_bytes=20_000))), want)


def test_run_corpus_checks_over_a_checked_file(tmp_path: Path) -> None:
    """``run_corpus_checks`` (pass 2 over an existing checked file) gives what ``check_files`` gives."""
    inp = _input(tmp_path / "in.jsonl", n=200)
    row_checks = build_checks(only=["format", "readability"])
    dedup = build_checks(only=["dedup"])
    check_files([inp], tmp_path / "rows.parquet", row_checks)
    run_corpus_checks(tmp_path / "rows.parquet", tmp_path / "two_steps.parquet", dedup)
    check_files([inp], tmp_path / "one_step.parquet", [*row_checks, *dedup])
    assert_frame_equal(pl.read_parquet(tmp_path / "two_steps.parquet"), pl.read_parquet(tmp_path / "one_step.parquet"))


def test_an_input_larger_than_the_budget_goes_to_the_file_from_the_first_frame(tmp_path: Path) -> None:
    """A big run never holds a budget's worth of rows before spilling them (its peak would grow by it)."""
    tbl = table("checked_sample")
    frame = tbl.empty()
    big = Stage(tmp_path / "big.pass1", tbl, budget=1000, expected_bytes=10_000)
    big.write(frame)
    big.close()
    assert not big.in_memory and (tmp_path / "big.pass1").exists()
    small = Stage(tmp_path / "small.pass1", tbl, budget=1000, expected_bytes=100)
    small.write(frame)
    small.close()
    assert small.in_memory and not (tmp_path / "small.pass1").exists()
