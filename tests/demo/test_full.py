"""`curate demo --full`: R1's phases at toy scale.

The fast variant (tiny models, a step or two of each training) runs in CI and checks the mechanics: every
phase runs in order through the ledger, checks, recipes, store and launch paths, the JSON contract holds,
lineage reads prompt -> checkpoint in the catalog, the plot is written. The figures themselves need the
full run (``-m slow``, about 25 minutes on 2 cores), reported in the issue's closing note.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curate.checks.registry import build_checks
from curate.demo import make_problems
from curate.demo.failures import R1_ZERO_MIX, TOY_CHECKS, r1_zero_trace
from curate.demo.full import PHASES

# What must catch each planted failure (a prefix of one of its reject reasons); clean traces pass.
CAUGHT_BY = {
    "clean": None,
    "carry": "math.incorrect",
    "digit": "math.incorrect",
    "copy": "math.incorrect",
    "mixed": "lang.",
    "wall": "readability.long_paragraph",
    "loop": "readability.repeated",
    "unclosed": "format.truncated",
    "bare": "format.missing_think",
}


def test_every_planted_failure_is_caught_by_its_filter() -> None:
    rng = random.Random(0)
    rows = []
    for p in make_problems(7, 400):
        text, kind = r1_zero_trace(p, rng)
        rows.append({"prompt_id": p.prompt_id, "reference": str(p.answer), "response": text, "kind": kind})
    df = pl.DataFrame(rows).with_columns(
        sample_id=pl.int_range(pl.len()).cast(pl.String),
        prompt=pl.lit("q"),
        task=pl.lit("math"),
        language=pl.lit("en"),
        finish_reason=pl.lit("stop"),
    )
    for check in build_checks({**TOY_CHECKS, "dedup": {"enabled": False}}):
        if check.scope == "row":
            df = check.run(df)
    assert set(df["kind"]) == set(R1_ZERO_MIX)  # every kind drawn at least once in 400
    for kind, reasons in df.group_by("kind").agg(pl.col("reject_reasons")).iter_rows():
        expected = CAUGHT_BY[kind]
        for rs in reasons:
            if expected is None:
                assert rs == [], (kind, rs)
            else:
                assert any(r.startswith(expected) for r in rs), (kind, rs)


def _full_fast(work: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "curate.cli", "demo", "--full", "--fast", "--json", "--workdir", str(work)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_demo_full_fast_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "full"
    r = _full_fast(work)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [p["phase"] for p in out["phases"]] == list(PHASES)
    for p in out["phases"]:
        assert set(p) >= {"phase", "pass_at_1", "mean_length", "lang_mix_rate", "datasets", "checkpoint"}
        assert 0.0 <= p["pass_at_1"] <= 1.0 and 0.0 <= p["lang_mix_rate"] <= 1.0
        assert Path(p["checkpoint"], "config.json").is_file()
    assert Path(out["plot"]).is_file()
    con = duckdb.connect(str(work / "catalog.duckdb"), read_only=True)
    names = {n for (n,) in con.execute("select distinct name from datasets").fetchall()}
    for p in out["phases"]:
        assert {d.split("@")[0] for d in p["datasets"]} <= names
    # both GRPO phases trained and were recorded: dataset version -> run -> checkpoint
    runs = con.execute("select kind, dataset, output from runs").fetchall()
    assert [k for k, _, _ in runs].count("grpo") == 2
    zero = out["phases"][1]
    assert (zero["datasets"][1], zero["checkpoint"]) in {(d, o) for _, d, o in runs}
    # the checked samples trace back to the ledger they were generated into
    parents = con.execute("select parents from datasets where name = 'r1_s0_base_checked'").fetchone()[0]
    assert "ledger:" in str(parents)
    con.close()

    # The store copied elsewhere, the original gone: the demo runs again from the copy. Its checkpoints
    # are retrained there (a trainer writes the new output path into training_args.bin) and its ledgers,
    # keyed by the checkpoints' content, resume instead of refusing a "different" model.
    moved = tmp_path / "moved" / "full"
    shutil.copytree(work, moved)
    shutil.rmtree(work)
    again = _full_fast(moved)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p["phase"] for p in json.loads(again.stdout.strip().splitlines()[-1])["phases"]] == list(PHASES)


@pytest.mark.slow
def test_demo_full_moves_the_figures(tmp_path: Path) -> None:
    """The real run: rejection sampling beats the base, and the phases bring language mixing down."""
    r = subprocess.run(
        [sys.executable, "-m", "curate.cli", "demo", "--full", "--json", "--workdir", str(tmp_path / "full")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    phases = {p["phase"]: p for p in json.loads(r.stdout.strip().splitlines()[-1])["phases"]}
    assert phases["rs_sft"]["pass_at_1"] > phases["base"]["pass_at_1"]
    assert phases["rs_sft"]["lang_mix_rate"] < phases["base"]["lang_mix_rate"]
    assert phases["cold_start_sft"]["unreadable_rate"] < phases["base"]["unreadable_rate"]


def test_demo_ablation_points_curate_ablate_at_the_rs_round() -> None:
    """``--ablate`` reuses ``curate ablate`` on the cold-start and rs_sft rounds, from the toy base."""
    from curate.demo.ablate import demo_ablation
    from curate.demo.full import FullConfig, FullResult, PhaseResult

    s = FullConfig.fast(seed=3)
    res = FullResult(workdir="/w", seed=3)
    res.phases = [
        PhaseResult("base", 0.1, 50.0, 0.0, [], "/w/models/base"),
        PhaseResult("cold_start_sft", 0.2, 50.0, 0.0, ["r1_s3_zero_rl_checked@1", "r1_s3_cold_start_sft@1"], "/c"),
        PhaseResult("rs_sft", 0.2, 50.0, 0.0, ["r1_s3_reasoning_rl_checked@2", "r1_s3_rs_sft@1"], "/w/models/rs"),
    ]
    a = demo_ablation(res, s)
    assert (a.checked, a.model, a.recipe.kind, a.recipe.format) == (
        "r1_s3_reasoning_rl_checked@2",
        "/w/models/base",
        "rs_sft",
        "prompt_completion",
    )
    assert a.prompts.height == s.eval_prompts and a.config.seeds == (0, 1)
    assert a.config.sft.max_steps == s.sft_min_steps  # one fixed schedule for every variant
    cold = demo_ablation(res, s, phase="cold_start_sft")  # the round where mixing and walls of text occur
    assert (cold.checked, cold.recipe.kind, cold.recipe.name) == (
        "r1_s3_zero_rl_checked@1",
        "cold_start_sft",
        "r1_s3_cold_start_sft",
    )
