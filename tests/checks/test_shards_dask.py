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
            resp = (f"<think>Let me work through step {i}. " + "We add the terms. " * (i % 9)
                    + f"</think>\nThe answer is \\boxed{{{i % 23}}}.")
            if i % 13 == 0:
                resp = resp.replace("</think>", "")
            f.write(orjson.dumps({"prompt_id": f"p{i // 4}", "task": "math", "prompt": f"What is {i % 23}?",
                                  "response": resp, "reference": str(i % 23 if i % 7 else 1)}) + b"\n")
        f.write(b"not json\n")
    checks = "format,readability,lang,math"
    runner = CliRunner()
    base = ["--home", str(tmp_path / "home"), "check", str(inp), "--checks", checks, "--shard-mb", "0.01", "--json"]
    single = runner.invoke(app, [*base, "--out", str(tmp_path / "single.parquet"), "--no-cache"])
    assert single.exit_code == 0, single.output
    dask = runner.invoke(app, [*base, "--out", str(tmp_path / "dask.parquet"), "--dask", "2"])
    assert dask.exit_code == 0, dask.output
    report = orjson.loads(dask.stdout.strip().splitlines()[-1])
    assert report["shards"]["n"] > 4 and report["shards"]["computed"]["read"] == report["shards"]["n"]
    want = pl.read_parquet(tmp_path / "single.parquet")
    assert want.height == 400 and want["accepted"].sum() < 400
    assert_frame_equal(pl.read_parquet(tmp_path / "dask.parquet"), want)
    q = (tmp_path / "single.quarantine.jsonl").read_bytes()
    assert q and (tmp_path / "dask.quarantine.jsonl").read_bytes() == q
