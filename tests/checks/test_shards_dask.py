"""The same shards on a local Dask cluster (Prefect tasks on DaskTaskRunner) give the same output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prefect.testing.utilities import prefect_test_harness
from typer.testing import CliRunner

from curate.cli import app


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_dask_run_is_identical_to_the_single_process_run(harness: None, tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    with inp.open("wb") as f:
        for i in range(400):
            resp = (
                f"<think>Let me work through step {i}. "
                + "We add the terms. " * (i % 9)
                + f"</think>\nThe answer is \\boxed{{{i % 23}}}."
            )
            if i % 13 == 0:
                resp = resp.replace("</think>", "")
            f.write(
                orjson.dumps(
                    {
                        "prompt_id": f"p{i // 4}",
                        "task": "math",
                        "prompt": f"What is {i % 23}?",
                        "response": resp,
                        "reference": str(i % 23 if i % 7 else 1),
                    }
                )
                + b"\n"
            )
        f.write(b"not json\n")
    checks = "format,readability,lang,math"
    runner = CliRunner()
    base = ["--home", str(tmp_path / "home"), "check", str(inp), "--checks", checks, "--shard-mb", "0.01", "--json"]
    single = runner.invoke(app, [*base, "--out", str(tmp_path / "single.parquet"), "--no-cache"])
    assert single.exit_code == 0, single.output
    # What ``--dask 2`` runs (called directly: Prefect's log handlers outlive CliRunner's streams).
    from curate.checks.cached import run_shard
    from curate.checks.registry import build_checks
    from curate.checks.runner import ShardOptions, check_files
    from curate.cli._dask import run_sharded

    report = run_sharded(
        2,
        None,
        lambda mapper: check_files(
            [inp],
            tmp_path / "dask.parquet",
            build_checks(None, only=checks.split(",")),
            shards=ShardOptions(
                shard_bytes=int(0.01 * (1 << 20)),
                cache=tmp_path / "cache",
                executor=lambda jobs: mapper(run_shard, jobs, "check"),
            ),
        ),
    )
    summary = report.shard_summary()
    assert summary["n"] > 4 and summary["computed"]["read"] == summary["n"]
    want = pl.read_parquet(tmp_path / "single.parquet")
    assert want.height == 400 and want["accepted"].sum() < 400
    assert_frame_equal(pl.read_parquet(tmp_path / "dask.parquet"), want)
    q = (tmp_path / "single.quarantine.jsonl").read_bytes()
    assert q and (tmp_path / "dask.quarantine.jsonl").read_bytes() == q


def test_dedup_on_dask_is_identical_to_the_single_process_run(harness: None, tmp_path: Path) -> None:
    from curate.cli._dask import run_sharded
    from curate.dedup import DedupConfig
    from curate.dedup.run import dedup_files

    inp = tmp_path / "in.jsonl"
    with inp.open("wb") as f:
        for i in range(300):
            words = " ".join(f"w{(i // 3) * 7 + k}" for k in range(60)) + ("" if i % 3 else f" tail{i}")
            f.write(orjson.dumps({"prompt": "q", "prompt_id": f"p{i % 4}", "response": words}) + b"\n")

    def run(name: str, n: int) -> pl.DataFrame:
        rep = run_sharded(
            n,
            None,
            lambda mapper: dedup_files(
                [inp],
                tmp_path / f"{name}.parquet",
                DedupConfig(),
                work=tmp_path / name,
                mapper=mapper,
                shard_bytes=5000,
            ),
        )
        assert rep.computed["signatures"] > 4
        return pl.read_parquet(tmp_path / f"{name}.parquet")

    want = run("single", 0)
    assert want.height == 300 and 100 < want["reject_reasons"].list.len().gt(0).sum() < 300
    assert_frame_equal(run("dask", 2), want)
