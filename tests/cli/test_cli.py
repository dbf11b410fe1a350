"""The CLI as users run it: real subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import polars as pl

from curate.native import kernels

GOOD = {"prompt": "What is 2+2?", "response": "<think>2+2=4</think>\\boxed{4}", "task": "math", "reference": "4"}


def curate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _input(tmp_path: Path) -> Path:
    lines = [orjson.dumps(GOOD), orjson.dumps({**GOOD, "response": "no think"}), b"{broken", b"[1]"]
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return p


def test_check_publish_query_roundtrip(tmp_path: Path) -> None:
    inp = _input(tmp_path)
    r = curate("check", str(inp), "--out", "out.parquet", "--publish", "demo", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert (rep["rows"], rep["accepted"], rep["bad_rows"], rep["published"]) == (2, 1, 2, "demo@1")
    assert rep["funnel"] == {"format.missing_think": 1, "math.no_answer": 1}
    assert rep["compiled_passes"] is (os.environ.get("CURATE_KERNELS") != "0" and kernels() is not None)
    assert (tmp_path / "out.quarantine.jsonl").exists()
    r = curate(
        "query",
        "select unnest(reject_reasons) as reason, count(*) as n from demo group by reason",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "format.missing_think,1" in r.stdout
    r = curate("query", "select name, version from datasets", "--format", "parquet", "--out", "q.parquet", cwd=tmp_path)
    assert r.returncode == 0 and pl.read_parquet(tmp_path / "q.parquet").rows() == [("demo", 1)]
    r = curate("datasets", "show", "demo@1", cwd=tmp_path)
    assert r.returncode == 0 and "format.missing_think" in r.stdout
    r = curate("--home", str(tmp_path / "curate-data"), "datasets", "list", cwd=Path("/"))
    assert r.returncode == 0 and "demo" in r.stdout


def test_user_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    inp = _input(tmp_path)
    (tmp_path / "bad.yaml").write_text("checks: {nosuch: {}}\n")
    (tmp_path / "opt.yaml").write_text("checks: {format: {colour: red}}\n")
    cases = [
        ("check", "missing.jsonl", "--out", "o.parquet"),
        ("check", str(inp)),  # no --out
        ("check", str(inp), "--out", "o.parquet", "--bogus"),
        ("check", str(inp), "--out", "o.parquet", "--config", "nofile.yaml"),
        ("check", str(inp), "--out", "o.parquet", "--config", "bad.yaml"),
        ("check", str(inp), "--out", "o.parquet", "--config", "opt.yaml"),
        ("check", str(inp), "--out", "o.parquet", "--max-bad-fraction", "7"),
        ("datasets", "show", "nothing@1"),
        ("query", "select * from no_such_table"),
        ("query", "select 1", "--format", "xml"),
    ]
    for args in cases:
        r = curate(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_max_bad_fraction_fails_the_run(tmp_path: Path) -> None:
    r = curate("check", str(_input(tmp_path)), "--out", "o.parquet", "--max-bad-fraction", "0.1", cwd=tmp_path)
    assert r.returncode == 1 and "unreadable" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_reasons_lists_codes(tmp_path: Path) -> None:
    r = curate("reasons", cwd=tmp_path)
    assert r.returncode == 0 and "format.truncated" in r.stdout and "input.nul_byte" in r.stdout
