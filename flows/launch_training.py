"""Train on a published dataset version: SFT (TRL SFTTrainer) or GRPO (TRL GRPOTrainer)."""

from __future__ import annotations

from typing import Any

from curate.flows.tasks import store_for, training_run_name
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate.launch import GRPOSpec, SFTSpec, run_grpo, run_sft


@task(cache_policy=NO_CACHE, tags=["gpu"])
def sft(home: str | None, dataset: str, model: str, out: str, spec: SFTSpec) -> dict[str, Any]:
    rec = run_sft(store_for(home), dataset, model, out, spec)
    return {"run_id": rec.run_id, "output": rec.output, "metrics": dict(rec.metrics)}


@task(cache_policy=NO_CACHE, tags=["gpu"])
def grpo(home: str | None, dataset: str, model: str, out: str, spec: GRPOSpec) -> dict[str, Any]:
    rec = run_grpo(store_for(home), dataset, model, out, spec)
    return {"run_id": rec.run_id, "output": rec.output, "metrics": dict(rec.metrics)}


@flow(name="launch_training", flow_run_name=training_run_name)
def launch_training(dataset: str, model: str, out: str, kind: str = "sft", home: str | None = None,
                    max_steps: int = -1, epochs: float = 2.0, learning_rate: float | None = None) -> dict[str, Any]:
    """``dataset`` is NAME@VERSION (a trigger fills it from the curate.dataset.published event)."""
    if kind == "sft":
        spec = SFTSpec(epochs=epochs, max_steps=max_steps, learning_rate=learning_rate or 1e-5)
        return sft(home, dataset, model, out, spec)
    if kind == "grpo":
        gspec = GRPOSpec(max_steps=max_steps if max_steps > 0 else 100, learning_rate=learning_rate or 1e-6)
        return grpo(home, dataset, model, out, gspec)
    raise ValueError(f"kind must be sft or grpo, not {kind!r}")
