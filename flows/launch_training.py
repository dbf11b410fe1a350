"""Train on a published dataset version: SFT (TRL SFTTrainer) or GRPO (TRL GRPOTrainer)."""

from __future__ import annotations

from curate.flows.tasks import training_run_name
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate.launch import GRPORunConfig, RunRecord, SFTRunConfig, run_grpo, run_sft
from curate.store import Store


@task(cache_policy=NO_CACHE, tags=["gpu"])
def sft(home: str | None, dataset: str, model: str, out: str, spec: SFTRunConfig) -> RunRecord:
    return run_sft(Store(home), dataset, model, out, spec)


@task(cache_policy=NO_CACHE, tags=["gpu"])
def grpo(home: str | None, dataset: str, model: str, out: str, spec: GRPORunConfig) -> RunRecord:
    return run_grpo(Store(home), dataset, model, out, spec)


@flow(name="launch_training", flow_run_name=training_run_name)
def launch_training(
    dataset: str,
    model: str,
    out: str,
    kind: str = "sft",
    home: str | None = None,
    max_steps: int = -1,
    epochs: float = 2.0,
    learning_rate: float | None = None,
) -> RunRecord:
    """``dataset`` is NAME@VERSION (a trigger fills it from the curate.dataset.published event); returns the
    run as recorded in the store (``runs/<run_id>/run.json``)."""
    if kind == "sft":
        spec = SFTRunConfig(epochs=epochs, max_steps=max_steps, learning_rate=learning_rate or 1e-5)
        return sft(home, dataset, model, out, spec)
    if kind == "grpo":
        gspec = GRPORunConfig(max_steps=max_steps if max_steps > 0 else 100, learning_rate=learning_rate or 1e-6)
        return grpo(home, dataset, model, out, gspec)
    raise ValueError(f"kind must be sft or grpo, not {kind!r}")
