"""`curate demo --fast` as a user runs it: a real subprocess, the whole loop on tiny settings.

The fast variant checks the mechanics (every stage runs, datasets are published, the JSON contract holds);
the gain itself needs the full demo (minutes of CPU training), reported in the issue's closing note.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb


def test_demo_fast_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "curate.cli", "demo", "--fast", "--json", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) >= {"pass_at_1_before", "pass_at_1_after", "pass_at_1_unfiltered", "datasets", "workdir"}
    assert out["workdir"] == str(work.absolute())
    assert [d.split("@")[0] for d in out["datasets"]] == [
        "demo_checked",
        "demo_rs_sft",
        "demo_rl_prompts",
        "demo_unfiltered_sft",
    ]
    con = duckdb.connect(str(work / "catalog.duckdb"), read_only=True)
    names = {n for (n,) in con.execute("select distinct name from datasets").fetchall()}
    assert {
        "demo_checked",
        "demo_rs_sft",
        "demo_rl_prompts",
        "demo_unfiltered_sft",
        "demo_rs_sft_pass_rates",
        "demo_rl_prompts_pass_rates",
    } <= names
    assert con.execute("select count(*) from demo_checked").fetchone()[0] == out["samples"]
