"""generate -> row checks -> dedup -> judge -> publish checked -> select -> publish the recipe's dataset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curate.flows import tasks
from prefect import flow, get_run_logger

from curate import pipeline
from curate.recipes.config import Recipe


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:60]


def run_pipeline(
    recipe: Recipe, home: str | None, workers: int, engine_options: dict[str, Any] | None
) -> pipeline.PipelineResult:
    logger = get_run_logger()
    store = tasks.store_for(home)
    spec = recipe.generate
    if spec is None:
        raise ValueError(f"recipe {recipe.name!r} has no 'generate' section: nothing to sample")
    ledger = pipeline.ledger_dir(spec, store, recipe.name)
    plan = tasks.plan_generation(spec, ledger)
    logger.info("ledger %s: %d shards, %d already done", ledger, plan.n_shards, plan.done)
    futures = [tasks.generate_shards.submit(spec, ledger, (i, workers), engine_options) for i in range(workers)]
    gen = [f.result() for f in futures]
    parts = tasks.ledger_parts(ledger)
    work = ledger / "checks" / plan.params_hash
    work.mkdir(parents=True, exist_ok=True)
    funnels: dict[str, dict[str, int]] = {}
    jobs = tasks.plan_row_checks(parts, recipe.checks, home)  # one task per shard, cached per (shard, check)
    dones = [f.result() for f in tasks.submit_shards(jobs)]
    funnels["checks"] = tasks.write_row_checks(jobs, dones, work / "rows.parquet")
    funnels["dedup"] = tasks.corpus_check("dedup", work / "rows.parquet", work / "dedup.parquet", recipe.checks)
    funnels["judge"] = tasks.corpus_check("judge", work / "dedup.parquet", work / "final.parquet", recipe.checks)
    checked = tasks.publish_checked(
        home, f"{recipe.name}_checked", work / "final.parquet", recipe.checks, [f"ledger:{ledger}"]
    )
    out = tasks.build_recipe(recipe, home, checked)
    funnels["select"] = out["funnel"]
    tasks.funnel_artifact(funnels, key=f"funnel-{_slug(recipe.name)}")
    return pipeline.PipelineResult(
        checked=checked,
        dataset=out["dataset"],
        rows=out["rows"],
        selection=out["selection"],
        pass_rates=out["pass_rates"],
        funnels=funnels,
        generation=gen,
    )


@flow(name="rejection_sampling", log_prints=True, flow_run_name=tasks.recipe_run_name)
def rejection_sampling(
    recipe_path: str, home: str | None = None, workers: int = 1, engine_options: dict[str, Any] | None = None
) -> pipeline.PipelineResult:
    """Sample with the recipe's generate section, check, dedup, judge, select and publish."""
    recipe = tasks.load_recipe_task(str(Path(recipe_path)))
    return run_pipeline(recipe, home, workers, engine_options)
