"""Downstream training on published versions: TRL GRPO with curate's own rewards, runs in the catalog,
and the cluster commands. (SFT through `run_sft` is exercised end to end by the demo.)"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.launch import ClusterPaths, GRPORunConfig, iter_runs, run_grpo, verl_grpo
from curate.recipes import recipe_from_dict, run_recipe
from curate.schema import table
from curate.store import Store


def _rl_store(tmp_path: Path) -> tuple[Store, str]:
    rows = []
    for p in range(4):
        for i in range(2):
            ok = i == 0
            rows.append(
                {
                    "sample_id": f"s{p}{i}",
                    "prompt_id": f"p{p}",
                    "task": "math",
                    "prompt": f"{p}+{p}=?",
                    "response": "<think>x</think>\\boxed{1}",
                    "reference": str(2 * p),
                    "math_score": 1.0 if ok else 0.0,
                    "accepted": ok,
                    "reject_reasons": [] if ok else ["math.incorrect"],
                }
            )
    store = Store(tmp_path / "store")
    checked = store.publish_frame("c", "checked", table("checked_sample"), pl.DataFrame(rows))
    pub = run_recipe(recipe_from_dict({"recipe": "rl_prompts", "name": "rl", "inputs": [checked.manifest.ref]}), store)
    return store, pub.dataset.manifest.ref


def test_grpo_runs_with_curate_rewards_and_is_recorded(tmp_path: Path, tiny_checkpoint: Path) -> None:
    store, ref = _rl_store(tmp_path)
    spec = GRPORunConfig(num_generations=2, max_steps=1, batch_size=2, max_completion_length=8, logging_steps=1)
    rec = run_grpo(store, ref, str(tiny_checkpoint), tmp_path / "grpo-out", spec)
    assert (tmp_path / "grpo-out" / "config.json").exists()
    assert [r.run_id for r in iter_runs(store)] == [rec.run_id]
    con = store.connect()
    assert con.execute("select kind, dataset, status from runs").fetchall() == [("grpo", ref, "finished")]


def test_cluster_command_points_at_the_version(tmp_path: Path) -> None:
    store, ref = _rl_store(tmp_path)
    cmd = verl_grpo(store.get(ref), ClusterPaths(store.home, "/mnt/store"), "ckpt", "out").shell()
    assert "algorithm.adv_estimator=grpo" in cmd and "compute_score" in cmd
    assert "/mnt/store/" + store.get(ref).parts[0].relative_to(store.home).as_posix() in cmd
