"""The dataset recipes as flows: the rejection-sampling pipeline with a recipe of that kind."""

from __future__ import annotations

from typing import Any

from curate.flows import tasks
from curate.flows.rejection_sampling import run_pipeline
from prefect import flow

from curate.pipeline import PipelineResult


def _run(
    kind: str, recipe_path: str, home: str | None, workers: int, engine_options: dict[str, Any] | None
) -> PipelineResult:
    recipe = tasks.load_recipe_task(recipe_path)
    if recipe.kind != kind:
        raise ValueError(f"{recipe_path} is a {recipe.kind} recipe, not {kind}")
    return run_pipeline(recipe, home, workers, engine_options)


@flow(name="cold_start", flow_run_name=tasks.recipe_run_name)
def cold_start(
    recipe_path: str, home: str | None = None, workers: int = 1, engine_options: dict[str, Any] | None = None
) -> PipelineResult:
    """A small, strict, readable long-CoT set in R1's output form."""
    return _run("cold_start_sft", recipe_path, home, workers, engine_options)


@flow(name="distill", flow_run_name=tasks.recipe_run_name)
def distill(
    recipe_path: str, home: str | None = None, workers: int = 1, engine_options: dict[str, Any] | None = None
) -> PipelineResult:
    """Teacher samples for student SFT, with token-length statistics."""
    return _run("distill", recipe_path, home, workers, engine_options)


@flow(name="rl_prompts", flow_run_name=tasks.recipe_run_name)
def rl_prompts(
    recipe_path: str, home: str | None = None, workers: int = 1, engine_options: dict[str, Any] | None = None
) -> PipelineResult:
    """RL prompts with ground truth and difficulty from pass rates, in verl's format."""
    return _run("rl_prompts", recipe_path, home, workers, engine_options)
